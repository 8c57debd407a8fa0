# Data and config files given by path: a CSV trains; a corrupt IDX file, a malformed CSV and a misspelt config key
# fail with messages that name the file or key and what is wrong.
file(REMOVE_RECURSE "${OUT}")
file(MAKE_DIRECTORY "${OUT}")
function(expect_output name regex)
  execute_process(COMMAND "${KFAC}" ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT "${out}${err}" MATCHES "${regex}")
    message(FATAL_ERROR "${name}: expected /${regex}/, got (rc ${rc}):\n${out}${err}")
  endif()
endfunction()
set(smoke --model mlp --steps 2 --batch-size 4 --eval-examples 4 --quiet)

# A CSV of 12 rows: label, then 784 pixel values in 0..255.
set(csv "label")
foreach(i RANGE 1 784)
  string(APPEND csv ",p${i}")
endforeach()
foreach(r RANGE 1 12)
  math(EXPR label "${r} % 10")
  string(APPEND csv "\n${label}")
  foreach(i RANGE 1 784)
    math(EXPR v "(${r} * 37 + ${i} * 11) % 256")
    string(APPEND csv ",${v}")
  endforeach()
endforeach()
file(WRITE "${OUT}/digits.csv" "${csv}\n")
expect_output(csv_trains "sgd mlp: train_loss [0-9]" train ${smoke} --method sgd --dataset csv --data-path "${OUT}/digits.csv")
file(WRITE "${OUT}/bad.csv" "label,p1\n3,x\n")
expect_output(csv_bad "CSV data file '.*bad.csv' line 2: 'x' is not a number" train ${smoke} --dataset csv --data-path "${OUT}/bad.csv")

# A directory where a file is expected: named, in the tool's words (not libstdc++'s "basic_filebuf::underflow").
expect_output(csv_directory "CSV data file '.*' is a directory; --data-path names the file itself"
              train ${smoke} --dataset csv --data-path "${OUT}")
expect_output(text_directory "the text corpus '.*' is a directory; --data-path names the file itself"
              train --model char-lm --dataset kjv --steps 1 --quiet --data-path "${OUT}")

# An IDX directory whose image file is not IDX data.
file(MAKE_DIRECTORY "${OUT}/idx")
file(WRITE "${OUT}/idx/train-images-idx3-ubyte.gz" "this is not an IDX file")
expect_output(idx_truncated "data file '.*train-images-idx3-ubyte.gz' is (truncated|corrupt|not an IDX)"
              train ${smoke} --dataset idx --data-path "${OUT}/idx")

# Config files.
file(WRITE "${OUT}/run.toml" "[train]\nmodel = \"mlp\"\nmethod = \"tkfac\"\nsteps = 2\nbatch-size = 8\neval-examples = 8\nquiet = true\n")
expect_output(config "tkfac mlp: train_loss [0-9].*\\(2 steps, batch 8" --config "${OUT}/run.toml" train)
file(WRITE "${OUT}/typo.toml" "[train]\nstepz = 2\n")
expect_output(config_typo "--config '.*typo.toml': the key 'train.stepz' is not an option of its section"
              --config "${OUT}/typo.toml" train ${smoke})
file(WRITE "${OUT}/unparsable.toml" "steps = [\n")
expect_output(config_unparsable "--config '.*unparsable.toml': the key 'steps' .*or its value does not parse"
              --config "${OUT}/unparsable.toml" train ${smoke})

#!/usr/bin/env bash
# A text corpus is checked (issue 23, item 14): random bytes are refused naming the share outside char-lm's vocabulary;
# a text with a few characters outside it trains, with a warning that counts them.
set -uo pipefail
KFAC=$1
DIR=$2
rm -rf "$DIR" && mkdir -p "$DIR"
RUN=(train --model char-lm --dataset kjv --steps 1 --batch-size 4 --eval-examples 8 --quiet --method adamw)
/usr/bin/python3 -c 'import random, sys; random.seed(0); open(sys.argv[1], "wb").write(bytes(random.randrange(256) for _ in range(20000)))' "$DIR/random.bin"
if "$KFAC" "${RUN[@]}" --data-path "$DIR/random.bin" >/dev/null 2>"$DIR/err"; then echo "FAIL: random bytes trained"; exit 1; fi
grep -qF "is not text char-lm can learn" "$DIR/err" && grep -qF "are outside its vocabulary" "$DIR/err" ||
  { cat "$DIR/err"; echo "FAIL: random bytes not refused by name"; exit 1; }
/usr/bin/python3 -c 'import sys; open(sys.argv[1], "w", encoding="utf-8").write(("In the beginning God created the heaven and the earth, caf\u00e9.\n") * 300)' "$DIR/text.txt"
"$KFAC" "${RUN[@]}" --data-path "$DIR/text.txt" >/dev/null 2>"$DIR/err" || { cat "$DIR/err"; echo "FAIL: text"; exit 1; }
grep -qF "600 of the 18600 bytes of the text corpus" "$DIR/err" || { cat "$DIR/err"; echo "FAIL: no count"; exit 1; }
echo "PASS: text corpus"

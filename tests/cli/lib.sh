# Shared by the CLI test scripts (sourced).

# children PID: the PIDs whose parent is PID.
children() {
  local status
  for status in /proc/[0-9]*/status; do
    awk -v parent="$1" '/^Pid:/ {pid = $2} /^PPid:/ {if ($2 == parent) print pid}' "$status" 2>/dev/null
  done
}

# wait_for FILE: until FILE exists (at most 60 s). A run started with --checkpoint-every 1 writes its checkpoint after
# the first step: the sign that it is training, where a signal is checkpointed (before that the tool just exits).
wait_for() {
  local tries=0
  while (( tries++ < 600 )) && [ ! -e "$1" ]; do sleep 0.1; done
}

# interrupt_after FILE ERRFILE SIGNAL COMMAND...: runs COMMAND in the background (stderr to ERRFILE, stdout discarded),
# waits for FILE (see wait_for), sends it SIGNAL, waits, prints ERRFILE and leaves the exit status in $rc.
interrupt_after() {
  local file="$1" err="$2" signal="$3"
  shift 3
  "$@" 2>"$err" >/dev/null &
  local pid=$!
  wait_for "$file"
  sleep 0.5
  kill "-$signal" "$pid"
  wait "$pid"; rc=$?
  cat "$err"
}

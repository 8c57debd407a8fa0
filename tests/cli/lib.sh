# Shared by the CLI test scripts (sourced).

# interrupt_after SECONDS ERRFILE COMMAND...: runs COMMAND in the background (stderr to ERRFILE, stdout discarded),
# sends it SIGINT after SECONDS, waits, prints ERRFILE and leaves the exit status in $rc.
interrupt_after() {
  local seconds="$1" err="$2"
  shift 2
  "$@" 2>"$err" >/dev/null &
  local pid=$!
  sleep "$seconds"
  kill -INT "$pid"
  wait "$pid"; rc=$?
  cat "$err"
}

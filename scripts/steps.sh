# Sourced by scripts/setup: `step "what it does" command...` runs the command with its output
# appended to $STEP_LOG and prints one line: "setup: what it does ... ok (log: FILE)". When the
# command fails, the line says so and the log's last 40 lines follow, then the script exits with
# the command's status. `note "text"` prints a line and adds it to the log.
STEP_LOG="${STEP_LOG:-.wildrobot/setup.log}"

step_log_init() {
  mkdir -p "$(dirname "$STEP_LOG")"
  : > "$STEP_LOG"
}

note() {
  echo "setup: $*"
  echo "== $*" >> "$STEP_LOG"
}

step() {
  local what="$1" code=0
  shift
  printf 'setup: %s ... ' "$what"
  echo "== $what: $*" >> "$STEP_LOG"
  "$@" >> "$STEP_LOG" 2>&1 || code=$?
  if [ "$code" = 0 ]; then
    echo "ok (log: $STEP_LOG)"
  else
    echo "FAILED (exit $code; full log: $STEP_LOG)"
    echo "---- last 40 lines of $STEP_LOG ----" >&2
    tail -n 40 "$STEP_LOG" >&2
    exit "$code"
  fi
}

# broker_lib.sh: the end of a broker that an interop test started (sourced
# by broker_py.sh and test_wire_audit.sh, which set broker_pid and tmp,
# the broker's log in $tmp/broker.log).

# broker_end WHEN: the broker, still alive after WHEN, stopped with SIGTERM
# and ending with status 0; else said on stderr and 1.
broker_end() {
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    echo "FAIL - the broker died${1:+ $1}" >&2
    return 1
  fi
  kill -TERM "$broker_pid"
  wait "$broker_pid"
  local st=$?
  broker_pid=
  [ "$st" -eq 0 ] && return 0
  echo "FAIL - the broker stopped with status $st" >&2
  return 1
}

# broker_log_end RC LINES: a sanitizer report in the broker's log is a
# failure; on a failure (RC not 0 too) its last LINES lines are shown.
# Prints the test's status, 0 or 1.
broker_log_end() {
  local rc=$1
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/broker.log"; then
    echo "FAIL - a sanitizer report in the broker's log" >&2
    rc=1
  fi
  if [ "$rc" -ne 0 ]; then echo "--- broker.log (tail)" >&2; tail -n "$2" "$tmp/broker.log" >&2; fi
  echo "$rc"
}

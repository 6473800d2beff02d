# check.sh: sourced by the test scripts.  check WHAT CMD...: runs CMD and
# counts it in $passes, or in $fails with "FAILED: CASE: WHAT" on stderr
# ($case_name, when the script has cases); returns 0 when CMD passed, 1
# when it failed, so `check ... || return` guards a case.  CMD is one
# simple command: in `check WHAT A && B` the shell runs B after check,
# unasserted, so write two checks (or a function) instead.  No script
# that uses check may run under set -e (a failing check would end it).
check() {
  local what=$1; shift
  if "$@"; then
    passes=$((passes + 1))
    return 0
  fi
  fails=$((fails + 1))
  echo "FAILED: ${case_name:+$case_name: }$what" >&2
  return 1
}

# not CMD...: passes when CMD fails (`check WHAT not grep -q X F`; check
# runs a command, so `check WHAT ! CMD` would run a command named "!").
not() { ! "$@"; }

# free_port: prints a TCP port of 127.0.0.1 that nothing holds, chosen
# below the kernel's ephemeral range (32768 up), so no outgoing
# connection of another test can be holding it, and checked by binding
# it.  Two tests may still pick the same port between the check and
# their server's bind: wait_port tells that case apart.  EVR_TEST_PORTS=LO-HI
# narrows the range (a machine whose other users keep to theirs).
free_port() {
  python3 - <<'PY'
import os, random, socket
lo, hi = (int(x) for x in os.environ.get("EVR_TEST_PORTS", "10000-32000").split("-"))
for _ in range(200):
    p = random.randint(lo, hi)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("free_port: no free port in %d-%d" % (lo, hi))
PY
}

# wait_port PORT [PID]: waits up to 10 s until 127.0.0.1:PORT accepts a
# connection; with PID, fails at once when that process has ended (its
# bind failed).  Says which port on stderr when it gives up.
wait_port() {
  local p=$1 pid=${2:-} i
  for i in $(seq 1 100); do
    { exec 3<>"/dev/tcp/127.0.0.1/$p"; } 2>/dev/null && { exec 3>&-; return 0; }
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "wait_port: the server for port $p (pid $pid) ended before it listened" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "wait_port: nothing listens on 127.0.0.1:$p after 10 s" >&2
  return 1
}

# serve_dir DIR [HTTPD-ARG...]: busybox httpd serving DIR on a free port
# of 127.0.0.1; sets serve_port and serve_pid (the caller kills it).
# Tries another port when the first was taken in between.
serve_dir() {
  local dir=$1 try; shift
  for try in 1 2 3; do
    serve_port=$(free_port) || return 1
    busybox httpd -f -p "127.0.0.1:$serve_port" -h "$dir" "$@" &
    serve_pid=$!
    if wait_port "$serve_port" "$serve_pid" 2> /dev/null; then
      sleep 0.1
      kill -0 "$serve_pid" 2> /dev/null && return 0   # it was ours that answered
    fi
    kill "$serve_pid" 2> /dev/null; wait "$serve_pid" 2> /dev/null
  done
  echo "serve_dir: busybox httpd for $dir did not start (3 ports tried)" >&2
  return 1
}

# run_cases CASE...: runs each function case_CASE in turn (case_name set
# for check's messages; a CASE with no such function fails), says "ok:
# CASE" or "FAILED: CASE" after each,
# then "N passed, N failed"; its status is 0 when no check failed (a
# script's last command)
run_cases() {
  local c before
  for c in "$@"; do
    case_name=$c
    before=$fails
    if ! declare -F "case_$c" > /dev/null; then   # a name asked that no case has
      check "a case of this script" false
      echo "FAILED: $c"
      continue
    fi
    "case_$c"
    [ "$fails" -eq "$before" ] && echo "ok: $c" || echo "FAILED: $c"
  done
  echo "$passes passed, $fails failed"
  [ "$fails" -eq 0 ]
}

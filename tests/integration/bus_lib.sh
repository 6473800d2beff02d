# bus_lib.sh: sourced by the bus tests.  Starts real evrun-broker and
# evrun-runner processes on ipc:// sockets in a temporary state directory,
# against the podman service of the "podman" fixture (EVRUN_PODMAN_URL).
# Needs $bin (the build's bin directory) and $tmp (a fresh directory with
# a short path: unix sockets hold 107 bytes), set before it is sourced or
# by bus_script_init after.
#
#   bus_script_init PREFIX [--podman]   a test script's set-up: $root and $tmp, the trap
#   bus_script_cases DEFAULT [CASE...]  run case_CASE for each CASE (those of DEFAULT when none)
#   bus_script_end [LOGS]         the sanitizer check, "test_X: N passed, M failed"
#   pipeline NAME                 writes stdin to $tmp/NAME.yml
#   bus_broker [ARGS...]          start the broker (pid in $broker_pid)
#   bus_runner NAME LABELS CAP [ARGS...]   start a runner with id NAME
#   bus_wait_runners N            wait until the broker lists N live runners
#   bus_stop                      stop every process started here
#   cli ARGS...                   evrun-cli against this broker
#   submit FILE [ARGS...]         submit; prints the job id
#   wait_job ID [SECS]            wait until the job ended; prints its status
#   check WHAT CMD...             run CMD: counts $passes or $fails (names $case_name)
#   fresh NAME                    stop what runs; a new state directory $root/NAME
#   job_report JOB                to stderr: the job's status and log tail, the logs' warnings
#   no_leftovers JOB              no container or volume of the job left in podman
#   field JOB NAME                a field of the job's status
#   ticks NAME N PAUSE [LABEL]    $tmp/NAME.yml, a pipeline printing "tick 1".."tick N"
#   exactly_once FILE N           FILE holds "tick 1".."tick N" each once, in order
#   bus_until SECS CMD...         wait until CMD succeeds (tried every 0.1 s, SECS at most)
#   bus_connected PID PATH        process PID is connected to the unix socket PATH
bus_pids=()

. "$(dirname "${BASH_SOURCE[0]}")/../support/check.sh"

fresh() {   # a new state directory for a case
  bus_stop
  tmp=$root/$1
  mkdir -p "$tmp"
  export EVRUN_STATE_DIR=$tmp
}
# a script that sources this first gets $tmp from bus_script_init
[ -z "${tmp:-}" ] || export EVRUN_STATE_DIR=$tmp
export CONTAINERS_CONF=${CONTAINERS_CONF:-}

# bus_script_init PREFIX [--podman]: the set-up of a test script that set
# $bin and $src and sourced this: a temporary root $root, made with mktemp
# /tmp/evr-PREFIX-XXXXXX and removed at exit after bus_stop (kept when
# EVR_KEEP_TMP is set); the state directory $tmp=$root (`fresh` moves it
# below $root); $passes, $fails and $case_name reset.  --podman: the
# "podman" fixture's service (EVRUN_PODMAN_URL when not set) and its
# containers.conf.  A script that needs another trap sets it after.
bus_script_init() {
  case ${2:-} in
    --podman)
      export CONTAINERS_CONF=$src/tools/podman/containers.conf
      : "${EVRUN_PODMAN_URL:=unix:///tmp/evr-it-podman/podman.sock}"
      export EVRUN_PODMAN_URL ;;
    '') ;;
    *) echo "bus_script_init: unknown option \"$2\" (only --podman)" >&2; exit 2 ;;
  esac
  root=$(mktemp -d "/tmp/evr-$1-XXXXXX") || exit 1
  tmp=$root
  export EVRUN_STATE_DIR=$tmp
  trap 'bus_stop; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$root"' EXIT
  fails=0 passes=0 case_name=
}

# bus_script_cases DEFAULT [CASE...]: runs case_CASE for each CASE given,
# or for each of the space-separated list DEFAULT when none is, in order,
# each announced "== CASE" and named in $case_name for `check`
bus_script_cases() {
  local default=$1 c
  shift
  for c in ${*:-$default}; do
    case_name=$c
    echo "== $c"
    "case_$c"
  done
}

# bus_script_end [LOGS]: the end of a test script: stops what runs, checks
# that no sanitizer report is in LOGS (globs, expanded now; default
# $root/*/*.log, the logs of each case's state directory), prints
# "test_X: N passed, M failed" (test_X.sh being the script) and returns
# non-zero when a check failed: the script's last command, its status.
bus_script_end() {
  local logs=${1:-"$root/*/*.log"} name=${0##*/}
  bus_stop
  case_name=sanitizers
  check "no sanitizer report in any log" bash -c "! grep -ls 'Sanitizer\|runtime error' $logs | grep ."
  echo "${name%.sh}: $passes passed, $fails failed"
  [ "$fails" -eq 0 ]
}

# pipeline NAME: writes stdin to $tmp/NAME.yml (a script that defined its
# own pipeline before sourcing this keeps it)
declare -F pipeline > /dev/null || pipeline() { cat > "$tmp/$1.yml"; }

bus_broker() {
  "$bin/evrun-broker" --local --state-dir "$tmp" --heartbeat-ms 200 --lease-ms 1500 "$@" \
    >> "$tmp/broker.log" 2>&1 &
  broker_pid=$!
  bus_pids+=("$broker_pid")
  # until it listens: a killed broker's socket is still there, and a client
  # asking before the new one binds finds no broker (connection refused)
  for _ in $(seq 1 100); do
    [ -S "$tmp/bus/clients" ] && /usr/bin/python3 -c 'import socket, sys
socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$tmp/bus/clients" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bus_broker: nothing listens after 5 s; log:" >&2; tail "$tmp/broker.log" >&2; return 1
}

bus_runner() {   # NAME LABELS CAP [ARGS...]
  local name=$1 labels=$2 cap=$3; shift 3
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id "$name" --labels "$labels" \
    --capacity "$cap" --state-dir "$tmp/r-$name" --heartbeat-ms 200 --lease-ms 1500 \
    --grace 2 "$@" >> "$tmp/runner-$name.log" 2>&1 &
  eval "runner_pid_${name//-/_}=$!"
  bus_pids+=("$!")
}

bus_wait_runners() {   # N
  for _ in $(seq 1 100); do
    # runners only: the providers and demand listed after them have no state
    [ "$("$bin/evrun-cli" runners --json 2>/dev/null | grep '"state":"' | grep -Evc '"state":"(lost|stopped)"')" -ge "$1" ] && return 0
    sleep 0.1
  done
  echo "bus_wait_runners: fewer than $1 runners after 10 s" >&2; return 1
}

bus_stop() {
  local p
  for p in "${bus_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${bus_pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  bus_pids=()
  # a broker killed with -9 leaves its ipc socket files: the next
  # bus_broker must not take them for its own
  rm -f "$tmp/bus/clients" "$tmp/bus/runners" "$tmp/bus/events"
}

cli() { "$bin/evrun-cli" "$@"; }

submit() {   # FILE [ARGS...]: prints the job id
  "$bin/evrun-cli" submit "$@" --json | sed -n 's/.*"job":"\([0-9A-Z]*\)".*/\1/p'
}

wait_job() {   # ID [SECS]: prints the final status ("timeout" when none)
  local id=$1 secs=${2:-60} st
  for _ in $(seq 1 $((secs * 10))); do
    st=$("$bin/evrun-cli" status "$id" --json 2>/dev/null | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p')
    case $st in succeeded|failed|cancelled|timed_out|lost) echo "$st"; return 0 ;; esac
    sleep 0.1
  done
  echo timeout
}

# job_report JOB: what a failed check needs to be understood, to stderr:
# the job's status, the end of its log, and the warnings, errors and
# refusals in the case's broker and runner logs
job_report() {
  {
    echo "--- job $1"
    "$bin/evrun-cli" status "$1" 2>&1
    echo "--- its log (last 30 lines)"
    "$bin/evrun-cli" logs "$1" 2>&1 | tail -30
    echo "--- warnings in $tmp/*.log"
    grep -h 'warn\|error\|REFUSED\|queued again\|lost' "$tmp"/*.log 2>/dev/null | tail -30
  } >&2
}

# no_leftovers JOB: no container or volume of the job is left in podman.
# The runner removes them after the job's end reached the broker (the
# removal never holds the end up), so they are given 10 s to go.
no_leftovers() {
  local id
  id=$(echo "$1" | tr 'A-Z' 'a-z')
  for _ in $(seq 1 50); do
    [ "$({ podman ps -a --format '{{.Names}}'; podman volume ls --format '{{.Name}}'; } \
         | grep -c "evrun-$id")" -eq 0 ] && return 0
    sleep 0.2
  done
  return 1
}

field() {   # field JOB NAME: a field of the job's status
  cli status "$1" --json | sed -n "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"
}

# ticks NAME N PAUSE [LABEL]: a pipeline printing "tick 1".."tick N"
ticks() {
  local labels=${4:+"labels: [$4]"}
  cat > "$tmp/$1.yml" <<YML
pipeline: $1
image: localhost/evrun-busybox:latest
$labels
steps:
  - name: count
    run: for i in \$(seq 1 $2); do echo "tick \$i"; sleep $3; done
YML
}

# exactly_once FILE N: lines ending "tick 1".."tick N" (whatever their
# prefix), each once, in order
exactly_once() {
  local got want
  got=$(grep -o "tick [0-9]*$" "$1" | tr '\n' ' ')
  want=$(seq 1 "$2" | sed 's/^/tick /' | tr '\n' ' ')
  [ "$got" = "$want" ] || { echo "  want: $want" >&2; echo "  got:  $got" >&2; return 1; }
}

# bus_until SECS CMD...: runs CMD every 0.1 s until it succeeds, for SECS
# seconds at most: a wait for a condition, whose bound only ends a case
# that would wait for ever (a loaded machine meets it late, not never);
# its status is CMD's last, for `check`
bus_until() {
  local n=$(($1 * 10)) i
  shift
  for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
  "$@"
}

# bus_connected PID PATH: process PID holds a connection to the unix
# socket PATH that its listener accepted (ss: a socket of PID's whose peer
# is one of PATH's): a follower up to its event stream (PATH
# $tmp/bus/events), not a time guessed for it to start
bus_connected() {
  ss -xpn | awk -v me="pid=$1," -v path="$2" '
    index($0, me) { peer[$8] = 1 }
    $2 == "ESTAB" && $5 == path { acc[$6] = 1 }
    END { for (i in peer) if (i in acc) exit 0; exit 1 }'
}

# bus_lib.sh: sourced by the bus tests.  Starts real evrun-broker and
# evrun-runner processes on ipc:// sockets in a temporary state directory,
# against the podman service of the "podman" fixture (EVRUN_PODMAN_URL).
# Needs $bin (the build's bin directory) and $tmp (a fresh directory with
# a short path: unix sockets hold 107 bytes).
#
#   bus_broker [ARGS...]          start the broker (pid in $broker_pid)
#   bus_runner NAME LABELS CAP [ARGS...]   start a runner with id NAME
#   bus_wait_runners N            wait until the broker lists N live runners
#   bus_stop                      stop every process started here
#   cli ARGS...                   evrun-cli against this broker
#   submit FILE [ARGS...]         submit; prints the job id
#   wait_job ID [SECS]            wait until the job ended; prints its status
#   check WHAT CMD...             run CMD: counts $passes or $fails (names $case_name)
#   fresh NAME                    stop what runs; a new state directory $root/NAME
#   no_leftovers JOB              no container or volume of the job left in podman
#   field JOB NAME                a field of the job's status
#   ticks NAME N PAUSE [LABEL]    $tmp/NAME.yml, a pipeline printing "tick 1".."tick N"
#   exactly_once FILE N           FILE holds "tick 1".."tick N" each once, in order
bus_pids=()

. "$(dirname "${BASH_SOURCE[0]}")/../support/check.sh"

fresh() {   # a new state directory for a case
  bus_stop
  tmp=$root/$1
  mkdir -p "$tmp"
  export EVRUN_STATE_DIR=$tmp
}
export EVRUN_STATE_DIR=$tmp
export CONTAINERS_CONF=${CONTAINERS_CONF:-}

bus_broker() {
  "$bin/evrun-broker" --local --state-dir "$tmp" --heartbeat-ms 200 --lease-ms 1500 "$@" \
    >> "$tmp/broker.log" 2>&1 &
  broker_pid=$!
  bus_pids+=("$broker_pid")
  for _ in $(seq 1 100); do [ -S "$tmp/bus/clients" ] && return 0; sleep 0.05; done
  echo "bus_broker: no socket after 5 s; log:" >&2; tail "$tmp/broker.log" >&2; return 1
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
    [ "$("$bin/evrun-cli" runners --json 2>/dev/null | grep '"state":"' | grep -vc '"state":"lost"')" -ge "$1" ] && return 0
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

#!/usr/bin/env bash
# test_gateway_broker.sh BIN_DIR SRC_DIR [CASE...]: evrun-gateway finds its
# broker whenever it comes, without a restart (evr_gw_bus.c).  Real
# processes on loopback and ipc:// sockets (bus_lib.sh, gw_lib.sh), real
# podman from the "podman" fixture.
#   later: the gateway started first, no broker: 503 with Retry-After and
#     what to do; then a local broker (and a runner) start: within a bounded
#     time a submit is 201 and the job's log and live events are read, the
#     same gateway process throughout, "the broker answers" logged once.
#   back: the broker stops under a live log: the stream ends with an
#     `event: error` saying why, requests get 503; the broker starts again:
#     served again, and the live log resumed with Last-Event-ID has every
#     event once.
#   killed: a 413 raised before sending (a start whose message would pass
#     the bus's limit) leaves the shared connection up (no reconnect); the
#     broker killed (SIGKILL, by pid) with timeout_ms 10000: parallel
#     requests, and a job's detail, each get 503 within 3 s, not after
#     timeout_ms; a call waiting for its answer when the broker dies ends
#     as soon too; served again once it is back.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
. "$src/tests/integration/gw_lib.sh"
bus_script_init gwb --podman

# stop_broker: ends the broker started last (by its pid) and forgets it
stop_broker() {
  kill "$broker_pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$broker_pid" 2>/dev/null
  local keep=() p
  for p in "${bus_pids[@]}"; do [ "$p" = "$broker_pid" ] || keep+=("$p"); done
  bus_pids=("${keep[@]}")
  rm -f "$tmp/bus/clients" "$tmp/bus/runners" "$tmp/bus/events"
}

# served_within SECS: GET /runners is 200 within SECS; prints how long it took
served_within() {
  local t0=$SECONDS
  for _ in $(seq 1 $(($1 * 10))); do
    [ "$(api GET /runners)" = 200 ] && { echo "  served again after $((SECONDS - t0)) s"; return 0; }
    sleep 0.1
  done
  return 1
}

# down_503: GET /runners is 503 now, with Retry-After, saying why and what to do
down_503() {
  local t0=$SECONDS
  check "no broker: 503" [ "$(api GET /runners -D "$tmp/head")" = 503 ]
  check "no broker: at once" [ $((SECONDS - t0)) -lt 3 ]
  check "503 is unavailable" [ "$(jget 'd["error"]["code"]')" = unavailable ]
  check "503 with Retry-After" grep -qi '^Retry-After: [1-9]' "$tmp/head"
  jget 'd["error"]["message"]' > "$tmp/msg"
  check "503 says the gateway tries again" grep -q "the gateway tries again by itself" "$tmp/msg"
  check "503 does not ask for a restart of the gateway" bash -c "! grep -qi 'restart\|start it again' '$tmp/msg'"
  # the default tcp:// endpoint: its message names `evrun-cli up` unless
  # something else listens at 127.0.0.1:7700 (then it names its key)
  if ! (exec 3<> /dev/tcp/127.0.0.1/7700) 2>/dev/null; then
    check "503 says what to do: evrun-cli up" grep -q "no broker runs at the state directory $tmp.*evrun-cli up" "$tmp/msg"
  fi
}

case_later() {
  fresh later
  gateway
  check "started with no broker: still serving (GET /metrics)" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' "${url%/api/v1}/metrics")" = 200 ]
  down_503
  sleep 1
  down_503      # not once only: the watch tried again meanwhile
  check "logged once that no broker answers" [ "$(grep -c 'no broker answers' "$gw_log")" = 1 ]
  bus_broker && bus_runner gw-1 "" 1 && bus_wait_runners 1
  # tries doubling from 0.25 s to 4 s: found within one pause and an attempt
  check "served once the broker runs, within 8 s" served_within 8
  check "submit through the gateway: 201" [ "$(api POST '/jobs?arg=WHO=later' -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml")" = 201 ]
  local id
  id=$(jget 'd["id"]')
  check "the job succeeds" [ "$(api_wait "$id")" = succeeded ]
  check "its log: 200" [ "$(api GET "/jobs/$id/log")" = 200 ]
  check "its log: the line" grep -qx "greet | hello, later" "$tmp/body"
  curl -s -N --max-time 30 -H "Authorization: Bearer $R" -H 'Accept: text/event-stream' \
    "$url/jobs/$id/log" > "$tmp/sse"
  sse_events "$tmp/sse" > "$tmp/ev"
  check "its live events: from 1 to job.finished" \
    [ "$(head -1 "$tmp/ev" | cut -d' ' -f1) $(tail -1 "$tmp/ev" | cut -d' ' -f2)" = "1 job.finished" ]
  check "the metrics thread follows the broker found later" \
    grep -q '^evrun_jobs_finished_total{.*status="succeeded"} 1' \
    <(curl -s "${url%/api/v1}/metrics")
  check "the same gateway process throughout" kill -0 "$gw_pid"
  check "logged once: the broker answers at its ipc:// socket" \
    [ "$(grep -c "the broker answers at ipc://$tmp/bus/clients" "$gw_log")" = 1 ]
  check "--help says it finds the broker later" bash -c "'$bin/evrun-gateway' --help | grep -q 'tries again'"
}

case_back() {
  fresh back
  bus_broker && bus_runner gw-1 "" 1 && bus_wait_runners 1 && gateway
  ticks back 50 0.2
  check "submit: 201" [ "$(api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$tmp/back.yml")" = 201 ]
  local id last
  id=$(jget 'd["id"]')
  curl -s -N --max-time 60 -H "Authorization: Bearer $R" -H 'Accept: text/event-stream' \
    "$url/jobs/$id/log" > "$tmp/sse1" &
  local follower=$!
  for _ in $(seq 1 100); do grep -q 'tick 3' "$tmp/sse1" && break; sleep 0.1; done
  stop_broker
  wait "$follower"
  check "the live log ends by itself with the broker gone" [ $? -eq 0 ]
  check "... with event: error saying the gateway tries again" \
    bash -c "tail -3 '$tmp/sse1' | grep -q '^event: error' && tail -3 '$tmp/sse1' | grep -q 'tries again by itself'"
  down_503
  bus_broker
  check "served once the broker is back, within 8 s" served_within 8
  sse_events "$tmp/sse1" > "$tmp/ev1"
  last=$(tail -1 "$tmp/ev1" | cut -d' ' -f1)
  curl -s -N --max-time 60 -H "Authorization: Bearer $R" -H 'Accept: text/event-stream' \
    -H "Last-Event-ID: $last" "$url/jobs/$id/log" > "$tmp/sse2"
  sse_events "$tmp/sse2" > "$tmp/ev2"
  check "resumed: to job.finished" [ "$(tail -1 "$tmp/ev2" | cut -d' ' -f2)" = job.finished ]
  cat "$tmp/ev1" "$tmp/ev2" > "$tmp/ev"
  local n
  n=$(tail -1 "$tmp/ev" | cut -d' ' -f1)
  check "ids 1..$n, each once, in order" [ "$(cut -d' ' -f1 "$tmp/ev" | tr '\n' ' ')" = "$(seq 1 "$n" | tr '\n' ' ')" ]
  python3 -c 'import json,sys; print("".join(json.loads(l.split(" ",2)[2]) for l in open(sys.argv[1])), end="")' "$tmp/ev" > "$tmp/out"
  check "every line once, in order" exactly_once "$tmp/out" 50
  check "the job succeeds" [ "$(api_wait "$id")" = succeeded ]
  check "the same gateway process throughout" kill -0 "$gw_pid"
  check "logged: the broker stopped answering, then answers again" \
    bash -c "grep -q 'the broker stopped answering\|no broker answers' '$gw_log' && grep -q 'answers at ipc://$tmp/bus/clients: serving requests again' '$gw_log'"
}

# parallel_503 N LABEL: N parallel GET /runners, each 503 within 3 s
parallel_503() {
  local i pids=()
  for i in $(seq 1 "$1"); do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 30 \
      -H "Authorization: Bearer $W" "$url/runners" > "$tmp/par$i" &
    pids+=($!)
  done
  wait "${pids[@]}"
  cat "$tmp"/par[0-9]* | sed 's/^/  /'
  check "$2: each of $1 parallel requests 503" [ "$(cut -d' ' -f1 "$tmp"/par[0-9]* | sort -u)" = 503 ]
  check "$2: each within 3 s (timeout_ms is 10000)" \
    python3 -c 'import sys; sys.exit(any(float(l.split()[1]) >= 3 for f in sys.argv[1:] for l in open(f)))' "$tmp"/par[0-9]*
  rm -f "$tmp"/par[0-9]*
}

case_killed() {
  fresh killed
  printf 'timeout_ms: 10000\n' > "$tmp/gw.yml"
  bus_broker && gateway --config "$tmp/gw.yml"
  check "served: 200" served_within 8
  # 413 raised by the gateway's own send, before anything went out: a
  # start body of 4 MiB, the body limit, whose message is over the bus's
  # one (the job id it adds)
  local n0
  n0=$(grep -c 'the broker answers\|stopped answering\|no broker answers\|made anew' "$gw_log")
  python3 -c 'import json,sys; sys.stdout.write(json.dumps({"pipeline": "p", "args": {"A": "x" * (4194304 - 32)}}, separators=(",", ":")))' > "$tmp/big.json"
  check "a message over the limit: 413" [ "$(api POST /jobs -H 'Content-Type: application/json' --data-binary @"$tmp/big.json")" = 413 ]
  check "413 says too_large" [ "$(jget 'd["error"]["code"]')" = too_large ]
  jget 'd["error"]["message"]' | cut -c1-160 | sed 's/^/  /'
  sleep 1   # the watch would have connected again by now
  check "after 413: 200" [ "$(api GET /runners)" = 200 ]
  check "after 413: the connection kept (no new connection logged)" \
    [ "$(grep -c 'the broker answers\|stopped answering\|no broker answers\|made anew' "$gw_log")" = "$n0" ]
  kill -9 "$broker_pid"
  parallel_503 5 "killed, at once"
  check "503 says the connection dropped or no broker answers" [ "$(api GET /runners)" = 503 ] && \
    check "... and what to do" grep -q 'evrun-cli up' "$tmp/body"
  stop_broker
  bus_broker
  check "served once the broker is back, within 8 s" served_within 8
  # killed again, and requests at once (before the watch's own look)
  kill -9 "$broker_pid"
  local t0=$SECONDS
  check "a job's detail: 503" [ "$(api GET /jobs/01ARYZ6S41TSV4RRFFQ69G5FAV)" = 503 ]
  check "... within 3 s" [ $((SECONDS - t0)) -lt 3 ]
  parallel_503 5 "killed again"
  stop_broker
  bus_broker
  check "served again, within 8 s" served_within 8
  # a call waiting for its answer (the broker stopped, its connection up)
  # when the broker dies: answered soon after, not after timeout_ms
  kill -STOP "$broker_pid"
  curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $W" \
    "$url/runners" > "$tmp/waiting" &
  local waiting=$!
  sleep 1
  t0=$SECONDS
  kill -9 "$broker_pid"
  wait "$waiting"
  check "a call waiting when the broker died: 503" [ "$(cat "$tmp/waiting")" = 503 ]
  check "... within 3 s of its death" [ $((SECONDS - t0)) -lt 3 ]
  stop_broker
  bus_broker
  check "served after that, within 8 s" served_within 8
  check "the same gateway process throughout" kill -0 "$gw_pid"
}

exactly_once() {   # FILE N: lines "tick 1".."tick N" each once, in order
  local got want
  got=$(grep -o "tick [0-9]*$" "$1" | tr '\n' ' ')
  want=$(seq 1 "$2" | sed 's/^/tick /' | tr '\n' ' ')
  [ "$got" = "$want" ] || { echo "  want: $want" >&2; echo "  got:  $got" >&2; return 1; }
}

ticks() {   # NAME N PAUSE: a pipeline printing "tick 1".."tick N"
  cat > "$tmp/$1.yml" <<YML
pipeline: $1
image: localhost/evrun-busybox:latest
steps:
  - name: count
    run: for i in \$(seq 1 $2); do echo "tick \$i"; sleep $3; done
YML
}

bus_script_cases "later back killed" "$@"
bus_script_end

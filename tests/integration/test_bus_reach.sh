#!/usr/bin/env bash
# test_bus_reach.sh BIN_DIR SRC_DIR [CASE...]: what evrun-cli, evrun-tail
# and evrun-runner say when what they connect to is not what they need
# (no podman: a broker, fake ZeroMQ peers in python3, no job runs).
# ZeroMQ itself only waits then: each must end (or, a runner, log) within
# its timeout, naming the endpoint, what the handshake came to and the fix.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init reach

# fake EP MECH: a ZeroMQ ROUTER bound at EP speaking MECH (plain or
# curve) for 60 s, none of evrun's; its pid kept in bus_pids
fake() {
  /usr/bin/python3 -c 'import sys, time, zmq
s = zmq.Context().socket(zmq.ROUTER)
if sys.argv[2] == "curve":
    pub, sec = zmq.curve_keypair()
    s.curve_server = True; s.curve_secretkey = sec; s.curve_publickey = pub
s.bind(sys.argv[1])
print("bound", flush=True)
time.sleep(60)' "$1" "$2" > "$tmp/fake.$2" 2>&1 &
  bus_pids+=("$!")
  for _ in $(seq 1 100); do grep -q bound "$tmp/fake.$2" && return 0; sleep 0.05; done
  echo "fake: not bound after 5 s" >&2; return 1
}

# ends SECS OUT CMD...: runs CMD (stdout and stderr into OUT, a .log that
# bus_script_end checks for sanitizer reports) under a timeout of SECS;
# its status is CMD's (124 when it had to be ended)
ends() {
  local secs=$1 out=$2
  shift 2
  timeout "$secs" "$@" > "$out" 2>&1
}

# Plain ZeroMQ against CURVE, either way: ZeroMQ drops the handshake and
# would wait; the clients say which side wants what.
case_mechanism() {
  fresh mech
  local pep=tcp://127.0.0.1:$(free_port) cep=ipc://$tmp/curve.sock
  fake "$pep" plain
  fake "$cep" curve
  ends 20 "$tmp/c1.log" "$bin/evrun-cli" jobs --broker "$pep" --broker-key \
    'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7'
  check "CURVE to a plain socket: exit 2" [ $? -eq 2 ]
  check "... saying it speaks no CURVE" grep -q "the peer at $pep speaks no CURVE, as every tcp:// endpoint of an evrun broker does" "$tmp/c1.log"
  ends 20 "$tmp/c2.log" "$bin/evrun-cli" jobs --broker "$cep"
  check "plain to a CURVE socket: exit 2" [ $? -eq 2 ]
  check "... saying it wants CURVE and what to give" grep -q "the peer at $cep wants CURVE, which no ipc:// endpoint of an evrun broker carries: .* (--broker tcp://HOST:PORT) and its key (--broker-key" "$tmp/c2.log"
  ends 20 "$tmp/c3.log" "$bin/evrun-tail" --all --broker "$cep"
  check "evrun-tail too: exit 2" [ $? -eq 2 ]
  check "... saying so" grep -q "the peer at $cep wants CURVE" "$tmp/c3.log"
  ends 4 "$tmp/c4.log" "$bin/evrun-runner" --broker "$cep" --id m-1 --state-dir "$tmp/r-m" \
    --executors process
  check "a runner logs it (and keeps trying)" grep -q "warn: the peer at $cep wants CURVE, .* give --broker the broker's tcp:// runner endpoint and --broker-key" "$tmp/c4.log"
}

# A socket of the broker's that is not the one asked for: over ipc:// it
# closes the connection in its handshake (over tcp:// the CURVE handshake
# fails: test_bus_ops case_curve).
case_wrong_socket() {
  fresh sock
  bus_broker
  ends 20 "$tmp/w1.log" "$bin/evrun-cli" jobs --broker "ipc://$tmp/bus/events"
  check "evrun-cli at the events socket: exit 2" [ $? -eq 2 ]
  check "... saying it is not the client endpoint" grep -q "the socket at ipc://$tmp/bus/events closed the connection during its handshake: it is not the broker's client endpoint (its events one?)" "$tmp/w1.log"
  ends 4 "$tmp/w2.log" "$bin/evrun-runner" --broker "ipc://$tmp/bus/events" --id w-1 \
    --state-dir "$tmp/r-w" --executors process
  check "a runner at the events socket logs it" grep -q "warn: the socket at ipc://$tmp/bus/events closed the connection during its handshake: it is not the broker's runner endpoint" "$tmp/w2.log"
  : > "$tmp/plain"
  ends 20 "$tmp/w3.log" "$bin/evrun-cli" jobs --broker "ipc://$tmp/plain"
  check "a file given as the endpoint: exit 2" [ $? -eq 2 ]
  check "... named, and not to be removed" grep -q "ipc://$tmp/plain: $tmp/plain is a file, not a socket: no broker listens there: give the broker's client endpoint" "$tmp/w3.log"
  check "... and it is still there" [ -f "$tmp/plain" ]
}

# A follower's --events-endpoint that is no event stream: said within
# min(timeout_ms, 3 s), where it waited (evrun-tail --all forever).
case_events_endpoint() {
  fresh events
  bus_broker
  local ev
  ends 20 "$tmp/e1.log" "$bin/evrun-tail" --all --events-endpoint "ipc://$tmp/bus/nothing"
  check "evrun-tail, nothing at the events endpoint: exit 2" [ $? -eq 2 ]
  check "... naming it, why and the fix" grep -q "evrun-tail: no event stream at ipc://$tmp/bus/nothing ($tmp/bus/nothing: No such file or directory): no handshake within 3000 ms (the broker answers at ipc://$tmp/bus/clients): give --events-endpoint the broker's events endpoint" "$tmp/e1.log"
  ends 20 "$tmp/e2.log" "$bin/evrun-tail" --all --events-endpoint "ipc://$tmp/bus/clients"
  check "the client socket as the events endpoint: exit 2" [ $? -eq 2 ]
  check "... saying so" grep -q "the socket at ipc://$tmp/bus/clients closed the connection during its handshake: it is not the broker's events endpoint" "$tmp/e2.log"
  : > "$tmp/plain"
  ends 20 "$tmp/e3.log" "$bin/evrun-tail" --all --events-endpoint "ipc://$tmp/plain"
  check "a file as the events endpoint: exit 2" [ $? -eq 2 ]
  check "... saying so" grep -q "$tmp/plain is a file, not a socket: no broker listens there: give the broker's events endpoint" "$tmp/e3.log"
  local j
  j=$(submit "$src/examples/hello.yml")
  ends 20 "$tmp/e4.log" "$bin/evrun-cli" logs "$j" --follow --events-endpoint "ipc://$tmp/bus/nothing" \
    --timeout-ms 1000
  check "logs --follow of a queued job, no event stream: exit 2" [ $? -eq 2 ]
  check "... within timeout_ms" grep -q "no event stream at ipc://$tmp/bus/nothing .*no handshake within 1000 ms" "$tmp/e4.log"
  ends 3 "$tmp/e5.log" "$bin/evrun-tail" --all
  check "the right events endpoint: evrun-tail --all follows on" [ $? -eq 124 ]
  ev=tcp://127.0.0.1:$(free_port)
  ends 20 "$tmp/e6.log" "$bin/evrun-tail" --job "$j" --events-endpoint "$ev" \
    --broker-key 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7' --timeout-ms 2000
  check "nothing at a tcp:// events endpoint: exit 2" [ $? -eq 2 ]
  check "... saying so" grep -q "no event stream at $ev: no handshake within 2000 ms" "$tmp/e6.log"
}

# run --follow and start --follow whose event stream is wrong or
# unreachable: refused before the submit, exit 2, naming the endpoint,
# where it was set and the fix, with no job left that nobody follows
# (before: submitted, then exit 2; run again, a second job).
case_follow_first() {
  fresh ffirst
  mkdir -p "$tmp/pipelines" && cp "$src/examples/hello.yml" "$tmp/pipelines/"
  bus_broker
  ends 20 "$tmp/f1.log" "$bin/evrun-cli" run "$src/examples/hello.yml" --follow \
    --events-endpoint "ipc://$tmp/bus/nothing" --timeout-ms 1000
  check "run --follow, nothing at the events endpoint: exit 2" [ $? -eq 2 ]
  check "... naming it and why" grep -qF "evrun-cli run: no event stream at ipc://$tmp/bus/nothing ($tmp/bus/nothing: No such file or directory): no handshake within 1000 ms" "$tmp/f1.log"
  check "... saying nothing was submitted, where it was set and the fix" grep -qxF "evrun-cli run: nothing submitted: --follow prints the job's output from the broker's event stream, and events_endpoint = \"ipc://$tmp/bus/nothing\" (from flag) gave none: give --events-endpoint (or events_endpoint in the settings file) the broker's events endpoint and run this again, or run it without --follow" "$tmp/f1.log"
  check "... and no job submitted" [ "$(cli jobs --json | grep -c '"job":')" -eq 0 ]
  # the broker's client socket given as its events one, in a settings file
  printf 'events_endpoint: ipc://%s/bus/clients\n' "$tmp" > "$tmp/ev.yml"
  ends 20 "$tmp/f2.log" "$bin/evrun-cli" start hello --follow --config "$tmp/ev.yml"
  check "start --follow, the client socket as the events endpoint: exit 2" [ $? -eq 2 ]
  check "... saying so" grep -qF "the socket at ipc://$tmp/bus/clients closed the connection during its handshake: it is not the broker's events endpoint" "$tmp/f2.log"
  check "... where it was set" grep -qF "evrun-cli start: nothing submitted: --follow prints the job's output from the broker's event stream, and events_endpoint = \"ipc://$tmp/bus/clients\" (from file $tmp/ev.yml:1:18) gave none" "$tmp/f2.log"
  check "... and no job submitted" [ "$(cli jobs --json | grep -c '"job":')" -eq 0 ]
  # Ctrl-C while it waits for the handshake (a peer that takes the
  # connection and says nothing): stopped before the submit
  /usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
c, _ = s.accept()
print("accepted", flush=True)
time.sleep(60)' "$tmp/mute.port" > "$tmp/mute.out" 2>&1 &
  local mute=$! cpid
  bus_pids+=("$mute")
  for _ in $(seq 1 100); do [ -s "$tmp/mute.port" ] && break; sleep 0.05; done
  timeout 20 "$bin/evrun-cli" run "$src/examples/hello.yml" --follow --timeout-ms 20000 \
    --events-endpoint "tcp://127.0.0.1:$(cat "$tmp/mute.port")" \
    --broker-key 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7' > "$tmp/f5.log" 2>&1 &
  cpid=$!
  for _ in $(seq 1 200); do grep -q accepted "$tmp/mute.out" && break; sleep 0.05; done
  kill -INT "$cpid"
  wait "$cpid"
  check "Ctrl-C while it checks the event stream: exit 130" [ $? -eq 130 ]
  check "... saying nothing was submitted" grep -qxF "evrun-cli run: stopped; nothing submitted" "$tmp/f5.log"
  check "... and no job submitted" [ "$(cli jobs --json | grep -c '"job":')" -eq 0 ]
  # the right one: submitted and followed (no runner takes it: it follows on)
  ends 4 "$tmp/f3.log" "$bin/evrun-cli" run "$src/examples/hello.yml" --follow
  check "the right events endpoint: run --follow submits and follows on" [ $? -eq 124 ]
  check "... its job accepted" grep -q "^job [0-9A-Z]* accepted (pipeline hello)" "$tmp/f3.log"
  check "... one job submitted" [ "$(cli jobs --json | grep -c '"job":')" -eq 1 ]
  # a follow that fails after the submit (stdout full): the job is named,
  # with how to follow it, where its id went only to that stdout
  bus_runner ff-1 "" 1 --executors process && bus_wait_runners 1
  printf 'pipeline: ffp\nexecutor: process\nsteps:\n  - { name: s, run: "echo out" }\n' \
    > "$tmp/ffp.yml"
  timeout 20 "$bin/evrun-cli" run "$tmp/ffp.yml" --follow > /dev/full 2> "$tmp/f4.log"
  check "stdout full: exit 2" [ $? -eq 2 ]
  check "... saying so, the write's own error" grep -qxF "evrun-cli run: writing to stdout: No space left on device" "$tmp/f4.log"
  check "... and which job goes on, how to follow it" grep -q "^evrun-cli run: job [0-9A-Z]* was submitted and goes on (to follow it: evrun-cli logs --follow [0-9A-Z]*; to stop it: evrun-cli cancel [0-9A-Z]*)$" "$tmp/f4.log"
  timeout 20 "$bin/evrun-cli" run "$tmp/ffp.yml" --wait > /dev/full 2> "$tmp/f6.log"
  check "run --wait, stdout full: exit 2" [ $? -eq 2 ]
  check "... saying so" grep -qxF "evrun-cli run: writing to stdout: No space left on device" "$tmp/f6.log"
  check "... and which job goes on" grep -q "^evrun-cli run: job [0-9A-Z]* was submitted and goes on (its status: evrun-cli status " "$tmp/f6.log"
}

# A job no runner takes: a follower of it says once, 2 s after it starts,
# that the job is still queued (it said nothing and waited), and follows on.
case_queued() {
  fresh queued
  bus_broker
  local j
  j=$(submit "$src/examples/hello.yml" 2> /dev/null)
  ends 4 "$tmp/q1.log" "$bin/evrun-tail" --job "$j"
  check "evrun-tail --job of a queued job follows on" [ $? -eq 124 ]
  check "... saying it is queued" grep -qxF "evrun-tail: job $j is queued in the broker's queue: no output yet (following: its output comes once a runner runs it; \`evrun-cli status\` says why it waits)" "$tmp/q1.log"
  ends 4 "$tmp/q2.log" "$bin/evrun-cli" logs "$j" --follow
  check "logs --follow too" grep -qF "evrun-cli logs: job $j is queued in the broker's queue: no output yet (following:" "$tmp/q2.log"
  ends 4 "$tmp/q3.log" "$bin/evrun-cli" run "$src/examples/hello.yml" --follow
  check "run --follow (its job queued at first) does not say it" bash -c "! grep -q 'in the broker.s queue' '$tmp/q3.log'"
}

bus_script_cases "mechanism wrong_socket events_endpoint follow_first queued" "$@"
bus_script_end

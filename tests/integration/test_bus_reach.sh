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

bus_script_cases "mechanism wrong_socket events_endpoint queued" "$@"
bus_script_end

#!/usr/bin/env bash
# test_bus_ops.sh BIN_DIR SRC_DIR [CASE...]: running evrun, end to end
# (test_bus.sh's set-up: real evrun-broker and evrun-runner processes in
# a temporary directory, real podman from the "podman" fixture; each case
# a fresh state directory): tcp:// with CURVE keys, evrun-cli up and
# down, the state tree's checks, and what a user gets wrong on the
# command line.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init bop --podman

# jsl EXPR FILE: every line of FILE is JSON (L, the objects) and EXPR holds
jsl() {
  python3 -c 'import json, sys
L = [json.loads(x) for x in open(sys.argv[2]) if x.strip()]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$@"
}

# tcp:// endpoints use CURVE: the broker admits only the keys in its
# curve/runners/ and curve/clients/, each in its own role.
case_curve() {
  fresh curve
  local ep cep eep other=$tmp/other
  local try bp
  # three free ports, asked for one at a time: another test may take one
  # before the broker binds it (the broker then exits): new ports, again
  for try in 1 2 3; do
    ep=tcp://127.0.0.1:$(free_port) cep=tcp://127.0.0.1:$(free_port) eep=tcp://127.0.0.1:$(free_port)
    "$bin/evrun-broker" --state-dir "$tmp" --heartbeat-ms 200 --lease-ms 1500 --client-endpoint "$cep" \
      --runner-endpoint "$ep" --events-endpoint "$eep" >> "$tmp/broker.log" 2>&1 &
    bp=$!
    for _ in $(seq 1 600); do
      grep -q "serving clients" "$tmp/broker.log" && break
      kill -0 "$bp" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$bp" 2>/dev/null && break
    wait "$bp" 2>/dev/null
    echo "curve: the broker exited at its start (try $try), new ports:"; cat "$tmp/broker.log"
  done
  bus_pids+=("$bp")
  check "broker key made" [ -s "$tmp/curve/broker.cert" ]
  "$bin/evrun-runner" --broker "$ep" --id cv-1 --state-dir "$tmp/r-cv-1" > "$tmp/nokey.out" 2>&1
  check "a runner without the broker's key: exit 2" [ $? -eq 2 ]
  check "... saying which setting" grep -q "broker_key" "$tmp/nokey.out"
  "$bin/evrun-runner" --broker "$ep" --id cv-1 --state-dir "$tmp/r-cv-1" \
    --broker-key "$tmp/curve/broker.cert" --heartbeat-ms 200 --lease-ms 1500 \
    >> "$tmp/runner-cv-1.log" 2>&1 &
  bus_pids+=("$!")
  for _ in $(seq 1 50); do grep -q "refused a peer.*runner endpoint" "$tmp/broker.log" && break; sleep 0.1; done
  check "a runner key not admitted is refused" grep -q "refused a peer.*runner endpoint" "$tmp/broker.log"
  check "... and not listed" bash -c "! '$bin/evrun-cli' runners --broker '$cep' | grep -q cv-1"
  for _ in $(seq 1 50); do grep -q "refuses this runner's key" "$tmp/runner-cv-1.log" && break; sleep 0.1; done
  check "... the runner says so, naming its certificate" \
    grep -q "refuses this runner's key: admit it by copying $tmp/r-cv-1/curve/runner.cert" "$tmp/runner-cv-1.log"
  check "... and, making it, that another state directory's broker needs it copied" \
    grep -q "made the key pair $tmp/r-cv-1/curve/runner.cert: a broker with another state directory admits this runner" "$tmp/runner-cv-1.log"
  cp "$tmp/r-cv-1/curve/runner.cert" "$tmp/curve/runners/cv-1.cert"
  for _ in $(seq 1 100); do "$bin/evrun-cli" runners --broker "$cep" | grep -q "^cv-1 .*idle" && break; sleep 0.1; done
  check "admitted once its certificate is in curve/runners/" grep -q "^cv-1 .*idle" <("$bin/evrun-cli" runners --broker "$cep")
  # another admitted key cannot say hello under cv-1's id
  "$bin/evrun-runner" --broker "$ep" --id cv-1 --state-dir "$tmp/r-cv-2" \
    --broker-key "$tmp/curve/broker.cert" > "$tmp/cv2.first" 2>&1 &
  local p2=$!
  for _ in $(seq 1 50); do [ -s "$tmp/r-cv-2/curve/runner.cert" ] && break; sleep 0.1; done
  kill "$p2" 2>/dev/null; wait "$p2" 2>/dev/null
  cp "$tmp/r-cv-2/curve/runner.cert" "$tmp/curve/runners/cv-2.cert"
  timeout -k 10 30 "$bin/evrun-runner" --broker "$ep" --id cv-1 --state-dir "$tmp/r-cv-2" \
    --broker-key "$tmp/curve/broker.cert" > "$tmp/cv2.out" 2>&1
  check "an id taken by another key: the runner stops" [ $? -ne 0 ]
  check "... saying so" grep -q "belongs to another admitted key" "$tmp/cv2.out"
  check "... and cv-1 keeps its session" grep -q "^cv-1 .*idle" <("$bin/evrun-cli" runners --broker "$cep")
  # the events endpoint is not the client one's port + 2 here: given (a
  # follower told none waited for its handshake, and said so)
  "$bin/evrun-cli" run "$src/examples/hello.yml" --follow --broker "$cep" --events-endpoint "$eep" \
    > "$tmp/cv.run" 2>&1
  check "a job over tcp with CURVE" grep -qx "greet | hello, world" "$tmp/cv.run"
  local j
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/cv.run")
  timeout -k 10 20 "$bin/evrun-tail" --job "$j" --broker "$cep" --events-endpoint "$eep" > "$tmp/cv.tail" 2>&1
  check "evrun-tail over the CURVE event stream" grep -qx "$j/greet | hello, world" "$tmp/cv.tail"
  EVRUN_STATE_DIR=$other "$bin/evrun-cli" jobs --broker "$cep" --broker-key "$tmp/curve/broker.cert" \
    --timeout-ms 2000 > "$tmp/cv.other" 2>&1
  check "a client key not admitted: exit 2" [ $? -eq 2 ]
  check "... the message says how to admit it" grep -q "refuses this client's key: admit it by copying .* into the broker's curve/clients/" "$tmp/cv.other"
  "$bin/evrun-cli" jobs --broker "$cep" --broker-key "$tmp/r-cv-1/curve/runner.cert" \
    --timeout-ms 2000 > "$tmp/cv.wrongkey" 2>&1
  check "a wrong broker key: exit 2" [ $? -eq 2 ]
  check "... the message names broker_key" grep -q "broker_key" "$tmp/cv.wrongkey"
  EVRUN_STATE_DIR=$other "$bin/evrun-cli" jobs --broker "$cep" --broker-key "$tmp/curve/broker.cert" \
    --curve-cert "$tmp/r-cv-1/curve/runner.cert" --timeout-ms 2000 > /dev/null 2>&1
  check "a runner's key is no client's" [ $? -eq 2 ]
  cp "$other/curve/client.cert" "$tmp/curve/clients/other.cert"
  EVRUN_STATE_DIR=$other "$bin/evrun-cli" jobs --broker "$cep" --broker-key "$tmp/curve/broker.cert" \
    > "$tmp/cv.other2" 2>&1
  check "admitted once its certificate is in curve/clients/" grep -q "$j" "$tmp/cv.other2"
  # an admitted key at the wrong endpoint: the message names the endpoint too
  EVRUN_STATE_DIR=$other "$bin/evrun-cli" jobs --broker "$ep" --broker-key "$tmp/curve/broker.cert" \
    --timeout-ms 3000 > "$tmp/cv.atrunner" 2>&1
  check "a client at the runner endpoint: exit 2" [ $? -eq 2 ]
  check "... naming the endpoint" grep -q "if it is there already, $ep is not the broker's client endpoint but its runner one" "$tmp/cv.atrunner"
  EVRUN_STATE_DIR=$other "$bin/evrun-cli" jobs --broker "$eep" --broker-key "$tmp/curve/broker.cert" \
    --timeout-ms 3000 > "$tmp/cv.atevents" 2>&1
  check "a client at the events endpoint: exit 2" [ $? -eq 2 ]
  check "... naming the endpoint" grep -q "and $eep its client endpoint (not its events one)?" "$tmp/cv.atevents"
  timeout -k 10 5 "$bin/evrun-runner" --broker "$cep" --id cv-3 --state-dir "$tmp/r-cv-2" \
    --broker-key "$tmp/curve/broker.cert" > "$tmp/cv.atclient" 2>&1
  check "an admitted runner at the client endpoint names the endpoint" \
    grep -q "if it is there already, $cep is not the broker's runner endpoint but its client one" "$tmp/cv.atclient"
  timeout -k 10 5 "$bin/evrun-runner" --broker "$eep" --id cv-3 --state-dir "$tmp/r-cv-2" \
    --broker-key "$tmp/curve/broker.cert" > "$tmp/cv.atevents2" 2>&1
  check "... and at the events endpoint" grep -q "and $eep its runner endpoint (not its events one)?" "$tmp/cv.atevents2"
  check "the broker's key given as its 40 characters" "$bin/evrun-cli" jobs --broker "$cep" \
    --broker-key "$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$tmp/curve/broker.cert")" \
    --state-dir "$other"
}

case_up_down() {
  fresh updown
  local st=$tmp/s
  # settings a runner would refuse: refused before anything starts
  EVRUN_STATE_DIR=$st cli up --capacity 0 > "$tmp/up0" 2>&1
  check "up --capacity 0: exit 2" [ $? -eq 2 ]
  check "... saying the range" grep -q -- '--capacity "0": expected a whole number from 1 to 1024' "$tmp/up0"
  EVRUN_STATE_DIR=$st cli up --executors docker > "$tmp/up0" 2>&1
  check "up --executors docker: exit 2" [ $? -eq 2 ]
  check "... naming the executors there are" grep -q 'unknown executor "docker" (expected podman, process' "$tmp/up0"
  check "... and nothing started" [ ! -e "$st/bus" ]
  # the gateway on a port of its own (7780 may be another's: up exits 2 then)
  export EVRUN_HTTP_LISTEN=127.0.0.1:${EVR_TEST_GW_PORT:-$(free_port)}
  EVRUN_STATE_DIR=$st cli up --runners 2 > "$tmp/up1" 2>&1
  check "up: exit 0" [ $? -eq 0 ]
  if grep -q '^HTTP API: ' "$tmp/up1"; then
    local ui
    ui=$(sed -n 's/^web UI: \([^ ]*\).*/\1/p' "$tmp/up1")
    check "up: prints the web UI's URL" [ -n "$ui" ]
    check "up: the web UI's page is there" bash -c "curl -sf '$ui' | grep -q '<title>evrun</title>'"
  fi
  check "up: the service at EVRUN_PODMAN_URL answered its ping (none started)" \
    bash -c "! grep -q 'starting a podman service' '$tmp/up1'"
  check "evrun-cli loads no libcurl (its ping is a plain socket's)" \
    bash -c "! ldd '$bin/evrun-cli' | grep -q libcurl"
  local pids1 pids2
  pids1=$(cat "$st"/run/*.pid | sort | tr '\n' ' ')
  # a gateway that has logged a few hundred requests since (its start line
  # more than 64 KiB back): up again still finds its URL
  if grep -q '^HTTP API: ' "$tmp/up1"; then
    head -c 70000 /dev/zero | tr '\0' 'x' | fold -w 99 >> "$st/logs/gateway.log"
  fi
  EVRUN_STATE_DIR=$st cli up --runners 2 > "$tmp/up2" 2>&1
  check "up again: exit 0" [ $? -eq 0 ]
  if grep -q '^HTTP API: ' "$tmp/up1"; then
    check "up again: the gateway's URL, its log past 64 KiB" \
      [ "$(grep '^HTTP API: ' "$tmp/up2")" = "$(grep '^HTTP API: ' "$tmp/up1")" ]
  fi
  pids2=$(cat "$st"/run/*.pid | sort | tr '\n' ' ')
  check "up again: nothing new started" [ "$pids1" = "$pids2" ]
  EVRUN_STATE_DIR=$st cli run "$src/examples/hello.yml" --follow > "$tmp/uprun" 2>&1
  check "run on the up instance" grep -qx "greet | hello, world" "$tmp/uprun"
  EVRUN_STATE_DIR=$st cli down > "$tmp/down" 2>&1
  check "down: exit 0" [ $? -eq 0 ]
  local alive=0 p
  for p in $pids1; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
  check "down: every process stopped ($alive left)" [ "$alive" -eq 0 ]
  unset EVRUN_HTTP_LISTEN
  EVRUN_STATE_DIR=$st cli jobs > "$tmp/after" 2>&1
  check "after down: broker unreachable (exit 2)" [ $? -eq 2 ]
  # the sockets a broker leaves (down's, or a killed one's) are no broker: README's message
  check "after down: no broker runs at the state directory" \
    grep -q "no broker runs at the state directory $st (nothing listens at ipc://$st/bus/clients): start one with \`evrun-cli up\`" "$tmp/after"
}

# up's ping of podman: an answer other than a 200 status line (a 500, bytes
# that are not HTTP) is no service, so up goes on to start its own (here a
# helper that fails: up says so and exits 2).
case_up_ping() {
  fresh upping
  local a sp
  for a in 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n' 'SSH-2.0-x\r\n'; do
    rm -f "$tmp/p.sock"
    /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4)
while True:
    c, _ = s.accept(); c.recv(4096); c.sendall(sys.argv[2].encode()); c.close()
' "$tmp/p.sock" "$(printf "$a")" &
    sp=$!
    for _ in $(seq 1 50); do [ -S "$tmp/p.sock" ] && break; sleep 0.05; done
    EVRUN_STATE_DIR=$tmp/s EVRUN_PODMAN_URL=unix://$tmp/p.sock EVRUN_PODMAN_SERVICE=/bin/false \
      cli up --runners 1 > "$tmp/up" 2>&1
    check "up, podman answering '${a%%\\r*}': exit 2" [ $? -eq 2 ]
    check "up, podman answering '${a%%\\r*}': not a service, starts one" \
      grep -q "no podman service answers" "$tmp/up"
    kill "$sp"; wait "$sp" 2>/dev/null
  done
}

# `evrun-cli up --executors podman,process`: examples/process.yml through
# run --follow, on a runner labelled executor:process.
case_up_process() {
  fresh upproc
  local st=$tmp/s p alive=0
  EVRUN_STATE_DIR=$st cli up --executors podman,process --no-gateway > "$tmp/up" 2>&1
  check "up: exit 0" [ $? -eq 0 ]
  EVRUN_STATE_DIR=$st cli run "$src/examples/process.yml" -a WHO=up --follow > "$tmp/uprun" 2>&1
  check "run --follow: exit 0" [ $? -eq 0 ]
  check "host commands' output" grep -qx "build | hello, up, from Linux" "$tmp/uprun"
  check "the next step's" grep -qx "test | sum 15" "$tmp/uprun"
  check "the runner's label" grep -q "executor:process" <(EVRUN_STATE_DIR=$st cli runners)
  local pids
  pids=$(cat "$st"/run/*.pid)
  EVRUN_STATE_DIR=$st cli down > "$tmp/down" 2>&1
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
  check "down: every process stopped ($alive left)" [ "$alive" -eq 0 ]
}

# `evrun-cli up --executors process` needs no podman: with none answering
# and none to start, up succeeds and examples/process.yml runs.
case_up_process_only() {
  fresh upponly
  local st=$tmp/s p alive=0 pids
  EVRUN_PODMAN_URL=unix://$tmp/no-podman.sock EVRUN_PODMAN_SERVICE=$tmp/no-such-helper \
    EVRUN_STATE_DIR=$st cli up --executors process --no-gateway > "$tmp/up" 2>&1
  check "up: exit 0" [ $? -eq 0 ]
  check "up: no podman asked for" bash -c "! grep -qi 'podman' '$tmp/up'"
  check "up: says what runs" grep -q "^evrun is up: .*, 1 runner, executors process$" "$tmp/up"
  check "up: suggests a process pipeline" grep -q "^try: evrun-cli run examples/process.yml" "$tmp/up"
  EVRUN_STATE_DIR=$st cli run "$src/examples/process.yml" -a WHO=up --follow > "$tmp/uprun" 2>&1
  check "run --follow: exit 0" [ $? -eq 0 ]
  check "host commands' output" grep -qx "build | hello, up, from Linux" "$tmp/uprun"
  check "the runner offers process only" \
    grep -q '"labels":\["executor:process"\]' <(EVRUN_STATE_DIR=$st cli runners --json)
  pids=$(cat "$st"/run/*.pid 2>/dev/null)
  EVRUN_STATE_DIR=$st cli down > "$tmp/down" 2>&1
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
  check "down: every process stopped ($alive left)" [ "$alive" -eq 0 ]
}

# A state tree another user could change is refused, naming the path and
# the fix, and nothing is written through a link planted in it.  "Another
# user" is uid 65534 (chown works as root only; the rest runs as anyone).
# a runner's store keeps its --id: another --id on that state directory
# exits 2 before it connects (its jobs would be refused under that id);
# the same id, or none, is the runner again
case_runner_id_kept() {
  fresh rid
  bus_broker && bus_runner rk "" 1 --executors process && bus_wait_runners 1
  printf 'pipeline: rk\nexecutor: process\nsteps:\n  - {name: s, run: "true"}\n' > "$tmp/rk.yml"
  local j p q
  j=$(submit "$tmp/rk.yml")
  check "a job on rk (its log holds events)" [ "$(wait_job "$j")" = succeeded ]
  kill "$runner_pid_rk" && wait "$runner_pid_rk" 2>/dev/null
  timeout -k 10 20 "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id rother \
    --state-dir "$tmp/r-rk" > "$tmp/other.out" 2>&1
  check "another --id on rk's state directory: exit 2" [ $? -eq 2 ]
  check "... naming the runner whose log it holds, and what to do" \
    grep -q -- "--id rother: the state directory $tmp/r-rk holds the log of runner rk; .*start it with --id rk" "$tmp/other.out"
  check "... the broker never saw rother" sh -c "! '$bin/evrun-cli' runners | grep -q rother"
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --state-dir "$tmp/r-rk" --executors process \
    --heartbeat-ms 200 --lease-ms 1500 > "$tmp/noid.out" 2>&1 &
  p=$!
  bus_pids+=("$p")
  check "no --id: the kept one (rk) says hello again" \
    sh -c "for i in \$(seq 50); do '$bin/evrun-cli' runners | grep -q '^rk .*idle' && exit 0; sleep 0.1; done; exit 1"
  kill "$p" && wait "$p" 2>/dev/null
  # a runner that never logged an event takes another --id: none of it is another's
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/nobroker" --id fresh1 --state-dir "$tmp/r-new" \
    --executors process > "$tmp/new1.out" 2>&1 &
  q=$!
  sleep 1
  kill "$q" && wait "$q" 2>/dev/null
  timeout -k 10 3 "$bin/evrun-runner" --broker "ipc://$tmp/bus/nobroker" --id fresh2 \
    --state-dir "$tmp/r-new" --executors process > "$tmp/new2.out" 2>&1
  check "an empty log under another --id: not refused (runs until stopped)" [ $? -eq 124 ]
}

# timeout(1) sends its SIGTERM to the runner and again to its process
# group: one request, counted once (the runner waits for the broker as
# after any first signal; counted twice, it exited at once, while timeout
# still sent SIGCONTs, one of which could leave an ASan build's leak check
# at exit waiting for ever).  Another process's signal is a second one.
case_term_same_sender() {
  fresh tsame
  local p t0 t1
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/nobroker" --id tsame --state-dir "$tmp/r" \
    --executors process > "$tmp/tsame.log" 2>&1 &
  p=$!
  bus_pids+=("$p")
  for _ in $(seq 1 100); do grep -q "connecting to the broker" "$tmp/tsame.log" && break; sleep 0.05; done
  /usr/bin/python3 -c 'import os, signal, sys, time
p = int(sys.argv[1]); os.kill(p, signal.SIGTERM); time.sleep(0.05); os.kill(p, signal.SIGTERM)' "$p"
  sleep 1.5
  check "SIGTERM twice from one process, 50 ms apart: still waiting for the broker" kill -0 "$p"
  check "... stopping said once" [ "$(grep -c "stopping: no new jobs" "$tmp/tsame.log")" -eq 1 ]
  t0=$(date +%s%N)
  kill -TERM "$p"
  wait "$p"
  t1=$(date +%s%N)
  check "a SIGTERM from another process then: exits at once ($(( (t1 - t0) / 1000000 )) ms)" \
    [ $(( (t1 - t0) / 1000000 )) -lt 2500 ]
  check "... said stopped" grep -q "tsame: stopped" "$tmp/tsame.log"
  # under timeout(1), as test cases run it: exits 5 s after (124), well before -k's SIGKILL
  timeout -k 10 2 "$bin/evrun-runner" --broker "ipc://$tmp/bus/nobroker" --id tsame \
    --state-dir "$tmp/r" --executors process >> "$tmp/tsame.log" 2>&1
  check "timeout's SIGTERM: exit 124 (not killed by -k's SIGKILL)" [ $? -eq 124 ]
  check "... after waiting for the broker" \
    grep -q "tsame: warn: the broker has not acknowledged the whole log" "$tmp/tsame.log"
}

# An offloaded child that never ends (the test hook: as one stuck at a
# lock another thread held as the runner forked): SIGTERM still ends the
# runner within its wait for the broker (5 s), which kills the child and
# says what it gave up waiting for.
case_stop_offload_hang() {
  fresh ohang
  local p kid t0 t1
  mkdir -p "$tmp/r/work/.rm-old/sub"   # what an earlier run left: the start's sweep
  : > "$tmp/hang"
  EVR_TEST_OFFLOAD_HANG=$tmp/hang "$bin/evrun-runner" --broker "ipc://$tmp/bus/nobroker" \
    --id ohang --state-dir "$tmp/r" --executors process > "$tmp/ohang.log" 2>&1 &
  p=$!
  bus_pids+=("$p")
  for _ in $(seq 1 100); do
    kid=$(cat /proc/"$p"/task/*/children 2>/dev/null | tr -s ' ' '\n' | grep . | head -n 1)
    [ -n "$kid" ] && grep -q "connecting to the broker" "$tmp/ohang.log" && break
    sleep 0.05
  done
  check "the sweep's child runs (hung)" [ -n "$kid" ]
  t0=$(date +%s%N)
  kill -TERM "$p"
  wait "$p"
  check "SIGTERM: exit 0" [ $? -eq 0 ]
  t1=$(date +%s%N)
  check "... within its 5 s wait for the broker ($(( (t1 - t0) / 1000000 )) ms)" \
    [ $(( (t1 - t0) / 1000000 )) -lt 8000 ]
  check "... saying what it gave up waiting for" grep -q "ohang: warn: exiting: gave up waiting for the child process $kid (process executor: removing what an earlier run left in $tmp/r (1 directories, $tmp/r/work/.rm-sweep-.* first), running for [0-9]* ms): killed; what it did not finish is done again at the next start" "$tmp/ohang.log"
  for _ in $(seq 1 50); do [ -e "/proc/$kid" ] || break; sleep 0.1; done
  check "... the child is gone" [ ! -e "/proc/$kid" ]
  rm "$tmp/hang"
  timeout -k 10 2 "$bin/evrun-runner" --broker "ipc://$tmp/bus/nobroker" --id ohang \
    --state-dir "$tmp/r" --executors process >> "$tmp/ohang.log" 2>&1
  check "the next start sweeps it" bash -c "[ -z \"\$(ls -A '$tmp/r/work')\" ]"
  # --exec: every child hung (the job's workspace removal too, cut by its
  # time limit, made short): the job's end gives them 5 s, then kills and
  # names them; the job's status is the exit's
  mkdir -p "$tmp/x/work/.rm-old"
  : > "$tmp/hang"
  printf 'pipeline: oh\nexecutor: process\nsteps:\n  - {name: s, run: "true"}\n' > "$tmp/oh.yml"
  t0=$(date +%s%N)
  EVR_TEST_OFFLOAD_HANG=$tmp/hang EVR_TEST_RM_LIMIT_MS=1500 timeout -k 10 60 \
    "$bin/evrun-runner" --exec "$tmp/oh.yml" --state-dir "$tmp/x" --executors process \
    > "$tmp/ohx.out" 2> "$tmp/ohx.err"
  check "--exec, its children hung: exit 0 (the job succeeded)" [ $? -eq 0 ]
  t1=$(( ($(date +%s%N) - t0) / 1000000 ))
  check "... after giving them 5 s ($t1 ms)" [ "$t1" -ge 5000 -a "$t1" -lt 30000 ]
  check "... then naming them on stderr" grep -q "evrun-runner: warn: exiting: gave up waiting for the child process [0-9]* (process executor: removing what an earlier run left in $tmp/x " "$tmp/ohx.err"
  # without the short limit the removal would hold the end 5 minutes: a
  # second SIGINT gives it 5 s more, then the runner exits, saying so
  EVR_TEST_OFFLOAD_HANG=$tmp/hang "$bin/evrun-runner" --exec "$tmp/oh.yml" --state-dir "$tmp/y" \
    --executors process > "$tmp/ohy.out" 2> "$tmp/ohy.err" &
  p=$!
  bus_pids+=("$p")
  for _ in $(seq 1 100); do grep -q "succeeded$" "$tmp/ohy.out" && break; sleep 0.05; done
  sleep 0.5
  kill -INT "$p"
  sleep 1.2   # (within a second, the same sender's signal is the same request)
  t0=$(date +%s%N)
  kill -INT "$p"
  wait "$p"
  t1=$(( ($(date +%s%N) - t0) / 1000000 ))
  check "--exec, its cleanup hung, SIGINT twice: exits within 5 s and a bit ($t1 ms)" \
    [ "$t1" -lt 9000 ]
  check "... saying what it gave up" grep -q "^evrun-runner: interrupted twice: gave up waiting 5 s for 0 running and 1 ending jobs (their cleanup); evrun-runner --recover --state-dir $tmp/y takes them up$" "$tmp/ohy.err"
  rm "$tmp/hang"
}

case_state_refused() {
  fresh refused
  local st=$tmp/s victim=$tmp/victim
  mkdir -p "$st/run" "$st/logs" "$st/bus"
  chmod 0777 "$st/run"
  echo "not evrun's" > "$victim"
  ln -s "$victim" "$st/run/broker.pid"
  ln -s "$victim" "$st/logs/broker.log"
  EVRUN_STATE_DIR=$st cli up > "$tmp/up1" 2>&1
  check "other-writable run/: up refuses (exit 2)" [ $? -eq 2 ]
  check "names run/ and the fix" grep -q "$st/run: writable by others (mode 0777).*chmod go-w $st/run" "$tmp/up1"
  check "nothing written through the links" [ "$(cat "$victim")" = "not evrun's" ]
  check "nothing started" [ ! -e "$st/run/broker.pid.new" ]
  check "nothing started (said)" bash -c "! grep -q started $tmp/up1"
  chmod 0700 "$st/run"
  EVRUN_STATE_DIR=$st cli up > "$tmp/up2" 2>&1
  check "a link at run/broker.pid: refused (exit 2)" [ $? -eq 2 ]
  check "names the link" grep -q "$st/run/broker.pid: a symbolic link" "$tmp/up2"
  check "still nothing written through the links" [ "$(cat "$victim")" = "not evrun's" ]
  EVRUN_STATE_DIR=$st cli down > "$tmp/down1" 2>&1
  check "down refuses the link too (exit 2)" [ $? -eq 2 ]
  rm "$st/run/broker.pid"
  rm -r "$st/logs" && ln -s "$tmp" "$st/logs"
  EVRUN_STATE_DIR=$st cli up > "$tmp/up3" 2>&1
  check "logs/ a link: refused" grep -q "$st/logs: a symbolic link" "$tmp/up3"
  rm "$st/logs"
  # a socket something listens on (one nothing listens on is no broker: not used)
  python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(60)' "$st/bus/clients" &
  local lp=$!
  for _ in $(seq 1 50); do [ -S "$st/bus/clients" ] && break; sleep 0.05; done
  chmod 0770 "$st/bus"
  EVRUN_STATE_DIR=$st cli jobs > "$tmp/jobs" 2>&1
  check "a client refuses a group-writable bus/ (exit 2)" [ $? -eq 2 ]
  check "names bus/ and the fix" grep -q "$st/bus: writable by its group (mode 0770).*chmod go-w $st/bus" "$tmp/jobs"
  chmod 0700 "$st/bus"
  if [ "$(id -u)" = 0 ]; then
    chown 65534 "$st/bus"
    EVRUN_STATE_DIR=$st cli up > "$tmp/up4" 2>&1
    check "bus/ of uid 65534: up refuses (exit 2)" [ $? -eq 2 ]
    check "names the owner and the fix" grep -q "$st/bus: owned by uid 65534, not by you (uid 0).*chown -R 0 $st/bus" "$tmp/up4"
    chown 0 "$st/bus"
    chown 65534 "$st/bus/clients"
    EVRUN_STATE_DIR=$st cli jobs > "$tmp/jobs2" 2>&1
    check "a socket of uid 65534 in bus/: the client refuses it" grep -q "$st/bus/clients: a socket of uid 65534" "$tmp/jobs2"
  fi
  kill "$lp"; wait "$lp" 2>/dev/null
  rm -f "$st/bus/clients"
  mkdir -p "$st/broker" "$st/runners/1" && chmod 0777 "$st/broker" "$st/runners/1"
  timeout -k 10 20 "$bin/evrun-broker" --local --state-dir "$st" > "$tmp/broker.out" 2>&1
  check "the broker refuses an other-writable broker/ (exit 2)" [ $? -eq 2 ]
  check "the broker names it" grep -q "$st/broker: writable by others" "$tmp/broker.out"
  "$bin/evrun-runner" --exec "$src/examples/hello.yml" --state-dir "$st/runners/1" > "$tmp/runner.out" 2>&1
  check "the runner refuses an other-writable state dir (exit 2)" [ $? -eq 2 ]
  check "the runner names it" grep -q "$st/runners/1: writable by others" "$tmp/runner.out"
  # a directory above the state directory, or a socket's own directory, shared
  mkdir -m 0777 "$tmp/shared" && chmod 0777 "$tmp/shared"
  EVRUN_STATE_DIR=$tmp/shared/st cli up > "$tmp/up5" 2>&1
  check "state dir under a 0777 directory: up refuses (exit 2)" [ $? -eq 2 ]
  check "names the directory above and the fix" grep -q "$tmp/shared: writable by others (mode 0777) and not sticky.*chmod go-w $tmp/shared" "$tmp/up5"
  check "nothing made under it" [ ! -e "$tmp/shared/st" ]
  "$src/tools/podman-service" stop "$tmp/shared/pm/x" > "$tmp/pms" 2>&1
  check "podman-service under a 0777 directory: refused (exit 2)" [ $? -eq 2 ]
  check "podman-service names it" grep -q "$tmp/shared: writable by group or others (mode 777) and not sticky" "$tmp/pms"
  check "podman-service made nothing under it" [ ! -e "$tmp/shared/pm" ]
  python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$tmp/shared/x.sock"
  chmod 1777 "$tmp/shared"
  cli jobs --broker "ipc://$tmp/shared/x.sock" > "$tmp/jobs3" 2>&1
  check "a socket in a sticky shared directory: refused (exit 2)" [ $? -eq 2 ]
  check "says to use a private directory" grep -q "$tmp/shared: writable by others (mode 1777): the directory of the socket.*STATE/bus" "$tmp/jobs3"
  check "the victim file is as it was" [ "$(cat "$victim")" = "not evrun's" ]
  rm -f "$st/run/"*.pid "$st/logs/"*.log
  EVRUN_STATE_DIR=$st cli down > /dev/null 2>&1
}

# up on a home without ~/.local/state makes the tree (0700) and comes up;
# a broker that fails at once is reported at once, with its log's end.
case_up_fresh_home() {
  fresh freshhome
  local home=$tmp/h st=$tmp/h/.local/state/evrun d bad=
  mkdir -p "$home"
  env -u EVRUN_STATE_DIR -u XDG_STATE_HOME HOME="$home" "$bin/evrun-cli" up --no-gateway > "$tmp/up" 2>&1
  check "up on a fresh home: exit 0" [ $? -eq 0 ]
  for d in "$home/.local" "$home/.local/state" "$st" "$st/run" "$st/logs" "$st/bus" "$st/runners/1"; do
    [ "$(stat -c %a "$d" 2>/dev/null)" = 700 ] || bad="$bad $d"
  done
  check "the tree is 0700 (not:$bad)" [ -z "$bad" ]
  env -u EVRUN_STATE_DIR -u XDG_STATE_HOME HOME="$home" "$bin/evrun-cli" down > "$tmp/down" 2>&1
  check "down: exit 0" [ $? -eq 0 ]
  check "down stopped the broker" grep -q "broker stopped" "$tmp/down"
  # a broker whose store cannot open exits at once: up says so at once
  rm -rf "$st/broker" && mkdir -m 0700 "$st/broker"
  echo "not an lmdb file" > "$st/broker/data.mdb"
  env -u EVRUN_STATE_DIR -u XDG_STATE_HOME HOME="$home" "$bin/evrun-cli" up --no-gateway > "$tmp/up2" 2>&1
  check "broker failing: up exits 2" [ $? -eq 2 ]
  check "names the broker's exit and shows its log" grep -q "broker (pid [0-9]*) exited with status 2; the end of $st/logs/broker.log" "$tmp/up2"
  check "the log's end is shown" grep -q "^  evrun-broker: .*$st/broker" "$tmp/up2"
  env -u EVRUN_STATE_DIR -u XDG_STATE_HOME HOME="$home" "$bin/evrun-cli" down > /dev/null 2>&1
}

# `evrun-cli up --executors process`, no podman: --json output is JSON
# lines only (up, run --wait/--follow, down), its end the job's status; a
# runner killed and brought back by up alone keeps its executors; a queued
# job no runner can take says so in status; Ctrl-C of --follow exits 130;
# a killed broker's socket is no broker; a gateway whose port is taken
# fails up (exit 2), naming the way out.
case_up_json() {
  fresh upjson
  local st=$tmp/s j port=${EVR_TEST_GW_PORT:-$(free_port)} fp rp bp
  local -a noprox=(env EVRUN_PODMAN_URL=unix://$tmp/no-podman.sock EVRUN_PODMAN_SERVICE=$tmp/none)
  "${noprox[@]}" EVRUN_STATE_DIR=$st "$bin/evrun-cli" up --executors process --no-gateway --json \
    > "$tmp/up.json" 2> "$tmp/up.err"
  check "up --json: exit 0" [ $? -eq 0 ]
  check "up --json: stdout is one JSON object" jsl "len(L) == 1" "$tmp/up.json"
  check "up --json: its executors and broker" \
    jsl "L[0]['executors'] == 'process' and L[0]['broker'] == 'ipc://$st/bus/clients' and L[0]['gateway'] is None" "$tmp/up.json"
  check "up --json: the text on stderr" grep -q "^evrun is up" "$tmp/up.err"
  pipeline silent <<'YML'
pipeline: silent
executor: process
steps:
  - { name: a, run: "true" }
  - { name: b, needs: [a], run: exit 4 }
YML
  EVRUN_STATE_DIR=$st cli run "$tmp/silent.yml" --wait --json > "$tmp/w.json" 2> "$tmp/w.err"
  check "run --wait --json of a failing job: exit 1" [ $? -eq 1 ]
  check "run --wait --json: JSON lines only" jsl "len(L) == 2" "$tmp/w.json"
  check "run --wait --json: the end is the job's status and reason" \
    jsl "L[-1]['status'] == 'failed' and 'step b failed (exit 4)' in L[-1]['reason']" "$tmp/w.json"
  EVRUN_STATE_DIR=$st cli run "$tmp/silent.yml" --follow --json > "$tmp/f.json" 2> "$tmp/f.err"
  check "run --follow --json: exit 1" [ $? -eq 1 ]
  check "run --follow --json: JSON lines, the end the job's status" \
    jsl "L[0]['job'] and L[-1]['status'] == 'failed' and L[-1]['job'] == L[0]['job']" "$tmp/f.json"
  # Ctrl-C of --follow: its own exit status, the job goes on
  pipeline long <<'YML'
pipeline: long
executor: process
steps:
  - { name: a, run: "echo started; sleep 30" }
YML
  EVRUN_STATE_DIR=$st "$bin/evrun-cli" run "$tmp/long.yml" --follow > "$tmp/l.out" 2> "$tmp/l.err" &
  fp=$!
  for _ in $(seq 1 100); do grep -q "started" "$tmp/l.out" && break; sleep 0.1; done
  kill -INT "$fp"; wait "$fp"
  check "run --follow interrupted: exit 130" [ $? -eq 130 ]
  check "... the job goes on" grep -q "stopped following; job [0-9A-Z]* goes on" "$tmp/l.err"
  EVRUN_STATE_DIR=$st cli cancel "$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/l.out")" > /dev/null
  EVRUN_STATE_DIR=$st "$bin/evrun-cli" run "$tmp/long.yml" --wait > "$tmp/lw.out" 2> "$tmp/lw.err" &
  fp=$!
  # at once: the runners are still being asked (a Ctrl-C then was lost)
  for _ in $(seq 1 1000); do grep -q "accepted" "$tmp/lw.out" && break; sleep 0.01; done
  kill -INT "$fp"; wait "$fp"
  check "run --wait interrupted: exit 130" [ $? -eq 130 ]
  check "... the job goes on" grep -q "stopped waiting; job [0-9A-Z]* goes on" "$tmp/lw.err"
  EVRUN_STATE_DIR=$st cli cancel "$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/lw.out")" > /dev/null
  # the runner killed, brought back by up alone: as the first up started it.
  # up once its process is gone (or a zombie), not only no longer listed
  # idle: up keeps a runner whose process still runs (one shutting down
  # after its goodbye), then waits in vain for the broker to list it
  rp=$(cat "$st/run/runner-1.pid")
  kill "$rp"
  for _ in $(seq 1 100); do
    [ -d "/proc/$rp" ] && ! grep -q '^State:.*Z' "/proc/$rp/status" 2>/dev/null || break
    sleep 0.1
  done
  for _ in $(seq 1 100); do EVRUN_STATE_DIR=$st cli runners | grep -q "^runner-1 .*idle" || break; sleep 0.1; done
  "${noprox[@]}" EVRUN_STATE_DIR=$st "$bin/evrun-cli" up --no-gateway > "$tmp/up2" 2>&1
  check "up again: exit 0 (no podman asked for)" [ $? -eq 0 ] || cat "$tmp/up2"
  check "up again: says it keeps the last up's settings" grep -q "^as the last up ($st/run/up.settings): --executors process" "$tmp/up2"
  check "up again: the runner offers process again" \
    grep -q '"labels":\["executor:process"\]' <(EVRUN_STATE_DIR=$st cli runners --json)
  # a queued job whose labels no runner has: status says which
  j=$(EVRUN_STATE_DIR=$st cli submit "$tmp/silent.yml" --label gpu 2> /dev/null)
  EVRUN_STATE_DIR=$st cli status "$j" > "$tmp/st" 2>&1
  check "status of a job no runner can take: says which labels" \
    grep -q "^waiting   no connected runner has the labels gpu, executor:process (see evrun-cli runners)$" "$tmp/st"
  check "status --json: JSON only" jsl "len(L) == 1 and L[0]['status'] == 'queued'" <(EVRUN_STATE_DIR=$st cli status "$j" --json)
  EVRUN_STATE_DIR=$st cli cancel "$j" > /dev/null
  # a gateway that cannot listen: up exits 2, naming the way out
  python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(60)' "$port" &
  fp=$!
  wait_port "$port"
  EVRUN_HTTP_LISTEN=127.0.0.1:$port EVRUN_STATE_DIR=$st cli up > "$tmp/up3" 2>&1
  check "up, the gateway's port taken: exit 2" [ $? -eq 2 ]
  check "... the gateway's log shown" grep -q "cannot listen on 127.0.0.1:$port" "$tmp/up3"
  check "... the way out named" grep -q "EVRUN_HTTP_LISTEN=127.0.0.1:PORT .*--no-gateway" "$tmp/up3"
  kill "$fp"; wait "$fp" 2>/dev/null
  # a killed broker leaves its socket: no broker, as README says.  Asked
  # once it is gone (or a zombie: its files closed), not after a fixed
  # pause: a socket still open in a process being torn down takes the
  # connection, and the client waits for an answer that never comes
  bp=$(cat "$st/run/broker.pid")
  kill -9 "$bp"
  for _ in $(seq 1 600); do   # 30 s: a loaded machine tears a process down slowly
    [ -d "/proc/$bp" ] && ! grep -q '^State:.*Z' "/proc/$bp/status" 2>/dev/null || break
    sleep 0.05
  done
  EVRUN_STATE_DIR=$st cli jobs > "$tmp/k" 2>&1
  check "a killed broker's socket: no broker runs at the state directory" \
    grep -q "no broker runs at the state directory $st" "$tmp/k" \
    || sed 's/^/  evrun-cli jobs said: /' "$tmp/k"
  # ... and the gateway, choosing the endpoint as the clients do, says the same
  local gw tok
  tok=$(EVRUN_STATE_DIR=$st cli token)
  EVRUN_STATE_DIR=$st "$bin/evrun-gateway" --listen "127.0.0.1:$port" > "$tmp/gw.log" 2>&1 &
  gw=$!
  wait_port "$port" "$gw"
  curl -s -w ' %{http_code}' -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/api/v1/jobs" > "$tmp/gw.out"
  kill "$gw"; wait "$gw" 2>/dev/null
  check "a killed broker's socket, gateway: 503" grep -q "^ 503$" "$tmp/gw.out"
  check "... no broker runs at the state directory" \
    grep -q "no broker runs at the state directory $st .*evrun-cli up" "$tmp/gw.out"
  EVRUN_STATE_DIR=$st cli down --json > "$tmp/down.json" 2> "$tmp/down.err"
  check "down --json: one object, what stopped" jsl "'runner-1' in L[0]['stopped']" "$tmp/down.json"
  check "down: forgets the settings" [ ! -e "$st/run/up.settings" ]
}

# Ctrl-C of `run --wait` while evrun-cli waits for an answer (held back
# by stall_broker.py, a stand-in broker): exit 130, "stopped waiting",
# whichever answer it was.  The runners asked after the submit: the cut
# short ask left that answer on its way, and the wait read it as its
# status's (exit 1); the wait's own status: a signal cuts the wait for
# the answer short, which was said as "no answer from the broker" (exit
# 2).  up_json's Ctrl-C hit either now and then.
case_wait_signal() {
  fresh waitsig
  local fk=$tmp/fake what fp p
  pipeline stall <<'YML'
pipeline: stall
executor: process
steps:
  - { name: a, run: "true" }
YML
  for what in runners status; do
    rm -rf "$fk" && mkdir -p "$fk" && touch "$fk/stall-$what"
    /usr/bin/python3 "$src/tests/integration/stall_broker.py" "ipc://$fk/c" "$fk" \
      > "$tmp/stall-$what.log" 2>&1 &
    fp=$!
    for _ in $(seq 1 200); do [ -S "$fk/c" ] && break; sleep 0.05; done
    "$bin/evrun-cli" run "$tmp/stall.yml" --wait --broker "ipc://$fk/c" \
      > "$tmp/ws-$what.out" 2> "$tmp/ws-$what.err" &
    p=$!
    for _ in $(seq 1 200); do [ -e "$fk/asked-$what" ] && break; sleep 0.05; done
    check "$what held back: asked" [ -e "$fk/asked-$what" ]
    kill -INT "$p"
    touch "$fk/go"
    wait "$p"
    check "$what held back, Ctrl-C: exit 130" [ $? -eq 130 ] || cat "$tmp/ws-$what.err" >&2
    check "... stopped waiting, the job goes on" \
      grep -q "stopped waiting; job [0-9A-Z]* goes on" "$tmp/ws-$what.err"
    touch "$fk/stop"
    wait "$fp"
  done
}

# What a user gets wrong on the command line, answered before (or
# without) a job: no podman needed, a broker alone.
case_cli_errors() {
  fresh clierr
  local none=$root/clierr-none/s c
  # no broker ever ran here and none was asked for: says so, suggests up
  for c in jobs "run $src/examples/hello.yml" "logs 01ARYZ6S41TSV4RRFFQ69G5FAV" \
           "cancel 01ARYZ6S41TSV4RRFFQ69G5FAV" runners; do
    # shellcheck disable=SC2086
    EVRUN_STATE_DIR=$none cli $c > "$tmp/nb" 2>&1
    check "no broker, $c: exit 2" [ $? -eq 2 ]
    check "no broker, $c: names the state dir and suggests up" \
      grep -q "no broker runs at the state directory $none (nothing listens at ipc://$none/bus/clients): start one with \`evrun-cli up\`, or reach a remote one with --broker tcp://HOST:PORT" "$tmp/nb"
  done
  EVRUN_STATE_DIR=$none "$bin/evrun-tail" --all > "$tmp/nb" 2>&1
  check "no broker, evrun-tail: suggests up" grep -q "no broker runs at the state directory $none" "$tmp/nb"
  local port gw tok
  port=$(free_port)
  tok=$(EVRUN_STATE_DIR=$none cli token)
  check "token --json: one object, the token" \
    jsl "len(L) == 1 and L[0]['token'].count('.') == 2" <(EVRUN_STATE_DIR=$none cli token --json)
  check "hook-token --json: one object" \
    jsl "len(L) == 1 and L[0]['pipeline'] == 'nightly' and len(L[0]['token']) > 20" \
    <(EVRUN_STATE_DIR=$none cli hook-token nightly --json)
  EVRUN_STATE_DIR=$none "$bin/evrun-gateway" --listen "127.0.0.1:$port" > "$tmp/gw.log" 2>&1 &
  gw=$!
  wait_port "$port"
  curl -s -w ' %{http_code}' -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/api/v1/jobs" > "$tmp/gw.out"
  kill "$gw"; wait "$gw" 2>/dev/null
  check "no broker, gateway: 503" grep -q "^ 503$" "$tmp/gw.out"
  check "no broker, gateway: suggests up" grep -q "no broker runs at the state directory $none .*evrun-cli up" "$tmp/gw.out"
  # asked for tcp:// (or given a key): the key is what is missing
  EVRUN_STATE_DIR=$none cli jobs --broker tcp://127.0.0.1:7700 > "$tmp/nb" 2>&1
  check "tcp:// asked: the missing cert named" grep -q "broker_key, --broker-key) $none/curve/broker.cert: no such file" "$tmp/nb"
  # options before the command, as docker and kubectl take them
  EVRUN_STATE_DIR=$none cli --broker tcp://127.0.0.1:7700 jobs > "$tmp/nb" 2>&1
  check "--broker before the command: taken by it" grep -q "broker_key, --broker-key) $none/curve/broker.cert: no such file" "$tmp/nb"
  cli --nosuch jobs > "$tmp/nb" 2>&1
  check "an option before the command: the command's refusal" grep -q "^evrun-cli jobs: unrecognized option '--nosuch'" "$tmp/nb"
  # getopt's errors are evrun-cli's own, each naming the command (one helper for all)
  local ge
  for ge in "artifacts --download|evrun-cli artifacts: unrecognized option '--download' (see --help)" \
            "status --st x|evrun-cli status: option '--st' is ambiguous: --state-dir, --status (see --help)" \
            "jobs --json=1|evrun-cli jobs: option '--json' takes no argument (see --help)" \
            "run x.yml --broker|evrun-cli run: option '--broker' requires an argument (see --help)" \
            "run -a|evrun-cli run: option '-a' requires an argument (see --help)" \
            "logs -x|evrun-cli logs: invalid option '-x' (see --help)" \
            "up --nosuch|evrun-cli up: unrecognized option '--nosuch' (see --help)" \
            "down --nosuch|evrun-cli down: unrecognized option '--nosuch' (see --help)" \
            "validate --nosuch|evrun-cli validate: unrecognized option '--nosuch' (see --help)" \
            "token --nosuch|evrun-cli token: unrecognized option '--nosuch' (see --help)" \
            "prune --nosuch|evrun-cli prune: unrecognized option '--nosuch' (see --help)" \
            "pipelines --nosuch|evrun-cli pipelines: unrecognized option '--nosuch' (see --help)" \
            "start --nosuch|evrun-cli start: unrecognized option '--nosuch' (see --help)" \
            "cancel --nosuch|evrun-cli cancel: unrecognized option '--nosuch' (see --help)" \
            "hook-token --nosuch|evrun-cli hook-token: unrecognized option '--nosuch' (see --help)"; do
    # shellcheck disable=SC2086
    EVRUN_STATE_DIR=$none cli ${ge%%|*} > "$tmp/ge" 2>&1
    check "${ge%%|*}: exit 2" [ $? -eq 2 ]
    check "${ge%%|*}: the command's own message" grep -qxF "${ge#*|}" "$tmp/ge"
  done
  # a near-miss named, and the usage line after an error, not the whole help
  EVRUN_STATE_DIR=$none cli run --folow x.yml > "$tmp/ge" 2>&1
  check "run --folow: did you mean" grep -qxF "evrun-cli run: unrecognized option '--folow'; did you mean --follow? (see --help)" "$tmp/ge"
  check "... then run's usage line and where the rest is" \
    bash -c "sed -n 2p '$tmp/ge' | grep -q '^usage: evrun-cli run FILE' && sed -n 3p '$tmp/ge' | grep -qxF '(evrun-cli run --help: every option)'"
  check "... three lines in all" [ "$(wc -l < "$tmp/ge")" -eq 3 ]
  # help COMMAND is the command's help; run --follow --wait refused
  check "help run: run's usage" bash -c "'$bin/evrun-cli' help run | head -1 | grep -q '^usage: evrun-cli run FILE'"
  check "--help run: run's usage" bash -c "'$bin/evrun-cli' --help run | head -1 | grep -q '^usage: evrun-cli run FILE'"
  cli help nosuch > "$tmp/bad" 2>&1
  check "help nosuch: exit 2" [ $? -eq 2 ]
  check "help nosuch: says so" grep -q '^evrun-cli help: unknown command "nosuch"' "$tmp/bad"
  cli run "$src/examples/hello.yml" --follow --wait > "$tmp/bad" 2>&1
  check "run --follow --wait: exit 2" [ $? -eq 2 ]
  check "run --follow --wait: refused, saying why" grep -q -- "--follow or --wait, not both" "$tmp/bad"
  # a state dir a client command makes (its key pair): 0700 with its parents
  EVRUN_STATE_DIR=$tmp/mk/a/b cli jobs --broker-key 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7' \
    --timeout-ms 300 > /dev/null 2>&1
  check "client-made state dir and parents 0700" \
    [ "$(stat -c %a "$tmp/mk" "$tmp/mk/a" "$tmp/mk/a/b" "$tmp/mk/a/b/curve" | tr '\n' ' ')" = "700 700 700 700 " ]
  # bad numbers: usage errors naming the option, the value and the range
  : > "$tmp/ce.yml"
  local a
  for a in "jobs --limit abc" "jobs --limit 0" "jobs --limit 20000" "up --runners 2x" \
           "jobs --timeout-ms abc" "jobs --timeout-ms 0" "jobs --timeout-ms 5 --print-config --timeout-ms x"; do
    # (a state dir under a file: an `up` that took the number starts nothing)
    # shellcheck disable=SC2086
    EVRUN_STATE_DIR=$tmp/ce.yml/s cli $a > "$tmp/bad" 2>&1
    check "$a: exit 2" [ $? -eq 2 ]
    check "$a: names the option and range" grep -Eq -- '(--limit "[0-9a-z]*": expected a whole number from 1 to 10000|--runners "2x": expected a whole number from 0 to 64|timeout_ms = "[0-9a-z]*" \(from flag\): expected a whole number from 1 to 3600000)' "$tmp/bad"
  done
  EVRUN_TIMEOUT_MS=abc EVRUN_STATE_DIR=$none cli jobs > "$tmp/bad" 2>&1
  check "EVRUN_TIMEOUT_MS=abc: exit 2" [ $? -eq 2 ]
  check "EVRUN_TIMEOUT_MS=abc: named" grep -q 'timeout_ms = "abc" (from env EVRUN_TIMEOUT_MS): expected a whole number from 1 to 3600000' "$tmp/bad"
  "$bin/evrun-gateway" --timeout-ms abc --print-config > "$tmp/bad" 2>&1   # (nothing started)
  check "evrun-gateway --timeout-ms abc: exit 2, named" \
    bash -c "[ $? -eq 2 ] && grep -q 'timeout_ms = \"abc\" (from flag): expected a whole number' '$tmp/bad'"
  # evrun-runner --print-config checks its settings as it does at start: a bad value exits 2,
  # named with its range, and nothing is printed
  local rc_bad
  for rc_bad in "lease_ms: abc|lease_ms = \"abc\" (from file $tmp/rc.yml:1:11): expected a whole number from 100 to 86400000" \
                "lease_ms: -5|lease_ms = \"-5\" (from file $tmp/rc.yml:1:11): expected a whole number from 100 to 86400000" \
                "capacity: 0|capacity = \"0\" (from file $tmp/rc.yml:1:11): expected a whole number from 1 to 1024" \
                "heartbeat_ms: 0|heartbeat_ms = \"0\" (from file $tmp/rc.yml:1:15): expected a whole number from 10 to 3600000" \
                "artifact_max_bytes: 0|artifact_max_bytes = \"0\" (from file $tmp/rc.yml:1:21): expected a whole number from 1 to"; do
    echo "${rc_bad%%|*}" > "$tmp/rc.yml"
    "$bin/evrun-runner" --config "$tmp/rc.yml" --print-config > "$tmp/bad" 2> "$tmp/bad.err"
    check "evrun-runner --print-config, ${rc_bad%%|*}: exit 2" [ $? -eq 2 ]
    check "... named with its range" grep -qF "evrun-runner: ${rc_bad#*|}" "$tmp/bad.err"
    check "... nothing printed" [ ! -s "$tmp/bad" ]
  done
  # every error of the file at once: an unknown key (did you mean) and each bad value
  printf 'leas_ms: 10\nlog_level: loud\ncapacity: two\nretention_interval: 5ms\n' > "$tmp/rc.yml"
  "$bin/evrun-runner" --config "$tmp/rc.yml" --print-config > "$tmp/bad" 2> "$tmp/bad.err"
  check "evrun-runner, four bad settings: exit 2" [ $? -eq 2 ]
  check "... retention_interval too" grep -qF "evrun-runner: retention_interval = \"5ms\" (from file $tmp/rc.yml:4:21): expected at least 100ms" "$tmp/bad.err"
  check "... the unknown key, with did you mean" grep -qF "evrun-runner: $tmp/rc.yml:1:1: leas_ms: unknown setting; did you mean lease_ms?" "$tmp/bad.err"
  check "... log_level too" grep -qF "evrun-runner: log_level = \"loud\" (from file $tmp/rc.yml:2:12): expected one of" "$tmp/bad.err"
  check "... capacity too" grep -qF "evrun-runner: capacity = \"two\" (from file $tmp/rc.yml:3:11): expected a whole number from 1 to 1024" "$tmp/bad.err"
  # the broker and the gateway too: every bad value said, from each layer, with its place
  printf 'heartbeat_ms: 5\nretention_interval: 10ms\nqueue_limt: 5\n' > "$tmp/bk.yml"
  EVRUN_LOG_LEVEL=loud "$bin/evrun-broker" --config "$tmp/bk.yml" --state-dir "$tmp/bk-bad" \
    --queue-limit 0 --print-config > "$tmp/bad" 2> "$tmp/bad.err"
  check "evrun-broker, four bad settings: exit 2" [ $? -eq 2 ]
  check "... nothing printed" [ ! -s "$tmp/bad" ]
  check "... the unknown key, with did you mean" grep -qF "evrun-broker: $tmp/bk.yml:3:1: queue_limt: unknown setting; did you mean queue_limit?" "$tmp/bad.err"
  check "... heartbeat_ms" grep -qF "evrun-broker: heartbeat_ms = \"5\" (from file $tmp/bk.yml:1:15): expected a whole number from 10 to 3600000" "$tmp/bad.err"
  check "... retention_interval, with its place" grep -qF "evrun-broker: retention_interval = \"10ms\" (from file $tmp/bk.yml:2:21): expected at least 100ms" "$tmp/bad.err"
  check "... the flag" grep -qF "evrun-broker: queue_limit = \"0\" (from flag): expected a whole number from 1 to 1000000" "$tmp/bad.err"
  check "... the environment" grep -qF "evrun-broker: log_level = \"loud\" (from env EVRUN_LOG_LEVEL): expected one of" "$tmp/bad.err"
  check "... no state directory made" [ ! -e "$tmp/bk-bad" ]
  printf 'http_max_connections: 0\nhttp_idle_timeout: 10ms\ntimeout_ms: 0\n' > "$tmp/gwb.yml"
  EVRUN_METRICS_TOKEN=maybe "$bin/evrun-gateway" --config "$tmp/gwb.yml" \
    --state-dir "$tmp/gw-bad" --listen 127.0.0.1:0 > "$tmp/bad" 2> "$tmp/bad.err"
  check "evrun-gateway, four bad settings: exit 2" [ $? -eq 2 ]
  check "... timeout_ms" grep -qF "evrun-gateway: timeout_ms = \"0\" (from file $tmp/gwb.yml:3:13): expected a whole number from 1 to 3600000" "$tmp/bad.err"
  check "... metrics_token" grep -qF "evrun-gateway: metrics_token = \"maybe\" (from env EVRUN_METRICS_TOKEN): expected one of none, required" "$tmp/bad.err"
  check "... http_max_connections" grep -qF "evrun-gateway: http_max_connections = \"0\" (from file $tmp/gwb.yml:1:23): expected a whole number from 1 to" "$tmp/bad.err"
  check "... http_idle_timeout, with its place" grep -qF "evrun-gateway: http_idle_timeout = \"10ms\" (from file $tmp/gwb.yml:2:20): expected at least 1s" "$tmp/bad.err"
  check "... not listening" bash -c "! grep -q 'listening on' '$tmp/bad.err'"
  printf 'timeot_ms: 5\n' > "$tmp/cl.yml"
  EVRUN_TIMEOUT_MS=abc "$bin/evrun-cli" --config "$tmp/cl.yml" jobs > "$tmp/bad" 2> "$tmp/bad.err"
  check "evrun-cli, a bad file and a bad value: exit 2" [ $? -eq 2 ]
  check "... the file's error" grep -qF "$tmp/cl.yml:1:1: timeot_ms: unknown setting; did you mean timeout_ms?" "$tmp/bad.err"
  check "... and the value's" grep -qF 'timeout_ms = "abc" (from env EVRUN_TIMEOUT_MS)' "$tmp/bad.err"
  echo "capacity: 3" > "$tmp/rc.yml"
  "$bin/evrun-runner" --config "$tmp/rc.yml" --print-config > "$tmp/good" 2>&1
  check "evrun-runner --print-config, good values: printed" grep -Eq "^capacity: 3 .*\(file\)" "$tmp/good"
  # evrun-tail: a stray argument named (a job id: --job suggested)
  "$bin/evrun-tail" --job 01ARYZ6S41TSV4RRFFQ69G5FAV extra > "$tmp/bad" 2>&1
  check "evrun-tail --job ID extra: exit 2" [ $? -eq 2 ]
  check "evrun-tail --job ID extra: names it" grep -q '^evrun-tail: unexpected argument "extra"$' "$tmp/bad"
  "$bin/evrun-tail" 01ARYZ6S41TSV4RRFFQ69G5FAV > "$tmp/bad" 2>&1
  check "evrun-tail ID: suggests --job" grep -q '^evrun-tail: unexpected argument "01ARYZ6S41TSV4RRFFQ69G5FAV" (a job: evrun-tail --job 01ARYZ6S41TSV4RRFFQ69G5FAV)$' "$tmp/bad"
  # a broker and a process runner: no podman
  bus_broker && bus_runner ce-proc "" 1 --executors process && bus_wait_runners 1
  # the wrong socket: each side told which one to use
  cli jobs --broker "ipc://$tmp/bus/runners" > "$tmp/ws" 2> "$tmp/ws.err"
  check "jobs on the runner socket: exit 1" [ $? -eq 1 ]
  check "... names the client socket" grep -q "this is the broker's runner socket; a client (evrun-cli) connects to its client socket, ipc://$tmp/bus/clients" "$tmp/ws.err"
  check "... no table header" [ ! -s "$tmp/ws" ]
  timeout -k 10 20 "$bin/evrun-runner" --broker "ipc://$tmp/bus/clients" --state-dir "$tmp/r-ws" \
    --executors process > "$tmp/ws.err" 2>&1
  check "runner on the client socket: exits 2 at once" [ $? -eq 2 ]
  check "... names the runner socket" grep -q "error: --broker is the broker's client socket, not its runner socket: .*connects to its runner socket, ipc://$tmp/bus/runners" "$tmp/ws.err"
  # no such job: exit 1 from the commands the broker refuses, 2 from those
  # reading its history (README's exit status rule)
  local nj=01ARYZ6S41TSV4RRFFQ69G5FAV
  for c in status cancel pause resume; do
    cli $c $nj > /dev/null 2>&1
    check "$c of no such job: exit 1" [ $? -eq 1 ]
  done
  for c in "logs $nj" "logs $nj --follow" "artifacts $nj -o $tmp/nja"; do
    # shellcheck disable=SC2086
    cli $c > /dev/null 2>&1
    check "$c of no such job: exit 2" [ $? -eq 2 ]
  done
  "$bin/evrun-tail" --job $nj > /dev/null 2>&1
  check "evrun-tail --job of no such job: exit 2" [ $? -eq 2 ]
  pipeline ce <<'YML'
pipeline: ce
executor: process
steps:
  - { name: a, run: echo in-a }
  - { name: b, needs: [a], run: echo in-b }
YML
  local j
  j=$(submit "$tmp/ce.yml")
  check "ce succeeded" [ "$(wait_job "$j")" = succeeded ]
  cli logs "$j" --step a > "$tmp/ls" 2>&1
  check "logs --step a: its output only" [ "$(cat "$tmp/ls")" = "a | in-a" ]
  for c in nosuch A; do
    cli logs "$j" --step "$c" > "$tmp/ls" 2>&1
    check "logs --step $c: exit 2" [ $? -eq 2 ]
    check "logs --step $c: names the job's steps" grep -q "job $j has no step \"$c\" .*its steps: a, b$" "$tmp/ls"
  done
  cli logs "$j" --step nosuch --follow > "$tmp/ls" 2>&1
  check "logs --follow --step nosuch: exit 2, saying so" [ $? -eq 2 ] && check "... naming the steps" grep -q "its steps: a, b$" "$tmp/ls"
  "$bin/evrun-tail" --job "$j" --step nosuch > "$tmp/ls" 2>&1
  check "evrun-tail --step nosuch: exit 2" [ $? -eq 2 ]
  check "evrun-tail --step nosuch: names the steps" grep -q "^evrun-tail: job $j has no step \"nosuch\" .*its steps: a, b$" "$tmp/ls"
  # a step that is there: followed as before (exit 0); on_error, the
  # pipeline's, is one (README), also in the live stub of a job
  cli logs "$j" --step b --follow > "$tmp/ls" 2>&1
  check "logs --follow --step b: exit 0, its output" [ $? -eq 0 ] && check "... b's line" grep -qx "b | in-b" "$tmp/ls"
  "$bin/evrun-tail" --job "$j" --step a > "$tmp/ls" 2>&1
  check "evrun-tail --step a: exit 0" [ $? -eq 0 ] && check "... a's line" grep -q "a | in-a" "$tmp/ls"
  pipeline oe <<'YML'
pipeline: oe
executor: process
on_error: { run: echo in-on-error }
steps:
  - { name: a, run: exit 3 }
YML
  j=$(submit "$tmp/oe.yml")
  check "oe failed" [ "$(wait_job "$j")" = failed ]
  cli logs "$j" --step on_error > "$tmp/ls" 2>&1
  check "logs --step on_error: exit 0" [ $? -eq 0 ] && check "... its output" grep -qx "on_error | in-on-error" "$tmp/ls"
  cli logs "$j" --step on_error --follow > "$tmp/ls" 2>&1
  check "logs --follow --step on_error: its output" grep -qx "on_error | in-on-error" "$tmp/ls"
  "$bin/evrun-tail" --job "$j" --step on_error > "$tmp/ls" 2>&1
  check "evrun-tail --step on_error: its output" grep -q "on_error | in-on-error" "$tmp/ls"
}

bus_script_cases "curve up_down up_ping up_process up_process_only runner_id_kept term_same_sender stop_offload_hang state_refused up_fresh_home up_json wait_signal cli_errors" "$@"
bus_script_end

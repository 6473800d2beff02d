#!/usr/bin/env bash
# test_bus_follow.sh BIN_DIR SRC_DIR [CASE...]: followers and what
# survives a process lost or killed, end to end (test_bus.sh's set-up:
# real evrun-broker and evrun-runner processes on ipc:// sockets in a
# temporary directory, real podman from the "podman" fixture; each case
# starts its own broker and runners in a fresh state directory):
# evrun-tail and logs --follow before, during and after a job, across a
# long history and broker outages; runners killed or lost, a broker
# killed under a stream of submits.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init bfo --podman

case_tail() {
  fresh tail
  bus_broker && bus_runner tl-1 "" 2 && bus_wait_runners 1
  ticks tailp 30 0.1
  "$bin/evrun-tail" --pipeline tailp > "$tmp/before.out" 2> "$tmp/before.err" &
  local tpid=$! j
  # before: subscribed to the event stream (its handshake waited for)
  check "tail before: on the event stream before the submit" \
    bus_until 60 bus_connected "$tpid" "$tmp/bus/events"
  j=$(submit "$tmp/tailp.yml")
  bus_until 60 eval '[ "$(cli logs "$j" | grep -c tick)" -ge 10 ]'
  timeout -k 10 60 "$bin/evrun-tail" --job "$j" > "$tmp/during.out" 2> "$tmp/during.err"
  check "tail during: exits 0 with the job" [ $? -eq 0 ]
  timeout -k 10 20 "$bin/evrun-tail" --job "$j" > "$tmp/after.out" 2>&1
  check "tail after: exits 0" [ $? -eq 0 ]
  # the job's end printed by the others: it comes to this one too
  bus_until 60 grep -q "tick 30$" "$tmp/before.out"
  kill "$tpid"; wait "$tpid" 2>/dev/null
  check "tail before: every line once" exactly_once "$tmp/before.out" 30
  check "tail during: every line once" exactly_once "$tmp/during.out" 30
  check "tail after: every line once" exactly_once "$tmp/after.out" 30
  check "tail prefix job/step" grep -q "^$j/count | tick 1$" "$tmp/after.out"
  "$bin/evrun-tail" --job 01ARYZ6S41TSV4RRFFQ69G5FAV > "$tmp/nf" 2>&1
  check "tail unknown job: exit 2" [ $? -eq 2 ]
}

case_long_history() {
  # more events than one history answer holds (1000): followers page through
  fresh longh
  bus_broker && bus_runner lh-1 "" 2 && bus_wait_runners 1
  { echo "pipeline: longh"; echo "image: localhost/evrun-busybox:latest"; echo "steps:"
    echo "  - { name: start, run: 'true' }"
    for s in a b c d; do
      echo "  - { name: $s, needs: [start], run: 'for i in \$(seq 1 350); do echo \"$s \$i\"; sleep 0.02; done' }"
    done; } > "$tmp/longh.yml"
  local j n
  j=$(submit "$tmp/longh.yml")
  check "long job succeeded" [ "$(wait_job "$j" 120)" = succeeded ]
  n=$("$bin/evrun-replay" "$tmp/broker" --job "$j" --json | grep -c '"type":"step.output"')
  check "more than 1000 output events ($n)" [ "$n" -gt 1000 ]
  timeout -k 10 60 "$bin/evrun-tail" --job "$j" > "$tmp/lh.out" 2>&1
  check "tail after: exit 0" [ $? -eq 0 ]
  local s got
  for s in a b c d; do
    got=$(grep -c "^$j/$s | $s [0-9]*$" "$tmp/lh.out")
    check "step $s: 350 lines ($got)" [ "$got" -eq 350 ]
    check "step $s: in order, once" [ "$(grep "/$s | " "$tmp/lh.out" | awk '{print $NF}' | tr '\n' ' ')" = "$(seq 1 350 | tr '\n' ' ')" ]
  done
}

# outages FILE: the outages a follower's stderr said; backs FILE: the
# ends it said; calm FILE: none going on (each said has its end said)
outages() { grep -c "; following on, asking again" "$1"; }
backs() { grep -c "answers again" "$1"; }
calm() { [ "$(outages "$1")" -eq "$(backs "$1")" ]; }
# gt N CMD...: CMD prints a number over N
gt() { [ "$("${@:2}")" -gt "$1" ]; }
# said_until_back FILE LINE: the outages said after line LINE of FILE
# until the first end said after it
said_until_back() {
  tail -n +$(($2 + 1)) "$1" | sed '/answers again/q' | grep -c "; following on, asking again"
}
# grep_after FILE LINE PATTERN: PATTERN in FILE after its line LINE
grep_after() { tail -n +$(($2 + 1)) "$1" | grep -q "$3"; }
# unread PID: bytes the broker (stopped) has not read of what process PID
# sent to its client socket: a request it owes an answer to
unread() {
  ss -xpn | awk -v me="pid=$1," -v path="$tmp/bus/clients" '
    index($0, me) { peer[$8] = 1 }
    $5 == path { q[$6] = $3 }
    END { n = 0; for (i in peer) if (i in q) n += q[i]; print n }'
}

# A follower outlives a broker that does not answer for longer than its
# --timeout-ms (SIGSTOP, then SIGCONT) and one killed and restarted on the
# same state directory: it says so once an outage, asks again, says when
# the broker is back, prints every line once and in order (those printed
# while the broker was stopped too, once it answers), and exits 0 with the
# job.  Before, the first unanswered history request ended it (2).  The
# job (a process step) waits at gates (files) the case opens, and each
# stage waits for what the next needs (every follower up, an outage said,
# a request owed), never for a time: a loaded machine makes it slower,
# not different.
case_follow_outage() {
  fresh fout
  bus_broker && bus_runner fo-1 "" 2 --executors process && bus_wait_runners 1
  mkdir -p "$tmp/gate"
  pipeline fout <<YML
pipeline: fout
executor: process
steps:
  - name: count
    run: |
      for i in \$(seq 1 20); do echo "tick \$i"; sleep 0.02; done
      while [ ! -e $tmp/gate/1 ]; do sleep 0.05; done
      for i in \$(seq 21 30); do echo "tick \$i"; sleep 0.02; done
      : > $tmp/gate/past30
      while [ ! -e $tmp/gate/2 ]; do sleep 0.05; done
      for i in \$(seq 31 40); do echo "tick \$i"; sleep 0.02; done
YML
  local j fpid tpid ppid ipid f eo et ko kt rc
  # started before the submit, up before or after it: the job waits at its
  # first gate, so a late --pipeline follower finds it running (backfill)
  timeout -k 5 300 "$bin/evrun-tail" --pipeline fout --timeout-ms 1000 > "$tmp/fp.out" 2> "$tmp/fp.err" &
  ppid=$!
  j=$(submit "$tmp/fout.yml")
  timeout -k 5 300 "$bin/evrun-cli" logs "$j" --follow --timeout-ms 1000 > "$tmp/fo.out" 2> "$tmp/fo.err" &
  fpid=$!
  timeout -k 5 300 "$bin/evrun-tail" --job "$j" --timeout-ms 1000 > "$tmp/ft.out" 2> "$tmp/ft.err" &
  tpid=$!
  # one that waits a minute for an answer: interrupted in that wait
  # (SIGINT, its own: timeout(1) would send SIGCONT after it, to it and
  # its group, and an ASan build's leak check at exit was seen to hang
  # then, traced, until timeout's SIGKILL)
  "$bin/evrun-cli" logs "$j" --follow --timeout-ms 60000 > "$tmp/fi.out" 2> "$tmp/fi.err" &
  ipid=$!
  bus_pids+=("$ipid")
  for f in fp fo ft fi; do
    check "$f: the lines before the first gate" bus_until 120 grep -q "tick 20$" "$tmp/$f.out"
  done
  # no outage going on (a loaded broker may answer one late): the next
  # one said is the stop's
  check "no outage said before the stop" bus_until 60 calm "$tmp/fo.err"
  check "... nor by evrun-tail" bus_until 60 calm "$tmp/ft.err"
  eo=$(wc -l < "$tmp/fo.err"); et=$(wc -l < "$tmp/ft.err")
  kill -STOP "$broker_pid"
  # the stream is quiet (the job waits): each asks history again each
  # second, and says the outage when that gets no answer within 1000 ms
  check "broker stopped: logs --follow says so" bus_until 60 gt 0 said_until_back "$tmp/fo.err" "$eo"
  check "broker stopped: evrun-tail says so" bus_until 60 gt 0 said_until_back "$tmp/ft.err" "$et"
  # the one that waits a minute: its history asked and owed (unread by the
  # stopped broker; 10 s at most for one the broker read just before it
  # stopped, owed too)
  bus_until 10 gt 0 unread "$ipid"
  kill -INT "$ipid"
  bus_until 120 not kill -0 "$ipid" 2>/dev/null   # (bus_stop ends it, if ever it hangs)
  kill -0 "$ipid" 2>/dev/null && rc=hung || { wait "$ipid"; rc=$?; }
  check "interrupted in a wait: exit 130 (got $rc)" [ "$rc" = 130 ]
  check "interrupted in a wait: no outage said" not grep -q 'following on' "$tmp/fi.err"
  : > "$tmp/gate/1"   # the job prints on while the broker is stopped
  check "the job printed 10 more lines, the broker stopped" bus_until 120 test -e "$tmp/gate/past30"
  check "broker stopped: logs --follow still runs" kill -0 "$fpid"
  check "broker stopped: evrun-tail still runs" kill -0 "$tpid"
  check "broker stopped: those lines not printed yet" not grep -q "tick 2[1-9]$\|tick 30$" "$tmp/fo.out" "$tmp/ft.out"
  kill -CONT "$broker_pid"
  check "broker back: logs --follow says so" bus_until 120 grep_after "$tmp/fo.err" "$eo" "answers again; following on"
  check "broker back: evrun-tail says so" bus_until 120 grep_after "$tmp/ft.err" "$et" "answers again"
  check "stopped broker: said once (logs)" [ "$(said_until_back "$tmp/fo.err" "$eo")" -eq 1 ]
  check "stopped broker: said once (tail)" [ "$(said_until_back "$tmp/ft.err" "$et")" -eq 1 ]
  check "the lines printed while it was stopped come (logs)" bus_until 120 grep -q "tick 30$" "$tmp/fo.out"
  check "... (tail)" bus_until 120 grep -q "tick 30$" "$tmp/ft.out"
  check "no outage going on before the kill" bus_until 60 calm "$tmp/fo.err"
  check "... nor for evrun-tail" bus_until 60 calm "$tmp/ft.err"
  ko=$(outages "$tmp/fo.err"); kt=$(outages "$tmp/ft.err")
  kill -9 "$broker_pid"
  wait "$broker_pid" 2>/dev/null
  rm -f "$tmp/bus/clients" "$tmp/bus/runners" "$tmp/bus/events"
  check "broker killed: logs --follow says so" bus_until 60 gt "$ko" outages "$tmp/fo.err"
  check "broker killed: evrun-tail says so" bus_until 60 gt "$kt" outages "$tmp/ft.err"
  bus_broker
  check "restarted: logs --follow says it answers" bus_until 120 calm "$tmp/fo.err"
  check "restarted: evrun-tail too" bus_until 120 calm "$tmp/ft.err"
  : > "$tmp/gate/2"   # the job's last lines, and its end
  wait "$fpid"
  check "logs --follow: exit 0 across the outages" [ $? -eq 0 ]
  wait "$tpid"
  check "evrun-tail: exit 0 across the outages" [ $? -eq 0 ]
  check "job succeeded" [ "$(wait_job "$j" 60)" = succeeded ]
  check "logs --follow: every line once, in order" exactly_once "$tmp/fo.out" 40
  check "evrun-tail: every line once, in order" exactly_once "$tmp/ft.out" 40
  check "evrun-tail --pipeline: all the lines" bus_until 120 grep -q "tick 40$" "$tmp/fp.out"
  check "evrun-tail --pipeline: still runs" kill -0 "$ppid"
  kill "$ppid"
  wait "$ppid"
  check "evrun-tail --pipeline: every line once, in order" exactly_once "$tmp/fp.out" 40
  check "each outage said once, each end too" \
    [ "$(outages "$tmp/fo.err")" -eq "$(backs "$tmp/fo.err")" ]
  # a definite answer still ends a follow: no such job, exit 2
  timeout -k 5 60 "$bin/evrun-cli" logs 01ARYZ6S41TSV4RRFFQ69G5FAV --follow --timeout-ms 1000 \
    > "$tmp/nf" 2>&1
  check "unknown job: exit 2" [ $? -eq 2 ]
  check "unknown job: says so" grep -q "not_found" "$tmp/nf"
}

case_runner_killed() {
  fresh rkill
  bus_broker && bus_runner rk-1 "" 2 && bus_wait_runners 1
  ticks rk 30 0.1
  local j
  j=$(submit "$tmp/rk.yml")
  timeout -k 10 90 "$bin/evrun-tail" --job "$j" > "$tmp/rk.out" 2>&1 &
  local tpid=$!
  bus_until 60 eval '[ "$(cli logs "$j" | grep -c tick)" -ge 8 ]'
  kill -9 "$runner_pid_rk_1"
  # lost once its lease (1500 ms) passed with nothing heard: when the
  # broker looks, not in 2 s on a loaded machine
  check "killed runner shown lost" bus_until 30 eval 'cli runners | grep -q "^rk-1 .*lost"'
  bus_runner rk-1 "" 2
  check "job finished after the restart" [ "$(wait_job "$j" 60)" = succeeded ]
  wait "$tpid"
  check "tail exited 0" [ $? -eq 0 ]
  check "tail: every line once across the kill" exactly_once "$tmp/rk.out" 30
  cli logs "$j" > "$tmp/rk.logs"
  check "stored: every line once" exactly_once "$tmp/rk.logs" 30
  check "runner log verifies" "$bin/evrun-replay" "$tmp/r-rk-1" --verify
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
}

# A runner that stays away loses its jobs: the running one ends lost (and,
# as its step retries on lost, is queued again as a new job from its
# submit as sent: its --label and its copy source too), the one
# dispatched to it goes to another runner; when it comes back its copies
# are cancelled, their events are not stored, and it takes work again.
case_runner_lost() {
  fresh rlost
  bus_broker --reclaim-ms 2000 && bus_runner rl-1 "x,y,z" 2 && bus_wait_runners 1
  pipeline rlong <<'YML'
pipeline: rlong
image: localhost/evrun-busybox:latest
labels: [x]
source: { copy: rsrc }
args: { WHO: { description: who } }
steps:
  - name: count
    retry: { on: [lost], max: 1 }
    run: echo "token $(cat token) $WHO"; for i in $(seq 1 50); do echo "tick $i"; sleep 0.1; done
YML
  mkdir -p "$tmp/rsrc" && echo "tok-$$" > "$tmp/rsrc/token"
  ticks rshort 3 0.1 x
  ticks ronly 3 0.1 y
  local j1 j2 j3
  j1=$(submit "$tmp/rlong.yml" --label z -a WHO=me)
  for _ in $(seq 1 100); do [ "$(cli logs "$j1" | grep -c tick)" -ge 5 ] && break; sleep 0.1; done
  check "the broker keeps the running job's submit (its step retries on lost)" \
    bash -c "mdb_dump -p -s kv '$tmp/broker' | grep -q '^ s/$j1'"
  kill -STOP "$runner_pid_rl_1"
  j2=$(submit "$tmp/rshort.yml")   # dispatched to rl-1 before it is seen lost
  check "j2 dispatched to the stopped runner" bus_until 30 eval '[ "$(field "$j2" runner)" = rl-1 ]'
  bus_runner rl-2 "x" 2
  check "running job ended lost" [ "$(wait_job "$j1" 30)" = lost ]
  check "reason names the runner" grep -q "runner rl-1 was lost for" <(cli status "$j1")
  local j1b
  j1b=$(cli status "$j1" | sed -n 's/.*queued again as \([0-9A-Z]*\) (retry 1 of 1).*/\1/p')
  check "queued again as a new job" [ -n "$j1b" ]
  check "dispatched job ran elsewhere" [ "$(wait_job "$j2" 30)" = succeeded ]
  check "... on rl-2" [ "$(field "$j2" runner)" = rl-2 ]
  check "the retry keeps the submit's --label z: rl-2 (x) does not take it" \
    [ "$(field "$j1b" status)" = queued ]
  bus_runner rl-3 "x,z" 1
  check "... which succeeded" [ "$(wait_job "$j1b" 60)" = succeeded ]
  check "... on rl-3 (x,z)" [ "$(field "$j1b" runner)" = rl-3 ]
  cli logs "$j1b" > "$tmp/rl.retry"
  check "... with its copy source and its arg" grep -q "token tok-$$ me$" "$tmp/rl.retry"
  check "... every line once" exactly_once "$tmp/rl.retry" 50
  check "the lost job's kept submit is gone, the retry's too once it ended" \
    bash -c "for _ in \$(seq 1 50); do ! mdb_dump -p -s kv '$tmp/broker' | grep -q '^ s/' && exit 0; sleep 0.1; done; exit 1"
  timeout -k 10 20 "$bin/evrun-tail" --job "$j1" > "$tmp/rl.tail" 2>&1
  check "tail of the lost job exits 1" [ $? -eq 1 ]
  kill -CONT "$runner_pid_rl_1"
  for _ in $(seq 1 200); do grep -q "$j1: rl-1 finished its copy" "$tmp/broker.log" && break; sleep 0.1; done
  check "the runner was told and ended its copy" grep -q "$j1: rl-1 finished its copy" "$tmp/broker.log"
  for _ in $(seq 1 100); do no_leftovers "$j1" && break; sleep 0.1; done
  check "its copy left nothing in podman" no_leftovers "$j1"
  check "still lost in the broker" [ "$(field "$j1" status)" = lost ]
  check "no event of rl-1 refused" bash -c "! grep -q 'events of rl-1 refused' '$tmp/broker.log'"
  check "j2 accepted once in the archive" \
    [ "$("$bin/evrun-replay" "$tmp/broker" --job "$j2" | grep -c 'job.accepted')" -eq 1 ]
  j3=$(submit "$tmp/ronly.yml")
  check "the returned runner takes work again" [ "$(wait_job "$j3" 30)" = succeeded ]
  check "... j3 on rl-1" [ "$(field "$j3" runner)" = rl-1 ]
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
}

# A job its runner accepted but had not started (still fetching a
# resource) when the runner was lost for good ends lost too, with only
# job.finished (its steps never moved); its step retries on lost, so it
# is queued again though the step never started.
case_runner_lost_queued() {
  fresh rlostq
  local port
  python3 - "$tmp/http.port" "$tmp/http.log" <<'PY' &
import http.server, sys, time
log = sys.argv[2]
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        open(log, "a").write(self.path + "\n")
        time.sleep(60)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
open(sys.argv[1], "w").write(str(srv.server_address[1]))
srv.serve_forever()
PY
  local http_pid=$!
  bus_pids+=("$http_pid")
  for _ in $(seq 1 100); do [ -s "$tmp/http.port" ] && break; sleep 0.05; done
  port=$(cat "$tmp/http.port")
  bus_broker --reclaim-ms 1500 && bus_runner rq-1 "" 1 && bus_wait_runners 1
  pipeline slowres <<YML
pipeline: slowres
image: localhost/evrun-busybox:latest
resources:
  - { name: data, url: "http://127.0.0.1:$port/data.txt", path: data.txt }
steps:
  - name: use
    retry: { on: [lost], max: 1 }
    run: cat data.txt
YML
  local j
  j=$(submit "$tmp/slowres.yml")
  for _ in $(seq 1 100); do [ -s "$tmp/http.log" ] && break; sleep 0.1; done
  check "the runner is fetching the resource" grep -q data.txt "$tmp/http.log"
  check "accepted, not started" grep -q "^${j}.*queued" <(cli jobs --status queued)
  kill -STOP "$runner_pid_rq_1"
  check "ended lost" [ "$(wait_job "$j" 30)" = lost ]
  check "reason names the runner" grep -q "runner rq-1 was lost for" <(cli status "$j")
  check "its step never moved" bash -c "! '$bin/evrun-replay' '$tmp/broker' --job '$j' | grep -q 'step\.'"
  check "its step (never started) retries on lost: queued again" \
    grep -q "queued again as [0-9A-Z]* (retry 1 of 1)" <(cli status "$j")
  check "... and it ended with job.finished" grep -q "job.finished" <("$bin/evrun-replay" "$tmp/broker" --job "$j")
  kill -CONT "$runner_pid_rq_1"
  for _ in $(seq 1 100); do grep -q "$j: rq-1 finished its copy" "$tmp/broker.log" && break; sleep 0.1; done
  check "the runner ended its copy" grep -q "$j: rq-1 finished its copy" "$tmp/broker.log"
  check "still lost" [ "$(field "$j" status)" = lost ]
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
}

case_broker_killed() {
  fresh bkill
  bus_broker && bus_runner bk-1 "" 2 && bus_runner bk-2 "" 2 && bus_wait_runners 2
  pipeline one <<'YML'
pipeline: one
image: localhost/evrun-busybox:latest
steps: [ { name: s, run: "echo ran-once" } ]
YML
  : > "$tmp/accepted"
  (
    for i in $(seq 1 200); do
      "$bin/evrun-cli" submit "$tmp/one.yml" --timeout-ms 2000 2>/dev/null >> "$tmp/accepted"
    done
  ) &
  local spid=$! at
  for at in 40 90 140; do   # three SIGKILLs of the broker during the stream
    for _ in $(seq 1 400); do [ "$(wc -l < "$tmp/accepted")" -ge "$at" ] && break; sleep 0.05; done
    kill -9 "$broker_pid"
    wait "$broker_pid" 2>/dev/null
    sleep 0.5
    bus_broker
  done
  wait "$spid"
  local n ok=0 bad=0 j
  n=$(sort -u "$tmp/accepted" | wc -l)
  check "most submissions accepted ($n)" [ "$n" -ge 100 ]
  check "no id accepted twice" [ "$n" -eq "$(wc -l < "$tmp/accepted")" ]
  for j in $(cat "$tmp/accepted"); do
    [ "$(wait_job "$j" 120)" = succeeded ] && ok=$((ok + 1)) || bad=$((bad + 1))
  done
  check "every accepted job succeeded ($ok of $n, $bad not)" [ "$bad" -eq 0 ]
  # each ran exactly once: in exactly one runner's log, with one line of output
  "$bin/evrun-replay" "$tmp/r-bk-1" --json > "$tmp/r1.json"
  "$bin/evrun-replay" "$tmp/r-bk-2" --json > "$tmp/r2.json"
  local twice=0 missing=0 c
  for j in $(cat "$tmp/accepted"); do
    c=$(cat "$tmp/r1.json" "$tmp/r2.json" | grep -c "\"id\":\"$j\"")
    [ "$c" -eq 1 ] || { [ "$c" -eq 0 ] && missing=$((missing + 1)) || twice=$((twice + 1)); }
  done
  check "no accepted job ran twice ($twice)" [ "$twice" -eq 0 ]
  check "no accepted job missing from the runners ($missing)" [ "$missing" -eq 0 ]
  local total
  total=$(cat "$tmp/r1.json" "$tmp/r2.json" | grep -c '"pipeline":"one"')
  check "runners ran only accepted jobs ($total vs $n)" [ "$total" -eq "$n" ]
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
}

# A stdout that cannot be written (/dev/full): each follower says the
# error of the write that failed, exit 2, where a print that failed in
# stdio's buffer (a line longer than it, a --json line) lost its errno
# and was said "Input/output error"
case_stdout_full() {
  fresh full
  bus_broker && bus_runner fu-1 "" 1 --executors process && bus_wait_runners 1
  pipeline longl <<'YML'
pipeline: longl
executor: process
steps:
  - { name: s, run: "head -c 20000 /dev/zero | tr '\\0' x; echo; echo short" }
YML
  local j c
  j=$(submit "$tmp/longl.yml")
  check "long-line job succeeded" [ "$(wait_job "$j" 60)" = succeeded ]
  for c in "evrun-tail --job $j" "evrun-tail --job $j --json" "evrun-cli logs $j" \
           "evrun-cli logs --follow $j" "evrun-cli logs --json $j"; do
    timeout -k 5 20 "$bin/"$c > /dev/full 2> "$tmp/full.err"
    check "$c > /dev/full: exit 2" [ $? -eq 2 ]
    check "... saying the disk is full" grep -q ": writing to stdout: No space left on device$" "$tmp/full.err"
  done
  # the other commands that print data: they exited 0, nothing written
  for c in "status $j" "jobs" "runners" "status --json $j"; do
    "$bin/evrun-cli" $c > /dev/full 2> "$tmp/full.err"
    check "evrun-cli $c > /dev/full: exit 2" [ $? -eq 2 ]
    check "... saying so" grep -qx "evrun-cli ${c%% *}: writing to stdout: No space left on device" "$tmp/full.err"
  done
  check "evrun-cli --help says that exit 2" bash -c "'$bin/evrun-cli' --help | tr '\n' ' ' | grep -q '2 usage .* a stdout that could not be written'"
  # submit: its id not written (the error was zmq's EAGAIN, the write's lost)
  "$bin/evrun-cli" submit "$tmp/longl.yml" > /dev/full 2> "$tmp/full.err"
  check "submit > /dev/full: exit 2" [ $? -eq 2 ]
  check "... saying so" grep -qx "evrun-cli submit: writing to stdout: No space left on device" "$tmp/full.err"
  check "... its job named on stderr" grep -q "^job [0-9A-Z]* accepted (pipeline longl)$" "$tmp/full.err"
}

# A follower whose stdout's reader does not read (`| less` at its
# prompt, a full pipe): blocked in its write, Ctrl-C still ends it
# (signal() restarted the write: it stayed blocked, SIGINT and SIGTERM
# lost, until killed)
case_blocked_reader() {
  fresh blocked
  bus_broker && bus_runner bl-1 "" 2 --executors process && bus_wait_runners 1
  pipeline lots <<'YML'
pipeline: lots
executor: process
steps: [ { name: s, run: "seq 1 200000" } ]
YML
  local who pid rc lj
  for who in tail run; do
    rm -f "$tmp/fifo.$who" && mkfifo "$tmp/fifo.$who"
    sleep 300 < "$tmp/fifo.$who" &   # holds the pipe open, reads nothing
    bus_pids+=("$!")
    if [ "$who" = tail ]; then
      "$bin/evrun-tail" --all > "$tmp/fifo.$who" 2> "$tmp/blocked.$who" &
      pid=$!
      check "tail --all: on the event stream" bus_until 60 bus_connected "$pid" "$tmp/bus/events"
      lj=$(submit "$tmp/lots.yml")
    else
      "$bin/evrun-cli" run "$tmp/lots.yml" --follow > "$tmp/fifo.$who" 2> "$tmp/blocked.$who" &
      pid=$!
    fi
    bus_pids+=("$pid")
    check "$who: blocked writing to the pipe" bus_until 60 grep -q pipe_write "/proc/$pid/wchan"
    kill -INT "$pid"
    check "$who: ended by SIGINT" bus_until 10 eval "! kill -0 $pid 2>/dev/null"
    kill -9 "$pid" 2>/dev/null   # (still blocked: not to hang the wait)
    wait "$pid"; rc=$?
    if [ "$who" = tail ]; then
      check "tail --all: exit 0, saying nothing" [ "$rc" -eq 0 ] && [ ! -s "$tmp/blocked.$who" ]
    else
      check "run --follow: exit 130" [ "$rc" -eq 130 ]
      check "... the job goes on" grep -q "^evrun-cli run: stopped following; job [0-9A-Z]* goes on" "$tmp/blocked.$who"
    fi
  done
  # evrun-replay: one SIGINT stops it there too (it took a second one)
  check "lots job succeeded" [ "$(wait_job "$lj" 60)" = succeeded ]
  rm -f "$tmp/fifo.r" && mkfifo "$tmp/fifo.r"
  sleep 300 < "$tmp/fifo.r" &
  bus_pids+=("$!")
  "$bin/evrun-replay" "$tmp/broker" --output "$lj" > "$tmp/fifo.r" 2> "$tmp/blocked.r" &
  pid=$!
  check "replay: blocked writing to the pipe" bus_until 60 grep -q pipe_write "/proc/$pid/wchan"
  kill -INT "$pid"
  check "replay: ended by one SIGINT" bus_until 10 eval "! kill -0 $pid 2>/dev/null"
  kill -9 "$pid" 2>/dev/null
  wait "$pid"
  check "... by the signal's own status (130)" [ $? -eq 130 ]
}

# A step's bytes as it wrote them, to a pipe as to a terminal: escapes,
# \r, NUL, bytes that are no UTF-8 (README "They print a step's output")
case_raw_bytes() {
  fresh raw
  bus_broker && bus_runner rb-1 "" 1 --executors process && bus_wait_runners 1
  pipeline rawb <<'YML'
pipeline: rawb
executor: process
steps:
  - { name: s, run: "printf 'a\\033[31mred\\033[0m 1\\r2\\0003 caf\\303\\251 \\377\\376\\nno newline'" }
YML
  local j
  j=$(submit "$tmp/rawb.yml")
  check "raw-bytes job succeeded" [ "$(wait_job "$j" 60)" = succeeded ]
  printf "$j/s | a\033[31mred\033[0m 1\r2\0003 caf\303\251 \377\376\n$j/s | no newline\n" \
    > "$tmp/raw.want"
  timeout -k 5 20 "$bin/evrun-tail" --job "$j" > "$tmp/raw.tail"
  check "evrun-tail: the bytes as written" cmp "$tmp/raw.want" "$tmp/raw.tail"
  timeout -k 5 20 "$bin/evrun-cli" logs "$j" > "$tmp/raw.logs"
  check "logs: the bytes as written" cmp <(sed "s|^$j/||" "$tmp/raw.want") "$tmp/raw.logs"
}

bus_script_cases "tail long_history follow_outage runner_killed runner_lost runner_lost_queued broker_killed stdout_full blocked_reader raw_bytes" "$@"
bus_script_end

#!/usr/bin/env bash
# test_bus.sh BIN_DIR SRC_DIR [CASE...]: the message-driven half end to
# end: real evrun-broker and evrun-runner processes on ipc:// sockets in a
# temporary directory, real podman (the "podman" fixture), evrun-cli and
# evrun-tail as a user runs them.  Each case starts its own broker and
# runners in a fresh state directory.
set -u
bin=$1 src=$2
shift 2
export CONTAINERS_CONF=$src/tools/podman/containers.conf
: "${EVRUN_PODMAN_URL:=unix:///tmp/evr-it-podman/podman.sock}"
export EVRUN_PODMAN_URL
root=$(mktemp -d /tmp/evr-bus-XXXXXX)
tmp=$root
. "$src/tests/integration/bus_lib.sh"
trap 'bus_stop; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$root"' EXIT
fails=0 passes=0 case_name=

pipeline() { cat > "$tmp/$1.yml"; }

# ticks NAME N PAUSE [LABEL]: a pipeline printing "tick 1".."tick N"
ticks() {
  local labels=${4:+"labels: [$4]"}
  pipeline "$1" <<YML
pipeline: $1
image: localhost/evrun-busybox:latest
$labels
steps:
  - name: count
    run: for i in \$(seq 1 $2); do echo "tick \$i"; sleep $3; done
YML
}

# exactly_once FILE N PREFIX: lines "PREFIXtick 1".."PREFIXtick N" each once, in order
exactly_once() {
  local got want
  got=$(grep -o "tick [0-9]*$" "$1" | tr '\n' ' ')
  want=$(seq 1 "$2" | sed 's/^/tick /' | tr '\n' ' ')
  [ "$got" = "$want" ] || { echo "  want: $want" >&2; echo "  got:  $got" >&2; return 1; }
}

field() {   # field JOB NAME: a field of the job's status
  cli status "$1" --json | sed -n "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"
}

# three_jobs_max FILE SAMPLES PATTERN: submits FILE three times, samples
# (every 0.1 s) how many running jobs match PATTERN in `jobs --json`, checks
# the three succeed; sets $ids and $max (the most seen running at once)
three_jobs_max() {
  local n
  ids=() max=0
  for _ in 1 2 3; do ids+=("$(submit "$1")"); done
  for _ in $(seq 1 "$2"); do
    n=$(cli jobs --json --status running | grep -c "$3")
    [ "$n" -gt "$max" ] && max=$n
    sleep 0.1
  done
  for j in "${ids[@]}"; do check "job $j succeeded" [ "$(wait_job "$j")" = succeeded ]; done
}

case_end_to_end() {
  fresh e2e
  bus_broker && bus_runner e2e-1 "" 2 && bus_wait_runners 1
  cli run "$src/examples/hello.yml" -a WHO=bus --follow > "$tmp/out" 2> "$tmp/err"
  check "run --follow exits 0" [ $? -eq 0 ]
  check "live output" grep -qx "greet | hello, bus" "$tmp/out"
  local job
  job=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/out")
  check "job id printed" [ -n "$job" ]
  check "status succeeded" [ "$(field "$job" status)" = succeeded ]
  check "runner recorded" [ "$(field "$job" runner)" = e2e-1 ]
  check "jobs lists it" grep -q "$job.*hello.*succeeded" <(cli jobs)
  check "logs prints the output" grep -qx "greet | hello, bus" <(cli logs "$job")
  check "runners lists the runner" grep -q "^e2e-1 .*idle" <(cli runners)
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
  check "runner log verifies" "$bin/evrun-replay" "$tmp/r-e2e-1" --verify
  check "no leftovers" no_leftovers "$job"
  cli run "$src/examples/dag.yml" --wait > "$tmp/dag" 2>&1
  check "dag --wait exits 0" [ $? -eq 0 ]
  check "dag succeeded" grep -q "succeeded" "$tmp/dag"
  # a failing job: run --follow exits 1, status says why
  pipeline failing <<'YML'
pipeline: failing
image: localhost/evrun-busybox:latest
steps:
  - name: boom
    run: echo about to fail; exit 3
YML
  cli run "$tmp/failing.yml" --follow > "$tmp/fail" 2>&1
  check "failed job: exit 1" [ $? -eq 1 ]
  check "failed job: output" grep -qx "boom | about to fail" "$tmp/fail"
  # a secret the runner does not have: the job ends failed, saying which
  pipeline secret <<'YML'
pipeline: secret
image: localhost/evrun-busybox:latest
secrets: [EVR_NO_SUCH_SECRET]
steps: [ { name: s, run: "echo never" } ]
YML
  cli run "$tmp/secret.yml" --follow > "$tmp/sec" 2>&1
  check "missing secret: exit 1" [ $? -eq 1 ]
  check "missing secret: the reason names it" grep -q "EVR_NO_SUCH_SECRET" "$tmp/sec"
  # a label no runner has: said at submit time
  cli submit "$tmp/failing.yml" --label gpu > "$tmp/nolabel" 2>&1
  check "no runner with the label: warned" grep -q "no connected runner has the labels gpu" "$tmp/nolabel"
  cli cancel "$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/nolabel")" > /dev/null
  # errors a user meets
  cli status 01ARYZ6S41TSV4RRFFQ69G5FAV > "$tmp/nf" 2>&1
  check "unknown job: exit 1" [ $? -eq 1 ]
  check "unknown job: says so" grep -q "not_found: no job" "$tmp/nf"
  EVRUN_STATE_DIR=$root/nothing-here cli jobs --broker "ipc://$root/nothing-here/bus/clients" > "$tmp/down" 2>&1
  check "no broker: exit 2" [ $? -eq 2 ]
  check "no broker: names the endpoint, suggests up" grep -q "cannot reach the broker at ipc://.*evrun-cli up" "$tmp/down"
}

case_labels() {
  fresh labels
  bus_broker && bus_runner lab-alpha alpha 2 && bus_runner lab-beta beta 2 && bus_wait_runners 2
  ticks la 1 0 alpha
  ticks lb 1 0 beta
  local a1 a2 b1 b2
  a1=$(submit "$tmp/la.yml"); b1=$(submit "$tmp/lb.yml"); a2=$(submit "$tmp/la.yml"); b2=$(submit "$tmp/lb.yml")
  for j in $a1 $a2 $b1 $b2; do check "job $j succeeded" [ "$(wait_job "$j")" = succeeded ]; done
  check "alpha jobs on alpha" [ "$(field "$a1" runner)$(field "$a2" runner)" = lab-alphalab-alpha ]
  check "beta jobs on beta" [ "$(field "$b1" runner)$(field "$b2" runner)" = lab-betalab-beta ]
  # a label nobody has: the job waits, visibly queued
  ticks lz 1 0 zeta
  local z
  z=$(submit "$tmp/lz.yml")
  sleep 1
  check "no runner with the label: queued" [ "$(field "$z" status)" = queued ]
  cli cancel "$z" > /dev/null
  check "cancel queued: cancelled" [ "$(wait_job "$z" 5)" = cancelled ]
}

# A process pipeline goes only to a runner offering the process executor
# (its label executor:process): it waits while only podman runners are
# connected, says so at submit, and runs once such a runner connects.
# `jobs` pages newest first through the broker: queued jobs (the broker's
# queue) and finished ones (its store) in one order; a page with jobs left
# says so on stderr with the command for the next page (--before), and the
# pages together hold every job once.
case_jobs_pages() {
  fresh jobs_pages
  bus_broker && bus_runner jp-proc "" 2 --executors process && bus_wait_runners 1
  local ids=() j
  for _ in 1 2 3; do
    j=$(submit "$src/examples/process.yml")
    check "process job $j succeeded" [ "$(wait_job "$j")" = succeeded ]
    ids+=("$j")
  done
  pipeline jwait <<'YML'
pipeline: jwait
image: localhost/evrun-busybox:latest
labels: [nobody]
steps: [ { name: s, run: "true" } ]
YML
  for _ in 1 2; do ids+=("$(submit "$tmp/jwait.yml")"); done
  local seen="" before="" page=0 next
  while :; do
    page=$((page + 1))
    cli jobs --limit 2 ${before:+--before "$before"} > "$tmp/page" 2> "$tmp/page.err"
    check "page $page: exit 0" [ $? -eq 0 ]
    seen="$seen $(awk 'NR > 1 {print $1}' "$tmp/page" | tr '\n' ' ')"
    next=$(sed -n 's/.*the next: evrun-cli jobs --before \([0-9A-Z]*\) --limit 2$/\1/p' "$tmp/page.err")
    [ -z "$next" ] && break
    check "page $page: the cursor is its last job" [ "$next" = "$(awk 'END {print $1}' "$tmp/page")" ]
    before=$next
    [ $page -lt 5 ] || break
  done
  check "3 pages" [ $page -eq 3 ]
  check "every job once, newest first" [ "$(echo $seen)" = "${ids[4]} ${ids[3]} ${ids[2]} ${ids[1]} ${ids[0]}" ]
  check "a filtered page: the finished ones" \
    [ "$(cli jobs --status succeeded --before "${ids[2]}" | awk 'NR > 1 {print $1}' | tr '\n' ' ')" = "${ids[1]} ${ids[0]} " ]
  cli jobs --before nope > "$tmp/bad" 2>&1
  check "a bad cursor: exit 2" [ $? -eq 2 ]
  check "... saying why" grep -q "nope: not a job id" "$tmp/bad"
}

case_process_label() {
  fresh process_label
  bus_broker && bus_runner pl-podman "" 2 && bus_wait_runners 1
  local j
  cli submit "$src/examples/process.yml" > "$tmp/pl.submit" 2>&1
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/pl.submit")
  check "submit warns: no runner offers it" \
    grep -q "no connected runner has the labels executor:process (the process executor" "$tmp/pl.submit"
  sleep 1
  check "not sent to the podman runner: queued" [ "$(field "$j" status)" = queued ]
  bus_runner pl-proc "" 2 --executors podman,process && bus_wait_runners 2
  check "runs on the process runner" [ "$(wait_job "$j")" = succeeded ]
  check "on pl-proc" [ "$(field "$j" runner)" = pl-proc ]
  check "its label shows" grep -q "executor:process" <(cli runners)
  bus_runner pl-bad "executor:process" 1
  sleep 0.5
  check "a hand-made executor label: refused" grep -q 'executor labels come from the executors setting' "$tmp/runner-pl-bad.log"
  # at most 32 labels, counting the executor labels: none dropped or replaced
  timeout 20 "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id pl-many \
    --labels "$(seq -s, -f 'l%g' 1 31)" --executors podman,process \
    --state-dir "$tmp/r-pl-many" > "$tmp/many.out" 2>&1
  check "31 labels and 2 executors': exit 2" [ $? -eq 2 ]
  check "... naming the limit" grep -q "labels: 31 labels, and 2 executor labels (one per \
executor offered), come to 33: a runner has at most 32; drop 1" "$tmp/many.out"
  bus_runner pl-30 "$(seq -s, -f 'l%g' 1 30)" 1 --executors podman,process && bus_wait_runners 3
  check "30 labels and 2 executors': every one said" \
    grep -q '"l30","executor:podman","executor:process"' <(cli runners --json)
}

# Every runner names the executors it offers (executor:podman,
# executor:process): with only a process-only runner connected, a podman
# job waits (it is not sent there to fail) while a process job runs; the
# podman job runs once a podman runner connects.
case_executor_labels() {
  fresh executor_labels
  bus_broker && bus_runner el-proc "" 2 --executors process && bus_wait_runners 1
  ticks elp 1 0
  local jp jx
  cli submit "$tmp/elp.yml" > "$tmp/el.submit" 2>&1
  jp=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/el.submit")
  check "submit warns: no runner offers podman" grep -q "no connected runner has the labels \
executor:podman (the podman executor: evrun-runner --executors podman)" "$tmp/el.submit"
  jx=$(submit "$src/examples/process.yml")
  check "the process job runs on the process-only runner" [ "$(wait_job "$jx")" = succeeded ]
  check "on el-proc" [ "$(field "$jx" runner)" = el-proc ]
  check "the podman job is not sent there: queued" [ "$(field "$jp" status)" = queued ]
  check "the runner's labels name its executor" grep -q "^el-proc .*executor:process" <(cli runners)
  check "... only" bash -c "! '$bin/evrun-cli' runners | grep -q '^el-proc .*executor:podman'"
  bus_runner el-podman "" 2 && bus_wait_runners 2
  check "the podman job runs once a podman runner connects" [ "$(wait_job "$jp")" = succeeded ]
  check "on el-podman" [ "$(field "$jp" runner)" = el-podman ]
  check "whose labels name podman" grep -q "^el-podman .*executor:podman" <(cli runners)
}

# A runner written before runners named their executors (no executor:*
# label, evr-test-bus old-runner) is taken to offer podman only: it gets a
# podman job, and a process job queued before it is not sent there.
case_old_runner() {
  fresh old_runner
  bus_broker || return
  ticks orp 1 0
  local jx jp
  jx=$(submit "$src/examples/process.yml")
  jp=$(submit "$tmp/orp.yml")
  "$bin/evr-test-bus" old-runner "ipc://$tmp/bus/runners" old-1 > "$tmp/old.out" 2>&1
  check "a job was dispatched to it" [ $? -eq 0 ]
  check "the podman job, not the process job ($jx)" grep -qx "dispatch $jp orp podman" "$tmp/old.out"
  check "the process job still queued" [ "$(field "$jx" status)" = queued ]
}

case_capacity() {
  local ids max
  fresh capacity
  bus_broker && bus_runner cap-1 cap 1 && bus_wait_runners 1
  ticks cap 3 0.3 cap
  three_jobs_max "$tmp/cap.yml" 60 '"runner":"cap-1"'
  check "never more than 1 running (saw $max)" [ "$max" -le 1 ]
  # the jobs ran one after the other: intervals do not overlap
  local prev_end=0 s e ok=true
  for j in "${ids[@]}"; do
    s=$(field "$j" started); e=$(field "$j" finished)
    [ "$s" -ge "$prev_end" ] || ok=false
    prev_end=$e
  done
  check "jobs did not overlap" $ok
}

# submit --count N: N jobs of one file over one connection, each its own id
# and queued; the count bounded; run refuses it; a refusal stops the rest.
case_submit_count() {
  fresh subcount
  bus_broker && bus_wait_runners 0
  pipeline cnt <<'YML'
pipeline: cnt
image: localhost/evrun-busybox:latest
labels: [nobody]
queue: { limit: 4 }
steps: [ { name: s, run: "true" } ]
YML
  cli submit --count 3 "$tmp/cnt.yml" > "$tmp/three" 2>&1
  check "--count 3: exit 0" [ $? -eq 0 ]
  check "--count 3: three distinct jobs accepted" \
    [ "$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/three" | sort -u | wc -l)" -eq 3 ]
  check "--count 3: all three queued" \
    [ "$(cli jobs --pipeline cnt --status queued --json | wc -l)" -eq 3 ]
  cli submit --count 2 "$tmp/cnt.yml" > "$tmp/over" 2>&1
  check "--count 2 over a queue of 4: exit 1 (refused)" [ $? -eq 1 ]
  check "--count 2 over a queue of 4: one accepted, then queue_full" \
    bash -c "[ \$(grep -c accepted '$tmp/over') -eq 1 ] && grep -q queue_full '$tmp/over'"
  local bad
  for bad in 0 -1 100001 2x ""; do
    cli submit --count "$bad" "$tmp/cnt.yml" > "$tmp/bad" 2>&1
    check "--count '$bad': exit 2, says the bounds" \
      bash -c "[ $? -eq 2 ] && grep -q 'expected a number of jobs, 1..100000' '$tmp/bad'"
  done
  cli run --count 2 "$tmp/cnt.yml" > "$tmp/run" 2>&1
  check "run --count: exit 2, submit only" bash -c "[ $? -eq 2 ] && grep -q 'submit only' '$tmp/run'"
  check "nothing more queued" [ "$(cli jobs --pipeline cnt --json | wc -l)" -eq 4 ]
}

case_queue() {
  fresh queue
  bus_broker && bus_wait_runners 0
  pipeline qa <<'YML'
pipeline: qa
image: localhost/evrun-busybox:latest
labels: [nobody]
queue: { limit: 1, strategy: append }
steps: [ { name: s, run: "true" } ]
YML
  pipeline qr <<'YML'
pipeline: qr
image: localhost/evrun-busybox:latest
labels: [nobody]
queue: { limit: 1, strategy: replace }
steps: [ { name: s, run: "true" } ]
YML
  local a1 r1 r2
  a1=$(submit "$tmp/qa.yml")
  check "append: first accepted" [ -n "$a1" ]
  cli submit "$tmp/qa.yml" > "$tmp/full" 2>&1
  check "append: full queue refuses (exit 1)" [ $? -eq 1 ]
  check "append: says queue_full" grep -q "queue_full" "$tmp/full"
  r1=$(submit "$tmp/qr.yml")
  r2=$(submit "$tmp/qr.yml")
  check "replace: both accepted" [ -n "$r1" ] && [ -n "$r2" ]
  check "replace: the waiting one cancelled" [ "$(field "$r1" status)" = cancelled ]
  check "replace: reason replaced" grep -q "replaced by $r2" <(cli status "$r1")
  check "replace: the newest waits" [ "$(field "$r2" status)" = queued ]
  cli pause "$r2" > /dev/null
  check "pause queued: paused" [ "$(field "$r2" status)" = paused ]
  cli resume "$r2" > /dev/null
  check "resume queued: queued" [ "$(field "$r2" status)" = queued ]
  check "cancel queued" cli cancel "$r2"
  check "cancelled queued job: history has job.finished" grep -q "job.finished: cancelled" <(cli logs "$r2" --events)
  cli cancel "$r2" > "$tmp/again" 2>&1
  check "cancel a finished job: conflict, exit 1" [ $? -eq 1 ]
  check "cancel a finished job: says conflict" grep -q conflict "$tmp/again"
}

case_cancel_pause_running() {
  fresh control
  bus_broker && bus_runner ctl-1 "" 2 && bus_wait_runners 1
  ticks slow 20 0.3
  local j
  j=$(submit "$tmp/slow.yml")
  for _ in $(seq 1 50); do [ "$(cli logs "$j" | grep -c tick)" -ge 2 ] && break; sleep 0.1; done
  cli pause "$j" > /dev/null
  check "pause running: accepted" [ $? -eq 0 ]
  for _ in $(seq 1 30); do [ "$(field "$j" status)" = paused ] && break; sleep 0.1; done
  check "status paused" [ "$(field "$j" status)" = paused ]
  local before after
  sleep 0.5; before=$(cli logs "$j" | grep -c tick); sleep 1.5; after=$(cli logs "$j" | grep -c tick)
  check "no output while paused ($before -> $after)" [ "$before" -eq "$after" ]
  cli pause "$j" > /dev/null 2>&1
  check "pause twice: refused" [ $? -eq 1 ]
  cli resume "$j" > /dev/null
  check "resumed" [ "$(wait_job "$j")" = succeeded ]
  cli logs "$j" > "$tmp/paused.out"
  check "every line once after pause/resume" exactly_once "$tmp/paused.out" 20
  local k
  k=$(submit "$tmp/slow.yml")
  for _ in $(seq 1 50); do [ "$(cli logs "$k" | grep -c tick)" -ge 1 ] && break; sleep 0.1; done
  cli cancel "$k" --reason "test cancel" > /dev/null
  check "cancel running: cancelled" [ "$(wait_job "$k" 20)" = cancelled ]
  check "cancel running: reason kept" grep -q "test cancel" <(cli status "$k")
  sleep 1
  check "cancel running: no leftovers" no_leftovers "$k"
}

case_tail() {
  fresh tail
  bus_broker && bus_runner tl-1 "" 2 && bus_wait_runners 1
  ticks tailp 30 0.1
  "$bin/evrun-tail" --pipeline tailp > "$tmp/before.out" 2> "$tmp/before.err" &
  local tpid=$! j
  sleep 0.5
  j=$(submit "$tmp/tailp.yml")
  for _ in $(seq 1 50); do [ "$(cli logs "$j" | grep -c tick)" -ge 10 ] && break; sleep 0.1; done
  timeout 60 "$bin/evrun-tail" --job "$j" > "$tmp/during.out" 2> "$tmp/during.err"
  check "tail during: exits 0 with the job" [ $? -eq 0 ]
  timeout 20 "$bin/evrun-tail" --job "$j" > "$tmp/after.out" 2>&1
  check "tail after: exits 0" [ $? -eq 0 ]
  sleep 0.5
  kill "$tpid"; wait "$tpid" 2>/dev/null
  check "tail before: every line once" exactly_once "$tmp/before.out" 30
  check "tail during: every line once" exactly_once "$tmp/during.out" 30
  check "tail after: every line once" exactly_once "$tmp/after.out" 30
  check "tail prefix job/step" grep -q "^$j/count | tick 1$" "$tmp/after.out"
  "$bin/evrun-tail" --job 01ARYZ6S41TSV4RRFFQ69G5FAV > "$tmp/nf" 2>&1
  check "tail unknown job: exit 2" [ $? -eq 2 ]
}

# A follower outlives a broker that does not answer for longer than its
# --timeout-ms (SIGSTOP, then SIGCONT) and one killed and restarted on the
# same state directory: it says so once an outage, asks again, says when
# the broker is back, prints every line once and in order, and exits 0
# with the job.  Before, the first unanswered history request ended it (2).
case_follow_outage() {
  fresh fout
  bus_broker && bus_runner fo-1 "" 2 && bus_wait_runners 1
  ticks fout 40 0.25
  local j fpid tpid ppid ipid
  timeout 120 "$bin/evrun-tail" --pipeline fout --timeout-ms 500 > "$tmp/fp.out" 2> "$tmp/fp.err" &
  ppid=$!
  sleep 0.5
  j=$(submit "$tmp/fout.yml")
  timeout 120 "$bin/evrun-cli" logs "$j" --follow --timeout-ms 500 > "$tmp/fo.out" 2> "$tmp/fo.err" &
  fpid=$!
  timeout 120 "$bin/evrun-tail" --job "$j" --timeout-ms 500 > "$tmp/ft.out" 2> "$tmp/ft.err" &
  tpid=$!
  # one that waits 20 s for an answer: interrupted in that wait (SIGINT)
  timeout 120 "$bin/evrun-cli" logs "$j" --follow --timeout-ms 20000 > "$tmp/fi.out" 2> "$tmp/fi.err" &
  ipid=$!
  for _ in $(seq 1 200); do [ "$(grep -c tick "$tmp/fo.out")" -ge 3 ] && break; sleep 0.1; done
  local eo et
  eo=$(wc -l < "$tmp/fo.err"); et=$(wc -l < "$tmp/ft.err")
  kill -STOP "$broker_pid"
  # until each follower said the outage (its wait of 500 ms passed), and 2 s more
  for _ in $(seq 1 300); do
    grep -q "no answer from the broker" "$tmp/fo.err" && grep -q "no answer from the broker" "$tmp/ft.err" && break
    sleep 0.1
  done
  sleep 2
  kill -INT "$ipid"
  wait "$ipid"
  check "interrupted in a wait: exit 1" [ $? -eq 1 ]
  check "interrupted in a wait: no outage said" bash -c "! grep -q 'following on' '$tmp/fi.err'"
  check "broker stopped: logs --follow still runs" kill -0 "$fpid"
  check "broker stopped: evrun-tail still runs" kill -0 "$tpid"
  # it waits for lines: the job's last (before job.finished) not taken yet
  check "broker stopped: the job's end not taken yet" bash -c "! grep -q 'tick 40\$' '$tmp/fo.out'"
  kill -CONT "$broker_pid"
  for _ in $(seq 1 200); do grep -q "answers again" "$tmp/fo.err" && grep -q "answers again" "$tmp/ft.err" && break; sleep 0.1; done
  check "stopped broker: said once (logs)" [ "$(tail -n +$((eo + 1)) "$tmp/fo.err" | grep -c "no answer from the broker.*; following on")" -eq 1 ]
  check "stopped broker: said once (tail)" [ "$(tail -n +$((et + 1)) "$tmp/ft.err" | grep -c "no answer from the broker.*; following on")" -eq 1 ]
  check "stopped broker: said it is back" grep -q "answers again; following on" "$tmp/fo.err"
  kill -9 "$broker_pid"
  wait "$broker_pid" 2>/dev/null
  rm -f "$tmp/bus/clients" "$tmp/bus/runners" "$tmp/bus/events"
  sleep 2
  bus_broker
  wait "$fpid"
  check "logs --follow: exit 0 across the outages" [ $? -eq 0 ]
  wait "$tpid"
  check "evrun-tail: exit 0 across the outages" [ $? -eq 0 ]
  check "job succeeded" [ "$(wait_job "$j" 10)" = succeeded ]
  check "logs --follow: every line once, in order" exactly_once "$tmp/fo.out" 40
  check "evrun-tail: every line once, in order" exactly_once "$tmp/ft.out" 40
  for _ in $(seq 1 300); do grep -q "tick 40$" "$tmp/fp.out" && break; sleep 0.1; done
  check "evrun-tail --pipeline: still runs" kill -0 "$ppid"
  kill "$ppid"
  wait "$ppid"
  check "evrun-tail --pipeline: every line once, in order" exactly_once "$tmp/fp.out" 40
  check "each outage said once, each end too" \
    [ "$(grep -c "; following on, asking again" "$tmp/fo.err")" -eq "$(grep -c "answers again" "$tmp/fo.err")" ]
  # a definite answer still ends a follow: no such job, exit 2
  "$bin/evrun-cli" logs 01ARYZ6S41TSV4RRFFQ69G5FAV --follow --timeout-ms 500 > "$tmp/nf" 2>&1
  check "unknown job: exit 2" [ $? -eq 2 ]
  check "unknown job: says so" grep -q "not_found" "$tmp/nf"
}

case_runner_killed() {
  fresh rkill
  bus_broker && bus_runner rk-1 "" 2 && bus_wait_runners 1
  ticks rk 30 0.1
  local j
  j=$(submit "$tmp/rk.yml")
  timeout 90 "$bin/evrun-tail" --job "$j" > "$tmp/rk.out" 2>&1 &
  local tpid=$!
  for _ in $(seq 1 50); do [ "$(cli logs "$j" | grep -c tick)" -ge 8 ] && break; sleep 0.1; done
  kill -9 "$runner_pid_rk_1"
  sleep 2
  check "killed runner shown lost" grep -q "^rk-1 .*lost" <(cli runners)
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
      "$bin/evrun-cli" submit "$tmp/one.yml" --timeout-ms 2000 2>/dev/null \
        | sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' >> "$tmp/accepted"
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

case_concurrency() {
  local ids max
  fresh conc
  bus_broker && bus_runner cc-1 "" 2 && bus_runner cc-2 "" 2 && bus_wait_runners 2
  pipeline conc <<'YML'
pipeline: conc
image: localhost/evrun-busybox:latest
concurrency: 1
steps: [ { name: s, run: "sleep 0.4" } ]
YML
  three_jobs_max "$tmp/conc.yml" 40 '"pipeline":"conc"'
  check "pipeline concurrency 1: never 2 running (saw $max)" [ "$max" -le 1 ]
}

case_drain_and_stop() {
  fresh drain
  bus_broker && bus_runner dr-1 "" 2 --exit-when-drained && bus_wait_runners 1
  ticks dslow 10 0.2
  local j k
  j=$(submit "$tmp/dslow.yml")
  for _ in $(seq 1 50); do [ "$(cli logs "$j" | grep -c tick)" -ge 1 ] && break; sleep 0.1; done
  check "drain accepted" cli drain dr-1
  check "drain unknown runner: exit 1" bash -c "! '$bin/evrun-cli' drain nobody 2>/dev/null"
  check "runner shown draining" grep -q "^dr-1 .*draining" <(cli runners)
  k=$(submit "$tmp/dslow.yml")
  check "running job finishes" [ "$(wait_job "$j" 30)" = succeeded ]
  for _ in $(seq 1 50); do kill -0 "$runner_pid_dr_1" 2>/dev/null || break; sleep 0.1; done
  check "drained runner exited" bash -c "! kill -0 $runner_pid_dr_1 2>/dev/null"
  check "new job not taken while draining" [ "$(field "$k" status)" = queued ]
  # SIGTERM: no new work, the running job finishes, then the runner exits
  bus_runner dr-2 "" 2 && bus_wait_runners 1
  for _ in $(seq 1 50); do [ "$(cli logs "$k" | grep -c tick)" -ge 1 ] && break; sleep 0.1; done
  kill -TERM "$runner_pid_dr_2"
  check "SIGTERM: the running job still succeeds" [ "$(wait_job "$k" 30)" = succeeded ]
  for _ in $(seq 1 50); do kill -0 "$runner_pid_dr_2" 2>/dev/null || break; sleep 0.1; done
  check "SIGTERM: the runner exited after its job" bash -c "! kill -0 $runner_pid_dr_2 2>/dev/null"
  check "SIGTERM: every line once" exactly_once <(cli logs "$k") 10
}

# A runner stopped (SIGTERM, as `down` does) right as a job ends waits for
# the job's cleanup before it exits: once it has, no container or
# workspace volume of the job is left in podman (README: everything is
# removed when the job ends).
case_stop_at_end() {
  fresh stop_end
  bus_broker && bus_runner se-1 "" 1 && bus_wait_runners 1
  pipeline send <<'YML'
pipeline: send
image: localhost/evrun-busybox:latest
steps:
  - { name: a, run: "mkdir m && cd m && seq 1 20000 | xargs touch" }
  - { name: b, run: "ls m | wc -l" }
YML
  local j id p
  j=$(submit "$tmp/send.yml")
  # evrun-tail --job exits as job.finished comes: the workspace (20,000
  # files) is still being removed then
  timeout 120 "$bin/evrun-tail" --job "$j" > "$tmp/send.tail" 2>&1
  kill -TERM "$runner_pid_se_1"
  for _ in $(seq 1 400); do kill -0 "$runner_pid_se_1" 2>/dev/null || break; sleep 0.1; done
  check "the job succeeded" [ "$(wait_job "$j" 10)" = succeeded ]
  check "the runner exited" bash -c "! kill -0 $runner_pid_se_1 2>/dev/null"
  id=$(echo "$j" | tr 'A-Z' 'a-z')
  p=(podman --url "$EVRUN_PODMAN_URL")
  check "no workspace volume left once it exited" bash -c "! ${p[*]} volume exists evrun-$id"
  check "no container left" [ "$("${p[@]}" ps -a --format '{{.Names}}' | grep -c "^evrun-$id-")" -eq 0 ]
  check "it said it stopped" grep -q "stopped$" "$tmp/runner-se-1.log"
  "${p[@]}" volume rm -f "evrun-$id" > /dev/null 2>&1   # the old way's leftover, if any
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
  timeout 60 "$bin/evrun-tail" --job "$j" > "$tmp/lh.out" 2>&1
  check "tail after: exit 0" [ $? -eq 0 ]
  local s got
  for s in a b c d; do
    got=$(grep -c "^$j/$s | $s [0-9]*$" "$tmp/lh.out")
    check "step $s: 350 lines ($got)" [ "$got" -eq 350 ]
    check "step $s: in order, once" [ "$(grep "/$s | " "$tmp/lh.out" | awk '{print $NF}' | tr '\n' ' ')" = "$(seq 1 350 | tr '\n' ' ')" ]
  done
}

# A runner that stays away loses its jobs: the running one ends lost (and,
# as its step retries on lost, is queued again as a new job), the one
# dispatched to it goes to another runner; when it comes back its copies
# are cancelled, their events are not stored, and it takes work again.
case_runner_lost() {
  fresh rlost
  bus_broker --reclaim-ms 2000 && bus_runner rl-1 "x,y" 2 && bus_wait_runners 1
  pipeline rlong <<'YML'
pipeline: rlong
image: localhost/evrun-busybox:latest
labels: [x]
steps:
  - name: count
    retry: { on: [lost], max: 1 }
    run: for i in $(seq 1 50); do echo "tick $i"; sleep 0.1; done
YML
  ticks rshort 3 0.1 x
  ticks ronly 3 0.1 y
  local j1 j2 j3
  j1=$(submit "$tmp/rlong.yml")
  for _ in $(seq 1 100); do [ "$(cli logs "$j1" | grep -c tick)" -ge 5 ] && break; sleep 0.1; done
  kill -STOP "$runner_pid_rl_1"
  j2=$(submit "$tmp/rshort.yml")   # dispatched to rl-1 before it is seen lost
  sleep 0.5
  check "j2 dispatched to the stopped runner" [ "$(field "$j2" runner)" = rl-1 ]
  bus_runner rl-2 "x" 2
  check "running job ended lost" [ "$(wait_job "$j1" 30)" = lost ]
  check "reason names the runner" grep -q "runner rl-1 was lost for" <(cli status "$j1")
  local j1b
  j1b=$(cli status "$j1" | sed -n 's/.*queued again as \([0-9A-Z]*\) (retry 1 of 1).*/\1/p')
  check "queued again as a new job" [ -n "$j1b" ]
  check "... which succeeded" [ "$(wait_job "$j1b" 60)" = succeeded ]
  check "... on rl-2" [ "$(field "$j1b" runner)" = rl-2 ]
  cli logs "$j1b" > "$tmp/rl.retry"
  check "... every line once" exactly_once "$tmp/rl.retry" 50
  check "dispatched job ran elsewhere" [ "$(wait_job "$j2" 30)" = succeeded ]
  check "... on rl-2" [ "$(field "$j2" runner)" = rl-2 ]
  timeout 20 "$bin/evrun-tail" --job "$j1" > "$tmp/rl.tail" 2>&1
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
# job.finished (its steps never moved).
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
  check "... and it ended with job.finished" grep -q "job.finished" <("$bin/evrun-replay" "$tmp/broker" --job "$j")
  kill -CONT "$runner_pid_rq_1"
  for _ in $(seq 1 100); do grep -q "$j: rq-1 finished its copy" "$tmp/broker.log" && break; sleep 0.1; done
  check "the runner ended its copy" grep -q "$j: rq-1 finished its copy" "$tmp/broker.log"
  check "still lost" [ "$(field "$j" status)" = lost ]
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
}

# tcp:// endpoints use CURVE: the broker admits only the keys in its
# curve/runners/ and curve/clients/, each in its own role.
case_curve() {
  fresh curve
  local ep cep other=$tmp/other
  ep=tcp://127.0.0.1:$(free_port) cep=tcp://127.0.0.1:$(free_port)
  "$bin/evrun-broker" --state-dir "$tmp" --heartbeat-ms 200 --lease-ms 1500 --client-endpoint "$cep" \
    --runner-endpoint "$ep" --events-endpoint "tcp://127.0.0.1:$(free_port)" >> "$tmp/broker.log" 2>&1 &
  bus_pids+=("$!")
  for _ in $(seq 1 100); do grep -q "serving clients" "$tmp/broker.log" && break; sleep 0.05; done
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
  timeout 30 "$bin/evrun-runner" --broker "$ep" --id cv-1 --state-dir "$tmp/r-cv-2" \
    --broker-key "$tmp/curve/broker.cert" > "$tmp/cv2.out" 2>&1
  check "an id taken by another key: the runner stops" [ $? -ne 0 ]
  check "... saying so" grep -q "belongs to another admitted key" "$tmp/cv2.out"
  check "... and cv-1 keeps its session" grep -q "^cv-1 .*idle" <("$bin/evrun-cli" runners --broker "$cep")
  "$bin/evrun-cli" run "$src/examples/hello.yml" --follow --broker "$cep" > "$tmp/cv.run" 2>&1
  check "a job over tcp with CURVE" grep -qx "greet | hello, world" "$tmp/cv.run"
  local j
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/cv.run")
  timeout 20 "$bin/evrun-tail" --job "$j" --broker "$cep" > "$tmp/cv.tail" 2>&1
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
  check "the broker's key given as its 40 characters" "$bin/evrun-cli" jobs --broker "$cep" \
    --broker-key "$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$tmp/curve/broker.cert")" \
    --state-dir "$other"
}

case_up_down() {
  fresh updown
  local st=$tmp/s
  EVRUN_STATE_DIR=$st cli up --runners 2 > "$tmp/up1" 2>&1
  check "up: exit 0" [ $? -eq 0 ]
  if grep -q '^HTTP API: ' "$tmp/up1"; then   # (not when another gateway holds its port)
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
  EVRUN_STATE_DIR=$st cli up --runners 2 > "$tmp/up2" 2>&1
  check "up again: exit 0" [ $? -eq 0 ]
  pids2=$(cat "$st"/run/*.pid | sort | tr '\n' ' ')
  check "up again: nothing new started" [ "$pids1" = "$pids2" ]
  EVRUN_STATE_DIR=$st cli run "$src/examples/hello.yml" --follow > "$tmp/uprun" 2>&1
  check "run on the up instance" grep -qx "greet | hello, world" "$tmp/uprun"
  EVRUN_STATE_DIR=$st cli down > "$tmp/down" 2>&1
  check "down: exit 0" [ $? -eq 0 ]
  local alive=0 p
  for p in $pids1; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
  check "down: every process stopped ($alive left)" [ "$alive" -eq 0 ]
  EVRUN_STATE_DIR=$st cli jobs > /dev/null 2>&1
  check "after down: broker unreachable (exit 2)" [ $? -eq 2 ]
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

# A state tree another user could change is refused, naming the path and
# the fix, and nothing is written through a link planted in it.  "Another
# user" is uid 65534 (chown works as root only; the rest runs as anyone).
# `evrun-cli up --executors podman,process`: examples/process.yml through
# run --follow, on a runner labelled executor:process.
case_up_process() {
  fresh upproc
  local st=$tmp/s p alive=0
  EVRUN_STATE_DIR=$st cli up --executors podman,process > "$tmp/up" 2>&1
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
    EVRUN_STATE_DIR=$st cli up --executors process > "$tmp/up" 2>&1
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
  python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$st/bus/clients"
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
  rm -f "$st/bus/clients"
  mkdir -p "$st/broker" "$st/runners/1" && chmod 0777 "$st/broker" "$st/runners/1"
  timeout 20 "$bin/evrun-broker" --local --state-dir "$st" > "$tmp/broker.out" 2>&1
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
  env -u EVRUN_STATE_DIR -u XDG_STATE_HOME HOME="$home" "$bin/evrun-cli" up > "$tmp/up" 2>&1
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
  env -u EVRUN_STATE_DIR -u XDG_STATE_HOME HOME="$home" "$bin/evrun-cli" up > "$tmp/up2" 2>&1
  check "broker failing: up exits 2" [ $? -eq 2 ]
  check "names the broker's exit and shows its log" grep -q "broker (pid [0-9]*) exited with status 2; the end of $st/logs/broker.log" "$tmp/up2"
  check "the log's end is shown" grep -q "^  evrun-broker: .*$st/broker" "$tmp/up2"
  env -u EVRUN_STATE_DIR -u XDG_STATE_HOME HOME="$home" "$bin/evrun-cli" down > /dev/null 2>&1
}

# fake_broker NAME BIG IMAGE: evr-test-bus in the broker's place on
# ipc://$tmp/NAME, then a runner NAME against it; waits for the fake
# broker's end (its output in $tmp/NAME.out) and sets $fake_rc
fake_broker() {
  "$bin/evr-test-bus" broker "ipc://$tmp/$1" "$2" "$3" > "$tmp/$1.out" 2>&1 &
  local fb=$!
  bus_pids+=("$fb")
  "$bin/evrun-runner" --broker "ipc://$tmp/$1" --id "$1" --capacity 1 --state-dir "$tmp/r-$1" \
    --heartbeat-ms 200 --lease-ms 1500 --grace 2 >> "$tmp/runner-$1.log" 2>&1 &
  bus_pids+=("$!")
  wait "$fb"
  fake_rc=$?
}

case_too_large() {
  fresh big
  bus_broker && bus_runner big-1 "" 1 && bus_wait_runners 1
  # a valid submit just under the 4 MiB message bound: refused, naming the limit
  # (its job.accepted, a little larger, would fit in no events message)
  "$bin/evr-test-bus" submit "ipc://$tmp/bus/clients" 4194290 > "$tmp/sub" 2>&1
  check "big submit: too_large naming the limit" \
    grep -q "^error too_large: submit.spec: the pipeline spec is [0-9]* bytes as msgpack, over the limit of 1048576 bytes" "$tmp/sub"
  check "the runner still runs the next job" [ "$(wait_job "$(submit "$src/examples/hello.yml")" 60)" = succeeded ]
  # a file whose aliases expand past the limit: refused before sending, said once
  { printf 'pipeline: alias\nimage: localhost/evrun-busybox:latest\nsteps:\n  - name: s0\n    run: &r '
    head -c 60000 /dev/zero | tr '\0' x; echo
    for i in $(seq 1 70); do echo "  - {name: s$i, run: *r}"; done; } > "$tmp/alias.yml"
  cli submit "$tmp/alias.yml" > "$tmp/alias.out" 2>&1
  check "aliases past the limit: submit fails" [ $? -ne 0 ]
  check "aliases past the limit: the limit named once" \
    [ "$(grep -c "more than 1048576 bytes, the limit of a pipeline spec" "$tmp/alias.out")" -eq 1 ]
  check "aliases past the limit: nothing sent" bash -c "! grep -q 'cannot send' '$tmp/alias.out'"
  bus_stop
  # a runner given such a dispatch anyway (queued by an older broker):
  # that job fails saying why, its job.accepted holds a stub, the next runs
  fake_broker big-2 4194290 localhost/evrun-busybox:latest
  check "big dispatch: the next job's end reached the broker" [ "$fake_rc" -eq 0 ]
  check "big dispatch: job.accepted with the spec cut to a stub" \
    grep -q "^event [0-9]* job.accepted .* steps=[0-9]* run0=0$" "$tmp/big-2.out"
  check "big dispatch: the job failed, naming the limit" \
    grep -q "^event [0-9]* job.finished .* status=failed reason=the pipeline spec is [0-9]* bytes as msgpack, over the limit of 1048576" "$tmp/big-2.out"
  check "big dispatch: the next job succeeded" grep -q "job.finished .* status=succeeded" "$tmp/big-2.out"
  check "big dispatch: the runner says why" grep -q "cannot run here: the pipeline spec is" "$tmp/runner-big-2.log"
  bus_stop
  # an older runner's log holding an event no events message can carry:
  # it goes out cut down, and the events after it follow
  "$bin/evr-test-bus" old-log "$tmp/r-big-3" 4194300 > /dev/null
  fake_broker big-3 0 -
  check "old log: the stream went on" [ "$fake_rc" -eq 0 ]
  check "old log: job.accepted sent as a stand-in" grep -q "^event 1 job.accepted .* run0=0$" "$tmp/big-3.out"
  check "old log: its job.finished after it" grep -q "^event 2 job.finished " "$tmp/big-3.out"
  check "old log: the runner says so" grep -q "over the 4194240 an events message holds" "$tmp/runner-big-3.log"
}

# a runner whose batch holds events the broker's archive refuses (the
# stand-in runner of evr-test-bus, see its header): each fails its own job
# or is dropped, loudly; the rest of the batch is stored and acked, the
# runner's stream goes on
case_refused_event() {
  fresh refuse
  bus_broker || return
  "$bin/evr-test-bus" runner "ipc://$tmp/bus/runners" fake-1 > "$tmp/fake.out" 2>&1
  check "refused: the stream went on, the runner's own end of A acked" [ $? -eq 0 ]
  local a b c d st
  read -r _ a b c d < <(grep '^jobs ' "$tmp/fake.out")
  check "refused: the batch acked whole" grep -qx "ack 11" "$tmp/fake.out"
  check "refused: no error answer" bash -c "! grep -q '^error' '$tmp/fake.out'"
  check "refused: told to cancel A, naming the event" grep -q "^control cancel $a reason=the broker refused event seq 4 (step.finished) of runner fake-1: job $a: step.finished .*illegal" "$tmp/fake.out"
  check "refused: told to cancel B (an event after its end)" grep -q "^control cancel $b reason=the broker refused event seq 9 (job.paused) of runner fake-1: .*the job has finished" "$tmp/fake.out"
  st=$(cli status "$a" --json)
  check "refused: A failed" [ "$(field "$a" status)" = failed ]
  check "refused: A's reason names the event" grep -q "the broker refused event seq 4 (step.finished) of runner fake-1: .*; the job is ended here" <<< "$st"
  check "refused: A's step ended too" grep -q '"steps_done":1' <<< "$st"
  check "refused: A's events before the refused one stored" grep -q '"started":[1-9]' <<< "$st"
  check "refused: B's events stored" [ "$(field "$b" status)" = succeeded ]
  check "refused: C's, after the refused ones, stored" [ "$(field "$c" status)" = cancelled ]
  check "refused: the broker logs each refusal" [ "$(grep -c 'REFUSED' "$tmp/broker.log")" -eq 3 ]
  check "refused: a job the archive does not hold: cancelled on the runner" grep -q "^control cancel $d reason=the broker refused event seq 7 (job.started) of runner fake-1: .*; the runner is told to cancel the job" "$tmp/fake.out"
  check "refused: ... and not in the archive" bash -c "! '$bin/evrun-cli' status $d > /dev/null 2>&1"
  check "refused: the runner's own end of A not stored" grep -q "job $a: fake-1 finished its copy (cancelled); not stored" "$tmp/broker.log"
  check "refused: archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
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
      grep -q "no broker runs at the state directory $none (no ipc://$none/bus/clients): start one with \`evrun-cli up\`, or reach a remote one with --broker tcp://HOST:PORT" "$tmp/nb"
  done
  EVRUN_STATE_DIR=$none "$bin/evrun-tail" --all > "$tmp/nb" 2>&1
  check "no broker, evrun-tail: suggests up" grep -q "no broker runs at the state directory $none" "$tmp/nb"
  local port gw tok
  port=$(free_port)
  tok=$(EVRUN_STATE_DIR=$none cli token)
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
  check "EVRUN_TIMEOUT_MS=abc: named" grep -q 'timeout_ms = "abc" (from env): expected a whole number from 1 to 3600000' "$tmp/bad"
  "$bin/evrun-gateway" --timeout-ms abc --print-config > "$tmp/bad" 2>&1   # (nothing started)
  check "evrun-gateway --timeout-ms abc: exit 2, named" \
    bash -c "[ $? -eq 2 ] && grep -q 'timeout_ms = \"abc\" (from flag): expected a whole number' '$tmp/bad'"
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
  timeout 20 "$bin/evrun-runner" --broker "ipc://$tmp/bus/clients" --state-dir "$tmp/r-ws" \
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

cases=${*:-end_to_end labels jobs_pages process_label executor_labels old_runner capacity concurrency queue submit_count cancel_pause_running drain_and_stop stop_at_end tail long_history follow_outage runner_killed runner_lost runner_lost_queued curve broker_killed up_down up_ping up_process up_process_only state_refused up_fresh_home too_large refused_event cli_errors}
for c in $cases; do
  case_name=$c
  echo "== $c"
  "case_$c"
done
bus_stop
case_name=sanitizers
check "no sanitizer report in any broker or runner log" \
  bash -c "! grep -l 'Sanitizer\|runtime error' $root/*/*.log"
echo "test_bus: $passes passed, $fails failed"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# test_bus.sh BIN_DIR SRC_DIR [CASE...]: the message-driven half end to
# end: real evrun-broker and evrun-runner processes on ipc:// sockets in a
# temporary directory, real podman (the "podman" fixture), evrun-cli and
# evrun-tail as a user runs them.  Each case starts its own broker and
# runners in a fresh state directory.  This one: a job's way through the
# bus (labels and executors, capacity and concurrency, queue policies,
# pause, cancel, drain and stop, messages past the size limits).  On
# bus_lib.sh too: test_bus_follow.sh (followers; runners and brokers lost
# or killed), test_bus_ops.sh (CURVE, up and down, the state tree, the
# command line's errors), test_bus_jobs.sh (what a job does in the bus).
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init bus --podman

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
  cli submit "$tmp/failing.yml" --label gpu > "$tmp/nolabel.id" 2> "$tmp/nolabel"
  check "no runner with the label: warned" grep -q "no connected runner has the labels gpu" "$tmp/nolabel"
  # submit's stdout is the id alone (J=$(evrun-cli submit F)); the sentence goes to stderr
  check "submit: stdout is the job id alone" grep -qx '[0-9A-Z]\{26\}' "$tmp/nolabel.id"
  check "submit: one line" [ "$(wc -l < "$tmp/nolabel.id")" -eq 1 ]
  check "submit: 'job ID accepted (pipeline P)' on stderr" \
    grep -qx "job $(cat "$tmp/nolabel.id") accepted (pipeline failing)" "$tmp/nolabel"
  cli cancel "$(cat "$tmp/nolabel.id")" > /dev/null
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
  bus_broker && bus_runner lab-alpha alpha 2 && bus_runner lab-beta beta,gamma 2 && bus_wait_runners 2
  # the start-up line names every label, not only the first
  check "the runner's start-up line lists all its labels" \
    grep -Eq "connecting to the broker at .* \(labels: beta,gamma(,executor:[a-z]+)+, capacity 2\)" "$tmp/runner-lab-beta.log"
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
  # the next page's command prints it as this one: --json and --tree kept
  cli jobs --limit 2 --json --tree > /dev/null 2> "$tmp/page.err"
  check "a --json --tree page: the next keeps --tree --json" \
    grep -q "the next: evrun-cli jobs --before ${ids[3]} --limit 2 --tree --json$" "$tmp/page.err"
  check "every job once, newest first" [ "$(echo $seen)" = "${ids[4]} ${ids[3]} ${ids[2]} ${ids[1]} ${ids[0]}" ]
  check "a filtered page: the finished ones" \
    [ "$(cli jobs --status succeeded --before "${ids[2]}" | awk 'NR > 1 {print $1}' | tr '\n' ' ')" = "${ids[1]} ${ids[0]} " ]
  cli jobs --before nope > "$tmp/bad" 2>&1
  check "a bad cursor: exit 2" [ $? -eq 2 ]
  check "... saying why" grep -q "nope: not a job id" "$tmp/bad"
}

# A process pipeline goes only to a runner offering the process executor
# (its label executor:process): it waits while only podman runners are
# connected, says so at submit, and runs once such a runner connects.
case_process_label() {
  fresh process_label
  bus_broker && bus_runner pl-podman "" 2 && bus_wait_runners 1
  local j
  j=$(cli submit "$src/examples/process.yml" 2> "$tmp/pl.submit")
  check "submit warns: no runner offers it" \
    grep -q "no connected runner has the labels executor:process (the process executor" "$tmp/pl.submit"
  sleep 1
  check "not sent to the podman runner: queued" [ "$(field "$j" status)" = queued ]
  bus_runner pl-proc "" 2 --executors podman,process && bus_wait_runners 2
  check "runs on the process runner" [ "$(wait_job "$j")" = succeeded ]
  check "on pl-proc" [ "$(field "$j" runner)" = pl-proc ]
  check "its label shows" grep -q "executor:process" <(cli runners)
  bus_runner pl-bad "executor:process" 1
  check "a hand-made executor label: refused" \
    bus_until 30 grep -q 'executor labels come from the executors setting' "$tmp/runner-pl-bad.log"
  # at most 32 labels, counting the executor labels: none dropped or replaced
  timeout -k 10 20 "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id pl-many \
    --labels "$(seq -s, -f 'l%g' 1 31)" --executors podman,process \
    --state-dir "$tmp/r-pl-many" > "$tmp/many.out" 2>&1
  check "31 labels and 2 executors': exit 2" [ $? -eq 2 ]
  check "... naming the limit" grep -q "(from flag): 31 labels, and 2 executor labels (one per \
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
  jp=$(cli submit "$tmp/elp.yml" 2> "$tmp/el.submit")
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
  check "replace: both accepted" [ -n "$r1" ]
  check "replace: both accepted [-n r2]" [ -n "$r2" ]
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
  cli submit --count 3 "$tmp/cnt.yml" > "$tmp/three" 2> "$tmp/three.err"
  check "--count 3: exit 0" [ $? -eq 0 ]
  check "--count 3: stdout is three ids, one per line" [ "$(grep -cx '[0-9A-Z]\{26\}' "$tmp/three")" -eq 3 ]
  check "--count 3: stdout is three ids, one per line [(wc -l < three) -eq 3]" [ "$(wc -l < "$tmp/three")" -eq 3 ]
  check "--count 3: three distinct jobs" [ "$(sort -u "$tmp/three" | wc -l)" -eq 3 ]
  check "--count 3: each said accepted on stderr" [ "$(grep -c '^job [0-9A-Z]* accepted (pipeline cnt)$' "$tmp/three.err")" -eq 3 ]
  check "--count 3: all three queued" \
    [ "$(cli jobs --pipeline cnt --status queued --json | wc -l)" -eq 3 ]
  cli submit --count 2 "$tmp/cnt.yml" > "$tmp/over.id" 2> "$tmp/over"
  check "--count 2 over a queue of 4: exit 1 (refused)" [ $? -eq 1 ]
  check "--count 2 over a queue of 4: one accepted, then queue_full" \
    bash -c "[ \$(grep -c accepted '$tmp/over') -eq 1 ] && grep -q queue_full '$tmp/over'"
  check "--count 2 over a queue of 4: the one id on stdout" [ "$(grep -cx '[0-9A-Z]\{26\}' "$tmp/over.id")" -eq 1 ]
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
  check "cancel running: logs end saying why" grep -q "^job $k cancelled: test cancel" <(cli logs "$k")
  sleep 1
  check "cancel running: no leftovers" no_leftovers "$k"
}

case_drain_and_stop() {
  fresh drain
  bus_broker && bus_runner dr-1 "" 2 --exit-when-drained && bus_wait_runners 1
  ticks dslow 10 0.2
  local j k
  j=$(submit "$tmp/dslow.yml")
  check "the job runs before the drain" bus_until 60 eval '[ "$(cli logs "$j" | grep -c tick)" -ge 1 ]'
  check "drain accepted" cli drain dr-1
  check "drain unknown runner: exit 1" bash -c "! '$bin/evrun-cli' drain nobody 2>/dev/null"
  check "runner shown draining" grep -q "^dr-1 .*draining" <(cli runners)
  k=$(submit "$tmp/dslow.yml")
  check "running job finishes" [ "$(wait_job "$j" 30)" = succeeded ]
  # it exits once the job's cleanup is done (its container removed)
  check "drained runner exited" bus_until 60 not kill -0 "$runner_pid_dr_1" 2>/dev/null
  check "new job not taken while draining" [ "$(field "$k" status)" = queued ]
  # SIGTERM: no new work, the running job finishes, then the runner exits
  bus_runner dr-2 "" 2 && bus_wait_runners 1
  check "the queued job runs on dr-2" bus_until 60 eval '[ "$(cli logs "$k" | grep -c tick)" -ge 1 ]'
  kill -TERM "$runner_pid_dr_2"
  check "SIGTERM: the running job still succeeds" [ "$(wait_job "$k" 30)" = succeeded ]
  check "SIGTERM: the runner exited after its job" bus_until 60 not kill -0 "$runner_pid_dr_2" 2>/dev/null
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
  timeout -k 10 120 "$bin/evrun-tail" --job "$j" > "$tmp/send.tail" 2>&1
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

# fake_broker NAME BIG IMAGE: evr-test-bus in the broker's place on
# ipc://$tmp/NAME, then a runner NAME against it; waits for the fake
# broker's end (its output in $tmp/NAME.out) and sets $fake_rc
fake_broker() {
  "$bin/evr-test-bus" broker "ipc://$tmp/$1" "$2" "$3" > "$tmp/$1.out" 2>&1 &
  local fb=$!
  bus_pids+=("$fb")
  "$bin/evrun-runner" --broker "ipc://$tmp/$1" --id "$1" --capacity 1 --state-dir "$tmp/r-$1" \
    --heartbeat-ms 200 --lease-ms 5000 --grace 2 >> "$tmp/runner-$1.log" 2>&1 &
  bus_pids+=("$!")
  wait "$fb"
  fake_rc=$?
  [ "$fake_rc" -eq 0 ] || { echo "-- $1.out:"; tail -n 20 "$tmp/$1.out" | cut -c1-300
    echo "-- runner-$1.log:"; tail -n 20 "$tmp/runner-$1.log" | cut -c1-300; }
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
  check "refused: B's events stored" [ "$(field "$b" status)/$(field "$b" reason)" = failed/B-made-by-evr-test-bus ]
  check "refused: C's, after the refused ones, stored" [ "$(field "$c" status)" = cancelled ]
  check "refused: the broker logs each refusal" [ "$(grep -c 'REFUSED' "$tmp/broker.log")" -eq 3 ]
  check "refused: a job the archive does not hold: cancelled on the runner" grep -q "^control cancel $d reason=the broker refused event seq 7 (job.started) of runner fake-1: .*; the runner is told to cancel the job" "$tmp/fake.out"
  check "refused: ... and not in the archive" bash -c "! '$bin/evrun-cli' status $d > /dev/null 2>&1"
  check "refused: the runner's own end of A not stored" grep -q "job $a: fake-1 finished its copy (cancelled); not stored" "$tmp/broker.log"
  check "refused: archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
}

bus_script_cases "end_to_end labels jobs_pages process_label executor_labels old_runner capacity concurrency queue submit_count cancel_pause_running drain_and_stop stop_at_end too_large refused_event" "$@"
bus_script_end

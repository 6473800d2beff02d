#!/usr/bin/env bash
# test_submit.sh BIN_DIR SRC_DIR [CASE...]: durable submits through a real
# evrun-broker on ipc:// sockets (no podman; process runners where a job
# runs): answered only once the submit journal is flushed, every
# acknowledged job queued once after a SIGKILL (with libevr_unflushed.so,
# the journal's unflushed writes lost as by a power loss), a failed write
# answered with errors, acknowledged submits in the journal alone across a
# kill of broker and runner.  Each case starts its own broker in a fresh
# state directory.  (Split from test_bus.sh.)
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init sub

# Submits from several clients at once share commits, and each is answered
# only after its commit: every acknowledged job survives a SIGKILL of the
# broker right after the last answer, once.  EVR_TEST_SUBMIT_DELAY_MS makes
# each commit wait between the journal's write and its flush, so requests
# pile up into batches, and a broker that answered before its flush would
# be killed inside that wait, its answered records lost with the unflushed
# writes.  evr-test-bus: raw clients that exit at their last answer (the
# second run, without resends, ends with the answers of a batch).
case_submit_batch() {
  fresh sbatch
  # the journal's writes are held until its flush (libevr_unflushed.so), and
  # each commit waits 300 ms between them: an answer sent before the flush
  # is lost by the kill below as by a power loss
  LD_PRELOAD="$bin/libevr_unflushed.so" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    EVR_TEST_SUBMIT_DELAY_MS=300 bus_broker --log-level debug
  pipeline many <<'YML'
pipeline: many
image: localhost/evrun-busybox:latest
labels: [nobody]
queue: { limit: 1000 }
steps: [ { name: s, run: "true" } ]
YML
  pipeline single <<'YML'
pipeline: single
image: localhost/evrun-busybox:latest
labels: [nobody]
queue: { limit: 1 }
steps: [ { name: s, run: "true" } ]
YML
  local ep=ipc://$tmp/bus/clients c pids=()
  "$bin/evr-test-bus" resubmits "$ep" "$tmp/many.yml" 6 4 > "$tmp/answers.1" &
  pids+=($!)
  for c in 1 2; do   # one of these is refused (queue full) amid the others' batches
    "$bin/evr-test-bus" resubmits "$ep" "$tmp/single.yml" 1 1 > "$tmp/one.$c" &
    pids+=($!)
  done
  wait "${pids[@]}"
  "$bin/evr-test-bus" submits "$ep" "$tmp/many.yml" 6 2 > "$tmp/answers.2"
  kill -9 "$broker_pid"   # right after the last answer
  wait "$broker_pid" 2>/dev/null
  cat "$tmp"/answers.* | sed -n 's/^accepted //p' > "$tmp/acked"
  check "every submit acknowledged ($(wc -l < "$tmp/acked") of 36)" [ "$(wc -l < "$tmp/acked")" -eq 36 ]
  check "no id acknowledged twice" [ "$(sort -u "$tmp/acked" | wc -l)" -eq 36 ]
  check "each resend answered existing (4)" [ "$(cat "$tmp"/answers.* | grep -c '^existing ')" -eq 4 ]
  check "no error" [ "$(cat "$tmp"/answers.* | grep -vc '^accepted \|^existing ')" -eq 0 ]
  check "submits shared a commit" grep -Eq "([2-9]|[1-9][0-9]+) submits in one commit" "$tmp/broker.log"
  check "queue limit 1: one of two accepted" [ "$(cat "$tmp"/one.* | grep -c '^accepted ')" -eq 1 ]
  check "queue limit 1: the other refused (and its resend), queue_full" \
    [ "$(cat "$tmp"/one.* | grep -c '^error queue_full')" -eq 2 ]
  sed -n 's/^accepted //p' "$tmp"/one.* >> "$tmp/acked"
  bus_broker
  cli jobs --status queued --limit 1000 --json > "$tmp/queued"
  local j missing=0 twice=0 n
  for j in $(cat "$tmp/acked"); do
    n=$(grep -c "\"job\":\"$j\"" "$tmp/queued")
    [ "$n" -eq 1 ] || { [ "$n" -eq 0 ] && missing=$((missing + 1)) || twice=$((twice + 1)); }
  done
  check "every acknowledged job queued after the kill ($missing missing)" [ "$missing" -eq 0 ]
  check "none queued twice ($twice)" [ "$twice" -eq 0 ]
  check "the queue holds only them (37)" [ "$(grep -c '"job"' "$tmp/queued")" -eq 37 ]
}

# Submits of large records (the journal written into the store several
# times in between), the broker killed in the middle of them with the
# journal's unflushed writes lost (libevr_unflushed.so): after a restart
# every acknowledged job is queued, once, and nothing else; a second kill
# and restart (the journal read again) changes nothing.
case_submit_journal_kill() {
  fresh sjournal
  local big
  big=$(head -c 20000 /dev/zero | tr '\0' y)
  { echo "pipeline: jbig"; echo "image: localhost/evrun-busybox:latest"; echo "labels: [nobody]"
    echo "queue: { limit: 10000 }"; echo "steps:"; echo "  - { name: s, run: \"echo $big\" }"
  } > "$tmp/jbig.yml"   # records of about 20 KB
  LD_PRELOAD="$bin/libevr_unflushed.so" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    bus_broker --log-level debug
  "$bin/evr-test-bus" submits "ipc://$tmp/bus/clients" "$tmp/jbig.yml" 8 200 > "$tmp/answers" &
  local cpid=$! n
  for _ in $(seq 1 300); do
    n=$(grep -c '^accepted ' "$tmp/answers"); [ "$n" -ge 180 ] && break; sleep 0.05
  done
  kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
  kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
  sed -n 's/^accepted //p' "$tmp/answers" | sort > "$tmp/acked"
  check "submits acknowledged before the kill ($(wc -l < "$tmp/acked"))" [ "$(wc -l < "$tmp/acked")" -ge 100 ]
  check "the journal was written into the store in between" \
    grep -q "submit journal: [0-9]* records written into the store" "$tmp/broker.log"
  check "no other answer" [ "$(grep -vc '^accepted ' "$tmp/answers")" -eq 0 ]
  local round
  for round in 1 2; do
    bus_broker
    cli jobs --status queued --limit 10000 --json > "$tmp/queued"
    sed -n 's/.*"job":"\([0-9A-Z]*\)".*/\1/p' "$tmp/queued" | sort > "$tmp/got"
    check "restart $round: every acknowledged job queued" \
      [ "$(comm -23 "$tmp/acked" "$tmp/got" | wc -l)" -eq 0 ]
    check "restart $round: none twice" [ "$(uniq -d "$tmp/got" | wc -l)" -eq 0 ]
    check "restart $round: at most one more per client (sent, not answered)" \
      [ "$(comm -13 "$tmp/acked" "$tmp/got" | wc -l)" -le 8 ]
    kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
  done
}

# A commit of submits that fails (a write past the file size limit fails
# with EFBIG, as on a full disk) answers each submit of its batch with an
# error, and the broker stops (status 3); what it acknowledged before is
# queued after a restart, what it refused is not.
case_submit_commit_failed() {
  fresh sfail
  local big i
  big=$(head -c 60000 /dev/zero | tr '\0' x)
  { echo "pipeline: big"; echo "image: localhost/evrun-busybox:latest"; echo "labels: [nobody]"
    echo "steps:"; for i in 1 2 3; do echo "  - { name: s$i, run: \"echo $big\" }"; done
  } > "$tmp/big.yml"   # a record of about 180 KB
  ( trap '' XFSZ; ulimit -f 640
    EVR_TEST_SUBMIT_DELAY_MS=300 exec "$bin/evrun-broker" --local --state-dir "$tmp" \
      --log-level debug ) >> "$tmp/broker.log" 2>&1 &
  broker_pid=$!
  bus_pids+=("$broker_pid")
  for _ in $(seq 1 100); do [ -S "$tmp/bus/clients" ] && break; sleep 0.05; done
  "$bin/evr-test-bus" submits "ipc://$tmp/bus/clients" "$tmp/big.yml" 6 1 > "$tmp/answers" &
  local cpid=$! st
  wait "$broker_pid"; st=$?
  sleep 1; kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
  local failed errs
  failed=$(sed -n 's/.* \([0-9]*\) submits\{0,1\} in one commit: failed.*/\1/p' "$tmp/broker.log")
  errs=$(grep -c '^error internal: store: ' "$tmp/answers")
  check "the broker stopped on the store failure (status $st)" [ "$st" -eq 3 ]
  check "a commit failed" [ -n "$failed" ]
  check "each submit of the failed commit got an error ($errs of ${failed:-?})" [ "$errs" -eq "${failed:-0}" ]
  check "no other answer" [ "$(grep -vc '^accepted \|^error internal: ' "$tmp/answers")" -eq 0 ]
  bus_broker
  cli jobs --status queued --limit 100 --json > "$tmp/queued"
  local want got
  want=$(sed -n 's/^accepted //p' "$tmp/answers" | sort | tr '\n' ' ')
  got=$(sed -n 's/.*"job":"\([0-9A-Z]*\)".*/\1/p' "$tmp/queued" | sort | tr '\n' ' ')
  check "queued after a restart: what was acknowledged, only ($want)" [ "$got" = "$want" ]
}

# The broker journals a client's submit as its body came when binding its
# args changes nothing, else encoded again as bound (a default added, the
# pipeline's order): after a SIGKILL (the records read back from the
# journal) and a restart, each job runs with its args as bound.  A runner
# of the process executor (no podman).
case_submit_record_args() {
  fresh sargs
  pipeline pargs <<'YML'
pipeline: pargs
executor: process
args:
  A: { default: a0 }
  B: { default: b0 }
steps: [ { name: s, run: 'echo "args A=$A B=$B"' } ]
YML
  bus_broker
  local j1 j2 j3 j
  j1=$(submit "$tmp/pargs.yml" -a A=a1 -a B=b1 2>/dev/null)   # as bound: as it came
  j2=$(submit "$tmp/pargs.yml" -a B=b2 2>/dev/null)           # A's default added
  j3=$(submit "$tmp/pargs.yml" -a B=b3 -a A=a3 2>/dev/null)   # the pipeline's order
  check "three submits accepted" [ -n "$j1" ]
  check "three submits accepted [-n j2]" [ -n "$j2" ]
  check "three submits accepted [-n j3]" [ -n "$j3" ]
  kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
  bus_broker
  bus_runner ra-1 "" 2 --executors process && bus_wait_runners 1
  for j in "$j1" "$j2" "$j3"; do
    check "job $j succeeded after the restart" [ "$(wait_job "$j" 30)" = succeeded ]
  done
  check "as it came: A=a1 B=b1" grep -q "args A=a1 B=b1" <(cli logs "$j1")
  check "a default added: A=a0 B=b2" grep -q "args A=a0 B=b2" <(cli logs "$j2")
  check "another order: A=a3 B=b3" grep -q "args A=a3 B=b3" <(cli logs "$j3")
}

# A submitted file with a schedule: (a registered pipeline's key) runs
# once, now: the CLI says so on stderr, submits it and prints its id;
# `run --wait` waits for it as for any file.
case_submit_scheduled_file() {
  fresh ssched
  pipeline psched <<'YML'
pipeline: psched
executor: process
schedule: "*/5 * * * *"
steps: [ { name: s, run: 'echo scheduled-file-ran' } ]
YML
  bus_broker
  bus_runner rs-1 "" 1 --executors process && bus_wait_runners 1
  local j
  j=$(submit "$tmp/psched.yml" 2> "$tmp/sched.err")
  check "scheduled file: submit prints a job id" grep -qx '[0-9A-Z]\{26\}' <<< "$j"
  check "scheduled file: ... and notes the schedule is not used" \
    grep -q "schedule is used by registered pipelines only .*this job runs once, now" "$tmp/sched.err"
  check "scheduled file: the job ran" [ "$(wait_job "$j" 30)" = succeeded ]
  check "scheduled file: its output" grep -q "scheduled-file-ran" <(cli logs "$j")
  "$bin/evrun-cli" run "$tmp/psched.yml" --wait > "$tmp/run.out" 2> "$tmp/run.err"
  check "scheduled file: run --wait exits 0" [ $? -eq 0 ]
  check "scheduled file: ... its job succeeded" grep -q "succeeded" "$tmp/run.out" "$tmp/run.err"
  sed 's/^schedule:/start_delay: 1s\nschedule:/' "$tmp/psched.yml" > "$tmp/pdelay.yml"
  j=$(submit "$tmp/pdelay.yml" 2> "$tmp/delay.err")
  check "scheduled file with start_delay: the note says when it runs" \
    grep -q "this job runs once, after its start_delay" "$tmp/delay.err"
  sed 's/^schedule:.*/on: { github: { events: [push] } }/' "$tmp/psched.yml" > "$tmp/pon.yml"
  j=$(submit "$tmp/pon.yml" 2> "$tmp/on.err")
  check "file with on: submitted: the note says on: is not used" \
    grep -q "note: on: is used by registered pipelines only (a file in the broker's pipelines_dir, started by evrun-gateway's webhooks); this job runs once, now" "$tmp/on.err"
  check "file with on: submitted: the job ran" [ "$(wait_job "$j" 30)" = succeeded ]
  check "scheduled file with start_delay: the job ran" [ "$(wait_job "$j" 30)" = succeeded ]
}

# Acknowledged submits in the journal alone (EVR_TEST_NO_CHECKPOINT=1: the
# broker's idle checkpoint never writes them into the queue table) while a
# job runs, then the broker and the runner killed at once: the restarted
# broker takes them up from the journal, the recovered runner finishes the
# running job and sends its events again; each job runs once, every line
# is stored once, both stores verify.
case_submit_inflight() {
  fresh sinflight
  EVR_TEST_NO_CHECKPOINT=1 bus_broker --log-level debug
  bus_runner if-1 "" 1 --executors process && bus_wait_runners 1
  pipeline pa <<'YML'
pipeline: pa
executor: process
steps:
  - name: count
    run: for i in $(seq 1 30); do echo "tick $i"; sleep 0.1; done
  - name: after
    needs: [count]
    run: echo "tick 31"
YML
  sed 's/^pipeline: pa$/pipeline: pb/' "$tmp/pa.yml" > "$tmp/pb.yml"
  logs_have() { cli logs "$1" 2>/dev/null | grep -q "$2"; }
  local a b c j
  a=$(submit "$tmp/pa.yml")
  check "a runs" bus_until 30 logs_have "$a" "tick 5"
  b=$(submit "$tmp/pb.yml"); c=$(submit "$tmp/pb.yml")   # queued: the runner is full
  check "b and c acknowledged" [ -n "$b" -a -n "$c" ]
  check "... not in the queue table: no checkpoint since a's dispatch" \
    [ "$(grep -c 'written into the store' "$tmp/broker.log")" -eq 1 ]
  kill -9 "$broker_pid" "$runner_pid_if_1"
  wait "$broker_pid" "$runner_pid_if_1" 2>/dev/null
  bus_pids=()
  bus_broker --log-level debug
  bus_runner if-1 "" 1 --executors process
  check "the journal's two taken up" grep -q "submit journal: 2 acknowledged submits taken up" "$tmp/broker.log"
  for j in a b c; do
    check "$j succeeded" [ "$(wait_job "${!j}" 60)" = succeeded ]
    cli logs "${!j}" > "$tmp/$j.logs"
    check "$j: every line once" exactly_once "$tmp/$j.logs" 31
  done
  check "three jobs in the archive, each finished once" \
    [ "$("$bin/evrun-replay" "$tmp/broker" --events | grep -c ' job.finished ')" -eq 3 ]
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
  check "runner log verifies" "$bin/evrun-replay" "$tmp/r-if-1" --verify
}

bus_script_cases "submit_batch submit_journal_kill submit_inflight submit_commit_failed submit_record_args submit_scheduled_file" "$@"
bus_script_end

#!/usr/bin/env bash
# test_queue.sh BIN_DIR SRC_DIR [CASE...]: queue policies through the
# broker (README "Queue policies"): bursts of submits against each
# strategy (which jobs ran, were replaced, were refused), `limit: 0`,
# `interrupt`, and `start_delay` (a debounce, and across a broker
# SIGKILL).  Real evrun-broker and evrun-runner processes on ipc://
# sockets; the steps are host processes (`executor: process`) to keep it
# short, the policies being the broker's whatever runs the steps (no
# podman service needed: the runners offer the process executor only).
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init queue

field() {   # field JOB NAME: a field of the job's status
  cli status "$1" --json | sed -n "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"
}

wait_status() {   # JOB STATUS [SECS]: until the job has STATUS
  for _ in $(seq 1 $((${3:-20} * 10))); do
    [ "$(field "$1" status)" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

# A process pipeline NAME with concurrency CONC whose one step sleeps
# SECS; QUEUE: the queue map; EXTRA: more top-level lines.
qpipe() {   # NAME CONC SECS QUEUE [EXTRA]
  pipeline "$1" <<YML
pipeline: $1
executor: process
concurrency: $2
args: { KEY: { default: main } }
queue: $4
${5:-}
steps: [ { name: s, run: "sleep $3" } ]
YML
}

runner() {   # NAME CAP: a process runner, waited for
  bus_runner "$1" "" "$2" --executors process && bus_wait_runners "${3:-1}"
}

# append, limit 2, concurrency 1: with one job running (3 s), a burst of four
# gets two accepted (they wait, then run) and two refused (queue_full).
case_append() {
  fresh append
  bus_broker && runner ap-1 2
  qpipe qa 1 3 "{ limit: 2 }"   # 3 s: 1 s had ended before the status was asked (ASan, loaded)
  local j1 ids=() out=() i
  j1=$(submit "$tmp/qa.yml")
  check "append: the first runs" wait_status "$j1" running
  for i in 1 2 3 4; do
    cli submit "$tmp/qa.yml" > "$tmp/a.$i.id" 2> "$tmp/a.$i"
    out+=($?)
    ids+=("$(cat "$tmp/a.$i.id")")
  done
  check "append: two accepted, two refused (exit ${out[*]})" [ "${out[*]}" = "0 0 1 1" ]
  check "append: refused with queue_full" grep -q "queue_full: pipeline qa has 2 jobs waiting" "$tmp/a.3"
  cli jobs > /dev/null 2> "$tmp/jobs.err"
  check "jobs, some waiting, shows the broker's queue limit" grep -q "queue limit 1000: the most jobs waiting per pipeline" "$tmp/jobs.err"
  cli status "${ids[0]}" > "$tmp/a.status" 2>&1
  check "append: a waiting one's status says it waits for the concurrency" \
    grep -qx "reason    concurrency: 1 of pipeline qa's jobs running, its limit: it starts when one ends" "$tmp/a.status"
  check "append: ... and not for a runner (one with a free slot is connected)" \
    bash -c "! grep -q '^waiting' $tmp/a.status"
  check "append: the first succeeded" [ "$(wait_job "$j1")" = succeeded ]
  check "append: the waiting ones ran" [ "$(wait_job "${ids[0]}")" = succeeded ]
  check "append: the waiting ones ran [(wait_job {ids[1]}) = succeeded]" [ "$(wait_job "${ids[1]}")" = succeeded ]
  cli jobs > /dev/null 2> "$tmp/jobs.err"
  check "jobs, none waiting: no queue limit line" [ ! -s "$tmp/jobs.err" ]
}

# replace, limit 1: a burst while one runs leaves the newest waiting; each
# other one ends cancelled, "replaced by" the next.
case_replace() {
  fresh replace
  bus_broker && runner rp-1 2
  qpipe qr 1 1 "{ limit: 1, strategy: replace }"
  local j1 j2 j3 j4
  j1=$(submit "$tmp/qr.yml")
  check "replace: the first runs" wait_status "$j1" running
  j2=$(submit "$tmp/qr.yml"); j3=$(submit "$tmp/qr.yml"); j4=$(submit "$tmp/qr.yml")
  check "replace: all accepted" [ -n "$j2" ]
  check "replace: all accepted [-n j3]" [ -n "$j3" ]
  check "replace: all accepted [-n j4]" [ -n "$j4" ]
  check "replace: 2 replaced by 3" grep -q "reason *replaced by $j3" <(cli status "$j2")
  check "replace: 3 replaced by 4" grep -q "reason *replaced by $j4" <(cli status "$j3")
  check "replace: the running one not touched" [ "$(wait_job "$j1")" = succeeded ]
  check "replace: the newest ran" [ "$(wait_job "$j4")" = succeeded ]
  check "replace: the replaced never ran" [ -z "$(field "$j2" runner)" ]
  check "replace: broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
}

# partitioned_replace by KEY: one job waits per value; a wait list full of
# other values refuses.
case_partitioned() {
  fresh partitioned
  bus_broker && runner pt-1 2
  qpipe qp 1 1 "{ strategy: partitioned_replace, partition_by: KEY }"
  local r a1 a2 b1 a3 b2
  r=$(submit "$tmp/qp.yml" -a KEY=x)
  check "partitioned: the first runs" wait_status "$r" running
  a1=$(submit "$tmp/qp.yml"); b1=$(submit "$tmp/qp.yml" -a KEY=b)
  a2=$(submit "$tmp/qp.yml" -a KEY=main); b2=$(submit "$tmp/qp.yml" -a KEY=b)
  a3=$(submit "$tmp/qp.yml")
  check "partitioned: main (the default) replaced by main" grep -q "replaced by $a2" <(cli status "$a1")
  check "partitioned: main replaced again" grep -q "replaced by $a3" <(cli status "$a2")
  check "partitioned: b replaced by b only" grep -q "replaced by $b2" <(cli status "$b1")
  check "partitioned: the last of each ran" [ "$(wait_job "$a3")" = succeeded ]
  check "partitioned: the last of each ran [(wait_job b2) = succeeded]" [ "$(wait_job "$b2")" = succeeded ]
  check "partitioned: the running one not touched" [ "$(field "$r" status)" = succeeded ]
  qpipe qp1 1 1 "{ limit: 1, strategy: partitioned_replace, partition_by: KEY }" "labels: [nowhere]"
  local w
  w=$(submit "$tmp/qp1.yml" -a KEY=a)
  cli submit "$tmp/qp1.yml" -a KEY=b > "$tmp/full" 2>&1
  check "partitioned limit 1: another value refused (exit 1)" [ $? -eq 1 ]
  check "partitioned limit 1: queue_full naming the arg" grep -q 'queue_full: .*other KEY values than "b"' "$tmp/full"
  check "partitioned limit 1: the same value replaces" grep -q "replaced by $(submit "$tmp/qp1.yml" -a KEY=a)" <(cli status "$w")
}

# limit 0: no wait list.  With concurrency 1 full, a submit is refused
# (busy) and nothing changes; once the job ended a submit is accepted.  A
# job waiting only for a runner (no concurrency) is accepted: with append
# all such wait, with replace the newest (the one before it replaced).
case_limit0() {
  fresh limit0
  bus_broker && runner l0-1 2
  qpipe q0 1 2 "{ limit: 0 }"
  local j1 j3
  j1=$(submit "$tmp/q0.yml")
  cli submit "$tmp/q0.yml" > "$tmp/busy" 2>&1
  check "limit 0: refused while the job runs (exit 1)" [ $? -eq 1 ]
  check "limit 0: says busy and why" grep -q "busy: pipeline q0 has 1 of its 1 concurrent jobs running or about to, and queue.limit 0 (no wait list)" "$tmp/busy"
  check "limit 0: the running job goes on" [ "$(wait_job "$j1")" = succeeded ]
  j3=$(submit "$tmp/q0.yml")
  check "limit 0: accepted once it ended" [ -n "$j3" ]
  check "limit 0: accepted once it ended [(wait_job j3) = succeeded]" [ "$(wait_job "$j3")" = succeeded ]
  qpipe q0n 0 0 "{ limit: 0 }" "labels: [nowhere]"
  local n1 n2
  n1=$(submit "$tmp/q0n.yml"); n2=$(submit "$tmp/q0n.yml")
  check "limit 0, no concurrency: both wait for a runner" [ "$(field "$n1" status)" = queued ]
  check "limit 0, no concurrency: both wait for a runner [(field n2 status) = queued]" [ "$(field "$n2" status)" = queued ]
  qpipe q0r 0 0 "{ limit: 0, strategy: replace }" "labels: [nowhere]"
  local r1 r2
  r1=$(submit "$tmp/q0r.yml"); r2=$(submit "$tmp/q0r.yml")
  check "limit 0, replace: a job waiting for a runner is replaced by the next" \
    grep -q "reason *replaced by $r2" <(cli status "$r1")
  check "limit 0, replace: the next waits for a runner" [ "$(field "$r2" status)" = queued ]
}

# interrupt: a submit cancels the running job through its runner (of its
# partition only with partitioned_replace), then runs.
case_interrupt() {
  fresh interrupt
  bus_broker && runner in-1 4
  qpipe qi 1 30 "{ limit: 0, strategy: replace, interrupt: true }"
  local j1 j2
  j1=$(submit "$tmp/qi.yml")
  check "interrupt: the first runs" wait_status "$j1" running
  sed -i 's/sleep 30/true/' "$tmp/qi.yml"
  j2=$(submit "$tmp/qi.yml")
  check "interrupt: accepted (limit 0: the interrupted job does not count)" [ -n "$j2" ]
  check "interrupt: the running job cancelled" [ "$(wait_job "$j1" 20)" = cancelled ]
  check "interrupt: reason names the new job" grep -q "interrupted by $j2" <(cli status "$j1")
  check "interrupt: the new job ran" [ "$(wait_job "$j2" 20)" = succeeded ]
  qpipe qpi 2 30 "{ strategy: partitioned_replace, partition_by: KEY, interrupt: true }"
  local a b a2
  a=$(submit "$tmp/qpi.yml" -a KEY=a); b=$(submit "$tmp/qpi.yml" -a KEY=b)
  check "interrupt by partition: both run" wait_status "$a" running
  check "interrupt by partition: both run [wait_status b running]" wait_status "$b" running
  a2=$(submit "$tmp/qpi.yml" -a KEY=a)
  check "interrupt by partition: a cancelled" [ "$(wait_job "$a" 20)" = cancelled ]
  check "interrupt by partition: b runs on" [ "$(field "$b" status)" = running ]
  check "interrupt by partition: the new a runs" wait_status "$a2" running
  cli cancel "$b" > /dev/null; cli cancel "$a2" > /dev/null
  wait_job "$b" > /dev/null; wait_job "$a2" > /dev/null
}

# interrupt reaches running jobs the broker took up from its archive after
# a SIGKILL (their partition read from their job.accepted), and a runner
# away when it is asked (its cancel goes when it is back).
case_interrupt_away() {
  fresh interrupt_away
  bus_broker && runner ia-1 4
  qpipe qia 0 30 "{ strategy: partitioned_replace, partition_by: KEY, interrupt: true }"
  local a b a2 b2
  a=$(submit "$tmp/qia.yml" -a KEY=a); b=$(submit "$tmp/qia.yml" -a KEY=b)
  check "away: both run" wait_status "$a" running
  check "away: both run [wait_status b running]" wait_status "$b" running
  kill -9 "$broker_pid"
  wait "$broker_pid" 2>/dev/null
  bus_broker
  a2=$(submit "$tmp/qia.yml" -a KEY=a)
  check "after a broker restart: a interrupted" [ "$(wait_job "$a" 20)" = cancelled ]
  check "after a broker restart: by a2" grep -q "interrupted by $a2" <(cli status "$a")
  check "after a broker restart: b runs on" [ "$(field "$b" status)" = running ]
  kill -STOP "$runner_pid_ia_1"
  for _ in $(seq 1 100); do cli runners | grep -q "^ia-1 .*lost" && break; sleep 0.1; done
  b2=$(submit "$tmp/qia.yml" -a KEY=b)
  check "runner away: the cancel waits for it" grep -q "job $b: interrupted by $b2: cancel not sent" "$tmp/broker.log"
  kill -CONT "$runner_pid_ia_1"
  check "runner back: b interrupted" [ "$(wait_job "$b" 20)" = cancelled ]
  check "runner back: by b2" grep -q "interrupted by $b2" <(cli status "$b")
  for j in "$a2" "$b2"; do cli cancel "$j" > /dev/null 2>&1; wait_job "$j" > /dev/null; done
}

# start_delay with replace: a burst inside the delay runs only the last,
# not before its submit time + the delay.
case_debounce() {
  fresh debounce
  bus_broker && runner db-1 2
  qpipe qd 0 0 "{ strategy: replace }" "start_delay: 2s"
  local j1 j2 j3
  j1=$(submit "$tmp/qd.yml"); j2=$(submit "$tmp/qd.yml"); j3=$(submit "$tmp/qd.yml")
  check "debounce: 1 replaced by 2" grep -q "replaced by $j2" <(cli status "$j1")
  check "debounce: 2 replaced by 3" grep -q "replaced by $j3" <(cli status "$j2")
  check "debounce: the last waits, saying why" grep -q "reason *start_delay: not dispatched before" <(cli status "$j3")
  check "debounce: the last ran" [ "$(wait_job "$j3")" = succeeded ]
  local c s
  c=$(field "$j3" created); s=$(field "$j3" started)
  check "debounce: started 2 s after its submit at the earliest" [ $((s - c)) -ge 2000000000 ]
}

# start_delay across a SIGKILL of the broker: the restarted broker neither
# starts the job early nor forgets it.
case_delay_restart() {
  fresh delay_restart
  bus_broker && runner dr-1 2
  qpipe qk 0 0 "{ }" "start_delay: 4s"
  local j c s
  j=$(submit "$tmp/qk.yml")
  kill -9 "$broker_pid"
  wait "$broker_pid" 2>/dev/null
  bus_broker
  check "delay restart: still queued after the restart" [ "$(field "$j" status)" = queued ]
  check "delay restart: runs" [ "$(wait_job "$j" 30)" = succeeded ]
  c=$(field "$j" created); s=$(field "$j" started)
  check "delay restart: not started early ($(( (s - c) / 1000000 )) ms)" [ $((s - c)) -ge 4000000000 ]
}

bus_script_cases "append replace partitioned limit0 interrupt interrupt_away debounce delay_restart" "$@"
bus_script_end

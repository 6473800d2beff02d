#!/usr/bin/env bash
# test_retain.sh BIN_DIR SRC_DIR [CASE...]: retention and the lock of a
# state directory, end to end: a real evrun-broker and a process-executor
# evrun-runner (no podman) on ipc:// sockets in a temporary directory.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init ret

# job NAME: a process pipeline NAME writing a line and an artifact
job() {
  cat > "$tmp/$1.yml" <<YML
pipeline: $1
executor: process
steps:
  - name: say
    run: echo "hello from $1"; mkdir -p out; echo x > out/f
    artifacts: [out]
YML
}

# done_ok ID: waits until job ID succeeded, or was removed by retention
# (only finished jobs are: one that failed is never older than its pipeline's newer ones)
done_ok() {
  local out
  for _ in $(seq 1 600); do
    out=$(cli status "$1" --json 2>&1)
    case $out in
      *'"status":"succeeded"'*|*"removed by retention"*) return 0 ;;
      *'"status":"failed"'*|*'"status":"cancelled"'*|*'"status":"timed_out"'*|*'"status":"lost"'*)
        echo "  job $1: $out" >&2; return 1 ;;
    esac
    sleep 0.1
  done
  echo "  job $1 did not end" >&2; return 1
}

run_jobs() {   # NAME N: submits N jobs of NAME, waits for each to succeed
  local ids=() j
  for _ in $(seq 1 "$2"); do ids+=("$(submit "$tmp/$1.yml")"); done
  for j in "${ids[@]}"; do done_ok "$j" || return 1; done
  last_ids=("${ids[@]}")
}

njobs() { cli jobs --json --limit 1000 | grep -c '"job"'; }
field() {   # field JOB NAME: a field of the job's status
  cli status "$1" --json | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}
pages() { mdb_stat -e "$1" | sed -n 's/.*Number of pages used: *//p'; }

# keep_per_pipeline 3 over ten rounds of 6 + 2 jobs: the broker and the
# runner keep 3 of each pipeline, their stores' used pages stop growing,
# the artifacts of removed jobs go, a removed job answers not_found saying
# why, and both logs verify clean afterwards.
case_keep() {
  fresh keep
  job keep-a; job keep-b
  local ret=(--retention-keep-per-pipeline 3 --retention-interval 200ms)
  bus_broker "${ret[@]}" && bus_runner kr "" 2 --executors process "${ret[@]}" \
    && bus_wait_runners 1
  local first p=() rp=() n
  for round in 1 2 3 4 5 6 7 8 9 10; do
    check "round $round: a jobs" run_jobs keep-a 6
    [ "$round" = 1 ] && first=${last_ids[0]}
    check "round $round: b jobs" run_jobs keep-b 2
    for _ in $(seq 1 50); do n=$(njobs); [ "$n" -le 6 ] && break; sleep 0.1; done
    check "round $round: at most 3 of each pipeline kept ($n)" [ "$n" -le 6 ]
    p+=("$(pages "$tmp/broker")")
    rp+=("$(pages "$tmp/r-kr")")
  done
  echo "  broker pages used after each round: ${p[*]}; runner: ${rp[*]}"
  # bounded (freed pages are reused, once no reader holds them): without
  # retention each round adds about 5 (56 after round 5, 81 after 10), so
  # the last five rounds add ~25 and the last two ~10.  With it the pages
  # settle, though not always by round 5: the runner's retention runs on
  # after its acks, later on a slow (sanitized) build, seen as 28 31 31 31
  # 31 40 40 42 42 42; so the last five add at most 15, the last two 5
  local s
  for s in "broker ${p[*]}" "runner ${rp[*]}"; do
    set -- $s
    check "$1's pages bounded: the last five rounds add at most 15 ($6 -> ${11})" [ $(( ${11} - $6 )) -le 15 ]
    check "$1's pages settled: the last two add at most 5 ($9 -> ${11})" [ $(( ${11} - $9 )) -le 5 ]
  done
  check "the newest 3 a jobs kept" [ "$(cli jobs --pipeline keep-a --json | grep -c '"job"')" -eq 3 ]
  cli status "$first" > "$tmp/st.out" 2>&1
  check "a removed job: exit 1" [ $? -eq 1 ]
  check "... saying retention may have removed it" grep -q "removed by retention" "$tmp/st.out"
  check "its artifacts are gone" [ ! -e "$tmp/broker/artifacts/$first" ]
  check "kept jobs' artifacts stay" [ "$(ls "$tmp/broker/artifacts" | wc -l)" -le 6 ]
  for _ in $(seq 1 30); do
    [ "$(ls "$tmp/r-kr/artifacts" 2>/dev/null | wc -l)" -le 6 ] && break; sleep 0.1
  done
  check "the runner's artifacts of removed jobs go" [ "$(ls "$tmp/r-kr/artifacts" | wc -l)" -le 6 ]
  cli prune --dry-run > "$tmp/dry.out" 2>&1
  check "prune --dry-run: nothing left to remove" grep -q "would remove 0 finished jobs" "$tmp/dry.out"
  # --json has the zero counts too (it printed {})
  cli prune --dry-run --json > "$tmp/dry.json" 2>&1
  check "prune --dry-run --json: the zero counts" grep -qx '{"jobs":0,"outputs":0,"events":0,"records":0,"bytes":0,"dry_run":true}' "$tmp/dry.json"
  bus_stop
  "$bin/evrun-replay" "$tmp/broker" --verify > "$tmp/v1.out" 2>&1
  check "broker log verifies clean" [ $? -eq 0 ]
  check "... counting the removed jobs" grep -q "jobs were removed by retention" "$tmp/v1.out"
  "$bin/evrun-replay" "$tmp/broker" --job "$first" > "$tmp/rj.out" 2>&1
  check "evrun-replay --job of a removed job: exit 1" [ $? -eq 1 ]
  check "... noting retention" grep -q "retention removed .* this may have been one" "$tmp/rj.out"
  "$bin/evrun-replay" "$tmp/broker" --output "$first" > "$tmp/ro.out" 2>&1
  check "evrun-replay --output of a removed job: exit 1" [ $? -eq 1 ]
  check "... noting retention too" grep -q "retention removed .* this may have been one" "$tmp/ro.out"
  "$bin/evrun-replay" "$tmp/r-kr" --verify > "$tmp/v2.out" 2>&1
  check "runner log verifies clean" [ $? -eq 0 ]
  cat "$tmp/v1.out" "$tmp/v2.out" | sed 's/^/  /'
}

# max_age 1s by the timers: the broker's and the runner's stores empty
# themselves of finished jobs; a running job stays.
case_age() {
  fresh age
  job quick
  cat > "$tmp/slow.yml" <<YML
pipeline: slow
executor: process
steps:
  - name: wait
    run: sleep 6
YML
  local ret=(--retention-max-age 1s --retention-interval 200ms) slow n
  bus_broker "${ret[@]}" && bus_runner ag "" 2 --executors process "${ret[@]}" \
    && bus_wait_runners 1
  slow=$(submit "$tmp/slow.yml")
  check "jobs run" run_jobs quick 3
  for _ in $(seq 1 60); do n=$(njobs); [ "$n" -le 1 ] && break; sleep 0.1; done
  check "the finished jobs go, the running one stays ($n)" [ "$n" -eq 1 ]
  check "... it is the running one" [ "$(field "$slow" status)" = running ]
  for _ in $(seq 1 60); do
    n=$("$bin/evrun-replay" "$tmp/r-ag" --json | grep -c '"id"'); [ "$n" -le 1 ] && break; sleep 0.1
  done
  check "the runner's store too ($n)" [ "$n" -eq 1 ]
  cli cancel "$slow" > /dev/null
}

# A job taken from a lost runner is kept while that runner may still
# send events of it (its lease record lasts until the runner's copy
# ends), then goes by max_age like any other.
case_lost() {
  fresh lost
  cat > "$tmp/long.yml" <<YML
pipeline: long
executor: process
steps:
  - name: wait
    run: sleep 20
YML
  bus_broker --reclaim-ms 500 --retention-max-age 1s --retention-interval 200ms \
    && bus_runner ls "" 1 --executors process && bus_wait_runners 1
  local j st
  j=$(submit "$tmp/long.yml")
  for _ in $(seq 1 100); do [ "$(field "$j" status)" = running ] && break; sleep 0.1; done
  # its step started (step.started at the broker), and ran a second
  for _ in $(seq 1 100); do
    cli logs "$j" --events --json 2>/dev/null | grep -q '"type":"step.started"' && break; sleep 0.1
  done
  sleep 1
  kill -STOP "$runner_pid_ls"
  for _ in $(seq 1 100); do st=$(field "$j" status); [ "$st" = lost ] && break; sleep 0.1; done
  check "the job ends lost" [ "$st" = lost ]
  # its step ran from its start until the broker took the job: not 0s
  cli logs "$j" --events --json > "$tmp/lost.hist" 2>&1
  check "the lost step's duration is the time it ran" \
    bash -c "grep '\"type\":\"step.finished\"' '$tmp/lost.hist' | grep -q '\"duration\":\"[1-9]'"
  sleep 2
  check "kept past max_age while its runner may come back" [ "$(field "$j" status)" = lost ]
  kill -CONT "$runner_pid_ls"
  for _ in $(seq 1 200); do grep -q "$j: ls finished its copy" "$tmp/broker.log" && break; sleep 0.1; done
  check "the runner ended its copy" grep -q "$j: ls finished its copy" "$tmp/broker.log"
  for _ in $(seq 1 50); do [ "$(njobs)" -eq 0 ] && break; sleep 0.1; done
  check "then it goes" [ "$(njobs)" -eq 0 ]
  check "no event of ls refused" bash -c "! grep -q 'events of ls refused' '$tmp/broker.log'"
}

# output_max_age and max_age through `evrun-cli prune` (the timer waits an
# hour; the client's prune removes at once; a dry run counts only), the
# output dropped shown by a marker; off: refused; a runner's store offline.
case_prune() {
  fresh prune
  job old
  bus_broker --retention-output-max-age 1s --retention-interval 1h && bus_runner pr "" 2 \
    --executors process && bus_wait_runners 1
  check "jobs run" run_jobs old 3
  local kept=${last_ids[2]}
  sleep 1.2
  cli prune > "$tmp/p1.out" 2>&1
  check "prune: output of 3 dropped" grep -q "dropped the output of 3" "$tmp/p1.out"
  cli logs "$kept" > "$tmp/logs.out" 2>&1
  check "logs: the output removed, said" grep -q "stdout output removed by retention" "$tmp/logs.out"
  check "logs: no bytes of it" bash -c "! grep -q 'hello from old' '$tmp/logs.out'"
  check "status still known" [ "$(cli status "$kept" --json | grep -c succeeded)" -eq 1 ]
  bus_stop
  # max_age 5s: the pass at the start finds nothing that old; 4 s later
  # the timer waits an hour, an explicit prune removes them at once
  bus_broker --retention-max-age 5s --retention-interval 1h
  sleep 4
  cli prune --dry-run > "$tmp/p2.out" 2>&1
  check "dry run counts 3" grep -q "would remove 3 finished jobs" "$tmp/p2.out"
  check "dry run removed nothing" [ "$(njobs)" -eq 3 ]
  cli prune > "$tmp/p3.out" 2>&1
  check "prune removes 3" grep -q "removed 3 finished jobs" "$tmp/p3.out"
  check "no job left" [ "$(njobs)" -eq 0 ]
  bus_stop
  "$bin/evrun-replay" "$tmp/broker" --verify > "$tmp/v.out" 2>&1
  check "broker log verifies clean" [ $? -eq 0 ]
  # off: refused
  bus_broker --retention-max-age 0
  local rc=2 try
  for try in 1 2 3; do   # 2: not answering yet (a loaded machine, ASan)
    cli prune > "$tmp/p4.out" 2>&1
    rc=$?
    [ "$rc" -ne 2 ] && break
  done
  check "retention off: prune refused, exit 1" [ "$rc" -eq 1 ]
  check "... saying so" grep -q "retention is off" "$tmp/p4.out"
  # the runner's store, offline
  "$bin/evrun-runner" --prune --dry-run --retention-max-age 5s --state-dir "$tmp/r-pr" > "$tmp/rp.out" 2>&1
  check "runner --prune --dry-run counts its 3" grep -q "would remove 3 finished jobs" "$tmp/rp.out"
  "$bin/evrun-runner" --prune --retention-max-age 5s --state-dir "$tmp/r-pr" > "$tmp/rp2.out" 2>&1
  check "runner --prune removes them" grep -q "removed 3 finished jobs" "$tmp/rp2.out"
  "$bin/evrun-replay" "$tmp/r-pr" --verify > /dev/null 2>&1
  check "runner log verifies clean" [ $? -eq 0 ]
  "$bin/evrun-replay" "$tmp/r-pr" --as-of 3 > "$tmp/ao.out" 2> "$tmp/ao.err"
  check "--as-of on a pruned store: exit 0" [ $? -eq 0 ]
  check "... a note says the removed jobs are not shown" grep -q "evrun-replay: note: retention removed 3 finished jobs of this store, up to [0-9A-Z]\{26\}: any of them that existed at seq 3 is not shown" "$tmp/ao.err"
}

# One process per state directory: a second broker, a second runner, an
# --exec and a --prune on a runner's directory exit 2 naming the pid.
case_lock() {
  fresh lock
  job lk
  bus_broker && bus_runner lk "" 1 --executors process && bus_wait_runners 1
  local rpid=$runner_pid_lk
  timeout -k 10 20 "$bin/evrun-broker" --local --state-dir "$tmp" > "$tmp/b2.out" 2>&1
  check "second broker: exit 2" [ $? -eq 2 ]
  check "... naming the pid" grep -q "in use by evrun-broker pid $broker_pid" "$tmp/b2.out"
  timeout -k 10 20 "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id lk2 --executors process \
    --state-dir "$tmp/r-lk" > "$tmp/r2.out" 2>&1
  check "second runner: exit 2" [ $? -eq 2 ]
  check "... naming the pid" grep -q "in use by evrun-runner pid $rpid" "$tmp/r2.out"
  timeout -k 10 20 "$bin/evrun-runner" --exec "$tmp/lk.yml" --executors process \
    --state-dir "$tmp/r-lk" > "$tmp/x2.out" 2>&1
  check "--exec on it: exit 2 naming the pid" grep -q "in use by evrun-runner pid $rpid" "$tmp/x2.out"
  timeout -k 10 20 "$bin/evrun-runner" --prune --state-dir "$tmp/r-lk" > "$tmp/p2.out" 2>&1
  check "--prune on it: exit 2" [ $? -eq 2 ]
  check "... naming the pid" grep -q "in use by evrun-runner pid $rpid" "$tmp/p2.out"
  check "the first ones still serve" run_jobs lk 1
  bus_stop
  timeout -k 10 20 "$bin/evrun-runner" --exec "$tmp/lk.yml" --executors process -q \
    --state-dir "$tmp/r-lk" > "$tmp/x3.out" 2>&1
  check "once stopped, the directory is free again" [ $? -eq 0 ]
}

# --prune on a directory that holds no store, a dry run too: exit 2 saying
# so, and nothing made there (it made a new store, and in a broker's state
# directory a runner's store beside the broker's, before).
case_nostore() {
  fresh nostore
  mkdir -p "$tmp/empty" "$tmp/bst/broker"
  : > "$tmp/bst/broker/data.mdb"
  local dry d rc
  for d in empty bst; do
    for dry in --dry-run ""; do
      timeout -k 10 20 "$bin/evrun-runner" --prune $dry --retention-max-age 5s --state-dir "$tmp/$d" \
        > "$tmp/ns.out" 2>&1
      rc=$?
      check "--prune $dry on $d (no store): exit 2" [ "$rc" -eq 2 ]
      check "... saying so" grep -q "$tmp/$d: no runner's event store here (no data.mdb), nothing to prune; left as it is" "$tmp/ns.out"
      check "... nothing made" [ "$(ls -A "$tmp/$d")" = "$( [ "$d" = bst ] && echo broker)" ]
    done
  done
  check "a broker's state directory: named so" grep -q "a broker's state directory: the broker's retention runs in evrun-broker, or at once with evrun-cli prune" "$tmp/ns.out"
}

# read_pruned VIEW: evrun-replay STORE VIEW of a job of 4,900 events,
# stopped by a full pipe inside its first read transaction (4,096 entries)
# while evrun-runner --prune removes the job, then read on: exit 1 and
# said (it printed the events of the first transaction alone and exited 0)
read_pruned() {
  local view=$1 d=$tmp/rp-$1 job rpid rc
  "$bin/evrun-bench-store" --dir "$d" --jobs 1 --steps 1 --output-bytes 20000000 --nosync \
    --scale-events 0 --list-jobs 0 > /dev/null 2>&1
  check "$view: a store of one long job" [ -s "$d/store/data.mdb" ]
  job=$("$bin/evrun-replay" "$d/store" --json | head -n 1 | sed 's/.*"id":"\([0-9A-Z]*\)".*/\1/')
  sleep 1.2   # the job ended more than --retention-max-age 1s ago
  rm -f "$tmp/fifo" && mkfifo "$tmp/fifo"
  "$bin/evrun-replay" "$d/store" "$view" "$job" > "$tmp/fifo" 2> "$tmp/rp.err" &
  rpid=$!
  exec 7< "$tmp/fifo"
  sleep 1
  "$bin/evrun-runner" --prune --retention-max-age 1s --state-dir "$d/store" > "$tmp/rp.out" 2>&1
  check "$view: the job removed while it is read" grep -q "removed 1 finished jobs" "$tmp/rp.out"
  cat <&7 > /dev/null
  exec 7<&-
  wait "$rpid"
  rc=$?
  check "$view of a job removed while read: exit 1" [ "$rc" -eq 1 ]
  check "... saying so" grep -q "evrun-replay: job $job was removed by retention while it was read: its .* above may be cut short" "$tmp/rp.err"
}

case_readprune() {
  fresh readprune
  read_pruned --job
  read_pruned --output
}

bus_script_cases "keep age lost prune lock nostore readprune" "$@"
bus_script_end

#!/usr/bin/env bash
# test_recover_shapes.sh BIN_DIR SRC_DIR EXECUTOR [CASE...]: evrun-runner
# killed with SIGKILL in job shapes test_recover.sh does not hold, then
# `--recover`: a DAG whose parallel steps run at the kill, a secret
# registered at run time and printed split around the kill, a step
# printing a whole output chunk and part of the next at the kill, a cancel
# of parallel steps, a timeout's grace and its stop, a resource's download.  EXECUTOR: podman (the real podman service,
# $EVRUN_PODMAN_URL) or process.  Each case asserts: the job ended once,
# as it should; every byte a step printed is stored once, in order; each
# step ran once; evrun-replay's rebuild agrees with the stored state
# (--verify); nothing is left of the job in the executor.
set -u
bin=$1 src=$2 executor=$3; shift 3
case $executor in
  podman) xflags=() ;;
  process) xflags=(--executors process) ;;
  *) echo "usage: test_recover_shapes.sh BIN_DIR SRC_DIR podman|process [CASE...]" >&2; exit 2 ;;
esac
export CONTAINERS_CONF=$src/tools/podman/containers.conf
: "${EVRUN_PODMAN_URL:=unix:///tmp/evr-it-podman/podman.sock}"
export EVRUN_PODMAN_URL
tmp=$(mktemp -d /tmp/evr-shapes-XXXXXX)
bgpids=()
ended() {   # ended PID: reaped, out of the list
  local p keep=()
  for p in ${bgpids[@]+"${bgpids[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
  bgpids=(${keep[@]+"${keep[@]}"})
}
trap 'for p in ${bgpids[@]+"${bgpids[@]}"}; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
fails=0 passes=0 case_name=
. "$(dirname "$0")/../support/check.sh"

runner=("$bin/evrun-runner" ${xflags[@]+"${xflags[@]}"})
replay() { "$bin/evrun-replay" "$@"; }

# adapt FILE: the pipeline for the executor (process: `executor: process`,
# paths relative to the workspace, the steps' working directory)
adapt() {
  [ "$executor" = process ] || return 0
  sed -i -e 's|^image: localhost/evrun-busybox:latest$|executor: process|' -e 's|/workspace/||g' "$1"
}

# go_file JOB NAME: a file the step sees as /workspace/NAME (podman: through
# a container of the job, which shares the volume; process: the workspace)
go_file() {
  if [ "$executor" = podman ]; then
    local c
    c=$(podman ps --format '{{.Names}}' | grep -i "^evrun-$1-" | head -n 1)
    podman exec "$c" touch "/workspace/$2"
  else
    touch "$state/work/$1/$2"
  fi
}

left_behind() {   # left_behind JOB: what the executor holds of it
  local id
  id=$(echo "$1" | tr 'A-Z' 'a-z')
  if [ "$executor" = process ]; then
    ls "$state/units" "$state/work" 2>/dev/null | grep -ci "$id" || true
    return
  fi
  { podman ps -a --format '{{.Names}}'; podman volume ls --format '{{.Name}}'; } | grep -c "evrun-$id" || true
}

# start STATE FILE [ENV...]: the runner on FILE in the background; sets pid
start() {
  local st=$1 file=$2; shift 2
  env "$@" "${runner[@]}" --exec "$file" --state-dir "$st" --grace 1 > "$st.out" 2> "$st.err" &
  pid=$!
  bgpids+=("$pid")
}
wait_for() {   # wait_for FILE PATTERN: up to 30 s until FILE holds PATTERN
  for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}
kill_runner() { kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; ended "$pid"; }
job_of() { sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$1.out" | head -n 1; }
recover() {   # recover STATE: --recover to its end; sets rc
  timeout -k 10 120 "${runner[@]}" --recover --state-dir "$1" --grace 1 > "$1.rec.out" 2> "$1.rec.err"
  rc=$?
}
recover_bg() {   # recover_bg STATE: --recover in the background; sets rpid
  timeout -k 10 120 "${runner[@]}" --recover --state-dir "$1" --grace 1 > "$1.rec.out" 2> "$1.rec.err" &
  rpid=$!
  bgpids+=("$rpid")
}
common_end() {   # common_end JOB: the checks every case ends with
  check "one job.finished" [ "$(replay "$state" --events | grep -c ' job.finished ')" -eq 1 ]
  check "nothing left in $executor" [ "$(left_behind "$1")" -eq 0 ]
  check "store verifies" replay "$state" --verify > /dev/null
  [ "$fails" -eq "$before" ] || cat "$state.err" "$state.rec.out" "$state.rec.err" >&2
}

# A DAG: a and b start at once and print numbered lines; c needs both.
# Killed at points of a while b runs (b's lines in flight), and of b.
cat > "$tmp/dag.yml" <<'YML'
pipeline: crash-dag
image: localhost/evrun-busybox:latest
steps:
  - name: a
    needs: []
    run: |
      echo a >> /workspace/runs
      for i in $(seq 1 30); do echo "a line $i"; sleep 0.02; done
  - name: b
    needs: []
    run: |
      echo b >> /workspace/runs
      for i in $(seq 1 60); do echo "b line $i"; echo "b err $i" >&2; sleep 0.02; done
  - name: c
    needs: [a, b]
    run: sort /workspace/runs
YML
adapt "$tmp/dag.yml"
case_dag() {
  local point before=$fails
  for point in running:a running:b output_ended:a after_exit:a between_steps:a output_ended:b; do
    state=$tmp/dag-${point/:/-}
    start "$state" "$tmp/dag.yml" EVR_TEST_PAUSE_AT="$point"
    check "$point: reached" wait_for "$state.err" "test pause at"
    kill_runner
    job=$(job_of "$state")
    recover "$state"
    check "$point: recovery exit 0" [ "$rc" -eq 0 ]
    check "$point: job succeeded" grep -Eq "^$job +crash-dag +succeeded +3/3 " <(replay "$state")
    check "$point: a's lines once, in order" cmp -s <(seq 1 30 | sed 's/^/a line /') \
      <(replay "$state" --output "$job/a")
    check "$point: b's lines once" cmp -s <({ seq 1 60 | sed 's/^/b line /'; seq 1 60 | sed 's/^/b err /'; } | sort) \
      <(replay "$state" --output "$job/b" | sort)
    check "$point: each step ran once" [ "$(replay "$state" --output "$job/c" | tr '\n' ' ')" = "a b " ]
    common_end "$job"
    rm -rf "$state"
  done
}

# A secret registered at run time (evrun-job secret), then printed in two
# halves: the first before the kill (held back by the masker, as it could
# begin the secret), the second after the recovery.  Stored masked, the
# value nowhere in the state directory.
cat > "$tmp/secret.yml" <<'YML'
pipeline: crash-secret
image: localhost/evrun-busybox:latest
steps:
  - name: s
    run: |
      V="sec$(echo 4711 | tr 0-9 a-j)Zq"
      printf '%s' "$V" | evrun-job secret KEY || exit 3
      echo registered
      printf 'val: %s' "${V%????}"
      i=0; while [ ! -e /workspace/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
      printf '%s end\n' "${V#?????}"
      echo "again: $V"
  - name: t
    needs: [s]
    run: 'echo "next: $KEY"'
YML
adapt "$tmp/secret.yml"
case_secret() {
  local before=$fails
  state=$tmp/secret
  start "$state" "$tmp/secret.yml"
  check "registered before the kill" wait_for "$state.out" "^s | registered$"
  sleep 0.2   # the step's printf has run: what it printed is held back, not stored
  kill_runner
  job=$(job_of "$state")
  recover_bg "$state"
  go_file "$job" go
  wait "$rpid"; rc=$?; ended "$rpid"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  check "job succeeded" grep -Eq "^$job +crash-secret +succeeded" <(replay "$state")
  check "stored masked, once" cmp -s <(printf 'registered\nval: *** end\nagain: ***\n') \
    <(replay "$state" --output "$job/s")
  check "the next step masks it" [ "$(replay "$state" --output "$job/t")" = "next: ***" ]
  check "the value nowhere in the state directory" not grep -rqa "secehbbZq" "$state"
  check "never printed" not grep -q "secehbbZq" "$state.out" "$state.rec.out"
  common_end "$job"
}

# A step prints exactly one output chunk's worth (64 KiB, stored whole)
# and half a line, then waits: killed there, the rest printed after the
# recovery.  Every byte once.
cat > "$tmp/chunk.yml" <<'YML'
pipeline: crash-chunk
image: localhost/evrun-busybox:latest
steps:
  - name: k
    run: |
      head -c 65536 /dev/zero | tr '\0' x; printf 'half'
      i=0; while [ ! -e /workspace/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
      echo ' rest'; head -c 70000 /dev/zero | tr '\0' y; echo
YML
adapt "$tmp/chunk.yml"
case_chunk() {
  local before=$fails stored
  state=$tmp/chunk
  start "$state" "$tmp/chunk.yml" EVR_TEST_PAUSE_AT=running:k
  check "reached" wait_for "$state.err" "test pause at"
  kill_runner
  job=$(job_of "$state")
  recover_bg "$state"
  for _ in $(seq 1 400); do
    stored=$(replay "$state" --output "$job/k" 2>/dev/null | wc -c)
    [ "$stored" -ge 65536 ] && break
    sleep 0.05
  done
  check "the chunk stored while the step waits ($stored bytes)" [ "$stored" -ge 65536 ]
  go_file "$job" go
  wait "$rpid"; rc=$?; ended "$rpid"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  check "every byte once" cmp -s <(head -c 65536 /dev/zero | tr '\0' x; printf 'half rest\n';
                                   head -c 70000 /dev/zero | tr '\0' y; echo) \
    <(replay "$state" --output "$job/k")
  common_end "$job"
}

# A cancel of a DAG whose parallel steps ignore SIGTERM, the runner killed
# while it waits out the grace: after the recovery both are stopped, the
# step that needs them skipped, the job cancelled.
cat > "$tmp/cancel.yml" <<'YML'
pipeline: crash-dag-cancel
image: localhost/evrun-busybox:latest
steps:
  - name: a
    needs: []
    run: |
      trap "" TERM
      for i in $(seq 1 300); do echo "a line $i"; sleep 0.1; done
  - name: b
    needs: []
    run: |
      trap "" TERM
      for i in $(seq 1 300); do echo "b line $i"; sleep 0.1; done
  - name: c
    needs: [a, b]
    run: echo never
YML
adapt "$tmp/cancel.yml"
case_cancel() {
  local before=$fails s
  state=$tmp/cancel
  "${runner[@]}" --exec "$tmp/cancel.yml" --state-dir "$state" --grace 30 > "$state.out" 2> "$state.err" &
  pid=$!
  bgpids+=("$pid")
  check "both run" wait_for "$state.out" "^b | b line 2$"
  check "... a too" wait_for "$state.out" "^a | a line 2$"
  job=$(job_of "$state")
  kill -INT "$pid"
  for _ in $(seq 1 100); do
    replay "$state" --job "$job" 2>/dev/null | grep -q cancel_requested && break
    sleep 0.05
  done
  kill_runner
  check "cancel recorded before the crash" grep -q "job.cancel_requested" <(replay "$state" --job "$job")
  recover "$state"
  check "exit 1" [ "$rc" -eq 1 ]
  check "job cancelled" grep -Eq "^$job +crash-dag-cancel +cancelled" <(replay "$state")
  for s in a b; do
    check "$s cancelled" grep -Eq "^$s +cancelled" <(replay "$state" --job "$job")
    check "$s's lines once, in order" cmp -s <(replay "$state" --output "$job/$s") \
      <(seq 1 "$(replay "$state" --output "$job/$s" | wc -l)" | sed "s/^/$s line /")
  done
  check "c skipped" grep -Eq "^c +skipped" <(replay "$state" --job "$job")
  common_end "$job"
}

# Killed while a resource downloads (served slowly, 20 bytes over 2 s):
# the recovery downloads it again, whole, and the job runs once.
case_resource() {
  local before=$fails port hpid try
  for try in 1 2 3; do
    port=$(free_port) || break
    python3 "$src/tests/integration/slow_http.py" "$port" "$tmp/slow.log" --bytes 20 --seconds 2 &
    hpid=$!
    bgpids+=("$hpid")
    wait_port "$port" "$hpid" 2> /dev/null && break
    kill "$hpid" 2> /dev/null; wait "$hpid" 2> /dev/null; ended "$hpid"; hpid=
  done
  check "the slow server started" [ -n "$hpid" ] || return
  cat > "$tmp/resource.yml" <<YML
pipeline: crash-resource
image: localhost/evrun-busybox:latest
resources: [{name: blob, url: "http://127.0.0.1:$port/blob", path: blob}]
steps:
  - {name: r, run: 'echo "got \$(cat blob)"'}
YML
  adapt "$tmp/resource.yml"
  state=$tmp/resource
  start "$state" "$tmp/resource.yml"
  check "the download began" wait_for "$tmp/slow.log" "^GET /blob"
  kill_runner
  job=$(job_of "$state")
  recover "$state"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  check "downloaded again" [ "$(grep -c '^GET /blob' "$tmp/slow.log")" -eq 2 ]
  check "job succeeded" grep -Eq "^$job +crash-resource +succeeded +1/1 " <(replay "$state")
  check "the resource whole" [ "$(replay "$state" --output "$job/r")" = "got $(printf 'x%.0s' $(seq 1 20))" ]
  check "no temporary file left" [ -z "$(ls -A "$state/artifacts/$job" 2>/dev/null | grep '^\.')" ]
  common_end "$job"
  kill "$hpid"; wait "$hpid" 2>/dev/null; ended "$hpid"
}

# Killed once a step's timeout has fired, the step (which ignores SIGTERM)
# waiting out the grace: after the recovery it ends timed_out, its output
# once, the next step skipped.
cat > "$tmp/tgrace.yml" <<'YML'
pipeline: crash-tgrace
image: localhost/evrun-busybox:latest
steps:
  - name: slow
    timeout: 2s
    run: |
      trap "" TERM
      for i in $(seq 1 300); do echo "slow line $i"; sleep 0.1; done
  - name: next
    run: echo never
YML
adapt "$tmp/tgrace.yml"
case_tgrace() {
  local before=$fails n
  state=$tmp/tgrace
  "${runner[@]}" --exec "$tmp/tgrace.yml" --state-dir "$state" --grace 30 > "$state.out" 2> "$state.err" &
  pid=$!
  bgpids+=("$pid")
  # no event says the timeout fired: 2.5 s of lines are past it (counted
  # from step.started), and the recovery must end the step timed_out
  # whether the SIGTERM went before the kill or not
  check "past the timeout" wait_for "$state.out" "^slow | slow line 25$"
  job=$(job_of "$state")
  kill_runner
  recover "$state"
  check "exit 1" [ "$rc" -eq 1 ]
  check "job failed (a step timed out)" grep -Eq "^$job +crash-tgrace +failed" <(replay "$state")
  check "step timed out" grep -Eq "^slow +timed_out" <(replay "$state" --job "$job")
  check "next skipped" grep -Eq "^next +skipped" <(replay "$state" --job "$job")
  n=$(replay "$state" --output "$job/slow" | wc -l)
  check "its lines once, in order ($n)" cmp -s <(replay "$state" --output "$job/slow") \
    <(seq 1 "$n" | sed "s/^/slow line /")
  common_end "$job"
}

# A secret registered while the runner is down: evrun-job asks again until
# the recovered runner listens; what the step prints after it is masked.
cat > "$tmp/secdown.yml" <<'YML'
pipeline: crash-secdown
image: localhost/evrun-busybox:latest
steps:
  - name: s
    run: |
      i=0; while [ ! -e /workspace/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
      V="dwn$(echo 4711 | tr 0-9 a-j)Zq"
      touch /workspace/asking
      printf '%s' "$V" | evrun-job secret KEY || exit 3
      echo "val: $V"
  - name: t
    needs: [s]
    run: 'echo "next: $KEY"'
YML
adapt "$tmp/secdown.yml"
case_secret_down() {
  local before=$fails ws
  state=$tmp/secdown
  start "$state" "$tmp/secdown.yml" EVR_TEST_PAUSE_AT=running:s
  check "reached" wait_for "$state.err" "test pause at"
  kill_runner
  job=$(job_of "$state")
  go_file "$job" go
  if [ "$executor" = podman ]; then
    check "the step asks with no runner" bash -c "for i in \$(seq 1 200); do
      podman exec \$(podman ps --format '{{.Names}}' | grep -i '^evrun-$job-s-') test -e /workspace/asking && exit 0
      sleep 0.05; done; exit 1"
  else
    check "the step asks with no runner" bash -c "for i in \$(seq 1 200); do
      [ -e '$state/work/$job/asking' ] && exit 0; sleep 0.05; done; exit 1"
  fi
  recover "$state"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  check "job succeeded" grep -Eq "^$job +crash-secdown +succeeded" <(replay "$state")
  check "stored masked" [ "$(replay "$state" --output "$job/s")" = "val: ***" ]
  check "the next step got it, masked" [ "$(replay "$state" --output "$job/t")" = "next: ***" ]
  check "never printed" not grep -q "dwnehbbZq" "$state.out" "$state.rec.out"
  common_end "$job"
}

# The DAG killed at random moments (EVR_SHAPES_KILLS of them, default 5):
# whatever ran, each step once, every line once.
case_dag_random() {
  local k before=$fails
  for k in $(seq 1 "${EVR_SHAPES_KILLS:-5}"); do
    state=$tmp/dag-r$k
    start "$state" "$tmp/dag.yml"
    sleep "$(awk -v r="$RANDOM" 'BEGIN {printf "%.2f", 0.05 + (r % 250) / 100}')"
    kill_runner
    job=$(job_of "$state")
    recover "$state"
    check "$k: recovery exit 0" [ "$rc" -eq 0 ]
    if [ -n "$job" ] && replay "$state" --job "$job" > /dev/null 2>&1; then
      check "$k: job succeeded" grep -Eq "^$job +crash-dag +succeeded +3/3 " <(replay "$state")
      check "$k: a's lines once, in order" cmp -s <(seq 1 30 | sed 's/^/a line /') \
        <(replay "$state" --output "$job/a")
      check "$k: b's lines once" cmp -s <({ seq 1 60 | sed 's/^/b line /'; seq 1 60 | sed 's/^/b err /'; } | sort) \
        <(replay "$state" --output "$job/b" | sort)
      check "$k: each step ran once" [ "$(replay "$state" --output "$job/c" | tr '\n' ' ')" = "a b " ]
      common_end "$job"
    fi
    rm -rf "$state"
  done
}

# Killed once the output of a step its timeout stopped has ended (its exit
# not read): the recovery must find it timed out, not failed with 143.  It
# compares the step's end with its deadline counted from step.started's
# time: that time was once the commit's (a few ms after the live runner's
# count began), and the process executor's end the file's coarse mtime
# (a tick early), so a step stopped at its deadline looked ended in time
# about one time in three.  Three kills.
cat > "$tmp/tstop.yml" <<'YML'
pipeline: crash-tstop
image: localhost/evrun-busybox:latest
steps:
  - name: slow
    timeout: 1s
    run: for i in $(seq 1 300); do echo "slow line $i"; sleep 0.05; done
YML
adapt "$tmp/tstop.yml"
case_tstop() {
  local before=$fails k n
  for k in 1 2 3; do
    state=$tmp/tstop-$k
    start "$state" "$tmp/tstop.yml" EVR_TEST_PAUSE_AT=output_ended:slow
    check "$k: reached" wait_for "$state.err" "test pause at"
    kill_runner
    job=$(job_of "$state")
    recover "$state"
    check "$k: exit 1" [ "$rc" -eq 1 ]
    check "$k: the step timed out" grep -Eq "^slow +timed_out +1 " <(replay "$state" --job "$job")
    n=$(replay "$state" --output "$job/slow" | wc -l)
    check "$k: its lines once, in order ($n)" cmp -s <(replay "$state" --output "$job/slow") \
      <(seq 1 "$n" | sed "s/^/slow line /")
    common_end "$job"
    rm -rf "$state"
  done
}

# Killed once a secret is registered (kept, masked) but before the runner
# answered evrun-job (EVR_TEST_PAUSE_AT=secret): evrun-job asks again until
# the recovered runner answers, and the step goes on.
case_secret_answer() {
  local before=$fails
  state=$tmp/secans
  start "$state" "$tmp/secret.yml" EVR_TEST_PAUSE_AT=secret:s
  check "reached" wait_for "$state.err" "test pause at secret of step s"
  kill_runner
  job=$(job_of "$state")
  recover_bg "$state"
  check "the step went on" bash -c "for i in \$(seq 1 200); do
    '$bin/evrun-replay' '$state' --output '$job/s' 2>/dev/null | grep -q '^registered$' && exit 0
    sleep 0.05; done; exit 1"
  go_file "$job" go
  wait "$rpid"; rc=$?; ended "$rpid"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  check "job succeeded" grep -Eq "^$job +crash-secret +succeeded" <(replay "$state")
  check "evrun-job said once that it asks again" [ "$(replay "$state" --output "$job/s" \
    | grep -c '^evrun-job: the runner did not answer (channel closed); asking again')" -eq 1 ]
  check "stored masked, once" cmp -s <(printf 'registered\nval: *** end\nagain: ***\n') \
    <(replay "$state" --output "$job/s" | grep -v '^evrun-job: ')
  check "the next step masks it" [ "$(replay "$state" --output "$job/t")" = "next: ***" ]
  check "the value nowhere in the state directory" not grep -rqa "secehbbZq" "$state"
  common_end "$job"
}

# Killed once a step's start was answered, before its step.started was
# recorded (EVR_TEST_PAUSE_AT=started), and restarted after its timeout:
# the recovery counts the timeout from the start the executor says (it
# counted from the restart: the step ran twice its timeout and its
# duration said the second half).
cat > "$tmp/tstart.yml" <<'YML'
pipeline: crash-tstart
image: localhost/evrun-busybox:latest
steps:
  - name: slow
    timeout: 3s
    run: sleep 30
YML
adapt "$tmp/tstart.yml"
case_tstart() {
  local before=$fails t0
  state=$tmp/tstart
  start "$state" "$tmp/tstart.yml" EVR_TEST_PAUSE_AT=started:slow
  check "reached" wait_for "$state.err" "test pause at started of step slow"
  kill_runner
  job=$(job_of "$state")
  check "no step.started before the kill" not grep -q ' step.started ' <(replay "$state" --events)
  sleep 3   # past the step's timeout, counted from its start
  t0=$SECONDS
  recover "$state"
  check "exit 1" [ "$rc" -eq 1 ]
  check "timed out soon after the restart, not 3 s later" [ $((SECONDS - t0)) -le 2 ]
  check "the step timed out" grep -Eq "^slow +timed_out +1 " <(replay "$state" --job "$job")
  check "its duration counts from its start (over 3 s)" \
    grep -Eq '"duration":"[3-9]s' <(replay "$state" --events | grep ' step.finished ')
  common_end "$job"
}

all="dag dag_random secret secret_answer secret_down chunk cancel resource tgrace tstop tstart"
run_cases ${@:-$all}

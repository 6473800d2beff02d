#!/usr/bin/env bash
# test_recover.sh BIN_DIR SRC_DIR [EXECUTOR]: evrun-runner killed with
# SIGKILL, then `--recover`, with the executor EXECUTOR: podman (default;
# the real podman service of the "podman" fixture) or process (host
# processes: the same pipelines with `executor: process`, paths relative to
# the workspace, a runner started with --executors process; no podman).
#
# The pipeline's steps print numbered lines with short sleeps and append
# their name to /workspace/runs once per execution; the last step prints
# that file.  The runner is killed at named points (the test hook
# EVR_TEST_PAUSE_AT stops it there, so the kill is deterministic), while a
# step prints 400,000 lines fast, while a re-attached step waits (its output
# so far must be stored already), and at random moments (EVR_RECOVER_KILLS
# of them, default 30).  After each
# recovery: the job succeeded, every numbered line is stored exactly once
# and in order, each step ran once, the artifact is whole, podman holds
# nothing of the job, and the store verifies.
set -u
bin=$1 src=$2 executor=${3:-podman}
case $executor in
  podman) xflags=() ;;
  process) xflags=(--executors process) ;;
  *) echo "usage: test_recover.sh BIN_DIR SRC_DIR [podman|process]" >&2; exit 2 ;;
esac
export CONTAINERS_CONF=$src/tools/podman/containers.conf
: "${EVRUN_PODMAN_URL:=unix:///tmp/evr-it-podman/podman.sock}"
export EVRUN_PODMAN_URL
kills=${EVR_RECOVER_KILLS:-30}
tmp=$(mktemp -d /tmp/evr-crash-XXXXXX)
# Background processes this script started and has not reaped yet: on exit
# (a failed check, ^C) they are ended by pid, nothing else is.
bgpids=()
ended() {   # ended PID: reaped, out of the list
  local p keep=()
  for p in ${bgpids[@]+"${bgpids[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
  bgpids=(${keep[@]+"${keep[@]}"})
}
trap 'for p in ${bgpids[@]+"${bgpids[@]}"}; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
fails=0 passes=0 case_name=

# case_start NAME / case_end: per-case ok or FAILED line
case_start() { case_name=$1; case_fails=$fails; }
case_end() { [ "$fails" -eq "$case_fails" ] && echo "ok: $case_name" || echo "FAILED: $case_name"; }

. "$(dirname "$0")/../support/check.sh"

# adapt FILE: the pipeline in FILE for the executor (podman: as written;
# process: `executor: process` for the image, paths relative to the
# workspace, which is the steps' working directory)
adapt() {
  [ "$executor" = process ] || return 0
  sed -i -e 's|^image: localhost/evrun-busybox:latest$|executor: process|' \
    -e 's|/workspace/||g' -e 's|/tmp/go|go|g' "$1"
}

# "${runner[@]}" ARGS...: evrun-runner with the executor's flags (an array,
# not a function: `"${runner[@]}" ... &` sets $! to the runner's own pid)
runner=("$bin/evrun-runner" ${xflags[@]+"${xflags[@]}"})

unit_of() {   # unit_of JOB STEP: the step's first unit (container or process)
  echo "evrun-$(echo "$1" | tr 'A-Z' 'a-z')-$2-1"
}

# gone JOB STEP: the step's unit removed behind the runner's back
gone() {
  local u
  u=$(unit_of "$1" "$2")
  if [ "$executor" = podman ]; then
    podman rm -f "$u" > /dev/null
    return
  fi
  u=$state/units/$u
  kill -9 -- "-$(cut -d' ' -f1 "$u/pid")"
  for _ in $(seq 1 100); do [ -e "$u/exit" ] && break; sleep 0.02; done
  rm -rf "$u"
}

cat > "$tmp/crash.yml" <<'YML'
pipeline: crash
image: localhost/evrun-busybox:latest
steps:
  - name: one
    run: |
      echo one >> /workspace/runs
      for i in $(seq 1 20); do echo "one line $i"; sleep 0.03; done
  - name: two
    run: |
      echo two >> /workspace/runs
      for i in $(seq 1 20); do echo "two line $i"; echo "two err $i" >&2; sleep 0.03; done
      mkdir -p out
      seq 1 50000 > out/data.txt
    artifacts: [out/data.txt]
  - name: check
    run: cat /workspace/runs
YML
adapt "$tmp/crash.yml"
for s in one two; do seq 1 20 | sed "s/^/$s line /" > "$tmp/want.$s"; done
{ for i in $(seq 1 20); do echo "two line $i"; echo "two err $i"; done; } | sort > "$tmp/want.two.all"

# left_behind JOB: what the executor still holds of the job (podman:
# containers, volumes; process: units, the workspace, in $state)
left_behind() {
  local id
  id=$(echo "$1" | tr 'A-Z' 'a-z')
  if [ "$executor" = process ]; then
    ls "$state/units" "$state/work" 2>/dev/null | grep -ci "$id" || true
    return
  fi
  { podman ps -a --format '{{.Names}}'; podman volume ls --format '{{.Name}}'; } | grep -c "evrun-$id" || true
}

# nothing_left JOB: JOB is empty (not even its id was written) or
# nothing of it is left behind
nothing_left() { [ -z "$1" ] || [ "$(left_behind "$1")" -eq 0 ]; }

# verify_job STATE JOB: the checks after a recovery
verify_job() {
  local state=$1 job=$2
  check "job succeeded" grep -Eq "^$job +crash +succeeded +3/3 " <("$bin/evrun-replay" "$state")
  check "step one: every line once, in order" \
    cmp -s "$tmp/want.one" <("$bin/evrun-replay" "$state" --output "$job/one")
  check "step two: every line once" \
    cmp -s "$tmp/want.two.all" <("$bin/evrun-replay" "$state" --output "$job/two" | sort)
  check "each step ran once" [ "$("$bin/evrun-replay" "$state" --output "$job/check" | tr '\n' ' ')" = "one two " ]
  check "artifact whole" [ "$(wc -l < "$state/artifacts/$job/two/out/data.txt" 2>/dev/null)" = 50000 ]
  check "no partial artifact" [ -z "$(find "$state/artifacts" -name '*.evrun-partial' 2>/dev/null)" ]
  check "nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
  check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
}

# start_runner STATE [ENV...]: the runner in the background; sets $pid
start_runner() {
  local state=$1; shift
  env "$@" "${runner[@]}" --exec "$tmp/crash.yml" --state-dir "$state" --grace 1 \
    > "$state.out" 2> "$state.err" &
  pid=$!
  bgpids+=("$pid")
}

job_of() { sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$1.out" | head -n 1; }

recover() {   # recover STATE: runs --recover to the end; sets $rc
  timeout -k 10 120 "${runner[@]}" --recover --state-dir "$1" --grace 1 > "$1.rec.out" 2> "$1.rec.err"
  rc=$?
}

# Kill points: STATE when the runner stops there
# (output_ended: the output has ended, its exit not read yet, the
# executor's read of it (conmon's exit file, or podman's inspect) under
# way; after_create:two: step two's container
# created and initialized ahead while step one runs, not started;
# attached:one: step one's output stream set up (podman: conmon's attach
# socket connected), its container not started)
for point in before_create:one after_create:one attached:one running:one output_ended:one after_exit:one \
             between_steps:one after_create:two running:two output_ended:two after_exit:two \
             artifact:two between_steps:two; do
  case_start "$point"
  state=$tmp/p-${point/:/-}
  start_runner "$state" EVR_TEST_PAUSE_AT="$point"
  for _ in $(seq 1 300); do grep -q "test pause at" "$state.err" 2>/dev/null && break; sleep 0.05; done
  check "reached the point" grep -q "test pause at" "$state.err"
  kill -9 "$pid"; wait "$pid" 2>/dev/null; ended "$pid"
  job=$(job_of "$state")
  recover "$state"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  check "recovery logged" grep -q "recovered 1 job" "$state.rec.out"
  verify_job "$state" "$job"
  [ "$fails" -eq "$case_fails" ] || cat "$state.rec.out" "$state.rec.err" >&2
  case_end
done

# The exit read by podman's wait, the executor's fallback when its
# inspect after the output's end cannot tell (the test hook
# EVR_TEST_WAIT_FALLBACK=1 makes it never ask): a run to the end, a kill
# where the output has ended, and a step's exit code as the wait says it.
if [ "$executor" = podman ]; then
  case_start wait-fallback
  state=$tmp/wait-fallback
  start_runner "$state" EVR_TEST_WAIT_FALLBACK=1
  wait "$pid"; rc=$?; ended "$pid"
  check "runner exit 0" [ "$rc" -eq 0 ]
  verify_job "$state" "$(job_of "$state")"
  state=$tmp/wait-fallback-kill
  start_runner "$state" EVR_TEST_WAIT_FALLBACK=1 EVR_TEST_PAUSE_AT=output_ended:one
  for _ in $(seq 1 300); do grep -q "test pause at" "$state.err" 2>/dev/null && break; sleep 0.05; done
  check "reached the point" grep -q "test pause at" "$state.err"
  kill -9 "$pid"; wait "$pid" 2>/dev/null; ended "$pid"
  export EVR_TEST_WAIT_FALLBACK=1
  recover "$state"
  unset EVR_TEST_WAIT_FALLBACK
  check "recovery exit 0" [ "$rc" -eq 0 ]
  verify_job "$state" "$(job_of "$state")"
  printf 'pipeline: crash-exit\nimage: localhost/evrun-busybox:latest\nsteps:\n  - { name: x, run: "echo out; exit 3" }\n' \
    > "$tmp/exit3.yml"
  state=$tmp/wait-fallback-exit
  EVR_TEST_WAIT_FALLBACK=1 "${runner[@]}" --exec "$tmp/exit3.yml" --state-dir "$state" > "$state.out" 2>&1
  check "runner exit 1" [ $? -eq 1 ]
  job=$(job_of "$state")
  check "exit code 3 from the wait" grep -q '"exit_code":3' <("$bin/evrun-replay" "$state" --job "$job")
  check "output whole" [ "$("$bin/evrun-replay" "$state" --output "$job/x")" = out ]
  check "nothing left in podman" [ "$(left_behind "$job")" -eq 0 ]
  case_end
fi

# The output through podman's attach, the executor's fallback when
# conmon's attach socket cannot be reached (the test hook
# EVR_TEST_REST_ATTACH=1 makes it never try): a run to the end, and
# kills while a step runs and once its output has ended.
if [ "$executor" = podman ]; then
  case_start rest-attach
  state=$tmp/rest-attach
  start_runner "$state" EVR_TEST_REST_ATTACH=1
  wait "$pid"; rc=$?; ended "$pid"
  check "runner exit 0" [ "$rc" -eq 0 ]
  verify_job "$state" "$(job_of "$state")"
  for point in running:one output_ended:two; do
    state=$tmp/rest-attach-${point/:/-}
    start_runner "$state" EVR_TEST_REST_ATTACH=1 EVR_TEST_PAUSE_AT=$point
    for _ in $(seq 1 300); do grep -q "test pause at" "$state.err" 2>/dev/null && break; sleep 0.05; done
    check "$point: reached the point" grep -q "test pause at" "$state.err"
    kill -9 "$pid"; wait "$pid" 2>/dev/null; ended "$pid"
    EVR_TEST_REST_ATTACH=1 recover "$state"
    check "$point: recovery exit 0" [ "$rc" -eq 0 ]
    verify_job "$state" "$(job_of "$state")"
  done
  case_end
fi

# pause_and_kill STATE FILE POINT: run FILE until POINT, then SIGKILL
pause_and_kill() {
  local state=$1 file=$2 point=$3
  EVR_TEST_PAUSE_AT=$point "${runner[@]}" --exec "$file" --state-dir "$state" --grace 1 \
    > "$state.out" 2> "$state.err" &
  pid=$!
  bgpids+=("$pid")
  for _ in $(seq 1 300); do grep -q "test pause at" "$state.err" 2>/dev/null && break; sleep 0.05; done
  kill -9 "$pid"; wait "$pid" 2>/dev/null; ended "$pid"
  job=$(job_of "$state")
}

# A container removed while the runner was down: the step is lost, the
# job fails; with `retry: {on: [lost]}` the step runs again.
case_start lost
state=$tmp/lost
pause_and_kill "$state" "$tmp/crash.yml" running:one
gone "$job" one
recover "$state"
check "exit 1" [ "$rc" -eq 1 ]
check "step lost" grep -Eq "^one +lost" <("$bin/evrun-replay" "$state" --job "$job")
check "job failed" grep -Eq "^$job +crash +failed" <("$bin/evrun-replay" "$state")
check "recorded as lost" grep -q '"how":"lost"' <("$bin/evrun-replay" "$state" --job "$job")
check "nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
sed 's/^  - name: one$/  - name: one\n    retry: { on: [lost], max: 1 }/' "$tmp/crash.yml" > "$tmp/retry.yml"
state=$tmp/lost-retry
pause_and_kill "$state" "$tmp/retry.yml" running:one
gone "$job" one
recover "$state"
check "retry: exit 0" [ "$rc" -eq 0 ]
check "retry: second attempt succeeded" grep -Eq "^one +succeeded +2 " <("$bin/evrun-replay" "$state" --job "$job")
check "retry: the rest ran once" [ "$("$bin/evrun-replay" "$state" --output "$job/check" | grep -c two)" -eq 1 ]
check "retry: nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
case_end

# Step outputs: killed once produce's step.outputs and its end are
# committed, before consume starts (outputs:produce, no artifact), and
# once step.outputs is committed but not the step's end, its artifact
# being copied (artifact:produce): the recovered runner gives consume the values
# from its log and never reads the file again (one step.outputs).
cat > "$tmp/outputs.yml" <<'YML'
pipeline: crash-outputs
image: localhost/evrun-busybox:latest
steps:
  - name: produce
    run: echo "V=from-produce" > "$EVRUN_OUTPUT"; echo art > a.txt
    artifacts: [a.txt]
  - name: consume
    needs: [produce]
    run: echo "got $EVRUN_OUT_PRODUCE_V"
YML
adapt "$tmp/outputs.yml"
grep -v 'artifacts: \[a.txt\]' "$tmp/outputs.yml" > "$tmp/outputs-noart.yml"
for point in outputs:produce artifact:produce; do
  case_start "outputs-${point%%:*}"
  state=$tmp/outputs-${point%%:*}
  file=$tmp/outputs.yml
  [ "$point" = outputs:produce ] && file=$tmp/outputs-noart.yml   # its end committed too
  pause_and_kill "$state" "$file" "$point"
  check "killed at $point" grep -q "test pause at ${point%%:*} of step produce" "$state.err"
  check "step.outputs committed before the kill" \
    [ "$("$bin/evrun-replay" "$state" --events | grep -c ' step.outputs ')" -eq 1 ]
  recover "$state"
  check "exit 0" [ "$rc" -eq 0 ]
  check "consume got the value from the log" \
    [ "$("$bin/evrun-replay" "$state" --output "$job/consume")" = "got from-produce" ]
  check "one step.outputs" [ "$("$bin/evrun-replay" "$state" --events | grep -c ' step.outputs ')" -eq 1 ]
  check "nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
  check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
  case_end
done

# A cancel requested before the crash is carried out after it.
case_start cancel
cat > "$tmp/cancel.yml" <<'YML'
pipeline: crash
image: localhost/evrun-busybox:latest
steps:
  - name: one
    run: |
      trap "" TERM
      for i in $(seq 1 100); do echo "one line $i"; sleep 0.1; done
  - name: two
    run: echo never
YML
adapt "$tmp/cancel.yml"
state=$tmp/cancel
"${runner[@]}" --exec "$tmp/cancel.yml" --state-dir "$state" --grace 30 > "$state.out" 2> "$state.err" &
pid=$!
bgpids+=("$pid")
for _ in $(seq 1 300); do grep -q "one line 3" "$state.out" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"; sleep 0.3; kill -9 "$pid"; wait "$pid" 2>/dev/null; ended "$pid"
job=$(job_of "$state")
check "cancel recorded before the crash" grep -q "job.cancel_requested" <("$bin/evrun-replay" "$state" --job "$job")
recover "$state"
check "exit 1" [ "$rc" -eq 1 ]
check "job cancelled" grep -Eq "^$job +crash +cancelled" <("$bin/evrun-replay" "$state")
check "later steps skipped" grep -Eq "^two +skipped" <("$bin/evrun-replay" "$state" --job "$job")
check "nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
case_end

# A step timeout keeps counting while the runner is down.
case_start timeout
cat > "$tmp/timeout.yml" <<'YML'
pipeline: crash-timeout
image: localhost/evrun-busybox:latest
steps:
  - name: slow
    timeout: 4s
    run: echo begun; sleep 30
YML
adapt "$tmp/timeout.yml"
state=$tmp/timeout
pause_and_kill "$state" "$tmp/timeout.yml" running:slow
sleep 3
t0=$SECONDS
recover "$state"
check "exit 1" [ "$rc" -eq 1 ]
check "timed out soon after the restart, not 4 s later" [ $((SECONDS - t0)) -le 3 ]
check "step timed out" grep -Eq "^slow +timed_out" <("$bin/evrun-replay" "$state" --job "$job")
check "nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
case_end

# A step that ended within its timeout while the runner was down, found
# after the timeout has passed: it succeeded (before, the restarted runner
# counted its timeout up to the moment it read the step's end, and the
# step ended timed_out though it had exited 0 in time).
case_start timeout-ended
cat > "$tmp/tended.yml" <<'YML'
pipeline: crash-tended
image: localhost/evrun-busybox:latest
steps:
  - name: quick
    timeout: 3s
    run: for i in 1 2 3 4 5; do echo "q $i"; sleep 0.1; done
  - name: next
    run: echo next
YML
adapt "$tmp/tended.yml"
state=$tmp/tended
pause_and_kill "$state" "$tmp/tended.yml" running:quick
sleep 4   # past the step's timeout, counted from its recorded start
recover "$state"
check "exit 0" [ "$rc" -eq 0 ]
check "the step succeeded" grep -Eq "^quick +succeeded +1 " <("$bin/evrun-replay" "$state" --job "$job")
check "its output whole" [ "$("$bin/evrun-replay" "$state" --output "$job/quick" | tr '\n' ' ')" = "q 1 q 2 q 3 q 4 q 5 " ]
check "the next step ran" grep -Eq "^next +succeeded " <("$bin/evrun-replay" "$state" --job "$job")
check "nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
# the same with the pipeline's timeout: a job whose steps all ended in
# time succeeds; one with a step left to run when it passed times out
sed -e 's/^pipeline: crash-tended$/&\ntimeout: 3s/' -e '/^    timeout: 3s$/d' "$tmp/tended.yml" > "$tmp/jtended.yml"
sed '/^  - name: next$/,$d' "$tmp/jtended.yml" > "$tmp/jtended1.yml"
state=$tmp/jtended1
pause_and_kill "$state" "$tmp/jtended1.yml" running:quick
sleep 4
recover "$state"
check "job timeout, last step ended in time: exit 0" [ "$rc" -eq 0 ]
check "... the job succeeded" grep -Eq "^$job +crash-tended +succeeded " <("$bin/evrun-replay" "$state")
check "... the step succeeded" grep -Eq "^quick +succeeded +1 " <("$bin/evrun-replay" "$state" --job "$job")
state=$tmp/jtended
pause_and_kill "$state" "$tmp/jtended.yml" running:quick
sleep 4
recover "$state"
check "job timeout, a step left: exit 1" [ "$rc" -eq 1 ]
check "... the job timed out" grep -Eq "^$job +crash-tended +timed_out " <("$bin/evrun-replay" "$state")
check "... the step that ended in time succeeded" grep -Eq "^quick +succeeded +1 " <("$bin/evrun-replay" "$state" --job "$job")
check "... the next did not run" grep -Eq "^next +skipped " <("$bin/evrun-replay" "$state" --job "$job")
check "nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
case_end

# Killed while on_error runs after a failure, and while a `when: always`
# step runs after a cancel: taken up again, each finishes (its output
# whole, once), and the job ends as it would have (failed; cancelled).
case_start flow
cat > "$tmp/flow.yml" <<'YML'
pipeline: crash-flow
image: localhost/evrun-busybox:latest
on_error:
  run: |
    echo "oe $EVRUN_FAILED_STEPS"
    for i in $(seq 1 10); do echo "oe line $i"; sleep 0.05; done
steps:
  - name: a
    run: exit 4
  - name: b
    run: echo never
YML
adapt "$tmp/flow.yml"
state=$tmp/flow-on-error
pause_and_kill "$state" "$tmp/flow.yml" running:on_error
recover "$state"
check "on_error: exit 1" [ "$rc" -eq 1 ]
check "on_error: job failed" grep -Eq "^$job +crash-flow +failed" <("$bin/evrun-replay" "$state")
check "on_error: it succeeded" grep -Eq "^on_error +succeeded +1 " <("$bin/evrun-replay" "$state" --job "$job")
check "on_error: its output whole, once" cmp -s <("$bin/evrun-replay" "$state" --output "$job/on_error") \
  <(echo "oe a"; seq 1 10 | sed 's/^/oe line /')
check "on_error: nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
check "on_error: store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
cat > "$tmp/flow-always.yml" <<'YML'
pipeline: crash-flow
image: localhost/evrun-busybox:latest
steps:
  - name: long
    run: for i in $(seq 1 100); do echo "long line $i"; sleep 0.1; done
  - name: cleanup
    when: always
    run: for i in $(seq 1 10); do echo "clean line $i"; sleep 0.05; done
YML
adapt "$tmp/flow-always.yml"
state=$tmp/flow-always
EVR_TEST_PAUSE_AT=running:cleanup "${runner[@]}" --exec "$tmp/flow-always.yml" --state-dir "$state" \
  --grace 1 > "$state.out" 2> "$state.err" &
pid=$!
bgpids+=("$pid")
for _ in $(seq 1 300); do grep -q "long line 3" "$state.out" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
for _ in $(seq 1 300); do grep -q "test pause at" "$state.err" 2>/dev/null && break; sleep 0.05; done
check "always: reached its start after the cancel" grep -q "test pause at running of step cleanup" "$state.err"
kill -9 "$pid"; wait "$pid" 2>/dev/null; ended "$pid"
job=$(job_of "$state")
recover "$state"
check "always: exit 1" [ "$rc" -eq 1 ]
check "always: job cancelled" grep -Eq "^$job +crash-flow +cancelled" <("$bin/evrun-replay" "$state")
check "always: it succeeded" grep -Eq "^cleanup +succeeded +1 " <("$bin/evrun-replay" "$state" --job "$job")
check "always: its output whole, once" cmp -s <("$bin/evrun-replay" "$state" --output "$job/cleanup") \
  <(seq 1 10 | sed 's/^/clean line /')
check "always: nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
check "always: store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
case_end

# --exec on a directory with unfinished jobs recovers them first.
case_start exec-recovers
state=$tmp/exec
pause_and_kill "$state" "$tmp/crash.yml" running:one
first=$job
example=hello
[ "$executor" = podman ] || example=process
"${runner[@]}" --exec "$src/examples/$example.yml" --state-dir "$state" > "$state.2.out" 2>&1
check "exit 0" [ $? -eq 0 ]
check "recovered first" grep -q "recovered 1 job" "$state.2.out"
verify_job "$state" "$first"
check "the new job too" [ "$("$bin/evrun-replay" "$state" | grep -c succeeded)" -eq 2 ]
case_end

# The create a killed runner sent can be carried out by podman after the
# recovery looked for its container and found none: the recovery's own
# create then finds the name taken and takes that container as the step's
# (create-raced); or podman holds the name for a create still under way,
# whose container it does not show yet (create-racing, where either create
# may win: the step runs once either way).
# dead_create STATE: step one's unit as the killed runner's create makes it
# (podman: evr_exec_podman's create; process: evr_unit_make's directory)
dead_create() {
  local script='echo one >> /workspace/runs
for i in $(seq 1 20); do echo "one line $i"; sleep 0.03; done'
  if [ "$executor" = podman ]; then
    vol=$(podman volume ls --format '{{.Name}}' | grep -i "^evrun-$job$")
    podman create --name "$(unit_of "$job" one)" --init --network none \
      -v "$vol:/workspace" -w /workspace localhost/evrun-busybox:latest /bin/sh -c "$script"
    return
  fi
  local new=$1/units/.new-dead-$$ ws=$1/work/$job
  mkdir -m 700 "$new" || return
  printf '%s' "${script//\/workspace\//}" > "$new/script"
  printf 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\0HOME=%s\0' "$ws" > "$new/env"
  printf '%s' "$ws" > "$new/workdir"
  : > "$new/stdout"; : > "$new/stderr"; : > "$new/lock"
  mv -T "$new" "$1/units/$(unit_of "$job" one)"
}

race_create() {   # race_create NAME BACKGROUND: the dead runner's create, then continue
  local state=$tmp/$1
  pause_and_kill "$state" "$tmp/crash.yml" before_create:one
  EVR_TEST_PAUSE_AT=recover_absent:one "${runner[@]}" --recover --state-dir "$state" \
    --grace 1 > "$state.rec.out" 2> "$state.rec.err" &
  rpid=$!
  bgpids+=("$rpid")
  for _ in $(seq 1 300); do grep -q "test pause at" "$state.rec.err" 2>/dev/null && break; sleep 0.05; done
  check "recovery found no container" grep -q "test pause at recover_absent of step one" "$state.rec.err"
  # what the killed runner's create would have made
  dead_create "$state" > /dev/null 2>&1 &
  cpid=$!
  bgpids+=("$cpid")
  [ "$2" = background ] || wait "$cpid"
  kill -CONT "$rpid"
  wait "$rpid"
  rc=$?
  wait "$cpid"
  ended "$rpid"; ended "$cpid"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  verify_job "$state" "$job"
  [ "$fails" -eq "$case_fails" ] || cat "$state.rec.out" "$state.rec.err" >&2
}
case_start create-raced
race_create raced wait
check "took the container" grep -q "exists: taking it" "$tmp/raced.rec.out"
case_end
case_start create-racing
race_create racing background
case_end

# A step still printing fast when the recovery attaches again (issue 11,
# item 1): podman ends a followed log when the container exits, before the
# end of the log, so the recovery must read the log once more after the
# exit.  Killed right after the start (point), and 0.8 s in, with part of
# the output stored (moment); --recover at once, while the container prints.
# And not killed (unkilled): the live output path keeps every line too.
case_start fast-printer
cat > "$tmp/fast.yml" <<'YML'
pipeline: crash-fast
image: localhost/evrun-busybox:latest
steps:
  - name: fast
    run: |
      i=0
      while [ $i -lt 400 ]; do
        seq $((i * 1000 + 1)) $((i * 1000 + 1000)); i=$((i + 1)); sleep 0.004
      done
YML
adapt "$tmp/fast.yml"
seq 1 400000 > "$tmp/want.fast"
for how in unkilled point moment; do
  state=$tmp/fast-$how
  if [ "$how" = unkilled ]; then
    # the same step without a crash: the output read live (attach) is whole
    timeout -k 10 120 "${runner[@]}" --exec "$tmp/fast.yml" --state-dir "$state" > "$state.out" 2> "$state.err"
    rc=$?
    job=$(job_of "$state")
    : > "$state.rec.out"; : > "$state.rec.err"
  elif [ "$how" = point ]; then
    pause_and_kill "$state" "$tmp/fast.yml" running:fast
  else
    "${runner[@]}" --exec "$tmp/fast.yml" --state-dir "$state" > "$state.out" 2> "$state.err" &
    pid=$!
    bgpids+=("$pid")
    sleep 0.8
    kill -9 "$pid"; wait "$pid" 2>/dev/null; ended "$pid"
    job=$(job_of "$state")
  fi
  [ "$how" = unkilled ] || recover "$state"
  check "$how: exit 0" [ "$rc" -eq 0 ]
  [ "$how" != point ] ||
    check "$how: attached again to the running container" \
      grep -q '"how":"reattached"' <("$bin/evrun-replay" "$state" --job "$job")
  check "$how: job succeeded" grep -Eq "^$job +crash-fast +succeeded +1/1 " <("$bin/evrun-replay" "$state")
  check "$how: all 400000 lines stored once, in order" \
    cmp -s "$tmp/want.fast" <("$bin/evrun-replay" "$state" --output "$job/fast")
  check "$how: nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
  check "$how: store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
  if [ "$fails" -ne "$case_fails" ]; then
    echo "--- fast-printer ($how): $("$bin/evrun-replay" "$state" --output "$job/fast" | wc -l) lines stored" >&2
    cat "$state.err" "$state.rec.out" "$state.rec.err" | grep -v '^fast | ' >&2
  fi
  rm -rf "$state"
done
case_end

# A re-attached step's output is live (issue 11, item 1): while its
# container still runs, the recovery reads its log so far now and then.
# The step prints 3000 lines and half a line, then waits until the test
# lets it go on (a file made with podman exec); the runner is killed at
# its start.  The 3000 lines must be stored while the step waits, and all
# of its output once it has ended.
case_start live-reattached
cat > "$tmp/live.yml" <<'YML'
pipeline: crash-live
image: localhost/evrun-busybox:latest
steps:
  - name: live
    run: |
      seq 1 3000; printf part
      i=0; while [ ! -e /tmp/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
      echo rest; seq 3001 6000
YML
adapt "$tmp/live.yml"
{ seq 1 3000; echo partrest; seq 3001 6000; } > "$tmp/want.live"
state=$tmp/live
pause_and_kill "$state" "$tmp/live.yml" running:live
timeout -k 10 120 "${runner[@]}" --recover --state-dir "$state" --grace 1 > "$state.rec.out" 2> "$state.rec.err" &
pid=$!
bgpids+=("$pid")
stored=0
for _ in $(seq 1 200); do
  stored=$("$bin/evrun-replay" "$state" --output "$job/live" 2>/dev/null | grep -c '^[0-9]*$')
  [ "$stored" -ge 3000 ] && break
  sleep 0.05
done
ctr=$(unit_of "$job" live)
if [ "$executor" = podman ]; then
  check "the step still waits" [ "$(podman inspect -f '{{.State.Running}}' "$ctr")" = true ]
else
  check "the step still waits" [ -e "$state/units/$ctr/pid" -a ! -e "$state/units/$ctr/exit" ]
fi
check "its first 3000 lines stored while it runs (got $stored)" [ "$stored" -eq 3000 ]
if [ "$executor" = podman ]; then
  podman exec "$ctr" touch /tmp/go
else
  touch "$state/work/$job/go"
fi
wait "$pid"; rc=$?; ended "$pid"
check "exit 0" [ "$rc" -eq 0 ]
check "attached again to the running container" \
  grep -q '"how":"reattached"' <("$bin/evrun-replay" "$state" --job "$job")
check "job succeeded" grep -Eq "^$job +crash-live +succeeded +1/1 " <("$bin/evrun-replay" "$state")
check "all of its output stored once, in order" \
  cmp -s "$tmp/want.live" <("$bin/evrun-replay" "$state" --output "$job/live")
check "nothing left in $executor" [ "$(left_behind "$job")" -eq 0 ]
check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
[ "$fails" -eq "$case_fails" ] || cat "$state.err" "$state.rec.out" "$state.rec.err" | grep -v "^live | " >&2
rm -rf "$state"
case_end

# Killed while a source is checked out (podman only: a process pipeline
# has no source): the checkout's child finishes or not on its own, the
# recovery checks out again (through the same cache) and the job runs.
if [ "$executor" = podman ]; then
  case_start checkout
  repo=$tmp/repo
  git init -q -b main "$repo"
  echo "checked out" > "$repo/f.txt"
  git -C "$repo" add . && git -C "$repo" -c user.email=t@t -c user.name=t commit -qm one
  cat > "$tmp/checkout.yml" <<YML
pipeline: crash-checkout
image: localhost/evrun-busybox:latest
source: {git: {url: "file://$repo", ref: main}}
steps:
  - {name: cat, run: cat f.txt}
YML
  state=$tmp/checkout
  pause_and_kill "$state" "$tmp/checkout.yml" checkout
  check "killed during the checkout" grep -q "test pause at checkout" "$state.err"
  # the dead runner's checkout (its own process group) held until the
  # recovery waits for its lock: its files come after the recovery began
  orphan=$(pgrep -n -f "evrun-checkout" || true)
  [ -n "$orphan" ] && kill -STOP -- "-$orphan"
  recover "$state" &
  rpid=$!
  sleep 1
  [ -n "$orphan" ] && kill -CONT -- "-$orphan"
  wait "$rpid"
  rc=$?
  check "recovery exit 0" [ "$rc" -eq 0 ]
  check "job succeeded" grep -Eq "^$job +crash-checkout +succeeded" <("$bin/evrun-replay" "$state")
  check "the tree checked out" [ "$("$bin/evrun-replay" "$state" --output "$job/cat")" = "checked out" ]
  check "the commit recorded" grep -q "\"commit\":\"$(git -C "$repo" rev-parse main)\"" \
    <("$bin/evrun-replay" "$state" --job "$job" --json)
  check "no temporary file left" [ -z "$(find "$state/artifacts" -name '.source-*')" ]
  check "nothing left in podman" [ "$(left_behind "$job")" -eq 0 ]
  check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
  [ "$fails" -eq "$case_fails" ] || cat "$state.rec.out" "$state.rec.err" >&2
  case_end
fi

# Random moments
for k in $(seq 1 "$kills"); do
  case_start "random-$k"
  state=$tmp/r-$k
  start_runner "$state"
  sleep "$(awk -v r="$RANDOM" 'BEGIN {printf "%.2f", 0.05 + (r % 300) / 100}')"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; ended "$pid"
  job=$(job_of "$state")
  recover "$state"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  if [ -n "$job" ] && "$bin/evrun-replay" "$state" --job "$job" > /dev/null 2>&1; then
    verify_job "$state" "$job"
  else
    # killed before the job was recorded: nothing may exist of it
    check "nothing left in $executor" nothing_left "$job"
  fi
  if [ "$fails" -ne "$case_fails" ]; then
    # what the failing case looked like: both runs' output and the job's steps
    echo "--- random-$k: killed run" >&2; cat "$state.out" "$state.err" >&2
    echo "--- random-$k: recovery (exit $rc)" >&2; cat "$state.rec.out" "$state.rec.err" >&2
    [ -n "$job" ] && "$bin/evrun-replay" "$state" --job "$job" >&2
  fi
  rm -rf "$state"
  case_end
done
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

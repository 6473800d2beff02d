#!/usr/bin/env bash
# test_recover.sh BIN_DIR SRC_DIR: evrun-runner killed with SIGKILL, then
# `--recover`, against the real podman service of the "podman" fixture.
#
# The pipeline's steps print numbered lines with short sleeps and append
# their name to /workspace/runs once per execution; the last step prints
# that file.  The runner is killed at named points (the test hook
# EVR_TEST_PAUSE_AT stops it there, so the kill is deterministic) and at
# random moments (EVR_RECOVER_KILLS of them, default 30).  After each
# recovery: the job succeeded, every numbered line is stored exactly once
# and in order, each step ran once, the artifact is whole, podman holds
# nothing of the job, and the store verifies.
set -u
bin=$1 src=$2
export CONTAINERS_CONF=$src/tools/podman/containers.conf
: "${EVRUN_PODMAN_URL:=unix:///tmp/evr-it-podman/podman.sock}"
export EVRUN_PODMAN_URL
kills=${EVR_RECOVER_KILLS:-30}
tmp=$(mktemp -d /tmp/evr-crash-XXXXXX)
trap 'pkill -9 -f "evrun-runner --exec $tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0 passes=0 case_name=

check() {
  local what=$1; shift
  if "$@"; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAILED: $case_name: $what" >&2; fi
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
for s in one two; do seq 1 20 | sed "s/^/$s line /" > "$tmp/want.$s"; done
{ for i in $(seq 1 20); do echo "two line $i"; echo "two err $i"; done; } | sort > "$tmp/want.two.all"

left_behind() {
  local id
  id=$(echo "$1" | tr 'A-Z' 'a-z')
  { podman ps -a --format '{{.Names}}'; podman volume ls --format '{{.Name}}'; } | grep -c "evrun-$id" || true
}

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
  check "nothing left in podman" [ "$(left_behind "$job")" -eq 0 ]
  check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
}

# start_runner STATE [ENV...]: the runner in the background; sets $pid
start_runner() {
  local state=$1; shift
  env "$@" "$bin/evrun-runner" --exec "$tmp/crash.yml" --state-dir "$state" --grace 1 \
    > "$state.out" 2> "$state.err" &
  pid=$!
}

job_of() { sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$1.out" | head -n 1; }

recover() {   # recover STATE: runs --recover to the end; sets $rc
  timeout 120 "$bin/evrun-runner" --recover --state-dir "$1" > "$1.rec.out" 2> "$1.rec.err"
  rc=$?
}

# Kill points: STATE when the runner stops there
for point in before_create:one after_create:one running:one after_exit:one between_steps:one \
             running:two after_exit:two artifact:two between_steps:two; do
  case_name=$point
  state=$tmp/p-${point/:/-}
  start_runner "$state" EVR_TEST_PAUSE_AT="$point"
  for _ in $(seq 1 300); do grep -q "test pause at" "$state.err" 2>/dev/null && break; sleep 0.05; done
  check "reached the point" grep -q "test pause at" "$state.err"
  kill -9 "$pid"; wait "$pid" 2>/dev/null
  job=$(job_of "$state")
  recover "$state"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  check "recovery logged" grep -q "recovered 1 job" "$state.rec.out"
  verify_job "$state" "$job"
  [ "$fails" -eq 0 ] && echo "ok: $point" || { echo "FAILED: $point"; cat "$state.rec.out" "$state.rec.err" >&2; }
done

# Random moments
for k in $(seq 1 "$kills"); do
  case_name=random-$k
  state=$tmp/r-$k
  start_runner "$state"
  sleep "$(awk -v r="$RANDOM" 'BEGIN {printf "%.2f", 0.05 + (r % 300) / 100}')"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  job=$(job_of "$state")
  recover "$state"
  check "recovery exit 0" [ "$rc" -eq 0 ]
  if [ -n "$job" ] && "$bin/evrun-replay" "$state" --job "$job" > /dev/null 2>&1; then
    verify_job "$state" "$job"
  else
    # killed before the job was recorded: nothing may exist of it
    check "nothing left in podman" [ -z "$job" ] || [ "$(left_behind "$job")" -eq 0 ]
  fi
  rm -rf "$state"
done
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# test_artifacts.sh BIN_DIR SRC_DIR [CASE...]: artifacts and caches end to
# end (issue 14), through real evrun-broker and evrun-runner processes on
# ipc:// sockets (bus_lib.sh) and real podman: a failing step's artifact
# kept (when: on_failure), shipped to the broker and fetched with
# `evrun-cli artifacts` (content and the step.artifact sha256 compared);
# the per-job caps of the runner and the broker; a runner killed while
# it ships, shipping on after its restart with no duplicate or partial
# file; caches restored for the same pipeline and key and not for another
# key, evicted least recently used under a tiny cap.
set -u
bin=$1 src=$2
shift 2
export CONTAINERS_CONF=$src/tools/podman/containers.conf
: "${EVRUN_PODMAN_URL:=unix:///tmp/evr-it-podman/podman.sock}"
export EVRUN_PODMAN_URL
root=$(mktemp -d /tmp/evr-art-XXXXXX)
tmp=$root
. "$src/tests/integration/bus_lib.sh"
trap 'bus_stop; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$root"' EXIT
fails=0 passes=0 case_name=

pipeline() { cat > "$tmp/$1.yml"; }

# the sha256 of the step.artifact event of JOB for STEP/PATH
event_sha() {
  cli logs "$1" --events --json | grep '"type":"step.artifact"' \
    | grep "\"step\":\"$2\"" | grep "\"path\":\"$3\"" | tail -1 \
    | sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p'
}

case_failing_step() {
  fresh failing
  bus_broker && bus_runner af-1 "" 1 && bus_wait_runners 1
  # 3 MB: shipped as several 1 MiB pieces
  pipeline failing <<'YML'
pipeline: art-failing
image: localhost/evrun-busybox:latest
on_failure: finish
steps:
  - name: always
    run: echo kept > kept.txt
    artifacts: {paths: [kept.txt], when: always}
  - name: report
    needs: [always]
    run: mkdir -p out/sub && seq 1 400000 > out/sub/numbers.txt && echo fine > out/ok.txt && exit 3
    artifacts: {paths: [out], when: on_failure}
  - name: success-only
    needs: [always]
    run: mkdir -p other && echo no > other/x.txt; exit 4
    artifacts: [other/x.txt]
YML
  local j
  j=$(submit "$tmp/failing.yml")
  check "the job failed" [ "$(wait_job "$j")" = failed ]
  for _ in $(seq 1 100); do
    cli artifacts "$j" -o "$tmp/got" > "$tmp/art.out" 2> "$tmp/art.err" && break
    sleep 0.1
  done
  check "artifacts: exit 0" [ $? -eq 0 ]
  check "the failing step's file fetched whole" cmp -s <(seq 1 400000) "$tmp/got/report/out/sub/numbers.txt"
  check "its sha256 is the event's" [ "$(sha256sum < "$tmp/got/report/out/sub/numbers.txt" | cut -d' ' -f1)" = "$(event_sha "$j" report out/sub/numbers.txt)" ]
  check "one line per file, with size and sha256" grep -q "report/out/sub/numbers.txt  2688895 bytes  sha256 [0-9a-f]\{64\}$" "$tmp/art.out"
  check "the other file of the path" [ "$(cat "$tmp/got/report/out/ok.txt")" = fine ]
  check "when: always on success kept" [ "$(cat "$tmp/got/always/kept.txt")" = kept ]
  check "on_success of a failed step: nothing" [ ! -e "$tmp/got/success-only" ]
  check "no partial file fetched" [ -z "$(find "$tmp/got" -name '*.evrun-partial')" ]
  check "the runner keeps its copy" cmp -s <(seq 1 400000) "$tmp/r-af-1/artifacts/$j/report/out/sub/numbers.txt"
  check "the broker holds it, nothing partial" [ -z "$(find "$tmp/broker/artifacts/$j/.partial" -type f)" ]
  check "the broker's copy is owner-only" [ "$(stat -c %a "$tmp/broker/artifacts")" = 700 ]
  check "the ship queue is empty" [ -z "$(ls "$tmp/r-af-1/ship")" ]
  cli artifacts "$j" --step always -o "$tmp/one" --json > "$tmp/one.out"
  check "--step: only that step's" [ "$(ls "$tmp/one")" = always ]
  check "--json: one object per file" grep -q '"step":"always","path":"kept.txt","size":5' "$tmp/one.out"
  cli artifacts "$j" --step nosuch > /dev/null 2> "$tmp/none.err"
  check "no files: exit 1" [ $? -eq 1 ]
  check "no files: said" grep -q "has no artifact files of step nosuch" "$tmp/none.err"
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
  check "runner log verifies" "$bin/evrun-replay" "$tmp/r-af-1" --verify
}

case_job_cap() {
  fresh cap
  bus_broker --artifact-job-max-bytes 1500 && bus_runner cap-1 "" 1 --artifact-job-max-bytes 2500 && bus_wait_runners 1
  pipeline cap <<'YML'
pipeline: art-cap
image: localhost/evrun-busybox:latest
steps:
  - name: one
    run: head -c 1000 /dev/zero > a.bin && head -c 1000 /dev/zero > b.bin && head -c 1000 /dev/zero > c.bin
    artifacts: [a.bin, b.bin, c.bin]
YML
  local j
  j=$(submit "$tmp/cap.yml")
  check "over the runner's cap: the step fails" [ "$(wait_job "$j")" = failed ]
  cli logs "$j" --events > "$tmp/cap.st"
  # the copies end in any order: the third is over the runner's cap
  check "the reason names the path, the limit and the setting" grep -q "step.finished: failed (exit 0, .*) -- artifact [abc].bin: 1000 bytes of files, over the room of 500 bytes left of the job's limit of 2500 bytes (its artifacts hold 2000 bytes already; the runner's artifact_job_max_bytes setting)" "$tmp/cap.st"
  check "two files recorded" [ "$(grep -c "step.artifact [abc].bin (1000 bytes, sha256 [0-9a-f]\{64\})" "$tmp/cap.st")" -eq 2 ]
  for _ in $(seq 1 50); do grep -q "refuses it" "$tmp/runner-cap-1.log" && break; sleep 0.1; done
  check "over the broker's cap: the runner says the broker refuses it" grep -q "artifact one/[abc].bin of job $j: the broker refuses it: 1000 bytes, with the 1000 bytes the job holds, over the broker's limit of 1500 bytes a job (its artifact_job_max_bytes setting)" "$tmp/runner-cap-1.log"
  cli artifacts "$j" -o "$tmp/got" > "$tmp/cap.out" 2> "$tmp/cap.err"
  check "fetching: exit 1" [ $? -eq 1 ]
  check "the file the broker took fetched" [ "$(find "$tmp/got/one" -type f -size 1000c | wc -l)" -eq 1 ]
  check "the refused one: not_found, saying why" grep -q "one/[abc].bin: not_found: the broker holds no artifact [abc].bin of step one of job $j (not shipped by its runner yet, or never)" "$tmp/cap.err"
  check "the ship queue is empty" [ -z "$(ls "$tmp/r-cap-1/ship")" ]
}

case_ship_killed() {
  fresh shipkill
  bus_broker && bus_runner sk-1 "" 1 && bus_wait_runners 1
  kill "$runner_pid_sk_1"; wait "$runner_pid_sk_1" 2>/dev/null
  EVR_TEST_PAUSE_AT=ship bus_runner sk-1 "" 1
  pipeline ship <<'YML'
pipeline: art-ship
image: localhost/evrun-busybox:latest
steps:
  - name: big
    run: seq 1 1200000 > big.txt
    artifacts: [big.txt]
YML
  local j
  j=$(submit "$tmp/ship.yml")
  for _ in $(seq 1 300); do grep -q "test pause at ship" "$tmp/runner-sk-1.log" && break; sleep 0.1; done
  check "paused while shipping" grep -q "test pause at ship" "$tmp/runner-sk-1.log"
  local part
  part=$(find "$tmp/broker/artifacts/$j/.partial" -type f 2>/dev/null)
  check "the broker holds part of the file" [ -n "$part" ] && [ "$(stat -c %s "$part")" -gt 0 ]
  check "... and nothing at its name" [ ! -e "$tmp/broker/artifacts/$j/big/big.txt" ]
  kill -9 "$runner_pid_sk_1"
  wait "$runner_pid_sk_1" 2>/dev/null
  bus_runner sk-1 "" 1
  check "the job succeeded" [ "$(wait_job "$j" 60)" = succeeded ]
  for _ in $(seq 1 100); do cli artifacts "$j" -o "$tmp/got" > /dev/null 2>&1 && break; sleep 0.2; done
  check "shipped after the restart, whole" cmp -s <(seq 1 1200000) "$tmp/got/big/big.txt"
  check "the broker's copy matches the event" [ "$(sha256sum < "$tmp/broker/artifacts/$j/big/big.txt" | cut -d' ' -f1)" = "$(event_sha "$j" big big.txt)" ]
  check "the broker carried on (no restart from zero)" bash -c "! grep -q 'do not match its sha256' '$tmp/broker.log'"
  check "received once" [ "$(grep -c "artifact big/big.txt of job $j received" "$tmp/broker.log")" -eq 1 ]
  check "no partial left" [ -z "$(find "$tmp/broker/artifacts/$j/.partial" -type f)" ]
  check "the queue is empty" [ -z "$(ls "$tmp/r-sk-1/ship")" ]
}

cases=${*:-failing_step job_cap ship_killed}
for c in $cases; do
  case_name=$c
  echo "== $c"
  "case_$c"
done
bus_stop
case_name=sanitizers
check "no sanitizer report in any broker or runner log" \
  bash -c "! grep -l 'Sanitizer\|runtime error' $root/*/*.log"
echo "test_artifacts: $passes passed, $fails failed"
[ "$fails" -eq 0 ]

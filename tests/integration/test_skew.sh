#!/usr/bin/env bash
# test_skew.sh BIN_DIR SRC_DIR: a dispatch this runner cannot decode (a
# spec a broker of another version queued, such as an artifact glob) is
# recorded as refused, not dropped (schema/PROTOCOL.md, `job.accepted`).
# A real evrun-runner (process executor only: no podman service) serves
# skew_broker.py, a stand-in broker written from PROTOCOL.md that sends the
# undecodable dispatches and checks the events it gets (see its header);
# then the same runner, restarted on its state directory, resends its log
# to a real evrun-broker, which stores the refusals: evrun-cli shows those
# jobs failed with the runner's reason.
set -u
bin=$1 src=$2
. "$src/tests/integration/bus_lib.sh"
bus_script_init skew
if ! /usr/bin/python3 -c 'import zmq, msgpack' 2>/dev/null; then
  # shellcheck source=../../tools/lib/deps.sh
  . "$src/tools/lib/deps.sh"
  evr_install python3-zmq python3-msgpack || exit 1
fi
A=01JQ7ZK3M8X2V9T4B6N0C5D7EA B=01JQ7ZK3M8X2V9T4B6N0C5D7EB

# 1. the stand-in broker: its checks, and what the runner says and keeps
/usr/bin/python3 "$src/tests/integration/skew_broker.py" "ipc://$tmp/fake" > "$tmp/fake.out" 2>&1 &
fb=$!
bus_pids+=("$fb")
"$bin/evrun-runner" --broker "ipc://$tmp/fake" --id skew-1 --capacity 1 --executors process \
  --state-dir "$tmp/r-skew-1" --heartbeat-ms 200 --lease-ms 1500 >> "$tmp/runner-skew-1.log" 2>&1 &
bus_pids+=("$!")
wait "$fb"
check "the stand-in broker's checks held" [ $? -eq 0 ]
check "... and it says ok" grep -qx ok "$tmp/fake.out"
grep '^FAILED' "$tmp/fake.out" >&2
bus_stop
log=$tmp/runner-skew-1.log
check "the runner says why A cannot run, once" \
  [ "$(grep -c "job $A cannot run here: this runner (evrun [^)]*) cannot read the job's dispatch: dispatch.spec: invalid pipeline: steps\[0\].artifacts.paths\[0\]" "$log")" -eq 1 ]
check "no refusal failed to be recorded (A's repeat was not tried)" \
  bash -c "! grep -q 'recording the refusal failed' '$log'"
check "the dispatch of no job id: said and ignored" \
  grep -q "a dispatch from the broker this runner cannot read, its job unknown: ignored: dispatch.job: " "$log"
check "no 'malformed message' left for a dispatch" bash -c "! grep -q 'malformed message' '$log'"
"$bin/evrun-replay" "$tmp/r-skew-1" --events > "$tmp/replay" 2>&1
check "the runner's log holds A's job.accepted once" \
  [ "$(grep -c " $A  *1  job.accepted " "$tmp/replay")" -eq 1 ]
check "... and its job.finished once" [ "$(grep -c " $A .* job.finished " "$tmp/replay")" -eq 1 ]

# 2. a real broker stores the refusals as the runner resends its log
export EVRUN_STATE_DIR=$tmp
bus_broker && bus_runner skew-1 "" 1 --executors process && bus_wait_runners 1
field() {   # field JOB NAME: a string field of the job's status
  cli status "$1" --json 2>/dev/null | sed -n "s/.*\"$2\":\"\\([^\"]*\\)\".*/\\1/p"
}
for _ in $(seq 1 100); do [ "$(field "$B" status)" = failed ] && break; sleep 0.1; done
check "broker: A failed" [ "$(field "$A" status)" = failed ]
cli status "$A" --json > "$tmp/a.json"
check "broker: A's reason is the runner's" grep -q "\"reason\":\"this runner (evrun [^)]*) cannot read the job's dispatch: dispatch.spec: invalid pipeline: steps\[0\].artifacts.paths\[0\]" "$tmp/a.json"
check "broker: A's pipeline and steps from the stub" \
  grep -q '"pipeline":"skew".*"steps_total":2' "$tmp/a.json"
check "broker: B failed, pipeline unreadable" \
  [ "$(field "$B" status) $(field "$B" pipeline)" = "failed unreadable" ]
check "broker: no event refused" bash -c "! grep -q REFUSED '$tmp/broker.log'"
bus_script_end "$root/*.log"

#!/usr/bin/env bash
# test_hostile_broker.sh BIN_DIR SRC_DIR: what a runner does with messages
# no broker should send (schema/PROTOCOL.md): a real evrun-runner (process
# executor only: no podman service) serves hostile_broker.py, a stand-in
# broker written from PROTOCOL.md that sends them and checks the runner goes
# on (see its header): malformed and unasked messages logged, an ack past
# its log ignored, a dispatch past its capacity taken, an artifact_ack
# past the file's size asked about again after a second, and a welcome
# past its log ending the runner, exit 2, saying why.
set -u
bin=$1 src=$2
. "$src/tests/integration/bus_lib.sh"
bus_script_init hostile
if ! /usr/bin/python3 -c 'import zmq, msgpack' 2>/dev/null; then
  # shellcheck source=../../tools/lib/deps.sh
  . "$src/tools/lib/deps.sh"
  evr_install python3-zmq python3-msgpack || exit 1
fi

/usr/bin/python3 "$src/tests/integration/hostile_broker.py" "ipc://$tmp/fake" > "$tmp/fake.out" 2>&1 &
fb=$!
bus_pids+=("$fb")
log=$tmp/runner-hostile-1.log
"$bin/evrun-runner" --broker "ipc://$tmp/fake" --id hostile-1 --capacity 1 --executors process \
  --state-dir "$tmp/r-hostile-1" --heartbeat-ms 200 --lease-ms 5000 >> "$log" 2>&1 &
runner=$!
bus_pids+=("$runner")
wait "$fb"
check "the stand-in broker's checks held" [ $? -eq 0 ]
check "... and it says ok" grep -qx ok "$tmp/fake.out"
grep '^FAILED' "$tmp/fake.out" >&2
for _ in $(seq 1 50); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
kill -0 "$runner" 2>/dev/null && kill -9 "$runner"  # still serving: the check below fails
wait "$runner"
check "a welcome past the log ends the runner, exit 2" [ $? -eq 2 ]
check "... saying the broker holds more than its log" \
  grep -q "the broker says it holds this runner's log up to seq [0-9]*, but the log ends at seq [0-9]*: another log under id hostile-1?" "$log"
check "the ack past the log is said and ignored" \
  grep -q "the broker acknowledges seq 18446744073709551615, past the last sent, [0-9]*: ignored" "$log"
check "a dispatch past the capacity is said and taken" \
  grep -q "job 01JQ7ZK3M8X2V9T4B6N0C5D7H2 arrived with no free slot (capacity 1): taking it anyway" "$log"
check "each malformed message is said" [ "$(grep -c 'a malformed message from the broker' "$log")" -ge 6 ]
check "the artifact was shipped in the end" grep -q "artifact a/out.txt of job .* shipped to the broker" "$log"
check "the ack past the size said a few times, not thousands" \
  [ "$(grep -c 'the broker says it holds 102 of 2 bytes' "$log")" -le 6 ]
bus_script_end "$tmp/*.log"

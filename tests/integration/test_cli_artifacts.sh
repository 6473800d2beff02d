#!/usr/bin/env bash
# test_cli_artifacts.sh BIN_DIR SRC_DIR: evrun-cli artifacts against
# artifacts_broker.py, a stand-in broker written from PROTOCOL.md (see its
# header): a retried step's later copy reaches the broker between the
# CLI's read of the history and its fetch.  The CLI reads the history on
# while the broker holds another copy, finds the later attempt's event
# and fetches that copy, instead of waiting out --wait for the earlier
# one and calling the broker's copy "an earlier attempt's".  No podman.
set -u
bin=$1 src=$2
. "$src/tests/integration/bus_lib.sh"
bus_script_init clia
case_name=later_copy
if ! /usr/bin/python3 -c 'import zmq, msgpack' 2>/dev/null; then
  # shellcheck source=../../tools/lib/deps.sh
  . "$src/tools/lib/deps.sh"
  evr_install python3-zmq python3-msgpack || exit 1
fi
job=01JQ7ZK3M8X2V9T4B6N0C5D7EA
/usr/bin/python3 "$src/tests/integration/artifacts_broker.py" "ipc://$tmp/fake" > "$tmp/fake.out" 2>&1 &
fb=$!
bus_pids+=("$fb")
for _ in $(seq 1 50); do [ -S "$tmp/fake" ] && break; sleep 0.1; done
"$bin/evrun-cli" artifacts "$job" --broker "ipc://$tmp/fake" -o "$tmp/out" --wait 10 \
  > "$tmp/cli.out" 2> "$tmp/cli.err"
check "the CLI exits 0" [ $? -eq 0 ]
check "... having fetched the later attempt's copy" \
  grep -qx "second attempt, the one to keep" "$tmp/out/b/out.txt"
check "... and printed it" grep -q "^$tmp/out/b/out.txt  32 bytes  sha256 a1043992" "$tmp/cli.out"
check "... calling no copy an earlier attempt's" sh -c "! grep -q \"earlier attempt\" '$tmp/cli.err'"
check "... noting that the job (no job.finished in its history) may add more" \
  grep -qx "evrun-cli artifacts: note: job $job has not finished: these are the files of the steps that ended; fetch again once it has" "$tmp/cli.err"
wait "$fb"
check "the stand-in broker saw the fetch of that copy" [ $? -eq 0 ]
check "... after a second history read" \
  [ "$(grep -c '^history' "$tmp/fake.out")" -eq 2 ]
[ "$fails" -eq 0 ] || { cat "$tmp/cli.err" "$tmp/fake.out" >&2; }
echo "test_cli_artifacts: $passes passed, $fails failed"
[ "$fails" -eq 0 ]

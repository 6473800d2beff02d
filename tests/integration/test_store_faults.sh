#!/usr/bin/env bash
# test_store_faults.sh BIN_DIR SRC_DIR [CASE...]: the event stores of a
# real evrun-broker and process-executor evrun-runner (no podman, ipc://
# sockets in a temporary directory) against what other processes do to
# them.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init stf

# bulk NAME: a process pipeline printing about 2 MiB (many output events)
bulk() {
  cat > "$tmp/$1.yml" <<YML
pipeline: $1
executor: process
steps:
  - name: say
    run: seq 1 300000
YML
}

# stale STORE: the reader slots of dead processes in STORE's lock.mdb
# (mdb_stat -rr clears them and says how many)
stale() { mdb_stat -rr "$1" | sed -n 's/^ *\([0-9]*\) stale readers cleared.*/\1/p'; }

# readers killed inside a read leave their slots in the reader table
# (126): evrun-replay piped into head leaves none, and once a killed
# process holds every slot, the broker and the runner free them and go on
# (a read of either failed with MDB_READERS_FULL until its restart: the
# broker answered `status` not_found, the runner sent no event).
case_readers() {
  fresh readers
  bulk big
  bus_broker && bus_runner rd "" 1 --executors process && bus_wait_runners 1 || return
  local j1 j2 i
  j1=$(submit "$tmp/big.yml")
  check "a job succeeds first" [ "$(wait_job "$j1" 60)" = succeeded ]
  for i in 1 2 3; do
    "$bin/evrun-replay" "$tmp/broker" --events | head -n 1 > /dev/null
    "$bin/evrun-replay" "$tmp/r-rd" --events | head -n 1 > /dev/null
  done
  check "evrun-replay | head leaves no slot of the broker's store" [ "$(stale "$tmp/broker")" = 0 ]
  check "evrun-replay | head leaves no slot of the runner's store" [ "$(stale "$tmp/r-rd")" = 0 ]
  local st
  for st in "$tmp/broker" "$tmp/r-rd"; do
    ("$bin/evr-test-readers" "$st" 126 > "$tmp/readers.out" 2>&1; :) 2>/dev/null   # it kills itself
    check "every slot of $st taken by a dead process" grep -q '^held 12[0-9]' "$tmp/readers.out"
  done
  # a read in the moment the helper held the slots alive fails, and is
  # said: only what follows counts
  local blog rlog
  blog=$(wc -c < "$tmp/broker.log") rlog=$(wc -c < "$tmp/runner-rd.log")
  check "status answers the job" [ "$(field "$j1" status)" = succeeded ]
  check "jobs lists it" bash -c "'$bin/evrun-cli' jobs --json | grep -q '\"job\":\"$j1\"'"
  j2=$(submit "$tmp/big.yml")
  check "a new job runs and its events reach the broker" [ "$(wait_job "$j2" 60)" = succeeded ]
  check "its output is there" bash -c "'$bin/evrun-cli' logs '$j2' | tail -n 1 | grep -q 300000"
  check "no read error in the broker's log since" \
    bash -c "! tail -c +$((blog + 1)) '$tmp/broker.log' | grep -q READERS_FULL"
  check "no read error in the runner's log since" \
    bash -c "! tail -c +$((rlog + 1)) '$tmp/runner-rd.log' | grep -q READERS_FULL"
}

# evrun-replay --output --json: 64 KiB chunks that cut a 2-byte character
# stay text ("bytes" a string; each such chunk was "binary_bytes":65536
# with no bytes), and their bytes put together are the step's output
case_utf8() {
  fresh utf8
  cat > "$tmp/u.yml" <<'YML'
pipeline: utf
executor: process
steps:
  - name: e
    run: yes 'ééééééééééééééééééééééééééééééééééééééééééééééééé' | head -n 5000; printf '\303'
YML
  "$bin/evrun-runner" --exec "$tmp/u.yml" --executors process --state-dir "$tmp/st" \
    > "$tmp/exec.log" 2>&1
  local j
  j=$("$bin/evrun-replay" "$tmp/st" --json | sed -n 's/.*"id":"\([0-9A-Z]*\)".*/\1/p' | head -n 1)
  "$bin/evrun-replay" "$tmp/st" --output "$j/e" --json > "$tmp/out.json"
  "$bin/evrun-replay" "$tmp/st" --output "$j/e" > "$tmp/out.raw"
  check "more than one chunk" [ "$(wc -l < "$tmp/out.json")" -gt 2 ]
  check "no chunk without its bytes" bash -c "! grep -q binary_bytes '$tmp/out.json'"
  check "every chunk but the cut last byte is text" \
    [ "$(grep -c '"bytes":"' "$tmp/out.json")" -eq $(( $(wc -l < "$tmp/out.json") - 1 )) ]
  check "the cut last byte alone is base64, as evrun-cli logs --json has it" \
    bash -c "tail -n 1 '$tmp/out.json' | grep -q '\"bytes\":{\"base64\":\"ww==\"}'"
  check "the chunks put together are the output" python3 -c '
import base64, json, sys
out = b"".join(b.encode() if isinstance(b, str) else base64.b64decode(b["base64"])
               for b in (json.loads(l)["bytes"] for l in open(sys.argv[1])))
sys.exit(out != open(sys.argv[2], "rb").read())' "$tmp/out.json" "$tmp/out.raw"
}

# journal_recs FILE: "SEQ OFFSET LEN" of each whole record of the submit
# journal FILE from its start (store/evr_journal.c's format)
journal_recs() {
  python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
off = 0
while off + 20 <= len(d) and d[off:off + 4] == b"EVJ1":
    n, seq = struct.unpack_from("<IQ", d, off + 4)
    n &= 0x7fffffff
    print(seq, off, n)
    off += 20 + n
PY
}

# Three acknowledged submits in the journal (the broker killed before it
# wrote them into its store), one byte of the second's record changed:
# the third is taken up and the loss said with the record and its offset
# (both were dropped, unsaid, as a torn tail); the last record damaged is
# a torn tail, said nothing of.
case_journal() {
  fresh journal
  cat > "$tmp/q.yml" <<'YML'
pipeline: q
executor: process
labels: [nobody]
steps:
  - { name: s, run: "true" }
YML
  bus_broker || return
  local ids=() recs
  # one client, the three back to back: the broker writes its journal
  # into the store once submits pause 100 ms (a checkpoint, then the
  # journal starts over), which three `evrun-cli submit` processes in a
  # row could leave between two of them on a loaded machine
  mapfile -t ids < <(submit "$tmp/q.yml" --count 3 2>/dev/null)
  check "three jobs accepted" [ "${#ids[@]}" -eq 3 ]
  kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
  recs=$(journal_recs "$tmp/broker/submits.journal" | tail -n 3)
  check "three records in the journal" [ "$(echo "$recs" | wc -l)" -eq 3 ]
  local seq2 off2 len2 seq3
  read -r seq2 off2 len2 <<< "$(echo "$recs" | sed -n 2p)"
  seq3=$(echo "$recs" | sed -n '3s/ .*//p')
  printf '\x5a' | dd of="$tmp/broker/submits.journal" bs=1 seek=$((off2 + 20 + len2 / 2)) \
    conv=notrunc 2>/dev/null
  bus_broker || return
  check "the first job is queued" [ "$(field "${ids[0]}" status)" = queued ]
  check "the third job is queued" [ "$(field "${ids[2]}" status)" = queued ]
  check "the second is not" bash -c "! '$bin/evrun-cli' status '${ids[1]}' >/dev/null 2>&1"
  check "the loss is said with the record and its offset" \
    grep -q "submits.journal: $((20 + len2)) damaged bytes at offset $off2 .* record $seq2 are lost" \
      "$tmp/broker.log"
  check "the records after it are counted" \
    grep -q "2 acknowledged submits taken up (up to record $seq3)" "$tmp/broker.log"
}

# A runner killed during an --exec job (its host step runs on), then
# started with --broker on the same state directory: refused, naming the
# job and --recover (it took the job up, the broker refused its events and
# the runner cancelled it); --recover finishes it, then --broker starts.
case_exec_then_broker() {
  fresh execbroker
  cat > "$tmp/slow.yml" <<'YML'
pipeline: slow
executor: process
steps:
  - { name: s, run: "echo begun; sleep 2; echo done" }
YML
  "$bin/evrun-runner" --exec "$tmp/slow.yml" --executors process --state-dir "$tmp/st" \
    > "$tmp/exec.out" 2>&1 &
  local xp=$! j
  for _ in $(seq 1 100); do grep -q begun "$tmp/exec.out" && break; sleep 0.05; done
  kill -9 "$xp"; wait "$xp" 2>/dev/null
  j=$("$bin/evrun-replay" "$tmp/st" --json | sed -n 's/.*"id":"\([0-9A-Z]*\)".*/\1/p' | head -n 1)
  bus_broker || return
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --executors process \
    --state-dir "$tmp/st" --heartbeat-ms 200 --lease-ms 1500 > "$tmp/broker-mode.out" 2>&1 &
  local rp=$! rc
  for _ in $(seq 1 100); do kill -0 "$rp" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$rp" 2>/dev/null && { kill "$rp"; bus_pids+=("$rp"); }
  wait "$rp" 2>/dev/null; rc=$?
  check "--broker refuses the directory (exit 2)" [ "$rc" -eq 2 ]
  check "it names the job" grep -q "job $j (pipeline slow) was started here by evrun-runner --exec" \
    "$tmp/broker-mode.out"
  check "it says how to finish it" grep -q "finish that job first with evrun-runner --recover --state-dir $tmp/st" \
    "$tmp/broker-mode.out"
  check "the job is left unfinished" bash -c "'$bin/evrun-replay' '$tmp/st' | grep -q '^$j .* running '"
  "$bin/evrun-runner" --recover --executors process --state-dir "$tmp/st" > "$tmp/recover.out" 2>&1
  check "--recover finishes it" bash -c "'$bin/evrun-replay' '$tmp/st' | grep -q '^$j .* succeeded '"
  bus_runner eb "" 1 --executors process --state-dir "$tmp/st"
  check "then --broker starts" bus_wait_runners 1
}

# A copy of the broker's store given to a runner: refused, saying what it
# is (the runner "recovered" the broker's job and appended to its log)
case_kind() {
  fresh kind
  cat > "$tmp/q.yml" <<'YML'
pipeline: q
executor: process
steps:
  - { name: s, run: "true" }
YML
  bus_broker || return
  submit "$tmp/q.yml" > /dev/null 2>&1
  bus_stop
  mdb_copy "$tmp/broker" "$tmp/copy" 2>/dev/null || { mkdir "$tmp/copy"; mdb_copy "$tmp/broker" "$tmp/copy"; }
  local before after rc
  before=$(md5sum < "$tmp/copy/data.mdb")
  "$bin/evrun-runner" --recover --executors process --state-dir "$tmp/copy" > "$tmp/kind.out" 2>&1
  rc=$?
  after=$(md5sum < "$tmp/copy/data.mdb")
  check "a runner refuses a broker's store (exit 2)" [ "$rc" -eq 2 ]
  check "it says what the store is" grep -q "a broker's event store, not a runner's" "$tmp/kind.out"
  check "nothing is written to it" [ "$before" = "$after" ]
}

bus_script_cases "readers utf8 journal exec_then_broker kind" "$@"
bus_script_end

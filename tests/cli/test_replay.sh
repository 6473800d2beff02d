#!/usr/bin/env bash
# test_replay.sh BIN_DIR: evrun-replay on a real store written by
# evrun-bench-store: every view, --json, --as-of, --verify, exit codes.
set -u
bin=$1
tmp=$(mktemp -d /tmp/evr-test-replay-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
. "$(dirname "$0")/../support/check.sh"
status_is() {   # status_is N command...
  local want=$1; shift
  "$@" >/dev/null 2>&1
  [ $? -eq "$want" ]
}

"$bin/evrun-bench-store" --dir "$tmp/b" --jobs 5 --steps 2 --output-bytes 5000 --nosync \
  --scale-events 0 --list-jobs 0 \
  > "$tmp/bench.txt" || { echo "bench failed" >&2; exit 1; }
store=$tmp/b/store
job=$("$bin/evrun-replay" "$store" --json | head -n 1 | sed 's/.*"id":"\([0-9A-Z]*\)".*/\1/')

"$bin/evrun-replay" "$store" > "$tmp/list.txt"
check "list has a header and 5 jobs" [ "$(wc -l < "$tmp/list.txt")" -eq 6 ]
check "list shows status and steps" grep -Eq "^$job +synthetic +succeeded +2/2 " "$tmp/list.txt"

"$bin/evrun-replay" "$store" --job "$job" > "$tmp/job.txt"
check "--job shows the steps" grep -Eq "^step-1 +succeeded +1 +0 +1.234s +evrun-$job-step-1-1" "$tmp/job.txt"
check "--job shows its events" grep -q "job.finished" "$tmp/job.txt"
events_per_job=$(grep -c "$job" <(grep -E "^ +[0-9]+  " "$tmp/job.txt"))
# 2 job events + 2 steps x (queued, starting, started, 2 output chunks, finished) + 1
check "--job lists 15 events" [ "$events_per_job" -eq 15 ]

"$bin/evrun-replay" "$store" --events > "$tmp/events.txt"
check "--events prints every event" [ "$(wc -l < "$tmp/events.txt")" -eq 75 ]
"$bin/evrun-replay" "$store" --events --from 3 --to 7 > "$tmp/range.txt"
check "--from/--to bound the range" [ "$(wc -l < "$tmp/range.txt")" -eq 5 ]
check "--from starts at 3" grep -Eq "^ +3  " <(head -n 1 "$tmp/range.txt")
"$bin/evrun-replay" "$store" --events --json > "$tmp/events.json"
check "--events --json: one object per line" [ "$(grep -c '^{"seq":' "$tmp/events.json")" -eq 75 ]

"$bin/evrun-replay" "$store" --as-of 5 > "$tmp/asof.txt"
check "--as-of 5: one job, running" grep -Eq "^$job +synthetic +running +0/2 " "$tmp/asof.txt"
check "--as-of 5: nothing later" [ "$(wc -l < "$tmp/asof.txt")" -eq 2 ]
"$bin/evrun-replay" "$store" --job "$job" --as-of 4 > "$tmp/jobasof.txt"
check "--job --as-of: step-1 starting" grep -Eq "^step-1 +starting" "$tmp/jobasof.txt"
# --as-of 0: before the first event, so no jobs (not "not given", the current state)
"$bin/evrun-replay" "$store" --as-of 0 > "$tmp/asof0.txt"
check "--as-of 0: the header, no job" [ "$(wc -l < "$tmp/asof0.txt")" -eq 1 ]
"$bin/evrun-replay" "$store" --as-of 0 --json > "$tmp/asof0.json"
check "--as-of 0 --json: nothing" [ ! -s "$tmp/asof0.json" ]
check "--job --as-of 0: no such job, exit 1" status_is 1 "$bin/evrun-replay" "$store" --job "$job" --as-of 0
"$bin/evrun-replay" "$store" --job "$job" --as-of 0 2> "$tmp/asof0.err"
check "--job --as-of 0: says so" grep -q "no job $job as of seq 0" "$tmp/asof0.err"
check "--as-of 0 --events: usage error" status_is 2 "$bin/evrun-replay" "$store" --events --as-of 0

"$bin/evrun-replay" "$store" --output "$job/step-1" > "$tmp/out.bin"
check "--output ID/STEP: the raw bytes" [ "$(wc -c < "$tmp/out.bin")" -eq 5000 ]
"$bin/evrun-replay" "$store" --output "$job" > "$tmp/out.txt"
check "--output ID: lines prefixed" grep -q "^step-2 | " "$tmp/out.txt"
check "--output ID: no unprefixed line" [ "$(grep -vc '^step-[12] | ' "$tmp/out.txt")" -eq 0 ]
# a line left open by one stream (or attempt) is ended when the other's
# bytes come, its rest a line of its own, as --exec and evrun-cli logs
# print it: it was glued to the other's ("s | out-aerr-a", "r | try-try-")
cat > "$tmp/mix.yml" <<'YML'
pipeline: mix
executor: process
steps:
  - name: s
    run: "printf out-a; sleep 0.3; printf 'err-a\\n' >&2; sleep 0.3; printf ' rest\\n'; printf last"
  - name: r
    retry: { on: [failed], max: 1 }
    run: "printf try-; exit 1"
YML
"$bin/evrun-runner" --exec "$tmp/mix.yml" --executors process --state-dir "$tmp/mix" \
  > "$tmp/mix.out" 2>&1
mixj=$("$bin/evrun-replay" "$tmp/mix" --json | head -n 1 | sed 's/.*"id":"\([0-9A-Z]*\)".*/\1/')
"$bin/evrun-replay" "$tmp/mix" --output "$mixj" > "$tmp/mix.txt"
check "--output ID: a stream's open line not glued to the other's" \
  bash -c "! grep -q 'out-a.*err-a\|err-a.*out-a' '$tmp/mix.txt'"
check "... each of its lines whole" grep -qx "s | err-a" "$tmp/mix.txt"
check "... its last line" grep -qx "s | last" "$tmp/mix.txt"
check "--output ID: each attempt's line its own" [ "$(grep -cx 'r | try-' "$tmp/mix.txt")" -eq 2 ]

"$bin/evrun-replay" "$store" --verify > "$tmp/verify.txt"
check "--verify exits 0" [ $? -eq 0 ]
check "--verify counts" grep -q "verified: 75 events, 5 jobs verified, 0 compacted" "$tmp/verify.txt"
"$bin/evrun-replay" "$store" --verify --json > "$tmp/verify.json"
check "--verify --json" grep -q '"differences":0' "$tmp/verify.json"

# --compact OUT: a copy of the pages in use, which reads and verifies as
# the store; OUT holding a data.mdb refused (exit 2), nothing written
"$bin/evrun-replay" "$store" --compact "$tmp/compact" > "$tmp/compact.txt" 2>&1
check "--compact exits 0" [ $? -eq 0 ]
check "--compact says the sizes" grep -Eq "^compacted: $tmp/compact/data.mdb, [0-9]+ bytes \(the store's file: [0-9]+ bytes\)$" "$tmp/compact.txt"
"$bin/evrun-replay" "$tmp/compact" --verify > "$tmp/cverify.txt"
check "the copy verifies, the same counts" grep -q "verified: 75 events, 5 jobs verified" "$tmp/cverify.txt"
check "the copy lists the same jobs" cmp <("$bin/evrun-replay" "$store") <("$bin/evrun-replay" "$tmp/compact")
before=$(stat -c %Y.%s "$tmp/compact/data.mdb")
"$bin/evrun-replay" "$store" --compact "$tmp/compact" > "$tmp/compact2.txt" 2>&1
check "--compact into a store: exit 2" [ $? -eq 2 ]
check "... saying so" grep -q "$tmp/compact: already holds a data.mdb" "$tmp/compact2.txt"
check "... the copy untouched" [ "$(stat -c %Y.%s "$tmp/compact/data.mdb")" = "$before" ]
check "--compact --json" sh -c "'$bin/evrun-replay' '$store' --compact '$tmp/compact3' --json | grep -Eq '^\{\"bytes\":[0-9]+,\"was_bytes\":[0-9]+\}\$'"
check "--compact with --verify: usage, exit 2" status_is 2 "$bin/evrun-replay" "$store" --verify --compact "$tmp/c4"

# --verify reads what the other views read: every value of a spec (a NUL
# byte in a step's run: --events cannot decode it), the by_job index
# against the events (an entry that points to another event; a page of
# random bytes, on which LMDB itself would crash) -- each said "verified"
cp -r "$store" "$tmp/spec"
python3 - "$tmp/spec/data.mdb" <<'PY'
import sys
p = sys.argv[1]
d = open(p, "rb").read()
assert d.count(b"echo step 2") >= 5
open(p, "wb").write(d.replace(b"echo step 2", b"echo\0step 2"))
PY
"$bin/evrun-replay" "$tmp/spec" --verify > "$tmp/spec.out" 2> "$tmp/spec.err"
check "--verify of a damaged spec fails" [ $? -ne 0 ]
check "--verify of a damaged spec says which event" \
  grep -q "event 1 does not decode: event.data.spec.steps\[1\].run: string contains a NUL byte" "$tmp/spec.err"
cp -r "$store" "$tmp/index"
mdb_dump -s by_job "$tmp/index" > "$tmp/by_job.dump"
# job 1's jseq 2 points to seq 3 (its jseq 3's event)
python3 - "$tmp/by_job.dump" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
i = lines.index(" 30314a51375a4b334d385832563954344236303030303030303100000002")
lines[i + 1] = " 0000000000000003"
open(p, "w").write("\n".join(lines))
PY
mdb_load -s by_job -f "$tmp/by_job.dump" "$tmp/index" 2>/dev/null
"$bin/evrun-replay" "$tmp/index" --verify > "$tmp/index.out" 2>&1
check "--verify of a wrong index entry exits 1" [ $? -eq 1 ]
check "--verify says which job's index is wrong" \
  grep -q "job 01JQ7ZK3M8X2V9T4B600000001: the by_job index points to other seqs" "$tmp/index.out"
# meta's last_seq below the log's last event: the walks stop at it, so
# the events after it went unseen and --verify said "verified", while
# every append to the store failed (MDB_KEYEXIST)
cp -r "$store" "$tmp/behind"
mdb_dump -s meta "$tmp/behind" > "$tmp/meta.dump"
python3 - "$tmp/meta.dump" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
i = lines.index(" 6c6173745f736571")   # last_seq
lines[i + 1] = " 0000000000000005"
open(p, "w").write("\n".join(lines))
PY
mdb_load -s meta -f "$tmp/meta.dump" "$tmp/behind" 2>/dev/null
"$bin/evrun-replay" "$tmp/behind" --verify > "$tmp/behind.out" 2>&1
check "--verify of a last_seq behind the log exits 1" [ $? -eq 1 ]
check "--verify says the log goes past meta's last seq" \
  grep -q "^seq: meta says the last seq is 5, but the log holds events up to seq 75 " "$tmp/behind.out"
# ... and a runner appending to it said only "mdb_put events: MDB_KEYEXIST"
cp -r "$tmp/behind" "$tmp/behind-run"
chmod 0700 "$tmp/behind-run"
printf 'pipeline: p\nexecutor: process\nsteps:\n  - { name: a, run: "true" }\n' > "$tmp/p.yml"
"$bin/evrun-runner" --exec "$tmp/p.yml" --executors process --state-dir "$tmp/behind-run" \
  > /dev/null 2> "$tmp/behind-run.err"
check "a runner on a last_seq behind the log: exit 2" [ $? -eq 2 ]
check "a runner on a last_seq behind the log: says the store is damaged, and what to run" \
  grep -q "store: $tmp/behind-run: seq 6 is taken: .* (the store is damaged: evrun-replay $tmp/behind-run --verify says more; " "$tmp/behind-run.err"
cp -r "$store" "$tmp/page"
python3 - "$tmp/page/data.mdb" <<'PY'
import random, sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
at = d.find(b"01JQ7ZK3M8X2V9T4B600000001\0\0\0\1")   # a by_job key
page = at // 4096 * 4096
random.seed(7)
d[page:page + 4096] = bytes(random.getrandbits(8) for _ in range(4096))
open(p, "wb").write(d)
PY
"$bin/evrun-replay" "$tmp/page" --verify > "$tmp/page.out" 2>&1
check "--verify of a random index page exits 1 (no crash)" [ $? -eq 1 ]
check "--verify names the damaged page" grep -q "^by_job: page [0-9]*: .* not read" "$tmp/page.out"
check "--verify of a random index page: FAILED" grep -q "^FAILED: " "$tmp/page.out"
# a damaged page of the projections: every view that reads them says so,
# exit 2, where each crashed (SIGSEGV inside LMDB, at the open already);
# --compact makes no copy (it crashed in mdb_env_copy2)
cp -r "$store" "$tmp/jpage"
python3 - "$tmp/jpage/data.mdb" <<'PY'
import random, re, sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
m = re.search(rb"01JQ7ZK3M8X2V9T4B600000001[\x80-\x8f\xde\xdf]", bytes(d))   # a projection
page = m.start() // 4096 * 4096
random.seed(11)
d[page:page + 4096] = bytes(random.getrandbits(8) for _ in range(4096))
open(p, "wb").write(d)
PY
for view in "" "--job $job" "--output $job" "--job $job --as-of 3"; do
  "$bin/evrun-replay" "$tmp/jpage" $view > /dev/null 2> "$tmp/jpage.err"
  check "a damaged projection page, view '$view': exit 2 (no crash)" [ $? -eq 2 ]
  check "a damaged projection page, view '$view': names it, and what to do" \
    grep -q "^evrun-replay: store: $tmp/jpage: jobs: page [0-9]*: .*: the database is damaged (LMDB would read past its pages); not read (evrun-replay $tmp/jpage --verify checks every database; restore the store from a backup" "$tmp/jpage.err"
done
check "a damaged projection page: --events reads the events" \
  [ "$("$bin/evrun-replay" "$tmp/jpage" --events | wc -l)" -eq 75 ]
"$bin/evrun-replay" "$tmp/jpage" --verify > "$tmp/jpage.out" 2>&1
check "a damaged projection page: --verify exits 1 (no crash)" [ $? -eq 1 ]
check "a damaged projection page: --verify names it" grep -q "^jobs: page [0-9]*: .* not read" "$tmp/jpage.out"
"$bin/evrun-replay" "$tmp/jpage" --compact "$tmp/jpage-copy" > /dev/null 2> "$tmp/jpage.err"
check "a damaged projection page: --compact exits 2 (no crash)" [ $? -eq 2 ]
check "a damaged projection page: --compact says no copy was made" \
  grep -q "^evrun-replay: store: $tmp/jpage: jobs: page [0-9]*: .*: the database is damaged (LMDB would read past its pages); no copy made" "$tmp/jpage.err"
check "a damaged projection page: --compact makes no OUT" [ ! -e "$tmp/jpage-copy" ]
# a writer too (it crashed at its start, reading the last projection)
cat > "$tmp/w.yml" <<'YML'
pipeline: w
executor: process
steps: [ { name: s, run: "true" } ]
YML
"$bin/evrun-runner" --exec "$tmp/w.yml" --executors process --state-dir "$tmp/jpage" \
  > /dev/null 2> "$tmp/jpage-run.err"
check "a damaged projection page: a runner exits 2 (no crash)" [ $? -eq 2 ]
check "a damaged projection page: a runner says so" \
  grep -q "store: $tmp/jpage: jobs: page [0-9]*: .*: the database is damaged (LMDB would read past its pages); the store is not opened (evrun-replay $tmp/jpage --verify checks every database" "$tmp/jpage-run.err"
# a damaged page of LMDB's free-page tree (which the next write that reuses
# pages reads, and a compacting copy): --verify said the store verified,
# --compact crashed
cp -r "$store" "$tmp/fpage"
python3 - "$tmp/fpage/data.mdb" <<'PY'
import random, struct, sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
metas = [d[i * 4096:(i + 1) * 4096] for i in (0, 1)]
meta = max(metas, key=lambda m: struct.unpack_from("<Q", m, 16 + 128)[0])   # mm_txnid
root = struct.unpack_from("<Q", meta, 16 + 24 + 40)[0]   # mm_dbs[FREE_DBI].md_root
assert root != 2**64 - 1, "no free pages in the store"
random.seed(5)
d[root * 4096:(root + 1) * 4096] = bytes(random.getrandbits(8) for _ in range(4096))
open(p, "wb").write(d)
PY
"$bin/evrun-replay" "$tmp/fpage" --verify > "$tmp/fpage.out" 2>&1
check "a damaged free-page tree: --verify exits 1" [ $? -eq 1 ]
check "a damaged free-page tree: --verify names it" \
  grep -q "^free pages: page [0-9]*: .*: LMDB's own tree is damaged$" "$tmp/fpage.out"
"$bin/evrun-replay" "$tmp/fpage" --compact "$tmp/fpage-copy" > /dev/null 2> "$tmp/fpage.err"
check "a damaged free-page tree: --compact exits 2 (no crash)" [ $? -eq 2 ]
check "a damaged free-page tree: --compact says no copy was made" \
  grep -q "^evrun-replay: store: $tmp/fpage: free pages: page [0-9]*: .*: LMDB's own tree is damaged; no copy made" "$tmp/fpage.err"
check "a damaged free-page tree: the job list still reads" status_is 0 "$bin/evrun-replay" "$tmp/fpage"

check "missing dir exits 2" status_is 2 "$bin/evrun-replay" "$tmp/nope"
mkdir "$tmp/empty"
check "foreign dir exits 2" status_is 2 "$bin/evrun-replay" "$tmp/empty"
"$bin/evrun-replay" "$tmp/empty" 2> "$tmp/err.txt"
check "foreign dir message" grep -q "no evrun store here" "$tmp/err.txt"
# a store LMDB cannot read: its error (LMDB's words, no directory) names DIR
mkdir "$tmp/broken"
cp "$store/data.mdb" "$tmp/broken/"
pages=$(( $(stat -c %s "$tmp/broken/data.mdb") / 4096 ))
dd if=/dev/zero of="$tmp/broken/data.mdb" bs=4096 seek=2 count=$((pages - 2)) conv=notrunc 2>/dev/null
check "a broken store exits 2" status_is 2 "$bin/evrun-replay" "$tmp/broken"
"$bin/evrun-replay" "$tmp/broken" 2> "$tmp/broken.err"
check "a broken store's LMDB error names the directory, and what to do" \
  grep -q "^evrun-replay: store: $tmp/broken: mdb_[a-z_]* [a-z]*: MDB_.*: data.mdb is damaged (or no LMDB file); restore it from a backup" "$tmp/broken.err"
# a directory whose name is in the message's words still gets named (it
# was looked for as a substring: "c" is in "does not decode")
cp -r "$tmp/spec" "$tmp/c"
replay=$(cd "$bin" && pwd)/evrun-replay
(cd "$tmp" && "$replay" c --events) > /dev/null 2> "$tmp/c.err"
check "a store error names a directory called c" grep -q "^evrun-replay: c: store: event 1 does not decode" "$tmp/c.err"
# what is there instead of a store is said: a data.mdb that is a
# directory or a FIFO, a state directory (the broker's store below it)
mkdir -p "$tmp/dirmdb/data.mdb" "$tmp/fifo" "$tmp/state/broker"
mkfifo "$tmp/fifo/data.mdb"
cp "$store/data.mdb" "$tmp/state/broker/"
"$bin/evrun-replay" "$tmp/dirmdb" 2> "$tmp/dirmdb.err"
check "data.mdb a directory: said" grep -q "data.mdb is a directory, not a file" "$tmp/dirmdb.err"
"$bin/evrun-replay" "$tmp/fifo" 2> "$tmp/fifo.err"
check "data.mdb a FIFO: said" grep -q "data.mdb is a FIFO, not a file" "$tmp/fifo.err"
"$bin/evrun-replay" "$tmp/state" 2> "$tmp/state.err"
check "a state directory: its broker's store named" \
  grep -q "store: $tmp/state: a state directory, not a store: the broker's store is $tmp/state/broker" "$tmp/state.err"
check "unknown job exits 1" status_is 1 "$bin/evrun-replay" "$store" --job 01JQ7ZK3M8X2V9T4B6N9999999
check "two views exit 2" status_is 2 "$bin/evrun-replay" "$store" --verify --events
check "bad seq exits 2" status_is 2 "$bin/evrun-replay" "$store" --events --from x
check "a seq past 2^64 exits 2" status_is 2 "$bin/evrun-replay" "$store" --as-of 99999999999999999999
check "a seq with a space exits 2" status_is 2 "$bin/evrun-replay" "$store" --events --from " 5"
check "--to 0: no event (as --as-of 0)" [ "$("$bin/evrun-replay" "$store" --events --to 0 | wc -l)" -eq 0 ]
check "--from 1 --to 0 exits 2" status_is 2 "$bin/evrun-replay" "$store" --events --from 1 --to 0
# a usage error exits 2, as evrun-cli's: an id that is no job id, --from above --to
check "--job junk exits 2" status_is 2 "$bin/evrun-replay" "$store" --job junk
"$bin/evrun-replay" "$store" --job junk 2> "$tmp/junk.err"
check "--job junk: not a job id" grep -q "^evrun-replay: --job junk: not a job id" "$tmp/junk.err"
check "--output junk/s exits 2" status_is 2 "$bin/evrun-replay" "$store" --output junk/step-1
# a slash in --job, or a STEP no step can be named: usage errors, as an id
# that is no job id (they were looked up: "no job" or "no step", exit 1)
for a in "--job $job/x" "--job $job/" "--output $job/" "--output $job/a/b"; do
  # shellcheck disable=SC2086
  check "$a exits 2" status_is 2 "$bin/evrun-replay" "$store" $a
done
"$bin/evrun-replay" "$store" --output "$job/" 2> "$tmp/nostep.err"
check "--output ID/: says it is no step name" grep -q '^evrun-replay: --output .*/: "" is no step name' "$tmp/nostep.err"
check "--output ID/nosuch: still no such step, exit 1" status_is 1 "$bin/evrun-replay" "$store" --output "$job/nosuch"
check "--job in lower case finds the job" status_is 0 "$bin/evrun-replay" "$store" \
  --job "$(echo "$job" | tr A-Z a-z)"
check "--from above --to exits 2" status_is 2 "$bin/evrun-replay" "$store" --events --from 5 --to 2
"$bin/evrun-replay" "$store" --events --from 5 --to 2 2> "$tmp/fromto.err"
check "--from above --to: says so" grep -q "^evrun-replay: --from 5 is above --to 2" \
  "$tmp/fromto.err"
check "--from equal to --to: that event" [ "$("$bin/evrun-replay" "$store" --events --from 3 --to 3 | wc -l)" -eq 1 ]
check "--help documents the usage errors" bash -c "'$bin/evrun-replay' --help | grep -q 'above --to'"
check "--help exits 0" status_is 0 "$bin/evrun-replay" --help

# a view given twice is that view (the last ID), not "choose one of"
check "--job ID --job ID: the job" status_is 0 "$bin/evrun-replay" "$store" --job "$job" --job "$job"
check "--events --events: the events" [ "$("$bin/evrun-replay" "$store" --events --events | wc -l)" -eq 75 ]
check "--events --verify: still two views, exit 2" status_is 2 "$bin/evrun-replay" "$store" --events --verify

# --job shows a step's whole name: the combinations of a matrix step differ
# at the end of theirs (cut at 24 bytes, V=10 and V=11 read the same)
cat > "$tmp/mx.yml" <<'YML'
pipeline: mx
executor: process
steps:
  - { name: test, matrix: { OS: [linux], CC: [gcc], V: [10, 11] }, run: "true" }
YML
"$bin/evrun-runner" --exec "$tmp/mx.yml" --executors process --state-dir "$tmp/mx" \
  > "$tmp/mx.out" 2>&1
mxjob=$("$bin/evrun-replay" "$tmp/mx" --json | head -n 1 | sed 's/.*"id":"\([0-9A-Z]*\)".*/\1/')
"$bin/evrun-replay" "$tmp/mx" --job "$mxjob" > "$tmp/mx.txt"
check "--job: a long step name whole (V=10)" grep -Eq '^test\[OS=linux,CC=gcc,V=10\] +succeeded' "$tmp/mx.txt"
check "--job: a long step name whole (V=11)" grep -Eq '^test\[OS=linux,CC=gcc,V=11\] +succeeded' "$tmp/mx.txt"
check "--exec's summary: a long step name whole" grep -Eq '^test\[OS=linux,CC=gcc,V=11\] +succeeded' "$tmp/mx.out"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# test_artifacts.sh BIN_DIR SRC_DIR [CASE...]: artifacts and caches end to
# end (issue 14), through real evrun-broker and evrun-runner processes on
# ipc:// sockets (bus_lib.sh) and real podman: a failing step's artifact
# kept (when: on_failure), shipped to the broker and fetched with
# `evrun-cli artifacts` (content and the step.artifact sha256 compared);
# the per-job caps of the runner and the broker; a runner killed while
# it ships, shipping on after its restart with no duplicate or partial
# file; `artifacts` waiting for a file not at the broker yet (--wait);
# a fetch never served another copy than the one it names (its sha256);
# caches restored for the same pipeline and key and not for another key,
# evicted least recently used under a tiny cap.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init art --podman

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
  # right after the job's end: the files not at the broker yet waited for
  cli artifacts "$j" -o "$tmp/got" > "$tmp/art.out" 2> "$tmp/art.err"
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
  # the runner removes an entry once the broker said done: soon after
  for _ in $(seq 1 50); do [ -z "$(ls "$tmp/r-af-1/ship")" ] && break; sleep 0.1; done
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
  check "the reason names the path, the limit and the setting" grep -q "step.finished: failed (exit 0, .*) -- its command exited 0, but artifact [abc].bin: 1000 bytes of files, over the room of 500 bytes left of the job's limit of 2500 bytes (its artifacts hold 2000 bytes already; the runner's artifact_job_max_bytes setting)" "$tmp/cap.st"
  check "two files recorded" [ "$(grep -c "step.artifact [abc].bin (1000 bytes, sha256 [0-9a-f]\{64\})" "$tmp/cap.st")" -eq 2 ]
  for _ in $(seq 1 50); do grep -q "refuses it" "$tmp/runner-cap-1.log" && break; sleep 0.1; done
  check "over the broker's cap: the runner says the broker refuses it" grep -q "artifact one/[abc].bin of job $j: the broker refuses it: 1000 bytes, with the 1000 bytes the job holds, over the broker's limit of 1500 bytes a job (its artifact_job_max_bytes setting)" "$tmp/runner-cap-1.log"
  # the queue empty: each file is at the broker or refused for good
  for _ in $(seq 1 50); do [ -z "$(ls "$tmp/r-cap-1/ship")" ] && break; sleep 0.1; done
  check "the ship queue is empty" [ -z "$(ls "$tmp/r-cap-1/ship")" ]
  check "the broker noted the refusal" grep -q "^too_large	[0-9a-f]\{64\}	one	[abc].bin	1000 bytes, with the 1000 bytes" "$tmp/broker/artifacts/$j/.refused"
  # a file refused for good is not waited for: the longest --wait, and
  # timeout(1) to end a fetch that would wait for it anyway (124)
  timeout -k 10 120 "$bin/evrun-cli" artifacts "$j" -o "$tmp/got" --wait 3600 > "$tmp/cap.out" 2> "$tmp/cap.err"
  check "fetching: exit 1, no wait for the refused file" [ $? -eq 1 ]
  check "the file the broker took fetched" [ "$(find "$tmp/got/one" -type f -size 1000c | wc -l)" -eq 1 ]
  check "the refused one: named with the broker's reason" grep -q "^evrun-cli artifacts: one/[abc].bin: too_large: the broker refused artifact [abc].bin of step one of job $j for good (it never comes): 1000 bytes, with the 1000 bytes the job holds, over the broker's limit of 1500 bytes a job (its artifact_job_max_bytes setting)$" "$tmp/cap.err"
  check "... and not waited for" bash -c "! grep -q 'waiting up to' '$tmp/cap.err'"
  check "... nothing of it written" [ "$(find "$tmp/got/one" -type f | wc -l)" -eq 1 ]
  # the broker's answer to a fetch of it (the independent client's view):
  # with the event's sha256 the refusal; with another sha256 not
  local f sha
  f=$(sed -n 's/^too_large	[0-9a-f]*	one	\([abc].bin\)	.*/\1/p' "$tmp/broker/artifacts/$j/.refused")
  sha=$(event_sha "$j" one "$f")
  check "fetch with the refused copy's sha256: too_large" /usr/bin/python3 "$src/tests/support/fetch_code.py" "$tmp/bus/clients" "$j" one "$f" "$sha" too_large
  check "fetch of another copy's sha256: not_found" /usr/bin/python3 "$src/tests/support/fetch_code.py" "$tmp/bus/clients" "$j" one "$f" "$(printf '%064d' 0)" not_found
  check "fetch without sha256: not_found (no refusal answered)" /usr/bin/python3 "$src/tests/support/fetch_code.py" "$tmp/bus/clients" "$j" one "$f" "" not_found
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
}

# ship_paused ID: runner ID stopped at the test pause "ship" (the broker
# holding part of a file), waited for 30 s at most
ship_paused() {
  for _ in $(seq 1 300); do grep -q "test pause at ship" "$tmp/runner-$1.log" && return 0; sleep 0.1; done
  return 1
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
  check "paused while shipping" ship_paused sk-1
  local part
  part=$(find "$tmp/broker/artifacts/$j/.partial" -type f 2>/dev/null)
  check "the broker holds part of the file" [ -n "$part" ]
  check "the broker holds part of the file [(stat -c %s part) -gt 0]" [ "$(stat -c %s "$part")" -gt 0 ]
  check "... and nothing at its name" [ ! -e "$tmp/broker/artifacts/$j/big/big.txt" ]
  kill -9 "$runner_pid_sk_1"
  wait "$runner_pid_sk_1" 2>/dev/null
  bus_runner sk-1 "" 1
  check "the job succeeded" [ "$(wait_job "$j" 60)" = succeeded ]
  check "artifacts: exit 0" cli artifacts "$j" -o "$tmp/got" > /dev/null
  check "shipped after the restart, whole" cmp -s <(seq 1 1200000) "$tmp/got/big/big.txt"
  check "the broker's copy matches the event" [ "$(sha256sum < "$tmp/broker/artifacts/$j/big/big.txt" | cut -d' ' -f1)" = "$(event_sha "$j" big big.txt)" ]
  check "the broker carried on (no restart from zero)" bash -c "! grep -q 'do not match its sha256' '$tmp/broker.log'"
  check "received once" [ "$(grep -c "artifact big/big.txt of job $j received" "$tmp/broker.log")" -eq 1 ]
  check "no partial left" [ -z "$(find "$tmp/broker/artifacts/$j/.partial" -type f)" ]
  for _ in $(seq 1 50); do [ -z "$(ls "$tmp/r-sk-1/ship")" ] && break; sleep 0.1; done
  check "the queue is empty" [ -z "$(ls "$tmp/r-sk-1/ship")" ]
}

# `artifacts` and a file the events name that the broker does not hold
# yet: its runner stopped (SIGSTOP at the test pause "ship", the broker
# holding part of it).  --wait 0 says so at once; --wait N waits N s, says
# what it waits for and then what to do; the default wait takes the file
# once the runner, killed and started again, ships it.  A bad --wait is a
# usage error.
# fetch_after_restart JOB ID: `artifacts JOB -o $tmp/got` with the default
# wait, in the background (its output in $tmp/got.out and got.err); once it
# says it waits, the runner ID (stopped at a test pause) is killed and
# started again without the pause, and ships at its start; the fetch's
# exit status
fetch_after_restart() {
  local j=$1 id=$2 pid var
  cli artifacts "$j" -o "$tmp/got" > "$tmp/got.out" 2> "$tmp/got.err" &
  pid=$!
  for _ in $(seq 1 100); do grep -qs "waiting up to" "$tmp/got.err" && break; sleep 0.1; done
  var=runner_pid_${id//-/_}
  kill -9 "${!var}"; wait "${!var}" 2>/dev/null
  bus_runner "$id" "" 1
  wait "$pid"
}

case_fetch_wait() {
  fresh fwait
  local v
  for v in -1 abc 1.5 3601 99999999999999999999 ""; do
    cli artifacts 01ARZ3NDEKTSV4RRFFQ69G5FAV --wait "$v" > /dev/null 2> "$tmp/bad.err"
    check "--wait '$v': a usage error" [ $? -eq 2 ]
    check "--wait '$v': says what it expects" grep -q "^evrun-cli artifacts: --wait .*: expected whole seconds, 0\.\.3600 (how long to wait for files not at the broker yet; 0: not at all; see --help)$" "$tmp/bad.err"
  done
  bus_broker && EVR_TEST_PAUSE_AT=ship bus_runner fw-1 "" 1 && bus_wait_runners 1
  pipeline fwait <<'YML'
pipeline: art-fwait
image: localhost/evrun-busybox:latest
steps:
  - name: big
    run: seq 1 400000 > big.txt
    artifacts: [big.txt]
YML
  local j
  j=$(submit "$tmp/fwait.yml")
  check "the runner stopped while shipping" ship_paused fw-1
  for _ in $(seq 1 100); do cli logs "$j" --events | grep -q "step.artifact big.txt" && break; sleep 0.1; done
  check "the broker has the event naming the file" grep -q "step.artifact big.txt" <(cli logs "$j" --events)
  check "... and not the file" [ ! -e "$tmp/broker/artifacts/$j/big/big.txt" ]
  cli artifacts "$j" -o "$tmp/w0" --wait 0 > "$tmp/w0.out" 2> "$tmp/w0.err"
  check "--wait 0: exit 1" [ $? -eq 1 ]
  check "--wait 0: names the file and what to do" grep -q "^evrun-cli artifacts: big/big.txt: not at the broker yet (--wait 0): the runner that ran step big ships it after the step, or at its next start when it is down (a file the broker refused without noting it never comes: that runner's log says why); try again later, or raise --wait$" "$tmp/w0.err"
  check "--wait 0: said no wait" bash -c "! grep -q 'waiting up to' '$tmp/w0.err'"
  check "--wait 0: nothing written" [ -z "$(find "$tmp/w0" -type f 2>/dev/null)" ]
  cli artifacts "$j" -o "$tmp/w2" --wait 2 > /dev/null 2> "$tmp/w2.err"
  check "--wait 2: exit 1" [ $? -eq 1 ]
  check "--wait 2: says once what it waits for" [ "$(grep -c "^evrun-cli artifacts: waiting up to 2 s (--wait) for 1 file not at the broker yet: big.txt of step big (the runner that ran a step ships its files after the step)$" "$tmp/w2.err")" -eq 1 ]
  check "--wait 2: then names the file and what to do" grep -q "^evrun-cli artifacts: big/big.txt: not at the broker after 2 s (--wait): the runner that ran step big ships it after the step, or at its next start when it is down (a file the broker refused without noting it never comes: that runner's log says why); try again later, or raise --wait$" "$tmp/w2.err"
  fetch_after_restart "$j" fw-1
  check "the default wait: exit 0 once the runner shipped the file" [ $? -eq 0 ]
  check "the default wait: said it waits, up to 30 s" grep -q "^evrun-cli artifacts: waiting up to 30 s (--wait) for 1 file not at the broker yet: big.txt of step big" "$tmp/got.err"
  check "... the file whole" cmp -s <(seq 1 400000) "$tmp/got/big/big.txt"
  check "... one line for it" grep -q "got/big/big.txt  2688895 bytes  sha256 $(event_sha "$j" big big.txt)$" "$tmp/got.out"
  check "the job succeeded" [ "$(wait_job "$j" 60)" = succeeded ]
}

# a retried step: the broker holds the first attempt's copy while the
# second's is on its way (its runner stopped at the test pause "ship",
# the broker holding part of it): the fetch waits for the latest copy, and
# names both sizes when its wait is over
case_retried_copy() {
  fresh rcopy
  bus_broker && EVR_TEST_PAUSE_AT=ship bus_runner rc-1 "" 1 && bus_wait_runners 1
  pipeline rcopy <<'YML'
pipeline: art-rcopy
image: localhost/evrun-busybox:latest
steps:
  - name: flaky
    retry: {on: [failed], max: 1}
    run: |
      if [ "$EVRUN_ATTEMPT" = 1 ]; then echo first > out.txt; exit 1; fi
      seq 1 400000 > out.txt
    artifacts: {paths: [out.txt], when: always}
YML
  local j
  j=$(submit "$tmp/rcopy.yml")
  check "the runner stopped while shipping the second copy" ship_paused rc-1
  check "the broker holds the first attempt's copy" cmp -s <(echo first) "$tmp/broker/artifacts/$j/flaky/out.txt"
  cli artifacts "$j" -o "$tmp/r0" --wait 0 > /dev/null 2> "$tmp/r0.err"
  check "--wait 0: exit 1" [ $? -eq 1 ]
  check "--wait 0: names both copies and what to do" grep -q "^evrun-cli artifacts: flaky/out.txt: the broker holds another copy (6 bytes, sha256 $(echo first | sha256sum | cut -d' ' -f1); the step recorded 2688895 bytes, sha256 $(event_sha "$j" flaky out.txt | tail -n 1)) (--wait 0): an earlier attempt's, until the runner that ran step flaky ships the latest after the step, or at its next start when it is down; try again later, or raise --wait$" "$tmp/r0.err"
  check "--wait 0: nothing written" [ -z "$(find "$tmp/r0" -type f 2>/dev/null)" ]
  fetch_after_restart "$j" rc-1
  check "the default wait: exit 0 once the latest copy is shipped" [ $? -eq 0 ]
  check "the default wait: said it waits for the latest copy" grep -q "^evrun-cli artifacts: waiting up to 30 s (--wait) for 1 file not at the broker yet: out.txt of step flaky (an earlier attempt's copy there)" "$tmp/got.err"
  check "... the second attempt's file, whole" cmp -s <(seq 1 400000) "$tmp/got/flaky/out.txt"
  check "the job succeeded" [ "$(wait_job "$j" 60)" = succeeded ]
  # its sum lost and not writable, the broker restarted (no sums in
  # memory): the large file is read by the worker, the fetch answered
  # not_found meanwhile; then served, each piece, and read once only
  local sum=$tmp/broker/artifacts/$j/.sha256/flaky/out.txt sha got=
  sha=$(event_sha "$j" flaky out.txt | tail -n 1)
  kill "$broker_pid"; wait "$broker_pid" 2>/dev/null
  rm -f "$sum" && mkdir "$sum"
  bus_broker --log-level debug || return
  fetch() { /usr/bin/python3 "$src/tests/support/fetch_code.py" "$tmp/bus/clients" "$j" flaky out.txt "$sha" "$@"; }
  check "no sum: not_found while the worker reads the file" fetch not_found "the broker is reading its copy (2688895 bytes) of artifact out.txt of step flaky of job $j again, to tell whether it is the copy of sha256 $sha: ask again shortly"
  for _ in $(seq 1 100); do fetch artifact_data '*' 2>/dev/null && got=1 && break; sleep 0.1; done
  check "... then served" [ -n "$got" ]
  check "... the first piece again" fetch artifact_data '*' 0
  check "... a later piece" fetch artifact_data '*' 1048576
  check "... the last piece" fetch artifact_data '*' 2097152
  rm -rf "$tmp/got2"
  cli artifacts "$j" -o "$tmp/got2" > /dev/null 2>&1
  check "... evrun-cli artifacts gets it whole" cmp -s <(seq 1 400000) "$tmp/got2/flaky/out.txt"
  check "... read by the worker once" [ "$(grep -c "artifact flaky/out.txt of job $j: its sha256 read again by the worker" "$tmp/broker.log")" -eq 1 ]
  check "... and never on the loop" [ "$(grep -c "artifact flaky/out.txt of job $j: its sha256 read again (" "$tmp/broker.log")" -eq 0 ]
  rmdir "$sum"
}

# a copy of the same size as the latest event's and another sha256 (a
# runner made of messages, tests/support/fake_ship.py, ships attempt 1's
# "abc" whole and 1 byte of attempt 2's "xyz"): a fetch naming attempt
# 2's sha256 is never served attempt 1's bytes (not_found, naming the
# copy held); evrun-cli artifacts names both copies and writes nothing;
# the held copy's sha256 kept beside it (a sum naming another inode not
# believed); a piece past the file's size refused with its reason; a
# sum that cannot be written: the sha256 kept in memory, not read again
case_other_copy() {
  fresh ocopy
  bus_broker || return
  /usr/bin/python3 "$src/tests/support/fake_ship.py" "$tmp/bus" oc-1 > "$tmp/fake.out" 2> "$tmp/fake.err"
  check "the fake runner shipped as a broker answers" [ $? -eq 0 ]
  local j h1 h2 zero sums
  j=$(sed -n 's/^job //p' "$tmp/fake.out")
  h1=$(sed -n 's/^h1 //p' "$tmp/fake.out") h2=$(sed -n 's/^h2 //p' "$tmp/fake.out")
  zero=$(printf '%064d' 0)
  check "a piece past the size: refused, with its reason" grep -qx "past_size_reason: a piece at 10 of 3 bytes passes the size 3" "$tmp/fake.out"
  check "6 bytes of a 3-byte file: refused, with its reason" grep -qx "past_size_reason: a piece at 0 of 6 bytes passes the size 3" "$tmp/fake.out"
  fetch() { /usr/bin/python3 "$src/tests/support/fetch_code.py" "$tmp/bus/clients" "$j" a f "$@"; }
  check "fetch of the latest event's sha256: not the other copy's bytes (not_found)" fetch "$h2" not_found "the broker holds another copy (sha256 $h1, 3 bytes) of artifact f of step a of job $j, not the copy of sha256 $h2 (not shipped by its runner yet: 1 byte of it received so far; or a later copy replaced it)"
  check "... nor a later piece of it" fetch "$h2" not_found "the broker holds another copy (sha256 $h1, 3 bytes)" 1
  check "fetch of the held copy's sha256: its bytes" fetch "$h1" artifact_data abc
  check "... from an offset" fetch "$h1" artifact_data bc 1
  check "... at its end: no data" fetch "$h1" artifact_data "" 3
  check "... past its end: bad_request naming fetch.offset" fetch "$h1" bad_request "fetch.offset: 4 is past the end of artifact f (3 bytes)" 4
  check "a sha256 no copy has: not_found, the copy held named" fetch "$zero" not_found "not the copy of sha256 $zero (not shipped by its runner yet; or a later copy replaced it)"
  check "without sha256: the copy held, unchecked" fetch "" artifact_data abc
  sums=$tmp/broker/artifacts/$j/.sha256
  check "the held copy's sha256 kept beside it" grep -q "^$h1 3 [0-9]* [0-9]* [0-9]*$" "$sums/a/f"
  # the sums kept in memory go with a restart: the sum files are read
  kill "$broker_pid"; wait "$broker_pid" 2>/dev/null
  echo "$h2 3 1 0 0" > "$sums/a/f"
  bus_broker --log-level debug || return
  check "a sum naming another inode: not believed" fetch "$h2" not_found "the broker holds another copy (sha256 $h1, 3 bytes)"
  check "... and written again" grep -q "^$h1 3 [0-9]* [0-9]* [0-9]*$" "$sums/a/f"
  kill "$broker_pid"; wait "$broker_pid" 2>/dev/null
  rm "$sums/a/f"
  bus_broker --log-level debug || return
  check "no sum (a state directory of before): read again" fetch "$h1" artifact_data abc
  check "... and written" grep -q "^$h1 " "$sums/a/f"
  # a sum that cannot be written (a directory in its place): the sha256
  # kept in memory, not read again at the next fetch nor its next piece
  kill "$broker_pid"; wait "$broker_pid" 2>/dev/null
  rm "$sums/a/f" && mkdir "$sums/a/f"
  local before
  before=$(wc -l < "$tmp/broker.log")
  bus_broker --log-level debug || return
  check "no sum, none writable: served" fetch "$h1" artifact_data abc
  check "... the sum not written said" grep -q "artifact a/f of job $j: cannot write its sha256 to $sums/a/f" "$tmp/broker.log"
  check "... served again" fetch "$h1" artifact_data abc
  check "... and a later piece" fetch "$h1" artifact_data bc 1
  check "... the file read once" [ "$(tail -n +$((before + 1)) "$tmp/broker.log" | grep -c "artifact a/f of job $j: its sha256 read again")" -eq 1 ]
  check "... and the sum's failure said once" [ "$(tail -n +$((before + 1)) "$tmp/broker.log" | grep -c "cannot write its sha256 to $sums/a/f")" -eq 1 ]
  rmdir "$sums/a/f"
  cli artifacts "$j" -o "$tmp/got" --wait 0 > "$tmp/got.out" 2> "$tmp/got.err"
  check "artifacts --wait 0: exit 1" [ $? -eq 1 ]
  check "... names both copies and what to do" grep -q "^evrun-cli artifacts: a/f: the broker holds another copy (3 bytes, sha256 $h1; the step recorded 3 bytes, sha256 $h2) (--wait 0): an earlier attempt's, until the runner that ran step a ships the latest" "$tmp/got.err"
  check "... writes nothing" [ -z "$(find "$tmp/got" -type f 2>/dev/null)" ]
  check "the broker logged the refusals" [ "$(grep -c "artifact a/f of job $j refused: a piece at" "$tmp/broker.log")" -eq 2 ]
}

# runs FILE with --exec in the state directory $tmp/exec (more runner
# flags after FILE); output in $tmp/exec.out
exec_run() {
  local f=$1; shift
  "$bin/evrun-runner" --exec "$f" --state-dir "$tmp/exec" "$@" > "$tmp/exec.out" 2>&1
}

cache_volume() {   # PIPELINE KEY: the volume evrun names for them
  echo "evrun-cache-$(printf '%s\0%s' "$1" "$2" | sha256sum | cut -c1-24)"
}

forget_caches() {   # PIPELINE KEY...: their volumes removed (a run before may have left them)
  local p=$1 k; shift
  for k in "$@"; do podman --url "$EVRUN_PODMAN_URL" volume rm -f "$(cache_volume "$p" "$k")" > /dev/null 2>&1; done
}

remove_caches() {   # the cache volumes of this case's runner state
  local v
  for v in $(ls "$tmp/exec/caches" 2>/dev/null | grep -v '\.tmp$'); do
    podman --url "$EVRUN_PODMAN_URL" volume rm -f "$v" > /dev/null 2>&1
  done
}

case_cache() {
  fresh cache
  forget_caches art-cache deps-v1 deps-v2
  forget_caches art-cache abs-deps-v1 abs-deps-v2
  forget_caches art-lock "lock-$(echo one | sha256sum | cut -d' ' -f1)" "lock-$(echo two | sha256sum | cut -d' ' -f1)"
  local port serve_port serve_pid
  mkdir -p "$tmp/www" && echo one > "$tmp/www/lock.txt"
  serve_dir "$tmp/www"
  check "the test's HTTP server answers" [ -n "$serve_pid" ]
  bus_pids+=("$serve_pid")
  port=$serve_port
  local key
  for key in deps-v1 deps-v2; do
    pipeline "c-$key" <<YML
pipeline: art-cache
image: localhost/evrun-busybox:latest
cache:
  - {key: $key, path: deps}
steps:
  - name: use
    run: if [ -f deps/marker ]; then echo "HIT \$(cat deps/marker)"; else echo MISS; echo from-$key > deps/marker; fi
  - name: abs
    cache: [{key: "abs-$key", path: /root/.cache}]
    run: if [ -f /root/.cache/m ]; then echo ABS-HIT; else echo ABS-MISS; touch /root/.cache/m; fi
YML
  done
  exec_run "$tmp/c-deps-v1.yml"
  check "first job: a fresh cache" grep -qx "use | MISS" "$tmp/exec.out"
  check "first job: absolute path, fresh" grep -qx "abs | ABS-MISS" "$tmp/exec.out"
  exec_run "$tmp/c-deps-v1.yml"
  check "second job, same pipeline and key: restored" grep -qx "use | HIT from-deps-v1" "$tmp/exec.out"
  check "second job: absolute path restored" grep -qx "abs | ABS-HIT" "$tmp/exec.out"
  # an untrusted step reads what a trusted step put in the cache, and
  # cannot change it (read-only)
  pipeline untrusted <<'YML'
pipeline: art-cache
image: localhost/evrun-busybox:latest
cache:
  - {key: deps-v1, path: deps}
steps:
  - name: reads
    untrusted: true
    run: 'cat deps/marker; if touch deps/poison 2>/dev/null; then echo WROTE; else echo READ-ONLY; fi'
YML
  exec_run "$tmp/untrusted.yml"
  check "an untrusted step reads the cache" grep -qx "reads | from-deps-v1" "$tmp/exec.out"
  check "... and cannot write it" grep -qx "reads | READ-ONLY" "$tmp/exec.out"
  exec_run "$tmp/c-deps-v2.yml"
  check "another key: not restored" grep -qx "use | MISS" "$tmp/exec.out"
  check "the volume named after pipeline and key" podman --url "$EVRUN_PODMAN_URL" volume exists "$(cache_volume art-cache deps-v1)"
  check "LRU records kept" [ -f "$tmp/exec/caches/$(cache_volume art-cache deps-v1)" ]
  # a key from a file of the workspace (a resource here)
  pipeline lock <<YML
pipeline: art-lock
image: localhost/evrun-busybox:latest
resources: [{name: lock, url: "http://127.0.0.1:$port/lock.txt", path: lock.txt}]
cache: [{key: "lock-{{ sha256 lock.txt }}", path: deps}]
steps:
  - name: use
    run: if [ -f deps/m ]; then echo HIT; else echo MISS; touch deps/m; fi
YML
  exec_run "$tmp/lock.yml"
  check "sha256 key: fresh" grep -qx "use | MISS" "$tmp/exec.out"
  exec_run "$tmp/lock.yml"
  check "sha256 key, same file: restored" grep -qx "use | HIT" "$tmp/exec.out"
  check "the key is the file's sha256" podman --url "$EVRUN_PODMAN_URL" volume exists "$(cache_volume art-lock "lock-$(sha256sum < "$tmp/www/lock.txt" | cut -d' ' -f1)")"
  echo two > "$tmp/www/lock.txt"
  exec_run "$tmp/lock.yml"
  check "sha256 key, the file changed: a new cache" grep -qx "use | MISS" "$tmp/exec.out"
  pipeline nolock <<'YML'
pipeline: art-nolock
image: localhost/evrun-busybox:latest
cache: [{key: "lock-{{ sha256 missing.txt }}", path: deps}]
steps: [{name: use, run: "echo ran"}]
YML
  exec_run "$tmp/nolock.yml"
  check "a missing key file: the job fails" [ $? -eq 1 ]
  check "... saying which entry and file" grep -q "cache\[0\] (key \"lock-{{ sha256 missing.txt }}\"): {{ sha256 missing.txt }}: no such file in the workspace" "$tmp/exec.out"
  check "... and runs nothing" bash -c "! grep -q '^use | ran' '$tmp/exec.out'"
  remove_caches
}

case_cache_lru() {
  fresh lru
  forget_caches art-lru e1 e2
  local k
  for k in e1 e2; do
    pipeline "lru-$k" <<YML
pipeline: art-lru
image: localhost/evrun-busybox:latest
cache: [{key: $k, path: big}]
steps:
  - name: fill
    run: if [ -f big/data ]; then echo HIT; else echo MISS; head -c 100000 /dev/zero > big/data; fi
YML
  done
  exec_run "$tmp/lru-e1.yml" --cache-max-bytes 150000
  check "e1: fresh" grep -qx "fill | MISS" "$tmp/exec.out"
  check "e1: its size recorded" [ "$(cat "$tmp/exec/caches/$(cache_volume art-lru e1)")" = 100000 ]
  exec_run "$tmp/lru-e1.yml" --cache-max-bytes 150000
  check "e1 again: restored (under the cap)" grep -qx "fill | HIT" "$tmp/exec.out"
  exec_run "$tmp/lru-e2.yml" --cache-max-bytes 150000
  check "e2: fresh" grep -qx "fill | MISS" "$tmp/exec.out"
  check "e2's end: e1, used longest ago, removed" grep -q "cache $(cache_volume art-lru e1) removed (least recently used; the runner's cache_max_bytes setting)" "$tmp/exec.out"
  check "e1's volume gone" bash -c "! podman --url '$EVRUN_PODMAN_URL' volume exists '$(cache_volume art-lru e1)'"
  check "e2's volume kept" podman --url "$EVRUN_PODMAN_URL" volume exists "$(cache_volume art-lru e2)"
  exec_run "$tmp/lru-e2.yml" --cache-max-bytes 150000
  check "e2 again: restored" grep -qx "fill | HIT" "$tmp/exec.out"
  exec_run "$tmp/lru-e1.yml" --cache-max-bytes 150000
  check "e1 after its eviction: fresh" grep -qx "fill | MISS" "$tmp/exec.out"
  remove_caches
}

case_cache_recover() {
  # a runner killed before the second step's container is made: the
  # restarted runner makes it with the caches resolved at the job's start
  fresh crec
  forget_caches art-crec rk
  pipeline crec <<'YML'
pipeline: art-crec
image: localhost/evrun-busybox:latest
cache: [{key: rk, path: deps}]
steps:
  - name: one
    run: sleep 1; echo from-one > deps/marker
  - name: two
    run: cat deps/marker
YML
  EVR_TEST_PAUSE_AT=before_create:two "$bin/evrun-runner" --exec "$tmp/crec.yml" \
    --state-dir "$tmp/exec" > "$tmp/crec.out" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do grep -q "test pause at before_create" "$tmp/crec.out" && break; sleep 0.1; done
  check "paused before the second step's create" grep -q "test pause at before_create of step two" "$tmp/crec.out"
  kill -9 "$pid"; wait "$pid" 2>/dev/null
  "$bin/evrun-runner" --recover --state-dir "$tmp/exec" > "$tmp/crec2.out" 2>&1
  check "recovered: the job succeeded" [ $? -eq 0 ]
  check "the step after the restart sees the cache" grep -qx "two | from-one" "$tmp/crec2.out"
  check "the job's mounts file removed at its end" [ -z "$(ls "$tmp/exec/caches" | grep mounts)" ]
  remove_caches
}

# The broker killed (-9) while it holds part of a file (the runner stopped
# at the test pause "ship", then let go on each time it stops there): the
# restarted broker takes the rest from where its partial file ends, and the
# file arrives whole, once, as the event says.
case_ship_broker_killed() {
  fresh shipbroker
  bus_broker && EVR_TEST_PAUSE_AT=ship bus_runner sb-1 "" 1 --executors process && bus_wait_runners 1
  pipeline shipb <<'YML'
pipeline: art-ship-broker
executor: process
steps:
  - name: big
    run: seq 1 1200000 > big.txt
    artifacts: [big.txt]
YML
  local j cont
  j=$(submit "$tmp/shipb.yml")
  check "paused while shipping" ship_paused sb-1
  check "the broker holds part of the file" [ -n "$(find "$tmp/broker/artifacts/$j/.partial" -type f -size +0 2>/dev/null)" ]
  kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
  bus_broker
  # the runner stops at each partial ack: let it go on each time
  ( while kill -CONT "$runner_pid_sb_1" 2>/dev/null; do sleep 0.1; done ) &
  cont=$!
  check "the job succeeded" [ "$(wait_job "$j" 60)" = succeeded ]
  check "artifacts: exit 0" cli artifacts "$j" -o "$tmp/got" > /dev/null
  check "whole" cmp -s <(seq 1 1200000) "$tmp/got/big/big.txt"
  check "the broker's copy matches the event" [ "$(sha256sum < "$tmp/broker/artifacts/$j/big/big.txt" | cut -d' ' -f1)" = "$(event_sha "$j" big big.txt)" ]
  check "received once" [ "$(grep -c "artifact big/big.txt of job $j received" "$tmp/broker.log")" -eq 1 ]
  check "the broker carried on (no restart from zero)" not grep -q 'do not match its sha256' "$tmp/broker.log"
  check "no partial left" [ -z "$(find "$tmp/broker/artifacts/$j/.partial" -type f)" ]
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
  bus_stop
  wait "$cont" 2>/dev/null
}

bus_script_cases "failing_step job_cap ship_killed ship_broker_killed fetch_wait retried_copy other_copy cache cache_lru cache_recover" "$@"
bus_script_end "$root/*/*.log $root/*/exec.out"

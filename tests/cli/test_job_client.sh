#!/usr/bin/env bash
# test_job_client.sh BIN_DIR SRC_DIR: evrun-job against a stand-in for a
# step's control channel (tests/cli/job_channel.py, written from
# schema/PROTOCOL.md): answers a runner may give, no runner needed.
set -u
bin=$1 src=$2
tmp=$(mktemp -d /tmp/evr-test-job-XXXXXX)
chan_pids=
trap 'for p in $chan_pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
fails=0 passes=0
. "$(dirname "$0")/../support/check.sh"

# chan SOCKET [FULL]: the stand-in channel serving at SOCKET (killed at the
# exit at the latest), its stderr in SOCKET.err, its pid in $chan_pid;
# returns once the socket is there
chan() {
  /usr/bin/python3 "$src/tests/cli/job_channel.py" "$@" 2> "$1.err" &
  chan_pid=$!
  chan_pids="$chan_pids $chan_pid"
  for _ in $(seq 1 100); do [ -S "$1" ] && break; sleep 0.05; done
}
# chan_stop: ends the channel chan started last
chan_stop() { kill "$chan_pid" 2> /dev/null; wait "$chan_pid" 2> /dev/null; }

export EVRUN_CONTROL=$tmp/control.sock
chan "$EVRUN_CONTROL"
big=01K0000000000000000000B1G0

# run CMD...: its status in $rc, its stdout in $tmp/out, its stderr in
# $tmp/err; its stdin the file $input names (/dev/null when unset)
run() { timeout -k 10 60 "$@" > "$tmp/out" 2> "$tmp/err" < "${input:-/dev/null}"; rc=$?; }

run "$bin/evrun-job" hello
check "hello: exit 0" [ $rc -eq 0 ]
check "hello: the answer printed" grep -q '^{"protocol":1,' "$tmp/out"

# result of a job whose outputs make an answer of some 120 KiB (the
# broker gives up to 256 of 4 KiB): it was "the runner's answer is longer
# than 65535 bytes", exit 2
run "$bin/evrun-job" result $big
check "result, a large answer: exit 0" [ $rc -eq 0 ]
check "result, a large answer: nothing on stderr" [ ! -s "$tmp/err" ]
check "result, a large answer: printed whole, one line" \
  /usr/bin/python3 -c 'import json, sys
lines = open(sys.argv[1]).read().splitlines()
a = json.loads(lines[0]) if len(lines) == 1 else {}
sys.exit(not (len(a.get("outputs", {})) == 40 and a.get("status") == "succeeded"))' "$tmp/out"
# trigger --wait of a job that succeeded with those outputs: it was exit 2
run "$bin/evrun-job" trigger big --wait
check "trigger --wait, a child with large outputs: exit 0" [ $rc -eq 0 ]
check "trigger --wait: the child's id printed" grep -qx "$big" "$tmp/out"
check "trigger --wait: its end said" grep -qx "evrun-job: job $big: succeeded" "$tmp/err"
run "$bin/evrun-job" result 01K0000000000000000000N0NE
check "result of an unknown job: exit 1" [ $rc -eq 1 ]
check "result of an unknown job: the runner's words" \
  grep -qx 'evrun-job: refused: result: no job 01K0000000000000000000N0NE (unknown, or removed by retention)' "$tmp/err"

# a refusal's text as any JSON encoder may escape it: printed as the text
# it stands for (\u00e9 was '?', \r 'r', \/ '/' by chance)
printf 'value' > "$tmp/value"
input=$tmp/value run "$bin/evrun-job" secret NAME
check "secret refused: exit 2" [ $rc -eq 2 ]
check "secret refused: the runner's words, unescaped" /usr/bin/python3 -c 'import sys
want = "evrun-job: refused: secret: caf\u00e9 \U0001F600 cr\r ff\f bs\b slash/ tab\t q\" bsl\\ ctl\x01 end\n"
sys.exit(open(sys.argv[1], "rb").read() != want.encode())' "$tmp/err"

# what is not UTF-8 cannot be a JSON string: said before anything is sent
# (it was the runner's "request is not JSON (column 25: unable to decode
# byte 0xff ...): send one JSON object per line", about a line the user
# never wrote)
ff=$(printf '\377')
input=$tmp/value run "$bin/evrun-job" secret "A$ff"
check "secret, a NAME not UTF-8: exit 2" [ $rc -eq 2 ]
check "secret, a NAME not UTF-8: said" grep -qx "evrun-job: secret: NAME is not UTF-8 text (byte 2 is 0xff): the control channel carries UTF-8 only" "$tmp/err"
run "$bin/evrun-job" trigger p -a K=v -a "K2=v$ff"
check "trigger, an arg not UTF-8: exit 2" [ $rc -eq 2 ]
check "trigger, an arg not UTF-8: said" grep -qx "evrun-job: trigger: -a NAME=VALUE number 2 is not UTF-8 text (byte 5 is 0xff): the control channel carries UTF-8 only" "$tmp/err"
check "trigger, an arg not UTF-8: nothing started" [ ! -s "$tmp/out" ]
run "$bin/evrun-job" trigger "p$ff"
check "trigger, a PIPELINE not UTF-8: said" grep -qx "evrun-job: trigger: PIPELINE is not UTF-8 text (byte 2 is 0xff): the control channel carries UTF-8 only" "$tmp/err"
run "$bin/evrun-job" trigger --file "$(printf 'ci/\355\240\200.yml')"   # a surrogate
check "trigger, a --file PATH not UTF-8: said" grep -qx "evrun-job: trigger: --file PATH is not UTF-8 text (byte 4 is 0xed): the control channel carries UTF-8 only" "$tmp/err"
run "$bin/evrun-job" result "$(printf '\300\200')"   # an overlong NUL
check "result, not UTF-8: said" grep -qx "evrun-job: result: JOB|PIPELINE is not UTF-8 text (byte 1 is 0xc0): the control channel carries UTF-8 only" "$tmp/err"
run "$bin/evrun-job" running "p$ff"
check "running, not UTF-8: exit 2" [ $rc -eq 2 ]
run "$bin/evrun-job" trigger "caf$(printf '\303\251')" -a "K=$(printf '\360\237\230\200')"
check "trigger, UTF-8 of 2 and 4 bytes: sent" [ $rc -eq 0 ]

# 64 args of 4096 bytes (each allowed) make a request longer than the
# channel's line: said before sending (it was the runner's "request line
# longer than 262144 bytes: the connection is closed")
v=$(head -c 4096 /dev/zero | tr '\0' a)
set --
for i in $(seq 1 64); do set -- "$@" -a "A$i=$v"; done
run "$bin/evrun-job" trigger p "$@"
check "trigger, args over the channel's line: exit 2" [ $rc -eq 2 ]
check "trigger, args over the channel's line: said" grep -qx "evrun-job: trigger p: the request is 262788 bytes, more than the control channel's 262144 (its args together, as JSON, a control character as 6 bytes): give fewer or shorter args" "$tmp/err"
set --

check "the stand-in channel ran without an error" [ ! -s "$EVRUN_CONTROL.err" ]

# a channel full of connections (evrun-jobs run at once in one step)
# refuses a connection before reading it: evrun-job asks again, as for a
# socket not there yet (it was exit 2, "refused: too many connections ...
# close one and try again", which a shell cannot do)
chan "$tmp/full.sock" 3
EVRUN_CONTROL=$tmp/full.sock run "$bin/evrun-job" hello
check "a full channel: asked again, exit 0" [ $rc -eq 0 ]
check "a full channel: the answer printed" grep -q '^{"protocol":1,' "$tmp/out"
check "a full channel: nothing on stderr" [ ! -s "$tmp/err" ]
chan_stop
chan "$tmp/full2.sock" 1000
EVRUN_CONTROL=$tmp/full2.sock run "$bin/evrun-job" hello
check "a channel full for 10 s: exit 2" [ $rc -eq 2 ]
check "a channel full for 10 s: said" grep -qx "evrun-job: the job's control channel had too many connections (other evrun-jobs of this step) for 10 s: run fewer at once" "$tmp/err"
chan_stop
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

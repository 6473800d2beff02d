#!/usr/bin/env bash
# test_args.sh BIN_DIR: bad command lines and settings files as a user
# types them, no broker needed: each is one clear line on stderr and exit
# status 2, before anything is done.
set -u
bin=$1
tmp=$(mktemp -d /tmp/evr-test-args-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
. "$(dirname "$0")/../support/check.sh"
export EVRUN_STATE_DIR=$tmp/state   # no broker runs there
unset EVRUN_CONFIG
job=01K0000000000000000000000A

# run CMD...: its status in $rc, its stderr in $tmp/err
run() { "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null; rc=$?; }
# said LINE: stderr is that one line
said() { [ "$(cat "$tmp/err")" = "$1" ]; }

# artifacts -o "" would put the files at /STEP/PATH (OUT unset in -o "$OUT")
run "$bin/evrun-cli" artifacts $job -o ""
check "artifacts -o '': exit 2" [ $rc -eq 2 ]
check "artifacts -o '': says so, before any broker is asked" \
  said 'evrun-cli artifacts: -o "": expected a directory (. for this one; see --help)'
touch "$tmp/file"
run "$bin/evrun-cli" artifacts $job --output "$tmp/file"
check "artifacts -o FILE: exit 2" [ $rc -eq 2 ]
check "artifacts -o FILE: once, naming it" \
  said "evrun-cli artifacts: -o $tmp/file: not a directory (the files go to DIR/STEP/PATH)"

# --stop-timeout was atoi'd: 5x was 5, abc and -1 no wait at all
for v in 5x abc -1 "" 86401; do
  run "$bin/evrun-runner" --broker ipc://"$tmp"/x --stop-timeout "$v" --print-config
  check "runner --stop-timeout '$v': exit 2" [ $rc -eq 2 ]
  check "runner --stop-timeout '$v': says what it expects" \
    said "evrun-runner: --stop-timeout $v: expected seconds, 0 to 86400"
done
run "$bin/evrun-runner" --broker ipc://"$tmp"/x --stop-timeout 0 --print-config
check "runner --stop-timeout 0: taken" [ $rc -eq 0 ]

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

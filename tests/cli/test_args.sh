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

# settings files: a key written twice is an error, in every binary
printf 'log_level: info\nlease_ms: 100\nlog_level: debug\n' > "$tmp/twice.yml"
for b in evrun-broker evrun-runner evrun-gateway; do
  run "$bin/$b" --config "$tmp/twice.yml" --print-config
  check "$b: a key twice: exit 2" [ $rc -eq 2 ]
  check "$b: a key twice: file:line:col, and the first line" \
    said "$b: $tmp/twice.yml:3:1: log_level: given twice (first at line 1)"
done
# also a key of another binary's (the one file is shared)
printf 'heartbeat_ms: 100\nheartbeat_ms: 200\n' > "$tmp/other.yml"
run "$bin/evrun-cli" jobs --config "$tmp/other.yml"
check "cli: another binary's key twice: exit 2" [ $rc -eq 2 ]
check "cli: another binary's key twice: said" \
  said "evrun-cli jobs: $tmp/other.yml:2:1: heartbeat_ms: given twice (first at line 1)"
printf 'retention_max_age: 1d\nretention:\n  max_age: 2d\n' > "$tmp/group.yml"
run "$bin/evrun-broker" --config "$tmp/group.yml" --print-config
check "retention.max_age flat and in the group: said" \
  said "evrun-broker: $tmp/group.yml:3:3: retention.max_age: given twice (first at line 1)"
printf 'retention:\n  max_age: 1d\nretention:\n  keep_per_pipeline: 3\n' > "$tmp/group2.yml"
run "$bin/evrun-broker" --config "$tmp/group2.yml" --print-config
check "retention: twice: said" \
  said "evrun-broker: $tmp/group2.yml:3:1: retention: given twice (first at line 1)"
printf 'retention:\n  max_age: 1d\n  keep_per_pipeline: 3\nlease_ms: 200\n' > "$tmp/ok.yml"
run "$bin/evrun-broker" --config "$tmp/ok.yml" --print-config
check "every key once: taken" [ $rc -eq 0 ]

# --config DIR was "DIR:1:1: YAML syntax error: input error"
for b in evrun-broker evrun-runner evrun-gateway; do
  run "$bin/$b" --config "$tmp" --print-config
  check "$b --config DIR: exit 2" [ $rc -eq 2 ]
  check "$b --config DIR: says it is a directory, once" \
    said "$b: $tmp: is a directory, not a settings file"
done

# --pipeline "" (P unset) listed no job, and evrun-tail waited for ever
for v in "" "a b"; do
  run timeout 10 "$bin/evrun-cli" jobs --pipeline "$v"
  check "jobs --pipeline '$v': exit 2" [ $rc -eq 2 ]
  check "jobs --pipeline '$v': says what a name is" \
    said "evrun-cli jobs: --pipeline \"$v\": expected a pipeline name: letters, digits, _ . - (at most 64 bytes)"
  run timeout 10 "$bin/evrun-tail" --pipeline "$v"
  check "evrun-tail --pipeline '$v': exit 2" [ $rc -eq 2 ]
  check "evrun-tail --pipeline '$v': says what a name is" \
    grep -qxF "evrun-tail: --pipeline \"$v\": expected a pipeline name: letters, digits, _ . - (at most 64 bytes)" "$tmp/err"
done

# down took any operand and stopped everything (down --state-dir-typo...)
mkdir -p -m 0700 "$tmp/state"
run "$bin/evrun-cli" down "$tmp/state"
check "down OPERAND: exit 2" [ $rc -eq 2 ]
check "down OPERAND: refused, naming it" \
  said "evrun-cli down: unexpected argument \"$tmp/state\" (down stops all that up started; see --help)"

# pause, resume and drain share cancel's options: --reason was exit 2, silently
for cmd in "pause $job" "resume $job" "drain r1"; do
  run "$bin/evrun-cli" $cmd --reason why
  check "$cmd --reason: exit 2" [ $rc -eq 2 ]
  check "$cmd --reason: says why" \
    said "evrun-cli ${cmd%% *}: --reason goes with evrun-cli cancel only (see --help)"
done

# submit took run's --follow, --wait and --events and did none of them
printf 'pipeline: p\nexecutor: process\nsteps:\n  - { name: a, run: "true" }\n' > "$tmp/p.yml"
for o in follow wait events; do
  run "$bin/evrun-cli" submit "$tmp/p.yml" --$o
  check "submit --$o: exit 2" [ $rc -eq 2 ]
  check "submit --$o: says it is run's" \
    grep -q "^evrun-cli submit: --$o: run only (submit returns once the job is queued: evrun-cli run FILE --" "$tmp/err"
done

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

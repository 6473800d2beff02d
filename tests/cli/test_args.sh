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
# has_line LINE: stderr has that line (the usage lines may follow it)
has_line() { grep -qxF "$1" "$tmp/err"; }
# refused WHAT WHY LINE CMD...: runs CMD, then checks "WHAT: exit 2" and
# "WHAT: WHY": its stderr is LINE alone (refused_with: LINE is one of its
# lines)
refused() { s_refused said "$@"; }
refused_with() { s_refused has_line "$@"; }
s_refused() {
  local how=$1 what=$2 why=$3 line=$4
  shift 4
  run "$@"
  check "$what: exit 2" [ $rc -eq 2 ]
  check "$what: $why" "$how" "$line"
}

# artifacts -o "" would put the files at /STEP/PATH (OUT unset in -o "$OUT")
refused "artifacts -o ''" "says so, before any broker is asked" \
  'evrun-cli artifacts: -o "": expected a directory (. for this one; see --help)' \
  "$bin/evrun-cli" artifacts $job -o ""
touch "$tmp/file"
refused "artifacts -o FILE" "once, naming it" \
  "evrun-cli artifacts: -o $tmp/file: not a directory (the files go to DIR/STEP/PATH)" \
  "$bin/evrun-cli" artifacts $job --output "$tmp/file"

# --stop-timeout was atoi'd: 5x was 5, abc and -1 no wait at all
for v in 5x abc -1 "" 86401; do
  refused "runner --stop-timeout '$v'" "says what it expects" \
    "evrun-runner: --stop-timeout $v: expected seconds, 0 to 86400" \
    "$bin/evrun-runner" --broker ipc://"$tmp"/x --stop-timeout "$v" --print-config
done
run "$bin/evrun-runner" --broker ipc://"$tmp"/x --stop-timeout 0 --print-config
check "runner --stop-timeout 0: taken" [ $rc -eq 0 ]

# settings files: a key written twice is an error, in every binary
printf 'log_level: info\nlease_ms: 100\nlog_level: debug\n' > "$tmp/twice.yml"
for b in evrun-broker evrun-runner evrun-gateway; do
  refused "$b: a key twice" "file:line:col, and the first line" \
    "$b: $tmp/twice.yml:3:1: log_level: duplicate key (first at line 1)" \
    "$bin/$b" --config "$tmp/twice.yml" --print-config
done
# also a key of another binary's (the one file is shared)
printf 'heartbeat_ms: 100\nheartbeat_ms: 200\n' > "$tmp/other.yml"
refused "cli: another binary's key twice" "said" \
  "evrun-cli jobs: $tmp/other.yml:2:1: heartbeat_ms: duplicate key (first at line 1)" \
  "$bin/evrun-cli" jobs --config "$tmp/other.yml"
printf 'retention_max_age: 1d\nretention:\n  max_age: 2d\n' > "$tmp/group.yml"
run "$bin/evrun-broker" --config "$tmp/group.yml" --print-config
check "retention.max_age flat and in the group: said" \
  said "evrun-broker: $tmp/group.yml:3:3: retention.max_age: duplicate key (first at line 1)"
printf 'retention:\n  max_age: 1d\nretention:\n  keep_per_pipeline: 3\n' > "$tmp/group2.yml"
run "$bin/evrun-broker" --config "$tmp/group2.yml" --print-config
check "retention: twice: said" \
  said "evrun-broker: $tmp/group2.yml:3:1: retention: duplicate key (first at line 1)"
printf 'retention:\n  max_age: 1d\n  keep_per_pipeline: 3\nlease_ms: 200\n' > "$tmp/ok.yml"
run "$bin/evrun-broker" --config "$tmp/ok.yml" --print-config
check "every key once: taken" [ $rc -eq 0 ]

# --config DIR was "DIR:1:1: YAML syntax error: input error"
for b in evrun-broker evrun-runner evrun-gateway; do
  refused "$b --config DIR" "says it is a directory, once" \
    "$b: $tmp: is a directory, not a settings file" \
    "$bin/$b" --config "$tmp" --print-config
done

# --pipeline "" (P unset) listed no job, and evrun-tail waited for ever
for v in "" "a b"; do
  refused "jobs --pipeline '$v'" "says what a name is" \
    "evrun-cli jobs: --pipeline \"$v\": expected a pipeline name: letters, digits, _ . - (at most 64 bytes)" \
    timeout -k 10 10 "$bin/evrun-cli" jobs --pipeline "$v"
  refused_with "evrun-tail --pipeline '$v'" "says what a name is" \
    "evrun-tail: --pipeline \"$v\": expected a pipeline name: letters, digits, _ . - (at most 64 bytes)" \
    timeout -k 10 10 "$bin/evrun-tail" --pipeline "$v"
done

# --from-start does nothing with --job (which prints the job from its
# first line): it was taken in silence
refused_with "evrun-tail --job --from-start" "says it goes with --pipeline or --all" \
  "evrun-tail: --from-start goes with --pipeline or --all (--job prints the job from its first line)" \
  "$bin/evrun-tail" --job $job --from-start

# --step "" (S unset) or a name no step can have matched nothing: evrun-tail
# --all or --pipeline waited for ever, printing nothing
for v in "" "a b" "t[os=a b]"; do
  for c in "evrun-tail --all|evrun-tail" "evrun-tail --pipeline p|evrun-tail" \
           "evrun-cli logs $job|evrun-cli logs" "evrun-cli artifacts $job|evrun-cli artifacts"; do
    # shellcheck disable=SC2086
    refused_with "${c%%|*} --step '$v'" "says what a step name is" \
      "${c#*|}: --step \"$v\": expected a step name: letters, digits, _ . - (at most 64 bytes), or one combination of a matrix step, NAME[K=v,...]" \
      timeout -k 10 10 $bin/${c%%|*} --step "$v"
  done
done

# a JOB_ID given empty was ": not a job id", naming nothing; --before's
# named no option; runners --help said it refuses "no such job"
for c in "evrun-cli status|evrun-cli status" "evrun-tail --job|evrun-tail" \
         "evrun-cli jobs --before|evrun-cli jobs: --before"; do
  # shellcheck disable=SC2086
  refused_with "${c%%|*} ''" "says it is empty" \
    "${c#*|}: \"\": not a job id (empty: a variable left unset?)" \
    $bin/${c%%|*} ""
done
run "$bin/evrun-cli" jobs --before junk
check "jobs --before junk: names the option" \
  said 'evrun-cli jobs: --before: junk: not a job id (expected a ULID: 26 characters, got 4)'
check "runners --help: no 'no such job'" bash -c "! '$bin/evrun-cli' runners --help | grep -q 'no such job'"

# down took any operand and stopped everything (down --state-dir-typo...)
mkdir -p -m 0700 "$tmp/state"
refused "down OPERAND" "refused, naming it" \
  "evrun-cli down: unexpected argument \"$tmp/state\" (down stops all that up started; see --help)" \
  "$bin/evrun-cli" down "$tmp/state"

# pause, resume and drain share cancel's options: --reason was exit 2, silently
for cmd in "pause $job" "resume $job" "drain r1"; do
  refused "$cmd --reason" "says why" \
    "evrun-cli ${cmd%% *}: --reason goes with evrun-cli cancel only (see --help)" \
    "$bin/evrun-cli" $cmd --reason why
done

# submit took run's --follow, --wait and --events and did none of them
printf 'pipeline: p\nexecutor: process\nsteps:\n  - { name: a, run: "true" }\n' > "$tmp/p.yml"
for o in follow wait events; do
  run "$bin/evrun-cli" submit "$tmp/p.yml" --$o
  check "submit --$o: exit 2" [ $rc -eq 2 ]
  check "submit --$o: says it is run's" \
    grep -q "^evrun-cli submit: --$o: run only (submit returns once the job is queued: evrun-cli run FILE --" "$tmp/err"
done

# a typo is one line naming the option (did you mean), then at most the
# usage lines, not the whole --help (58 to 77 lines hid the error), and
# the program's name, not argv[0]'s path
for b in evrun-broker evrun-gateway evrun-provisioner evrun-replay evrun-tail evrun-runner; do
  run "$bin/$b" --heartbet-ms 5
  check "$b --typo: exit 2" [ $rc -eq 2 ]
  check "$b --typo: the first line names it, with the program's name" \
    grep -qx "$b: unrecognized option '--heartbet-ms'.* (see --help)" <(head -n 1 "$tmp/err")
  check "$b --typo: the usage lines only ($(wc -l < "$tmp/err") lines)" [ "$(wc -l < "$tmp/err")" -le 8 ]
  check "$b --typo: says where the rest is" grep -q -- "--help" <(tail -n 1 "$tmp/err")
done
run "$bin/evrun-broker" --heartbet-ms 5
check "evrun-broker --typo: did you mean" \
  said "$(printf '%s\n' "evrun-broker: unrecognized option '--heartbet-ms'; did you mean --heartbeat-ms? (see --help)" \
          "usage: evrun-broker [options]" "(evrun-broker --help: every option)")"
run "$bin/evrun-gateway" --listen
check "evrun-gateway --listen: a missing value, three lines" \
  said "$(printf '%s\n' "evrun-gateway: option '--listen' requires an argument (see --help)" \
          "usage: evrun-gateway [options]" "(evrun-gateway --help: every option)")"
# an abbreviation is named as typed and as taken (status has no --events)
run "$bin/evrun-cli" status $job --events
check "status --events: named as typed, then as taken" \
  said "evrun-cli status: option '--events' (taken as --events-endpoint) requires an argument (see --help)"
# evrun-runner --exec FIFO (no writer yet): SIGTERM or Ctrl-C did nothing
# (the handler counted it, and the blocked open went on); now it ends as
# --help says of a signal before the job began, nothing recorded
# term_end PID: SIGTERM to PID (a child of this shell), 5 s for it to
# end (then SIGKILL); $alive 1 when it had not, $rc its status
term_end() {
  kill -TERM "$1"
  for _ in $(seq 50); do kill -0 "$1" 2> /dev/null || break; sleep 0.1; done
  alive=0
  kill -0 "$1" 2> /dev/null && { alive=1; kill -KILL "$1"; }
  wait "$1"
  rc=$?
}
mkfifo "$tmp/fifo.yml"
"$bin/evrun-runner" --exec "$tmp/fifo.yml" --state-dir "$tmp/fifo-state" > /dev/null 2>&1 &
pid=$!
sleep 0.5
term_end $pid
check "runner --exec FIFO, SIGTERM while it waits for a writer: it ends" [ $alive -eq 0 ]
check "runner --exec FIFO, SIGTERM: status 143" [ $rc -eq 143 ]
check "runner --exec FIFO, SIGTERM: nothing recorded" [ ! -e "$tmp/fifo-state/data.mdb" ]

# the commands that catch SIGINT and SIGTERM before they connect (tail,
# logs, run/start --follow or --wait) set their handlers before the
# settings file was read: one that blocks (a FIFO, a hung mount) went on
# after a Ctrl-C; now it is read first, and a signal then ends them
mkfifo "$tmp/fifo-settings.yml"
for c in "evrun-tail --all" "evrun-cli logs $job --follow" "evrun-cli run $tmp/p.yml --wait" \
         "evrun-cli start p --follow"; do
  # shellcheck disable=SC2086
  $bin/$c --config "$tmp/fifo-settings.yml" > /dev/null 2>&1 &
  pid=$!
  sleep 0.4
  term_end $pid
  check "$c --config FIFO, SIGTERM while it is read: it ends (status $rc)" \
    [ "$alive.$rc" = 0.143 ]
done

# down: a pid file naming another state directory's evrun process (copied
# with its state directory, or from before a reboot) stopped that process:
# any command line with "evrun-" in it was taken as up's
mkdir -p -m 0700 "$tmp/other" "$tmp/copy/run"
"$bin/evrun-broker" --state-dir "$tmp/other" --local > "$tmp/other.log" 2>&1 &
bpid=$!
for _ in $(seq 50); do [ -S "$tmp/other/bus/clients" ] && break; sleep 0.1; done
echo "$bpid" > "$tmp/copy/run/broker.pid"
chmod 0600 "$tmp/copy/run/broker.pid"
run "$bin/evrun-cli" down --state-dir "$tmp/copy"
sleep 0.3
check "down, a pid file naming another state directory's broker: it runs on" kill -0 $bpid
check "down, that pid file: nothing of this state directory ran" \
  grep -qx "nothing was running under $tmp/copy" "$tmp/out"
kill -TERM $bpid 2> /dev/null
wait $bpid

# evrun-job: a control path that is a file or a directory, not a socket,
# was waited on for 10 s (as for a runner restarting), then "Connection
# refused"
for c in "$tmp/p.yml|a file" "$tmp|a directory"; do
  start=$(date +%s)
  run env EVRUN_CONTROL="${c%%|*}" "$bin/evrun-job" hello
  took=$(( $(date +%s) - start ))
  check "evrun-job, EVRUN_CONTROL ${c#*|}: exit 2" [ $rc -eq 2 ]
  check "evrun-job, EVRUN_CONTROL ${c#*|}: at once (${took} s)" [ "$took" -le 3 ]
  check "evrun-job, EVRUN_CONTROL ${c#*|}: says what it is" \
    said "evrun-job: cannot reach the job's control channel at ${c%%|*}: ${c#*|}, not a socket (is this a step of an evrun job? EVRUN_CONTROL names the socket)"
done

# an operand none takes: named, then the usage lines, as an unknown option
# (the gateway gave no usage; the provisioner named no argument)
for b in evrun-broker evrun-gateway evrun-provisioner evrun-tail evrun-runner; do
  run "$bin/$b" stray-operand
  check "$b stray-operand: exit 2" [ $rc -eq 2 ]
  check "$b stray-operand: the first line names it" \
    grep -q "^$b: unexpected argument \"\?stray-operand" <(head -n 1 "$tmp/err")
  check "$b stray-operand: then the usage, and where the rest is" grep -q -- "--help" <(tail -n 1 "$tmp/err")
done

# --version: evrun-cli's and the gateway's were in no --help, the others
# had none ("unrecognized option '--version'")
for b in evrun-cli evrun-tail evrun-replay evrun-runner evrun-broker evrun-gateway \
         evrun-provisioner evrun-job; do
  run "$bin/$b" --version
  check "$b --version: exit 0" [ $rc -eq 0 ]
  check "$b --version: the name and version alone" grep -qx "$b [0-9][0-9.]*" "$tmp/out"
  check "$b --version: nothing on stderr" [ ! -s "$tmp/err" ]
  check "$b --help: says --version" grep -q -- "--version" <("$bin/$b" --help)
done

# evrun-cli and evrun-job: an unknown command is one line
refused "evrun-cli rnu" "one line, did you mean" \
  'evrun-cli: unknown command "rnu"; did you mean run? (evrun-cli --help lists the commands)' \
  "$bin/evrun-cli" rnu process.yml
run "$bin/evrun-cli" frobnicate
check "evrun-cli frobnicate: one line naming the commands" \
  grep -qx 'evrun-cli: unknown command "frobnicate": expected one of run, submit, .*, hook-token (evrun-cli --help describes them)' "$tmp/err"
run "$bin/evrun-cli" --json
check "evrun-cli --json: no command, said so" \
  grep -qx 'evrun-cli: no command after the option --json: expected one of run, .*' "$tmp/err"
run "$bin/evrun-cli" help nosuch
check "evrun-cli help nosuch: one line" [ "$(wc -l < "$tmp/err")" -eq 1 ]
refused "evrun-job frobnicate" "one line naming the commands" \
  'evrun-job: unknown command "frobnicate": expected secret, trigger, running, result or hello (evrun-job --help describes them)' \
  "$bin/evrun-job" frobnicate
run "$bin/evrun-job" secret
check "evrun-job secret without NAME: not 'unknown command'" \
  said 'evrun-job secret: expected one NAME (the value on stdin), got 0 (evrun-job --help)'

# an empty state directory: STATE/gateway/jwt.secret was /gateway/jwt.secret
for b in "evrun-cli token|evrun-cli token" "evrun-cli hook-token h|evrun-cli hook-token" \
         "evrun-cli jobs|evrun-cli jobs" "evrun-cli down|evrun-cli down" \
         "evrun-broker|evrun-broker" "evrun-runner --broker ipc://x|evrun-runner" \
         "evrun-gateway|evrun-gateway" "evrun-tail --all|evrun-tail"; do
  # shellcheck disable=SC2086
  refused "${b%%|*} --state-dir ''" "says so" \
    "${b#*|}: state_dir = \"\" (from flag): expected a directory (empty, every path made from it would start at /)" \
    $bin/${b%%|*} --state-dir "" --print-config
done
run env EVRUN_STATE_DIR= "$bin/evrun-cli" token
check "EVRUN_STATE_DIR='': exit 2, naming the variable" \
  said 'evrun-cli token: state_dir = "" (from env EVRUN_STATE_DIR): expected a directory (empty, every path made from it would start at /)'

# the event stream beside a tcp:// broker: PORT+2 on its host; ports
# 65534 and 65535 (no PORT+2) fell back to tcp://127.0.0.1:7702, another
# host than the broker's: now the broker's default port on its host
for c in "7701|7703" "65533|65535" "65534|7702" "65535|7702"; do
  run "$bin/evrun-cli" jobs --broker "tcp://10.1.2.3:${c%%|*}" --print-config
  check "--broker tcp://10.1.2.3:${c%%|*}: the event stream at port ${c#*|} of that host" \
    grep -q "^events_endpoint: tcp://10.1.2.3:${c#*|}  *# the broker's event stream (derived)$" "$tmp/out"
done

# an endpoint given empty was "empty endpoint", naming neither the option
# nor the fix, and --print-config printed it as good
for c in "evrun-cli jobs --broker|evrun-cli jobs: client_endpoint" \
         "evrun-cli jobs --events-endpoint|evrun-cli jobs: events_endpoint" \
         "evrun-tail --all --broker|evrun-tail: client_endpoint" \
         "evrun-runner --broker|evrun-runner: runner_endpoint" \
         "evrun-broker --client-endpoint|evrun-broker: client_endpoint" \
         "evrun-broker --runner-endpoint|evrun-broker: runner_endpoint" \
         "evrun-broker --events-endpoint|evrun-broker: events_endpoint" \
         "evrun-gateway --broker|evrun-gateway: client_endpoint" \
         "evrun-gateway --events-endpoint|evrun-gateway: events_endpoint"; do
  # shellcheck disable=SC2086
  run $bin/${c%%|*} "" --print-config
  check "${c%%|*} '' --print-config: exit 2" [ $rc -eq 2 ]
  check "${c%%|*} '': names the setting" \
    said "${c#*|} = \"\" (from flag): expected an endpoint, tcp://HOST:PORT or ipc://PATH (empty: a variable left unset?)"
done
run env EVRUN_CLIENT_ENDPOINT= "$bin/evrun-cli" runners
check "EVRUN_CLIENT_ENDPOINT='': names the variable" \
  said 'evrun-cli runners: client_endpoint = "" (from env EVRUN_CLIENT_ENDPOINT): expected an endpoint, tcp://HOST:PORT or ipc://PATH (empty: a variable left unset?)'

# the other directories alike: curve_dir "" put broker.cert, runners/ and
# clients/ at /, provisioner --dir "" its lock and runners
for b in "evrun-broker --curve-dir|evrun-broker: curve_dir" \
         "evrun-broker --pipelines-dir|evrun-broker: pipelines_dir" \
         "evrun-runner --broker ipc://x --secrets-dir|evrun-runner: secrets_dir"; do
  # shellcheck disable=SC2086
  refused "${b%%|*} ''" "says so" \
    "${b#*|} = \"\" (from flag): expected a directory (empty, every path made from it would start at /)" \
    $bin/${b%%|*} "" --print-config
done
refused "provisioner --dir ''" "says so" \
  'evrun-provisioner: --dir "": expected a directory (default STATE/provisioner; see --help)' \
  "$bin/evrun-provisioner" --status --dir ""
run "$bin/evrun-runner" --exec "$tmp/p.yml" --follow-triggers --pipelines ""
check "runner --pipelines '': exit 2, said" \
  said 'evrun-runner: --pipelines "": expected a directory (default: FILE'"'"'s directory)'

# a hook's field written twice: the second name was taken (the first leaked)
printf 'hooks:\n  - { phase: PRE_EXECUTION, run: "true", name: a, name: b }\n' > "$tmp/hooks.yml"
refused "a hook's field twice" "file:line:col, and the first line" \
  "evrun-runner: $tmp/hooks.yml:2:51: hooks[0].name: duplicate key (first at line 2)" \
  "$bin/evrun-runner" --broker ipc://x --config "$tmp/hooks.yml" --print-config

# a settings file that is not YAML was said twice (the settings' loader's
# words, then the hooks' loader's, without the hint)
printf 'capacity: 2\nhooks:\n  - phase: CLEANUP\n    run: echo job: done\n' > "$tmp/hooks.yml"
refused "a settings file not YAML" "said once, with the hint" \
  "evrun-runner: $tmp/hooks.yml:4:18: YAML syntax error: mapping values are not allowed in this context: a key indented deeper than the one above it, or \": \" inside a value: check the indentation, or quote the value ('...')" \
  "$bin/evrun-runner" --broker ipc://x --config "$tmp/hooks.yml" --print-config

printf 'capacity: 2\n# caf\xe9 au lait\n' > "$tmp/latin1.yml"
refused "a Latin-1 settings file" "said once, at the byte" \
  "evrun-runner: $tmp/latin1.yml:2:6: YAML syntax error: invalid trailing UTF-8 octet (byte 0xe9 starts a UTF-8 sequence that the bytes after it do not continue): the file must be UTF-8 text (saved as Latin-1 or another 8-bit encoding? convert it: iconv -f latin1 -t utf-8; or is this a binary file?)" \
  "$bin/evrun-runner" --broker ipc://x --config "$tmp/latin1.yml" --print-config

# names the broker would refuse (exit 1, a refusal) are usage errors here
for c in "run $tmp/p.yml --label|evrun-cli run: --label|a label" \
         "submit $tmp/p.yml --label|evrun-cli submit: --label|a label" \
         "start p --label|evrun-cli start: --label|a label" \
         "drain|evrun-cli drain:|a runner id"; do
  IFS='|' read -r args prefix what <<< "$c"
  # shellcheck disable=SC2086
  refused_with "$args ''" "says what it expects" \
    "$prefix \"\": expected $what: letters, digits, _ . - (at most 64 bytes)" \
    "$bin/evrun-cli" $args ""
done
# a label given twice: the broker refuses a repeated label (its labels are
# a set), so the command line says so first, for each command taking them
for c in "run $tmp/p.yml|evrun-cli run" "submit $tmp/p.yml|evrun-cli submit" \
         "start p|evrun-cli start"; do
  IFS='|' read -r args prefix <<< "$c"
  # shellcheck disable=SC2086
  refused_with "$args --label twice" "names it" \
    "$prefix: --label \"gpu\": given twice (each label once)" \
    "$bin/evrun-cli" $args --label gpu --label x --label gpu
done
# an arg given twice: refused, not the last value silently taken (as the
# gateway's body refuses a repeated key and its query a repeated ?arg=)
for c in "run $tmp/p.yml|evrun-cli run" "submit $tmp/p.yml|evrun-cli submit" \
         "start p|evrun-cli start" "validate $tmp/p.yml|evrun-cli validate"; do
  IFS='|' read -r args prefix <<< "$c"
  # shellcheck disable=SC2086
  refused_with "$args -a twice" "names it (the usage after it, as for --label)" \
    "$prefix: -a \"WHO\": given twice (each arg once)" \
    "$bin/evrun-cli" $args -a WHO=x -a OTHER=y -a WHO=z
  check "$args -a twice: said once" [ "$(grep -c 'given twice' "$tmp/err")" = 1 ]
done
refused_with "evrun-runner --exec -a twice" "names it" \
  'evrun-runner: -a "WHO": given twice (each arg once)' \
  "$bin/evrun-runner" --exec "$tmp/p.yml" -a WHO=x -a WHO=z
# a file or directory given empty (a variable left unset): said as such,
# naming the option, not ": cannot open" naming nothing
for c in "evrun-cli run ''|evrun-cli run: the pipeline file name is empty: give the path of a .yml file" \
         "evrun-cli submit ''|evrun-cli submit: the pipeline file name is empty: give the path of a .yml file" \
         "evrun-cli validate $tmp/p.yml ''|evrun-cli validate: FILE 2: the pipeline file name is empty: give the path of a .yml file" \
         "evrun-runner --exec ''|evrun-runner: --exec \"\": expected a pipeline file (the path of a .yml file)" \
         "evrun-replay ''|evrun-replay: \"\": expected a state directory (DIR, where a store is)" \
         "evrun-provisioner --config ''|evrun-provisioner: --config \"\": expected the providers' file (see --help)" \
         "evrun-provisioner --settings '' --config $tmp/p.yml|evrun-provisioner: --settings \"\": expected a settings file (leave --settings out for the default)" \
         "evrun-cli jobs --config ''|evrun-cli jobs: --config \"\": expected a settings file (leave --config out for the default)" \
         "evrun-broker --config '' --print-config|evrun-broker: --config \"\": expected a settings file (leave --config out for the default)" \
         "evrun-gateway --tls-cert '' --tls-key $tmp/p.yml --print-config|evrun-gateway: tls_cert = \"\" (from flag): expected a file (empty: give its path, or leave it out)" \
         "evrun-gateway --ui-dir '' --print-config|evrun-gateway: ui_dir = \"\" (from flag): expected a directory (empty: give its path, or leave it out)" \
         "evrun-tail --all --curve-cert ''|evrun-tail: client_cert = \"\" (from flag): expected a file (empty: give its path, or leave it out)" \
         "evrun-runner --broker ipc://x --curve-cert '' --print-config|evrun-runner: runner_cert = \"\" (from flag): expected a file (empty: give its path, or leave it out)" \
         "evrun-runner --broker ipc://x --registry-auth '' --print-config|evrun-runner: registry_auth = \"\" (from flag): expected a file (empty: give its path, or leave it out)"; do
  IFS='|' read -r args line <<< "$c"
  eval "run \"\$bin\"/$args"
  check "$args: exit 2" [ $rc -eq 2 ]
  check "$args: says it is empty" grep -qxF "$line" "$tmp/err"
done
# the broker's client and runner endpoints on one port: said as such, naming
# where each came from, not as the runner bind failing ("another broker
# running?", when the broker's own client socket held the port)
run "$bin/evrun-broker" --state-dir "$tmp/b" --client-endpoint tcp://127.0.0.1:7790 \
  --runner-endpoint tcp://127.0.0.1:7790 --print-config
check "broker: client and runner on one port: exit 2" [ $rc -eq 2 ]
check "broker: client and runner on one port: the two must differ, both named" \
  said 'evrun-broker: runner_endpoint = "tcp://127.0.0.1:7790" (from flag): the same port as client_endpoint = "tcp://127.0.0.1:7790" (from flag): the two ports must differ (set by --client-endpoint and --runner-endpoint, or client_endpoint and runner_endpoint in the settings file)'
printf 'client_endpoint: tcp://127.0.0.1:7791\nrunner_endpoint: tcp://0.0.0.0:7791\n' > "$tmp/ports.yml"
run "$bin/evrun-broker" --state-dir "$tmp/b" --config "$tmp/ports.yml" --print-config
check "broker: one port in the settings file (0.0.0.0 too): said at both lines" \
  said "evrun-broker: runner_endpoint = \"tcp://0.0.0.0:7791\" (from file $tmp/ports.yml:2:18): the same port as client_endpoint = \"tcp://127.0.0.1:7791\" (from file $tmp/ports.yml:1:18): the two ports must differ (set by --client-endpoint and --runner-endpoint, or client_endpoint and runner_endpoint in the settings file)"
run "$bin/evrun-broker" --state-dir "$tmp/b" --local --events-endpoint "ipc://$tmp/b/bus/runners" \
  --print-config
check "broker: events on the runners' ipc path: the two endpoints must differ" \
  grep -qF 'events_endpoint = "ipc://'"$tmp"'/b/bus/runners" (from flag): the same endpoint as runner_endpoint' "$tmp/err"
run "$bin/evrun-broker" --state-dir "$tmp/b" --client-endpoint tcp://127.0.0.1:7790 \
  --runner-endpoint tcp://127.0.0.2:7790 --print-config
check "broker: one port on two addresses: taken" [ $rc -eq 0 ]
run "$bin/evrun-broker" --state-dir "$tmp/b" --client-endpoint 'tcp://[::]:7792' \
  --events-endpoint tcp://127.0.0.1:7792 --print-config
check "broker: [::] (every address, IPv4 too) and 127.0.0.1 on one port: the same port" \
  grep -qF 'events_endpoint = "tcp://127.0.0.1:7792" (from flag): the same port as client_endpoint = "tcp://[::]:7792"' "$tmp/err"
run "$bin/evrun-broker" --state-dir "$tmp/b" --client-endpoint 'tcp://127.0.0.1:*' \
  --runner-endpoint 'tcp://127.0.0.1:*' --events-endpoint 'tcp://127.0.0.1:*' --print-config
check "broker: ports the system picks (*): never the same port" [ $rc -eq 0 ]
# port 0 was taken by --print-config, and refused as the broker started
run "$bin/evrun-broker" --state-dir "$tmp/b" --client-endpoint 'tcp://127.0.0.1:0' --print-config
check "broker: port 0: refused by --print-config as at the start" \
  said 'evrun-broker: client_endpoint = "tcp://127.0.0.1:0" (from flag): expected tcp://HOST:PORT, PORT from 1 to 65535'
run "$bin/evrun-cli" token --sub ""
check "token --sub '': exit 2, not the default in silence" [ $rc -eq 2 ]
check "token --sub '': says so" grep -qxF 'evrun-cli token: --sub "": expected a name (default $USER, else evrun)' "$tmp/err"
run "$bin/evrun-provisioner" --status --dry-run
check "provisioner --status --dry-run: exit 2" [ $rc -eq 2 ]
check "provisioner --status --dry-run: not both" grep -q '^evrun-provisioner: --status or --dry-run, not both' "$tmp/err"

# a long command line: flags past 8 (evrun-cli), 16 (gateway), 24 (broker)
# or 40 (runner) were dropped in silence, a bad last value taken as good
many() { local i; for i in $(seq "$1"); do printf '%s\n' "$2" "$3"; done; }
mapfile -t a < <(many 30 --heartbeat-ms 100)
run "$bin/evrun-broker" "${a[@]}" --lease-ms 5 --print-config
check "broker: the 31st flag is read" grep -q '^evrun-broker: lease_ms = "5" (from flag)' "$tmp/err"
mapfile -t a < <(many 20 --timeout-ms 100)
run "$bin/evrun-gateway" "${a[@]}" --timeout-ms 0 --print-config
check "gateway: the 21st flag is read" grep -q '^evrun-gateway: timeout_ms = "0" (from flag)' "$tmp/err"
mapfile -t a < <(many 45 --capacity 1)
run "$bin/evrun-runner" --broker ipc://x "${a[@]}" --capacity 0 --print-config
check "runner: the 47th flag is read" grep -q '^evrun-runner: capacity = "0" (from flag)' "$tmp/err"
mapfile -t a < <(many 10 --timeout-ms 100)
run "$bin/evrun-cli" jobs "${a[@]}" --timeout-ms x
check "evrun-cli: the 11th flag is read" grep -q '^evrun-cli jobs: timeout_ms = "x" (from flag)' "$tmp/err"
mapfile -t a < <(many 10 --timeout-ms x)
run "$bin/evrun-cli" jobs "${a[@]}" --timeout-ms 100 --print-config
check "evrun-cli: the last of one flag wins" [ $rc -eq 0 ]

# evrun-gateway --print-config printed a bad limit or log level as good
refused "gateway --print-config, a bad limit" "said as at a start" \
  'evrun-gateway: http_max_connections = "0" (from env EVRUN_HTTP_MAX_CONNECTIONS): expected a whole number from 1 to 4096' \
  env EVRUN_HTTP_MAX_CONNECTIONS=0 "$bin/evrun-gateway" --print-config
# ... and a bad http_listen or a lone tls_cert too (a start refused them);
# a port with a sign, a space or past 65535 was taken by strtol
for l in 127.0.0.1:99999 127.0.0.1:+80 "127.0.0.1: 80" :7780 127.0.0.1: nohost; do
  run "$bin/evrun-gateway" --listen "$l" --print-config
  check "gateway --listen '$l' --print-config: exit 2" [ $rc -eq 2 ]
  check "gateway --listen '$l': said as a setting, with its source" \
    said "evrun-gateway: http_listen = \"$l\" (from flag): expected HOST:PORT (an IPv4 address or localhost, PORT 0 to 65535; 0: any free one), e.g. 127.0.0.1:7780"
done
run env EVRUN_HTTP_LISTEN='[::1]:7780' "$bin/evrun-gateway" --print-config
check "gateway http_listen [::1]: exit 2, naming the variable" \
  said "evrun-gateway: http_listen = \"[::1]:7780\" (from env EVRUN_HTTP_LISTEN): [::1] is not an IPv4 address (nor localhost; e.g. 127.0.0.1:7780, or 0.0.0.0:7780 for every address)"
run "$bin/evrun-gateway" --tls-cert "$tmp/p.yml" --print-config
check "gateway --tls-cert alone --print-config: exit 2" [ $rc -eq 2 ]
check "gateway --tls-cert alone: said" \
  said "evrun-gateway: tls_cert = \"$tmp/p.yml\" (from flag): set both tls_cert and tls_key (--tls-cert and --tls-key), or neither"
run "$bin/evrun-gateway" --listen localhost:0 --print-config
check "gateway --listen localhost:0: taken" [ $rc -eq 0 ]
run "$bin/evrun-gateway" --print-config
check "gateway --print-config: exit 0" [ $rc -eq 0 ]
check "gateway --print-config: the settings" grep -q '^http_max_connections: 512 ' "$tmp/out"

# evrun-runner: an option of another mode did nothing, in silence
for c in "--exec $tmp/p.yml --once-wait 5|--once-wait goes with --once only" \
         "--broker ipc://x --once-wait 5 --print-config|--once-wait goes with --once only" \
         "--exec $tmp/p.yml --exit-when-drained|--exit-when-drained goes with --broker EP only" \
         "--recover -a X=1|-a goes with --exec FILE only (a broker's job gets its args from its submit: evrun-cli run FILE -a NAME=VALUE)"; do
  # shellcheck disable=SC2086
  refused "runner ${c%%|*}" "says so" \
    "evrun-runner: ${c#*|}" \
    "$bin/evrun-runner" ${c%%|*}
done
# --id "" (ID unset) took a made id in silence; a bad one passed --print-config
for v in "" "a b" "-r"; do
  run "$bin/evrun-runner" --broker ipc://x --id "$v" --print-config
  check "runner --id '$v' --print-config: exit 2" [ $rc -eq 2 ]
  check "runner --id '$v': said as a setting" \
    grep -qxF "evrun-runner: runner_id = \"$v\" (from flag): expected a runner id: 1-64 letters, digits, _ . - (starting with a letter or digit)$([ -z "$v" ] && echo '; leave it out for the one made once and kept in the store')" "$tmp/err"
done
run env EVRUN_RUNNER_ID= "$bin/evrun-runner" --broker ipc://x --print-config
check "runner EVRUN_RUNNER_ID='': exit 2, naming the variable" \
  grep -qF 'runner_id = "" (from env EVRUN_RUNNER_ID): expected a runner id' "$tmp/err"
mkdir -p -m 0700 "$tmp/rid"
run timeout -k 10 10 "$bin/evrun-runner" --broker "ipc://$tmp/nobroker" --executors process --state-dir "$tmp/rid" --id ""
check "runner --id '': refused at a start too, before it connects" \
  grep -qF 'runner_id = "" (from flag): expected a runner id' "$tmp/err"

# ... the broker mode's flags too: --exec took --id, --labels, --capacity
# and the rest, and did nothing with them
for o in "--id r1" "--labels gpu" "--capacity 4" "--heartbeat-ms 50" "--lease-ms 900" \
         "--curve-cert $tmp/c" "--broker-key $tmp/k"; do
  for m in "--exec $tmp/p.yml" "--recover" "--prune"; do
    # shellcheck disable=SC2086
    refused "runner $m $o" "says so" \
      "evrun-runner: ${o%% *} goes with --broker EP only (--exec, --recover and --prune take no job from a broker)" \
      "$bin/evrun-runner" $m $o --state-dir "$tmp/rs"
  done
done
# --stop-timeout with no daemon, -q with one or --prune, --keep with
# --prune, a second --exec: each did nothing, in silence
for m in "--exec $tmp/p.yml" "--recover" "--prune"; do
  # shellcheck disable=SC2086
  run "$bin/evrun-runner" $m --stop-timeout 5 --state-dir "$tmp/rs"
  check "runner $m --stop-timeout: says so" \
    said "evrun-runner: --stop-timeout goes with --broker EP only (--exec, --recover and --prune take no job from a broker)"
done
for m in "--broker ipc://x" "--prune"; do
  # shellcheck disable=SC2086
  run "$bin/evrun-runner" $m -q --state-dir "$tmp/rs"
  check "runner $m -q: says so" said "evrun-runner: -q goes with --exec FILE or --recover only"
done
run "$bin/evrun-runner" --prune --keep --state-dir "$tmp/rs"
check "runner --prune --keep: says so" \
  said "evrun-runner: --keep goes with --exec, --recover or --broker (--prune runs no step)"
refused "runner --exec twice" "says so" \
  "evrun-runner: --exec given twice (\"$tmp/p.yml\", then \"$tmp/q.yml\"): one pipeline file per run" \
  "$bin/evrun-runner" --exec "$tmp/p.yml" --exec "$tmp/q.yml" --state-dir "$tmp/rs"
[ ! -e "$tmp/rs" ]; check "runner: none of those made the state directory" [ $? -eq 0 ]
run "$bin/evrun-runner" --recover -q --keep --state-dir "$tmp/rs" --print-config
check "runner --recover -q --keep: taken" [ $rc -eq 0 ]
printf 'labels: gpu\ncapacity: 4\n' > "$tmp/shared.yml"
run "$bin/evrun-runner" --exec "$tmp/p.yml" --config "$tmp/shared.yml" --print-config
check "runner --exec: the settings file's labels and capacity taken (it is shared)" [ $rc -eq 0 ]
run "$bin/evrun-runner" --broker ipc://x --once --once-wait 5 --exit-when-drained --print-config
check "runner --once --once-wait --exit-when-drained with --broker: taken" [ $rc -eq 0 ]

# up --provisioner DIR started podman, the broker and the runners, and then
# the provisioner, which failed on it
refused "up --provisioner DIR" "says so" \
  "evrun-cli up: --provisioner $tmp: is a directory, not a providers file (YAML)" \
  "$bin/evrun-cli" up --provisioner "$tmp" --executors process --no-gateway --state-dir "$tmp/up"
check "up --provisioner DIR: nothing started" [ ! -e "$tmp/up" ]
[ -e "$tmp/up" ] && "$bin/evrun-cli" down --state-dir "$tmp/up" > /dev/null 2>&1

# runner: a --secrets-dir or --registry-auth typo was found by the job
# that needed a secret or a private image
refused "runner --secrets-dir MISSING" "said" \
  "evrun-runner: secrets_dir = \"$tmp/nosuch\" (from flag): No such file or directory" \
  "$bin/evrun-runner" --broker ipc://x --secrets-dir "$tmp/nosuch" --print-config
run "$bin/evrun-runner" --exec "$tmp/p.yml" --secrets-dir "$tmp/file"
check "runner --secrets-dir FILE: said" \
  said "evrun-runner: secrets_dir = \"$tmp/file\" (from flag): not a directory (of files NAME)"
run "$bin/evrun-runner" --exec "$tmp/p.yml" --registry-auth "$tmp"
check "runner --registry-auth DIR: said" \
  said "evrun-runner: registry_auth = \"$tmp\" (from flag): not a file (a containers-auth.json)"
run env EVRUN_REGISTRY_AUTH="$tmp/nosuch" "$bin/evrun-runner" --broker ipc://x --print-config
check "runner registry_auth MISSING (env): said" \
  said "evrun-runner: registry_auth = \"$tmp/nosuch\" (from env EVRUN_REGISTRY_AUTH): No such file or directory"

# runner: the limits, the words, the paths, executors and labels were
# checked one at a time after the others were said (a second run for each
# error), and the words, executors and labels named no source
run env EVRUN_HOST_NETWORK=no "$bin/evrun-runner" --broker ipc://x --grace 0 \
  --artifact-max-bytes 1e9 --cache-max-bytes 0 --resource-redirects all \
  --resource-local no --secrets-dir "$tmp/nosuch" --registry-auth "$tmp" \
  --executors podman,procss --print-config
check "runner: bad settings of every kind: exit 2" [ $rc -eq 2 ]
check "runner: bad settings of every kind: each said, with its source" \
  said "evrun-runner: grace = \"0\" (from flag): expected a whole number from 1 to 3600
evrun-runner: artifact_max_bytes = \"1e9\" (from flag): expected a whole number from 1 to 1099511627776
evrun-runner: cache_max_bytes = \"0\" (from flag): expected a whole number from 1 to 1125899906842624
evrun-runner: resource_redirects = \"all\" (from flag): expected same, any or none
evrun-runner: resource_local = \"no\" (from flag): expected allow or deny
evrun-runner: host_network = \"no\" (from env EVRUN_HOST_NETWORK): expected allow or deny
evrun-runner: secrets_dir = \"$tmp/nosuch\" (from flag): No such file or directory
evrun-runner: registry_auth = \"$tmp\" (from flag): not a file (a containers-auth.json)
evrun-runner: executors = \"podman,procss\" (from flag): unknown executor \"procss\" (expected podman, process, comma-separated)"
printf 'triggers_any: yes\nlabels: gpu,gpu\n' > "$tmp/words.yml"
run "$bin/evrun-runner" --broker ipc://x --config "$tmp/words.yml" --capacity 0 --print-config
check "runner: labels and a word of the file, with the others" \
  said "evrun-runner: capacity = \"0\" (from flag): expected a whole number from 1 to 1024
evrun-runner: triggers_any = \"yes\" (from file $tmp/words.yml:1:15): expected allow or deny
evrun-runner: labels = \"gpu,gpu\" (from file $tmp/words.yml:2:9): \"gpu\" given twice (each label once)"

# evrun-cli help --help: help, not "no command after the option --help"
for a in "help --help" "--help -h" "-h help" "help help"; do
  # shellcheck disable=SC2086
  run "$bin/evrun-cli" $a
  check "evrun-cli $a: exit 0, the usage on stdout" sh -c "[ $rc -eq 0 ] && grep -q '^commands:' '$tmp/out' && [ ! -s '$tmp/err' ]"
done

# the broker's --curve-dir a file: "FILE: not a directory: remove it or
# give another state directory", naming no setting
run timeout -k 5 10 "$bin/evrun-broker" --state-dir "$tmp/bcd" --curve-dir "$tmp/file" \
  --client-endpoint 'tcp://127.0.0.1:*' --runner-endpoint 'tcp://127.0.0.1:*' \
  --events-endpoint 'tcp://127.0.0.1:*'
check "broker --curve-dir FILE: exit 2" [ $rc -eq 2 ]
check "broker --curve-dir FILE: the setting named" \
  said "evrun-broker: curve_dir (--curve-dir, the CURVE keys of the tcp:// endpoints): $tmp/file: not a directory: remove it or give another directory"

# the ranges --help gives: the bounds taken, one past refused
for c in "evrun-runner --broker ipc://x|--capacity|1|1024" \
         "evrun-runner --broker ipc://x|--heartbeat-ms|10|3600000" \
         "evrun-runner --broker ipc://x|--lease-ms|100|86400000" \
         "evrun-runner --broker ipc://x|--grace|1|3600" \
         "evrun-runner --broker ipc://x|--artifact-max-bytes|1|1099511627776" \
         "evrun-runner --broker ipc://x|--cache-max-bytes|1|1125899906842624" \
         "evrun-runner --broker ipc://x|--retention-keep-per-pipeline|0|10000000" \
         "evrun-broker|--queue-limit|1|1000000" \
         "evrun-broker|--reclaim-ms|0|2592000000" \
         "evrun-broker|--forget-ms|0|2592000000" \
         "evrun-broker|--artifact-job-max-bytes|1|1125899906842624" \
         "evrun-cli jobs|--timeout-ms|1|3600000"; do
  IFS='|' read -r cmd opt lo hi <<< "$c"
  for v in "$lo" "$hi"; do
    # shellcheck disable=SC2086
    run "$bin"/$cmd "$opt" "$v" --print-config
    check "${cmd%% *} $opt $v: taken, as --help says" [ $rc -eq 0 ]
  done
  for v in $((lo - 1)) $((hi + 1)); do
    # shellcheck disable=SC2086
    run "$bin"/$cmd "$opt" "$v" --print-config
    check "${cmd%% *} $opt $v: refused, as --help says" [ $rc -eq 2 ]
  done
done

# podman_url of the wrong form: said at the start, naming neither the
# setting nor where it came from, and --print-config took it
run env EVRUN_PODMAN_URL=foo "$bin/evrun-runner" --broker ipc://x --capacity 0 --print-config
check "runner podman_url foo: with the other errors, where it came from" \
  said "evrun-runner: capacity = \"0\" (from flag): expected a whole number from 1 to 1024
evrun-runner: podman_url = \"foo\" (from env EVRUN_PODMAN_URL): expected unix:///path/to/podman.sock"
run "$bin/evrun-runner" --exec "$tmp/p.yml" --podman-url "" --state-dir "$tmp/rs"
check "runner --podman-url '': said before anything is made" \
  said "evrun-runner: podman_url = \"\" (from flag): expected unix:///path/to/podman.sock (empty: a variable left unset?)"
run env EVRUN_PODMAN_URL=foo "$bin/evrun-runner" --broker ipc://x --executors process --print-config
check "runner podman_url foo, podman not offered: taken" [ $rc -eq 0 ]

# a second YAML document in a settings file: its settings (hooks too)
# were dropped in silence
printf 'log_level: warn\n---\nhooks:\n  - { phase: CLEANUP, run: x }\n' > "$tmp/docs.yml"
for b in evrun-broker evrun-runner evrun-gateway "evrun-cli jobs"; do
  # shellcheck disable=SC2086
  refused "$b: a second YAML document" "said" \
    "$b: $tmp/docs.yml:3:1: a second YAML document: a settings file holds one mapping of settings (key: value); put them all in it, with no \"---\" between them" \
    "$bin"/$b --config "$tmp/docs.yml" --print-config
done
printf -- '---\nlog_level: warn\n...\n' > "$tmp/doc1.yml"
run "$bin/evrun-broker" --config "$tmp/doc1.yml" --print-config
check "one document between --- and ...: taken" [ $rc -eq 0 ]

# the default settings file: $XDG_CONFIG_HOME's (the help said only
# ~/.config's); EVRUN_CONFIG= (a variable left unset) read the default one
mkdir -p "$tmp/xdg/evrun" "$tmp/home/.config/evrun"
printf 'capacty: 2\n' > "$tmp/xdg/evrun/evrun.yml"
printf 'statedir: x\n' > "$tmp/home/.config/evrun/evrun.yml"
for b in evrun-broker evrun-runner evrun-gateway "evrun-cli jobs"; do
  # shellcheck disable=SC2086
  run env -u EVRUN_CONFIG HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/xdg" "$bin"/$b --broker ipc://x --print-config
  [ "$b" = evrun-broker ] && run env -u EVRUN_CONFIG HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/xdg" "$bin/$b" --print-config
  check "$b: \$XDG_CONFIG_HOME/evrun/evrun.yml read" grep -qF "$tmp/xdg/evrun/evrun.yml:1:1: capacty: unknown setting" "$tmp/err"
  # shellcheck disable=SC2086
  run env -u EVRUN_CONFIG -u XDG_CONFIG_HOME HOME="$tmp/home" "$bin"/$b --broker ipc://x --print-config
  [ "$b" = evrun-broker ] && run env -u EVRUN_CONFIG -u XDG_CONFIG_HOME HOME="$tmp/home" "$bin/$b" --print-config
  check "$b: without XDG_CONFIG_HOME, ~/.config/evrun/evrun.yml read" grep -qF "$tmp/home/.config/evrun/evrun.yml:1:1: statedir: unknown setting" "$tmp/err"
  # shellcheck disable=SC2086
  run env EVRUN_CONFIG= HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/xdg" "$bin"/$b --broker ipc://x --print-config
  [ "$b" = evrun-broker ] && run env EVRUN_CONFIG= HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/xdg" "$bin/$b" --print-config
  check "$b: EVRUN_CONFIG empty: exit 2" [ $rc -eq 2 ]
  check "$b: EVRUN_CONFIG empty: said, and no other file read" \
    said "$b: EVRUN_CONFIG is set but empty: expected a settings file (unset it for the default)"
done
run env EVRUN_CONFIG= "$bin/evrun-runner" --broker ipc://x --config "$tmp/shared.yml" --print-config
check "EVRUN_CONFIG empty and --config: the flag's file" [ $rc -eq 0 ]

# tcp:// endpoints: a port past 65535 was bound as another one (the
# broker said "serving clients on tcp://127.0.0.1:99999")
for ep in tcp://127.0.0.1:99999 tcp://127.0.0.1 tcp://:7700 tcp://127.0.0.1:7700x; do
  refused "evrun-cli --broker $ep" "says what it expects" \
    "evrun-cli jobs: client_endpoint = \"$ep\" (from flag): expected tcp://HOST:PORT, PORT from 1 to 65535" \
    "$bin/evrun-cli" jobs --broker "$ep"
done
run timeout -k 10 10 "$bin/evrun-broker" --state-dir "$tmp/b" --client-endpoint tcp://127.0.0.1:99999
check "broker --client-endpoint :99999: refused before serving" \
  said "evrun-broker: client_endpoint = \"tcp://127.0.0.1:99999\" (from flag): expected tcp://HOST:PORT, PORT from 1 to 65535"
# an endpoint of the wrong form was said alone, after the other settings'
# errors, naming neither its setting nor where it came from, and
# --print-config took it
printf 'client_endpoint: foo\ntimeout_ms: x\n' > "$tmp/ep.yml"
run "$bin/evrun-cli" jobs --config "$tmp/ep.yml"
check "cli: an endpoint of the wrong form: with the other errors, where it came from" \
  said "evrun-cli jobs: timeout_ms = \"x\" (from file $tmp/ep.yml:2:13): expected a whole number from 1 to 3600000
evrun-cli jobs: client_endpoint = \"foo\" (from file $tmp/ep.yml:1:18): expected tcp://HOST:PORT or ipc://PATH"
for c in "evrun-cli jobs --broker tcp://h:0|evrun-cli jobs: client_endpoint = \"tcp://h:0\" (from flag): expected tcp://HOST:PORT, PORT from 1 to 65535" \
         "evrun-tail --all --events-endpoint ipc://|evrun-tail: events_endpoint = \"ipc://\" (from flag): no socket path" \
         "evrun-broker --runner-endpoint udp://x:1|evrun-broker: runner_endpoint = \"udp://x:1\" (from flag): expected tcp://HOST:PORT or ipc://PATH" \
         "evrun-runner --broker x:7701|evrun-runner: runner_endpoint = \"x:7701\" (from flag): expected tcp://HOST:PORT or ipc://PATH" \
         "evrun-gateway --broker ipc://$(printf '%0108d' 0)|evrun-gateway: client_endpoint = \"ipc://$(printf '%0108d' 0)\" (from flag): the socket path has 108 bytes, a unix socket path holds at most 107 (choose a shorter state directory, e.g. --state-dir /tmp/evrun)"; do
  IFS='|' read -r args line <<< "$c"
  refused "${args%% *} --print-config: an endpoint of the wrong form" "said" \
    "$line" \
    "$bin"/$args --print-config
done

# a YAML list for a comma-separated setting: say how to write it
printf 'labels: [gpu, linux]\n' > "$tmp/list.yml"
refused "labels: [a, b]" "how to write it" \
  "evrun-runner: $tmp/list.yml:1:9: labels: expected a single value, the items comma-separated (labels: a,b)" \
  "$bin/evrun-runner" --broker ipc://x --config "$tmp/list.yml" --print-config

# an empty item of a comma-separated list was dropped in silence
# (--labels 'a,,b' was a,b; EVRUN_EXECUTORS 'podman,' was podman): refused,
# naming the setting, where it came from and the item's place
for c in "--labels 'a,,b'|labels = \"a,,b\" (from flag): item 2" \
         "--labels ',a'|labels = \",a\" (from flag): item 1" \
         "--labels 'a, b, '|labels = \"a, b, \" (from flag): item 3" \
         "--executors 'process,,podman'|executors = \"process,,podman\" (from flag): item 2" \
         "--secrets-allow 'A_*,'|secrets_allow = \"A_*,\" (from flag): item 2"; do
  IFS='|' read -r args line <<< "$c"
  eval "run \"\$bin\"/evrun-runner --broker ipc://x $args --print-config"
  check "runner $args: exit 2" [ $rc -eq 2 ]
  check "runner $args: names the empty item" \
    said "evrun-runner: $line of the comma-separated list is empty (a comma too many?): give each item, as in a,b"
done
run env EVRUN_LABELS='gpu,,linux' "$bin/evrun-runner" --broker ipc://x --print-config
check "runner EVRUN_LABELS 'gpu,,linux': exit 2, naming the variable" \
  said "evrun-runner: labels = \"gpu,,linux\" (from env EVRUN_LABELS): item 2 of the comma-separated list is empty (a comma too many?): give each item, as in a,b"
printf 'labels: "gpu,,linux"\n' > "$tmp/empty.yml"
run "$bin/evrun-runner" --broker ipc://x --config "$tmp/empty.yml" --print-config
check "runner labels: 'gpu,,linux' in a file: exit 2, at its place" \
  said "evrun-runner: labels = \"gpu,,linux\" (from file $tmp/empty.yml:1:9): item 2 of the comma-separated list is empty (a comma too many?): give each item, as in a,b"
run "$bin/evrun-runner" --broker ipc://x --labels 'a, b' --executors 'podman, process' --print-config
check "runner --labels 'a, b': a space after a comma is no empty item" [ $rc -eq 0 ]
run "$bin/evrun-runner" --broker ipc://x --labels '' --print-config
check "runner --labels '': no labels, taken" [ $rc -eq 0 ]
refused_with "up --labels 'a,,b'" "names the item, before anything starts" \
  'evrun-cli up: --labels "a,,b": item 2 is empty (a comma too many?): give each item, as in a,b' \
  "$bin/evrun-cli" up --labels 'a,,b'
refused_with "up --executors 'process,'" "names the item" \
  'evrun-cli up: --executors: item 2 of "process," is empty (a comma too many?): give each item, as in podman,process' \
  "$bin/evrun-cli" up --executors 'process,'
[ -e "$tmp/state/bus" ] && check "up refused: no broker started" false

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

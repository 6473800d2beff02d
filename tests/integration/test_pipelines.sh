#!/usr/bin/env bash
# test_pipelines.sh BIN_DIR SRC_DIR [CASE...]: registered pipelines and
# schedules end to end: a real evrun-broker reading its pipelines_dir
# (STATE/pipelines), evrun-cli pipelines / start, inotify and SIGHUP
# reloads, schedules fired at the broker's clock (moved by the test-only
# EVRUN_TEST_CLOCK_OFFSET, so an every-minute schedule fires within
# seconds), and SIGKILLs of the broker across fire times.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init pl --podman

# reg NAME: writes stdin to the pipelines directory as NAME.yml
reg() { mkdir -p "$tmp/pipelines"; cat > "$tmp/pipelines/$1.yml"; }

# until_ok SECS CMD...: retries CMD every 0.1 s for SECS seconds
until_ok() {
  local secs=$1; shift
  for _ in $(seq 1 $((secs * 10))); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# offset_to S: the clock offset that makes the broker's clock read second
# S of its current minute now
offset_to() { local now; now=$(date +%s); echo $(( $1 - now % 60 )); }

njobs() { cli jobs --pipeline "$1" --json | grep -c '"job"'; }
njobs_is() { [ "$(njobs "$1")" -eq "$2" ]; }

# line NAME: the `pipelines --json` line of pipeline NAME
line() { cli pipelines --json | grep "\"pipeline\":\"$1\""; }
# has PATTERN [NAME]: `pipelines --json` (the line of NAME) matches PATTERN
has() { if [ -n "${2:-}" ]; then line "$2"; else cli pipelines --json; fi | grep -q -- "$1"; }
# has_text PATTERN: the `pipelines` table matches PATTERN
has_text() { cli pipelines | grep -q -- "$1"; }

case_registered() {
  fresh reg
  reg greet <<'YML'
pipeline: greet
image: localhost/evrun-busybox:latest
args:
  WHO: {default: world}
concurrency: 2
steps:
  - {name: hi, run: 'echo "v1 hello, $WHO"'}
YML
  reg broken <<'YML'
pipeline: broken
steps: 3
YML
  reg deploy <<'YML'
pipeline: deploy
image: localhost/evrun-busybox:latest
args:
  WHO: {default: world}
  TARGET: {description: where to}
steps:
  - {name: go, run: 'echo "$WHO to $TARGET"'}
YML
  reg zdup <<'YML'
pipeline: greet
image: x
steps: [{name: a, run: x}]
YML
  bus_broker && bus_runner pl-1 "" 2 && bus_wait_runners 1
  cli pipelines > "$tmp/list"
  check "registered: listed with its file and concurrency" grep -q "^greet  *greet.yml  *2  *0  *0" "$tmp/list"
  check "registered: a bad file's error at file:line:col" grep -q "broken.yml:2:8: steps: expected a list" "$tmp/list"
  check "registered: a second file with the name is refused" grep -q "/zdup.yml: pipeline \"greet\" is registered by .*/greet.yml already" "$tmp/list"
  check "registered: ... logged as refused, not as loaded" grep -q "pipeline file zdup.yml refused" "$tmp/broker.log"
  check "registered: ... (no loaded line)" bash -c "! grep -q 'pipeline file zdup.yml loaded' '$tmp/broker.log'"
  check "registered: its args, a default and a required one" grep -qx '    args: WHO="world", TARGET (required)' "$tmp/list"
  check "registered: ... in --json as the spec's args map" has '"args":{"WHO":{"default":"world"},"TARGET":{"description":"where to"}}' deploy
  cli start greet -a WHO=reg --follow > "$tmp/out" 2> "$tmp/err"
  check "registered: start --follow exits 0" [ $? -eq 0 ]
  check "registered: started by name with -a" grep -qx "hi | v1 hello, reg" "$tmp/out"
  local job
  job=$(sed -n 's/^job \([0-9A-Z]*\) accepted (pipeline greet).*/\1/p' "$tmp/out")
  check "registered: the job id printed" [ -n "$job" ]
  check "registered: pipelines shows the last job and its status" until_ok 5 has "\"last_job\":\"$job\",\"last_status\":\"succeeded\"" greet
  local j2
  j2=$(cli start greet -a WHO=quiet 2> "$tmp/err2")
  check "registered: start without --follow prints the id alone on stdout" grep -qx '[0-9A-Z]\{26\}' <<< "$j2"
  check "... the accepted line on stderr" grep -qx "job $j2 accepted (pipeline greet)" "$tmp/err2"
  cli start nope > "$tmp/out" 2>&1
  check "registered: an unknown name is refused (exit 1)" [ $? -eq 1 ]
  check "registered: ... saying so" grep -q "not_found: no registered pipeline \"nope\"" "$tmp/out"
  cli start broken > "$tmp/out" 2>&1
  check "registered: a name whose file never loaded is refused (exit 1)" [ $? -eq 1 ]
  check "registered: ... saying its file has errors, and the first" grep -q \
    "not_found: no registered pipeline \"broken\": its file broken.yml names it but has errors: .*/broken.yml:2:8: steps: expected a list" "$tmp/out"
  cli start greet -a NOPE=1 > "$tmp/out" 2>&1
  check "registered: an unknown arg is refused" grep -q "declares no arg \"NOPE\"" "$tmp/out"
  check "registered: ... named after the request made, start" grep -q "start: args.NOPE: the pipeline declares no arg" "$tmp/out"
  cli start deploy > "$tmp/out" 2>&1
  check "registered: a missing arg is refused, named after start" grep -q "start: args.TARGET: no default and not given" "$tmp/out"
  check "registered: ... not submit" bash -c "! grep -q 'submit:' $tmp/out"
  cli submit "$tmp/pipelines/greet.yml" > /dev/null 2>&1
  check "registered: submitting the file still works" [ $? -eq 0 ]

  # a bad edit keeps the last good version (inotify sees it)
  printf 'pipeline: greet\nsteps: [\n' > "$tmp/pipelines/greet.yml"
  check "inotify: the bad edit's error is listed" until_ok 5 has_text "greet.yml:3:1: YAML syntax error"
  check "inotify: ... and logged" grep -q "pipeline file greet.yml refused" "$tmp/broker.log"
  check "last good: still listed as greet" grep -q '"pipeline":"greet","file":"greet.yml"' <(cli pipelines --json)
  cli start greet --follow > "$tmp/out" 2>&1
  check "last good: start runs the last good version" grep -qx "hi | v1 hello, world" "$tmp/out"
  check "... and says so" grep -qx "evrun-cli start: note: pipeline greet's file greet.yml has errors (evrun-cli pipelines shows them): this job runs the last version of it that loaded" "$tmp/out"
  cli start greet --json > "$tmp/out" 2>&1
  check "... in the accepted answer's message (--json)" grep -q '"job":"[0-9A-Z]*","message":"pipeline greet'"'"'s file greet.yml has errors' "$tmp/out"
  # an edit with errors that renames the pipeline: a start of the new name says why not
  printf 'pipeline: greet2\nsteps: 3\n' > "$tmp/pipelines/greet.yml"
  check "renamed with errors: listed" until_ok 5 has_text "greet.yml:2:8: steps: expected a list"
  cli start greet2 > "$tmp/out" 2>&1
  check "renamed with errors: a start of the new name says its file has errors" grep -q \
    "not_found: no registered pipeline \"greet2\": its file greet.yml names it but has errors: .*/greet.yml:2:8: steps: expected a list" "$tmp/out"
  check "... the last good version's line is not taken for more errors" bash -c "! grep -q 'and more' '$tmp/out'"
  # a good edit and a new file are picked up without a signal
  sed 's/v1/v2/' > "$tmp/pipelines/greet.yml" <<'YML'
pipeline: greet
image: localhost/evrun-busybox:latest
args:
  WHO: {default: world}
steps:
  - {name: hi, run: 'echo "v1 hello, $WHO"'}
YML
  reg other <<'YML'
pipeline: other
image: localhost/evrun-busybox:latest
steps: [{name: o, run: echo other}]
YML
  check "inotify: a new file is registered" until_ok 5 has '"pipeline":"other"'
  check "inotify: the fixed file has no error" until_ok 5 bash -c "! '$bin/evrun-cli' pipelines | grep -q 'YAML syntax'"
  cli start greet --follow > "$tmp/out" 2>&1
  check "inotify: start runs the new version" grep -qx "hi | v2 hello, world" "$tmp/out"
  rm "$tmp/pipelines/other.yml"
  check "inotify: a removed file is unregistered" until_ok 5 bash -c "! '$bin/evrun-cli' pipelines --json | grep -q '\"pipeline\":\"other\"'"

  # SIGHUP: a change inotify cannot see (the file is a link to one outside)
  printf 'pipeline: linked\nimage: localhost/evrun-busybox:latest\nsteps: [{name: l, run: echo l1}]\n' > "$root/linked.yml"
  ln -s "$root/linked.yml" "$tmp/pipelines/linked.yml"
  check "sighup: the link is registered" until_ok 5 has '"pipeline":"linked"'
  sleep 0.3
  printf 'pipeline: linked2\nimage: localhost/evrun-busybox:latest\nsteps: [{name: l, run: echo l2}]\n' > "$root/linked.yml"
  sleep 1
  check "sighup: not seen without the signal" grep -q '"pipeline":"linked"' <(cli pipelines --json)
  kill -HUP "$broker_pid"
  check "sighup: the change is read on SIGHUP" until_ok 5 has '"pipeline":"linked2"'
  check "sighup: logged" grep -q "reload asked (SIGHUP)" "$tmp/broker.log"

  # the first file of a name removed: the second one registers it
  rm "$tmp/pipelines/greet.yml"
  check "dup: the second file takes the name" until_ok 5 clean_line zdup.yml '"pipeline":"greet"'
}

# clean_line FILE PATTERN: the file's `pipelines --json` line matches, without a load error
clean_line() {
  local l
  l=$(cli pipelines --json | grep "\"file\":\"$1\"")
  grep -q -- "$2" <<< "$l" && ! grep -q load_error <<< "$l"
}

ticker() {   # NAME [KEY: VALUE lines]: an every-minute pipeline in the pipelines directory
  local name=$1; shift
  reg "$name" <<YML
pipeline: $name
image: localhost/evrun-busybox:latest
schedule: "* * * * *"
$(printf '%s\n' "$@")
steps: [{name: t, run: echo tick}]
YML
}

case_schedule_fires() {
  fresh fire
  ticker tick "queue: {limit: 1}"
  # no runner: the fired job waits in the queue; the broker's clock reads :57
  local off
  off=$(offset_to 57)
  EVRUN_TEST_CLOCK_OFFSET=$off bus_broker || return
  check "fires: next run listed" grep -q '"schedule":"\* \* \* \* \*","next_run":[1-9]' <(line tick)
  check "fires: one job within seconds" until_ok 8 njobs_is tick 1
  check "fires: the fire is logged before its job is queued" \
    bash -c "grep -n 'schedule of tick fires\|(tick) queued' '$tmp/broker.log' | head -1 | grep -q fires"
  check "fires: pipelines shows the fire accepted" until_ok 3 has '"fire_status":"accepted"' tick
  local job
  job=$(line tick | sed -n 's/.*"fire_job":"\([0-9A-Z]*\)".*/\1/p')
  check "fires: the fire's job is the pipeline's job" grep -q "\"job\":\"$job\"" <(cli jobs --pipeline tick --json)
  # restart a minute later: a missed fire, caught up, refused by the queue limit (1 waits)
  kill "$broker_pid"; wait "$broker_pid" 2>/dev/null
  EVRUN_TEST_CLOCK_OFFSET=$((off + 60)) bus_broker || return
  check "fires: a fire over the queue limit is refused and shown" until_ok 5 has '"fire_status":"refused: queue_full: ' tick
  check "fires: ... and logged" grep -q "schedule of tick: fire refused" "$tmp/broker.log"
  check "fires: no second job" [ "$(njobs tick)" -eq 1 ]
}

# kill9_across CATCHUP: the broker killed before a fire time, started
# again two fire times later
kill9_across() {
  ticker late "catchup: $1"
  local off
  off=$(offset_to 30)
  EVRUN_TEST_CLOCK_OFFSET=$off bus_broker || return
  check "$1: registered" until_ok 3 has '"next_run":[1-9]' late
  kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
  EVRUN_TEST_CLOCK_OFFSET=$((off + 120)) bus_broker || return
  sleep 1.5
}

case_restart_catchup_one() {
  fresh one
  kill9_across one
  check "catchup one: exactly one job for the two missed fires" [ "$(njobs late)" -eq 1 ]
  check "catchup one: logged" grep -q "schedule of late: 2 fire times from .* missed while the broker was down: one job (catchup: one)" "$tmp/broker.log"
  check "catchup one: shown accepted" grep -q '"fire_status":"accepted"' <(line late)
}

case_restart_catchup_none() {
  fresh none
  kill9_across none
  check "catchup none: no job" [ "$(njobs late)" -eq 0 ]
  check "catchup none: the skip is logged" grep -q "schedule of late: skipped: 2 fire times from .* missed while the broker was down (catchup: none)" "$tmp/broker.log"
  check "catchup none: shown skipped" grep -q '"fire_status":"skipped: 2 fire times' <(line late)
}

case_restart_after_fire() {
  fresh after
  ticker once
  local off
  off=$(offset_to 57)
  EVRUN_TEST_CLOCK_OFFSET=$off bus_broker || return
  check "after fire: fired" until_ok 8 njobs_is once 1
  kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
  EVRUN_TEST_CLOCK_OFFSET=$off bus_broker || return   # the same clock: just after the fire
  sleep 1.5
  check "after fire: not repeated by the restart" [ "$(njobs once)" -eq 1 ]
  check "after fire: the next fire is the next minute" grep -q '"next_run":[1-9]' <(line once)
}

case_dir_refused() {
  fresh dirref
  mkdir -p "$root/shared-pl" && chmod 0777 "$root/shared-pl"
  "$bin/evrun-broker" --local --state-dir "$tmp" --pipelines-dir "$root/shared-pl" > "$tmp/out" 2>&1
  check "dir refused: a pipelines_dir others can write: exit 2" [ $? -eq 2 ]
  check "dir refused: ... saying why" grep -q "pipelines_dir: .*shared-pl.*writable" "$tmp/out"
  mkfifo "$tmp/pipelines/fifo.yml" 2>/dev/null || { mkdir -p "$tmp/pipelines"; mkfifo "$tmp/pipelines/fifo.yml"; }
  bus_broker || return
  check "dir refused: a FIFO in the directory does not block the broker" until_ok 5 has_text "fifo.yml: not a regular file"
}

# the broker killed between a fire's record and its job's commit (held
# by EVR_TEST_SUBMIT_DELAY_MS): the restart queues the recorded job, once
case_killed_mid_fire() {
  fresh mid
  ticker mid
  local off job
  off=$(offset_to 57)
  # killed between the submit journal's write and its flush, the write lost
  # as a power loss would lose it (libevr_unflushed.so holds the journal's
  # writes until its fdatasync): the fire is recorded, its job is not
  EVR_TEST_SUBMIT_DELAY_MS=4000 EVRUN_TEST_CLOCK_OFFSET=$off \
    LD_PRELOAD="$bin/libevr_unflushed.so" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    bus_broker || return
  check "mid fire: the fire is recorded" until_ok 8 grep -q "schedule of mid fires" "$tmp/broker.log"
  kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
  job=$(sed -n 's/.*schedule of mid fires (.*): job \([0-9A-Z]*\).*/\1/p' "$tmp/broker.log")
  check "mid fire: its job was not committed" bash -c "! grep -q '(mid) queued' '$tmp/broker.log'"
  EVRUN_TEST_CLOCK_OFFSET=$off bus_broker || return
  check "mid fire: the restart queues the recorded job" until_ok 5 njobs_is mid 1
  check "mid fire: ... under its recorded id" grep -q "\"job\":\"$job\"" <(cli jobs --pipeline mid --json)
  check "mid fire: ... saying so" grep -q "the fire at .* was recorded but its job $job not queued" "$tmp/broker.log"
  kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
  EVRUN_TEST_CLOCK_OFFSET=$off bus_broker || return
  sleep 1
  check "mid fire: a second restart adds nothing" [ "$(njobs mid)" -eq 1 ]
}

bus_script_cases "registered schedule_fires restart_catchup_one restart_catchup_none restart_after_fire killed_mid_fire dir_refused" "$@"
bus_script_end

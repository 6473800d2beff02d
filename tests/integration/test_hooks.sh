#!/usr/bin/env bash
# test_hooks.sh BIN_DIR SRC_DIR [CASE...]: the runner's lifecycle hooks
# (README "Lifecycle hooks") with evrun-runner --exec (the broker's case
# is test_bus_jobs.sh's hooks).  Hooks
# append to files of this host; the pipelines are host processes (the
# process executor): no podman needed.
set -u
bin=$1 src=$2
shift 2
tmp=$(mktemp -d /tmp/evr-hk-XXXXXX)
trap '[ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$tmp"' EXIT
fails=0 passes=0 case_name=

. "$(dirname "$0")/../support/check.sh"

# run NAME FILE [runner args...]: runs the pipeline with settings $tmp/NAME.set;
# sets $out $err $rc $job $state
run() {
  local name=$1 file=$2; shift 2
  state=$tmp/$name
  out=$tmp/$name.out err=$tmp/$name.err
  "$bin/evrun-runner" --exec "$file" --config "$tmp/$name.set" --state-dir "$state" \
    --executors process "$@" > "$out" 2> "$err"
  rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
}

# interrupt_when NAME FILE: runs $tmp/NAME.yml as run does (--grace 1) and
# sends it SIGINT once FILE is written; sets $rc $job $state
interrupt_when() {
  local name=$1 ready=$2
  state=$tmp/$name
  "$bin/evrun-runner" --exec "$tmp/$name.yml" --config "$tmp/$name.set" --state-dir "$state" \
    --executors process --grace 1 > "$tmp/$name.out" 2> "$tmp/$name.err" &
  local pid=$!
  for _ in $(seq 1 100); do [ -s "$ready" ] && break; sleep 0.1; done
  kill -INT "$pid"
  wait "$pid"; rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/$name.out" | head -n 1)
}

verified() { "$bin/evrun-replay" "$state" --verify > /dev/null; }
events() { "$bin/evrun-replay" "$state" --job "$job"; }

# settings NAME LOG: a hook per phase (two with priorities in PRE_EXECUTION,
# a tie kept in file order), each appending "PHASE name" to LOG
settings_all() {
  local log=$2
  cat > "$tmp/$1.set" <<EOF
hooks:
  - { phase: CLEANUP, name: clean, run: "echo CLEANUP clean >> $log" }
  - { phase: ON_ERROR, name: oops, run: "echo ON_ERROR oops >> $log" }
  - { phase: PRE_EXECUTION, name: third, priority: 10, run: "echo PRE_EXECUTION third >> $log" }
  - { phase: PRE_EXECUTION, name: first, priority: -5, run: "cat > $log.ctx; echo PRE_EXECUTION first >> $log" }
  - { phase: PRE_EXECUTION, name: second, run: "echo PRE_EXECUTION second >> $log" }
  - { phase: PRE_EXECUTION, name: second-tie, run: "echo PRE_EXECUTION second-tie >> $log" }
  - { phase: POST_EXECUTION, name: post, run: "echo POST_EXECUTION post >> $log" }
  - { phase: PRE_VALIDATION, name: prev, run: "echo PRE_VALIDATION prev >> $log" }
  - { phase: POST_VALIDATION, name: postv, run: "echo POST_VALIDATION postv >> $log" }
  - { phase: PRE_SOURCE_PREP, name: pres, run: "echo PRE_SOURCE_PREP pres >> $log" }
  - { phase: POST_SOURCE_PREP, name: posts, run: "echo POST_SOURCE_PREP posts >> $log" }
  - { phase: CLEANUP, name: clean-ctx, priority: 1, run: "cat > $log.end" }
EOF
}

two_steps() {   # two_steps NAME LAST: a process pipeline whose second step runs LAST
  cat > "$tmp/$1.yml" <<EOF
pipeline: $1
executor: process
steps:
  - name: one
    run: echo one
  - name: two
    run: $2
EOF
}

case_order() {   # every phase in order, by priority; ON_ERROR only after a failure
  settings_all order "$tmp/order.log"
  two_steps order "echo two"
  run order "$tmp/order.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  printf '%s\n' "PRE_VALIDATION prev" "POST_VALIDATION postv" "PRE_SOURCE_PREP pres" \
    "POST_SOURCE_PREP posts" "PRE_EXECUTION first" "PRE_EXECUTION second" \
    "PRE_EXECUTION second-tie" "PRE_EXECUTION third" "POST_EXECUTION post" \
    "CLEANUP clean" > "$tmp/order.want"
  check "every phase once, in order, by priority" cmp -s "$tmp/order.want" "$tmp/order.log"
  check "the context: job, pipeline, phase" grep -q "\"phase\":\"PRE_EXECUTION\",\"hook\":\"first\",\"job\":\"$job\",\"pipeline\":\"order\"" "$tmp/order.log.ctx"
  check "... the workspace (a host path)" grep -q "\"workspace\":\"$state/work/$job\"" "$tmp/order.log.ctx"
  check "... source: none" grep -q '"source":"none"' "$tmp/order.log.ctx"
  check "... one line of JSON, ending in a newline" [ "$(wc -l < "$tmp/order.log.ctx")" -eq 1 ]
  check "... one line of JSON, ending in a newline [(tail -c 1 order.log.ctx | od -An -c | tr -d ...]" [ "$(tail -c 1 "$tmp/order.log.ctx" | od -An -c | tr -d ' ')" = '\n' ]
  check "... no steps before POST_EXECUTION" sh -c "! grep -q '\"steps\"' '$tmp/order.log.ctx'"
  check "CLEANUP sees the steps and the status" grep -q '"status":"succeeded".*"steps":\[{"name":"one","status":"succeeded","exit_code":0}' "$tmp/order.log.end"
  events > "$tmp/order.job"
  check "a hook.finished per hook, with its duration" [ "$(grep -c 'hook.finished .*"status":"succeeded","duration_ms"' "$tmp/order.job")" -eq 11 ]
  check "hook.started before each" [ "$(grep -c 'hook.started ' "$tmp/order.job")" -eq 11 ]
  started_next() { grep -A1 '"name":"posts","status"' "$tmp/order.job" | grep -q job.started; }   # right after posts' line
  check "job.started between POST_SOURCE_PREP and PRE_EXECUTION" started_next
  check "the run shows hook lines" grep -q "^evrun-runner: hook first (PRE_EXECUTION) succeeded (" "$out"
  check "store verifies" verified
  # a failure: POST_EXECUTION, ON_ERROR, then CLEANUP
  settings_all orderfail "$tmp/orderfail.log"
  two_steps orderfail "exit 4"
  run orderfail "$tmp/orderfail.yml"
  check "failing job: exit 1" [ "$rc" -eq 1 ]
  check "POST_EXECUTION, ON_ERROR, CLEANUP after a failure" \
    [ "$(tail -n 3 "$tmp/orderfail.log" | tr '\n' '|')" = "POST_EXECUTION post|ON_ERROR oops|CLEANUP clean|" ]
  check "CLEANUP sees the failure" grep -q '"status":"failed"' "$tmp/orderfail.log.end"
  check "... a plain non-zero exit: exit_code, no reason" \
    grep -q '{"name":"two","status":"failed","exit_code":4}' "$tmp/orderfail.log.end"
  # a step's reason, when it has one (a timeout's, a skip's), is in its entry
  cat > "$tmp/why.set" <<EOF
hooks:
  - { phase: POST_EXECUTION, name: post, run: "cat > $tmp/why.ctx" }
EOF
  cat > "$tmp/why.yml" <<EOF
pipeline: why
executor: process
steps:
  - { name: lint, run: "exit 3", allow_failure: true }
  - { name: slow, run: "sleep 30", timeout: 1s }
  - { name: after, run: "echo never" }
EOF
  run why "$tmp/why.yml"
  check "POST_EXECUTION: a step failed with allow_failure is marked allowed" \
    grep -q '{"name":"lint","status":"failed","exit_code":3,"allowed":true}' "$tmp/why.ctx"
  check "POST_EXECUTION: a timed-out step's entry has its reason" \
    grep -q '{"name":"slow","status":"timed_out","exit_code":[0-9-]*,"reason":"timed out after 1000 ms' "$tmp/why.ctx"
  check "... a skipped step's too, with no exit_code" \
    grep -q '{"name":"after","status":"skipped","reason":"step slow before it did not succeed"}' "$tmp/why.ctx"
}

case_refuse() {   # a PRE hook refuses: its message is the job's reason; CLEANUP runs
  cat > "$tmp/refuse.set" <<EOF
hooks:
  - { phase: PRE_SOURCE_PREP, name: friday, run: "echo 'no deploys on friday' >&2; exit 1" }
  - { phase: PRE_SOURCE_PREP, name: after, priority: 5, run: "echo after >> $tmp/refuse.log" }
  - { phase: PRE_EXECUTION, name: pre, run: "echo pre >> $tmp/refuse.log" }
  - { phase: ON_ERROR, name: oops, run: "echo oops >> $tmp/refuse.log" }
  - { phase: CLEANUP, name: clean, run: "echo clean >> $tmp/refuse.log" }
EOF
  two_steps refuse "echo should not run"
  run refuse "$tmp/refuse.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  events > "$tmp/refuse.job"
  check "the job's reason is the hook's message" grep -qx "reason: hook friday (PRE_SOURCE_PREP): no deploys on friday" "$tmp/refuse.job"
  check "hook.finished refused" grep -q '"name":"friday","status":"refused".*"reason":"no deploys on friday"' "$tmp/refuse.job"
  check "steps skipped" grep -Eq "^two +skipped" "$tmp/refuse.job"
  check "nothing ran" sh -c "! grep -q 'should not run' '$out'"
  check "the phase's next hook and later PRE phases not run, ON_ERROR and CLEANUP run" \
    [ "$(tr '\n' '|' < "$tmp/refuse.log")" = "oops|clean|" ]
  check "store verifies" verified
  # the runner's own checks come after PRE_VALIDATION: a missing secret
  # fails the job the same way, CLEANUP after it
  cat > "$tmp/check.set" <<EOF
hooks:
  - { phase: PRE_VALIDATION, name: prev, run: "echo prev >> $tmp/check.log" }
  - { phase: POST_VALIDATION, name: postv, run: "echo postv >> $tmp/check.log" }
  - { phase: CLEANUP, name: clean, run: "echo clean >> $tmp/check.log" }
EOF
  printf 'pipeline: check\nexecutor: process\nsecrets: [EVR_HOOK_NO_SUCH_SECRET]\nsteps:\n  - name: s\n    run: "true"\n' > "$tmp/check.yml"
  run check "$tmp/check.yml"
  check "a missing secret: exit 1" [ "$rc" -eq 1 ]
  check "... the reason names it" grep -q "^reason: .*EVR_HOOK_NO_SUCH_SECRET" <(events)
  check "... after PRE_VALIDATION, before POST_VALIDATION; CLEANUP" [ "$(tr '\n' '|' < "$tmp/check.log")" = "prev|clean|" ]
  # control characters in a hook's message are escaped: no terminal escape
  # reaches the output or the reason; a backslash is escaped too, so the
  # four characters \x1b the hook wrote read \\x1b, not as its ESC
  cat > "$tmp/esc.set" <<'EOF'
hooks:
  - { phase: PRE_EXECUTION, name: esc, run: "printf 'bad \\033[31mred\\033[0m \\177 lit \\\\x1b end\\n' >&2; exit 1" }
EOF
  two_steps esc "true"
  run esc "$tmp/esc.yml"
  check "esc: exit 1" [ "$rc" -eq 1 ]
  check "... escaped in the reason" grep -qF 'reason: hook esc (PRE_EXECUTION): bad \x1b[31mred\x1b[0m \x7f lit \\x1b end' <(events)
  check "... and in the output" grep -qF 'hook esc (PRE_EXECUTION) refused: bad \x1b[31mred' "$out"
  check "... no raw ESC or DEL anywhere" sh -c "! grep -q \"\$(printf '[\\033\\177]')\" '$out'"
}

case_env_secret() {   # env and a secret a hook adds reach the steps; the secret masked
  cat > "$tmp/envsec.set" <<'EOF'
hooks:
  - phase: PRE_EXECUTION
    name: vault
    run: |
      cat > /dev/null
      echo '{"env": {"DEPLOY_ENV": "staging"}, "secrets": {"DB_PASSWORD": "hunter2-from-vault"}}'
EOF
  two_steps envsec 'echo "env=$DEPLOY_ENV pw=$DB_PASSWORD"'
  run envsec "$tmp/envsec.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "env reaches the step, the secret masked" grep -qx 'two | env=staging pw=\*\*\*' "$out"
  check "stored masked" [ "$("$bin/evrun-replay" "$state" --output "$job/two")" = "env=staging pw=***" ]
  check "the secret's value is nowhere in the state" sh -c "! grep -rq 'hunter2-from-vault' '$state'"
  check "the hooks file removed at the job's end" [ -z "$(ls -A "$state/hooks" 2>/dev/null)" ]
  check "store verifies" verified
  # an untrusted step of a process pipeline is refused: run as the runner's
  # user, it could read the hook's secret in STATE/hooks/JOB.json (it did)
  two_steps envsecu 'echo "pw=[${DB_PASSWORD-unset}] file=$(cat ../../hooks/*.json)"'
  sed -i 's/^  - name: two$/  - name: two\n    untrusted: true/' "$tmp/envsecu.yml"
  cp "$tmp/envsec.set" "$tmp/envsecu.set"
  run envsecu "$tmp/envsecu.yml"
  check "untrusted: exit 2" [ "$rc" -eq 2 ]
  check "... refused, saying why" grep -q "steps\[1\].untrusted: a process pipeline's steps run as the runner's user, who can read the job's secrets" "$err"
  check "... the secret nowhere in the output" sh -c "! grep -q 'hunter2-from-vault' '$out'"
  # a hook's message holding a secret: masked in the log and the reason
  cat > "$tmp/leak.set" <<'EOF'
hooks:
  - { phase: PRE_EXECUTION, name: vault, run: "echo '{\"secrets\": {\"PW\": \"leaky-pw-77\"}}'" }
  - { phase: POST_EXECUTION, name: loud, run: "echo 'login with leaky-pw-77 failed' >&2; exit 1" }
EOF
  run leak "$tmp/envsec.yml"
  check "leak: exit 1" [ "$rc" -eq 1 ]
  check "... the reason masked, naming the hook and its phase" \
    grep -qx "reason: hook loud (POST_EXECUTION): login with \*\*\* failed" <(events)
  check "... the value nowhere in the state" sh -c "! grep -rq 'leaky-pw-77' '$state'"
  # a hook that answers a secret, then fails naming it: its answer is not
  # taken, and the secret it printed as one is masked in its message too
  cat > "$tmp/own.set" <<'EOF'
hooks:
  - { phase: PRE_EXECUTION, name: vault, run: "echo '{\"secrets\": {\"PW\": \"own-pw-4711\"}}'; echo 'token own-pw-4711 expired' >&2; exit 1" }
EOF
  run own "$tmp/envsec.yml"
  check "own: exit 1" [ "$rc" -eq 1 ]
  check "... its answer's secret masked in the reason" \
    grep -qx "reason: hook vault (PRE_EXECUTION): token \*\*\* expired" <(events)
  check "... the value nowhere in the state or the output" \
    sh -c "! grep -rq 'own-pw-4711' '$state' '$out'"
  # a secret cut through where the hook's stderr is cut (1 KiB): none of it shows
  cat > "$tmp/straddle.set" <<'EOF'
hooks:
  - { phase: PRE_EXECUTION, name: vault, run: "echo '{\"secrets\": {\"PW\": \"leaky-pw-77\"}}'" }
  - { phase: POST_EXECUTION, name: loud, run: "printf '%01018d' 0 >&2; echo 'leaky-pw-77 more' >&2; exit 1" }
EOF
  run straddle "$tmp/envsec.yml"
  check "straddle: exit 1" [ "$rc" -eq 1 ]
  check "... the reason ends before the secret's first bytes" grep -Eq '"name":"loud","status":"failed".*"reason":"0{1018}\.\.\."' <(events)
  check "... no part of it in the state or the output" \
    sh -c "! grep -rq 'leaky' '$state' '$out'"
  # a secret the pipeline declares: masked in a PRE_VALIDATION hook's message,
  # which runs before the runner's own checks read the job's secrets
  cat > "$tmp/decl.set" <<'EOF'
hooks:
  - { phase: PRE_VALIDATION, name: early, run: "echo 'early sees decl-secret-88 here' >&2; exit 1" }
EOF
  printf 'pipeline: decl\nexecutor: process\nsecrets: [EVR_HK_DECL]\nsteps:\n  - name: s\n    run: "true"\n' > "$tmp/decl.yml"
  EVR_HK_DECL=decl-secret-88 run decl "$tmp/decl.yml" --secrets-allow EVR_HK_DECL
  check "decl: exit 1" [ "$rc" -eq 1 ]
  check "... the reason masked" grep -q "^reason: .*early sees \*\*\* here" <(events)
  check "... the value nowhere in the state or the output" \
    sh -c "! grep -rq 'decl-secret-88' '$state' '$out'"
  # a secret of several lines: each line alone masked, in output and a message
  cat > "$tmp/lines.set" <<'EOF'
hooks:
  - { phase: PRE_EXECUTION, name: vault, run: "printf '%s' '{\"secrets\": {\"KEY\": \"key-line-one-55\\nkey-line-two-66\"}}'" }
  - { phase: POST_EXECUTION, name: loud, run: "echo 'bad line key-line-two-66 here' >&2; exit 1" }
EOF
  two_steps lines 'echo "$KEY" | tail -n 1'
  run lines "$tmp/lines.yml"
  check "lines: exit 1" [ "$rc" -eq 1 ]
  check "... a line alone masked in output" grep -qx 'two | \*\*\*' "$out"
  check "... and in the reason" grep -qx "reason: hook loud (POST_EXECUTION): bad line \*\*\* here" <(events)
  check "... the lines nowhere in the state" sh -c "! grep -Erq 'line-one-55|line-two-66' '$state'"
  # a secret holding a tab, one of short lines, one ending in a space:
  # masked whole in a message, before its tabs and newlines are made
  # spaces and its end trimmed (they were made so first, and showed)
  cat > "$tmp/ws.set" <<'EOF'
hooks:
  - { phase: PRE_EXECUTION, name: vault, run: "printf '%s' '{\"secrets\": {\"T\": \"tab\\tsep-secret-31\", \"S\": \"ab\\ncd\", \"E\": \"end-space-secret-47 \"}}'" }
  - { phase: POST_EXECUTION, name: loud, run: "printf 'x tab\\tsep-secret-31 y ab\\ncd z end-space-secret-47 \\n' >&2; exit 1" }
EOF
  two_steps ws 'printf "%s|%s|%s\n" "$T" "$S" "$E"'
  run ws "$tmp/ws.yml"
  check "ws: exit 1" [ "$rc" -eq 1 ]
  check "... output masked" grep -qx 'two | \*\*\*|\*\*\*|\*\*\*' "$out"
  check "... the reason masked, one line" \
    grep -qx "reason: hook loud (POST_EXECUTION): x \*\*\* y \*\*\* z \*\*\*" <(events)
  check "... no part of them in the state or the output" \
    sh -c "! grep -Erq 'sep-secret-31|ab cd|end-space-secret-47' '$state' '$out'"
}

case_optional() {   # an optional hook failing does not fail the job; a required one does
  cat > "$tmp/optional.set" <<'EOF'
hooks:
  - { phase: POST_VALIDATION, name: notify, optional: true, run: "echo 'chat is down' >&2; exit 7" }
  - { phase: PRE_EXECUTION, name: bad-answer, optional: true, run: "echo not-json" }
EOF
  two_steps optional "echo two"
  run optional "$tmp/optional.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  events > "$tmp/optional.job"
  check "hook.finished failed, with its message" grep -q '"name":"notify","status":"failed".*"reason":"chat is down"' "$tmp/optional.job"
  check "a bad answer fails the hook" grep -q '"name":"bad-answer","status":"failed".*"reason":"printed text on stdout, not JSON: .*print other text to stderr (>&2)"' "$tmp/optional.job"
  check "the job succeeded" grep -q "status succeeded" "$tmp/optional.job"
  # the same, required: the job fails with its message, its steps skipped
  sed 's/optional: true, //' "$tmp/optional.set" | grep -v notify > "$tmp/required.set"
  run required "$tmp/optional.yml"
  check "required: exit 1" [ "$rc" -eq 1 ]
  check "... the job's reason" grep -q "^reason: hook bad-answer (PRE_EXECUTION): printed text on stdout" <(events)
  # a JSON answer gone wrong is named as such
  cat > "$tmp/typo.set" <<'EOF'
hooks:
  - { phase: PRE_EXECUTION, name: typo, run: "echo '{\"envs\": {}}'" }
EOF
  run typo "$tmp/optional.yml"
  check "typo: exit 1" [ "$rc" -eq 1 ]
  check "... the job's reason names the key" grep -q '^reason: hook typo (PRE_EXECUTION): answer: unknown key "envs"' <(events)
  # a timeout
  cat > "$tmp/slow.set" <<'EOF'
hooks:
  - { phase: PRE_VALIDATION, name: slow, timeout: 1, run: "sleep 30" }
EOF
  run slow "$tmp/optional.yml"
  check "timeout: exit 1" [ "$rc" -eq 1 ]
  check "... timed_out" grep -q '"name":"slow","status":"timed_out"' <(events)
  check "... the reason names the hook and its phase" \
    grep -qx "reason: hook slow (PRE_VALIDATION): timed out after 1 s (its timeout)" <(events)
}

case_after_steps() {   # after PRE_EXECUTION a hook's stdout is no answer: text never fails it
  cat > "$tmp/after.set" <<'EOF'
hooks:
  - { phase: POST_EXECUTION, name: notify, run: "echo ok" }
  - { phase: POST_EXECUTION, name: json, run: "echo '{\"env\": {\"X\": \"1\"}}'" }
  - { phase: POST_EXECUTION, name: much, run: "head -c 100000 /dev/zero | tr '\\0' x" }
  - { phase: ON_ERROR, name: page, run: "echo paged the on-call" }
  - { phase: CLEANUP, name: tidy, run: "echo removed 3 files" }
EOF
  two_steps after "echo fine"
  run after "$tmp/after.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  events > "$tmp/after.job"
  check "the job succeeded" grep -q "^job $job .* status succeeded" "$tmp/after.job"
  for h in notify json much tidy; do
    check "hook $h succeeded" grep -q "\"name\":\"$h\",\"status\":\"succeeded\"" "$tmp/after.job"
  done
  check "no reason" sh -c "! grep -q '^reason:' '$tmp/after.job'"
  # a failed job: the ON_ERROR hook's text changes nothing
  two_steps afterfail "exit 3"
  run after "$tmp/afterfail.yml"
  check "a failed step: exit 1" [ "$rc" -eq 1 ]
  events > "$tmp/afterfail.job"
  check "... ON_ERROR's hook succeeded" grep -q '"name":"page","status":"succeeded"' "$tmp/afterfail.job"
  check "... the reason is the step's" grep -qx "reason: step two failed (exit 3)" "$tmp/afterfail.job"
  # a failing ON_ERROR hook: the step's failure first, then the hook's
  printf 'hooks:\n  - { phase: ON_ERROR, name: page, run: "echo pager down >&2; exit 1" }\n' > "$tmp/onerr.set"
  run onerr "$tmp/afterfail.yml"
  check "ON_ERROR fails: exit 1" [ "$rc" -eq 1 ]
  check "... the step's failure, then the hook's" \
    grep -qx "reason: step two failed (exit 3); then hook page (ON_ERROR): pager down" <(events)
  # a failing POST_EXECUTION hook after steps that succeeded: the hook's alone
  printf 'hooks:\n  - { phase: POST_EXECUTION, name: notify, run: "exit 4" }\n' > "$tmp/postfail.set"
  run postfail "$tmp/after.yml"
  check "POST_EXECUTION fails: exit 1" [ "$rc" -eq 1 ]
  check "... the hook's reason" grep -qx "reason: hook notify (POST_EXECUTION): failed (exit 4)" <(events)
}

case_keep_running() {   # README's recipe: a process a hook leaves running outlives it
  cat > "$tmp/keep.set" <<EOF
hooks:
  - phase: POST_EXECUTION
    name: keep
    run: |
      setsid -f sh -c 'echo up; exec sh -c "echo \\\$\\\$ > $tmp/keep.pid; exec sleep 30" >/dev/null 2>&1 </dev/null' 2>/dev/null | head -n 1 >/dev/null
EOF
  two_steps keep "true"
  run keep "$tmp/keep.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  local pid
  pid=$(cat "$tmp/keep.pid" 2>/dev/null)
  check "the process started" [ -n "$pid" ]
  check "... and still runs after the hook and the job ended" kill -0 "${pid:-0}"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
}

case_bad_settings() {   # a bad hooks list: exit 2, FILE:LINE:COL
  printf 'hooks:\n  - { phase: PRE_BUILD, run: x }\n' > "$tmp/bad.set"
  run bad "$tmp/optional.yml"
  check "exit 2" [ "$rc" -eq 2 ]
  check "names the place and the phases" grep -q "^evrun-runner: $tmp/bad.set:2:14: hooks\[0\].phase: unknown phase: expected one of PRE_VALIDATION" "$err"
  printf 'hooks:\n  - { phase: CLEANUP, run: x, name: a }\n  - { phase: CLEANUP, run: y, name: a }\n' > "$tmp/dup.set"
  "$bin/evrun-runner" --config "$tmp/dup.set" --print-config > "$tmp/dup.out" 2>&1
  check "duplicate name: exit 2" [ $? -eq 2 ]
  check "... said" grep -q "hooks\[1\].name: \"a\" is the name of hooks\[0\] (line 2) too" "$tmp/dup.out"
  # every problem at once, with the settings' own
  printf 'capacity: two\nhooks:\n  - { phase: POST_EXECUTON, run: y, timeout: 2h, optional: maybe }\n  - { phase: CLEANUP, command: z }\n' > "$tmp/many.set"
  "$bin/evrun-runner" --config "$tmp/many.set" --print-config > "$tmp/many.out" 2>&1
  check "many problems: exit 2" [ $? -eq 2 ]
  check "... the setting's" grep -q "^evrun-runner: capacity = \"two\" (from file $tmp/many.set:1:11)" "$tmp/many.out"
  check "... the phase's, with did you mean" grep -q "^evrun-runner: $tmp/many.set:3:14: hooks\[0\].phase: .*did you mean POST_EXECUTION?" "$tmp/many.out"
  check "... the timeout's" grep -q "^evrun-runner: $tmp/many.set:3:46: hooks\[0\].timeout: expected whole seconds from 1 to 3600" "$tmp/many.out"
  check "... optional's, on the same hook" grep -q "^evrun-runner: $tmp/many.set:3:60: hooks\[0\].optional: expected true or false" "$tmp/many.out"
  check "... the next hook's" grep -q "^evrun-runner: $tmp/many.set:4:23: hooks\[1\].command: unknown field; did you mean run?" "$tmp/many.out"
  settings_all shown "$tmp/shown.log"
  "$bin/evrun-runner" --config "$tmp/shown.set" --print-config > "$tmp/shown.out"
  check "--print-config shows them in their order" grep -q "^  - { phase: PRE_EXECUTION, name: first, priority: -5, timeout: 60, optional: false, run: " "$tmp/shown.out"
}

case_crash() {   # kill -9 while a hook runs; --recover: finished hooks once, the killed one again
  cat > "$tmp/crash.set" <<EOF
hooks:
  - { phase: PRE_EXECUTION, name: vault, run: "cat >/dev/null; echo vault >> $tmp/crash.log; echo '{\"secrets\": {\"TOKEN\": \"tok-9f8e7d\"}, \"env\": {\"WHERE\": \"here\"}}'" }
  - { phase: PRE_EXECUTION, name: slow, priority: 1, run: "echo start >> $tmp/crash.log; sleep 2; echo end >> $tmp/crash.log" }
  - { phase: CLEANUP, name: clean, run: "echo clean >> $tmp/crash.log" }
EOF
  two_steps crash 'echo "token=$TOKEN where=$WHERE"'
  state=$tmp/crash
  "$bin/evrun-runner" --exec "$tmp/crash.yml" --config "$tmp/crash.set" --state-dir "$state" \
    --executors process > "$tmp/crash.out" 2> "$tmp/crash.err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "^start" "$tmp/crash.log" 2>/dev/null && break; sleep 0.1; done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/crash.out" | head -n 1)
  sleep 2.5   # the killed hook's sleep ends: its shell, killed with the runner, writes nothing
  check "the hooks file kept, owner-only" [ "$(stat -c %a "$state/hooks/$job.json" 2>/dev/null)" = 600 ]
  "$bin/evrun-runner" --recover --executors process --config "$tmp/crash.set" --state-dir "$state" \
    > "$tmp/crash.r" 2>&1
  check "--recover: exit 0" [ $? -eq 0 ]
  check "the finished hook ran once, the killed one again, to its end once" \
    [ "$(tr '\n' '|' < "$tmp/crash.log")" = "vault|start|start|end|clean|" ]
  events > "$tmp/crash.job"
  check "one hook.finished per hook" [ "$(grep -c 'hook.finished ' "$tmp/crash.job")" -eq 3 ]
  check "the recovered step has the hook's env and masks its secret" \
    [ "$("$bin/evrun-replay" "$state" --output "$job/two")" = "token=*** where=here" ]
  check "the secret's value is nowhere in the state" sh -c "! grep -rq 'tok-9f8e7d' '$state'"
  check "store verifies" verified
}

case_crash_group() {   # kill -9 while the hook's foreground command runs: the next runner kills it first
  local d=$tmp/cgroup.d
  mkdir -p "$d"
  # the hook notes each run, and whether the last run's foreground command
  # (its pid in fg.pid) still runs (not ended, nor a zombie) as it starts
  cat > "$tmp/cgroup.set" <<EOF
hooks:
  - phase: PRE_EXECUTION
    name: slow
    run: |
      echo run >> $d/hookcount
      p=\$(cat $d/fg.pid 2>/dev/null)
      st=\$(sed 's/.*) //' /proc/\$p/stat 2>/dev/null | cut -c1)
      [ -z "\$p" ] || [ -z "\$st" ] || [ "\$st" = Z ] || echo "overlap \$p" >> $d/hookcount
      sh -c 'echo \$\$ > $d/fg.pid; exec sleep 3'
      echo '{}'
EOF
  two_steps cgroup "echo two"
  state=$tmp/cgroup
  "$bin/evrun-runner" --exec "$tmp/cgroup.yml" --config "$tmp/cgroup.set" --state-dir "$state" \
    --executors process > "$tmp/cgroup.out" 2> "$tmp/cgroup.err" &
  local pid=$! old st
  for _ in $(seq 1 100); do [ -s "$d/fg.pid" ] && break; sleep 0.1; done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/cgroup.out" | head -n 1)
  old=$(cat "$d/fg.pid")
  st=$(sed 's/.*) //' "/proc/$old/stat" 2>/dev/null | cut -c1)
  check "the hook's foreground command outlives the killed runner (the parent-death signal is its shell's only)" \
    [ -n "$st" -a "$st" != Z ]
  check "its process group is recorded in the state directory" [ -n "$(ls "$state/hooks/"*.pg 2>/dev/null)" ]
  "$bin/evrun-runner" --recover --executors process --config "$tmp/cgroup.set" --state-dir "$state" \
    > "$tmp/cgroup.r" 2>&1
  check "--recover: exit 0" [ $? -eq 0 ]
  check "the hook ran twice, the old run's command gone before the second began" \
    [ "$(tr '\n' '|' < "$d/hookcount")" = "run|run|" ]
  st=$(sed 's/.*) //' "/proc/$old/stat" 2>/dev/null | cut -c1)
  check "... the old command ended" [ -z "$st" -o "$st" = Z ]
  check "... said" grep -q "^evrun-runner: killed the process group of 1 hook a killed runner left running" "$tmp/cgroup.r"
  check "no record left" [ -z "$(ls "$state/hooks/"*.pg 2>/dev/null)" ]
  check "one hook.finished, succeeded" [ "$(events | grep -c 'hook.finished .*"name":"slow","status":"succeeded"')" -eq 1 ]
  check "store verifies" verified
}

case_crash_after_steps() {   # killed in a hook after the steps, past the pipeline's timeout: no timeout after the restart
  cat > "$tmp/cas.set" <<EOF
hooks:
  - { phase: POST_EXECUTION, name: post, timeout: 20, run: "echo post-start >> $tmp/cas.log; sleep 4; echo post-end >> $tmp/cas.log" }
  - { phase: ON_ERROR, name: oops, run: "echo oops >> $tmp/cas.log" }
  - { phase: CLEANUP, name: clean, run: "cat > $tmp/cas.ctx; echo clean >> $tmp/cas.log" }
EOF
  cat > "$tmp/cas.yml" <<EOF
pipeline: cas
executor: process
timeout: 2s
steps:
  - { name: one, run: "true" }
EOF
  state=$tmp/cas
  "$bin/evrun-runner" --exec "$tmp/cas.yml" --config "$tmp/cas.set" --state-dir "$state" \
    --executors process > "$tmp/cas.out" 2> "$tmp/cas.err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "^post-start" "$tmp/cas.log" 2>/dev/null && break; sleep 0.1; done
  sleep 2.5   # the pipeline's timeout (2 s) passes while the hook runs, which it does not count
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/cas.out" | head -n 1)
  "$bin/evrun-runner" --recover --executors process --config "$tmp/cas.set" --state-dir "$state" \
    > "$tmp/cas.r" 2>&1
  check "--recover: exit 0" [ $? -eq 0 ]
  check "no timeout said" not grep -q "timed out" "$tmp/cas.r"
  check "succeeded" grep -q "^job $job .* status succeeded" <(events)
  check "the killed hook again, no ON_ERROR" [ "$(tr '\n' '|' < "$tmp/cas.log")" = "post-start|post-start|post-end|clean|" ]
  check "CLEANUP's context says succeeded" grep -q '"executor":"process","status":"succeeded"' "$tmp/cas.ctx"
  check "store verifies" verified
}

case_crash_cancel() {   # a cancel, then kill -9 while the stopped hook lingers: recorded stopped, not run again
  cat > "$tmp/ccan.set" <<EOF
hooks:
  - { phase: PRE_SOURCE_PREP, name: slow, run: "trap '' TERM; echo start >> $tmp/ccan.log; sleep 6; echo end >> $tmp/ccan.log" }
  - { phase: CLEANUP, name: clean, run: "echo clean >> $tmp/ccan.log" }
EOF
  two_steps ccan "echo should not run"
  state=$tmp/ccan
  "$bin/evrun-runner" --exec "$tmp/ccan.yml" --config "$tmp/ccan.set" --state-dir "$state" \
    --executors process --grace 5 > "$tmp/ccan.out" 2> "$tmp/ccan.err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "^start" "$tmp/ccan.log" 2>/dev/null && break; sleep 0.1; done
  kill -INT "$pid"
  for _ in $(seq 1 50); do grep -q "^evrun-runner: cancelling" "$tmp/ccan.out" && break; sleep 0.1; done
  sleep 0.3   # the cancel recorded; the hook ignores SIGTERM, its grace is 5 s
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/ccan.out" | head -n 1)
  "$bin/evrun-runner" --recover --executors process --config "$tmp/ccan.set" --state-dir "$state" \
    > "$tmp/ccan.r" 2>&1
  check "--recover: exit 1 (cancelled)" [ $? -eq 1 ]
  events > "$tmp/ccan.job"
  check "cancelled" grep -q "^job $job .* status cancelled" "$tmp/ccan.job"
  check "the killed hook not run again, CLEANUP ran" [ "$(tr '\n' '|' < "$tmp/ccan.log")" = "start|clean|" ]
  check "... recorded stopped, saying why" grep -q '"name":"slow","status":"stopped".*"reason":"the job was cancelled (the runner that ran it was killed; not run again)"' "$tmp/ccan.job"
  check "a hook.finished for each hook.started" [ "$(grep -c 'hook.started ' "$tmp/ccan.job")" -eq "$(grep -c 'hook.finished ' "$tmp/ccan.job")" ]
  check "store verifies" verified
}

case_cancel() {   # a cancel stops a PRE hook (SIGTERM, then SIGKILL after --grace); CLEANUP runs
  cat > "$tmp/cancel.set" <<EOF
hooks:
  - { phase: PRE_SOURCE_PREP, name: slow, timeout: 300, run: "echo \$\$ > $tmp/cancel.pid; trap '' TERM; sleep 300 & echo \$! > $tmp/cancel.child; wait" }
  - { phase: PRE_SOURCE_PREP, name: after, priority: 5, run: "echo after >> $tmp/cancel.log" }
  - { phase: PRE_EXECUTION, name: pre, run: "echo pre >> $tmp/cancel.log" }
  - { phase: POST_EXECUTION, name: post, run: "echo post >> $tmp/cancel.log" }
  - { phase: ON_ERROR, name: oops, run: "echo oops >> $tmp/cancel.log" }
  - { phase: CLEANUP, name: clean, run: "echo clean >> $tmp/cancel.log" }
EOF
  two_steps cancel "echo should not run"
  state=$tmp/cancel
  "$bin/evrun-runner" --exec "$tmp/cancel.yml" --config "$tmp/cancel.set" --state-dir "$state" \
    --executors process --grace 1 > "$tmp/cancel.out" 2> "$tmp/cancel.err" &
  local pid=$! ended=no
  for _ in $(seq 1 100); do [ -s "$tmp/cancel.child" ] && break; sleep 0.1; done
  kill -INT "$pid"
  # the hook ignores SIGTERM: only the SIGKILL after the grace (1 s) ends it,
  # long before its own timeout (300 s)
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || { ended=yes; break; }; sleep 0.1; done
  check "the runner ends after the cancel (the hook did not hold it)" [ "$ended" = yes ]
  [ "$ended" = yes ] || kill -9 "$pid"
  wait "$pid"; rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/cancel.out" | head -n 1)
  check "exit 1" [ "$rc" -eq 1 ]
  local p gone=yes
  for p in $(cat "$tmp/cancel.pid" "$tmp/cancel.child"); do   # gone, or a zombie not reaped yet
    for _ in $(seq 1 50); do
      [ ! -e "/proc/$p" ] || [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] && break
      sleep 0.1
    done
    [ ! -e "/proc/$p" ] || [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] || gone=no
  done
  check "the hook's shell and its child are gone" [ "$gone" = yes ]
  events > "$tmp/cancel.job"
  check "the job ends cancelled" grep -q "^job $job .* status cancelled" "$tmp/cancel.job"
  check "hook.finished stopped, with why" grep -q '"name":"slow","status":"stopped".*"reason":"the job was cancelled"' "$tmp/cancel.job"
  check "steps skipped" grep -Eq "^two +skipped" "$tmp/cancel.job"
  check "nothing ran" sh -c "! grep -q 'should not run' '$tmp/cancel.out'"
  check "the phase's next hook and PRE_EXECUTION not run, ON_ERROR not run; POST_EXECUTION and CLEANUP run" \
    [ "$(tr '\n' '|' < "$tmp/cancel.log" 2>/dev/null)" = "post|clean|" ]
  check "store verifies" verified
}

case_timeout() {   # the pipeline's timeout covers the hooks before the steps and stops them
  cat > "$tmp/tmo.set" <<EOF
hooks:
  - { phase: PRE_SOURCE_PREP, name: slow, run: "echo \$\$ > $tmp/tmo.pid; sleep 20" }
  - { phase: ON_ERROR, name: oops, run: "echo oops >> $tmp/tmo.log" }
  - { phase: CLEANUP, name: clean, run: "cat > $tmp/tmo.ctx; echo clean >> $tmp/tmo.log" }
EOF
  cat > "$tmp/tmo.yml" <<EOF
pipeline: tmo
executor: process
timeout: 3s
steps:
  - { name: one, run: echo should not run }
  - { name: last, when: always, run: echo always ran }
EOF
  local t0=$SECONDS
  run tmo "$tmp/tmo.yml" --grace 1
  check "exit 1" [ "$rc" -eq 1 ]
  check "ended well before the hook's 20 s" [ $((SECONDS - t0)) -lt 10 ]
  events > "$tmp/tmo.job"
  check "timed out" grep -q "^job $job .* status timed_out" "$tmp/tmo.job"
  check "the reason names the hook" \
    grep -qx "reason: the pipeline's timeout (3 s) passed while running hook slow (PRE_SOURCE_PREP)" "$tmp/tmo.job"
  check "hook.finished stopped" grep -q '"name":"slow","status":"stopped".*"reason":"the job timed out"' "$tmp/tmo.job"
  check "the hook's shell is gone" sh -c "! kill -0 \$(cat '$tmp/tmo.pid') 2>/dev/null"
  check "no workspace yet: every step skipped, the always step too" \
    [ "$(grep -Ec '^(one|last) +skipped' "$tmp/tmo.job")" -eq 2 ]
  check "ON_ERROR and CLEANUP ran" [ "$(tr '\n' '|' < "$tmp/tmo.log")" = "oops|clean|" ]
  # the workspace was never made: none named (a path that did not exist)
  check "CLEANUP's context: no workspace" grep -q '"workspace":null' "$tmp/tmo.ctx"
  check "store verifies" verified
  # the same in PRE_EXECUTION (after job.started): the hook is stopped,
  # and the always step runs (the workspace is there)
  sed 's/PRE_SOURCE_PREP/PRE_EXECUTION/' "$tmp/tmo.set" > "$tmp/tmoexec.set"
  : > "$tmp/tmo.log"
  t0=$SECONDS
  run tmoexec "$tmp/tmo.yml" --grace 1
  check "PRE_EXECUTION: exit 1" [ "$rc" -eq 1 ]
  check "... ended well before the hook's 20 s" [ $((SECONDS - t0)) -lt 10 ]
  events > "$tmp/tmoexec.job"
  check "... the reason names the hook" \
    grep -qx "reason: the pipeline's timeout (3 s) passed while running hook slow (PRE_EXECUTION)" "$tmp/tmoexec.job"
  check "... the always step ran" grep -qx "last | always ran" "$out"
  check "... the other skipped" grep -Eq "^one +skipped" "$tmp/tmoexec.job"
  check "... ON_ERROR and CLEANUP ran" [ "$(tr '\n' '|' < "$tmp/tmo.log")" = "oops|clean|" ]
  check "... CLEANUP's context: the workspace" grep -q "\"workspace\":\"$state/work/$job\"" "$tmp/tmo.ctx"
}

case_held() {   # a hook exits, a process it moved out of its group holds its stdout: timed out, said
  cat > "$tmp/held.set" <<EOF
hooks:
  - phase: PRE_EXECUTION
    name: leaky
    timeout: 2
    run: |
      setsid sh -c 'echo \$\$ > $tmp/held.pid; exec sleep 30' 2>/dev/null &
      while [ ! -s $tmp/held.pid ]; do sleep 0.01; done
      echo '{}'
EOF
  two_steps held "echo should not run"
  run held "$tmp/held.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  events > "$tmp/held.job"
  check "hook.finished timed_out" grep -q '"name":"leaky","status":"timed_out"' "$tmp/held.job"
  check "the reason says what held it and what to do" grep -qxF "reason: hook leaky (PRE_EXECUTION): timed out after 2 s (its timeout): it had exited (exit 0), but a process it left running outside its process group kept its stdout open; give that process other output (CMD >/dev/null 2>&1 </dev/null)" "$tmp/held.job"
  check "the steps skipped" grep -Eq "^two +skipped" "$tmp/held.job"
  local pid
  pid=$(cat "$tmp/held.pid" 2>/dev/null)
  check "the process out of its group left running" kill -0 "${pid:-0}"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  check "store verifies" verified
}

case_unkept() {   # an answer that cannot be kept for a restart is not taken: the hook fails, saying why
  # the job's hooks file cannot be written: its temporary name is a directory
  cat > "$tmp/unkept.set" <<EOF
hooks:
  - phase: PRE_VALIDATION
    name: block
    run: |
      mkdir -p "$tmp/unkept/hooks/\$(sed 's/.*"job":"\([0-9A-Z]*\)".*/\1/').json.tmp"
  - phase: PRE_EXECUTION
    name: vault
    run: |
      echo '{"secrets": {"TOKEN": "unkept-tok-31"}, "env": {"WHERE": "here"}}'
EOF
  two_steps unkept 'echo "token=$TOKEN where=$WHERE"'
  run unkept "$tmp/unkept.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  events > "$tmp/unkept.job"
  check "hook.finished failed" grep -q '"name":"vault","status":"failed"' "$tmp/unkept.job"
  check "the reason says the answer is not taken, where and why" grep -qxF "reason: hook vault (PRE_EXECUTION): its answer is not taken: it could not be kept for a restart in $tmp/unkept/hooks/$job.json: open $tmp/unkept/hooks/$job.json.tmp: Is a directory" "$tmp/unkept.job"
  check "the steps skipped" grep -Eq "^two +skipped" "$tmp/unkept.job"
  check "the secret's value is nowhere in the state or the output" \
    sh -c "! grep -rq 'unkept-tok-31' '$state' '$out'"
  check "store verifies" verified
}

case_after_reason() {   # a hook failing after the steps: the job's own failure, or its cancel, stays first
  cat > "$tmp/areason.set" <<EOF
hooks:
  - phase: CLEANUP
    name: clean
    run: echo clean broke >&2; exit 5
EOF
  two_steps areason "exit 3"
  run areason "$tmp/areason.yml"
  check "a CLEANUP hook after a failed step: exit 1" [ "$rc" -eq 1 ]
  check "... the step's failure first" grep -qxF "reason: step two failed (exit 3); then hook clean (CLEANUP): clean broke" <(events)
  cat > "$tmp/acancel.set" <<EOF
hooks:
  - phase: POST_EXECUTION
    name: post
    run: echo post broke >&2; exit 4
EOF
  two_steps acancel "echo \$\$ > $tmp/acancel.pid; exec sleep 30"
  interrupt_when acancel "$tmp/acancel.pid"
  check "a POST_EXECUTION hook after a cancel: exit 1" [ "$rc" -eq 1 ]
  events > "$tmp/acancel.job"
  check "... cancelled" grep -q "^job $job .* status cancelled" "$tmp/acancel.job"
  check "... the cancel's reason first" grep -qxF "reason: interrupted (SIGINT); then hook post (POST_EXECUTION): post broke" "$tmp/acancel.job"
  check "store verifies" verified
}

case_cancel_pre_exec() {   # a cancel during PRE_EXECUTION: the always step still runs
  cat > "$tmp/cpe.set" <<EOF
hooks:
  - { phase: PRE_EXECUTION, name: slow, run: "echo \$\$ > $tmp/cpe.pid; sleep 20" }
EOF
  cat > "$tmp/cpe.yml" <<EOF
pipeline: cpe
executor: process
on_error: { run: echo on_error ran }
steps:
  - { name: one, run: echo should not run }
  - { name: last, when: always, run: echo always ran }
EOF
  interrupt_when cpe "$tmp/cpe.pid"
  check "exit 1" [ "$rc" -eq 1 ]
  events > "$tmp/cpe.job"
  check "cancelled" grep -q "^job $job .* status cancelled" "$tmp/cpe.job"
  check "the always step ran" grep -qx "last | always ran" "$tmp/cpe.out"
  check "the other skipped" grep -Eq "^one +skipped" "$tmp/cpe.job"
  check "on_error skipped (a cancel is no error)" grep -Eq "^on_error +skipped" "$tmp/cpe.job"
  check "store verifies" verified
}

case_killed() {   # a hook a signal ended says which signal, not "exit 137"
  cat > "$tmp/kill.set" <<EOF
hooks:
  - { phase: PRE_VALIDATION, name: gate, run: "kill -KILL \$\$" }
EOF
  two_steps kill "echo should not run"
  run kill "$tmp/kill.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  events > "$tmp/kill.job"
  check "the reason names the signal" grep -qx "reason: hook gate (PRE_VALIDATION): refused the job: killed by SIGKILL (signal 9)" "$tmp/kill.job"
  check "... as --exec prints it" grep -qF 'hook gate (PRE_VALIDATION) refused: refused the job: killed by SIGKILL (signal 9) (' "$out"
  # what it said on stderr follows the signal; after the steps: failed
  cat > "$tmp/killerr.set" <<EOF
hooks:
  - { phase: POST_EXECUTION, name: post, run: "echo half done >&2; kill -TERM \$\$" }
  - { phase: CLEANUP, name: clean, run: "kill -KILL \$\$" }
EOF
  two_steps killerr "true"
  run killerr "$tmp/killerr.yml"
  check "killerr: exit 1" [ "$rc" -eq 1 ]
  events > "$tmp/killerr.job"
  check "... its stderr after the signal" grep -q '"name":"post","status":"failed".*"reason":"killed by SIGTERM (signal 15): half done"' "$tmp/killerr.job"
  check "... failed: killed by" grep -q '"name":"clean","status":"failed".*"reason":"failed: killed by SIGKILL (signal 9)"' "$tmp/killerr.job"
  check "... nowhere exit 137 or 143" sh -c "! grep -Eq 'exit (137|143)' '$tmp/killerr.job' '$out'"
}

cases=${*:-order refuse killed env_secret optional after_steps keep_running bad_settings crash crash_group cancel timeout cancel_pre_exec held unkept after_reason crash_after_steps crash_cancel}
# shellcheck disable=SC2086
run_cases $cases

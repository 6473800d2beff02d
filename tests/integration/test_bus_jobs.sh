#!/usr/bin/env bash
# test_bus_jobs.sh BIN_DIR SRC_DIR [CASE...]: what a job does through the
# broker, end to end (test_bus.sh has the bus itself): control flow,
# matrix steps and outputs, lifecycle hooks, the job's control channel
# (registered secrets, follow-up jobs), a runner refusing network: host.
# Real evrun-broker and evrun-runner processes on ipc:// sockets in a
# temporary directory, real podman (the "podman" fixture); each case
# starts its own broker and runners in a fresh state directory.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init bjb --podman
. "$src/tests/integration/gw_lib.sh"

field() {   # field JOB NAME: a field of the job's status
  cli status "$1" --json | sed -n "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"
}

# A runner whose operator denies the host's network (--host-network deny)
# ends a dispatched job with a step of network: host failed, saying which
# step and which setting, before any step runs.
case_host_network() {
  fresh host_network
  bus_broker && bus_runner hn-deny "" 1 --host-network deny && bus_wait_runners 1
  pipeline hn <<'YML'
pipeline: hn
image: localhost/evrun-busybox:latest
steps:
  - {name: first, run: echo ran}
  - {name: local, network: host, run: echo host}
YML
  local j
  j=$(submit "$tmp/hn.yml")
  check "the job fails" [ "$(wait_job "$j")" = failed ]
  check "its reason names the step and the setting" bash -c "'$bin/evrun-cli' status $j | \
grep -q 'step local: network: host is refused by this runner (its host_network setting is deny)'"
  check "no step ran" bash -c "! '$bin/evrun-cli' logs $j 2>/dev/null | grep -q ran"
}

# allow_failure, when and on_error through the broker (README "Control
# flow"): shown in run --follow --events, status, jobs, logs and evrun-tail
case_flow() {
  fresh flow
  bus_broker && bus_runner fl-1 "" 2 && bus_wait_runners 1
  pipeline flow <<'YML'
pipeline: flow
image: localhost/evrun-busybox:latest
on_error:
  run: 'echo "oe $EVRUN_FAILED_STEPS|$EVRUN_FAILED_REASON_BUILD"'
steps:
  - name: lint
    run: exit 2
    allow_failure: true
  - name: build
    run: exit 3
  - name: test
    run: echo never
  - name: report
    when: on_failure
    run: 'echo "failed: $EVRUN_FAILED_STEPS"'
  - name: cleanup
    when: always
    run: echo cleaned
YML
  cli run "$tmp/flow.yml" --follow --events > "$tmp/flow.out" 2>&1
  check "failing flow: exit 1" [ $? -eq 1 ]
  local j
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/flow.out")
  check "follow: failed (allowed)" grep -q "^lint -- step.finished: failed (allowed) (exit 2" "$tmp/flow.out"
  check "follow: on_failure step ran" grep -qx "report | failed: build" "$tmp/flow.out"
  check "follow: always step ran" grep -qx "cleanup | cleaned" "$tmp/flow.out"
  check "follow: on_error with the failed steps" grep -qx "on_error | oe build|failed (exit 3)" "$tmp/flow.out"
  check "status failed" [ "$(field "$j" status)" = failed ]
  check "status: the allowed failure counted" grep -q "^status    failed (1 step failed (allowed))" <(cli status "$j")
  check "follow: its last line counts it too" grep -q "^job $j failed (1 step failed (allowed)): step build failed" "$tmp/flow.out"
  check "jobs: the allowed failure counted" grep -q "^$j .*failed .*1 failed (allowed)$" <(cli jobs)
  check "steps: on_error counted" grep -q "^steps     6/6 done" <(cli status "$j")
  timeout -k 10 20 "$bin/evrun-tail" --job "$j" --events > "$tmp/flow.tail" 2>&1
  check "tail: failed (allowed)" grep -q "^$j/lint -- step.finished: failed (allowed)" "$tmp/flow.tail"
  # only an allowed failure: the job succeeds, on_error is skipped
  pipeline flowok <<'YML'
pipeline: flowok
image: localhost/evrun-busybox:latest
on_error:
  run: echo never
steps:
  - name: lint
    run: exit 2
    allow_failure: true
  - name: test
    run: echo tested
YML
  cli run "$tmp/flowok.yml" --follow > "$tmp/flowok.out" 2>&1
  check "allowed only: exit 0" [ $? -eq 0 ]
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/flowok.out")
  check "allowed only: succeeded, saying so" grep -q "^status    succeeded (1 step failed (allowed))" <(cli status "$j")
  check "allowed only: run --follow's last line says so" grep -qx "job $j succeeded (1 step failed (allowed))" "$tmp/flowok.out"
  check "allowed only: on_error never ran" bash -c "! grep -q never '$tmp/flowok.out'"
  # a cancel: the always step runs, on_error does not
  pipeline flowcancel <<'YML'
pipeline: flowcancel
image: localhost/evrun-busybox:latest
on_error:
  run: echo never
steps:
  - name: long
    run: echo begun; sleep 60
  - name: cleanup
    when: always
    run: echo cleaned
YML
  j=$(submit "$tmp/flowcancel.yml")
  for _ in $(seq 1 100); do cli logs "$j" | grep -q begun && break; sleep 0.1; done
  cli cancel "$j" > /dev/null
  check "cancel: cancelled" [ "$(wait_job "$j" 30)" = cancelled ]
  check "cancel: the always step ran" grep -qx "cleanup | cleaned" <(cli logs "$j")
  check "cancel: on_error did not" bash -c "! '$bin/evrun-cli' logs $j | grep -q never"
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
  check "runner log verifies" "$bin/evrun-replay" "$tmp/r-fl-1" --verify
  sleep 1
  check "no leftovers" no_leftovers "$j"
}

case_matrix_outputs() {   # matrix steps and step outputs through the broker
  fresh mo
  bus_broker && bus_runner mo-1 "" 2 && bus_wait_runners 1
  pipeline mo <<'YML'
pipeline: matrix-outputs
image: localhost/evrun-busybox:latest
steps:
  - name: build
    matrix: {OS: [linux, bsd]}
    run: |
      echo "built for $OS"
      mkdir -p out && echo "$OS" > "out/$OS.txt"
      echo "BIN=app-$OS" >> "$EVRUN_OUTPUT"
    artifacts: [out]
  - name: join
    needs: [build]
    run: echo "got $EVRUN_OUT_BUILD_OS_LINUX_BIN $EVRUN_OUT_BUILD_OS_BSD_BIN"
YML
  local job
  job=$(submit "$tmp/mo.yml")
  check "job succeeded" [ "$(wait_job "$job")" = succeeded ]
  check "each combination ran with its value" grep -qx "build\[OS=bsd\] | built for bsd" <(cli logs "$job")
  check "logs --step takes a matrix step's name" \
    [ "$(cli logs "$job" --step 'build[OS=linux]')" = "build[OS=linux] | built for linux" ]
  check "logs --step: the written name, all its combinations" \
    [ "$(cli logs "$job" --step build | sort | tr '\n' ' ')" = "build[OS=bsd] | built for bsd build[OS=linux] | built for linux " ]
  check "the dependent got both outputs" grep -qx "join | got app-linux app-bsd" <(cli logs "$job")
  check "status shows the outputs" grep -qx "outputs   build\[OS=linux\]/BIN=app-linux" <(cli status "$job")
  check "status --json too" grep -q '"outputs":{"build\[OS=linux\]/BIN":"app-linux","build\[OS=bsd\]/BIN":"app-bsd"}' <(cli status "$job" --json)
  check "outputs are events in the broker's archive" \
    grep -q '"type":"step.outputs".*"step":"build\[OS=bsd\]".*"outputs":{"BIN":"app-bsd"}' \
    <("$bin/evrun-replay" "$tmp/broker" --events --json)
  # right after the job's end: a file not at the broker yet is waited for
  check "a matrix step's artifacts through the broker" \
    cli artifacts "$job" --step 'build[OS=bsd]' -o "$tmp/art" > /dev/null
  check "... the file fetched" [ -f "$tmp/art/build[OS=bsd]/out/bsd.txt" ]
  check "artifacts --step: the written name, all its combinations" \
    cli artifacts "$job" --step build -o "$tmp/art-all" > /dev/null
  check "... both fetched" \
    test -f "$tmp/art-all/build[OS=bsd]/out/bsd.txt" -a -f "$tmp/art-all/build[OS=linux]/out/linux.txt"
  check "broker archive verifies" "$bin/evrun-replay" "$tmp/broker" --verify
  check "no leftovers" no_leftovers "$job"
}

# Lifecycle hooks of a runner's settings through the broker: hook.started /
# hook.finished stored and shown by evrun-tail, a secret a hook adds masked,
# a PRE_VALIDATION refusal as the job's reason, CLEANUP after it.
case_hooks() {
  fresh hooks
  cat > "$tmp/hooks.set" <<EOF
hooks:
  - { phase: PRE_VALIDATION, name: gate, run: "grep -q '\"pipeline\":\"nope\"' && { echo 'pipeline nope is frozen' >&2; exit 1; }; exit 0" }
  - { phase: PRE_EXECUTION, name: vault, run: "echo '{\"secrets\": {\"TOKEN\": \"bus-tok-51x\"}}'" }
  - { phase: CLEANUP, name: clean, run: "cat > /dev/null; echo clean >> $tmp/clean.log" }
EOF
  bus_broker && bus_runner hk-1 "" 2 --executors process --config "$tmp/hooks.set" && bus_wait_runners 1
  printf 'pipeline: yes\nexecutor: process\nsteps:\n  - name: s\n    run: echo "token=$TOKEN"\n' > "$tmp/yes.yml"
  sed 's/^pipeline: yes/pipeline: nope/' "$tmp/yes.yml" > "$tmp/nope.yml"
  local j k
  j=$(submit "$tmp/yes.yml")
  check "the job succeeds" [ "$(wait_job "$j")" = succeeded ]
  check "the hook's secret masked" grep -q "token=\*\*\*$" <(cli logs "$j")
  timeout -k 10 20 "$bin/evrun-tail" --job "$j" > "$tmp/tail.out" 2>&1
  check "evrun-tail shows the hooks from the broker" \
    grep -q "^$j/hook vault (PRE_EXECUTION) | succeeded (" "$tmp/tail.out"
  k=$(submit "$tmp/nope.yml")
  check "refused: failed" [ "$(wait_job "$k")" = failed ]
  check "... the hook's message is the reason" grep -q "pipeline nope is frozen" <(cli status "$k")
  timeout -k 10 20 "$bin/evrun-tail" --job "$k" > "$tmp/tailk.out" 2>&1
  check "... hook.finished refused at the broker" grep -q "hook gate (PRE_VALIDATION) | refused: pipeline nope is frozen" "$tmp/tailk.out"
  check "CLEANUP ran for both" [ "$(grep -c clean "$tmp/clean.log")" -eq 2 ]
  check "the secret's value is in no state" sh -c "! grep -rq 'bus-tok-51x' '$tmp/broker' '$tmp/r-hk-1'"
}

case_job_secret() {   # issue 17: a registered secret masked in the store, `logs` and evrun-tail
  fresh jobsec
  bus_broker && bus_runner js-1 "" 2 --executors podman,process && bus_wait_runners 1
  pipeline jobsec <<'YML'
pipeline: jobsec
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: |
      V="dyn$(echo 4711 | tr 0-9 a-j)Zq"
      printf '%s\n' "$V" | evrun-job secret DEPLOY_KEY || exit 3
      echo "value: $V"
      printf 'split: %s' "$(echo "$V" | cut -c1-4)"; sleep 0.3; echo "$V" | cut -c5-
  - name: use
    needs: [make]
    run: |
      echo "later: $DEPLOY_KEY"
YML
  sed -e 's|^image: .*|executor: process|' -e 's|^pipeline: jobsec|pipeline: jobsecp|' \
    "$tmp/jobsec.yml" > "$tmp/jobsecp.yml"
  "$bin/evrun-tail" --pipeline jobsec > "$tmp/tail.out" 2> "$tmp/tail.err" &
  local tpid=$! j p sec=dynehbbZq
  sleep 0.5
  j=$(submit "$tmp/jobsec.yml")
  p=$(submit "$tmp/jobsecp.yml")
  check "podman job succeeded" [ "$(wait_job "$j")" = succeeded ]
  check "process job succeeded" [ "$(wait_job "$p")" = succeeded ]
  for _ in $(seq 1 50); do grep -q "later" "$tmp/tail.out" && break; sleep 0.1; done
  kill "$tpid"; wait "$tpid" 2>/dev/null
  cli logs "$j" > "$tmp/logs.out" 2>&1
  cli logs "$p" > "$tmp/logsp.out" 2>&1
  check "logs: masked" grep -q "value: \*\*\*$" "$tmp/logs.out"
  check "logs: masked across chunks" grep -q "split: \*\*\*$" "$tmp/logs.out"
  check "logs: the next step's variable masked" grep -q "later: \*\*\*$" "$tmp/logs.out"
  check "process: logs masked" grep -q "value: \*\*\*$" "$tmp/logsp.out"
  check "tail: masked" grep -q "^$j/make | value: \*\*\*$" "$tmp/tail.out"
  check "tail: masked across chunks" grep -q "^$j/make | split: \*\*\*$" "$tmp/tail.out"
  check "tail: when the secret was registered (its name)" \
    grep -q "^$j/make -- secret.registered: DEPLOY_KEY$" "$tmp/tail.out"
  check "the broker's store has secret.registered" \
    sh -c "'$bin/evrun-replay' '$tmp/broker' --job '$j' | grep -q 'secret.registered .*\"name\":\"DEPLOY_KEY\"'"
  check "never shown" sh -c "! grep -q '$sec' '$tmp/tail.out' '$tmp/logs.out' '$tmp/logsp.out'"
  check "never in the broker's nor the runner's files" sh -c "! grep -rqa '$sec' '$tmp'"
  check "nor a half of it" sh -c "! grep -rqa 'ehbbZq' '$tmp'"
  for _ in $(seq 1 50); do [ -z "$(ls -A "$tmp/r-js-1/job-secrets" 2>/dev/null)" ] && break; sleep 0.1; done
  check "its file removed once the job is cleaned up" [ -z "$(ls -A "$tmp/r-js-1/job-secrets" 2>/dev/null)" ]
  check "nothing left in podman" no_leftovers "$j"
}

case_job_trigger() {   # issue 17: a step starts registered pipelines through the broker
  fresh jobtrig
  mkdir -p "$tmp/pipelines"
  for n in deploy notify other failing; do
    cat > "$tmp/pipelines/$n.yml" <<YML
pipeline: $n
image: localhost/evrun-busybox:latest
args:
  ENV: { default: dev }
steps:
  - name: go
    run: |
      echo "$n ENV=\$ENV"; echo "where=\$ENV" >> "\$EVRUN_OUTPUT"
      [ $n != deploy ] || sleep 1
      [ $n != failing ]
  - name: after
    needs: [go]
    run: "true"
YML
  done
  bus_broker && bus_runner jt-1 "" 3 && bus_wait_runners 1
  pipeline parent <<'YML'
pipeline: parent
image: localhost/evrun-busybox:latest
triggers: [deploy, notify, failing]
steps:
  - name: build
    run: |
      ids=$(evrun-job trigger deploy notify -a ENV=prod --wait); echo "wait: $?"
      echo "children: $(echo $ids)"
      evrun-job trigger other; echo "other: $?"
      evrun-job result deploy
      evrun-job result 01ZZZZZZZZZZZZZZZZZZZZZZZZ; echo "unknown: $?"
      evrun-job running deploy; echo "running after: $?"
      evrun-job trigger deploy -a ENV=again >/dev/null
      evrun-job running deploy; echo "running now: $?"
      evrun-job trigger failing --wait >/dev/null; echo "failing wait: $?"
      evrun-job result other; echo "not allowed: $?"
      evrun-job result notify >/dev/null; echo "notify: $?"
      evrun-job running failing; echo "failing running: $?"
YML
  local j ids c st
  j=$(submit "$tmp/parent.yml")
  st=$(wait_job "$j")
  check "parent succeeded" [ "$st" = succeeded ]
  [ "$st" = succeeded ] || job_report "$j"
  cli logs "$j" > "$tmp/logs.out" 2>&1
  ids=$(sed -n 's/.*children: \([0-9A-Z ]*\)$/\1/p' "$tmp/logs.out")
  check "two child ids printed" [ "$(echo $ids | wc -w)" -eq 2 ]
  check "a pipeline not in triggers: refused, exit 2" grep -q "other: 2" "$tmp/logs.out"
  check "... saying why" grep -q "pipeline other is not in the triggers: of pipeline parent (deploy, notify, failing)" "$tmp/logs.out"
  check "--wait: both succeeded, exit 0" grep -q "wait: 0$" "$tmp/logs.out"
  check "--wait: a failed child, exit 1" grep -q "failing wait: 1$" "$tmp/logs.out"
  check "--wait: the failed child's end says why" grep -q "evrun-job: job [0-9A-Z]*: failed: step .* failed (exit " "$tmp/logs.out"
  check "result PIPELINE: its newest job, status and outputs" \
    grep -q '"status":"succeeded".*"pipeline":"deploy"' "$tmp/logs.out"
  check "result: outputs" grep -q '"outputs":{"go/where":"prod"}' "$tmp/logs.out"
  check "result: the steps' exit codes" \
    grep -q '"steps":\[{"name":"go","status":"succeeded","exit_code":0},{"name":"after","status":"succeeded","exit_code":0}\]' "$tmp/logs.out"
  check "result of an unknown job: exit 1" grep -q "unknown: 1$" "$tmp/logs.out"
  check "running: none, exit 1" grep -q "running after: 1$" "$tmp/logs.out"
  check "running: one, exit 0" grep -q "running now: 0$" "$tmp/logs.out"
  check "result of a pipeline not in triggers: refused" grep -q "not allowed: 2$" "$tmp/logs.out"
  check "result of a pipeline with a job: exit 0" grep -q "notify: 0$" "$tmp/logs.out"
  check "running: a finished job is none, exit 1" grep -q "failing running: 1$" "$tmp/logs.out"
  for c in $ids; do
    st=$(wait_job "$c")
    check "child $c succeeded" [ "$st" = succeeded ]
    check "child $c: parent in its status" grep -q "^parent    $j (step build)" <(cli status "$c")
    check "child $c: its args" grep -q "ENV=prod" <(cli logs "$c")
  done
  cli status "$j" > "$tmp/pstatus.out"
  check "parent status: its children listed" [ "$(grep -c "^\(children  \|          \)0" "$tmp/pstatus.out")" -eq 4 ]
  for c in $ids; do check "parent status: child $c" grep -q "$c" "$tmp/pstatus.out"; done
  cli jobs --tree > "$tmp/tree.out" 2>/dev/null
  check "jobs --tree: the parent at the left" grep -q "^$j  parent " "$tmp/tree.out"
  check "jobs --tree: its 4 children under it, indented" [ "$(grep -c "^  0[0-9A-Z]* *  \(deploy\|notify\|failing\) " "$tmp/tree.out")" -eq 4 ]
  check "jobs --tree: each job once" [ "$(grep -c "^ *0" "$tmp/tree.out")" -eq 5 ]
  child_next() { grep -A1 "^$j" "$tmp/tree.out" | grep -q "^  0"; }   # the line after the parent's
  check "jobs --tree: the child right after its parent" child_next
  check "the parent's jobs: 5 (parent, 2 deploy, notify, failing)" [ "$(cli jobs 2>/dev/null | grep -c "^0")" -eq 5 ]
  check "children ran deploy and notify" sh -c "cli_out=\$('$bin/evrun-cli' jobs 2>/dev/null); echo \"\$cli_out\" | grep -q deploy && echo \"\$cli_out\" | grep -q notify"
  check "other never started" sh -c "! '$bin/evrun-cli' jobs 2>/dev/null | grep -q other"
}

case_trigger_depth() {   # a pipeline that triggers itself: the chain stops 8 deep
  fresh trigdepth
  mkdir -p "$tmp/pipelines"
  cat > "$tmp/pipelines/loop.yml" <<'YML'
pipeline: loop
executor: process
triggers: [loop]
steps:
  - name: again
    run: |
      evrun-job trigger loop; echo "trigger: $?"
YML
  # concurrency 1, triggering itself with --wait: the child could never start
  cat > "$tmp/pipelines/w.yml" <<'YML'
pipeline: w
executor: process
concurrency: 1
triggers: [w]
args:
  EVR_SECOND: { default: "" }
steps:
  - name: again
    run: |
      [ -n "$EVR_SECOND" ] && exit 0
      evrun-job trigger w -a EVR_SECOND=1 --wait; echo "wait: $?"
YML
  bus_broker && bus_runner td-1 "" 4 --executors process && bus_wait_runners 1
  local j n last
  j=$(cli start loop --json | sed -n 's/.*"job":"\([0-9A-Z]*\)".*/\1/p')
  check "the first job started" [ -n "$j" ]
  for _ in $(seq 1 300); do
    [ "$(cli jobs --pipeline loop 2>/dev/null | grep -c "^0")" -ge 9 ] \
      && [ "$(cli jobs --pipeline loop 2>/dev/null | grep -Ec "^0.* (queued|running) ")" -eq 0 ] && break
    sleep 0.1
  done
  sleep 1   # a tenth job would have come by now
  n=$(cli jobs --pipeline loop 2>/dev/null | grep -c "^0")
  check "9 jobs: the first and 8 follow-ups, no more" [ "$n" -eq 9 ]
  last=$(cli jobs --pipeline loop 2>/dev/null | grep "^0" | head -n 1 | cut -d' ' -f1)
  cli logs "$last" > "$tmp/last.out" 2>&1
  check "the 8th follow-up's trigger refused, exit 2" grep -q "trigger: 2$" "$tmp/last.out"
  check "... saying why" grep -q "job $last is follow-up 8 of a chain: at most 8 deep" "$tmp/last.out"
  check "every job succeeded" [ "$(cli jobs --pipeline loop 2>/dev/null | grep -c " succeeded ")" -eq 9 ]
  j=$(cli start w --json | sed -n 's/.*"job":"\([0-9A-Z]*\)".*/\1/p')
  check "w: the job ends (no deadlock)" [ "$(wait_job "$j" 30)" = succeeded ]
  cli logs "$j" > "$tmp/w.out" 2>&1
  check "w: --wait refused, exit 2" grep -q "wait: 2$" "$tmp/w.out"
  check "w: ... saying why" grep -q "trigger: --wait: pipeline w has concurrency: 1, which this job holds" "$tmp/w.out"
  check "w: nothing started" [ "$(cli jobs --pipeline w 2>/dev/null | grep -c "^0")" -eq 1 ]
}

case_job_trigger_crash() {   # the runner killed (-9) after the broker took a trigger, before the step heard
  fresh jobtrigc
  mkdir -p "$tmp/pipelines"
  cat > "$tmp/pipelines/deploy.yml" <<'YML'
pipeline: deploy
image: localhost/evrun-busybox:latest
steps:
  - name: go
    run: echo deployed
YML
  bus_broker && EVR_TEST_PAUSE_AT=triggered bus_runner jc-1 "" 2 && bus_wait_runners 1
  pipeline tparent <<'YML'
pipeline: tparent
image: localhost/evrun-busybox:latest
triggers: [deploy]
steps:
  - name: build
    run: |
      id=$(evrun-job trigger deploy) || exit 3
      echo "child: $id"
YML
  local j id n st
  j=$(submit "$tmp/tparent.yml")
  for _ in $(seq 1 200); do grep -q "test pause at triggered" "$tmp/runner-jc-1.log" && break; sleep 0.1; done
  check "paused once the broker took the trigger" grep -q "test pause at triggered" "$tmp/runner-jc-1.log"
  kill -9 "$runner_pid_jc_1"
  bus_runner jc-1 "" 2
  st=$(wait_job "$j" 90)
  check "parent succeeded after the restart" [ "$st" = succeeded ]
  [ "$st" = succeeded ] || job_report "$j"
  id=$(cli logs "$j" 2>/dev/null | sed -n 's/.*child: \([0-9A-Z]*\)$/\1/p')
  n=$(cli jobs --pipeline deploy 2>/dev/null | grep -c "^0")
  check "one deploy job, not two" [ "$n" -eq 1 ]
  check "the step printed that job" grep -q "^$id " <(cli jobs --pipeline deploy 2>/dev/null)
  check "the broker saw the trigger again: known already" grep -q "job $id of deploy triggered .*: known already" "$tmp/broker.log"
  check "the child succeeded" [ "$(wait_job "$id")" = succeeded ]
}

case_job_trigger_file() {   # evrun-job trigger --file: a pipeline file of the job's ci_source, through the broker
  fresh jobtrigf
  mkdir -p "$tmp/fci"
  cat > "$tmp/fci/deploy.yml" <<'YML'
pipeline: fdeploy
image: localhost/evrun-busybox:latest
args:
  WHERE: { description: where to }
steps:
  - name: go
    run: echo "fdeploy to $WHERE"
YML
  printf 'pipeline: fbad\nimage: localhost/evrun-busybox:latest\nsteps:\n  - name: x\n    runn: echo\n' > "$tmp/fci/bad.yml"
  bus_broker && bus_runner jf-1 "" 2 && bus_wait_runners 1
  pipeline fparent <<'YML'
pipeline: fparent
image: localhost/evrun-busybox:latest
ci_source: { copy: fci }
triggers: ["file:*.yml"]
steps:
  - name: build
    run: |
      id=$(evrun-job trigger --file deploy.yml -a WHERE=eu --wait); echo "wait: $?"
      echo "child: $id"
      evrun-job trigger --file bad.yml; echo "bad: $?"
      evrun-job trigger --file missing.yml; echo "missing: $?"
YML
  local j id
  j=$(submit "$tmp/fparent.yml")
  check "parent succeeded" [ "$(wait_job "$j")" = succeeded ]
  cli logs "$j" > "$tmp/flogs.out" 2>&1
  id=$(sed -n 's/.*child: \([0-9A-Z]*\)$/\1/p' "$tmp/flogs.out")
  check "the child's id printed" [ -n "$id" ]
  check "--wait: the child succeeded, exit 0" grep -q "wait: 0$" "$tmp/flogs.out"
  check "the child ran the file, with its args" grep -q "fdeploy to eu" <(cli logs "$id")
  check "the child's parent in its status" grep -q "^parent    $j (step build)" <(cli status "$id")
  check "the broker took it as a file of the source" grep -q "job $id of fdeploy (a file of its source) triggered by job $j step build" "$tmp/broker.log"
  check "a bad file refused, exit 2" grep -q "bad: 2$" "$tmp/flogs.out"
  check "... with its line and column" grep -q "refused: trigger: bad.yml:5:5: .*runn" "$tmp/flogs.out"
  check "a missing file refused, exit 2" grep -q "missing: 2$" "$tmp/flogs.out"
  check "... saying where it looked" grep -q "file missing.yml: not in the job's ci_source" "$tmp/flogs.out"
  check "one job of fdeploy" [ "$(cli jobs --pipeline fdeploy 2>/dev/null | grep -c "^0")" -eq 1 ]
  # a spec from a runner the parent does not run on: refused by the broker
  "$bin/evr-test-bus" rogue-trigger "ipc://$tmp/bus/runners" rogue-1 "$j" > "$tmp/rogue.out" 2>&1
  check "a rogue runner's file trigger refused" \
    grep -q "^refused conflict: job $j does not run on runner rogue-1" "$tmp/rogue.out"
  check "... nothing started" sh -c "! '$bin/evrun-cli' jobs 2>/dev/null | grep -q rogue"
  # a parent the broker never saw (made up): refused too
  "$bin/evr-test-bus" rogue-trigger "ipc://$tmp/bus/runners" rogue-2 01ARZ3NDEKTSV4RRFFQ69G5FAV \
    > "$tmp/rogue2.out" 2>&1
  check "a made-up parent refused (not_found)" grep -q "^refused not_found: job 01ARZ3NDEKTSV4RRFFQ69G5FAV is not known to the broker as a job of runner rogue-2 (no such job)" "$tmp/rogue2.out"
  check "... nothing started" sh -c "! '$bin/evrun-cli' jobs 2>/dev/null | grep -q rogue"
}

# run --follow, logs and evrun-tail say which step failed and why without
# --events (a newcomer's first failing job): a retried step's attempts, a
# timed-out step's reason (host commands: no podman needed)
case_failure_lines() {
  fresh fail_lines
  bus_broker && bus_runner fln-1 "" 1 --executors process && bus_wait_runners 1
  pipeline fln <<'YML'
pipeline: fln
executor: process
steps:
  - name: flaky
    retry: {on: [failed], max: 1}
    run: echo "try $EVRUN_ATTEMPT"; [ "$EVRUN_ATTEMPT" = 2 ]
  - name: slow
    timeout: 1s
    run: sleep 30
  - name: after
    run: echo never
YML
  cli run "$tmp/fln.yml" --follow > "$tmp/fln.out" 2>&1
  check "failing job: exit 1" [ $? -eq 1 ]
  local j
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/fln.out")
  check "follow: the failed attempt" grep -qx "flaky > failed (exit 1)" "$tmp/fln.out"
  check "follow: its retry" grep -qx "flaky > retrying (attempt 2)" "$tmp/fln.out"
  check "follow: the timeout and its reason" \
    grep -qx "slow > timed_out (exit 143): timed out after 1000 ms" "$tmp/fln.out"
  check "follow: no line for a success" bash -c "! grep -q 'flaky > succeeded' '$tmp/fln.out'"
  check "logs: the same line" grep -qx "slow > timed_out (exit 143): timed out after 1000 ms" <(cli logs "$j")
  timeout -k 10 20 "$bin/evrun-tail" --job "$j" > "$tmp/fln.tail" 2>&1
  check "tail: the same, prefixed" grep -qx "$j/slow > timed_out (exit 143): timed out after 1000 ms" "$tmp/fln.tail"
  check "follow: the job's end names the failed step" \
    grep -qx "job $j failed: step slow timed_out (exit 143): timed out after 1000 ms" "$tmp/fln.out"
  check "status: the same reason" \
    grep -qx "reason    step slow timed_out (exit 143): timed out after 1000 ms" <(cli status "$j")
  check "follow: the skipped step, as --exec says it" \
    grep -qx "after > skipped: step slow before it did not succeed" "$tmp/fln.out"
  check "logs: the same skipped line" \
    grep -qx "after > skipped: step slow before it did not succeed" <(cli logs "$j")
  check "tail: the same skipped line, prefixed" \
    grep -qx "$j/after > skipped: step slow before it did not succeed" "$tmp/fln.tail"
}

# A step stopped or skipped because another failed names that step
# (on_failure: stop), though its own timeout passes while it is stopped;
# a host step whose supervisor is killed ends lost (also when killed
# before it answered the start), and retry: {on: [lost]} runs it again;
# a start that fails stays failed; a step that never started shows no
# duration (logs --events, evrun-replay, the gateway's JSON).  Process
# runners only.
case_stop_lines() {
  fresh stop_lines
  bus_broker && bus_runner stl-1 "" 2 --executors process --grace 1 && bus_wait_runners 1
  pipeline stl <<'YML'
pipeline: stl
executor: process
steps:
  - {name: b, needs: [], run: "sleep 0.5; exit 3"}
  - {name: c, needs: [], timeout: 1s, run: "trap '' TERM; sleep 30 & wait; sleep 30"}
  - {name: d, needs: [c], run: echo never}
YML
  cli run "$tmp/stl.yml" --follow > "$tmp/stl.out" 2>&1
  check "failing job: exit 1" [ $? -eq 1 ]
  local j
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/stl.out")
  check "the stopped step names the failed one, cancelled though its timeout passed" \
    grep -qx "c > cancelled (exit 137): stopped: step b failed (on_failure: stop)" "$tmp/stl.out"
  check "the skipped step names it too" grep -qx "d > skipped: step b failed" "$tmp/stl.out"
  check "the job's reason: the failed step alone" \
    grep -qx "job $j failed: step b failed (exit 3)" "$tmp/stl.out"
  pipeline stlost <<'YML'
pipeline: stlost
executor: process
steps:
  - {name: a, retry: {on: [lost], max: 1}, run: 'echo "try $EVRUN_ATTEMPT"; [ "$EVRUN_ATTEMPT" = 2 ] || sleep 30'}
YML
  j=$(submit "$tmp/stlost.yml")
  local unit shim="" i
  # the step's command running (its first line out), not its start: a
  # supervisor killed while the start is asked is another case
  for i in $(seq 200); do
    unit=$(ls -d "$tmp"/r-stl-1/units/evrun-*-a-1 2>/dev/null | head -n 1)
    [ -n "$unit" ] && grep -q "try 1" <(cli logs "$j" 2>/dev/null) \
      && shim=$(pgrep -f "evrun-runner --shim $unit\$" | head -n 1)
    [ -n "$shim" ] && break
    sleep 0.1
  done
  check "the step's supervisor runs" [ -n "$shim" ]
  [ -n "$shim" ] && kill -9 "$shim"
  check "the job succeeds: the lost step ran again" [ "$(wait_job "$j" 20)" = succeeded ] \
    || job_report "$j"
  check "the step was lost, not failed" grep -q "^a > lost: waiting for the process: the supervisor of" <(cli logs "$j")
  check "... and retried" grep -qx "a > retrying (attempt 2)" <(cli logs "$j")
  check "lost once started: its duration" \
    grep -q "^a -- step.finished: lost ([0-9]* ms) -- waiting for the process" <(cli logs "$j" --events)
  # killed before it answered the start (held there by the test hook,
  # EVR_TEST_PAUSE_AT=supervisor: the unit locked, the step not started):
  # lost too, and retried; a start that fails (a limit the host refuses)
  # stays failed, with its message
  EVR_TEST_PAUSE_AT=supervisor bus_runner stl-p "held" 1 --executors process && bus_wait_runners 2
  pipeline stheld <<'YML'
pipeline: stheld
executor: process
labels: [held]
steps:
  - {name: a, retry: {on: [lost], max: 1}, run: 'echo "try $EVRUN_ATTEMPT"'}
YML
  j=$(submit "$tmp/stheld.yml")
  local att
  for att in 1 2; do
    shim=""
    for i in $(seq 200); do
      unit=$(ls -d "$tmp"/r-stl-p/units/evrun-*-a-$att 2>/dev/null | head -n 1)
      [ -n "$unit" ] && shim=$(pgrep -f "evrun-runner --shim $unit\$" | head -n 1)
      [ -n "$shim" ] && [ "$(ps -o stat= -p "$shim" | cut -c1)" = T ] && break
      shim=""
      sleep 0.1
    done
    check "attempt $att: its supervisor is held before the start" [ -n "$shim" ]
    [ -n "$shim" ] || break
    if [ "$att" = 1 ]; then kill -9 "$shim"; else kill -CONT "$shim"; fi
  done
  check "held: the job succeeds: the lost step ran again" [ "$(wait_job "$j" 20)" = succeeded ] \
    || job_report "$j"
  check "held: the step was lost, not failed, saying its supervisor was killed" \
    grep -q "^a > lost: start: the supervisor of evrun-.*-a-1 was killed (it ended without a word) before it started the step" <(cli logs "$j")
  check "held: ... and retried" grep -qx "a > retrying (attempt 2)" <(cli logs "$j")
  check "held: the second attempt ran" grep -qx "a | try 2" <(cli logs "$j")
  # a step that never started has no duration (not "0 ms"); the retry's has
  cli logs "$j" --events > "$tmp/stheld.ev"
  check "held: logs --events: the lost attempt never started" \
    grep -q "^a -- step.finished: lost (never started) -- start: the supervisor" "$tmp/stheld.ev"
  check "held: ... the retry's duration" \
    grep -q "^a -- step.finished: succeeded (exit 0, [0-9]* ms) attempt 2" "$tmp/stheld.ev"
  check "held: nowhere 0 ms" bash -c "! grep -q '(0 ms)' '$tmp/stheld.ev'"
  local held=$j
  kill "$runner_pid_stl_p"   # the next job goes to stl-1, its supervisor not held
  for i in $(seq 100); do kill -0 "$runner_pid_stl_p" 2>/dev/null || break; sleep 0.1; done
  pipeline stbad <<'YML'
pipeline: stbad
executor: process
steps:
  - {name: a, retry: {on: [lost], max: 1}, limits: {nofile: 999999999}, run: echo never}
YML
  j=$(submit "$tmp/stbad.yml")
  check "a start that fails: failed, not lost" [ "$(wait_job "$j" 20)" = failed ] || job_report "$j"
  check "... with its message, not retried" \
    grep -q "^a > failed: start: starting evrun-.*-a-1: .*nofile" <(cli logs "$j")
  check "never started: logs --events says so, no duration" \
    grep -q "^a -- step.finished: failed (never started) -- start: starting" <(cli logs "$j" --events)
  check "never started: evrun-replay --job, no duration" \
    grep -Eq "^a +failed +1 +- +- +evrun-" <("$bin/evrun-replay" "$tmp/r-stl-1" --job "$j")
  gateway
  api GET "/jobs/$j" > /dev/null
  check "never started: the gateway's JSON has no duration_ms, nor exit_code" \
    [ "$(jget '[k for k in ("duration_ms", "exit_code") if k in d["steps"][0]]')" = "[]" ]
  api GET "/jobs/$held" > /dev/null
  check "its retry that ran: duration_ms" [ "$(jget '"duration_ms" in d["steps"][0]')" = True ]
}

# A step that never started (an image podman does not have, pull: never)
# has no exit code, and one failed after its command exited 0 (an
# artifact not there) does not give the 0 as the cause: run --follow,
# logs, evrun-tail, status and the gateway's JSON say so.
case_no_exit_lines() {
  fresh no_exit
  bus_broker && bus_runner nx-1 "" 2 --executors podman,process && bus_wait_runners 1
  pipeline nximg <<'YML'
pipeline: nximg
steps:
  - name: a
    image: localhost/evrun-does-not-exist:latest
    pull: never
    run: echo never
YML
  cli run "$tmp/nximg.yml" --follow > "$tmp/nximg.out" 2>&1
  check "never started: exit 1" [ $? -eq 1 ]
  local j why="image localhost/evrun-does-not-exist:latest is not in the runner's storage"
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/nximg.out")
  check "follow: no exit code" grep -q "^a > failed: $why" "$tmp/nximg.out"
  check "follow: the job's end, no exit code" grep -q "^job $j failed: step a failed: $why" "$tmp/nximg.out"
  check "status: the same" grep -q "^reason    step a failed: $why" <(cli status "$j")
  check "logs: the same line" grep -q "^a > failed: $why" <(cli logs "$j")
  check "nowhere exit -1" bash -c "! grep -q 'exit -1' '$tmp/nximg.out'"
  pipeline nxart <<'YML'
pipeline: nxart
executor: process
steps:
  - name: missing
    run: echo nothing
    artifacts: [nope.txt]
YML
  cli run "$tmp/nxart.yml" --follow > "$tmp/nxart.out" 2>&1
  check "missing artifact: exit 1" [ $? -eq 1 ]
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/nxart.out")
  why="its command exited 0, but artifact nope.txt: no such file or directory"
  check "follow: the 0 is not the cause" grep -q "^missing > failed: $why" "$tmp/nxart.out"
  check "follow: the job's end" grep -q "^job $j failed: step missing failed: $why" "$tmp/nxart.out"
  timeout -k 10 20 "$bin/evrun-tail" --job "$j" > "$tmp/nxart.tail" 2>&1
  check "tail: the same, prefixed" grep -q "^$j/missing > failed: $why" "$tmp/nxart.tail"
}

# A job that fails before any step runs (its setup: a resource that cannot
# be fetched) and one whose pipeline timeout passes say why everywhere a
# user looks: run --follow, status (and its JSON), logs, evrun-tail.
case_setup_failure_reason() {
  fresh setup_reason
  bus_broker && bus_runner sfr-1 "" 1 --executors process && bus_wait_runners 1
  pipeline sfr <<'YML'
pipeline: sfr
executor: process
resources: [{ name: src, url: "http://127.0.0.1:1/src.tar.gz", path: src }]
steps:
  - name: a
    run: echo never
YML
  cli run "$tmp/sfr.yml" --follow > "$tmp/sfr.out" 2>&1
  check "setup failure: exit 1" [ $? -eq 1 ]
  local j why='resource src: GET http://127.0.0.1:1/src.tar.gz'
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/sfr.out")
  check "follow: the skipped step says why" grep -q "^a > skipped: $why" "$tmp/sfr.out"
  check "follow: the job's end says why" grep -q "^job $j failed: $why" "$tmp/sfr.out"
  check "status: the reason" grep -q "^reason    $why" <(cli status "$j")
  check "status --json: the reason" grep -q "\"reason\":\"$why" <(cli status "$j" --json)
  check "logs: the job's end" grep -q "^job $j failed: $why" <(cli logs "$j")
  timeout -k 10 20 "$bin/evrun-tail" --job "$j" > "$tmp/sfr.tail" 2>&1
  check "tail: the job's end" grep -q "^job $j failed: $why" "$tmp/sfr.tail"
  check "tail: the skipped step" grep -q "^$j/a > skipped: $why" "$tmp/sfr.tail"
  pipeline sft <<'YML'
pipeline: sft
executor: process
timeout: 1s
steps:
  - name: a
    run: sleep 20
YML
  cli run "$tmp/sft.yml" --follow > "$tmp/sft.out" 2>&1
  check "pipeline timeout: exit 1" [ $? -eq 1 ]
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$tmp/sft.out")
  why="the pipeline's timeout (1 s) passed"
  check "follow: the step says which timeout" grep -qx "a > timed_out (exit 143): $why" "$tmp/sft.out"
  check "follow: the job says which timeout" grep -qx "job $j timed_out: $why" "$tmp/sft.out"
  check "status: the same" grep -qx "reason    $why" <(cli status "$j")
}

# `logs --step` and `evrun-tail --step` of a job still in the queue (no
# history yet): the step names come from the spec the broker holds with
# it (`status` answers them, each "pending"), so a name of no step is the
# same error, exit 2, as for a job that ran; a step's name prints nothing
case_step_queued() {
  fresh step_queued
  bus_broker || return    # no runner: the job stays queued
  pipeline sq <<'YML'
pipeline: sq
executor: process
on_error: { run: echo oops }
steps:
  - { name: a, run: echo in-a }
  - { name: build, matrix: { OS: [linux, bsd] }, run: echo "on $OS" }
YML
  local j names='a, build[OS=linux], build[OS=bsd], on_error' s
  j=$(submit "$tmp/sq.yml")
  check "queued" [ "$(field "$j" status)" = queued ]
  check "status --json: its steps, pending" \
    grep -q '"steps":{"a":"pending","build\[OS=linux\]":"pending","build\[OS=bsd\]":"pending","on_error":"pending"}' <(cli status "$j" --json)
  for s in nosuch A build.OS-linux 'build[OS=sun]'; do
    cli logs "$j" --step "$s" > "$tmp/sq.out" 2>&1
    check "queued: logs --step $s: exit 2" [ $? -eq 2 ]
    check "queued: logs --step $s: names the steps" \
      grep -qxF "evrun-cli logs: job $j has no step \"$s\" (names are case-sensitive); its steps: $names" "$tmp/sq.out"
  done
  for s in a build 'build[OS=bsd]' on_error; do
    cli logs "$j" --step "$s" > "$tmp/sq.out" 2> "$tmp/sq.err"
    check "queued: logs --step $s: exit 0" [ $? -eq 0 ]
    check "queued: logs --step $s: nothing printed" [ ! -s "$tmp/sq.out" ]
    check "queued: logs --step $s: stderr says why" \
      grep -qxF "evrun-cli logs: job $j is queued in the broker's queue: no output yet (--follow waits for it)" "$tmp/sq.err"
  done
  cli logs "$j" --json > "$tmp/sq.out" 2> "$tmp/sq.err"
  check "queued: logs --json: no note" [ ! -s "$tmp/sq.err" ]
  timeout -k 10 10 "$bin/evrun-cli" logs "$j" --step nosuch --follow > "$tmp/sq.out" 2>&1
  check "queued: logs --follow --step nosuch: exit 2 at once" [ $? -eq 2 ]
  check "... naming the steps" grep -qxF "evrun-cli logs: job $j has no step \"nosuch\" (names are case-sensitive); its steps: $names" "$tmp/sq.out"
  timeout -k 10 10 "$bin/evrun-tail" --job "$j" --step nosuch > "$tmp/sq.out" 2>&1
  check "queued: evrun-tail --step nosuch: exit 2 at once" [ $? -eq 2 ]
  check "... naming the steps" grep -qxF "evrun-tail: job $j has no step \"nosuch\" (names are case-sensitive); its steps: $names" "$tmp/sq.out"
  # (stderr apart: a job still queued after 2 s is said there)
  timeout -k 10 2 "$bin/evrun-tail" --job "$j" --step a > "$tmp/sq.out" 2> "$tmp/sq.err"
  check "queued: evrun-tail --step a: waits for the job (no error)" [ $? -eq 124 ] && check "... printing nothing" [ ! -s "$tmp/sq.out" ]
  cli pause "$j" > /dev/null
  check "paused in the queue" [ "$(field "$j" status)" = paused ]
  cli logs "$j" --step nosuch > "$tmp/sq.out" 2>&1
  check "paused: logs --step nosuch: exit 2" [ $? -eq 2 ]
  cli logs "$j" > "$tmp/sq.out" 2>&1
  check "paused: logs says so" grep -qxF "evrun-cli logs: job $j is paused in the broker's queue: no output yet (--follow waits for it)" "$tmp/sq.out"
  cli resume "$j" > /dev/null
  # taken by a runner, a name of no step is still refused, one of a step prints its lines
  bus_runner sq-1 "" 1 --executors process && bus_wait_runners 1
  local st
  st=$(wait_job "$j" 30)    # a one-line job; a shorter wait leaves time to say why (sanitizers)
  check "ran: succeeded" [ "$st" = succeeded ]
  if [ "$st" != succeeded ]; then   # what happened, for the next look
    cli status "$j"; cli runners; tail -n 20 "$tmp/runner-sq-1.log"
  fi
  check "ran: logs --step build: both combinations" \
    [ "$(cli logs "$j" --step build | sort)" = "$(printf 'build[OS=bsd] | on bsd\nbuild[OS=linux] | on linux')" ]
  cli logs "$j" --step nosuch > "$tmp/sq.out" 2>&1
  check "ran: logs --step nosuch: exit 2" [ $? -eq 2 ]
  check "ran: status --json: steps with their exit codes" grep -q '"a":"succeeded 0"' <(cli status "$j" --json)
}

# A job the runner refuses at its dispatch (a secret the runner does not
# allow) gives its slot back: the broker took one for the dispatch, and a
# runner of capacity 1 then ran nothing more.
case_refused_slot() {
  fresh refslot
  bus_broker && bus_runner rs-1 "" 1 --executors process && bus_wait_runners 1
  pipeline rbad <<'YML'
pipeline: rbad
executor: process
secrets: [HOME]
steps: [ { name: s, run: "echo no" } ]
YML
  pipeline rok <<'YML'
pipeline: rok
executor: process
steps: [ { name: s, run: "echo ran-after-refusal" } ]
YML
  local b j
  b=$(submit "$tmp/rbad.yml")
  check "the refused job failed" [ "$(wait_job "$b" 20)" = failed ]
  check "... saying why" grep -q "secret HOME: not allowed" <(cli status "$b")
  j=$(submit "$tmp/rok.yml")
  check "the next job ran on the same runner (capacity 1)" [ "$(wait_job "$j" 20)" = succeeded ]
  check "... its output" grep -q "ran-after-refusal" <(cli logs "$j")
  check "the runner's credit is back to 1" \
    bash -c "'$bin/evrun-cli' runners --json | grep -q '\"runner\":\"rs-1\".*\"credit\":1'"
  pipeline rslow <<'YML'
pipeline: rslow
executor: process
steps: [ { name: s, run: "sleep 30" } ]
YML
  j=$(submit "$tmp/rslow.yml")
  check "a busy runner of capacity 1: runners --json gives its credit 0 (not left out)" \
    bash -c "for _ in \$(seq 50); do '$bin/evrun-cli' runners --json | grep -q '\"runner\":\"rs-1\".*\"state\":\"busy\".*\"credit\":0' && exit 0; sleep 0.2; done; exit 1"
  local w
  w=$(submit "$tmp/rok.yml")
  cli status "$w" > "$tmp/w.status" 2>&1
  check "a job behind it: status says it waits for a free slot" \
    grep -qx "waiting   for a free slot: the runner with its labels is busy (see evrun-cli runners)" "$tmp/w.status"
  cli cancel "$j" > /dev/null 2>&1
  wait_job "$j" 20 > /dev/null
  check "... and runs once the slot is free" [ "$(wait_job "$w" 20)" = succeeded ]
}

# A retry waiting to start (its supervisor held before the start, the
# test hook EVR_TEST_PAUSE_AT=supervisor) shows its own attempt in the
# gateway's JSON: no started, finished, exit_code, duration_ms or reason
# of the attempt before (they were shown, the first attempt's).  Process
# runners only.
case_retry_view() {
  fresh retry_view
  bus_broker && EVR_TEST_PAUSE_AT=supervisor bus_runner rv-1 "" 1 --executors process \
    && bus_wait_runners 1
  pipeline rv <<'YML'
pipeline: rv
executor: process
steps:
  - {name: a, retry: {on: [failed], max: 1}, run: 'echo "try $EVRUN_ATTEMPT"; [ "$EVRUN_ATTEMPT" = 2 ]'}
YML
  gateway
  local j unit shim att i
  j=$(submit "$tmp/rv.yml")
  for att in 1 2; do
    shim=""
    for i in $(seq 200); do
      unit=$(ls -d "$tmp"/r-rv-1/units/evrun-*-a-$att 2>/dev/null | head -n 1)
      [ -n "$unit" ] && shim=$(pgrep -f "evrun-runner --shim $unit\$" | head -n 1)
      [ -n "$shim" ] && [ "$(ps -o stat= -p "$shim" | cut -c1)" = T ] && break
      shim=""
      sleep 0.1
    done
    check "attempt $att: its supervisor is held before the start" [ -n "$shim" ]
    [ -n "$shim" ] || break
    if [ "$att" = 2 ]; then
      api GET "/jobs/$j" > /dev/null
      check "the retry waiting: its attempt, 2" [ "$(jget 'd["steps"][0].get("attempt")')" = 2 ]
      check "... its status, not the attempt before's" \
        [ "$(jget 'd["steps"][0]["status"]')" != failed ]
      check "... none of the attempt before's started, finished, exit_code, duration_ms, reason" \
        [ "$(jget '[k for k in ("started", "finished", "exit_code", "duration_ms", "reason") if k in d["steps"][0]]')" = "[]" ]
    fi
    kill -CONT "$shim"
  done
  check "the retry succeeds" [ "$(wait_job "$j" 20)" = succeeded ] || job_report "$j"
  api GET "/jobs/$j" > /dev/null
  check "the retry that ran: its started, exit_code, duration_ms" \
    [ "$(jget '[k for k in ("started", "finished", "exit_code", "duration_ms") if k in d["steps"][0]]')" = "['started', 'finished', 'exit_code', 'duration_ms']" ]
  check "... attempt 2, exit 0" [ "$(jget '(d["steps"][0]["attempt"], d["steps"][0]["exit_code"])')" = "(2, 0)" ]
}

# the engine's own warnings, in a runner serving a broker, are log lines
# with the time and level as the runner's other lines (they had neither)
case_warn_log() {
  fresh warnlog
  bus_broker && bus_runner wl-1 "" 1 --executors process && bus_wait_runners 1
  pipeline wl <<'YML'
pipeline: wl
executor: process
steps:
  - name: s
    run: seq -f 'm%04g' 1 4100 | evrun-job secret MANY && echo registered
YML
  local j
  j=$(submit "$tmp/wl.yml")
  check "the job succeeded" [ "$(wait_job "$j" 20)" = succeeded ]
  check "the warning is a timestamped warn line of the runner's log" \
    grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z evrun-runner: warn: job $j: 4 lines of its secrets are not masked on their own" "$tmp/runner-wl-1.log"
}

bus_script_cases "refused_slot failure_lines stop_lines retry_view no_exit_lines setup_failure_reason step_queued host_network flow matrix_outputs hooks job_secret job_trigger job_trigger_crash job_trigger_file trigger_depth warn_log" "$@"
bus_script_end

#!/usr/bin/env bash
# test_provisioner.sh BIN_DIR SRC_DIR [CASE...]: single-use runners
# (evrun-runner --once) and evrun-provisioner (README "Ephemeral runners
# and the provisioner").  Real evrun-broker, evrun-runner and
# evrun-provisioner processes on ipc:// sockets; the steps are host
# processes (`executor: process`), so no podman service is needed.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/prov_lib.sh"

once() {   # ID [ARGS...]: a single-use runner in the foreground; its status in $once_rc
  local id=$1; shift
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id "$id" --once \
    --state-dir "$tmp/r-$id" --heartbeat-ms 200 --lease-ms 1500 --executors process \
    "$@" >> "$tmp/runner-$id.log" 2>&1
  once_rc=$?
  return $once_rc
}

# --once: exits with the job's status (0 succeeded, 1 failed); --clean
# removes its state directory; `runners` shows it ephemeral meanwhile.
case_once() {
  fresh once
  bus_broker
  ppipe ok "echo hello; sleep 1"
  ppipe bad "exit 3"
  local j1 j2
  j1=$(submit "$tmp/ok.yml" 2>/dev/null)
  once o-1 --clean &
  local p=$!
  bus_wait_runners 1
  check "runners: the table says ephemeral" grep -q "^o-1 .*ephemeral$" <(cli runners)
  check "runners --json: ephemeral true" grep -q '"runner":"o-1".*"ephemeral":true' <(cli runners --json)
  "$bin/evrun-gateway" --state-dir "$tmp" --listen 127.0.0.1:0 >> "$tmp/gateway.log" 2>&1 &
  bus_pids+=("$!")
  local url=
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^evrun-gateway: listening on \([^ ]*\).*/\1/p' "$tmp/gateway.log")
    [ -n "$url" ] && break
    sleep 0.05
  done
  curl -s -H "Authorization: Bearer $(cli token --read-only)" "$url/runners" > "$tmp/gw.json"
  check "gateway /runners: ephemeral true" grep -q '"id": *"o-1"[^}]*"ephemeral": *true' "$tmp/gw.json"
  wait "$p"; once_rc=$?
  check "once: exit 0 for a job that succeeded (got $once_rc)" [ "$once_rc" -eq 0 ]
  check "once: the job succeeded" [ "$(wait_job "$j1" 10)" = succeeded ]
  check "once: its output is at the broker" grep -q "hello" <(cli logs "$j1")
  check "once --clean: the state directory is gone" [ ! -e "$tmp/r-o-1" ]
  j2=$(submit "$tmp/bad.yml")
  local j3; j3=$(submit "$tmp/ok.yml")
  once o-2
  check "once: exit 1 for a job that failed (got $once_rc)" [ "$once_rc" -eq 1 ]
  check "once: the failed job is $j2" [ "$(wait_job "$j2" 10)" = failed ]
  check "once: took one job only: the second still queued" [ "$(cli status "$j3" --json | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p')" = queued ]
  check "once without --clean: the state directory is kept" [ -d "$tmp/r-o-2" ]
  once o-3
  check "once: a second runner takes the next job" [ "$once_rc" -eq 0 ]
  once o-4 --once-wait 1 --clean
  check "once: exit 3 when no job came within --once-wait (got $once_rc)" [ "$once_rc" -eq 3 ]
  check "once: says so" grep -q "no job came within 1 s" "$tmp/runner-o-4.log"
  check "once --clean with no job: the state directory is gone" [ ! -e "$tmp/r-o-4" ]
  once o-5 --once-wait 30 &
  p=$!
  check "once: o-5 said hello" wait_for 10 listed o-5
  cli drain o-5 > /dev/null
  wait "$p"; once_rc=$?
  check "once: exit 3 when drained before a job (got $once_rc)" [ "$once_rc" -eq 3 ]
  timeout -k 10 20 "$bin/evrun-runner" --broker "ipc://$tmp/nobroker" --id o-6 --once --clean \
    --state-dir "$tmp/r-o-6" --executors process >> "$tmp/runner-o-6.log" 2>&1 &
  p=$!
  sleep 1
  kill "$p"
  wait "$p"; once_rc=$?
  check "once: SIGTERM with no broker: exit 2 at once (got $once_rc)" [ "$once_rc" -eq 2 ]
  check "once --clean: nothing logged, the state directory is gone" [ ! -e "$tmp/r-o-6" ]
}

st_is() { [ "$(st "$1")" = "$2" ]; }   # JOB STATUS

# --once killed mid-job, started again on its state directory: it finishes
# that job (recovered) and takes no other, exiting with its status.
case_once_killed() {
  fresh oncek
  bus_broker
  ppipe slow "echo one; sleep 3; echo two"
  ppipe ok "echo hello"
  local j1 j2 p
  j1=$(submit "$tmp/slow.yml" 2>/dev/null)
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id ok-1 --once --clean \
    --state-dir "$tmp/r-ok-1" --heartbeat-ms 200 --lease-ms 1500 --executors process \
    >> "$tmp/runner-ok-1.log" 2>&1 &
  p=$!
  check "once killed: the job runs" wait_for 10 st_is "$j1" running
  sleep 0.5
  kill -9 "$p"; wait "$p" 2>/dev/null
  j2=$(submit "$tmp/ok.yml" 2>/dev/null)
  once ok-1 --clean
  check "once killed, started again: exit 0, its job's status (got $once_rc)" [ "$once_rc" -eq 0 ]
  check "... says the earlier run's job is its one" \
    grep -q "job $j1 of an earlier run on this state directory is not finished: it is this runner's one job" "$tmp/runner-ok-1.log"
  check "... that job succeeded" [ "$(wait_job "$j1" 10)" = succeeded ]
  check "... its output whole, once" [ "$(cli logs "$j1" | grep -c "one\|two")" -eq 2 ]
  check "... no other job taken: the next still queued" st_is "$j2" queued
  check "... --clean: the state directory is gone" [ ! -e "$tmp/r-ok-1" ]
}

# A job whose labels no runner has: the provisioner starts a process
# runner for it (single use, cleaned), the job runs; a static runner
# without the labels is left alone.
case_process() {
  fresh process
  bus_broker && bus_runner static "" 1 --executors process && bus_wait_runners 1
  cat > "$tmp/p.yml" <<YML
register_timeout: 20s
providers:
  - name: big
    labels: [big]
    kind: process
    executors: [process]
    args: [--heartbeat-ms, "200", --lease-ms, "1500"]
    max: 2
YML
  ppipe pb "echo provisioned" big
  local j; j=$(submit "$tmp/pb.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "process: the job ran" [ "$(wait_job "$j" 30)" = succeeded ]
  check "process: on a provisioned runner" grep -q '"runner":"big-' <(cli status "$j" --json)
  check "process: its output" grep -q provisioned <(cli logs "$j")
  check "process: the provisioner said it started one" grep -q "provider big: started runner big-" "$tmp/prov.log"
  for _ in $(seq 1 50); do [ -z "$(ls "$tmp/provisioner/runners" 2>/dev/null)" ] && break; sleep 0.1; done
  check "process: the runner's state directory was cleaned" [ -z "$(ls "$tmp/provisioner/runners")" ]
  check "process: --status lists the provider" wait_for 5 status_has "^big  *active  *0/2  *1  *0"
  check "process: evrun-cli runners lists the provider" wait_for 5 runners_has "^big  *provisioner  *0/2  *1  *0  *active$"

  stop_prov
}

# A burst of 10 jobs with two label sets: at most max per provider and
# max_runners in all run at a time (sampled from `runners`); every job
# runs on a single-use runner of a provider with its labels.
case_burst() {
  fresh burst
  bus_broker
  cat > "$tmp/p.yml" <<YML
max_runners: 4
start_rate: 100/s
providers:
  - { name: pa, labels: [burst], kind: process, executors: [process], max: 2,
      args: [--heartbeat-ms, "200", --lease-ms, "1500"] }
  - { name: pb, labels: [burst, other], kind: process, executors: [process], max: 5,
      args: [--heartbeat-ms, "200", --lease-ms, "1500"] }
YML
  ppipe bu "sleep 1" burst
  ppipe bo "sleep 1" other
  local ids=() oth=() i
  for i in 1 2 3 4 5 6; do ids+=("$(submit "$tmp/bu.yml" 2>/dev/null)"); done
  for i in 1 2 3 4; do oth+=("$(submit "$tmp/bo.yml" 2>/dev/null)"); done
  prov "$tmp/p.yml"
  local maxall=0 maxa=0 n a
  for _ in $(seq 1 150); do
    cli runners --json > "$tmp/rs" 2>/dev/null
    n=$(grep '"ephemeral":true' "$tmp/rs" | grep -c '"state":"busy"')
    a=$(grep '"runner":"pa-' "$tmp/rs" | grep -c '"state":"busy"')
    [ "$n" -gt "$maxall" ] && maxall=$n
    [ "$a" -gt "$maxa" ] && maxa=$a
    [ "$(st "${ids[5]}")" = succeeded ] && [ "$(st "${oth[3]}")" = succeeded ] && break
    sleep 0.1
  done
  for i in "${ids[@]}" "${oth[@]}"; do
    check "burst: $i ran" [ "$(wait_job "$i" 30)" = succeeded ]
  done
  for i in "${oth[@]}"; do
    check "burst: $i (labels other) on pb" grep -q '"runner":"pb-' <(cli status "$i" --json)
  done
  check "burst: max_runners 4 respected (at most $maxall at once)" [ "$maxall" -le 4 ]
  check "burst: max_runners 4 respected (at most $maxall at once) [maxall -ge 2]" [ "$maxall" -ge 2 ]
  check "burst: pa's max 2 respected (at most $maxa)" [ "$maxa" -le 2 ]
  check "burst: the second provider took the overflow" grep -q "provider pb: started runner" "$tmp/prov.log"
  stop_prov
}

# A command provider (a shell script as the scheduler): its start prints
# the handle (the runner's pid) and starts evrun-runner --once; the job runs.
case_command() {
  fresh command
  bus_broker
  cat > "$tmp/p.yml" <<YML
providers:
  - name: sched
    labels: [cmd]
    kind: command
    executors: [process]
    start: >-
      $bin/evrun-runner --broker {broker} --once --clean --id {runner_id} --labels cmd
      --executors process --state-dir $tmp/cmd-{runner_id} --heartbeat-ms 200
      >> $tmp/cmd-runners.log 2>&1 & echo "pid-\$!"; echo job={job} labels={labels} >&2;
      sleep 0.3; echo not-the-handle
    stop: "h={handle}; kill \"\${h#pid-}\" 2>/dev/null; echo stopped {handle} >&2"
    max: 2
YML
  ppipe cm "echo by-command; sleep 1" cmd
  local j; j=$(submit "$tmp/cm.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "command: the job ran" [ "$(wait_job "$j" 30)" = succeeded ]
  check "command: on the command's runner" grep -q '"runner":"sched-' <(cli status "$j" --json)
  check "command: the handle was read" grep -q "provider sched: runner sched-[a-z0-9]*: handle pid-[0-9]" "$tmp/prov.log"
  check "command: the first line only, said once" [ "$(grep -c ": handle " "$tmp/prov.log")" -eq 1 ]
  check "command: {job} and {labels} filled in" grep -q "job=$j labels=cmd,executor:process" "$tmp"/provisioner/logs/sched-*.log
  # a command runner is gone once the broker lists it stopped (its
  # goodbye) or lost: its instance no longer counts against max
  check "command: its runner, gone, is listed stopped" wait_for 10 runners_has "^sched-[a-z0-9]*  *stopped "
  check "command: its instance ended (0/2 running)" wait_for 10 status_has "^sched  *active  *0/2  *1  *0"
  stop_prov
}

# A provider whose start fails 3 times in a row is paused, with the
# reason, in the log, --status and --dry-run.
case_paused() {
  fresh paused
  bus_broker
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
providers:
  - { name: broken, labels: [nowhere], kind: command, executors: [process],
      start: "echo no scheduler >&2; exit 7" }
YML
  ppipe pz "true" nowhere
  submit "$tmp/pz.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "paused: after 3 failed starts" wait_for 10 grep -q "provider broken paused: 3 failed starts in a row, the last: the start command exited with status 7" "$tmp/prov.log"
  check "paused: --status lists it" wait_for 5 status_has "^broken  *paused .* 3  *3 "
  check "paused: --status says why" grep -q "paused: 3 failed starts in a row" <("$bin/evrun-provisioner" --status)
  check "paused: evrun-cli runners lists it paused" wait_for 5 runners_has "^broken  *provisioner  *0/4  *3  *3  *paused: 3 failed starts in a row, the last: the start command exited with status 7"
  check "paused: in --json too" grep -q '"provider":"broken","runner":"provisioner".*"reason":"3 failed starts' <(cli runners --json)
  sleep 1
  check "paused: no fourth start" [ "$(grep -c "a failed start" "$tmp/prov.log")" -eq 3 ]
  stop_prov
}

# register_timeout: a runner that never says hello (the command starts
# none) is stopped with the stop template and counted as a failed start.
case_register_timeout() {
  fresh regto
  bus_broker
  cat > "$tmp/p.yml" <<YML
register_timeout: 2s
providers:
  - name: silent
    labels: [quiet]
    executors: [process]
    kind: command
    start: "sleep 600 >/dev/null 2>&1 & echo \$!"
    stop: "kill {handle}; echo stopped {handle} >&2"
YML
  ppipe rq "true" quiet
  submit "$tmp/rq.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "register_timeout: said" wait_for 10 grep -q "provider silent: runner silent-[a-z0-9]* did not say hello within 2 s (register_timeout): stopping it" "$tmp/prov.log"
  check "register_timeout: counted as a failed start" wait_for 5 grep -q "provider silent: runner silent-[a-z0-9]*: a failed start: runner .* did not say hello" "$tmp/prov.log"
  check "register_timeout: the stop template ran" wait_for 5 grep -q "^stopped [0-9]" "$tmp"/provisioner/logs/silent-*.log
  local h; h=$(sed -n 's/^stopped \([0-9]*\)$/\1/p' "$tmp"/provisioner/logs/silent-*.log | head -1)
  check "register_timeout: the stop ended it" wait_for 5 bash -c "! kill -0 $h 2>/dev/null"
  stop_prov
}

# A command provider without stop: a runner that does not say hello in
# time cannot be stopped once its start command exited; the log said
# "stopping it" and nothing was done (what the start left ran on,
# unsaid).  Now said: left running, no stop.
case_no_stop() {
  fresh nostop
  bus_broker
  cat > "$tmp/p.yml" <<YML
register_timeout: 2s
providers:
  - name: bare
    labels: [bare]
    executors: [process]
    kind: command
    start: "sleep 600 >/dev/null 2>&1 & echo \$!"
    max: 1
YML
  ppipe nb "true" bare
  submit "$tmp/nb.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "no stop: register_timeout said" wait_for 10 grep -q "provider bare: runner bare-[a-z0-9]* did not say hello within 2 s (register_timeout)" "$tmp/prov.log"
  check "no stop: said left running, why" wait_for 5 grep -q "provider bare: runner bare-[a-z0-9]*: left running: the provider has no stop command" "$tmp/prov.log"
  stop_prov
  local h
  for h in $(sed -n 's/.*provider bare: runner bare-[a-z0-9]*: handle \([0-9]*\)$/\1/p' "$tmp/prov.log"); do
    check "no stop: what the start left runs on (pid $h), as said" kill -0 "$h"
    tr '\0' ' ' < "/proc/$h/cmdline" 2>/dev/null | grep -q "^sleep 600" && kill "$h"
  done
}

# --dry-run: one pass, says who would start what and why the others did
# not match, starts nothing.
case_dry_run() {
  fresh dry
  bus_broker && bus_runner fixed "fast" 1 --executors process && bus_wait_runners 1
  cat > "$tmp/p.yml" <<YML
providers:
  - { name: small, labels: [small], kind: process, executors: [process], max: 1 }
  - { name: pods, labels: [small, gpu], kind: process, max: 3 }
  - { name: gpus, labels: [small, gpu], kind: process, executors: [process], max: 3 }
YML
  ppipe d1 "true" gpu; ppipe d2 "true" fast; ppipe d3 "true" huge
  local j1 j2 j3
  j1=$(submit "$tmp/d1.yml" 2>/dev/null)
  cli drain fixed > /dev/null
  j2=$(submit "$tmp/d2.yml" 2>/dev/null); j3=$(submit "$tmp/d3.yml" 2>/dev/null)
  "$bin/evrun-provisioner" --config "$tmp/p.yml" --dry-run > "$tmp/dry.out" 2>&1
  check "dry-run: exit 0" [ $? -eq 0 ]
  check "dry-run: gpu job to gpus" grep -q "^job $j1 (labels gpu,executor:process): provider gpus would start a process runner" "$tmp/dry.out"
  check "dry-run: small lacks gpu" grep -q "^  not small: labels lack gpu" "$tmp/dry.out"
  check "dry-run: pods lacks the executor" grep -q "^  not pods: labels lack executor:process" "$tmp/dry.out"
  check "dry-run: no provider for huge" grep -q "^job $j3 (labels huge,executor:process): no provider has these labels: none will start a runner for it" "$tmp/dry.out"
  check "dry-run: fast has no provider (the runner drains)" grep -q "^job $j2 .*no provider" "$tmp/dry.out"
  check "dry-run: started nothing" [ ! -e "$tmp/provisioner/runners" ]
  check "dry-run: started nothing [(st j1) = queued]" [ "$(st "$j1")" = queued ]
  cat > "$tmp/bad.yml" <<YML
max_runners: lots
providers:
  - { name: x, kind: podman, labels: [a], network: wifi }
  - { name: y, kind: command, labels: [a], colour: red, image: i }
YML
  "$bin/evrun-provisioner" --config "$tmp/bad.yml" --dry-run > "$tmp/bad.out" 2>&1
  check "bad config: exit 2" [ $? -eq 2 ]
  check "bad config: file:line:col of max_runners" grep -q "bad.yml:1:14: max_runners: expected a whole number" "$tmp/bad.out"
  check "bad config: podman's keys on another kind" grep -q "bad.yml:4:.*providers\[1\].image: image, network, volumes and env go with kind: podman only" "$tmp/bad.out"
  check "bad config: a bad network" grep -q "bad.yml:3:.*providers\[0\].network: expected host (the default), bridge or none, got \"wifi\"" "$tmp/bad.out"
  check "bad config: unknown key" grep -q 'bad.yml:4:.*unknown key "colour"' "$tmp/bad.out"
  check "bad config: command needs start" grep -q "bad.yml:4:.*providers\[1\].start: missing" "$tmp/bad.out"
  # a runner that is no executable: each process start would fail (exit
  # 127) until three paused the provider; said at once instead
  printf 'runner: %s/no-such-runner\nproviders:\n  - { name: pr, labels: [a], executors: [process] }\n' "$tmp" > "$tmp/norun.yml"
  "$bin/evrun-provisioner" --config "$tmp/norun.yml" --dry-run > "$tmp/norun.out" 2>&1
  check "no runner: exit 2" [ $? -eq 2 ]
  check "no runner: said, naming the provider" grep -q "norun.yml: providers\[0\] (pr, kind process) starts $tmp/no-such-runner, which is no executable file: set runner: in the config" "$tmp/norun.out"
  printf 'runner: %s/no-such-runner\nproviders:\n  - { name: pc, labels: [a], kind: command, start: "echo x" }\n' "$tmp" > "$tmp/norun2.yml"
  "$bin/evrun-provisioner" --config "$tmp/norun2.yml" --dry-run > "$tmp/norun2.out" 2>&1
  check "no runner, no process provider: not needed, exit 0" [ $? -eq 0 ]
}

# A job whose labels no provider has, nor any runner: said once in the
# log with the labels it asks for and those each provider offers (it
# waited in silence, the user left guessing); a job a busy runner with
# its labels will take is not said.
case_stranded() {
  fresh stranded
  bus_broker && bus_runner fixed "fast" 1 --executors process && bus_wait_runners 1
  cat > "$tmp/p.yml" <<YML
providers:
  - { name: big, labels: [big], kind: process, executors: [process], max: 1 }
  - { name: pods, labels: [linux, big], kind: podman, max: 1 }
YML
  ppipe sa "sleep 3" fast; ppipe sb "true" fast; ppipe sc "true" huge
  local ja jb jc
  ja=$(submit "$tmp/sa.yml" 2>/dev/null)
  check "stranded: the first fast job runs on fixed" wait_status "$ja" running 10
  jb=$(submit "$tmp/sb.yml" 2>/dev/null); jc=$(submit "$tmp/sc.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "stranded: said, with the labels asked and offered" wait_for 10 grep -q "job $jc asks for labels huge,executor:process that no provider has (big offers big,executor:process; pods offers linux,big,executor:podman): no runner will be started for it; it waits for a runner with them to connect" "$tmp/prov.log"
  check "stranded: the busy runner's next job ran" [ "$(wait_job "$jb" 30)" = succeeded ]
  check "stranded: said once over many passes" [ "$(grep -c "job $jc asks for labels" "$tmp/prov.log")" -eq 1 ]
  check "stranded: a job a busy runner has the labels for is not said" [ "$(grep -c "job $jb asks" "$tmp/prov.log")" -eq 0 ]
  check "stranded: nothing started" [ "$(grep -c "started runner" "$tmp/prov.log")" -eq 0 ]
  check "stranded: it still waits" st_is "$jc" queued
  # --dry-run beside it counts none of its runners: it says so first
  "$bin/evrun-provisioner" --config "$tmp/p.yml" --dry-run > "$tmp/dry.out" 2>&1
  check "dry-run beside a running provisioner: says so" grep -q "^note: a provisioner (pid $prov_pid) runs on $tmp/provisioner: this pass counts none of the runners it started" "$tmp/dry.out"
  check "dry-run beside a running provisioner: the verdict follows" grep -q "^job $jc (labels huge,executor:process): no provider has these labels: none will start a runner for it" "$tmp/dry.out"
  stop_prov
}

# A provisioned runner killed mid-job: the broker's lease policy applies
# as for any runner (the job ends lost, its retry on lost is queued) and
# the provisioner starts another runner for the retry, which succeeds.
case_killed() {
  fresh killed
  bus_broker --reclaim-ms 1500
  cat > "$tmp/p.yml" <<YML
providers:
  - { name: k, labels: [kill], kind: process, executors: [process], max: 2,
      args: [--heartbeat-ms, "200", --lease-ms, "1500"] }
YML
  cat > "$tmp/kj.yml" <<YML
pipeline: kj
executor: process
labels: [kill]
steps:
  - name: s
    run: "if [ -e $tmp/second ]; then echo second; else touch $tmp/second; sleep 60; fi"
    retry: { on: [lost], max: 1 }
YML
  local j pid r2
  j=$(submit "$tmp/kj.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "killed: the job runs" wait_status "$j" running 20
  pid=$(sed -n 's/.*provider k: started runner .* (pid \([0-9]*\),.*/\1/p' "$tmp/prov.log" | head -1)
  check "killed: the runner's pid is known ($pid)" [ -n "$pid" ]
  kill -9 "$pid"
  check "killed: the job ends lost" [ "$(wait_job "$j" 30)" = lost ]
  r2=$(cli status "$j" --json | sed -n 's/.*retried as \([0-9A-Z]*\).*/\1/p')
  [ -z "$r2" ] && r2=$(cli jobs --json | sed -n 's/.*"job":"\([0-9A-Z]*\)","pipeline":"kj".*/\1/p' | head -1)
  check "killed: a retry was queued ($r2)" [ -n "$r2" ]
  check "killed: a retry was queued ($r2) [r2 != j]" [ "$r2" != "$j" ]
  check "killed: the retry ran on another provisioned runner" [ "$(wait_job "$r2" 30)" = succeeded ]
  check "killed: two runners started" [ "$(grep -c "provider k: started runner" "$tmp/prov.log")" -ge 2 ]
  check "killed: not counted as a failed start (it had said hello)" [ "$(grep -c "a failed start" "$tmp/prov.log")" -eq 0 ]
  stop_prov
}

# The broker killed and started again: the provisioner connects anew and
# serves the next job.
case_broker_restart() {
  fresh brestart
  bus_broker
  cat > "$tmp/p.yml" <<YML
providers:
  - { name: br, labels: [br], kind: process, executors: [process],
      args: [--heartbeat-ms, "200", --lease-ms, "1500"] }
YML
  ppipe brj "echo after" br
  prov "$tmp/p.yml" --timeout-ms 1000
  sleep 0.5
  kill -9 "$broker_pid"
  wait "$broker_pid" 2>/dev/null
  sleep 2
  bus_broker
  local j; j=$(submit "$tmp/brj.yml" 2>/dev/null)
  check "broker restart: the provisioner said it could not ask" grep -q "asking the broker: " "$tmp/prov.log"
  check "broker restart: the job ran on a provisioned runner" [ "$(wait_job "$j" 30)" = succeeded ]
  stop_prov
}

# The broker killed and started again while a command provider's runner
# (max 1) runs a job and another job waits: the restarted broker lists
# that runner lost with no labels until its next hello, which is neither
# a hello without the provider's labels (a failed start) nor the runner
# gone (a second runner past max 1); the waiting job gets a runner once
# the first is done.
case_broker_restart_command() {
  fresh brcmd
  bus_broker
  mkdir -p "$tmp/rs"
  cat > "$tmp/p.yml" <<YML
providers:
  - name: c
    labels: [brc]
    kind: command
    executors: [process]
    start: "$bin/evrun-runner --broker {broker} --once --clean --id {runner_id} --labels brc --executors process --heartbeat-ms 200 --lease-ms 1500 --state-dir $tmp/rs/{runner_id} >> $tmp/rs/{runner_id}.log 2>&1 & echo {runner_id}"
    max: 1
YML
  ppipe brc "sleep 5; echo done" brc
  local j1 j2
  j1=$(submit "$tmp/brc.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  wait_for 20 eval '[ "$(st "$j1")" = running ]'
  j2=$(submit "$tmp/brc.yml" 2>/dev/null)
  kill -9 "$broker_pid"
  wait "$broker_pid" 2>/dev/null
  bus_broker
  wait_for 10 eval 'cli runners --json 2>/dev/null | grep -q "\"runner\":\"c-.*\"state\":\"busy\""'
  sleep 1
  check "command restart: the first job still runs [(st j1) = running]" [ "$(st "$j1")" = running ]
  check "command restart: no second runner past max 1 while it runs [(started c) = 1]" [ "$(started c)" = 1 ]
  check "command restart: the runner's lost listing is no hello without labels" \
    bash -c "! grep -q 'without the provider' '$tmp/prov.log'"
  check "command restart: no failed start" bash -c "! grep -q 'a failed start' '$tmp/prov.log'"
  check "command restart: the first job succeeded" [ "$(wait_job "$j1" 30)" = succeeded ]
  check "command restart: the waiting job ran on a second runner" [ "$(wait_job "$j2" 30)" = succeeded ]
  check "command restart: two runners started in all [(started c) = 2]" [ "$(started c)" = 2 ]
  stop_prov
}

# A command provider's start command that prints the handle and runs on
# (ignoring SIGTERM) after its runner did its job and said goodbye: 5 s
# later its process group gets SIGTERM, 5 s after that SIGKILL; its record
# goes with it (it was left running, with its pipe open, one per start).
case_command_lingers() {
  fresh cmdlinger
  bus_broker
  mkdir -p "$tmp/rs"
  cat > "$tmp/p.yml" <<YML
providers:
  - name: lg
    labels: [lg]
    kind: command
    executors: [process]
    start: "$bin/evrun-runner --broker {broker} --once --clean --id {runner_id} --labels lg --executors process --heartbeat-ms 200 --state-dir $tmp/rs/{runner_id} >> $tmp/rs/{runner_id}.log 2>&1 & echo {runner_id}; trap '' TERM; while :; do sleep 1; done"
    max: 2
YML
  ppipe lg "echo done" lg
  local j
  j=$(submit "$tmp/lg.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "lingering start: the job succeeded" [ "$(wait_job "$j" 30)" = succeeded ]
  check "lingering start: told to stop after its runner's goodbye" \
    wait_for 20 grep -q "said goodbye 5 s ago; its start command (pid [0-9]*) still runs: stopping it" "$tmp/prov.log"
  local pid
  pid=$(sed -n 's/.*its start command (pid \([0-9]*\)) still runs.*/\1/p' "$tmp/prov.log")
  check "lingering start: killed 5 s after its SIGTERM" wait_for 20 eval '! kill -0 "${pid:-1}" 2>/dev/null'
  check "lingering start: its record removed" wait_for 5 bash -c "[ -z \"\$(ls '$tmp/provisioner/commands')\" ]"
  check "lingering start: one runner, no failed start" \
    bash -c "[ \$(grep -c 'started runner' '$tmp/prov.log') = 1 ] && ! grep -q 'failed start' '$tmp/prov.log'"
  stop_prov
}

# A command provider's handle: a first line longer than a handle is kept
# is a failed start saying so (it was cut to 256 bytes, which its stop
# would have been given); one with control characters is logged escaped.
case_command_handle() {
  fresh cmdhandle
  bus_broker
  cat > "$tmp/p.yml" <<'YML'
providers:
  - { name: hlong, labels: [hlong], kind: command, executors: [process],
      start: "printf '%0300d\\n' 0; sleep 30", stop: "echo {handle} >> STOPS" }
  - { name: hesc, labels: [hesc], kind: command, executors: [process],
      start: "printf 'h\\033[31m\\001x\\n'; sleep 30" }
YML
  sed -i "s|STOPS|$tmp/stops|" "$tmp/p.yml"
  ppipe hlong "true" hlong
  ppipe hesc "true" hesc
  submit "$tmp/hlong.yml" > /dev/null 2>&1
  submit "$tmp/hesc.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "long handle: a failed start naming it" wait_for 10 grep -q \
    "provider hlong: runner hlong-[a-z0-9]*: a failed start: the start command's first output line (the handle) is over 256 bytes: none kept, its stop cannot run; the start command is stopped" "$tmp/prov.log"
  local pid
  pid=$(sed -n 's/.*provider hlong: started runner .* (pid \([0-9]*\),.*/\1/p' "$tmp/prov.log" | head -1)
  check "long handle: its start command stopped" wait_for 10 eval '! kill -0 "${pid:-1}" 2>/dev/null'
  check "long handle: no handle taken" bash -c "! grep -q 'provider hlong: runner .*: handle ' '$tmp/prov.log'"
  check "control characters: the handle logged escaped" wait_for 10 grep -q 'provider hesc: runner hesc-[a-z0-9]*: handle h\\x1b\[31m\\x01x$' "$tmp/prov.log"
  check "control characters: no escape byte in the log" bash -c "! grep -q \$'\\033' '$tmp/prov.log'"
  stop_prov
  sleep 0.5   # a stop the provisioner's stop started has written by now
  check "long handle: no stop run with a cut one, at the stop either" [ ! -e "$tmp/stops" ]
}

# A command provider's stop that hangs (SIGTERM ignored) gets SIGTERM
# after register_timeout and SIGKILL 5 s later, its status said: it was
# left running for ever, one per runner stopped, past the provisioner's
# exit.
case_command_stop_hangs() {
  fresh cmdstophang
  bus_broker
  cat > "$tmp/p.yml" <<'YML'
register_timeout: 2s
providers:
  - { name: sh, labels: [sh], kind: command, executors: [process], max: 1,
      start: "echo handle-1", stop: "trap '' TERM; sleep 999" }
YML
  ppipe sh "true" sh
  submit "$tmp/sh.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "hung stop: started" wait_for 10 grep -q "provider sh: runner sh-[a-z0-9]*: stop started (pid [0-9]*)" "$tmp/prov.log"
  local pid
  pid=$(sed -n 's/.*provider sh: runner .*: stop started (pid \([0-9]*\)).*/\1/p' "$tmp/prov.log" | head -1)
  check "hung stop: told to end after register_timeout" wait_for 10 grep -q \
    "provider sh: runner sh-[a-z0-9]*: its stop (pid $pid) still runs after 2 s (register_timeout): stopping it" "$tmp/prov.log"
  check "hung stop: killed 5 s later" wait_for 15 eval '! kill -0 "${pid:-1}" 2>/dev/null'
  check "hung stop: its status said" wait_for 5 grep -q "provider sh: runner sh-[a-z0-9]*: its stop was killed by SIGKILL (signal 9)" "$tmp/prov.log"
  stop_prov
  [ -n "$pid" ] && kill -9 -- "-$pid" 2>/dev/null   # a failed check's stop: not left running
}

# A start command that printed its handle and exited non-zero: a failed
# start, and its stop runs with that handle (the runner it may have
# started, here one that would say hello 3 s later, is not left running
# uncounted past max).
case_command_start_fails() {
  fresh cmdstartfail
  bus_broker
  mkdir -p "$tmp/rs"
  cat > "$tmp/p.yml" <<YML
providers:
  - name: sf
    labels: [sf]
    kind: command
    executors: [process]
    max: 1
    start: "(sleep 3; exec $bin/evrun-runner --broker {broker} --once --clean --once-wait 20 --id {runner_id} --labels sf --executors process --state-dir $tmp/rs/{runner_id}) >> $tmp/rs/{runner_id}.log 2>&1 & echo \$! > $tmp/rs/{runner_id}.pid; echo {runner_id}; exit 4"
    stop: "kill \$(cat $tmp/rs/{handle}.pid)"
YML
  ppipe sfj "true" sf
  submit "$tmp/sfj.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "start exits 4: a failed start, its stop run" wait_for 10 grep -q \
    "provider sf: runner sf-[a-z0-9]*: a failed start: the start command exited with status 4 .*; its stop runs with the handle it printed" "$tmp/prov.log"
  check "start exits 4: its stop started" grep -q "provider sf: runner sf-[a-z0-9]*: stop started" "$tmp/prov.log"
  local id
  id=$(sed -n 's/.*provider sf: started runner \(sf-[a-z0-9]*\) .*/\1/p' "$tmp/prov.log" | head -1)
  sleep 4
  check "start exits 4: the runner it started never said hello [$id]" \
    bash -c "[ -n '$id' ] && ! '$bin/evrun-cli' runners --json 2>/dev/null | grep -q '\"runner\":\"$id\"'"
  stop_prov
  local f p   # a failed check's runners: not left waiting their --once-wait
  for f in "$tmp"/rs/*.pid; do
    p=$(cat "$f" 2>/dev/null)
    tr '\0' ' ' 2>/dev/null < "/proc/${p:-0}/cmdline" | grep -q -- "$tmp/rs" && kill "$p"
  done
  return 0
}

# A start command that writes without end on stderr, a stop command on
# stdout: the runner's log keeps the last 4 KiB of each, saying how much
# was left out before them (it took all of it, unbounded).
case_command_stderr() {
  fresh cmdstderr
  bus_broker
  cat > "$tmp/p.yml" <<'YML'
providers:
  - name: loud
    labels: [loud]
    kind: command
    executors: [process]
    max: 1
    start: "head -c 300000 /dev/zero | tr '\\0' x >&2; echo start-end >&2; echo handle-1; exit 4"
    stop: "echo stop-begin; head -c 50000 /dev/zero | tr '\\0' y; echo stop-end >&2"
YML
  ppipe loudj "true" loud
  submit "$tmp/loudj.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "stderr: a failed start" wait_for 10 grep -q "provider loud: runner loud-[a-z0-9]*: a failed start: the start command exited with status 4" "$tmp/prov.log"
  local id log
  id=$(sed -n 's/.*provider loud: started runner \(loud-[a-z0-9]*\) .*/\1/p' "$tmp/prov.log" | head -1)
  log=$tmp/provisioner/logs/$id.log
  check "stderr: the stop's written" wait_for 10 grep -qx "y*stop-end" "$log"
  stop_prov
  check "stderr: the start command's: how much was left out" \
    grep -qx "evrun-provisioner: the start command's stderr: 295914 bytes left out, the last 4096 follow" "$log"
  check "stderr: ... then its end" grep -qx "x*start-end" "$log"
  check "stderr: the stop command's: how much was left out" \
    grep -qx "evrun-provisioner: the stop command's output: 45924 bytes left out, the last 4096 follow" "$log"
  check "stderr: ... its beginning left out" bash -c "! grep -q stop-begin '$log'"
  check "stderr: the log is bounded ($(wc -c < "$log") bytes)" [ "$(wc -c < "$log")" -lt 9000 ]
}

# evrun-cli up --runners 0 --provisioner FILE: no static runner; a job
# runs on a single-use runner the provisioner starts (run says so);
# down stops the provisioner and the broker, nothing is left running.
case_up() {
  fresh up
  cat > "$tmp/p.yml" <<YML
providers:
  - { name: local, labels: [], kind: process, executors: [process], max: 2 }
YML
  cli up --runners 0 > "$tmp/up0.out" 2>&1
  check "up --runners 0 without --provisioner: refused" [ $? -eq 2 ]
  check "up --runners 0 without --provisioner: refused [--runners: 1 to 64 (0 only with --provisioner...]" grep -q -- "--runners: 1 to 64 (0 only with --provisioner" "$tmp/up0.out"
  printf 'providers: [ { name: x, kind: nope } ]\n' > "$tmp/bad.yml"
  cli up --runners 0 --provisioner "$tmp/bad.yml" --executors process --no-gateway > "$tmp/upbad.out" 2>&1
  check "up with a bad provisioner config: exit 2, its error shown" [ $? -eq 2 ]
  check "up with a bad provisioner config: exit 2, its error shown [bad.yml:1:.*kind upbad.out]" grep -q "bad.yml:1:.*kind" "$tmp/upbad.out"
  cli down > /dev/null 2>&1
  cli up --runners 0 --provisioner "$tmp/p.yml" --executors process --no-gateway > "$tmp/up.out" 2>&1
  check "up --runners 0 --provisioner: exit 0" [ $? -eq 0 ]
  check "up --runners 0 --provisioner: exit 0 [0 runners and a provisioner up.out]" grep -q "0 runners and a provisioner" "$tmp/up.out"
  ppipe upj "echo from-a-provisioned-runner"
  cli run "$tmp/upj.yml" --follow > "$tmp/run.out" 2> "$tmp/run.err"
  check "up: the job ran, its output followed" grep -q "s | from-a-provisioned-runner" "$tmp/run.out"
  check "up: the job ran, its output followed [succeeded run.out]" grep -q "succeeded" "$tmp/run.out"
  check "up: run says a provider starts a runner" grep -q "no connected runner can take the job yet: provider local (of provisioner) starts one for it" "$tmp/run.err"
  check "up: the provisioner started one" grep -q "provider local: started runner local-" "$tmp/logs/provisioner.log"
  local pp; pp=$(cat "$tmp/run/provisioner.pid")
  cli down > "$tmp/down.out" 2>&1
  check "down: stops the provisioner" grep -q "^provisioner stopped" "$tmp/down.out"
  check "down: stops the provisioner [! -e /proc/pp]" [ ! -e /proc/"$pp" ]
}

# README's worked examples of the command kind (the block "command
# providers: Nomad and Kubernetes"), as they are, against fake `nomad`
# and `kubectl` commands that start the runner as a local process: the
# templates expand to commands that work, the handles are read right.
case_worked_examples() {
  fresh worked
  bus_broker
  awk '/^# command providers: Nomad and Kubernetes start the runner/{f=1} f&&/^```/{exit} f' \
    "$src/README.md" > "$tmp/p.yml"
  check "worked examples: the block is in README" grep -q "kubectl create job" "$tmp/p.yml"
  mkdir -p "$tmp/fake"
  cat > "$tmp/fake/nomad" <<'SH'
#!/bin/sh
# fake nomad: job dispatch [-detach] [-meta K=V]... JOB | job stop [-purge] ID
[ "$1 $2" = "job stop" ] && { shift 2; [ "$1" = -purge ] && shift; kill "$(cat "$FAKE_DIR/${1##*/}.pid")"; exit; }
[ "$1 $2" = "job dispatch" ] || { echo "fake nomad: $*: not faked" >&2; exit 1; }
shift 2
while [ $# -gt 1 ]; do
  case $1 in
    -detach) ;;
    -meta) shift; case $1 in EVRUN_ID=*) id=${1#*=} ;; EVRUN_BROKER=*) br=${1#*=} ;; esac ;;
    *) echo "fake nomad: $1: not faked" >&2; exit 1 ;;
  esac
  shift
done
[ "$1" = evrun-runner ] && [ -n "$id" ] && [ -n "$br" ] || { echo "fake nomad: bad dispatch" >&2; exit 1; }
# what the parameterized job of README runs
evrun-runner --once --clean --broker "$br" --id "$id" --labels linux,big --executors process \
  --state-dir "$FAKE_DIR/nomad-$id" >> "$FAKE_DIR/nomad-runners.log" 2>&1 &
echo $! > "$FAKE_DIR/dispatch-$id.pid"
echo "Dispatched Job ID = evrun-runner/dispatch-$id"
echo "Evaluation ID     = 5a3c1f2e"
SH
  cat > "$tmp/fake/kubectl" <<'SH'
#!/bin/sh
# fake kubectl: create job NAME --image=IMAGE -- CMD... | delete job NAME [--wait=false]
case "$1 $2" in
  "create job")
    name=$3; shift 3
    case $1 in --image=?*) shift ;; *) echo "fake kubectl: no --image" >&2; exit 1 ;; esac
    [ "$1" = -- ] || { echo "fake kubectl: expected --" >&2; exit 1; }
    shift
    "$@" >> "$FAKE_DIR/k8s-runners.log" 2>&1 &
    echo $! > "$FAKE_DIR/$name.pid"
    echo "job.batch/$name created" ;;
  "delete job") kill "$(cat "$FAKE_DIR/$3.pid")"; echo "job.batch \"$3\" deleted" ;;
  *) echo "fake kubectl: $*: not faked" >&2; exit 1 ;;
esac
SH
  chmod +x "$tmp/fake/nomad" "$tmp/fake/kubectl"
  ppipe wbig "echo on-nomad" big
  ppipe wpod "echo on-k8s" pods
  local jb jp
  jb=$(submit "$tmp/wbig.yml" 2>/dev/null); jp=$(submit "$tmp/wpod.yml" 2>/dev/null)
  PATH="$tmp/fake:$bin:$PATH" FAKE_DIR=$tmp prov "$tmp/p.yml"
  check "worked examples: the nomad job ran" [ "$(wait_job "$jb" 30)" = succeeded ]
  check "worked examples: on a runner nomad started" grep -q '"runner":"nomad-' <(cli status "$jb" --json)
  check "worked examples: nomad's handle is the dispatched job id" wait_for 20 grep -q "provider nomad: runner nomad-[a-z0-9]*: handle evrun-runner/dispatch-nomad-[a-z0-9]*$" "$tmp/prov.log"
  # (the handle is logged once the start command's output is read: the job
  # may be over before that)
  check "worked examples: the kubernetes job ran" [ "$(wait_job "$jp" 30)" = succeeded ]
  check "worked examples: on a runner kubectl started" grep -q '"runner":"k8s-' <(cli status "$jp" --json)
  check "worked examples: kubectl's handle is the job name" wait_for 20 grep -q "provider k8s: runner k8s-[a-z0-9]*: handle k8s-[a-z0-9]*$" "$tmp/prov.log"
  check "worked examples: no failed start" [ "$(grep -c "a failed start" "$tmp/prov.log")" -eq 0 ]
  stop_prov
}

# kind: podman: jobs with the label pod drain through single-use runners
# in containers (max 2 at a time), their podman steps run as sibling
# containers (the busybox image's /etc/evrun-image, not the runner's),
# their process steps inside the runner's container, a git source
# (a repository bound in by volumes) checked out by the runner's git;
# the containers and state directories go once the runners are done.
case_podman() {
  fresh podman
  check "podman: the runner image builds" pod_image || return
  bus_broker
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
providers:
  - name: pods
    labels: [pod]
    kind: podman
    image: $runner_image
    executors: [podman, process]
    args: [--heartbeat-ms, "200", --lease-ms, "1500", --grace, "2"]
    env: { EVRUN_SECRET_PROV: "set-by-env" }
    volumes: ["$tmp/repo:$tmp/repo:ro"]
    max: 2
YML
  mkdir -p "$tmp/repo"
  git -C "$tmp/repo" init -q -b main && echo "from-git" > "$tmp/repo/file.txt"
  git -C "$tmp/repo" add . && git -C "$tmp/repo" -c user.email=t@example.org -c user.name=t commit -qm one
  cat > "$tmp/pg.yml" <<YML
pipeline: pg
image: localhost/evrun-busybox:latest
labels: [pod]
source: { git: { url: "file://$tmp/repo" } }
steps: [ { name: s, run: "cat file.txt" } ]
YML
  cat > "$tmp/pp.yml" <<YML
pipeline: pp
image: localhost/evrun-busybox:latest
labels: [pod]
steps: [ { name: s, run: "echo sibling; cat /etc/evrun-image; sleep 1" } ]
YML
  cat > "$tmp/pq.yml" <<YML
pipeline: pq
executor: process
labels: [pod]
secrets: [EVRUN_SECRET_PROV]
steps: [ { name: s, run: "echo inside; cat /etc/evrun-image; [ \"\$EVRUN_SECRET_PROV\" = set-by-env ] && echo env-ok" } ]
YML
  local ids=() i n maxb=0
  for i in 1 2 3 4; do ids+=("$(submit "$tmp/pp.yml" 2>/dev/null)"); done
  ids+=("$(submit "$tmp/pq.yml" 2>/dev/null)")
  ids+=("$(submit "$tmp/pg.yml" 2>/dev/null)")
  prov "$tmp/p.yml"
  for _ in $(seq 1 600); do
    n=$(cli runners --json 2>/dev/null | grep '"runner":"pods-' | grep -c '"state":"busy"')
    [ "$n" -gt "$maxb" ] && maxb=$n
    [ "$(st "${ids[3]}")" = succeeded ] && [ "$(st "${ids[4]}")" = succeeded ] \
      && [ "$(st "${ids[5]}")" = succeeded ] && break
    sleep 0.1
  done
  local fin
  for i in "${ids[@]}"; do
    fin=$(wait_job "$i" 120)
    check "podman: $i ran" [ "$fin" = succeeded ]
    if [ "$fin" != succeeded ]; then   # what to look at when it did not
      echo "  $i ended $fin:"; cli status "$i" 2>&1 | sed 's/^/  | /'
      cli logs "$i" 2>&1 | tail -20 | sed 's/^/  | /'
      tail -5 "$tmp/prov.log" | sed 's/^/  prov | /'
      local r
      r=$(cli status "$i" --json | sed -n 's/.*"runner":"\([^"]*\)".*/\1/p')
      [ -n "$r" ] && tail -20 "$tmp/provisioner/logs/$r.log" 2>&1 | sed "s/^/  $r | /"
    fi
    check "podman: $i on a pods runner" grep -q '"runner":"pods-' <(cli status "$i" --json)
  done
  check "podman: max 2 respected (at most $maxb busy at once)" [ "$maxb" -le 2 ]
  check "podman: max 2 respected (at most $maxb busy at once) [maxb -ge 1]" [ "$maxb" -ge 1 ]
  check "podman: the steps ran as sibling containers" grep -q "^s | localhost/evrun-busybox:latest$" <(cli logs "${ids[0]}")
  check "podman: a process step ran inside the runner's container" grep -q "^s | $runner_image " <(cli logs "${ids[4]}")
  check "podman: env reached the runner (a secret of its environment)" grep -q "^s | env-ok$" <(cli logs "${ids[4]}")
  check "podman: the git source, through volumes" grep -q "^s | from-git$" <(cli logs "${ids[5]}")
  check "podman: the provisioner said what it started" grep -q "provider pods: started runner pods-[a-z0-9]* for job .* (container evrun-runner-pods-[a-z0-9]* of $runner_image" "$tmp/prov.log"
  check "podman: six runners started" [ "$(grep -c "provider pods: started runner" "$tmp/prov.log")" -eq 6 ]
  check "podman: the runner's log is kept" grep -q "said hello\|--clean: removed" "$tmp"/provisioner/logs/pods-*.log
  local name gone=1
  for _ in $(seq 1 100); do
    gone=1
    for name in $(sed -n 's/.*(container \(evrun-runner-[a-z0-9-]*\) of .*/\1/p' "$tmp/prov.log"); do
      pod container exists "$name" && gone=0
    done
    [ "$gone" = 1 ] && [ -z "$(ls "$tmp/provisioner/runners")" ] && break
    sleep 0.2
  done
  check "podman: the containers are gone" [ "$gone" = 1 ]
  check "podman: the state directories are gone" [ -z "$(ls "$tmp/provisioner/runners")" ]
  check "podman: no failed start" [ "$(grep -c "a failed start" "$tmp/prov.log")" -eq 0 ]
  check "podman: --status" wait_for 5 status_has "^pods  *active  *0/2  *6  *0"
  stop_prov
}

# A podman provider whose image is not there: --dry-run says so; its
# starts fail with podman's message and it is paused after 3.
case_podman_missing() {
  fresh podmiss
  check "podman missing: the runner image builds" pod_image || return
  bus_broker
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
providers:
  - { name: nopod, labels: [nopod], kind: podman, image: localhost/evrun-no-such-image:latest }
YML
  printf 'pipeline: nm\nimage: localhost/evrun-busybox:latest\nlabels: [nopod]\nsteps: [ { name: s, run: "true" } ]\n' > "$tmp/nm.yml"
  submit "$tmp/nm.yml" > /dev/null 2>&1
  "$bin/evrun-provisioner" --config "$tmp/p.yml" --dry-run > "$tmp/dry.out" 2>&1
  check "podman missing: dry-run: exit 0" [ $? -eq 0 ]
  check "podman missing: dry-run: the podman provider" grep -q "^job .* (labels nopod,executor:podman): provider nopod would start a podman runner of image localhost/evrun-no-such-image:latest (0/4 running)" "$tmp/dry.out"
  check "podman missing: dry-run: the image is missing" grep -q "^  but image localhost/evrun-no-such-image:latest is not in the store of podman at $EVRUN_PODMAN_URL: build it with tools/build-runner-image" "$tmp/dry.out"
  prov "$tmp/p.yml"
  check "podman missing: paused after 3 failed starts" wait_for 20 grep -q "provider nopod paused: 3 failed starts in a row, the last: creating container evrun-runner-nopod-[a-z0-9]* of image localhost/evrun-no-such-image:latest: podman at $EVRUN_PODMAN_URL: .*image not known" "$tmp/prov.log"
  check "podman missing: evrun-cli runners says why" wait_for 5 runners_has "^nopod  *provisioner  *0/4  *3  *3  *paused: 3 failed starts in a row, the last: creating container"
  check "podman missing: no container left" [ -z "$(pod ps -a -q --filter label=evrun.provisioner="$tmp/provisioner")" ]
  stop_prov
}

# Podman runners that never say hello: one waits on a broker that is not
# there (stopped at register_timeout: its container goes), one exits at
# once (a bad option: a failed start once the broker's list shows no
# hello; paused after 3, the log named).
case_podman_silent() {
  fresh podsil
  check "podman silent: the runner image builds" pod_image || return
  bus_broker
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
register_timeout: 3s
runner_endpoint: "ipc://$tmp/nobroker"
providers:
  - { name: mute, labels: [mute], kind: podman, image: $runner_image, max: 1 }
  - { name: bad, labels: [bad], kind: podman, image: $runner_image, max: 1,
      args: [--no-such-option] }
YML
  printf 'pipeline: m\nimage: localhost/evrun-busybox:latest\nlabels: [mute]\nsteps: [ { name: s, run: "true" } ]\n' > "$tmp/m.yml"
  printf 'pipeline: b\nimage: localhost/evrun-busybox:latest\nlabels: [bad]\nsteps: [ { name: s, run: "true" } ]\n' > "$tmp/b.yml"
  submit "$tmp/m.yml" > /dev/null 2>&1
  submit "$tmp/b.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "podman silent: register_timeout said" wait_for 20 grep -q "provider mute: runner mute-[a-z0-9]* did not say hello within 3 s (register_timeout): stopping it" "$tmp/prov.log"
  local first; first=$(sed -n 's/.*provider mute: started runner \(mute-[a-z0-9]*\) .*/\1/p' "$tmp/prov.log" | head -1)
  check "podman silent: its container went" wait_for 15 bash -c "! podman --remote --url $EVRUN_PODMAN_URL container exists evrun-runner-$first"
  check "podman silent: a bad runner: paused" wait_for 30 grep -q "provider bad paused: 3 failed starts in a row, the last: the runner's container evrun-runner-bad-[a-z0-9]* ended before its runner said hello (see $tmp/provisioner/logs/bad-[a-z0-9]*.log)" "$tmp/prov.log"
  check "podman silent: the log says why" grep -q "unrecognized option '--no-such-option'" "$tmp"/provisioner/logs/bad-*.log
  stop_prov
  check "podman silent: no container left" [ -z "$(pod ps -a -q --filter label=evrun.provisioner="$tmp/provisioner")" ]
  check "podman silent: their state directories are gone" wait_for 10 bash -c "[ -z \"\$(ls $tmp/provisioner/runners)\" ]" \
    || { find "$tmp/provisioner/runners" -ls; cat "$tmp/prov.log"; }
}

prov_run test_provisioner ${*:-once once_killed process burst command paused register_timeout no_stop dry_run stranded killed broker_restart broker_restart_command command_lingers command_handle command_stop_hangs command_start_fails command_stderr up worked_examples podman podman_missing podman_silent}

#!/usr/bin/env bash
# test_provision_stop.sh BIN_DIR SRC_DIR [CASE...]: what a stop leaves of
# single-use runners and their jobs (README "Ephemeral runners and the
# provisioner"): a --once --clean runner stopped mid-job, the provisioner
# stopped while its runners take or run jobs, a broker that does not
# answer for a while.  Real evrun-broker, evrun-runner and
# evrun-provisioner processes on ipc:// sockets; the steps are host
# processes; the podman case needs EVRUN_PODMAN_URL (the "podman"
# fixture's service) and builds the runner image.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/prov_lib.sh"

st_is() { [ "$(st "$1")" = "$2" ]; }   # JOB STATUS
no_idle() { ! cli runners --json 2>/dev/null | grep "\"runner\":\"$1" | grep -q '"state":"idle"'; }   # PREFIX

# --once --clean stopped (SIGTERM) while its job runs past --stop-timeout:
# exit 2, the state directory kept (its log says why), the step left
# running; the same runner started again on it takes the job up, the job
# succeeds with its whole output, and only then is the directory removed.
case_once_stopped() {
  fresh oncest
  bus_broker
  ppipe slow "echo begin; sleep 4; echo end" k1
  local j p rc
  j=$(submit "$tmp/slow.yml" 2>/dev/null)
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id rvk1 --once --clean \
    --labels k1 --executors process --state-dir "$tmp/r-rvk1" --heartbeat-ms 200 \
    --lease-ms 1500 --stop-timeout 1 >> "$tmp/runner-rvk1.log" 2>&1 &
  p=$!
  check "once stopped: the job runs" wait_for 10 st_is "$j" running
  sleep 0.5
  kill "$p"
  wait "$p"; rc=$?
  check "once stopped: exit 2 (got $rc)" [ "$rc" -eq 2 ]
  check "once stopped: --clean kept the state directory" [ -d "$tmp/r-rvk1" ]
  check "once stopped: the log says why" \
    grep -q "exiting with 1 job running; they are taken up at the next start (--clean: the state directory is kept)" "$tmp/runner-rvk1.log"
  check "once stopped: nothing removed" bash -c "! grep -q -- '--clean: removed' $tmp/runner-rvk1.log"
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id rvk1 --once --clean \
    --labels k1 --executors process --state-dir "$tmp/r-rvk1" --heartbeat-ms 200 \
    --lease-ms 1500 >> "$tmp/runner-rvk1.log" 2>&1
  rc=$?
  check "once stopped, started again: exit 0 (got $rc)" [ "$rc" -eq 0 ]
  check "... the job succeeded" [ "$(wait_job "$j" 10)" = succeeded ]
  check "... its output whole, once" [ "$(cli logs "$j" | grep -c "begin\|end")" -eq 2 ]
  check "... --clean: now the state directory is gone" [ ! -e "$tmp/r-rvk1" ]
}

# --once --clean stopped (SIGTERM) as it starts, before any broker
# answered (a provisioner's runner stopped for saying no hello): once it
# makes its state directory the signal is counted, not fatal, so every
# try exits on its own (not by the signal) and leaves no directory behind.
case_term_at_start() {
  fresh termst
  local i d rc kept=0 killed=0
  for i in $(seq 0 15); do
    d=$tmp/r-ts$i
    "$bin/evrun-runner" --broker "ipc://$tmp/nobroker" --id ts$i --once --clean \
      --executors process --state-dir "$d" >> "$tmp/runner-ts.log" 2>&1 &
    # from its state directory's making on (the store opens, podman is
    # asked) up to its loop: before, a SIGTERM ended it there at once.
    # Looked for without a pause, but bounded by time (10 s), not by a
    # count of looks: a runner slow to start (ASan, a loaded machine) was
    # signalled before it had made the directory, and so before it counts
    # signals
    local t0=$SECONDS
    until [ -e "$d" ] || [ $((SECONDS - t0)) -ge 10 ]; do :; done
    check "term at start: try $i made its state directory" [ -e "$d" ]
    [ "$i" -gt 0 ] && sleep "0.00$((i / 2))"
    kill -TERM $! 2>/dev/null
    wait $!; rc=$?
    [ "$rc" -ge 128 ] && killed=$((killed + 1))
    [ -e "$d" ] && kept=$((kept + 1))
  done
  check "term at start: no try died of the signal ($killed did)" [ "$killed" -eq 0 ]
  check "term at start: no state directory left ($kept were)" [ "$kept" -eq 0 ]
}

# The provisioner stopped (SIGTERM) with three process runners: one that
# took a job since its last pass (which saw it idle) is left to finish it;
# one that waits for a job and one that never said hello are stopped and
# gone (their directories too) within the stop's 5 s.
case_stop_busy() {
  fresh stopbusy
  bus_broker && gateway_up
  # mute's runners talk to no broker: the last --broker is the one taken
  printf '#!/bin/sh\ncase "$*" in *"--id mute-"*) exec %s "$@" --broker ipc://%s/nobroker;; esac\nexec %s "$@"\n' \
    "$bin/evrun-runner" "$tmp" "$bin/evrun-runner" > "$tmp/runner.sh"
  chmod +x "$tmp/runner.sh"
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
register_timeout: 20s
runner: $tmp/runner.sh
providers:
  - { name: sb, labels: [sb], kind: process, executors: [process], max: 1,
      args: [--heartbeat-ms, "200", --lease-ms, "1500", --stop-timeout, "1"] }
  - { name: idl, labels: [idl], kind: process, executors: [process], max: 1,
      args: [--heartbeat-ms, "200", --lease-ms, "1500"] }
  - { name: mute, labels: [mute], kind: process, executors: [process], max: 1 }
YML
  tok=$(cli token)
  demand '{"labels":["sb"]}' > /dev/null
  demand '{"labels":["idl"]}' > /dev/null
  demand '{"labels":["mute"]}' > /dev/null
  prov "$tmp/p.yml" --poll-ms 5000
  check "stop busy: the runners said hello (a pass saw them idle)" wait_for 20 bash -c \
    "grep -q 'provider sb: runner sb-[a-z0-9]* said hello' $tmp/prov.log && grep -q 'provider idl: runner idl-[a-z0-9]* said hello' $tmp/prov.log"
  ppipe b "echo begin; sleep 3; echo end" sb
  local j; j=$(submit "$tmp/b.yml" 2>/dev/null)
  check "stop busy: the job runs on the idle sb runner" wait_for 10 st_is "$j" running
  stop_prov
  check "stop busy: the job succeeded" [ "$(wait_job "$j" 20)" = succeeded ]
  check "stop busy: its output whole" [ "$(cli logs "$j" | grep -c "begin\|end")" -eq 2 ]
  check "stop busy: the log says it was left to finish" \
    grep -q "runner sb-[a-z0-9]* left running: it has a job, or its job is ending" "$tmp/prov.log"
  check "stop busy: the busy runner was not stopped" bash -c "! grep -q 'runner sb-[a-z0-9]* waits for a job' $tmp/prov.log"
  check "stop busy: the idle runner was stopped" grep -q "runner idl-[a-z0-9]* waits for a job: stopping it" "$tmp/prov.log"
  check "stop busy: the silent runner was stopped" grep -q "runner mute-[a-z0-9]* has not said hello: stopping it" "$tmp/prov.log"
  check "stop busy: their processes are gone" bash -c "! pgrep -f -- '--id (idl|mute)-[a-z0-9]* .*$tmp' > /dev/null"
  check "stop busy: the runners' directories are gone" wait_for 10 bash -c "[ -z \"\$(ls $tmp/provisioner/runners)\" ]"
}

# The same with a podman runner: the provisioner (a pass every 15 s)
# stopped while the runner it started runs a job it has not seen it
# take: the container is left to finish the job, then goes, and with it
# the runner's directory.
case_stop_podman() {
  fresh stoppod
  check "stop podman: the runner image builds" pod_image || return
  bus_broker
  cat > "$tmp/p.yml" <<YML
register_timeout: 30s
providers:
  - { name: podr, labels: [pod23], kind: podman, image: $runner_image, executors: [process],
      args: [--heartbeat-ms, "200", --lease-ms, "1500"] }
YML
  ppipe pj "echo begin; sleep 3; echo end" pod23
  local j; j=$(submit "$tmp/pj.yml" 2>/dev/null)
  prov "$tmp/p.yml" --poll-ms 15000
  check "stop podman: the job runs" wait_for 30 st_is "$j" running
  stop_prov
  check "stop podman: the log says it was left to finish" \
    grep -q "runner podr-[a-z0-9]* left running: it has a job, or its job is ending" "$tmp/prov.log"
  check "stop podman: the job succeeded" [ "$(wait_job "$j" 30)" = succeeded ]
  check "stop podman: its output whole" [ "$(cli logs "$j" | grep -c "begin\|end")" -eq 2 ]
  check "stop podman: the container went" wait_for 20 bash -c \
    "[ -z \"\$(podman --remote --url $EVRUN_PODMAN_URL ps -a -q --filter label=evrun.provisioner=$tmp/provisioner)\" ]"
  check "stop podman: the runner's state directory went" wait_for 10 bash -c "[ -z \"\$(ls $tmp/provisioner/runners/*/ 2>/dev/null)\" ]"
}

# A broker that does not answer (SIGSTOP) for longer than register_timeout
# (3 s) while a runner has not said hello (a command provider's, its
# runner started 6 s late, after the broker is back): no failed start is
# counted, the runner is not stopped: from the broker's return it has a
# whole register_timeout; it says hello and runs the job, and no second
# runner is started.
case_broker_outage() {
  fresh outage
  bus_broker
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
register_timeout: 3s
providers:
  - name: late
    labels: [m2]
    kind: command
    executors: [process]
    start: >-
      (sleep 6; exec $bin/evrun-runner --broker {broker} --once --clean --id {runner_id}
      --labels m2 --executors process --state-dir $tmp/cr-{runner_id} --heartbeat-ms 200
      --lease-ms 1500 --once-wait 30) >> $tmp/late-runner.log 2>&1 & echo {runner_id}
YML
  ppipe m2 "echo ran" m2
  local j; j=$(submit "$tmp/m2.yml" 2>/dev/null)
  prov "$tmp/p.yml" --timeout-ms 300
  check "outage: a runner started" wait_for 10 grep -q "provider late: started runner" "$tmp/prov.log"
  kill -STOP "$broker_pid"
  sleep 4.5
  kill -CONT "$broker_pid"
  check "outage: the provisioner said the broker did not answer" grep -q "asking the broker: " "$tmp/prov.log"
  check "outage: the job ran" [ "$(wait_job "$j" 20)" = succeeded ]
  check "outage: on the runner started before the outage" grep -q '"runner":"late-' <(cli status "$j" --json)
  check "outage: no runner stopped for register_timeout" bash -c "! grep -q 'register_timeout' $tmp/prov.log"
  check "outage: no failed start" bash -c "! grep -q 'a failed start' $tmp/prov.log"
  check "outage: one runner started" [ "$(started late)" -eq 1 ]
  stop_prov
}

# A runner that says hello without its provider's labels (a command
# provider of [linux, q1] whose start runs a runner of --labels linux): a
# failed start naming the label it lacks, the runner stopped (its stop
# template); after 3 the provider is paused, nothing more is started.
case_labels_lack() {
  fresh lack
  bus_broker
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
providers:
  - name: q
    labels: [linux, q1]
    kind: command
    executors: [process]
    start: >-
      $bin/evrun-runner --broker {broker} --once --clean --id {runner_id} --labels linux
      --executors process --state-dir $tmp/q-{runner_id} --heartbeat-ms 200 --lease-ms 1500
      --once-wait 30 >> $tmp/q-runners.log 2>&1 & echo \$!
    stop: "kill {handle}"
    max: 3
YML
  ppipe q "echo ran" linux,q1
  local j; j=$(submit "$tmp/q.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "labels lack: a failed start naming the label" wait_for 20 grep -q \
    "provider q: runner q-[a-z0-9]* said hello without the provider's labels: it lacks q1: stopping it" "$tmp/prov.log"
  check "labels lack: paused after 3" wait_for 20 grep -q \
    "provider q paused: 3 failed starts in a row, the last: runner q-[a-z0-9]* said hello without the provider's labels: it lacks q1" "$tmp/prov.log"
  check "labels lack: their stop ran" wait_for 10 bash -c "[ \$(grep -c 'provider q: runner q-[a-z0-9]*: stop started' $tmp/prov.log) -eq 3 ]"
  sleep 1
  check "labels lack: 3 started, no more" [ "$(started q)" -eq 3 ]
  check "labels lack: the runners went" wait_for 10 no_idle q-
  check "labels lack: the job still waits" st_is "$j" queued
  stop_prov
}

# --status after the stop: the provisioner holds DIR/lock while it runs
# (a second one on the directory is refused), removes its table at its
# stop, and --status then says none runs (exit 1); after a kill -9 it
# shows the table left, marked so, exit 1 too.
case_status() {
  fresh status
  bus_broker
  printf 'providers: [ { name: st, labels: [st], kind: process, executors: [process] } ]\n' > "$tmp/p.yml"
  local rc
  prov "$tmp/p.yml"
  check "status: the table of the running one" wait_for 10 status_has "^st  *active"
  "$bin/evrun-provisioner" --status > "$tmp/s1.out" 2>&1; rc=$?
  check "status: exit 0 while it runs (got $rc)" [ "$rc" -eq 0 ]
  check "status: exit 0 while it runs (got $rc) [by the running provisioner s1.out]" grep -q "by the running provisioner" "$tmp/s1.out"
  timeout -k 10 10 "$bin/evrun-provisioner" --config "$tmp/p.yml" > "$tmp/second.out" 2>&1; rc=$?
  check "status: a second provisioner on the directory: exit 2 (got $rc)" [ "$rc" -eq 2 ]
  check "status: a second provisioner on the directory: exit 2 (got $rc) [provisioner/lock: the state directory is in u...]" grep -q "$tmp/provisioner/lock: the state directory is in use by evrun-provisioner pid $prov_pid" "$tmp/second.out"
  stop_prov
  check "status: the table is removed at the stop" [ ! -e "$tmp/provisioner/providers" ]
  "$bin/evrun-provisioner" --status > "$tmp/s2.out" 2>&1; rc=$?
  check "status: exit 1 once it stopped (got $rc)" [ "$rc" -eq 1 ]
  check "status: exit 1 once it stopped (got $rc) [no provisioner runs with tmp/provisioner s2.out]" grep -q "no provisioner runs with $tmp/provisioner" "$tmp/s2.out"
  prov "$tmp/p.yml"
  check "status: started again" wait_for 10 status_has "^st  *active"
  kill -9 "$prov_pid"; wait "$prov_pid" 2>/dev/null; prov_pid=
  "$bin/evrun-provisioner" --status > "$tmp/s3.out" 2>&1; rc=$?
  check "status: after a kill: exit 1 (got $rc), the table marked" [ "$rc" -eq 1 ]
  check "status: after a kill: exit 1 (got $rc), the table marked [no provisioner runs with tmp/provisioner: thi...]" grep -q "no provisioner runs with $tmp/provisioner: this table is the last one's" "$tmp/s3.out"
  check "status: after a kill: exit 1 (got $rc), the table marked [^st *active s3.out]" grep -q "^st  *active" "$tmp/s3.out"
}

# SIGHUP is ignored with a log line (the provisioner runs on, stops as
# usual); --poll-ms takes a whole number only.
case_hup() {
  fresh hup
  bus_broker
  printf 'providers: [ { name: h, labels: [h], kind: process, executors: [process] } ]\n' > "$tmp/p.yml"
  local rc
  timeout -k 10 5 "$bin/evrun-provisioner" --config "$tmp/p.yml" --poll-ms 100abc > "$tmp/poll.out" 2>&1; rc=$?
  check "hup: --poll-ms 100abc: exit 2 (got $rc)" [ "$rc" -eq 2 ]
  check "hup: --poll-ms 100abc: exit 2 (got $rc) [poll-ms 100abc: expected a whole number of mi...]" grep -q "poll-ms 100abc: expected a whole number of milliseconds, 50 to 600000" "$tmp/poll.out"
  prov "$tmp/p.yml"
  check "hup: running" wait_for 10 grep -q "watching the broker" "$tmp/prov.log"
  kill -HUP "$prov_pid"
  check "hup: said ignored" wait_for 5 grep -q "SIGHUP ignored: the config is read at the start only" "$tmp/prov.log"
  check "hup: still running" kill -0 "$prov_pid"
  stop_prov
  check "hup: stopped as usual" grep -q "stopping: " "$tmp/prov.log"
}

# A provisioner killed (SIGKILL) and started again adopts the process
# runners the first one left (found by the lock in their directories): a
# busy one counts against its provider's max (nothing more is started
# while it runs), one that never said hello is stopped after
# register_timeout; the next job runs once the busy one is gone.
case_adopt() {
  fresh adopt
  bus_broker
  printf '#!/bin/sh\ncase "$*" in *"--id mute-"*) exec %s "$@" --broker ipc://%s/nobroker;; esac\nexec %s "$@"\n' \
    "$bin/evrun-runner" "$tmp" "$bin/evrun-runner" > "$tmp/runner.sh"
  chmod +x "$tmp/runner.sh"
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
register_timeout: 3s
runner: $tmp/runner.sh
providers:
  - { name: ad, labels: [ad], kind: process, executors: [process], max: 1,
      args: [--heartbeat-ms, "200", --lease-ms, "1500", --once-wait, "60"] }
  - { name: mute, labels: [mute], kind: process, executors: [process], max: 1 }
YML
  ppipe a1 "echo a1; sleep 5; echo a1-end" ad
  ppipe a2 "echo a2" ad
  ppipe m "true" mute
  local j1 j2 mpid
  j1=$(submit "$tmp/a1.yml" 2>/dev/null)
  submit "$tmp/m.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "adopt: the first job runs" wait_for 15 st_is "$j1" running
  check "adopt: a mute runner started" wait_for 10 grep -q "provider mute: started runner" "$tmp/prov.log"
  mpid=$(sed -n 's/.*provider mute: started runner .* (pid \([0-9]*\),.*/\1/p' "$tmp/prov.log" | head -1)
  kill -9 "$prov_pid"; wait "$prov_pid" 2>/dev/null
  j2=$(submit "$tmp/a2.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "adopt: the busy runner adopted" wait_for 10 grep -q "provider ad: adopted runner ad-[a-z0-9]* of an earlier provisioner (pid " "$tmp/prov.log"
  check "adopt: the mute runner adopted" grep -q "provider mute: adopted runner mute-[a-z0-9]* of an earlier provisioner (pid $mpid)" "$tmp/prov.log"
  sleep 1
  check "adopt: max 1 kept: nothing more started while it runs" [ "$(started ad)" -eq 1 ]
  check "adopt: the second job waits" st_is "$j2" queued
  check "adopt: --status counts it" status_has "^ad  *active  *1/1 "
  check "adopt: the mute one stopped (never said hello)" wait_for 10 grep -q \
    "provider mute: adopted runner mute-[a-z0-9]* did not say hello within 3 s (register_timeout): stopping it" "$tmp/prov.log"
  check "adopt: its process went" wait_for 10 bash -c "! kill -0 $mpid 2>/dev/null"
  check "adopt: the first job succeeded" [ "$(wait_job "$j1" 20)" = succeeded ]
  check "adopt: the second ran on a new runner once the first went" [ "$(wait_job "$j2" 20)" = succeeded ]
  check "adopt: the second ran on a new runner once the first went [(started ad) -eq 2]" [ "$(started ad)" -eq 2 ]
  check "adopt: no failed start counted for adopted ones" bash -c "! grep -q 'a failed start: adopted' $tmp/prov.log"
  stop_prov
}

# The same for a podman runner, found by its container's label: adopted
# busy (max 1 kept), its job finishes, then the next job's runner starts.
case_adopt_podman() {
  fresh adoptpod
  check "adopt podman: the runner image builds" pod_image || return
  bus_broker
  cat > "$tmp/p.yml" <<YML
providers:
  - { name: pa, labels: [pa], kind: podman, image: $runner_image, executors: [process], max: 1,
      args: [--heartbeat-ms, "200", --lease-ms, "1500"] }
YML
  ppipe p1 "echo p1; sleep 4; echo p1-end" pa
  ppipe p2 "echo p2" pa
  local j1 j2
  j1=$(submit "$tmp/p1.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "adopt podman: the first job runs" wait_for 30 st_is "$j1" running
  kill -9 "$prov_pid"; wait "$prov_pid" 2>/dev/null
  j2=$(submit "$tmp/p2.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "adopt podman: adopted" wait_for 10 grep -q \
    "provider pa: adopted runner pa-[a-z0-9]* of an earlier provisioner (container evrun-runner-pa-" "$tmp/prov.log"
  sleep 1
  check "adopt podman: nothing more started while it runs" [ "$(started pa)" -eq 1 ]
  check "adopt podman: the first job succeeded" [ "$(wait_job "$j1" 30)" = succeeded ]
  check "adopt podman: then the second" [ "$(wait_job "$j2" 60)" = succeeded ]
  check "adopt podman: then the second [(started pa) -eq 2]" [ "$(started pa)" -eq 2 ]
  stop_prov
  check "adopt podman: no container left" wait_for 20 bash -c \
    "[ -z \"\$(podman --remote --url $EVRUN_PODMAN_URL ps -a -q --filter label=evrun.provisioner=$tmp/provisioner)\" ]"
}

# The same for a command provider's runners, found by what the first
# provisioner wrote of each in DIR/commands (its id, its handle): a busy
# one counts against max 1 (nothing more started while it runs, none
# started for the next job either), one that never says hello (a sleep)
# is stopped after register_timeout by its stop template with the handle
# the first one read; the next job runs once the busy one is gone, and
# the records go with their runners.
case_adopt_command() {
  fresh adoptcmd
  bus_broker
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
register_timeout: 3s
providers:
  - name: ca
    labels: [ca]
    kind: command
    executors: [process]
    start: >-
      $bin/evrun-runner --broker {broker} --once --clean --id {runner_id} --labels ca
      --executors process --state-dir $tmp/ca-{runner_id} --heartbeat-ms 200 --lease-ms 1500
      --once-wait 30 >> $tmp/ca-runners.log 2>&1 & echo \$!
    stop: "kill {handle}"
    max: 1
  - name: cmute
    labels: [cmute]
    kind: command
    executors: [process]
    start: "sleep 60 > /dev/null 2>&1 & echo \$!"
    stop: "kill {handle}"
    max: 1
YML
  ppipe c1 "echo c1; sleep 5; echo c1-end" ca
  ppipe c2 "echo c2" ca
  ppipe cm "true" cmute
  local j1 j2 jm mpid
  j1=$(submit "$tmp/c1.yml" 2>/dev/null)
  jm=$(submit "$tmp/cm.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "adopt command: the first job runs" wait_for 15 st_is "$j1" running
  check "adopt command: the mute one's handle read" wait_for 10 grep -q "provider cmute: runner cmute-[a-z0-9]*: handle [0-9]" "$tmp/prov.log"
  mpid=$(sed -n 's/.*provider cmute: runner cmute-[a-z0-9]*: handle \([0-9]*\)$/\1/p' "$tmp/prov.log" | head -1)
  kill -9 "$prov_pid"; wait "$prov_pid" 2>/dev/null
  j2=$(submit "$tmp/c2.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "adopt command: the busy runner adopted" wait_for 10 grep -q "provider ca: adopted runner ca-[a-z0-9]* of an earlier provisioner (handle [0-9]" "$tmp/prov.log"
  check "adopt command: the mute runner adopted" grep -q "provider cmute: adopted runner cmute-[a-z0-9]* of an earlier provisioner (handle $mpid)" "$tmp/prov.log"
  sleep 1
  check "adopt command: max 1 kept: nothing more started while it runs" [ "$(started ca)" -eq 1 ]
  check "adopt command: the second job waits" st_is "$j2" queued
  check "adopt command: --status counts it" status_has "^ca  *active  *1/1 "
  check "adopt command: no second mute runner started" [ "$(started cmute)" -eq 1 ]
  check "adopt command: the mute one stopped (never said hello)" wait_for 10 grep -q \
    "provider cmute: adopted runner cmute-[a-z0-9]* did not say hello within 3 s (register_timeout): stopping it" "$tmp/prov.log"
  check "adopt command: by its stop template, with the handle read before" wait_for 10 bash -c "! kill -0 $mpid 2>/dev/null"
  cli cancel "$jm" > /dev/null 2>&1
  check "adopt command: the first job succeeded" [ "$(wait_job "$j1" 20)" = succeeded ]
  check "adopt command: the second ran on a new runner once the first went" [ "$(wait_job "$j2" 20)" = succeeded ]
  check "adopt command: the second ran on a new runner once the first went [(started ca) -eq 2]" [ "$(started ca)" -eq 2 ]
  check "adopt command: no failed start counted for adopted ones" bash -c "! grep -q 'a failed start: adopted' $tmp/prov.log"
  check "adopt command: the records of the runners gone are removed" wait_for 10 bash -c \
    "[ -z \"\$(ls $tmp/provisioner/commands/ | grep '^ca-')\" ]"
  # stopped (SIGTERM) while its runner has a job: left running, adopted
  # by the next provisioner
  local j3; j3=$(submit "$tmp/c1.yml" 2>/dev/null)
  check "adopt command: a third job runs" wait_for 15 st_is "$j3" running
  # its handle read before the stop (a runner can take its job before
  # the start command prints the handle: one stopped then is adopted
  # without it, and its stop cannot run, as README says)
  check "adopt command: the third runner's handle read" wait_for 10 bash -c \
    "[ \$(grep -c 'provider ca: runner ca-[a-z0-9]*: handle [0-9]' $tmp/prov.log) -eq 3 ]"
  stop_prov
  check "adopt command: its runner left running at the stop" grep -q "runner ca-[a-z0-9]* left running: it has a job" "$tmp/prov.log"
  prov "$tmp/p.yml"
  check "adopt command: adopted after a stop too" wait_for 10 bash -c \
    "[ \$(grep -c 'provider ca: adopted runner ca-[a-z0-9]* of an earlier provisioner (handle [0-9]*; it said hello)' $tmp/prov.log) -eq 2 ]"
  check "adopt command: the third job succeeded" [ "$(wait_job "$j3" 20)" = succeeded ]
  check "adopt command: no runner started for it but its own" [ "$(started ca)" -eq 3 ]
  check "adopt command: its record removed once it is gone" wait_for 10 bash -c \
    "[ -z \"\$(ls $tmp/provisioner/commands/ | grep '^ca-')\" ]"
  stop_prov
}

# The provisioner stopped while a command provider's stop runs (a
# runner that never said hello): it exited at once, the stop left
# running for ever if it hung, its output lost and the runner's record
# removed before the stop had done anything.  Now the stop is waited
# for (5 s), then killed, its output in the runner's log, its record
# kept: the next provisioner on the directory adopts it and stops it.
case_stop_hangs_at_stop() {
  fresh stophang
  bus_broker
  cat > "$tmp/p.yml" <<YML
register_timeout: 60s
providers:
  - name: sh
    labels: [sh]
    kind: command
    executors: [process]
    start: "echo h-{runner_id}"
    stop: "echo stopping {handle}; [ -e $tmp/quick ] || exec sleep 60"
    max: 1
YML
  ppipe sh1 "true" sh
  submit "$tmp/sh1.yml" > /dev/null 2>&1
  prov "$tmp/p.yml"
  check "stop hangs at the stop: the handle read" wait_for 10 grep -q "provider sh: runner sh-[a-z0-9]*: handle h-sh-" "$tmp/prov.log"
  local id spid; id=$(sed -n 's/.*provider sh: runner \(sh-[a-z0-9]*\): handle .*/\1/p' "$tmp/prov.log" | head -1)
  stop_prov
  spid=$(sed -n "s/.*provider sh: runner $id: stop started (pid \([0-9]*\)).*/\1/p" "$tmp/prov.log")
  check "stop hangs at the stop: its stop started" [ -n "$spid" ]
  check "stop hangs at the stop: said, killed" grep -q "runner $id: its stop (pid $spid) did not end within 5 s of the provisioner's stop: killing it; its record stays" "$tmp/prov.log"
  check "stop hangs at the stop: not left running" wait_for 5 bash -c "! kill -0 $spid 2>/dev/null || grep -q '^State:.*Z' /proc/$spid/status"
  check "stop hangs at the stop: its output in the runner's log" grep -q "^stopping h-$id$" "$tmp/provisioner/logs/$id.log"
  check "stop hangs at the stop: its record kept" [ -e "$tmp/provisioner/commands/$id" ]
  # the next provisioner on the directory: adopts it, stops it again (quick now)
  touch "$tmp/quick"
  sed -i 's/register_timeout: 60s/register_timeout: 2s/' "$tmp/p.yml"
  prov "$tmp/p.yml"
  check "stop hangs at the stop: adopted by the next provisioner" wait_for 10 grep -q "provider sh: adopted runner $id of an earlier provisioner (handle h-$id" "$tmp/prov.log"
  check "stop hangs at the stop: its stop ran again" wait_for 10 bash -c "[ \$(grep -c '^stopping h-$id$' $tmp/provisioner/logs/$id.log) -eq 2 ]"
  check "stop hangs at the stop: its record gone then" wait_for 10 bash -c "[ ! -e $tmp/provisioner/commands/$id ]"
  stop_prov
}

# A runner stopped for register_timeout that says hello after all (its
# start took 4 s, SIGTERM ignored meanwhile) is not killed 5 s later: it
# may have taken a job (it did), which it finishes.
case_spared() {
  fresh spared
  bus_broker
  printf '#!/bin/sh\ntrap "" TERM\nsleep 4\nexec %s "$@"\n' "$bin/evrun-runner" > "$tmp/runner.sh"
  chmod +x "$tmp/runner.sh"
  cat > "$tmp/p.yml" <<YML
register_timeout: 2s
runner: $tmp/runner.sh
providers:
  - { name: sp, labels: [sp], kind: process, executors: [process], max: 1,
      args: [--heartbeat-ms, "200", --lease-ms, "1500", --once-wait, "30"] }
YML
  ppipe sj "echo begin; sleep 4; echo end" sp
  local j; j=$(submit "$tmp/sj.yml" 2>/dev/null)
  prov "$tmp/p.yml"
  check "spared: stopped for register_timeout" wait_for 10 grep -q "did not say hello within 2 s (register_timeout): stopping it" "$tmp/prov.log"
  check "spared: said hello after all: not killed" wait_for 15 grep -q \
    "runner sp-[a-z0-9]* still runs 5 s after SIGTERM; it said hello (it may have a job): not killed" "$tmp/prov.log"
  check "spared: the job it took succeeded" [ "$(wait_job "$j" 20)" = succeeded ]
  check "spared: its output whole" [ "$(cli logs "$j" | grep -c "begin\|end")" -eq 2 ]
  stop_prov
}

prov_run test_provision_stop ${*:-once_stopped term_at_start stop_busy stop_podman broker_outage labels_lack status hup adopt adopt_podman adopt_command stop_hangs_at_stop spared}

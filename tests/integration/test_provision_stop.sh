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

prov_run test_provision_stop ${*:-once_stopped}

#!/usr/bin/env bash
# test_provisioner.sh BIN_DIR SRC_DIR [CASE...]: single-use runners
# (evrun-runner --once) and evrun-provisioner (README "Ephemeral runners
# and the provisioner").  Real evrun-broker, evrun-runner and
# evrun-provisioner processes on ipc:// sockets; the steps are host
# processes (`executor: process`), so no podman service is needed.
set -u
bin=$1 src=$2
shift 2
root=$(mktemp -d /tmp/evr-prov-XXXXXX)
tmp=$root
. "$src/tests/integration/bus_lib.sh"
prov_pid=
stop_all() {
  [ -n "$prov_pid" ] && kill "$prov_pid" 2>/dev/null && wait "$prov_pid" 2>/dev/null
  prov_pid=
  bus_stop
}
trap 'stop_all; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$root"' EXIT
fails=0 passes=0 case_name=

# A process pipeline NAME whose one step runs CMD; LABELS: its labels.
ppipe() {   # NAME CMD [LABELS]
  cat > "$tmp/$1.yml" <<YML
pipeline: $1
executor: process
${3:+labels: [$3]}
steps: [ { name: s, run: "$2" } ]
YML
}

once() {   # ID [ARGS...]: a single-use runner in the foreground; its status in $once_rc
  local id=$1; shift
  "$bin/evrun-runner" --broker "ipc://$tmp/bus/runners" --id "$id" --once \
    --state-dir "$tmp/r-$id" --heartbeat-ms 200 --lease-ms 1500 --executors process \
    "$@" >> "$tmp/runner-$id.log" 2>&1
  once_rc=$?
}

# --once: exits with the job's status (0 succeeded, 1 failed); --clean
# removes its state directory; `runners` shows it ephemeral meanwhile.
case_once() {
  fresh once
  bus_broker
  ppipe ok "echo hello; sleep 1"
  ppipe bad "exit 3"
  local j1 j2
  j1=$(submit "$tmp/ok.yml")
  once o-1 --clean &
  local p=$!
  bus_wait_runners 1
  check "runners: the table says ephemeral" grep -q "^o-1 .*ephemeral$" <(cli runners)
  check "runners --json: ephemeral true" grep -q '"runner":"o-1".*"ephemeral":true' <(cli runners --json)
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
  once o-4 --once-wait 1
  check "once: exit 3 when no job came within --once-wait (got $once_rc)" [ "$once_rc" -eq 3 ]
  check "once: says so" grep -q "no job came within 1 s" "$tmp/runner-o-4.log"
}

cases=${*:-once}
for c in $cases; do
  case_name=$c
  echo "== $c"
  "case_$c"
done
stop_all
case_name=sanitizers
check "no sanitizer report in any broker or runner log" \
  bash -c "! grep -l 'Sanitizer\|runtime error' $root/*/*.log"
echo "test_provisioner: $passes passed, $fails failed"
[ "$fails" -eq 0 ]

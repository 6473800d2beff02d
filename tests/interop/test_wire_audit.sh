#!/usr/bin/env bash
# test_wire_audit.sh BIN_DIR SRC_DIR: a real evrun-broker on ipc:// sockets
# (no runner process, no podman), driven by evr-wire-audit, a peer written
# in C from schema/PROTOCOL.md alone: valid and malformed messages of every
# type.  The broker must answer each as the document says, never crash,
# and stop cleanly at the end (under sanitizers: no report, no leak).
set -u
if [ $# -ne 2 ]; then echo "usage: $0 BIN_DIR SRC_DIR" >&2; exit 2; fi
bin=$1
tmp=$(mktemp -d /tmp/evr-wa-XXXXXX)
broker_pid=
trap '[ -n "$broker_pid" ] && kill -9 "$broker_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
# shellcheck source=broker_lib.sh
. "$2/tests/interop/broker_lib.sh"

mkdir -p "$tmp/pipelines"
cat > "$tmp/pipelines/audit-reg.yml" <<'YML'
pipeline: audit-reg
image: localhost/evrun-busybox:latest
labels: [audit-none]
args: { WHO: { default: world } }
steps: [ { name: s, run: "true" } ]
YML
cat > "$tmp/pipelines/audit-git.yml" <<'YML'
pipeline: audit-git
image: localhost/evrun-busybox:latest
labels: [audit-none]
source: { git: { url: "https://example.invalid/r.git", ref: main } }
steps: [ { name: s, run: "true" } ]
YML
"$bin/evrun-broker" --local --state-dir "$tmp" --pipelines-dir "$tmp/pipelines" \
  --no-sync > "$tmp/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 200); do [ -S "$tmp/bus/runners" ] && break; sleep 0.05; done

"$bin/evr-wire-audit" "ipc://$tmp/bus/clients" "ipc://$tmp/bus/runners" "ipc://$tmp/bus/events"
rc=$?
broker_end "during the audit" || rc=1

# Odd but valid submit bodies (PROTOCOL.md "Encoding"), accepted, then the
# broker killed (SIGKILL: no checkpoint of its submit journal) and started
# again: each job is as it was accepted.
s_broker() {   # the Nth start: waits for its Nth "serving" line (a killed one leaves its sockets)
  "$bin/evrun-broker" --local --state-dir "$tmp" --pipelines-dir "$tmp/pipelines" \
    --no-sync >> "$tmp/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 1 200); do
    [ "$(grep -c 'serving clients' "$tmp/broker.log")" -ge "$1" ] && break
    sleep 0.05
  done
}
if [ -z "$broker_pid" ]; then
  s_broker 2
  "$bin/evr-wire-audit" --odd-submit "ipc://$tmp/bus/clients" "$tmp/odd.txt" || rc=1
  kill -9 "$broker_pid"   # at once: the jobs are in the journal only, most often
  wait "$broker_pid" 2>/dev/null
  s_broker 3
  for f in $(cut -d' ' -f2 "$tmp/odd.txt"); do
    "$bin/evrun-cli" status --broker "ipc://$tmp/bus/clients" --json "$f"
  done > "$tmp/odd-status" 2>&1
  if [ "$(grep -c '"status":"queued"' "$tmp/odd-status")" -ne "$(wc -l < "$tmp/odd.txt")" ]; then
    echo "FAIL - evrun-cli status after the restart: not every odd job queued" >&2
    cat "$tmp/odd-status" >&2
    rc=1
  fi
  "$bin/evr-wire-audit" --odd-check "ipc://$tmp/bus/clients" "$tmp/odd.txt" || rc=1
  grep -o 'submit journal: [0-9]* acknowledged submits* taken up' "$tmp/broker.log"
  broker_end "during the odd submits" || rc=1
fi
rc=$(broker_log_end "$rc" 40)

# The job control channel, from a client written from PROTOCOL.md alone
# (tests/interop/chan_audit.py) in a host-command step: evrun-runner
# --exec, no broker, no podman.
if command -v python3 > /dev/null; then
  cat > "$tmp/chan.yml" <<YML
pipeline: chan-audit
executor: process
triggers: [deploy]
steps:
  - name: probe
    run: python3 '$2/tests/interop/chan_audit.py'
YML
  "$bin/evrun-runner" --exec "$tmp/chan.yml" --state-dir "$tmp/chan" --executors process \
    > "$tmp/chan.out" 2>&1
  crc=$?
  grep -a 'FAIL\|chan:' "$tmp/chan.out"
  if [ "$crc" -ne 0 ] || ! grep -q 'chan: [0-9]* checks, 0 failed' "$tmp/chan.out"; then
    echo "FAIL - the job control channel audit (runner exit $crc)" >&2
    tail -n 30 "$tmp/chan.out" >&2
    rc=1
  fi
  if ! grep -q 'probe | value: \*\*\*$' "$tmp/chan.out"; then
    echo "FAIL - the secret the probe registered is not masked in its output" >&2
    rc=1
  fi
else
  echo "(no python3: the job control channel audit skipped)"
fi
exit "$rc"

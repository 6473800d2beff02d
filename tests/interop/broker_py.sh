#!/usr/bin/env bash
# broker_py.sh BIN_DIR SRC_DIR SCRIPT: a real evrun-broker on ipc:// sockets
# (no runner process, no podman) and tests/interop/SCRIPT, a client in
# Python written from schema/PROTOCOL.md (what each checks: the top of the
# script, and tests/interop/CMakeLists.txt).  The script gets the broker's
# endpoints in EVR_CLIENT_EP, EVR_RUNNER_EP and EVR_EVENTS_EP and its pid
# in EVR_BROKER_PID; the broker must outlive it, stop cleanly on SIGTERM
# and leave no sanitizer report in its log.
set -u
if [ $# -ne 3 ]; then echo "usage: $0 BIN_DIR SRC_DIR SCRIPT" >&2; exit 2; fi
bin=$1
tmp=$(mktemp -d "/tmp/evr-${3%.py}-XXXXXX")
broker_pid=
trap '[ -n "$broker_pid" ] && kill -9 "$broker_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

if ! /usr/bin/python3 -c 'import zmq, msgpack' 2>/dev/null; then
  # shellcheck source=../../tools/lib/deps.sh
  . "$2/tools/lib/deps.sh"
  evr_install python3-zmq python3-msgpack || exit 1
fi
# shellcheck source=broker_lib.sh
. "$2/tests/interop/broker_lib.sh"

"$bin/evrun-broker" --local --state-dir "$tmp" --no-sync > "$tmp/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 200); do
  grep -q 'serving clients' "$tmp/broker.log" && break
  sleep 0.05
done

EVR_BROKER_PID=$broker_pid EVR_CLIENT_EP=ipc://$tmp/bus/clients \
  EVR_RUNNER_EP=ipc://$tmp/bus/runners EVR_EVENTS_EP=ipc://$tmp/bus/events \
  /usr/bin/python3 "$2/tests/interop/$3"
rc=$?
broker_end || rc=1
exit "$(broker_log_end "$rc" 30)"

#!/usr/bin/env bash
# test_interop.sh BIN_DIR SRC_DIR: start a real broker and one runner on
# ipc:// sockets, then drive them with the Python client written from
# schema/PROTOCOL.md (tests/interop/test_interop.py).  Needs the podman
# service of the integration tests (EVRUN_PODMAN_URL) and the test image.
set -u
if [ $# -ne 2 ]; then echo "usage: $0 BIN_DIR SRC_DIR" >&2; exit 2; fi
tmp=$(mktemp -d /tmp/evr-io-XXXXXX)
bin=$1
# shellcheck source=../integration/bus_lib.sh
source "$2/tests/integration/bus_lib.sh"
trap 'bus_stop; rm -rf "$tmp"' EXIT

if ! /usr/bin/python3 -c 'import zmq, msgpack' 2>/dev/null; then
  # shellcheck source=../../tools/lib/deps.sh
  . "$2/tools/lib/deps.sh"
  evr_install python3-zmq python3-msgpack || exit 1
fi

bus_broker || exit 1
bus_runner io-1 "" 2
bus_wait_runners 1 || { tail "$tmp"/*.log >&2; exit 1; }

export EVR_CLIENT_EP=ipc://$tmp/bus/clients EVR_EVENTS_EP=ipc://$tmp/bus/events
/usr/bin/python3 "$2/tests/interop/test_interop.py" "$bin"
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "--- broker.log" >&2; tail -n 30 "$tmp/broker.log" >&2
  echo "--- runner-io-1.log" >&2; tail -n 30 "$tmp/runner-io-1.log" >&2
fi
bus_stop
exit "$rc"

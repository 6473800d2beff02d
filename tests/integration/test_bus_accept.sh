#!/usr/bin/env bash
# test_bus_accept.sh BIN_DIR SRC_DIR [CASE ...]: how a real evrun-broker
# takes a runner's job.accepted and a job's end (refused ones, one from
# another runner than the job's, one naming no runner), with runners
# played by tests/integration/bus_accept.py (the client of tests/interop,
# written from schema/PROTOCOL.md).  No podman needed.
set -u
if [ $# -lt 2 ]; then echo "usage: $0 BIN_DIR SRC_DIR [CASE ...]" >&2; exit 2; fi
bin=$1 src=$2; shift 2
if ! /usr/bin/python3 -c 'import zmq, msgpack' 2>/dev/null; then
  # shellcheck source=../../tools/lib/deps.sh
  . "$src/tools/lib/deps.sh"
  evr_install python3-zmq python3-msgpack || exit 1
fi
exec /usr/bin/python3 "$src/tests/integration/bus_accept.py" "$bin" "$@"

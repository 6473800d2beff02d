#!/usr/bin/env bash
# test_bus_goodbye.sh BIN_DIR SRC_DIR [CASE ...]: a runner that stops
# cleanly says goodbye: the broker lists it stopped, not lost, and queues
# again at once the jobs dispatched to it that it never accepted.  Real
# evrun-broker and evrun-runner (process executor), runners played on the
# broker's socket, and a stand-in broker: tests/integration/bus_goodbye.py.
# No podman needed.
set -u
if [ $# -lt 2 ]; then echo "usage: $0 BIN_DIR SRC_DIR [CASE ...]" >&2; exit 2; fi
bin=$1 src=$2; shift 2
if ! /usr/bin/python3 -c 'import zmq, msgpack' 2>/dev/null; then
  # shellcheck source=../../tools/lib/deps.sh
  . "$src/tools/lib/deps.sh"
  evr_install python3-zmq python3-msgpack || exit 1
fi
exec /usr/bin/python3 "$src/tests/integration/bus_goodbye.py" "$bin" "$@"

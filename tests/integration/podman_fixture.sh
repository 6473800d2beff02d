#!/usr/bin/env bash
# podman_fixture.sh start|stop SRC_DIR: the podman service and test images
# the integration tests share (ctest fixture "podman").  The service runs
# on /tmp/evr-it-podman/podman.sock, a short path (unix sockets hold 107
# bytes at most).
set -euo pipefail
cmd=$1 src=$2
dir=/tmp/evr-it-podman
case $cmd in
  start)
    "$src/tools/podman-service" start "$dir"
    "$src/tools/build-test-image"
    EVRUN_IMAGE=localhost/evrun-busybox-alt:latest "$src/tools/build-test-image"
    ;;
  stop)
    export CONTAINERS_CONF=$src/tools/podman/containers.conf
    # anything a failed test left behind
    podman ps -a --format '{{.Names}}' | grep '^evrun-' | xargs -r podman rm -f > /dev/null || true
    podman volume ls --format '{{.Name}}' | grep '^evrun-' | xargs -r podman volume rm -f > /dev/null || true
    "$src/tools/podman-service" stop "$dir"
    ;;
esac

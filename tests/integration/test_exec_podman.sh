#!/usr/bin/env bash
# test_exec_podman.sh BIN_DIR SRC_DIR [CASE...]: evrun-runner --exec when
# podman fails it: an image missing, without /workspace or /bin/sh, a pull
# policy that cannot be met, a service that is not there or goes away
# (a service of the case's own, never the fixture's), a container removed
# by another tool, answers no podman gives (podman_proxy.py).  Each error
# must say what to fix; nothing of a job may be left in podman.  The rest
# of a pipeline's basics is test_exec.sh's.
set -u
bin=$1 src=$2
shift 2
. "$(dirname "$0")/exec_lib.sh"

case_missing_image() {
  pipeline noimage <<'YML'
pipeline: missing-image
image: localhost/evrun-no-such-image:latest
steps:
  - name: nothing
    run: "true"
YML
  run noimage "$tmp/noimage.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "podman's message reaches the user" grep -qi "image" "$out"
  check "a localhost/ image: where it comes from" \
    grep -q "nothing > failed (never started): .*(a localhost/ image is built on the runner's host, with podman build or tools/build-test-image; this runner's podman does not have it)" "$out"
  check "no exit code: the step never started (its line, the summary, the reason)" sh -c "! grep -q 'exit -1' '$out'"
  check "no exit code: the step never started (its line, the summary, the reason) [grep -Eq ^nothing +failed +- out]" grep -Eq "^nothing +failed +- " "$out"
  check "no exit code: the step never started (its line, the summary, the reason) [^job .* failed in .*: step nothing failed: out]" grep -q "^job .* failed in .*: step nothing failed: " "$out"
  check "... evrun-replay's table: EXIT -, DURATION -" \
    grep -Eq "^nothing +failed +1 +- +- " <("$bin/evrun-replay" "$state" --job "$job")
  check "... the summary: DURATION -" grep -Eq "^nothing +failed +- +-$" "$out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

# bare_image NAME [DIR...]: a busybox image with only /bin (sh, echo, cat,
# pwd unless NOSH is set) and the DIRs, imported as localhost/evrun-NAME
# (the case removes it)
bare_image() {
  local name=$1 root=$tmp/bare-$1 c; shift
  mkdir -p "$root/bin" "$root/etc"
  for d in "$@"; do mkdir -p "$root/$d"; done
  if [ -z "${NOSH:-}" ]; then
    cp /bin/busybox "$root/bin/"
    for c in sh echo cat pwd; do ln -sf busybox "$root/bin/$c"; done
  fi
  tar -C "$root" -cf "$root.tar" .
  podman import -q "$root.tar" "localhost/evrun-$name:latest" > /dev/null
}

case_image_no_workspace() {   # an image with no /workspace (alpine's): one step, and two
  bare_image nows proc sys dev tmp
  pipeline nows1 <<'YML'
pipeline: nows1
image: localhost/evrun-nows:latest
steps:
  - name: only
    run: pwd
YML
  run nows1 "$tmp/nows1.yml"
  check "one step: exit 0" [ "$rc" -eq 0 ]
  check "... in /workspace, made" grep -qx "only | /workspace" "$out"
  check "... nothing left in podman" [ "$(left_behind)" -eq 0 ]
  pipeline nows2 <<'YML'
pipeline: nows2
image: localhost/evrun-nows:latest
steps:
  - name: a
    run: echo hi > f
  - name: b
    needs: [a]
    run: cat f
YML
  run nows2 "$tmp/nows2.yml"
  check "two steps (a volume): exit 0" [ "$rc" -eq 0 ]
  check "... the file shared" grep -qx "b | hi" "$out"
  check "... nothing left in podman" [ "$(left_behind)" -eq 0 ]
  podman rmi -f localhost/evrun-nows:latest > /dev/null 2>&1
}

case_image_no_shell() {   # an image with no /bin/sh: the reason names the image and the fix
  NOSH=1 bare_image nosh workspace proc sys dev tmp
  pipeline nosh <<'YML'
pipeline: nosh
image: localhost/evrun-nosh:latest
steps:
  - name: a
    run: "true"
YML
  run nosh "$tmp/nosh.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "catatonit's words in the output" grep -q "^a | ERROR (catatonit:[0-9]*): failed to exec pid1: No such file or directory$" "$out"
  check "the reason: the image, its shell, the fix" grep -qF "a > failed (exit 1, " "$out"
  check "... its words" grep -qF "the image localhost/evrun-nosh:latest has no /bin/sh that runs (No such file or directory): a step's run is a /bin/sh -c script; use an image with a shell" "$out"
  check "... recorded" grep -qF '"reason":"the image localhost/evrun-nosh:latest has no /bin/sh' <("$bin/evrun-replay" "$state" --job "$job" --json)
  check "... nothing left in podman" [ "$(left_behind)" -eq 0 ]
  # a /bin/sh that is no program (a text file, not executable): the same, its errno
  printf 'not a shell\n' > "$tmp/bare-nosh/bin/sh"; chmod 644 "$tmp/bare-nosh/bin/sh"
  tar -C "$tmp/bare-nosh" -cf "$tmp/bare-noxsh.tar" .
  podman import -q "$tmp/bare-noxsh.tar" localhost/evrun-noxsh:latest > /dev/null
  sed 's/evrun-nosh/evrun-noxsh/' "$tmp/nosh.yml" > "$tmp/noxsh.yml"
  run noxsh "$tmp/noxsh.yml"
  check "a /bin/sh not executable: said with its errno" grep -qF "a > failed (exit 1, " "$out"
  check "... its words" grep -qF "the image localhost/evrun-noxsh:latest has no /bin/sh that runs (Permission denied): a step's run is a /bin/sh -c script; use an image with a shell" "$out"
  podman rmi -f localhost/evrun-noxsh:latest > /dev/null 2>&1
  # catatonit's words in pieces from a script that exits 2: no such reason
  pipeline nosh2 <<'YML'
pipeline: nosh2
image: localhost/evrun-busybox:latest
steps:
  - name: b
    run: |
      printf 'ERROR (catatonit:6): ' >&2; sleep 0.2
      echo 'failed to exec pid1: No such file or directory' >&2; exit 2
YML
  run nosh2 "$tmp/nosh2.yml"
  check "exit 2 of the script's: no shell reason" grep -qx "b > failed (exit 2, [0-9.]*s)" "$out"
  podman rmi -f localhost/evrun-nosh:latest > /dev/null 2>&1
}

case_always_local() {   # pull: always on a localhost/ image podman has: the policy is the cause
  pipeline always_local <<'YML'
pipeline: always-local
image: localhost/evrun-busybox:latest
pull: always
steps:
  - name: a
    run: "true"
YML
  run always_local "$tmp/always_local.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "the policy named, with the fix" grep -qF "(a localhost/ image is built on the runner's host and comes from no registry: pull: always cannot pull it; use pull: missing)" "$out"
  check "... not that podman lacks it (it has it)" sh -c "! grep -q 'does not have it' '$out'"
  check "... nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_unreachable() {
  run unreachable "$src/examples/hello.yml" --podman-url unix:///tmp/evr-no-such-podman.sock
  check "exit 2" [ "$rc" -eq 2 ]
  check "names the URL it tried" grep -q "cannot reach podman at unix:///tmp/evr-no-such-podman.sock" "$err"
  # why, in words (not curl's "Failed to connect to d port 80"), and what to do
  check "says the socket does not exist" grep -q "sock: the socket does not exist: no podman service runs there" "$err"
  check "... and what to do" grep -q "tools/podman-service start DIR.*EVRUN_PODMAN_URL" "$err"
  # a socket nothing listens on (a service that stopped left it)
  rm -f "$tmp/dead.sock"
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$tmp/dead.sock"
  run unreachable2 "$src/examples/hello.yml" --podman-url "unix://$tmp/dead.sock"
  check "a dead socket: exit 2" [ "$rc" -eq 2 ]
  check "a dead socket: says it refuses connections" \
    grep -q "cannot reach podman at unix://$tmp/dead.sock: the socket refuses connections: no podman service listens there" "$err"
  # a file or a directory where the socket should be: not "refuses
  # connections" (Linux's ECONNREFUSED for both), nor "a service stopped"
  : > "$tmp/afile"; mkdir -p "$tmp/adir"
  run unreachable3 "$src/examples/hello.yml" --podman-url "unix://$tmp/afile"
  check "a file: exit 2" [ "$rc" -eq 2 ]
  check "a file: says so" grep -qF "cannot reach podman at unix://$tmp/afile: the path is a file, not a socket: give the socket's path (podman system service unix://PATH)" "$err"
  run unreachable4 "$src/examples/hello.yml" --podman-url "unix://$tmp/adir"
  check "a directory: exit 2" [ "$rc" -eq 2 ]
  check "a directory: says so" grep -qF "cannot reach podman at unix://$tmp/adir: the path is a directory, not a socket" "$err"
}

case_service_gone() {   # podman's service stops for good during a step: it fails, saying why and what to do
  "$src/tools/podman-service" start "$tmp/svc" > "$tmp/svc.log" 2>&1
  check "a service of the case's own" [ -s "$tmp/svc/podman.pid" ]
  local url=unix://$tmp/svc/podman.sock
  pipeline gone <<'YML'
pipeline: gone
image: localhost/evrun-busybox:latest
network: none
steps:
  - name: a
    run: echo start; sleep 4; echo end
YML
  "$bin/evrun-runner" --exec "$tmp/gone.yml" --state-dir "$tmp/gone" \
    --podman-url "$url" > "$tmp/gone.out" 2>&1 &
  local runner=$!
  local i
  for i in $(seq 1 300); do grep -qx "a | start" "$tmp/gone.out" && break; sleep 0.1; done
  "$src/tools/podman-service" stop "$tmp/svc" >> "$tmp/svc.log" 2>&1   # only the case's own
  wait "$runner"
  rc=$?
  out=$tmp/gone.out state=$tmp/gone
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
  local name; name=evrun-$(echo "$job" | tr 'A-Z' 'a-z')-a-1
  check "the job fails: exit 1" [ "$rc" -eq 1 ]
  check "the output to its end (conmon's socket)" grep -qx "a | end" "$out"
  check "the step fails, not succeeds" grep -qF "a > failed (" "$out"
  check "... why, what was seen, what to do" grep -qF "podman's service at $url went away during the step (the socket does not exist: no podman service runs there) and did not come back: the container's exit (0) was read from conmon's exit file, but the container $name stays in podman, unremoved; start the service again, to stay (podman system service --time=0 $url: without --time=0 it ends after 5 s without a call) and remove it: podman rm -f $name" "$out"
  check "... recorded" grep -qF '"status":"failed"' <("$bin/evrun-replay" "$state" --job "$job" --json)
  check "... no succeeded anywhere" sh -c "! grep -q 'succeeded' '$out'"
  check "the removal: podman unreachable, in words, not curl's alone" \
    grep -qF "removing a container of job $job: cannot reach podman at $url: the socket does not exist: no podman service runs there; start one there (podman system service --time=0 $url) (DELETE" "$out"
  podman rm -f "$name" > /dev/null 2>&1
  check "nothing left in podman (removed by the test)" [ "$(left_behind)" -eq 0 ]
  # the output through podman's attach (not conmon's socket): the wait fails, saying what to do
  "$src/tools/podman-service" start "$tmp/svc" >> "$tmp/svc.log" 2>&1
  EVR_TEST_REST_ATTACH=1 "$bin/evrun-runner" --exec "$tmp/gone.yml" --state-dir "$tmp/gone2" \
    --podman-url "$url" > "$tmp/gone2.out" 2>&1 &
  runner=$!
  for i in $(seq 1 300); do grep -qx "a | start" "$tmp/gone2.out" && break; sleep 0.1; done
  "$src/tools/podman-service" stop "$tmp/svc" >> "$tmp/svc.log" 2>&1
  wait "$runner"
  rc=$?
  out=$tmp/gone2.out state=$tmp/gone2
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
  name=evrun-$(echo "$job" | tr 'A-Z' 'a-z')-a-1
  check "podman's attach: exit 1" [ "$rc" -eq 1 ]
  check "... the step fails, saying what to do" grep -qF "a > failed (" "$out"
  check "... its words" grep -qF "cannot reach podman at $url: the socket does not exist: no podman service runs there; start one there (podman system service --time=0 $url) (" "$out"
  podman rm -f -t 0 "$name" > /dev/null 2>&1
  check "nothing left in podman (removed by the test)" [ "$(left_behind)" -eq 0 ]
}

case_removed_outside() {   # the container removed by another tool mid-step: who to look at
  pipeline rmout <<'YML'
pipeline: rmout
image: localhost/evrun-busybox:latest
network: none
steps:
  - name: a
    run: echo start; sleep 30; echo end
YML
  "$bin/evrun-runner" --exec "$tmp/rmout.yml" --state-dir "$tmp/rmout" > "$tmp/rmout.out" 2>&1 &
  local runner=$! i
  for i in $(seq 1 300); do grep -qx "a | start" "$tmp/rmout.out" && break; sleep 0.1; done
  out=$tmp/rmout.out state=$tmp/rmout
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
  podman rm -f -t 0 "evrun-$(echo "$job" | tr 'A-Z' 'a-z')-a-1" > /dev/null
  wait "$runner"
  rc=$?
  check "exit 1" [ "$rc" -eq 1 ]
  # podman's rm -f kills it (137, which conmon's exit file may say) and
  # removes it (which the inspect of an exit 137 may find): either way a reason
  if grep -qF "a > lost (" "$out"; then
    check "lost: who removed it and what to do" grep -qF "waiting for the container: it was removed before its end was seen, by something other than this runner (podman rm, podman container prune or system prune/reset): how it ended is not known; keep other tools off evrun-* containers (podman: no container with name or ID" "$out"
  else
    check "exit 137: what may have killed it" grep -qF "a > failed (exit 137, " "$out"
    check "exit 137: ... its words" grep -qF "exit 137: a SIGKILL that evrun did not send ended it or its last command (or it exited 137 itself): the kernel's OOM killer (the host's kernel log says), or another process (podman kill, stop or rm -f of its container)" "$out"
  fi
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

# proxied ANSWER MATCH NAME: runs the one-step pipeline $tmp/proxied.yml
# through podman_proxy.py, which answers requests holding MATCH itself
# (EVR_PROXY_ANSWER=ANSWER); sets $out $rc $job $state
proxied() {
  local answer=$1 match=$2 name=$3 pp i
  rm -f "$tmp/px.sock"
  EVR_PROXY_ANSWER=$answer python3 "$(dirname "$0")/podman_proxy.py" "$tmp/px.sock" \
    "${EVRUN_PODMAN_URL#unix://}" "$tmp/px.log" "$match" &
  pp=$!
  for i in $(seq 1 100); do [ -S "$tmp/px.sock" ] && break; sleep 0.05; done
  run "$name" "$tmp/proxied.yml" --podman-url "unix://$tmp/px.sock"
  kill "$pp"; wait "$pp" 2>/dev/null
}

case_podman_garbage() {   # answers no podman gives: said, never a hang or a silent leftover
  pipeline proxied <<'YML'
pipeline: proxied
image: localhost/evrun-busybox:latest
network: none
timeout: 60s
steps:
  - name: a
    run: echo hi
YML
  proxied garbage "/start" pgstart
  check "a start answered 200 with a page: fails, not waits" grep -qF "a > failed (never started): start: the start was answered HTTP 200 (\"<html>podman_proxy.py garbage\"), where podman answers 204 (started) or 304 (running): the container may not have started" "$out"
  check "... nothing left in podman" [ "$(left_behind)" -eq 0 ]
  proxied garbage "DELETE /v4.0.0/libpod/containers/" pgdel
  check "a removal answered with no podman's reports: the step's result stands" grep -qF "a > succeeded (exit 0" "$out"
  check "... the removal's failure said" grep -qF "removing a container of job $job: podman answered with a body that is not JSON (remove: " "$out"
  podman rm -f "evrun-$(echo "$job" | tr 'A-Z' 'a-z')-a-1" > /dev/null 2>&1
  check "... nothing left in podman (removed by the test)" [ "$(left_behind)" -eq 0 ]
}

cases=${*:-missing_image image_no_workspace image_no_shell always_local unreachable service_gone removed_outside podman_garbage}
# shellcheck disable=SC2086
run_cases $cases

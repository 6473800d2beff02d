#!/usr/bin/env bash
# test_rootless.sh BIN_DIR SRC_DIR [CASE...]: evrun-runner as an
# unprivileged user against that user's rootless podman (rootless_lib.sh
# makes the user, its subuid range and its podman service; no root
# podman is used).  Needs root to set that up: skipped (77) otherwise,
# saying so.  Each case runs the runner as the user, with
# EVRUN_PODMAN_URL or (hello, channel, cancel, recover) without it, through the default
# $XDG_RUNTIME_DIR/podman/podman.sock.  The case host also runs the
# runner as root, against that service and against the root podman
# service of EVRUN_PODMAN_URL (that part is skipped, saying so, without
# one).
set -u
root_url=${EVRUN_PODMAN_URL:-}
bin=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
shift 2
if [ "$(id -u)" -ne 0 ]; then
  echo "test_rootless: skipped: needs root to make the user evrun-rootless, its /etc/subuid" \
       "range and its rootless podman service (CI runs as root)"
  exit 77
fi
fails=0 passes=0 case_name=
. "$(dirname "$0")/../support/check.sh"
. "$(dirname "$0")/rootless_lib.sh"
runpid= httpd_pid= proxy_pid= root_dir=
trap '[ -n "$runpid" ] && kill -9 "$runpid" 2>/dev/null; [ -n "$httpd_pid" ] && kill "$httpd_pid" 2>/dev/null; [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null; [ -n "$root_dir" ] && rm -rf "$root_dir"; rl_teardown' EXIT
rl_setup || { echo "test_rootless: FAILED: the rootless podman service could not be set up" >&2; exit 1; }
bin=$rl_bin
tmp=$rl_dir/t
as_user mkdir "$tmp"

# pipeline NAME: stdin into $tmp/NAME.yml, the user's
pipeline() { as_user tee "$tmp/$1.yml" > /dev/null; }

# run NAME FILE [VAR=VALUE...] [-- runner args...]: the runner as the user
# (VAR=VALUE: its environment; EVRUN_PODMAN_URL=$rl_url unless one says
# default=1: none, the runner's default); sets $out $err $rc $job $state
run() {
  local name=$1 file=$2 vars=(EVRUN_PODMAN_URL="$rl_url")
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    if [ "$1" = default=1 ]; then vars=("${vars[@]:1}"); else vars+=("$1"); fi
    shift
  done
  [ $# -gt 0 ] && shift
  state=$tmp/$name out=$tmp/$name.out err=$tmp/$name.err
  as_user "${vars[@]}" "$bin/evrun-runner" --exec "$file" --state-dir "$state" "$@" \
    > "$out" 2> "$err"
  rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
}

replay() { as_user "$bin/evrun-replay" "$state" "$@"; }

# left_behind: containers and volumes of $job in the user's podman
left_behind() {
  local id
  id=$(echo "$job" | tr 'A-Z' 'a-z')
  { as_user podman ps -a --format '{{.Names}}'; as_user podman volume ls --format '{{.Name}}'; } |
    grep -c "evrun-$id" || true
}

case_hello() {   # the default socket: $XDG_RUNTIME_DIR/podman/podman.sock
  pipeline hello <<'YML'
pipeline: rl-hello
image: localhost/evrun-busybox:latest
network: none
args:
  WHO: { default: world }
steps:
  - name: greet
    run: echo "hello, $WHO"
YML
  run hello "$tmp/hello.yml" default=1 -- -a WHO=rootless
  check "exit 0" [ "$rc" -eq 0 ]
  check "the banner names the user's socket" grep -q "podman unix://$rl_dir/run/podman/podman.sock" "$out"
  check "live output" grep -q "^greet | hello, rootless$" "$out"
  check "stored output" [ "$(replay --output "$job/greet")" = "hello, rootless" ]
  check "store verifies" replay --verify > /dev/null
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_bridge() {   # the default network: where the host lets rootless podman make it
  # (slirp4netns needs /dev/net/tun, the rootless netns its mounts), it
  # works; elsewhere the step fails with podman's reason and what to do
  printf 'pipeline: rl-bridge\nimage: localhost/evrun-busybox:latest\nsteps:\n  - { name: x, run: "/bin/busybox ip -o -4 addr | grep -vc \\" lo \\"" }\n' |
    pipeline bridge
  run bridge "$tmp/bridge.yml"
  if [ "$rc" -eq 0 ]; then
    check "an interface besides lo" grep -qx "x | 1" "$out"
  else
    check "exit 1" [ "$rc" -eq 1 ]
    check "podman's reason, and what to do" grep -q "x > failed .*: create: preparing the container (podman's init): .*give the step network: none or host" "$out"
    check "not podman's attach refusal" sh -c "! grep -q 'attach refused' '$out'"
  fi
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_dag() {   # a DAG sharing the workspace; env, args, network none, an artifact
  pipeline dag <<'YML'
pipeline: rl-dag
image: localhost/evrun-busybox:latest
network: host
args:
  WHO: { default: world }
env:
  GREETING: hello
steps:
  - name: a
    run: echo "$GREETING, $WHO" > /workspace/a.txt; echo "uid $(id -u)"
  - name: b
    needs: [a]
    run: cat /workspace/a.txt; echo b >> /workspace/b.txt
  - name: c
    needs: [a]
    network: none
    run: /bin/busybox ip -o link | grep -v ' lo:' | grep -c . || true
  - name: d
    needs: [b, c]
    run: mkdir -p out; cat a.txt b.txt > out/ab.txt; cat out/ab.txt
    artifacts: [out/ab.txt]
YML
  run dag "$tmp/dag.yml" -- -a WHO=dag
  check "exit 0" [ "$rc" -eq 0 ]
  check "root in the container (the user outside)" grep -qx "a | uid 0" "$out"
  check "env and args" grep -qx "b | hello, dag" "$out"
  check "network none: no link but lo" grep -qx "c | 0" "$out"
  check "the workspace shared" grep -qx "d | b" "$out"
  check "the artifact" [ "$(as_user cat "$state/artifacts/$job/d/out/ab.txt" | tr '\n' ' ')" = "hello, dag b " ]
  check "store verifies" replay --verify > /dev/null
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_channel() {   # the step's control channel: evrun-job (copied in) on its socket
  pipeline channel <<'YML'
pipeline: rl-channel
image: localhost/evrun-busybox:latest
network: none
steps:
  - name: make
    run: |
      evrun-job hello
      V="dyn$(echo 4711 | tr 0-9 a-j)Zq"
      printf '%s\n' "$V" | evrun-job secret DEPLOY_KEY || exit 3
      echo "value: $V"
  - name: use
    needs: [make]
    run: |
      echo "later: ${#DEPLOY_KEY} bytes"
YML
  run channel "$tmp/channel.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the channel knows its job and step" \
    grep -q "^make | {\"protocol\":1,\"job\":\"$job\",\"pipeline\":\"rl-channel\",\"step\":\"make\"" "$out"
  check "a secret registered" grep -q "^make > secret DEPLOY_KEY registered$" "$out"
  check "masked" grep -q "^make | value: \*\*\*$" "$out"
  check "given to the next step" grep -q "^use | later: 9 bytes$" "$out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_resource() {   # resources fetched by the runner (the user) into the workspace
  local www=$rl_dir/www
  mkdir -p "$www/tree/sub"
  echo "plain resource" > "$www/notes.txt"
  echo "from the archive" > "$www/tree/sub/inside.txt"
  tar -C "$www/tree" -czf "$www/src.tar.gz" .
  serve_dir "$www" || fails=$((fails + 1))
  httpd_pid=$serve_pid
  pipeline resource <<YML
pipeline: rl-resource
image: localhost/evrun-busybox:latest
network: none
resources:
  - { name: notes, url: "http://127.0.0.1:$serve_port/notes.txt", path: docs/notes.txt }
  - { name: src, url: "http://127.0.0.1:$serve_port/src.tar.gz", path: src }
steps:
  - name: use
    run: |
      cat docs/notes.txt
      cat src/sub/inside.txt
      echo more > src/sub/written.txt && echo writable
YML
  run resource "$tmp/resource.yml"
  kill "$httpd_pid" 2>/dev/null; wait "$httpd_pid" 2>/dev/null; httpd_pid=
  check "exit 0" [ "$rc" -eq 0 ]
  check "a plain file in /workspace" grep -q "^use | plain resource$" "$out"
  check "an archive unpacked" grep -q "^use | from the archive$" "$out"
  check "what it unpacked is the step's to write" grep -q "^use | writable$" "$out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_cache() {   # a cache volume kept across two jobs, its key from a file's sha256 in
  # the workspace, files of another container user (a subordinate id outside) in it
  mkdir -p "$rl_dir/www2" && echo "lock 1" > "$rl_dir/www2/lock.txt"
  serve_dir "$rl_dir/www2" || fails=$((fails + 1))
  httpd_pid=$serve_pid
  pipeline cache <<YML
pipeline: rl-cache
image: localhost/evrun-busybox:latest
network: none
resources:
  - { name: lock, url: "http://127.0.0.1:$serve_port/lock.txt", path: lock.txt }
cache:
  - { key: "k-{{ sha256 lock.txt }}", path: /cache }
steps:
  - name: use
    run: |
      cat /cache/seen 2>/dev/null || echo "first"
      echo "seen before" > /cache/seen
      mkdir -p /cache/priv && echo x > /cache/priv/f && chown -R 1000:1000 /cache/priv && chmod 700 /cache/priv
YML
  run cache "$tmp/cache.yml"
  check "first job: exit 0" [ "$rc" -eq 0 ]
  check "first job: an empty cache" grep -q "^use | first$" "$out"
  as_user mv "$state" "$tmp/cache-state"
  as_user "$bin/evrun-runner" --exec "$tmp/cache.yml" --state-dir "$tmp/cache-state" \
    > "$tmp/cache.out" 2> "$tmp/cache.err"
  rc=$?
  kill "$httpd_pid" 2>/dev/null; wait "$httpd_pid" 2>/dev/null; httpd_pid=
  check "second job: exit 0" [ "$rc" -eq 0 ]
  check "second job: what the first left" grep -q "^use | seen before$" "$tmp/cache.out"
  check "no warning" sh -c "! grep -qi 'warn\|permission denied' '$tmp/cache.out' '$tmp/cache.err'"
  as_user podman volume ls --format '{{.Name}}' | grep '^evrun-cache-' |
    while read -r v; do as_user podman volume rm "$v" > /dev/null; done
}

case_fail() {   # a step's non-zero exit
  printf 'pipeline: rl-fail\nimage: localhost/evrun-busybox:latest\nnetwork: none\nsteps:\n  - { name: x, run: "echo before; exit 3" }\n  - { name: y, run: "echo never" }\n' |
    pipeline fail
  run fail "$tmp/fail.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  replay --job "$job" > "$tmp/fail.job"
  check "exit code 3 recorded" grep -Eq "^x +failed +1 +3 " "$tmp/fail.job"
  check "later step skipped" grep -Eq "^y +skipped" "$tmp/fail.job"
  check "output before the exit" [ "$(replay --output "$job/x")" = before ]
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_cancel() {   # SIGINT: the step sees SIGTERM (its trap runs), the rest is skipped
  pipeline cancel <<'YML'
pipeline: rl-cancel
image: localhost/evrun-busybox:latest
network: none
steps:
  - name: x
    run: |
      trap 'echo got TERM; exit 5' TERM
      echo started
      sleep 30 & wait
  - name: y
    run: echo never
YML
  state=$tmp/cancel
  "${rl_as[@]}" "$bin/evrun-runner" --exec "$tmp/cancel.yml" --state-dir "$state" --grace 5 \
    > "$state.out" 2> "$state.err" &
  runpid=$!
  for _ in $(seq 1 200); do grep -q "^x | started" "$state.out" 2>/dev/null && break; sleep 0.05; done
  kill -INT "$runpid"
  wait "$runpid"; rc=$?; runpid=
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$state.out" | head -n 1)
  check "exit 1" [ "$rc" -eq 1 ]
  check "the step's trap ran" grep -q "^x | got TERM$" "$state.out"
  check "cancelled" grep -q "status cancelled" <(replay --job "$job")
  check "the next step skipped" sh -c "! grep -q '^y | never' '$state.out'"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_big() {   # 10 MB of output, byte-exact, live and stored
  printf 'pipeline: rl-big\nimage: localhost/evrun-busybox:latest\nnetwork: none\nsteps:\n  - { name: big, run: "seq 1 1400000" }\n' |
    pipeline big
  run big "$tmp/big.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "stored byte-exact ($(seq 1 1400000 | wc -c) bytes)" \
    cmp -s <(seq 1 1400000) <(replay --output "$job/big")
  check "printed live, whole" [ "$(grep -c "^big | " "$out")" -eq 1400000 ]
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

# limits_pipeline NAME: $tmp/NAME.yml, rl-NAME: one step x that asks for
# 64M of memory and prints "ran"
limits_pipeline() {
  printf 'pipeline: rl-%s\nimage: localhost/evrun-busybox:latest\nnetwork: none\nsteps:\n  - {name: x, limits: {memory: 64M}, run: echo ran}\n' "$1" |
    pipeline "$1"
}

case_limits() {   # cgroups v1: a rootless container gets no limits; said before it runs
  limits_pipeline lim
  run lim "$tmp/lim.yml"
  check "exit 2 (the runner cannot run it)" [ "$rc" -eq 2 ]
  check "the step and the limit named, and why (the service said it)" \
    grep -q "step x: limits: memory: this runner cannot apply it: its podman is rootless (the service says so: .*) on cgroups v1" "$out" "$err"
  check "no podman error dumped" sh -c "! grep -qi 'internal server error\|\"cause\"' '$out' '$err'"
  check "nothing ran" sh -c "! grep -q '^x | ran' '$out'"
  pipeline limerr <<'YML'
pipeline: rl-lim-onerr
image: localhost/evrun-busybox:latest
network: none
steps:
  - {name: x, run: echo ran}
on_error:
  limits: {pids: 50}
  run: echo cleanup
YML
  run limerr "$tmp/limerr.yml"
  check "on_error's own limits: refused too (exit 2)" [ "$rc" -eq 2 ]
  check "... naming on_error" grep -q "step on_error: limits: pids: this runner cannot apply it" "$out" "$err"
}

# proxy LISTEN TARGET [REFUSE]: podman_proxy.py (as root) on LISTEN, its
# calls in $proxy_calls; sets $proxy_pid
proxy() {
  proxy_calls=$1.calls
  : > "$proxy_calls"
  python3 "$src/tests/integration/podman_proxy.py" "$1" "$2" "$proxy_calls" ${3+"$3"} &
  proxy_pid=$!
  for _ in $(seq 100); do [ -S "$1" ] && break; sleep 0.05; done
}
unproxy() { kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null; proxy_pid=; }

# root_run NAME URL: the runner as root on $tmp/host.yml, its state in
# $root_dir (root's: the runner keeps its state only under its user's or
# root's directories); sets $out $err $rc
root_run() {
  out=$root_dir/$1.out err=$root_dir/$1.err
  EVRUN_PODMAN_URL=$2 "$bin/evrun-runner" --exec "$tmp/host.yml" --state-dir "$root_dir/$1" \
    > "$out" 2> "$err"
  rc=$?
}

case_host() {   # rootless or not: asked of the service (GET /libpod/info, once),
  # whoever owns its socket; the socket's owner is a guess only when that call fails
  limits_pipeline host
  root_dir=$(mktemp -d /tmp/evr-rlhost-XXXXXX) || return
  proxy "$root_dir/rl-proxy.sock" "$rl_dir/run/podman/podman.sock"
  chown root: "$root_dir/rl-proxy.sock"
  root_run host-rl "unix://$root_dir/rl-proxy.sock"
  check "rootless service, socket owned by root: refused (exit 2)" [ "$rc" -eq 2 ]
  check "... the service said it is rootless" grep -q "step x: limits: memory: this runner cannot apply it: its podman is rootless (the service says so: host.security.rootless, host.cgroupVersion v1) on cgroups v1" "$out" "$err"
  check "... nothing ran" sh -c "! grep -q '^x | ran' '$out'"
  check "... GET /libpod/info asked once" [ "$(grep -c '^GET [^ ]*/libpod/info$' "$proxy_calls")" -eq 1 ]
  unproxy
  if [ -z "$root_url" ]; then
    echo "host: the root podman part skipped: no EVRUN_PODMAN_URL (a root podman service)"
    rm -rf "$root_dir"; root_dir=
    return
  fi
  proxy "$root_dir/root-proxy.sock" "${root_url#unix://}"
  chown "$rl_user:" "$root_dir/root-proxy.sock"
  root_run host-root "unix://$root_dir/root-proxy.sock"
  check "root service, socket owned by $rl_user: runs with its limit (exit 0)" [ "$rc" -eq 0 ]
  check "... it ran" grep -qx "x | ran" "$out"
  check "... GET /libpod/info asked once" [ "$(grep -c '^GET [^ ]*/libpod/info$' "$proxy_calls")" -eq 1 ]
  unproxy
  proxy "$root_dir/guess-proxy.sock" "${root_url#unix://}" /libpod/info
  chown "$rl_user:" "$root_dir/guess-proxy.sock"
  root_run host-guess "unix://$root_dir/guess-proxy.sock"
  unproxy
  check "GET /libpod/info refused: the socket's owner guessed from (exit 2)" [ "$rc" -eq 2 ]
  check "... said in the log" grep -q "warn: podman at unix://$root_dir/guess-proxy.sock: GET /libpod/info failed (refused by podman_proxy.py): whether it is rootless is guessed from its socket's owner instead" "$err"
  check "... and in the refusal" grep -q "step x: limits: memory: this runner cannot apply it: its podman is rootless (the socket $root_dir/guess-proxy.sock is owned by uid $(id -u "$rl_user")) on cgroups v1" "$out" "$err"
  rm -rf "$root_dir"; root_dir=
}

case_recover() {   # SIGKILL mid-step, then --recover: no output lost or doubled
  # (the test hook EVR_TEST_PAUSE_AT stops the runner at a named point,
  # as tests/crash/test_recover.sh does); the default socket again
  pipeline crash <<'YML'
pipeline: rl-crash
image: localhost/evrun-busybox:latest
network: none
steps:
  - name: one
    run: |
      echo one >> /workspace/runs
      for i in $(seq 1 20); do echo "one line $i"; sleep 0.03; done
  - name: two
    run: |
      echo two >> /workspace/runs
      for i in $(seq 1 20); do echo "two line $i"; echo "two err $i" >&2; sleep 0.03; done
      mkdir -p out
      seq 1 50000 > out/data.txt
    artifacts: [out/data.txt]
  - name: check
    run: cat /workspace/runs
YML
  local point s
  for point in attached:one running:one output_ended:two; do
    s=$tmp/recover-${point/:/-}
    "${rl_as[@]}" EVR_TEST_PAUSE_AT="$point" "$bin/evrun-runner" --exec "$tmp/crash.yml" \
      --state-dir "$s" --grace 1 > "$s.out" 2> "$s.err" &
    runpid=$!
    for _ in $(seq 1 300); do grep -q "test pause at" "$s.err" 2>/dev/null && break; sleep 0.05; done
    check "$point: reached" grep -q "test pause at" "$s.err"
    kill -9 "$runpid"; wait "$runpid" 2>/dev/null; runpid=
    job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$s.out" | head -n 1)
    state=$s
    timeout -k 10 120 "${rl_as[@]}" "$bin/evrun-runner" --recover --state-dir "$s" --grace 1 \
      > "$s.rec.out" 2> "$s.rec.err"
    check "$point: recovery exit 0" [ $? -eq 0 ]
    check "$point: job succeeded" grep -Eq "^$job +rl-crash +succeeded +3/3 " <(replay)
    check "$point: step one: every line once, in order" \
      cmp -s <(seq 1 20 | sed 's/^/one line /') <(replay --output "$job/one")
    check "$point: step two: every line once" cmp -s \
      <(for i in $(seq 1 20); do echo "two line $i"; echo "two err $i"; done | sort) \
      <(replay --output "$job/two" | sort)
    check "$point: each step ran once" [ "$(replay --output "$job/check" | tr '\n' ' ')" = "one two " ]
    check "$point: artifact whole" \
      [ "$(as_user cat "$s/artifacts/$job/two/out/data.txt" | wc -l)" = 50000 ]
    check "$point: nothing left in podman" [ "$(left_behind)" -eq 0 ]
    check "$point: store verifies" replay --verify > /dev/null
  done
}

for c in ${@:-hello bridge dag channel resource cache fail cancel big limits host recover}; do
  case_name=$c
  before=$fails
  "case_$c"
  if [ "$fails" -eq "$before" ]; then echo "ok: $c"; else
    echo "FAILED: $c"; tail -n 15 "$tmp/$c.out" "$tmp/$c.err" 2>/dev/null; fi
done
echo "test_rootless: $passes checks passed, $fails failed"
[ "$fails" -eq 0 ]

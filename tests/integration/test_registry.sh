#!/usr/bin/env bash
# test_registry.sh BIN_DIR SRC_DIR [CASE...]: image pulls from a real
# registry on 127.0.0.1 (Debian's docker-registry, htpasswd auth, plain
# HTTP).  Podman refuses plain HTTP unless the registry is marked insecure
# in the registries.conf it read at its start, so the test runs a podman
# service of its own (CONTAINERS_REGISTRIES_CONF, its own storage in the
# test's directory, vfs) and leaves the shared one alone.  Two images
# are made here from busybox (a file /variant saying one or two) and
# pushed under one tag, so that `always` can be seen to re-pull a
# changed tag.  Traffic goes to 127.0.0.1 only.
set -u
bin=$1 src=$2
shift 2
export CONTAINERS_CONF=$src/tools/podman/containers.conf
. "$(dirname "$0")/../support/check.sh"
fails=0 passes=0 case_name=

for tool in docker-registry htpasswd podman curl busybox git; do
  if ! command -v "$tool" > /dev/null; then
    echo "test_registry: $tool missing (apt-get install docker-registry apache2-utils" \
         "podman curl busybox-static git)" >&2
    exit 1
  fi
done

tmp=$(mktemp -d /tmp/evr-reg-XXXXXX)
reg_pid= svc_pid= runner_pid= stall_pid=
port=$(free_port)
stall_port=$(free_port)   # a "registry" that accepts and never answers
repo=127.0.0.1:$port/evrun/tool
user=ci-bot pass='s3cret-Pa55:with-colon'
sock=$tmp/p.sock
store=(--root "$tmp/st/root" --runroot "$tmp/st/run" --storage-driver vfs)

cleanup() {
  [ -n "$runner_pid" ] && kill -9 "$runner_pid" 2>/dev/null
  [ -n "$stall_pid" ] && kill "$stall_pid" 2>/dev/null
  [ -n "$svc_pid" ] && { kill "$svc_pid" 2>/dev/null; wait "$svc_pid" 2>/dev/null; }
  [ -n "$reg_pid" ] && { kill "$reg_pid" 2>/dev/null; wait "$reg_pid" 2>/dev/null; }
  # the pushed copies in the shared storage, by name (they share ids)
  podman rmi -f "$repo:1" "$repo:one" "$repo:two" > /dev/null 2>&1
  podman "${store[@]}" rm -af > /dev/null 2>&1
  podman "${store[@]}" volume rm -af > /dev/null 2>&1
  [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$tmp"
}
trap cleanup EXIT

# ------------------------------------------------------------------ setup

mkdir -p "$tmp/data" "$tmp/svc" "$tmp/secrets" "$tmp/st"
htpasswd -Bbn "$user" "$pass" > "$tmp/htpasswd"
cat > "$tmp/registry.yml" <<EOF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $tmp/data } }
http: { addr: "127.0.0.1:$port" }
auth: { htpasswd: { realm: evrun-test, path: $tmp/htpasswd } }
EOF
docker-registry serve "$tmp/registry.yml" > "$tmp/registry.log" 2>&1 &
reg_pid=$!
cat > "$tmp/registries.conf" <<EOF
[[registry]]
location = "127.0.0.1:$port"
insecure = true
[[registry]]
location = "127.0.0.1:$stall_port"
insecure = true
EOF
(cd "$tmp/svc" && exec env CONTAINERS_REGISTRIES_CONF="$tmp/registries.conf" \
   podman "${store[@]}" system service --time=0 "unix://$sock") > "$tmp/svc.log" 2>&1 &
svc_pid=$!
export EVRUN_PODMAN_URL=unix://$sock
for _ in $(seq 100); do
  curl -s -o /dev/null --unix-socket "$sock" http://d/v4.0.0/libpod/_ping \
    && curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break
  sleep 0.1
done

# variant NAME: an image $repo:NAME whose /variant says NAME
variant() {
  local root=$tmp/rootfs-$1
  mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/workspace"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for c in sh cat echo; do ln -sf busybox "$root/bin/$c"; done
  echo "$1" > "$root/variant"
  tar -C "$root" -cf "$tmp/$1.tar" .
  podman import -q "$tmp/$1.tar" "$repo:$1" > /dev/null
}
# push NAME TAG: $repo:NAME to the registry as $repo:TAG
push() {
  podman push -q --tls-verify=false --creds "$user:$pass" "$repo:$1" "docker://$repo:$2" \
    > "$tmp/push.log" 2>&1 || { echo "test_registry: push failed:" >&2; cat "$tmp/push.log" >&2; }
}
variant one && variant two && push one 1

# forget: the image gone from the test's podman storage (by name)
forget() {
  curl -s -o /dev/null -X DELETE --unix-socket "$sock" \
    "http://d/v4.0.0/libpod/images/$(echo "$repo:1" | sed 's|/|%2F|g')?force=true"
}
have_image() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$sock" \
      "http://d/v4.0.0/libpod/images/$(echo "$repo:1" | sed 's|/|%2F|g')/exists")" = 204 ]
}

no_image() { ! have_image; }
pulled_before_start() {   # FILE (evrun-replay --job): image.pulled comes before step.started
  awk '/image\.pulled/ && !p { p = NR } /step\.started/ && !s { s = NR }
       END { exit !(p && s && p < s) }' "$1"
}

printf '%s' "$user:$pass" > "$tmp/secrets/REGISTRY_CREDS"
printf '%s' "$user:wrong" > "$tmp/secrets/WRONG_CREDS"
printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$port" \
  "$(printf '%s' "$user:$pass" | base64 -w0)" > "$tmp/auth.json"

# pipeline NAME [KEY: VALUE lines]: a one-step pipeline of $repo:1 saying
# its variant; the lines given go at its top
pipeline() {
  local name=$1; shift
  { echo "pipeline: $name"; echo "image: $repo:1"; printf '%s\n' "$@"
    echo "steps:"; echo "  - name: show"; echo "    run: cat /variant"; } > "$tmp/$name.yml"
}

# run NAME [runner args]: sets $out $rc $job $state
run() {
  local name=$1; shift
  state=$tmp/state-$name out=$tmp/$name.out
  "$bin/evrun-runner" --exec "$tmp/$name.yml" --state-dir "$state" \
    --secrets-dir "$tmp/secrets" "$@" > "$out" 2>&1
  rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/$name.job" 2>&1
}

no_secret_anywhere() {   # the password in no stored byte, no output
  ! grep -rqaF "$pass" "$state" "$out" "$tmp/$case_name.job"
}

# ------------------------------------------------------------------ cases

case_with_secret() {   # registry_auth: a secret holding user:password
  forget
  pipeline with_secret "registry_auth: REGISTRY_CREDS"
  run with_secret
  check "exit 0" [ "$rc" -eq 0 ]
  check "the pulled image ran" grep -qx "show | one" "$out"
  check "progress: one line per layer" grep -q "^image $repo:1 | Copying blob sha256:" "$out"
  check "image.pulling recorded" grep -q "image.pulling .*\"image\":\"$repo:1\"" "$tmp/with_secret.job"
  check "image.progress recorded" grep -q "image.progress .*Copying blob" "$tmp/with_secret.job"
  check "image.pulled with digest and size" \
    grep -Eq "image.pulled .*\"digest\":\"sha256:[0-9a-f]{64}\",\"size\":[1-9]" "$tmp/with_secret.job"
  check "the pull before the step's start" pulled_before_start "$tmp/with_secret.job"
  check "credentials nowhere in the store or output" no_secret_anywhere
  check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
}

case_auth_file() {   # the runner's registry_auth setting: a containers-auth.json
  forget
  pipeline auth_file
  run auth_file --registry-auth "$tmp/auth.json"
  check "exit 0" [ "$rc" -eq 0 ]
  check "pulled and ran" grep -qx "show | one" "$out"
  check "credentials nowhere in the store or output" no_secret_anywhere
}

case_no_creds() {   # none given, none in podman's own file: the registry refuses
  forget
  pipeline no_creds
  run no_creds
  check "exit 1" [ "$rc" -eq 1 ]
  check "the registry's words and the image" \
    grep -q "show > failed (never started): .*pulling image $repo:1: .*unauthorized" "$out"
  check "failed before create: never started" sh -c "! grep -q step.started '$tmp/no_creds.job'"
  check "image.pull_failed recorded" grep -q "image.pull_failed .*unauthorized" "$tmp/no_creds.job"
  check "... and what to fix" grep -qF "unauthorized: authentication required (no credentials of the pipeline's, and the runner's or podman's were refused or had none for this registry: give registry_auth: SECRET, a secret holding user:password, or set the runner's registry_auth file)" "$out"
  check "nothing left in podman" \
    sh -c "! podman ${store[*]} ps -a --format '{{.Names}}' | grep -qi '$job'"
}

case_wrong_password() {
  forget
  pipeline wrong_password "registry_auth: WRONG_CREDS"
  run wrong_password
  check "exit 1" [ "$rc" -eq 1 ]
  check "unauthorized, naming the image" grep -q "pulling image $repo:1: .*unauthorized" "$out"
  check "... the secret whose credentials were refused" grep -qF "unauthorized: authentication required (the registry refused the credentials of the pipeline's registry_auth, the secret WRONG_CREDS: check its user:password)" "$out"
  check "the wrong password nowhere" sh -c "! grep -rqaF '$user:wrong' '$state' '$out'"
}

case_missing_tag() {
  pipeline missing_tag "registry_auth: REGISTRY_CREDS"
  sed -i "s|^image: .*|image: $repo:no-such-tag|" "$tmp/missing_tag.yml"
  run missing_tag
  check "exit 1" [ "$rc" -eq 1 ]
  check "manifest unknown, naming the image" \
    grep -q "pulling image $repo:no-such-tag: .*manifest unknown" "$out"
}

case_registry_words() {   # pulls that fail at the registry say what to change
  pipeline no_repo "registry_auth: REGISTRY_CREDS"
  sed -i "s|^image: .*|image: 127.0.0.1:$port/evrun/no-such-repo:1|" "$tmp/no_repo.yml"
  run no_repo
  check "no repository: exit 1" [ "$rc" -eq 1 ]
  check "... the registry's words and the fix" grep -qF "manifest unknown: manifest unknown (the registry has no image of that name and tag: check both)" "$out"
  pipeline missing_tag2 "registry_auth: REGISTRY_CREDS"
  sed -i "s|^image: .*|image: $repo:no-such-tag|" "$tmp/missing_tag2.yml"
  run missing_tag2
  check "no such tag: the fix" grep -qF "manifest unknown: manifest unknown (the registry has no image of that name and tag: check both)" "$out"
  pipeline plain "registry_auth: REGISTRY_CREDS"
  sed -i "s|^image: .*|image: localhost:$port/evrun/tool:1|" "$tmp/plain.yml"
  run plain
  check "plain HTTP, not marked insecure: the fix" grep -qF "server gave HTTP response to HTTPS client (the registry speaks plain HTTP: mark it insecure in the registries.conf of the runner's podman service: [[registry]] location = \"HOST:PORT\" insecure = true)" "$out"
  local dead; dead=$(free_port)
  pipeline dead
  sed -i "s|^image: .*|image: 127.0.0.1:$dead/evrun/tool:1|" "$tmp/dead.yml"
  run dead
  check "no registry listens: the fix" grep -qF "connection refused (the runner's podman cannot reach the registry the image names: check the registry's host and port in the image, that it runs, and that the runner's host reaches it)" "$out"
  pipeline short
  sed -i "s|^image: .*|image: evrun-no-such-short-name|" "$tmp/short.yml"
  run short
  check "a short name: the fix" grep -qF "(a short name, and this runner's podman searches no registry for one: give the image's registry and tag, e.g. docker.io/library/NAME:TAG, or a localhost/ image)" "$out"
}

case_always() {   # a changed tag: missing keeps the local copy, always pulls anew
  forget
  pipeline first "registry_auth: REGISTRY_CREDS"
  run first
  check "first: variant one" grep -qx "show | one" "$out"
  push two 1
  pipeline keep "registry_auth: REGISTRY_CREDS"
  run keep
  check "missing: the local copy, no pull" grep -qx "show | one" "$out"
  check "... no image event" sh -c "! grep -q 'image\\.' '$tmp/keep.job'"
  pipeline again "registry_auth: REGISTRY_CREDS" "pull: always"
  run again
  check "always: the changed tag pulled" grep -qx "show | two" "$out"
  check "... recorded" grep -q "image.pulled" "$tmp/again.job"
  push one 1
}

case_never() {   # never, image missing: the step fails before create, no registry asked
  forget
  pipeline never "pull: never"
  run never
  check "exit 1" [ "$rc" -eq 1 ]
  check "says why" grep -q "image $repo:1 is not in the runner's storage, and pull is never" "$out"
  check "no pull went out" sh -c "! grep -q 'image\\.' '$tmp/never.job'"
  check "still not there" no_image
}

case_step_level() {   # a step's pull over the pipeline's; one pull per image per job
  forget
  cat > "$tmp/step_level.yml" <<EOF
pipeline: step-level
image: $repo:1
registry_auth: REGISTRY_CREDS
pull: never
steps:
  - name: a
    pull: always
    run: cat /variant
  - name: b
    pull: always
    run: cat /variant
  - name: c
    run: cat /variant
EOF
  run step_level
  check "exit 0" [ "$rc" -eq 0 ]
  check "one pull for two steps with always" [ "$(grep -c 'image.pulled' "$tmp/step_level.job")" -eq 1 ]
  check "never finds the image the job pulled" grep -qx "c | one" "$out"
}

case_kill_during_pull() {   # a runner killed during a pull: the job recovers
  forget
  pipeline killed "registry_auth: REGISTRY_CREDS"
  state=$tmp/state-killed
  EVR_TEST_PAUSE_AT=pulling "$bin/evrun-runner" --exec "$tmp/killed.yml" --state-dir "$state" \
    --secrets-dir "$tmp/secrets" > "$tmp/killed.out" 2> "$tmp/killed.err" &
  runner_pid=$!
  for _ in $(seq 200); do grep -q "test pause at pulling" "$tmp/killed.err" && break; sleep 0.05; done
  check "paused during the pull" grep -q "test pause at pulling" "$tmp/killed.err"
  kill -9 "$runner_pid"; wait "$runner_pid" 2>/dev/null; runner_pid=
  "$bin/evrun-runner" --recover --state-dir "$state" --secrets-dir "$tmp/secrets" \
    > "$tmp/killed.rec" 2>&1
  check "recovery: exit 0" [ $? -eq 0 ]
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/killed.out" | head -n 1)
  check "the step ran once, its output whole" \
    [ "$("$bin/evrun-replay" "$state" --output "$job/show")" = one ]
  check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
}

case_resource_image() {   # resources go in through the job's image: pulled first
  forget
  local www=$tmp/www hport serve_port serve_pid
  mkdir -p "$www"
  echo "fetched" > "$www/note.txt"
  serve_dir "$www" || fails=$((fails + 1))
  hport=$serve_port
  local hpid=$serve_pid
  cat > "$tmp/resource_image.yml" <<EOF
pipeline: resource-image
image: $repo:1
registry_auth: REGISTRY_CREDS
resources:
  - { name: note, url: "http://127.0.0.1:$hport/note.txt", path: note.txt }
steps:
  - name: show
    run: cat /variant note.txt
EOF
  run resource_image
  kill "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null
  check "exit 0" [ "$rc" -eq 0 ]
  check "the image pulled before the resource went in" grep -qx "show | fetched" "$out"
  check "image.pulled before job.started" \
    awk '/image\.pulled/ && !p { p = NR } /job\.started/ && !s { s = NR }
         END { exit !(p && s && p < s) }' "$tmp/resource_image.job"
  check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null
}

case_cancel_pull() {   # SIGINT during a pull that hangs: the job ends now, cancelled
  python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
held = []
while True:
    held.append(s.accept()[0])   # read nothing, answer nothing
' "$stall_port" &
  stall_pid=$!
  cat > "$tmp/stall.yml" <<EOF
pipeline: stall
image: 127.0.0.1:$stall_port/evrun/never:1
steps:
  - name: show
    run: echo never
EOF
  state=$tmp/state-stall
  "$bin/evrun-runner" --exec "$tmp/stall.yml" --state-dir "$state" > "$tmp/stall.out" 2>&1 &
  runner_pid=$!
  for _ in $(seq 200); do grep -q "Trying to pull" "$tmp/stall.out" && break; sleep 0.05; done
  check "the pull is under way" grep -q "Trying to pull 127.0.0.1:$stall_port" "$tmp/stall.out"
  kill -INT "$runner_pid"
  local rc=124
  for _ in $(seq 100); do kill -0 "$runner_pid" 2>/dev/null || break; sleep 0.1; done
  if ! kill -0 "$runner_pid" 2>/dev/null; then wait "$runner_pid"; rc=$?; fi
  kill -9 "$runner_pid" 2>/dev/null; wait "$runner_pid" 2>/dev/null; runner_pid=
  kill "$stall_pid" 2>/dev/null; wait "$stall_pid" 2>/dev/null; stall_pid=
  check "the runner ended within 10 s, exit 1" [ "$rc" -eq 1 ]
  check "the step cancelled" grep -Eq "^show +cancelled" "$tmp/stall.out"
  check "the job cancelled" grep -Eq "^evrun-runner: job [0-9A-Z]+ cancelled$" "$tmp/stall.out"
  check "the step's reason: the pull" grep -q "show > cancelled .*the image pull had not answered" \
    "$tmp/stall.out"
}

case_follow() {   # through a broker: run --follow and evrun-tail show the pull, a line a layer
  forget
  pipeline follow "registry_auth: REGISTRY_CREDS"
  local top=$tmp job
  root=$top/bus
  tmp=$root
  mkdir -p "$tmp"
  . "$(dirname "$0")/bus_lib.sh"
  bus_broker && bus_runner reg-1 "" 1 --secrets-dir "$top/secrets" && bus_wait_runners 1
  timeout -k 10 120 "$bin/evrun-cli" run "$top/follow.yml" --follow > "$top/follow.out" 2>&1
  rc=$?
  job=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$top/follow.out")
  timeout -k 10 30 "$bin/evrun-tail" --job "$job" > "$top/tail.out" 2>&1
  bus_stop
  tmp=$top
  unset EVRUN_STATE_DIR
  check "run --follow: exit 0" [ "$rc" -eq 0 ]
  check "run --follow: the pull's layers" \
    grep -q "^image $repo:1 | Copying blob sha256:[0-9a-f]*$" "$top/follow.out"
  check "run --follow: pulled, with its digest" \
    grep -Eq "^image $repo:1 \| pulled \(sha256:[0-9a-f]{64}, [1-9][0-9]* bytes" "$top/follow.out"
  check "run --follow: then the step" grep -qx "show | one" "$top/follow.out"
  check "evrun-tail: the pull's layers" grep -qF "$job/image $repo:1 | Copying blob" "$top/tail.out"
  check "one line per layer: as many as podman's copies" \
    [ "$(grep -c "Copying blob" "$top/follow.out")" -eq "$(grep -c "Copying blob" "$top/tail.out")" ]
  check "credentials nowhere in the broker's store" sh -c "! grep -rqaF '$pass' '$root'"
}

case_first_image() {   # the source goes in through the first step's own image, as it pulls
  # a local image under pull: never (the pipeline's, pulled only by the second step)
  push two 2
  pipeline local2 "registry_auth: REGISTRY_CREDS"
  sed -i "s|^image: .*|image: $repo:2|" "$tmp/local2.yml"
  run local2
  check "a local image made by a first job" grep -qx "show | two" "$out"
  forget
  mkdir -p "$tmp/first_image-src" && echo copied > "$tmp/first_image-src/note.txt"
  cat > "$tmp/first_image.yml" <<EOF
pipeline: first-image
image: $repo:1
registry_auth: REGISTRY_CREDS
source: {copy: first_image-src}
steps:
  - name: local
    image: $repo:2
    pull: never
    run: cat /variant note.txt
  - name: pulled
    run: cat /variant note.txt
EOF
  run first_image
  check "exit 0" [ "$rc" -eq 0 ]
  check "the first step in its local image, the source in" grep -qx "local | two" "$out"
  check "... the source in" grep -qx "local | copied" "$out"
  check "the second step's image pulled by it" grep -qx "pulled | one" "$out"
  check "one pull, as the second step's policy says" [ "$(grep -c 'image.pulled' "$tmp/first_image.job")" -eq 1 ]
  # (asked when the first step begins: the second is created ahead, so
  # the pull may end before the first step's step.started)
  check "... not in preparation: once the first step begins" \
    awk '/step\.starting/ && !s { s = NR } /image\.pulled/ && !p { p = NR }
         END { exit !(p && s && s < p) }' "$tmp/first_image.job"
  curl -s -o /dev/null -X DELETE --unix-socket "$sock" \
    "http://d/v4.0.0/libpod/images/$(echo "$repo:2" | sed 's|/|%2F|g')?force=true"
}

# examples/real-pipeline.yml as it is, its addresses rewritten: a git
# repository made here (file URL), the test image pushed to the registry,
# an HTTP server on 127.0.0.1 for the dependencies; run with --exec twice
# (the second job restores the cache), after a commit changed the lock
# file (a new cache; a dependency missing on the server first), through a
# broker, whose copy of the failing step's report is fetched and checked
# against its event, and green after a commit fixed the test.
case_example() {
  local ex=$tmp/example hport=$((port + 3)) sha app www img hpid
  app=$ex/app www=$ex/www img=127.0.0.1:$port/evrun-busybox:latest
  mkdir -p "$app" "$www"
  printf 'greeting.txt\nnumbers.txt\n' > "$app/deps.lock"
  cat > "$app/test.sh" <<'EOF'
# the project's tests: a report in reports/, exit 1 when one fails
mkdir -p reports
{
  echo 1..2
  [ "$(cat deps/greeting.txt)" = hello ] && echo "ok 1 - greeting" || echo "not ok 1 - greeting"
  [ "$(tail -n 1 deps/numbers.txt)" = 42 ] && echo "ok 2 - answer" \
    || echo "not ok 2 - answer: 42 expected, got $(tail -n 1 deps/numbers.txt)"
} > reports/tests.tap
cat reports/tests.tap
! grep -q '^not ok' reports/tests.tap
EOF
  git -C "$app" init -q -b main
  git -C "$app" add . && git -c user.email=t@example.org -c user.name=t -C "$app" commit -qm app
  sha=$(git -C "$app" rev-parse HEAD)
  echo hello > "$www/greeting.txt"
  seq 1 41 > "$www/numbers.txt"
  podman push -q --tls-verify=false --creds "$user:$pass" localhost/evrun-busybox:latest \
    "docker://$img" > "$tmp/push.log" 2>&1 || cat "$tmp/push.log" >&2
  busybox httpd -f -p "127.0.0.1:$hport" -h "$www" &
  hpid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$hport/greeting.txt" && break; sleep 0.1; done
  sed -e "s|file:///tmp/evrun-demo/app|file://$app|" -e "s|127\.0\.0\.1:5000/|127.0.0.1:$port/|" \
      -e "s|http://127\.0\.0\.1:8000|http://127.0.0.1:$hport|" "$src/examples/real-pipeline.yml" \
      > "$tmp/example.yml"
  check "the three addresses rewritten" \
    [ "$(grep -v '^ *#' "$tmp/example.yml" | grep -cE "file://$app\"|127.0.0.1:($port|$hport)")" -eq 3 ]
  check "... none left" sh -c "! grep -v '^ *#' '$tmp/example.yml' | grep -qE 'evrun-demo|:5000|:8000'"

  run example
  cp "$out" "$tmp/example-1.out"
  check "--exec: exit 1 (the tests fail)" [ "$rc" -eq 1 ]
  check "the image pulled from the registry" \
    grep -Eq "^image $img > pulled \(sha256:[0-9a-f]{64}" "$out"
  check "... once for the source's way in and all four steps" \
    [ "$(grep -c "^image $img > pulled" "$out")" -eq 1 ]
  check "the checkout's commit" grep -q "source: file://$app main is commit $sha" "$out"
  check "predefined variables" grep -qx "info | source file://$app main at $sha" "$out"
  check "... and the /job layout" grep -qx "info | job $job of real-pipeline on exec, CI=true, in /job/src" "$out"
  check "host network: the dependencies fetched" \
    grep -qx "deps | deps: 2 fetched from http://127.0.0.1:$hport" "$out"
  check "the tests ran on them" grep -qx "test | ok 1 - greeting" "$out"
  check "the failing test" grep -qx "test | not ok 2 - answer: 42 expected, got 41" "$out"
  check "the step's reason" grep -q "^test > failed (exit 1" "$out"
  check "the step after it skipped" grep -q "^package > skipped" "$out"
  check "the report kept (when: on_failure)" \
    grep -qx "not ok 2 - answer: 42 expected, got 41" "$state/artifacts/$job/test/src/reports/tests.tap"
  check "no artifact of the skipped step" [ ! -e "$state/artifacts/$job/package" ]
  check "credentials nowhere in the store or output" no_secret_anywhere

  run example
  check "second --exec run: exit 1" [ "$rc" -eq 1 ]
  check "pull: always pulls again" grep -Eq "^image $img > pulled " "$out"
  check "the cache restored" grep -qx "deps | deps: 2 restored from the cache" "$out"
  check "... and the tests ran on it" grep -qx "test | ok 1 - greeting" "$out"
  check "store verifies" "$bin/evrun-replay" "$state" --verify > /dev/null

  # a new commit changes deps.lock: a new cache key, fetched afresh (a
  # first time without the new file on the server: nothing kept)
  echo extra.txt >> "$app/deps.lock"
  git -c user.email=t@example.org -c user.name=t -C "$app" commit -qam "one more dependency"
  sha=$(git -C "$app" rev-parse HEAD)
  run example
  check "a dependency missing on the server: deps fails" grep -q "^deps > failed (exit 1" "$out"
  check "... the job too" [ "$rc" -eq 1 ]
  echo extra > "$www/extra.txt"
  run example
  check "a changed lock file: a new cache, nothing restored from the failed job" \
    grep -qx "deps | deps: 3 fetched from http://127.0.0.1:$hport" "$out"
  check "... of the new commit" grep -qx "info | source file://$app main at $sha" "$out"

  local top=$tmp j got ev
  root=$top/bus-example
  tmp=$root
  mkdir -p "$tmp"
  . "$(dirname "$0")/bus_lib.sh"
  bus_broker && bus_runner ex-1 "" 1 --secrets-dir "$top/secrets" && bus_wait_runners 1
  "$bin/evrun-cli" run "$top/example.yml" --follow --events > "$top/example-bus.out" 2>&1
  rc=$?
  j=$(sed -n 's/^job \([0-9A-Z]*\) accepted.*/\1/p' "$top/example-bus.out")
  "$bin/evrun-cli" artifacts "$j" -o "$top/example-got" > "$top/example-art.out" 2>&1   # waits for the file
  ev=$("$bin/evrun-cli" logs "$j" --events --json | grep '"type":"step.artifact"' \
         | sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p')
  bus_stop
  tmp=$top
  unset EVRUN_STATE_DIR
  kill "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null
  got=$tmp/example-got/test/src/reports/tests.tap
  check "run --follow: exit 1" [ "$rc" -eq 1 ]
  check "run --follow: the pull" grep -Eq "^image $img \| pulled \(sha256:" "$tmp/example-bus.out"
  check "run --follow: the variables on the runner" \
    grep -qx "info | job $j of real-pipeline on ex-1, CI=true, in /job/src" "$tmp/example-bus.out"
  check "run --follow: the checkout" grep -qx "info | source file://$app main at $sha" "$tmp/example-bus.out"
  check "run --follow: the cache (the runner's podman has it)" \
    grep -qx "deps | deps: 3 restored from the cache" "$tmp/example-bus.out"
  check "run --follow: the step's end" \
    grep -q "^test -- step.finished: failed (exit 1, [0-9]* ms)$" "$tmp/example-bus.out"
  check "run --follow: the next step skipped, saying why" \
    grep -qx "package -- step.skipped -- step test before it did not succeed" "$tmp/example-bus.out"
  check "run --follow: the artifact recorded" \
    grep -qx "test -- step.artifact src/reports/tests.tap (60 bytes, sha256 $ev)" "$tmp/example-bus.out"
  check "run --follow: the job failed" grep -qx "job $j failed: step test failed (exit 1)" "$tmp/example-bus.out"
  check "artifacts: the report fetched" grep -qx "not ok 2 - answer: 42 expected, got 41" "$got"
  check "its sha256 is the step.artifact event's" \
    [ "$(sha256sum < "$got" | cut -d' ' -f1)" = "$ev" ]
  check "artifacts: one line, size and sha256" \
    grep -qx "$got  $(stat -c %s "$got") bytes  sha256 $ev" "$tmp/example-art.out"
  check "credentials nowhere in the broker's store" sh -c "! grep -rqaF '$pass' '$root'"

  # a commit fixes the test: the build is green, the package kept, no report
  sed -i 's/= 42 ]/= 41 ]/; s/42 expected/41 expected/' "$app/test.sh"
  git -c user.email=t@example.org -c user.name=t -C "$app" commit -qam "fix the test"
  run example
  check "green: exit 0" [ "$rc" -eq 0 ]
  check "green: the tests pass" grep -qx "test | ok 2 - answer" "$out"
  check "green: no report kept (on_failure)" [ ! -e "$state/artifacts/$job/test" ]
  check "green: the package kept, the project's files without its dependencies" \
    sh -c "tar -tzf '$state/artifacts/$job/package/src/app.tar.gz' > '$tmp/pkg.list' &&
           grep -qx test.sh '$tmp/pkg.list' && ! grep -q '^deps/' '$tmp/pkg.list'"
  check "no sanitizer report" sh -c "! grep -qs 'Sanitizer\|runtime error' '$root'/*.log '$tmp'/example*.out"
}

case_memo() {   # a warm runner asks podman once a while per image; a removed one comes back
  forget
  pipeline memo
  local top=$tmp ppid calls rc1 rc2 rc3 rc4 pulls2 pulls3 creates3
  root=$top/bus-memo
  tmp=$root
  mkdir -p "$tmp"
  calls=$tmp/calls.log
  . "$(dirname "$0")/bus_lib.sh"
  python3 "$(dirname "$0")/podman_proxy.py" "$tmp/proxy.sock" "$sock" "$calls" &
  ppid=$!
  for _ in $(seq 100); do [ -S "$tmp/proxy.sock" ] && break; sleep 0.05; done
  export EVRUN_PODMAN_URL=unix://$tmp/proxy.sock EVR_TEST_IMAGE_MEMO_MS=600000
  bus_broker && bus_runner memo-1 "" 1 --registry-auth "$top/auth.json" && bus_wait_runners 1
  export EVRUN_PODMAN_URL=unix://$sock
  unset EVR_TEST_IMAGE_MEMO_MS
  timeout -k 10 60 "$bin/evrun-cli" run "$top/memo.yml" --follow > "$top/memo-1.out" 2>&1; rc1=$?
  timeout -k 10 60 "$bin/evrun-cli" run "$top/memo.yml" --follow > "$top/memo-2.out" 2>&1; rc2=$?
  pulls2=$(grep -c "/images/pull" "$calls")
  for _ in $(seq 50); do   # once the last job's container is gone
    forget
    no_image && break
    sleep 0.1
  done
  timeout -k 10 60 "$bin/evrun-cli" run "$top/memo.yml" --follow > "$top/memo-3.out" 2>&1; rc3=$?
  pulls3=$(grep -c "/images/pull" "$calls")
  creates3=$(grep -c "/containers/create" "$calls")
  bus_stop
  cp "$calls" "$tmp/calls-bus.log"
  : > "$calls"   # --exec, the image there: its pull finds it, no inspect follows
  EVRUN_PODMAN_URL=unix://$tmp/proxy.sock "$bin/evrun-runner" --exec "$top/memo.yml" \
    --state-dir "$tmp/exec" --registry-auth "$top/auth.json" > "$top/memo-4.out" 2>&1; rc4=$?
  kill "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null
  tmp=$top
  unset EVRUN_STATE_DIR
  check "memo: the first job pulls and runs" \
    sh -c "[ $rc1 -eq 0 ] && grep -qx 'show | one' '$tmp/memo-1.out' && grep -q '^image .* pulled' '$tmp/memo-1.out'"
  check "memo: the second job runs" sh -c "[ $rc2 -eq 0 ] && grep -qx 'show | one' '$tmp/memo-2.out'"
  check "memo: ... without asking podman for its image again" [ "$pulls2" -eq 1 ]
  check "memo: the image removed meanwhile, the third job runs all the same" \
    sh -c "[ $rc3 -eq 0 ] && grep -qx 'show | one' '$tmp/memo-3.out'"
  check "memo: ... through a refused create, a pull and the create again" \
    sh -c "[ $pulls3 -eq 2 ] && [ $creates3 -eq 4 ]"
  check "memo: the image is back" have_image
  check "--exec, image there: runs" sh -c "[ $rc4 -eq 0 ] && grep -qx 'show | one' '$tmp/memo-4.out'"
  check "--exec, image there: one pull call, no image inspect" \
    sh -c "[ \$(grep -c /images/pull '$root/calls.log') -eq 1 ] && ! grep -q 'GET /v4.0.0/libpod/images/' '$root/calls.log'"
}

cases=${*:-with_secret auth_file no_creds wrong_password missing_tag registry_words always never step_level resource_image first_image kill_during_pull cancel_pull follow example memo}
# shellcheck disable=SC2086
run_cases $cases

#!/usr/bin/env bash
# test_source.sh BIN_DIR SRC_DIR [CASE...]: a job's source (`source:`,
# `ci_source:`) with evrun-runner --exec against the real podman service
# of the "podman" fixture (EVRUN_PODMAN_URL): git repositories made by the
# test (file:// URLs, and a `git daemon` on 127.0.0.1), a directory
# copied, a tarball from a local HTTP server (a private one too: its
# secret).  Each case checks the
# output, the job.source events in the store and that no container or
# volume of the job is left.
set -u
bin=$1 src=$2
shift 2
export CONTAINERS_CONF=$src/tools/podman/containers.conf
: "${EVRUN_PODMAN_URL:=unix:///tmp/evr-it-podman/podman.sock}"
export EVRUN_PODMAN_URL
tmp=$(mktemp -d /tmp/evr-src-XXXXXX)
daemon_pid= httpd_pid= shm_dir=
trap '[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null; [ -n "$httpd_pid" ] && kill "$httpd_pid" 2>/dev/null; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$tmp" ${shm_dir:+"$shm_dir"}' EXIT
fails=0 passes=0 case_name=

. "$(dirname "$0")/../support/check.sh"

# one state directory for all cases: its git cache is what a second
# checkout hits
state=$tmp/state

# run NAME FILE [runner args...]: runs the pipeline; sets $out $err $rc $job
run() {
  local name=$1 file=$2; shift 2
  out=$tmp/$name.out err=$tmp/$name.err
  "$bin/evrun-runner" --exec "$file" --state-dir "${run_state:-$state}" "$@" > "$out" 2> "$err"
  rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
}

left_behind() {
  local id
  id=$(echo "$job" | tr 'A-Z' 'a-z')
  { podman ps -a --format '{{.Names}}'; podman volume ls --format '{{.Name}}'; } | grep -c "evrun-$id" || true
}

verified() { "$bin/evrun-replay" "$state" --verify > /dev/null; }

# source_event FIELD: FIELD of the job's job.source event for `source`
source_event() {
  "$bin/evrun-replay" "$state" --events --json | grep "\"job\":\"$job\"" \
    | grep '"type":"job.source"' | grep '"source":"source"' | tail -n 1 \
    | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}

git_c() { git -c user.email=t@example.org -c user.name=t "$@"; }

# the repository: main (two commits, tag v1 on the first), branch other
repo=$tmp/repo
mkdir -p "$repo"
git_c -C "$repo" init -q -b main
echo "first" > "$repo/file.txt"
git_c -C "$repo" add . && git_c -C "$repo" commit -qm first
git_c -C "$repo" tag v1
echo "second" > "$repo/file.txt"
mkdir -p "$repo/dir" && echo "deep" > "$repo/dir/deep.txt"
git_c -C "$repo" add . && git_c -C "$repo" commit -qm second
git_c -C "$repo" checkout -q -b other
echo "on other" > "$repo/file.txt"
git_c -C "$repo" commit -qam other
git_c -C "$repo" checkout -q main
first=$(git -C "$repo" rev-parse v1)
second=$(git -C "$repo" rev-parse main)
other=$(git -C "$repo" rev-parse other)
mkdir -p "$tmp/ci"
printf 'echo "ci says hi"\n' > "$tmp/ci/hello.sh"

# pipeline NAME URL REF: a pipeline checking out REF of URL, the CI
# source the directory $tmp/ci, one step showing what it sees
git_pipeline() {
  cat > "$tmp/$1.yml" <<YML
pipeline: $1
image: localhost/evrun-busybox:latest
source:
  git: {url: "$2", ref: "$3"${4:+, depth: $4}}
ci_source: {copy: ci}
steps:
  - name: look
    run: |
      echo "cwd \$(pwd)"
      echo "file \$(cat file.txt)"
      echo "sha \$EVRUN_SOURCE_SHA ref \$EVRUN_SOURCE_REF url \$EVRUN_SOURCE_URL"
      sh /job/ci/hello.sh
YML
}

case_git_branch() {
  git_pipeline branch "file://$repo" other
  run branch "$tmp/branch.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "working directory /job/src" grep -q "^look | cwd /job/src$" "$out"
  check "the branch's tree" grep -q "^look | file on other$" "$out"
  check "EVRUN_SOURCE_* exported" grep -q "^look | sha $other ref other url file://$repo$" "$out"
  check "the CI source at /job/ci" grep -q "^look | ci says hi$" "$out"
  check "job.source records the commit" [ "$(source_event commit)" = "$other" ]
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_git_tag() {
  git_pipeline tag "file://$repo" v1
  run tag "$tmp/tag.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the tag's tree" grep -q "^look | file first$" "$out"
  check "the tag's commit" grep -q "^look | sha $first ref v1 " "$out"
  check "no directory of later commits" sh -c "! grep -q deep '$out'"
}

case_git_sha() {
  git_pipeline sha "file://$repo" "$first"
  run sha "$tmp/sha.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the commit's tree" grep -q "^look | file first$" "$out"
  check "job.source records it" [ "$(source_event commit)" = "$first" ]
}

case_git_missing_ref() {
  git_pipeline missing "file://$repo" no-such-branch
  run missing "$tmp/missing.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "a clear error naming the ref and the repository" \
    grep -q "source: git: ref \"no-such-branch\" is not in file://$repo (a branch, tag or full commit SHA)" "$out"
  check "the step skipped with it" grep -q "^look > skipped: source: git: ref \"no-such-branch\"" "$out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

# a repository that is not there: git's fatal line is the reason (not the
# advice after it), said by the skipped step, the summary's last line and
# evrun-replay (the job's reason)
case_git_missing_repo() {
  git_pipeline norepo "file:///nonexistent/evr-repo.git" main
  run norepo "$tmp/norepo.yml"
  local why="source: git: fetching file:///nonexistent/evr-repo.git failed: fatal: '/nonexistent/evr-repo.git' does not appear to be a git repository"
  check "exit 1" [ "$rc" -eq 1 ]
  check "the step skipped with git's fatal line" grep -qF "look > skipped: $why" "$out"
  check "the summary's last line says why" grep -q "^job $job failed in [0-9.]*s: source: git: fetching" "$out"
  check "... the same reason" grep -qF "s: $why" "$out"
  check "evrun-replay --job: the reason" grep -qF "reason: $why" <("$bin/evrun-replay" "$state" --job "$job")
}

# a second checkout of the same repository fetches only what is new: the
# objects count of job.source (absent: 0)
case_git_cache() {
  local cold=$tmp/cold
  git_pipeline cache "file://$repo" main
  run_state=$cold run cache1 "$tmp/cache.yml"
  check "first checkout: exit 0" [ "$rc" -eq 0 ]
  local n1
  n1=$("$bin/evrun-replay" "$cold" --events --json | grep '"type":"job.source"' \
         | grep '"source":"source"' | sed -n 's/.*"objects":\([0-9]*\).*/\1/p')
  check "first checkout fetched the objects ($n1)" [ "${n1:-0}" -ge 6 ]
  run_state=$cold run cache2 "$tmp/cache.yml"
  check "second checkout: exit 0" [ "$rc" -eq 0 ]
  check "second checkout: nothing fetched" grep -q "commit $second (0 objects fetched)" "$out"
  echo "third" > "$repo/new.txt"
  git_c -C "$repo" add . && git_c -C "$repo" commit -qm third
  run_state=$cold run cache3 "$tmp/cache.yml"
  check "a new commit: its objects only (commit, tree, blob)" \
    grep -q "commit $(git -C "$repo" rev-parse main) (3 objects fetched)" "$out"
  git_c -C "$repo" reset -q --hard "$second"
}

case_git_shallow() {
  local shallow=$tmp/shallow
  git_pipeline shallow "file://$repo" main 1
  run_state=$shallow run shallow "$tmp/shallow.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the tree" grep -q "^look | file second$" "$out"
  local cache
  cache=$(ls -d "$shallow"/git-cache/*.git)
  check "the cache is shallow" [ "$(git --git-dir="$cache" rev-parse --is-shallow-repository)" = true ]
  check "one commit fetched" [ "$(git --git-dir="$cache" rev-list --count "$second")" -eq 1 ]
}

case_git_daemon() {   # git:// from a git daemon on 127.0.0.1
  local port
  port=$(free_port)
  git daemon --listen=127.0.0.1 --port="$port" --base-path="$tmp" --export-all \
    --reuseaddr "$tmp" > "$tmp/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 50); do git ls-remote "git://127.0.0.1:$port/repo" > /dev/null 2>&1 && break; sleep 0.1; done
  git_pipeline daemon "git://127.0.0.1:$port/repo" main
  run daemon "$tmp/daemon.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the tree" grep -q "^look | file second$" "$out"
  check "the commit" [ "$(source_event commit)" = "$second" ]
  kill "$daemon_pid" && wait "$daemon_pid" 2>/dev/null
  daemon_pid=
}

case_ci_readonly() {   # a step in /job/src cannot write /job/ci
  cat > "$tmp/ro.yml" <<YML
pipeline: ro
image: localhost/evrun-busybox:latest
source: {git: {url: "file://$repo"}}
ci_source: {copy: ci}
steps:
  - name: tamper
    untrusted: true
    run: echo changed > /job/ci/hello.sh
  - name: after
    run: sh /job/ci/hello.sh
YML
  run ro "$tmp/ro.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "the write failed: read-only" grep -q "^tamper | .*Read-only file system" "$out"
  check "the step failed" grep -q "^tamper > failed" "$out"
}

case_untrusted() {   # secrets only for steps that are not untrusted
  cat > "$tmp/untrusted.yml" <<YML
pipeline: untrusted
image: localhost/evrun-busybox:latest
source: {git: {url: "file://$repo", ref: main}}
secrets: [SRC_TOKEN]
steps:
  - name: trusted
    run: echo "trusted sees \${#SRC_TOKEN} bytes"
  - name: tests
    untrusted: true
    run: echo "untrusted sees \${SRC_TOKEN:-nothing}"
YML
  SRC_TOKEN=abcdef run untrusted "$tmp/untrusted.yml" --secrets-allow SRC_TOKEN
  check "exit 0" [ "$rc" -eq 0 ]
  check "the trusted step has it" grep -q "^trusted | trusted sees 6 bytes$" "$out"
  check "the untrusted step has none" grep -q "^tests | untrusted sees nothing$" "$out"
}

case_artifact_paths() {   # artifact paths are relative to /job: src/... found, a bare one hinted
  cat > "$tmp/artpaths.yml" <<YML
pipeline: artpaths
image: localhost/evrun-busybox:latest
source: {git: {url: "file://$repo", ref: main}}
steps:
  - name: kept
    run: mkdir -p reports && echo red > reports/r.txt && exit 1
    artifacts: {paths: [src/reports], when: on_failure}
  - name: bare
    needs: [kept]
    run: mkdir -p reports && echo red > reports/r.txt
    artifacts: [reports]
YML
  run artpaths "$tmp/artpaths.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "src/reports kept" [ "$(cat "$state/artifacts/$job/kept/src/reports/r.txt")" = red ]
  sed -i 's/exit 1$/true/' "$tmp/artpaths.yml"
  run artpaths "$tmp/artpaths.yml"
  check "a path not under src/: the step fails" grep -q "^bare > failed (" "$out"
  check "... saying paths are relative to /job, not giving the exit 0 as the cause" \
    grep -q "^bare > failed ([0-9.]*s): its command exited 0, but artifact reports: .*(artifact paths are relative to /job: src/reports in the source)$" "$out"
}

make_tree() {   # $tmp/tree: files, an ignored directory and pattern, .git, a link
  rm -rf "$tmp/tree"
  mkdir -p "$tmp/tree/keep" "$tmp/tree/build" "$tmp/tree/.git"
  echo "kept" > "$tmp/tree/keep/a.txt"
  echo "junk" > "$tmp/tree/build/out.o"
  echo "log" > "$tmp/tree/debug.log"
  echo "git" > "$tmp/tree/.git/HEAD"
  ln -s keep/a.txt "$tmp/tree/link"
  printf '# build output\nbuild/\n*.log\n' > "$tmp/tree/.evrunignore"
}

case_copy() {   # a directory of the runner, .evrunignore honoured
  make_tree
  cat > "$tmp/copy.yml" <<'YML'
pipeline: copy
image: localhost/evrun-busybox:latest
source: {copy: tree}
steps:
  - name: list
    run: find . | sort; cat link
YML
  run copy "$tmp/copy.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "kept files" grep -q "^list | ./keep/a.txt$" "$out"
  check "ignored directory left out" sh -c "! grep -q build '$out'"
  check "ignored pattern left out" sh -c "! grep -q debug.log '$out'"
  check ".git left out" sh -c "! grep -q '\\.git/' '$out'"
  check "a link kept as a link" grep -q "^list | kept$" "$out"
  check "job.source: copy" [ "$(source_event kind)" = copy ]
}

case_tarball() {
  local www=$tmp/www port
  mkdir -p "$www/t/sub"
  echo "from the tarball" > "$www/t/sub/x.txt"
  tar -C "$www/t" -czf "$www/src.tar.gz" .
  serve_dir "$www" || fails=$((fails + 1))
  port=$serve_port httpd_pid=$serve_pid
  cat > "$tmp/tarball.yml" <<YML
pipeline: tarball
image: localhost/evrun-busybox:latest
source: {tarball: "http://127.0.0.1:$port/src.tar.gz"}
steps:
  - {name: cat, run: cat sub/x.txt}
YML
  run tarball "$tmp/tarball.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "unpacked at /job/src" grep -q "^cat | from the tarball$" "$out"
  kill "$httpd_pid" && wait "$httpd_pid" 2>/dev/null
  httpd_pid=
}

case_tarball_secret() {   # a tarball's secret beside it: sent to its server (README "Private downloads")
  local www=$tmp/wwwp port try
  mkdir -p "$www/t" "$tmp/secrets"
  echo "from the private tarball" > "$www/t/p.txt"
  tar -C "$www/t" -czf "$www/src.tar.gz" .
  printf 'builder:s3cret-pw-41\n' > "$tmp/secrets/TARBALL_AUTH"
  printf 'builder:n0t-it-41\n' > "$tmp/secrets/WRONG_AUTH"
  for try in 1 2 3; do
    port=$(free_port) || break
    python3 "$src/tests/integration/auth_http.py" "$port" "$tmp/auth.log" builder:s3cret-pw-41 \
      tok-unused "$www" &
    httpd_pid=$!
    wait_port "$port" "$httpd_pid" 2> /dev/null && break
    kill "$httpd_pid" 2> /dev/null; wait "$httpd_pid" 2> /dev/null; httpd_pid=
  done
  check "the server started" [ -n "$httpd_pid" ] || return
  cat > "$tmp/tarsec.yml" <<YML
pipeline: tarsec
image: localhost/evrun-busybox:latest
source: {tarball: "http://127.0.0.1:$port/basic/src.tar.gz", secret: TARBALL_AUTH}
steps:
  - {name: cat, run: cat p.txt}
YML
  run tarsec "$tmp/tarsec.yml" --secrets-dir "$tmp/secrets"
  check "exit 0" [ "$rc" -eq 0 ]
  check "unpacked at /job/src" grep -q "^cat | from the private tarball$" "$out"
  check "sent as Basic" grep -qx "127.0.0.1 /basic/src.tar.gz Basic" "$tmp/auth.log"
  sed 's/TARBALL_AUTH/WRONG_AUTH/' "$tmp/tarsec.yml" > "$tmp/tarsec2.yml"
  run tarsec2 "$tmp/tarsec2.yml" --secrets-dir "$tmp/secrets"
  check "a wrong secret: exit 1" [ "$rc" -eq 1 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/tarsec2.job"
  check "... the reason names the status and the secret" grep -q \
    "^reason: .*src.tar.gz answered HTTP 401 (the credentials of secret WRONG_AUTH were sent)" \
    "$tmp/tarsec2.job"
  check "no value in output or replay" not grep -qF -e s3cret-pw-41 -e n0t-it-41 \
    "$out" "$err" "$tmp/tarsec.out" "$tmp/tarsec2.job"
  check "nothing left" [ "$(left_behind)" -eq 0 ]
  kill "$httpd_pid" && wait "$httpd_pid" 2>/dev/null
  httpd_pid=
}

case_utf8_names() {   # names past ASCII: in a copy, a tarball resource and an artifact
  local www=$tmp/www8 port
  mkdir -p "$tmp/tree8" "$www/v/u"
  echo r > "$tmp/tree8/résumé.txt"
  echo n > "$www/v/u/naïve.txt"
  tar -C "$www/v" -czf "$www/v.tar.gz" .
  serve_dir "$www" || fails=$((fails + 1))
  port=$serve_port httpd_pid=$serve_pid
  cat > "$tmp/utf8.yml" <<YML
pipeline: utf8
image: localhost/evrun-busybox:latest
source: {copy: tree8}
resources: [{name: v, url: "http://127.0.0.1:$port/v.tar.gz", path: vendor}]
steps:
  - name: s
    run: cat résumé.txt /job/vendor/u/naïve.txt; mkdir -p out && echo u > "out/ünï.txt"
    artifacts: [src/out]
YML
  "$bin/evrun-cli" validate "$tmp/utf8.yml" > "$tmp/utf8.val" 2>&1
  check "evrun-cli validate reads the copy: ok" grep -q "utf8.yml: ok$" "$tmp/utf8.val"
  run utf8 "$tmp/utf8.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the copy's résumé.txt at /job/src" grep -q "^s | r$" "$out"
  check "the resource's naïve.txt unpacked" grep -q "^s | n$" "$out"
  check "the artifact ünï.txt kept" [ "$(cat "$state/artifacts/$job/s/src/out/ünï.txt")" = u ]
  kill "$httpd_pid" && wait "$httpd_pid" 2>/dev/null
  httpd_pid=
}

case_submodules() {
  local sub=$tmp/subrepo sup=$tmp/super
  mkdir -p "$sub" "$sup"
  git_c -C "$sub" init -q -b main && echo "in the submodule" > "$sub/s.txt"
  git_c -C "$sub" add . && git_c -C "$sub" commit -qm s
  git_c -C "$sup" init -q -b main && echo top > "$sup/top.txt"
  git_c -C "$sup" -c protocol.file.allow=always submodule -q add "file://$sub" lib/sub
  git_c -C "$sup" add . && git_c -C "$sup" commit -qm super
  cat > "$tmp/subm.yml" <<YML
pipeline: subm
image: localhost/evrun-busybox:latest
source: {git: {url: "file://$sup", submodules: true}}
steps:
  - {name: cat, run: cat top.txt lib/sub/s.txt}
YML
  run subm "$tmp/subm.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the submodule's tree" grep -q "^cat | in the submodule$" "$out"
}

# the .gitmodules of the job's repository is the job's code: a submodule
# url that git would read as an option (--upload-pack=CMD) runs nothing,
# and a file:// one under a git:// repository reads nothing of the
# runner's disk; each is refused, naming the submodule
case_submodule_urls() {
  local port evil=$tmp/evil priv=$tmp/hostonly
  mkdir -p "$evil" "$priv"
  git_c -C "$priv" init -q -b main && echo "HOST-ONLY" > "$priv/p.txt"
  git_c -C "$priv" add . && git_c -C "$priv" commit -qm p
  git_c -C "$evil" init -q -b main && echo top > "$evil/top.txt"
  printf '[submodule "s"]\n\tpath = s\n\turl = --upload-pack=touch %s/PWNED x://y\n' "$tmp" \
    > "$evil/.gitmodules"
  git_c -C "$evil" add . && git_c -C "$evil" update-index --add --cacheinfo "160000,$second,s"
  git_c -C "$evil" commit -qm evil
  git_c -C "$evil" checkout -q -b local
  printf '[submodule "s"]\n\tpath = s\n\turl = file://%s\n' "$priv" > "$evil/.gitmodules"
  git_c -C "$evil" update-index --add --cacheinfo "160000,$(git -C "$priv" rev-parse main),s"
  git_c -C "$evil" add .gitmodules && git_c -C "$evil" commit -qm local
  git_c -C "$evil" checkout -q -b other
  printf '[submodule "s"]\n\tpath = s\n\turl = ssh://git@127.0.0.1:1/private.git\n' > "$evil/.gitmodules"
  git_c -C "$evil" add .gitmodules && git_c -C "$evil" commit -qm other
  git_c -C "$evil" checkout -q -b same
  printf '[submodule "s"]\n\tpath = s\n\turl = ../repo\n' > "$evil/.gitmodules"
  git_c -C "$evil" update-index --add --cacheinfo "160000,$second,s"
  git_c -C "$evil" add .gitmodules && git_c -C "$evil" commit -qm same
  port=$(free_port)
  git daemon --listen=127.0.0.1 --port="$port" --base-path="$tmp" --export-all \
    --reuseaddr "$tmp" > "$tmp/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 50); do git ls-remote "git://127.0.0.1:$port/evil" > /dev/null 2>&1 && break; sleep 0.1; done
  for ref in main local other same; do
    cat > "$tmp/sm-$ref.yml" <<YML
pipeline: sm-$ref
image: localhost/evrun-busybox:latest
source: {git: {url: "git://127.0.0.1:$port/evil", ref: $ref, submodules: true}}
steps:
  - {name: cat, run: cat top.txt s/file.txt}
YML
    run "sm-$ref" "$tmp/sm-$ref.yml"
    [ "$ref" = same ] && break
    check "$ref: the job fails" [ "$rc" -eq 1 ]
    check "$ref: no step ran" sh -c "! grep -q '^cat |' '$out'"
  done
  check "a relative url on the repository's server: taken" [ "$rc" -eq 0 ]
  check "... its tree in the workspace" grep -q "^cat | second$" "$out"
  check "another server (ssh://, the runner's keys): refused" \
    grep -q "submodule s: its url is not on the repository's server" "$tmp/sm-other.out"
  check "an option-shaped url: refused, naming the submodule" \
    grep -q "submodule s: its url must be https://, http://, git:// or ssh://" "$(dirname "$out")/sm-main.out"
  check "... and git ran nothing of it" [ ! -e "$tmp/PWNED" ]
  check "a file:// url under git://: refused, not on the repository's server" \
    grep -q "submodule s: its url is not on the repository's server (git://127.0.0.1:$port): a submodule's url must be relative to the repository's, or on its server" "$tmp/sm-local.out"
  check "... nothing of the host's repository read" sh -c "! grep -rqa HOST-ONLY '$tmp/sm-local.out' '$state'"
  kill "$daemon_pid" && wait "$daemon_pid" 2>/dev/null
  daemon_pid=
}

# a private repository over http with basic auth (busybox httpd running
# git-http-backend): the credentials come from a named secret only
case_git_auth() {
  local www=$tmp/gitwww port
  mkdir -p "$www/cgi-bin" "$tmp/private"
  git clone -q --bare "$repo" "$tmp/private/p.git"
  cat > "$www/cgi-bin/git" <<SH
#!/bin/sh
export GIT_PROJECT_ROOT=$tmp/private GIT_HTTP_EXPORT_ALL=1
exec /usr/lib/git-core/git-http-backend
SH
  chmod +x "$www/cgi-bin/git"
  printf '/cgi-bin:alice:Pw-4711-secret\n' > "$tmp/httpd.conf"
  serve_dir "$www" -c "$tmp/httpd.conf" || fails=$((fails + 1))
  port=$serve_port httpd_pid=$serve_pid
  cat > "$tmp/auth.yml" <<YML
pipeline: auth
image: localhost/evrun-busybox:latest
source: {git: {url: "http://127.0.0.1:$port/cgi-bin/git/p.git", ref: main, secret: GIT_AUTH}}
steps:
  - {name: cat, run: cat file.txt}
  - {name: leak, run: "echo pw Pw-47''11-secret; echo both alice:Pw-47''11-secret"}
YML
  GIT_AUTH=alice:Pw-4711-secret run auth "$tmp/auth.yml" --secrets-allow GIT_AUTH
  check "with the secret: exit 0" [ "$rc" -eq 0 ]
  check "the private tree" grep -q "^cat | second$" "$out"
  check "the password nowhere in the store" sh -c "! grep -rqa 'Pw-4711' '$state'"
  check "nor in the output (a step that prints it: masked)" sh -c "! grep -qa 'Pw-4711' '$out' '$err'"
  check "... the password alone masked" grep -qx "leak | pw \*\*\*" "$out"
  check "... the whole credential masked" grep -qx "leak | both \*\*\*" "$out"
  GIT_AUTH=alice:wrong run auth-wrong "$tmp/auth.yml" --secrets-allow GIT_AUTH
  check "a wrong password: exit 1" [ "$rc" -eq 1 ]
  check "... git's reason, and what to do" grep -q "^evrun-runner: source: git: fetching http://127.0.0.1:$port/cgi-bin/git/p.git failed (a private repository: name a secret holding USER:PASSWORD in git.secret): fatal: " "$out"
  run auth-none "$tmp/auth.yml" --secrets-allow GIT_AUTH
  check "no secret: exit 2, naming it" grep -q "secret GIT_AUTH: not set" "$err"
  kill "$httpd_pid" && wait "$httpd_pid" 2>/dev/null
  httpd_pid=
}

# a cancel (SIGINT to --exec) while git waits on a server that never
# answers: the checkout's processes end, the job is cancelled
case_git_cancel() {
  local port srv r seen=
  port=$(free_port)
  # $tmp/never.up once it listens (a fixed pause was too short on a loaded
  # machine: git found nothing listening and the job failed on its own)
  rm -f "$tmp/never.up"
  python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $port)); s.listen(5); open('$tmp/never.up', 'w').close()
c = s.accept(); time.sleep(60)" &
  srv=$!
  for _ in $(seq 1 200); do [ -e "$tmp/never.up" ] || ! kill -0 "$srv" 2>/dev/null && break; sleep 0.05; done
  check "the silent server listens" [ -e "$tmp/never.up" ]
  cat > "$tmp/cancel.yml" <<YML
pipeline: cancel
image: localhost/evrun-busybox:latest
source: {git: {url: "git://127.0.0.1:$port/never"}}
steps: [{name: a, run: echo never}]
YML
  "$bin/evrun-runner" --exec "$tmp/cancel.yml" --state-dir "$state" > "$tmp/cancel.out" 2>&1 &
  r=$!
  # the cancel once git waits on the server (the runner is then in the
  # checkout), not before: 30 s for a loaded machine's start
  for _ in $(seq 1 300); do
    pgrep -f "git fetch.*127.0.0.1:$port" > /dev/null && { seen=1; break; }
    kill -0 "$r" 2>/dev/null || break
    sleep 0.1
  done
  check "git fetch waits on the server" [ -n "$seen" ] || sed 's/^/  /' "$tmp/cancel.out" >&2
  kill -INT "$r"; wait "$r"
  check "exit 1" [ $? -eq 1 ]
  check "cancelled during the checkout" grep -q "^a > skipped: source: the job was cancelled while it was checked out$" "$tmp/cancel.out"
  # the runner waits for the checkout's shell only: git, killed with it
  # (SIGKILL to the group), may take a moment to be gone on a loaded machine
  for _ in $(seq 1 50); do pgrep -f "[g]it fetch.*127.0.0.1:$port" > /dev/null || break; sleep 0.1; done
  check "no git left running" sh -c "! pgrep -f '[g]it fetch.*127.0.0.1:$port' > /dev/null"
  kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null
}

# through a broker: evrun-cli sends the directories in the submit
case_copy_broker() {
  local b=$tmp/b bp rp
  mkdir -p "$b"
  "$bin/evrun-broker" --local --state-dir "$b" > "$b/broker.log" 2>&1 &
  bp=$!
  for _ in $(seq 1 100); do [ -S "$b/bus/clients" ] && break; sleep 0.05; done
  "$bin/evrun-runner" --broker "ipc://$b/bus/runners" --id src-1 --state-dir "$b/r" \
    > "$b/runner.log" 2>&1 &
  rp=$!
  for _ in $(seq 1 100); do
    EVRUN_STATE_DIR=$b "$bin/evrun-cli" runners 2>/dev/null | grep -q "^src-1 " && break
    sleep 0.1
  done
  make_tree
  cat > "$tmp/copyb.yml" <<'YML'
pipeline: copyb
image: localhost/evrun-busybox:latest
source: {copy: tree}
ci_source: {copy: ci}
steps:
  - name: list
    run: find . | sort; sh /job/ci/hello.sh; touch /job/ci/x || echo ci is read-only
YML
  EVRUN_STATE_DIR=$b timeout -k 10 120 "$bin/evrun-cli" run "$tmp/copyb.yml" --follow > "$tmp/copyb.out" 2>&1
  check "a link refused by the client: exit 2" [ $? -eq 2 ]
  check "... naming it, at the copy: key" grep -q "^$tmp/copyb.yml:3:[0-9]*: source.copy: copy .*/tree: link is a symbolic link, which a copy sent to a broker cannot carry (list it in .evrunignore)" "$tmp/copyb.out"
  echo link >> "$tmp/tree/.evrunignore"
  EVRUN_STATE_DIR=$b timeout -k 10 120 "$bin/evrun-cli" run "$tmp/copyb.yml" --follow --events \
    > "$tmp/copyb.out" 2>&1
  check "exit 0" [ $? -eq 0 ]
  check "--events shows the sources" grep -q "^job -- job.source: source copy tree$" "$tmp/copyb.out"
  check "the directory at /job/src" grep -q "^list | ./keep/a.txt$" "$tmp/copyb.out"
  check "ignored left out" sh -c "! grep -q 'build\|debug.log\|link' '$tmp/copyb.out'"
  check "the CI directory at /job/ci" grep -q "^list | ci says hi$" "$tmp/copyb.out"
  check "/job/ci read-only" grep -q "^list | ci is read-only$" "$tmp/copyb.out"
  check "the runner keeps no tar of it" [ -z "$(find "$b/r" -name '.copy-*')" ]
  check "the broker's archive has job.source and verifies" \
    sh -c "'$bin/evrun-replay' '$b/broker' --events | grep -q job.source && '$bin/evrun-replay' '$b/broker' --verify > /dev/null"
  # too big for a submit: refused by the client, saying the limit
  head -c 3000000 /dev/urandom > "$tmp/tree/keep/big.bin"
  EVRUN_STATE_DIR=$b "$bin/evrun-cli" submit "$tmp/copyb.yml" > "$tmp/copyb.big" 2>&1
  check "too big: exit 2" [ $? -eq 2 ]
  check "... saying the limit" grep -q "over the limit of 1048576 bytes a submit carries" "$tmp/copyb.big"
  kill "$rp" "$bp"; wait "$rp" "$bp" 2>/dev/null
}

case_large_off_loop() {   # a large tarball (a source with file: triggers, a resource) is unpacked off the runner's loop
  local b www=$tmp/lwww bp rp port a c c2 kid
  # the broker's and the runner's state in memory (/dev/shm) when it can
  # be: the gaps checked below are the runner's loop's, not the disk's;
  # there, the writes of the tarballs and their tars (some 300 MB) held the
  # loop's own (the store's pwrite and fdatasync) in the kernel for up
  # to 1.4 s of a 2 s bound on a loaded machine
  b=$(mktemp -d /dev/shm/evr-lb-XXXXXX 2>/dev/null) && shm_dir=$b || b=$tmp/lb
  mkdir -p "$b" "$www/t/sub"
  # bzip2: slow to unpack (about 25 MB/s here), so the old code held
  # the loop for seconds
  head -c 60000000 /dev/urandom | base64 -w 100 > "$www/t/sub/big.txt"
  printf 'pipeline: next\nimage: localhost/evrun-busybox:latest\nsteps: [{name: s, run: "true"}]\n' \
    > "$www/t/next.yml"
  tar -C "$www/t" -cf - . | bzip2 -1 > "$www/src.tar.bz2" && rm -rf "$www/t"
  serve_dir "$www" || fails=$((fails + 1))
  port=$serve_port httpd_pid=$serve_pid
  "$bin/evrun-broker" --local --state-dir "$b" > "$b/broker.log" 2>&1 &
  bp=$!
  for _ in $(seq 1 100); do [ -S "$b/bus/clients" ] && break; sleep 0.05; done
  "$bin/evrun-runner" --broker "ipc://$b/bus/runners" --id loop-1 --capacity 3 \
    --state-dir "$b/r" > "$b/runner.log" 2>&1 &
  rp=$!
  for _ in $(seq 1 100); do
    EVRUN_STATE_DIR=$b "$bin/evrun-cli" runners 2>/dev/null | grep -q "^loop-1 " && break
    sleep 0.1
  done
  cat > "$tmp/ticks.yml" <<'YML'
pipeline: ticks
image: localhost/evrun-busybox:latest
steps:
  - {name: tick, run: "i=0; while [ $i -lt 150 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done"}
YML
  cat > "$tmp/big.yml" <<YML
pipeline: big
image: localhost/evrun-busybox:latest
triggers: ["file:*.yml"]
source: {tarball: "http://127.0.0.1:$port/src.tar.bz2"}
steps:
  - {name: show, run: "ls -l sub; evrun-job trigger --file next.yml"}
YML
  cat > "$tmp/bigres.yml" <<YML
pipeline: bigres
image: localhost/evrun-busybox:latest
resources: [{name: big, url: "http://127.0.0.1:$port/src.tar.bz2", path: big}]
steps:
  - {name: show, run: "ls big/sub"}
YML
  a=$(EVRUN_STATE_DIR=$b "$bin/evrun-cli" submit "$tmp/ticks.yml" --json | sed -n 's/.*"job":"\([0-9A-Z]*\)".*/\1/p')
  for _ in $(seq 1 200); do
    EVRUN_STATE_DIR=$b "$bin/evrun-cli" logs "$a" 2>/dev/null | grep -q "tick 5" && break
    sleep 0.1
  done
  EVRUN_STATE_DIR=$b timeout -k 10 120 "$bin/evrun-cli" run "$tmp/bigres.yml" --follow > "$tmp/bigres.out" 2>&1 &
  c2=$!
  EVRUN_STATE_DIR=$b timeout -k 10 120 "$bin/evrun-cli" run "$tmp/big.yml" --follow > "$tmp/big.out" 2>&1
  c=$?
  wait "$c2"
  c2=$?
  EVRUN_STATE_DIR=$b timeout -k 10 60 "$bin/evrun-cli" logs "$a" --follow > "$tmp/ticks.out" 2>&1
  check "the large job: exit 0" [ "$c" -eq 0 ]
  check "... its pipeline file kept and triggered" grep -q "^show | [0-9A-Z]\{26\}$" "$tmp/big.out"
  check "the large resource's job: exit 0" [ "$c2" -eq 0 ]
  check "... unpacked" grep -q "^show | big.txt$" "$tmp/bigres.out"
  check "the other job printed every line" grep -q "tick 149" "$tmp/ticks.out"
  # the other job's output events: never 2 s apart (the tarball's
  # unpacking and reading took 3-4 s on the loop before, each)
  "$bin/evrun-replay" "$b/r" --events --json | grep "\"job\":\"$a\"" \
    | grep '"type":"step.output"' | sed -n 's/.*"time":\([0-9]*\).*/\1/p' > "$tmp/ticks.times"
  check "... output events recorded" [ "$(wc -l < "$tmp/ticks.times")" -ge 10 ]
  check "... never 2 s apart while the large tars were unpacked" awk 'NR > 1 && $1 - p > 2000000000 { print "gap", ($1 - p) / 1e9; bad = 1 } { p = $1 } END { exit bad }' "$tmp/ticks.times"
  # cancelled while its tar is made: the child killed, the job ends
  # cancelled, nothing of its source left
  c=$(EVRUN_STATE_DIR=$b "$bin/evrun-cli" submit "$tmp/big.yml" --json | sed -n 's/.*"job":"\([0-9A-Z]*\)".*/\1/p')
  kid=$(off_loop_child "$rp" "$b/r/artifacts/$c")
  check "cancel: the tar is made by a child" [ -n "$kid" ]
  EVRUN_STATE_DIR=$b "$bin/evrun-cli" cancel "$c" > /dev/null 2>&1
  check "... the job ends cancelled" [ "$(off_loop_status "$b" "$c")" = cancelled ]
  check "... saying so" sh -c "'$bin/evrun-replay' '$b/r' --job '$c' | grep -q 'source: the job was cancelled while its tar was made'"
  # the child is killed and reaped from the loop's next turns, not waited
  # for by the cancel (evr_offload.h)
  for _ in $(seq 1 50); do [ -d "/proc/$kid" ] || break; sleep 0.1; done
  check "... its child reaped" [ ! -d "/proc/$kid" ]
  # its files are removed once the loop has reaped it: a turn or two
  # after the pid is gone (later on a loaded machine)
  local left=
  for _ in $(seq 1 100); do
    left=$(find "$b/r" -name '.source-*' -o -name '.tarball-*' -o -name '.trigger-files')
    [ -z "$left" ] && break
    sleep 0.1
  done
  check "... nothing of its source left${left:+ ($left)}" [ -z "$left" ]
  # the runner killed while its tar is made: the child dies with it; the
  # runner started again prepares the job again
  c=$(EVRUN_STATE_DIR=$b "$bin/evrun-cli" submit "$tmp/big.yml" --json | sed -n 's/.*"job":"\([0-9A-Z]*\)".*/\1/p')
  kid=$(off_loop_child "$rp" "$b/r/artifacts/$c")
  kill -9 "$rp"; wait "$rp" 2>/dev/null
  for _ in $(seq 1 50); do [ -d "/proc/$kid" ] && ! grep -q '^State:.*Z' "/proc/$kid/status" 2>/dev/null || break; sleep 0.1; done
  check "killed: the child died with the runner" sh -c "[ -n '$kid' ] && { [ ! -d /proc/$kid ] || grep -q '^State:.*Z' /proc/$kid/status; }"
  "$bin/evrun-runner" --broker "ipc://$b/bus/runners" --id loop-1 --capacity 2 \
    --state-dir "$b/r" >> "$b/runner.log" 2>&1 &
  rp=$!
  check "... the job prepared again and run" [ "$(off_loop_status "$b" "$c")" = succeeded ]
  check "... the runner's log verifies" "$bin/evrun-replay" "$b/r" --verify
  # the runner killed while a resource's tar is made: its temporary files
  # (the download, the tar under way) are removed when it starts again
  c=$(EVRUN_STATE_DIR=$b "$bin/evrun-cli" submit "$tmp/bigres.yml" --json | sed -n 's/.*"job":"\([0-9A-Z]*\)".*/\1/p')
  kid=$(off_loop_child "$rp" "$b/r/artifacts/$c")
  kill -9 "$rp"; wait "$rp" 2>/dev/null
  check "resource killed: its tar was under way" [ -n "$kid" ]
  # what it left once its child died with it too (no file made after)
  for _ in $(seq 1 50); do [ -n "$kid" ] && [ -d "/proc/$kid" ] && ! grep -q '^State:.*Z' "/proc/$kid/status" 2>/dev/null || break; sleep 0.1; done
  check "... leaving temporary files" [ -n "$(find "$b/r/artifacts/$c" -name '.resource-*')" ]
  find "$b/r/artifacts/$c" -name '.resource-*' > "$tmp/res-left"
  "$bin/evrun-runner" --broker "ipc://$b/bus/runners" --id loop-1 --capacity 2 \
    --state-dir "$b/r" >> "$b/runner.log" 2>&1 &
  rp=$!
  check "... the job prepared again and run" [ "$(off_loop_status "$b" "$c")" = succeeded ]
  check "... what the killed runner left is gone" \
    sh -c "while read -r f; do [ ! -e \"\$f\" ] || exit 1; done < '$tmp/res-left'"
  check "... and nothing of the second try" [ -z "$(find "$b/r/artifacts/$c" -name '.resource-*')" ]
  check "... said in the log" grep -q "job $c: removed $(wc -l < "$tmp/res-left") temporary files a killed runner left" "$b/runner.log"
  kill "$rp" "$bp" "$httpd_pid"; wait "$rp" "$bp" "$httpd_pid" 2>/dev/null
  httpd_pid=
  rm -rf "$www"
  [ -n "${EVR_KEEP_TMP:-}" ] || [ -z "$shm_dir" ] || { rm -rf "$shm_dir"; shm_dir=; }
}

# off_loop_child PID DIR: the pid of PID's child making a tar in DIR (the
# job's artifacts directory, where its download and tar are), once there
# is one (30 s): a child holding a file in DIR open.  Not any child: the
# runner forks others off its loop too (a cache's size, a sweep, the
# cleanup of a job before), and one of those taken for the tar's had the
# job cancelled or the runner killed before its tar was under way
off_loop_child() {
  local k f
  for _ in $(seq 1 300); do
    for k in $(pgrep -P "$1"); do
      for f in /proc/"$k"/fd/*; do
        case $(readlink "$f" 2>/dev/null) in "$2"/*) echo "$k"; return ;; esac
      done
    done
    sleep 0.1
  done
}

# off_loop_status BROKER_DIR JOB: its final status (60 s)
off_loop_status() {
  local st
  for _ in $(seq 1 600); do
    st=$(EVRUN_STATE_DIR=$1 "$bin/evrun-cli" status "$2" --json 2>/dev/null | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p')
    case $st in succeeded|failed|cancelled|timed_out|lost) echo "$st"; return ;; esac
    sleep 0.1
  done
  echo timeout
}

cases=${*:-git_branch git_tag git_sha git_missing_ref git_missing_repo git_cache git_shallow git_daemon git_auth git_cancel ci_readonly untrusted artifact_paths copy copy_broker tarball tarball_secret utf8_names submodules submodule_urls large_off_loop}
# shellcheck disable=SC2086
run_cases $cases

#!/usr/bin/env bash
# test_limits.sh BIN_DIR SRC_DIR [CASE...]: what evrun-runner --exec lets in
# and out, against the real podman service of the "podman" fixture
# (EVRUN_PODMAN_URL): artifacts and resources bounded as they stream (peak
# memory and bytes written measured by limits_helper.py), nothing partial
# left, secrets (the allow-list, values an environment cannot carry) and
# resource URLs (redirects, local addresses).  HTTP only on 127.0.0.1.
set -u
bin=$1 src=$2
shift 2
export CONTAINERS_CONF=$src/tools/podman/containers.conf
: "${EVRUN_PODMAN_URL:=unix:///tmp/evr-it-podman/podman.sock}"
export EVRUN_PODMAN_URL
helper=$src/tests/integration/limits_helper.py
tmp=$(mktemp -d /tmp/evr-lim-XXXXXX)
pids=
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$tmp"' EXIT
fails=0 passes=0 case_name=
MIB=1048576

. "$(dirname "$0")/../support/check.sh"

# run NAME FILE [runner args...]: runs the pipeline, measured; sets $out $err
# $rc $job $state $rss (peak, KiB) $wrote (bytes written)
run() {
  local name=$1 file=$2; shift 2
  state=$tmp/$name
  out=$tmp/$name.out err=$tmp/$name.err
  /usr/bin/python3 "$helper" measure "$tmp/$name.measure" \
    "$bin/evrun-runner" --exec "$file" --state-dir "$state" "$@" > "$out" 2> "$err"
  rc=$?
  read -r rss wrote < "$tmp/$name.measure" || { rss=0 wrote=0; }
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
}

left_behind() {   # containers and volumes of $job still in podman
  local id
  [ -n "$job" ] || { echo 0; return; }   # no job, nothing made
  id=$(echo "$job" | tr 'A-Z' 'a-z')
  { podman ps -a --format '{{.Names}}'; podman volume ls --format '{{.Name}}'; } | grep -c "evrun-$id" || true
}

files_left() {   # regular files under the runner's artifacts directory
  find "$state/artifacts" -type f 2>/dev/null | wc -l
}

pipeline() {   # pipeline NAME: writes stdin to $tmp/NAME.yml
  cat > "$tmp/$1.yml"
}

# serve: an HTTP server on 127.0.0.1 for $tmp/www on $port, redirecting
# /other/X to $port2 (a second server of the same files)
serve() {
  local p
  for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done   # the last case's
  pids=
  mkdir -p "$tmp/www"
  port=$(free_port) port2=$(free_port)
  /usr/bin/python3 "$helper" serve "$port" "$tmp/www" "$port2" & pids="$pids $!"
  /usr/bin/python3 "$helper" serve "$port2" "$tmp/www" "$port" & pids="$pids $!"
  for p in "$port" "$port2"; do
    for _ in $(seq 1 50); do
      { exec 3<>"/dev/tcp/127.0.0.1/$p"; } 2>/dev/null && { exec 3>&-; break; }
      sleep 0.1
    done
  done
}

case_artifact_cap() {
  # 8 MiB of artifact against a limit of 1 MiB: the copy stops at the
  # limit (bytes written: the limit plus what the store and the output
  # take, the store's zeros written ahead of its pages included)
  pipeline artcap <<'YML'
pipeline: artifact-cap
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: |
      mkdir -p out
      echo small > out/a.txt
      dd if=/dev/zero of=out/big.bin bs=1048576 count=8 2>/dev/null
    artifacts: [out]
YML
  run artcap "$tmp/artcap.yml" --artifact-max-bytes $MIB
  check "exit 1" [ "$rc" -eq 1 ]
  check "the reason names the artifact, the limit and the setting" \
    grep -q "artifact out: larger than the limit of $MIB bytes.*artifact_max_bytes" "$out"
  echo "  artifact_cap: wrote $wrote bytes (limit $MIB), peak RSS $rss KiB"
  check "at most the limit + 2 MiB written ($wrote)" [ "$wrote" -le $((3 * MIB)) ]
  check "no file left, partial or whole" [ "$(files_left)" -eq 0 ]
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
  # the same under the limit: copied
  run artok "$tmp/artcap.yml" --artifact-max-bytes $((16 * MIB))
  check "under the limit: exit 0" [ "$rc" -eq 0 ]
  check "under the limit: copied" [ "$(stat -c %s "$state/artifacts/$job/make/out/big.bin")" -eq $((8 * MIB)) ]
}

case_artifact_links() {
  # symbolic links inside a directory: left out (never followed, never
  # made), named (a few, then "and N more"); the rest kept, the step fine;
  # a hard link is a copy of its file
  pipeline artlink <<'YML'
pipeline: artifact-links
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: |
      mkdir -p out/sub
      echo real > out/real.txt
      echo deep > out/sub/deep.txt
      ln -s real.txt out/rel
      ln -s /etc/passwd out/pw
      ln -s .. out/sub/up
      ln -s /nowhere out/sub/dangling
      ln out/real.txt out/hard
    artifacts: [out]
YML
  run artlink "$tmp/artlink.yml"
  local a=$state/artifacts/$job/make/out
  check "exit 0: links do not fail the step" [ "$rc" -eq 0 ]
  check "the step succeeded" grep -q "^make > succeeded" "$out"
  check "the files kept" [ "$(cat "$a/real.txt")/$(cat "$a/sub/deep.txt")" = real/deep ]
  check "the hard link a file of its own" [ "$(cat "$a/hard")" = real ]
  check "the hard link a file of its own [(stat -c %h a/hard) = 1]" [ "$(stat -c %h "$a/hard")" = 1 ]
  check "no link made" [ -z "$(find "$state/artifacts" -type l)" ]
  check "nothing followed (no passwd)" sh -c "! grep -rq root: '$state/artifacts'"
  check "3 files, no more" [ "$(files_left)" -eq 3 ]
  check "the step's output names a few, then how many more" \
    grep -Eq "^make \| evrun: artifact out: 4 symbolic links left out \(links are not followed, nor copied\): out/[a-z/]+, out/[a-z/]+, out/[a-z/]+ and 1 more$" "$out"
  check "nothing said as failed" sh -c "! grep -q 'links are not copied out\|failed' '$out'"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
  # one link: named, no "more"
  sed 's#ln -s .. out/sub/up##; s#ln -s /nowhere out/sub/dangling##; s#ln -s /etc/passwd out/pw##' \
    "$tmp/artlink.yml" > "$tmp/artlink1.yml"
  run artlink1 "$tmp/artlink1.yml"
  check "one link: exit 0" [ "$rc" -eq 0 ]
  check "one link: named" grep -q "^make | evrun: artifact out: 1 symbolic link left out (links are not followed, nor copied): out/rel$" "$out"
}

case_artifact_toplink() {
  # a path that is itself a link: refused, naming it (podman would copy
  # what it points to, under that name); nothing of it kept
  pipeline toplink <<'YML'
pipeline: artifact-toplink
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: mkdir -p out && echo x > out/x.txt && ln -s out latest && ln -s out/x.txt x-link
    artifacts: [latest, x-link, out]
YML
  run toplink "$tmp/toplink.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "the reason names each link path" \
    grep -q "^make > failed ([0-9.]*s): its command exited 0, but artifact latest: a symbolic link (to a path named \"out\"): links are not followed; name the file or directory it points to; artifact x-link: a symbolic link (to a path named \"x.txt\"): links are not followed; .*$" "$out"
  check "the real path kept" [ "$(cat "$state/artifacts/$job/make/out/x.txt")" = x ]
  check "nothing kept of the links" [ "$(files_left)" -eq 1 ]
}

case_artifact_many_missing() {
  # every failed path named: a few in the reason, then "and N more"; each
  # in the step's output
  pipeline many <<'YML'
pipeline: artifact-many
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: mkdir -p ok && echo x > ok/x
    artifacts: ["my out/test report.txt", out2, emptydir, ok, gone1, gone2]
YML
  run many "$tmp/many.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  local nf="no such file or directory"
  check "the reason: the first three in file order, then how many more" \
    grep -q "^make > failed ([0-9.]*s): its command exited 0, but artifact my out/test report.txt: $nf; artifact out2: $nf; artifact emptydir: $nf; and 2 more (the step's output names each)$" "$out"
  check "the job's reason the same" grep -q "^job $job failed in .*: step make failed: its command exited 0, but artifact my out/test report.txt: $nf; artifact out2: $nf; artifact emptydir: $nf; and 2 more" "$out"
  local p
  for p in "my out/test report.txt" out2 emptydir gone1 gone2; do
    check "the output names $p" grep -q "^make | evrun: artifact $p: $nf$" "$out"
  done
  check "the path that is there kept" [ "$(cat "$state/artifacts/$job/make/ok/x")" = x ]
  # two: both named, no "more"
  sed 's#\[.*\]#[out2, ok, gone1]#' "$tmp/many.yml" > "$tmp/two.yml"
  run two "$tmp/two.yml"
  check "two: both in the reason" grep -q "^make > failed ([0-9.]*s): its command exited 0, but artifact out2: $nf; artifact gone1: $nf$" "$out"
}

case_artifact_failed_command() {
  # the command's failure stays the step's reason; a missing artifact is
  # said in the step's output
  pipeline failcmd <<'YML'
pipeline: artifact-failcmd
image: localhost/evrun-busybox:latest
steps:
  - name: test
    run: mkdir -p reports && echo red > reports/r.txt && exit 1
    artifacts: {paths: [reports, coverage/index.html], when: on_failure}
YML
  run failcmd "$tmp/failcmd.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "the step: exit 1, no artifact as its reason" grep -q "^test > failed (exit 1, [0-9.]*s)$" "$out"
  check "the job's reason: the exit" grep -q "^job $job failed in .*: step test failed (exit 1)$" "$out"
  check "the missing path said in the step's output" \
    grep -q "^test | evrun: artifact coverage/index.html: no such file or directory$" "$out"
  check "the reports kept" [ "$(cat "$state/artifacts/$job/test/reports/r.txt")" = red ]
}

case_resource_bomb() {
  serve
  # 1.5 GiB of zeros in a 1.6 MB download; and 48 MiB, under the limit
  /usr/bin/python3 "$helper" gztar "$tmp/www/bomb.tar.gz" bomb.bin $((1536 * MIB))
  /usr/bin/python3 "$helper" gztar "$tmp/www/big.tar.gz" big.bin $((48 * MIB))
  pipeline bomb <<YML
pipeline: bomb
image: localhost/evrun-busybox:latest
resources:
  - { name: bomb, url: "http://127.0.0.1:$port/bomb.tar.gz", path: src }
steps:
  - name: never
    run: echo never
YML
  run bomb "$tmp/bomb.yml"
  echo "  resource_bomb: peak RSS $rss KiB, wrote $wrote bytes"
  check "exit 1" [ "$rc" -eq 1 ]
  check "the reason names the resource, the limit and the setting" \
    grep -q "resource bomb: .*over the limit of 1073741824 bytes.*resource_max_bytes" "$out"
  check "peak RSS under 64 MiB ($rss KiB)" [ "$rss" -lt 65536 ]
  check "at most 8 MiB written ($wrote)" [ "$wrote" -lt $((8 * MIB)) ]
  check "no temporary file left" [ "$(files_left)" -eq 0 ]
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
  sed 's/bomb.tar.gz/big.tar.gz/; s/name: bomb,/name: big,/; s/echo never/test $(wc -c < src\/big.bin) -eq 50331648/' \
    "$tmp/bomb.yml" > "$tmp/big.yml"
  run big "$tmp/big.yml"
  echo "  resource 48 MiB: peak RSS $rss KiB"
  check "48 MiB resource: exit 0" [ "$rc" -eq 0 ]
  check "48 MiB resource: streamed (peak RSS $rss KiB < 40 MiB)" [ "$rss" -lt 40960 ]
  check "48 MiB resource: no temporary file left" [ "$(files_left)" -eq 0 ]
  run bigcap "$tmp/big.yml" --resource-max-bytes $((32 * MIB))
  check "over --resource-max-bytes: exit 1" [ "$rc" -eq 1 ]
  check "over --resource-max-bytes: said" grep -q "resource big: .*over the limit of $((32 * MIB)) bytes" "$out"
}

case_secret_utf8() {
  # EVRUN_SECRET_* is allowed by default
  pipeline secutf8 <<'YML'
pipeline: secret-utf8
image: localhost/evrun-busybox:latest
secrets: [EVRUN_SECRET_BIN]
steps:
  - name: s
    run: 'echo "length ${#EVRUN_SECRET_BIN}"'
YML
  EVRUN_SECRET_BIN=$'ab\xff\xfecd' run secutf8 "$tmp/secutf8.yml"
  check "exit 2" [ "$rc" -eq 2 ]
  check "names the secret and the reason" grep -q "secret EVRUN_SECRET_BIN (from the runner's environment): not valid UTF-8" "$err"
  check "no step ran" sh -c "! grep -q 'length' '$out'"
  mkdir -p "$tmp/secrets"
  printf 'ab\0cd' > "$tmp/secrets/EVRUN_SECRET_BIN"
  run secnul "$tmp/secutf8.yml" --secrets-dir "$tmp/secrets"
  check "a NUL byte: exit 2" [ "$rc" -eq 2 ]
  check "a NUL byte: named" grep -q "secret EVRUN_SECRET_BIN (from $tmp/secrets/EVRUN_SECRET_BIN): holds a NUL byte" "$err"
  EVRUN_SECRET_BIN=välue run secok "$tmp/secutf8.yml"
  check "UTF-8 secret: exit 0" [ "$rc" -eq 0 ]
  check "UTF-8 secret: given (6 bytes)" grep -q "^s | length 6$" "$out"
}

case_secret_allow() {
  pipeline secallow <<'YML'
pipeline: secret-allow
image: localhost/evrun-busybox:latest
secrets: [HOME_TOKEN]
steps:
  - name: s
    run: 'echo "got ${#HOME_TOKEN}"'
YML
  HOME_TOKEN=x1 run secdeny "$tmp/secallow.yml"
  check "not allowed: exit 2" [ "$rc" -eq 2 ]
  check "not allowed: names the secret and the setting" \
    grep -q "secret HOME_TOKEN: not allowed: the runner's secrets_allow setting (\"EVRUN_SECRET_\*\")" "$err"
  check "not allowed: no step ran" sh -c "! grep -q '^s | got' '$out'"
  HOME_TOKEN=x1 run secname "$tmp/secallow.yml" --secrets-allow OTHER,HOME_TOKEN
  check "allowed by name: exit 0" [ "$rc" -eq 0 ]
  check "allowed by name: given" grep -q "^s | got 2$" "$out"
  HOME_TOKEN=x1 EVRUN_SECRETS_ALLOW='HOME_*' run secprefix "$tmp/secallow.yml"
  check "allowed by prefix (environment setting): exit 0" [ "$rc" -eq 0 ]
  mkdir -p "$tmp/sdir"
  echo abc > "$tmp/sdir/HOME_TOKEN"
  run secfile "$tmp/secallow.yml" --secrets-dir "$tmp/sdir"
  check "a file in --secrets-dir: exit 0" [ "$rc" -eq 0 ]
  check "a file in --secrets-dir: given" grep -q "^s | got 3$" "$out"
}

case_secret_file() {
  # a file of the limit and its newline is given; one byte more is refused,
  # never cut; a file that cannot be read says why
  pipeline secfile <<'YML'
pipeline: secret-file
image: localhost/evrun-busybox:latest
secrets: [FILE_TOKEN]
steps:
  - name: s
    run: 'echo "got ${#FILE_TOKEN}"'
YML
  mkdir -p "$tmp/fdir"
  { head -c 65536 /dev/zero | tr '\0' a; echo; } > "$tmp/fdir/FILE_TOKEN"
  run secmax "$tmp/secfile.yml" --secrets-dir "$tmp/fdir"
  check "64 KiB and a newline: exit 0" [ "$rc" -eq 0 ]
  check "64 KiB and a newline: given whole" grep -q "^s | got 65536$" "$out"
  echo b >> "$tmp/fdir/FILE_TOKEN"
  run secover "$tmp/secfile.yml" --secrets-dir "$tmp/fdir"
  check "64 KiB, a newline and more: exit 2" [ "$rc" -eq 2 ]
  check "64 KiB, a newline and more: too long" \
    grep -q "secret FILE_TOKEN (from $tmp/fdir/FILE_TOKEN): longer than 65536 bytes" "$err"
  rm "$tmp/fdir/FILE_TOKEN"
  ln -s FILE_TOKEN "$tmp/fdir/FILE_TOKEN"   # a loop: opening it fails, not with ENOENT
  run secloop "$tmp/secfile.yml" --secrets-dir "$tmp/fdir"
  check "unreadable: exit 2" [ "$rc" -eq 2 ]
  check "unreadable: the cause named" \
    grep -q "secret FILE_TOKEN: reading $tmp/fdir/FILE_TOKEN: Too many levels of symbolic links" "$err"
}

case_resource_error() {
  # an answer of 500 with a long body: the job fails with the status, the
  # transfer ended at once, not read to its end
  serve
  rm -f "$tmp/www/error-body.ended"
  pipeline reserr <<YML
pipeline: resource-error
image: localhost/evrun-busybox:latest
resources:
  - name: broken
    url: http://127.0.0.1:$port/error-body
    path: broken.bin
steps:
  - name: use
    run: 'echo should not run'
YML
  run reserr "$tmp/reserr.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "the status said" grep -q "resource broken: http://127.0.0.1:$port/error-body answered HTTP 500" "$out"
  check "no step ran" sh -c "! grep -q 'should not run' '$out'"
  for _ in $(seq 1 50); do [ -e "$tmp/www/error-body.ended" ] && break; sleep 0.1; done
  check "the transfer ended before the body was all sent" [ -e "$tmp/www/error-body.ended" ]
}

case_resource_redirect() {
  serve
  echo "plain resource" > "$tmp/www/notes.txt"
  pipeline redir <<YML
pipeline: redirect
image: localhost/evrun-busybox:latest
resources:
  - { name: notes, url: "http://127.0.0.1:$port/other/notes.txt", path: notes.txt }
steps:
  - name: use
    run: cat notes.txt
YML
  run redir "$tmp/redir.yml"
  check "to another port: exit 1" [ "$rc" -eq 1 ]
  check "to another port: the rule and the setting named" \
    grep -q "resource notes: .*redirect to \"http://127.0.0.1:$port2/notes.txt\" refused: only redirects to the same scheme, host and port (http://127.0.0.1:$port) are followed (the runner's resource_redirects setting)" "$out"
  check "to another port: nothing left in podman" [ "$(left_behind)" -eq 0 ]
  run redirany "$tmp/redir.yml" --resource-redirects any
  check "--resource-redirects any: followed" grep -q "^use | plain resource$" "$out"
  run redirnone "$tmp/redir.yml" --resource-redirects none
  check "--resource-redirects none: the 302 is the answer" grep -q "resource notes: .* answered HTTP 302" "$out"
  sed "s#/other/notes.txt#/same/notes.txt#" "$tmp/redir.yml" > "$tmp/same.yml"
  run same "$tmp/same.yml"
  check "to the same port: followed" grep -q "^use | plain resource$" "$out"
}

case_resource_local() {
  serve
  echo "plain resource" > "$tmp/www/notes.txt"
  pipeline local <<YML
pipeline: local
image: localhost/evrun-busybox:latest
resources:
  - { name: notes, url: "http://127.0.0.1:$port/notes.txt", path: notes.txt }
steps:
  - name: use
    run: cat notes.txt
YML
  run local "$tmp/local.yml" --resource-local deny
  check "denied: exit 1" [ "$rc" -eq 1 ]
  check "denied: the address, the rule and the setting named" \
    grep -q "resource notes: .*address 127.0.0.1 refused: it is loopback, and local addresses are denied (the runner's resource_local setting)" "$out"
  sed "s#127.0.0.1:$port#localhost:$port#" "$tmp/local.yml" > "$tmp/localname.yml"
  run localname "$tmp/localname.yml" --resource-local deny
  check "denied by name (localhost): exit 1" [ "$rc" -eq 1 ]
  check "denied by name: said" grep -q "resource notes: .*refused: it is loopback" "$out"
  run localok "$tmp/local.yml"
  check "allowed by default" grep -q "^use | plain resource$" "$out"
}

cases=${*:-artifact_cap artifact_links artifact_toplink artifact_many_missing artifact_failed_command resource_bomb secret_utf8 secret_allow secret_file resource_error resource_redirect resource_local}
# shellcheck disable=SC2086
run_cases $cases

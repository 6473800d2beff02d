#!/usr/bin/env bash
# test_resource_auth.sh BIN_DIR SRC_DIR [CASE...]: private downloads (README
# "Private downloads"): a resource's `secret` against auth_http.py, a
# server on 127.0.0.1 that answers 401 without the right Authorization,
# with evrun-runner --exec and the process executor (no podman).  Basic
# and bearer both fetch; a wrong secret fails the job naming the resource
# and the status; a missing one refuses the job before any step (--exec:
# exit 2, as a missing git.secret); the value is in
# no output, no replay and no step's environment; a redirect to another
# host (127.0.0.2, or localhost for 127.0.0.1) goes without the
# credentials, one to the same origin keeps them, and a 401 from that other
# origin says the credentials were not sent there.
set -u
bin=$1 src=$2
shift 2
tmp=$(mktemp -d /tmp/evr-ra-XXXXXX)
httpd_pid=
trap '[ -n "$httpd_pid" ] && kill "$httpd_pid" 2>/dev/null; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$tmp"' EXIT
fails=0 passes=0 case_name=

. "$(dirname "$0")/../support/check.sh"

PASSWORD=pa55-w0rd-7q
TOKEN=tok-9f3e2d1c0b
mkdir -p "$tmp/secrets"
printf 'builder:%s\n' "$PASSWORD" > "$tmp/secrets/BASIC_AUTH"
printf '%s\n' "$TOKEN" > "$tmp/secrets/TOKEN_AUTH"
printf 'builder:wr0ng-pass\n' > "$tmp/secrets/WRONG_AUTH"
log=$tmp/http.log

# auth_server: auth_http.py on a free port (both 127.0.0.1 and 127.0.0.2);
# sets port and httpd_pid
auth_server() {
  local try
  for try in 1 2 3; do
    port=$(free_port) || return 1
    python3 "$src/tests/integration/auth_http.py" "$port" "$log" "builder:$PASSWORD" "$TOKEN" &
    httpd_pid=$!
    wait_port "$port" "$httpd_pid" 2> /dev/null && return 0
    kill "$httpd_pid" 2> /dev/null; wait "$httpd_pid" 2> /dev/null
  done
  echo "auth_server: did not start (3 ports tried)" >&2
  return 1
}

# run NAME [runner args...]: runs $tmp/NAME.yml with the secrets directory;
# sets $out $err $rc $job $state, and $tmp/NAME.job (evrun-replay's view)
run() {
  local name=$1; shift
  state=$tmp/$name
  out=$tmp/$name.out err=$tmp/$name.err
  "$bin/evrun-runner" --exec "$tmp/$name.yml" --state-dir "$state" --executors process \
    --secrets-dir "$tmp/secrets" "$@" > "$out" 2> "$err"
  rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/$name.job" 2>&1
  "$bin/evrun-replay" "$state" >> "$tmp/$name.job" 2>&1
}

# no_value NAME: none of the secrets' values (the passwords, the token, the
# whole USER:PASSWORD) in the run's output, its errors or its replay
no_value() {
  ! grep -rqF -e "$PASSWORD" -e "$TOKEN" -e "wr0ng-pass" \
    "$tmp/$1.out" "$tmp/$1.err" "$tmp/$1.job"
}

case_basic_bearer() {   # both forms fetch; a step sees the files, never the values
  cat > "$tmp/ok.yml" <<EOF
pipeline: ok
executor: process
resources:
  - { name: b, url: "http://127.0.0.1:$port/basic/one.txt", path: one.txt, secret: BASIC_AUTH }
  - { name: t, url: "http://127.0.0.1:$port/bearer/two.txt", path: two.txt, secret: TOKEN_AUTH }
steps:
  - name: show
    run: cat one.txt two.txt; env > "$tmp/ok.env"; cat "$tmp/secrets/BASIC_AUTH" "$tmp/secrets/TOKEN_AUTH"
EOF
  run ok
  check "exit 0" [ "$rc" -eq 0 ]
  check "the basic file came" grep -qx "show | file one.txt" "$out"
  check "the bearer file came" grep -qx "show | file two.txt" "$out"
  check "basic sent as Basic" grep -qx "127.0.0.1 /basic/one.txt Basic" "$log"
  check "the token as Bearer" grep -qx "127.0.0.1 /bearer/two.txt Bearer" "$log"
  check "a printed credential masked whole" grep -qx "show | \*\*\*" "$out"
  check "no value in output, errors or replay" no_value ok
  check "no secret in the step's environment" not grep -qF -e "$PASSWORD" -e "$TOKEN" "$tmp/ok.env"
  check "nor its name" not grep -q -e "^BASIC_AUTH=" -e "^TOKEN_AUTH=" "$tmp/ok.env"
}

case_wrong() {   # a wrong secret: the job fails naming the resource and the status
  cat > "$tmp/wrong.yml" <<EOF
pipeline: wrong
executor: process
resources:
  - { name: conf, url: "http://127.0.0.1:$port/basic/conf.txt", path: conf.txt, secret: WRONG_AUTH }
steps:
  - { name: a, run: echo should not run }
EOF
  run wrong
  check "exit 1" [ "$rc" -eq 1 ]
  check "the reason names the resource, the status and the secret" grep -q \
    "^reason: resource conf: http://127.0.0.1:$port/basic/conf.txt answered HTTP 401 (the credentials of secret WRONG_AUTH were sent)" \
    "$tmp/wrong.job"
  check "the step did not run" not grep -q "should not run" "$out"
  check "no value anywhere" no_value wrong
  cat > "$tmp/none.yml" <<EOF
pipeline: none
executor: process
resources:
  - { name: conf, url: "http://127.0.0.1:$port/basic/conf.txt", path: conf.txt }
steps:
  - { name: a, run: echo should not run }
EOF
  run none
  check "no secret: exit 1" [ "$rc" -eq 1 ]
  check "... HTTP 401 and a hint" grep -q \
    "^reason: resource conf: .* answered HTTP 401 (a private server: name a secret holding USER:PASSWORD or a token in its secret)" \
    "$tmp/none.job"
}

case_missing() {   # a secret not set fails the job before any step, as git's
  cat > "$tmp/missing.yml" <<EOF
pipeline: missing
executor: process
resources:
  - { name: conf, url: "http://127.0.0.1:$port/basic/conf.txt", path: conf.txt, secret: NOPE_AUTH }
steps:
  - { name: a, run: echo should not run }
EOF
  touch "$log"; cp "$log" "$log.before"
  run missing
  check "refused before the job: exit 2" [ "$rc" -eq 2 ]
  check "the error names the secret and where it was looked for" grep -q \
    "^evrun-runner: secret NOPE_AUTH: not allowed: the runner's secrets_allow setting (\"EVRUN_SECRET_\*\") does not name it, and $tmp/secrets has no file of that name" \
    "$err"
  check "the step did not run" not grep -q "should not run" "$out"
  check "nothing was fetched" cmp -s "$log" "$log.before"
}

case_hooks() {   # with hooks (checks after PRE_VALIDATION): a hook's message masked, a missing secret a failed job
  cat > "$tmp/hk.set" <<EOF
hooks:
  - { phase: PRE_VALIDATION, name: leak, run: "cat $tmp/secrets/BASIC_AUTH >&2; exit 1" }
EOF
  cat > "$tmp/hk.yml" <<EOF
pipeline: hk
executor: process
resources:
  - { name: conf, url: "http://127.0.0.1:$port/basic/conf.txt", path: conf.txt, secret: BASIC_AUTH }
steps:
  - { name: a, run: echo should not run }
EOF
  run hk --config "$tmp/hk.set"
  check "exit 1" [ "$rc" -eq 1 ]
  check "the hook's message masked" grep -qx "reason: hook leak (PRE_VALIDATION): \*\*\*" "$tmp/hk.job"
  check "no value anywhere" no_value hk
  cat > "$tmp/hkm.set" <<EOF
hooks:
  - { phase: PRE_VALIDATION, name: prev, run: "true" }
EOF
  sed 's/BASIC_AUTH/NOPE_AUTH/; s/pipeline: hk/pipeline: hkm/' "$tmp/hk.yml" > "$tmp/hkm.yml"
  run hkm --config "$tmp/hkm.set"
  check "a missing secret: the job fails (exit 1)" [ "$rc" -eq 1 ]
  check "... its reason the secret's, as git's" grep -q \
    "^reason: secret NOPE_AUTH: not allowed: the runner's secrets_allow setting" "$tmp/hkm.job"
  check "... before any step" not grep -q "should not run" "$out"
}

case_redirect() {   # credentials go to the URL's own origin only
  : > "$log"
  cat > "$tmp/away.yml" <<EOF
pipeline: away
executor: process
resources:
  - { name: b, url: "http://127.0.0.1:$port/away/b.txt", path: b.txt, secret: BASIC_AUTH }
  - { name: t, url: "http://127.0.0.1:$port/away/t.txt", path: t.txt, secret: TOKEN_AUTH }
  - { name: h, url: "http://127.0.0.1:$port/here/basic/h.txt", path: h.txt, secret: BASIC_AUTH }
  - { name: l, url: "http://127.0.0.1:$port/local/open/l.txt", path: l.txt, secret: TOKEN_AUTH }
steps:
  - { name: show, run: cat b.txt t.txt h.txt l.txt }
EOF
  run away --resource-redirects any
  check "exit 0" [ "$rc" -eq 0 ]
  check "the first hop had basic" grep -qx "127.0.0.1 /away/b.txt Basic" "$log"
  check "the other host got no basic" grep -qx "127.0.0.2 /b.txt -" "$log"
  check "the first hop had the bearer" grep -qx "127.0.0.1 /away/t.txt Bearer" "$log"
  check "the other host got no bearer" grep -qx "127.0.0.2 /t.txt -" "$log"
  check "the other host's files came" grep -qx "show | open /b.txt" "$out"
  check "a same-origin redirect keeps them" grep -qx "127.0.0.1 /basic/h.txt Basic" "$log"
  check "... its file came" grep -qx "show | file h.txt" "$out"
  check "another host name of the same address (localhost) got none" \
    grep -qx "127.0.0.1 /open/l.txt -" "$log"
  check "no credentials reached 127.0.0.2" not grep -Eq "^127.0.0.2 .* (Basic|Bearer)$" "$log"
  check "no value anywhere" no_value away
  # a 401 from the origin a redirect led to, which got no credentials: the
  # reason does not say they were sent (they were not, there)
  cat > "$tmp/moved.yml" <<EOF
pipeline: moved
executor: process
resources:
  - { name: m, url: "http://127.0.0.1:$port/local/basic/m.txt", path: m.txt, secret: BASIC_AUTH }
steps:
  - { name: a, run: echo should not run }
EOF
  : > "$log"
  run moved --resource-redirects any
  check "a 401 after a redirect elsewhere: exit 1" [ "$rc" -eq 1 ]
  check "... the other origin got none" grep -qx "127.0.0.1 /basic/m.txt -" "$log"
  check "... its reason names the origin that answered, which got none" grep -qF \
    "reason: resource m: http://127.0.0.1:$port/local/basic/m.txt answered HTTP 401 (from http://localhost:$port/basic/m.txt, a redirect to another scheme, host or port: the credentials of secret BASIC_AUTH were not sent there)" \
    "$tmp/moved.job"
  check "... not that they were sent" not grep -q "were sent)" "$tmp/moved.job"
  check "... no value anywhere" no_value moved
  cat > "$tmp/same.yml" <<EOF
pipeline: same
executor: process
resources:
  - { name: b, url: "http://127.0.0.1:$port/away/b.txt", path: b.txt, secret: BASIC_AUTH }
steps:
  - { name: show, run: cat b.txt }
EOF
  : > "$log"
  run same
  check "the default (same): refused" [ "$rc" -eq 1 ]
  check "... naming the setting" grep -q "^reason: resource b: .*redirect to .* refused.*(the runner's resource_redirects setting)" "$tmp/same.job"
  check "... 127.0.0.2 not asked" not grep -q "^127.0.0.2" "$log"
}

auth_server || { echo "FAILED: the server did not start" >&2; exit 1; }
cases=${*:-basic_bearer wrong missing hooks redirect}
# shellcheck disable=SC2086
run_cases $cases

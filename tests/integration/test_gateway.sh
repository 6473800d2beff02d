#!/usr/bin/env bash
# test_gateway.sh BIN_DIR SRC_DIR [CASE...]: evrun-gateway end to end: a
# real broker and runner (bus_lib.sh, real podman from the "podman"
# fixture) and a real gateway on a free loopback port, used with curl as
# a client of the HTTP API would: submit (YAML, JSON, idempotent), list
# with a cursor, one job, cancel, tokens (401, 403), the log as text and
# as Server-Sent Events with a Last-Event-ID reconnect, 404, 413, 503,
# HTTPS, and a client that stops reading; bad input (bodies over the limit
# or lying about their length, slowloris, bad JSON, YAML and UTF-8, path
# tricks, unknown methods, many headers, bad tokens: http_raw.py sends
# what curl will not), a stalled live log dropped and resumed.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
. "$src/tests/integration/gw_lib.sh"
bus_script_init gw --podman

hello_yaml() { cat "$src/examples/hello.yml"; }

case_submit_and_read() {
  fresh api
  bus_broker && bus_runner gw-1 "" 2 && bus_wait_runners 1 && gateway
  check "submit YAML: 201" [ "$(api POST '/jobs?arg=WHO=http' -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml")" = 201 ]
  local id
  id=$(jget 'd["id"]')
  check "submit YAML: the pipeline's name" [ "$(jget 'd["pipeline"]')" = hello ]
  check "the job succeeds" [ "$(api_wait "$id")" = succeeded ]
  check "GET job: 200" [ "$(api GET "/jobs/$id")" = 200 ]
  check "GET job: its step, status and exit code" \
    [ "$(jget '"%s %s %s" % (d["steps"][0]["name"], d["steps"][0]["status"], d["steps"][0]["exit_code"])')" = "greet succeeded 0" ]
  check "GET job: step times" [ "$(jget '"started" in d["steps"][0] and "finished" in d["steps"][0]')" = True ]
  check "GET job in lower case" [ "$(api GET "/jobs/$(echo "$id" | tr A-Z a-z)")" = 200 ]
  check "log as text" [ "$(api GET "/jobs/$id/log")" = 200 ]
  check "log as text: the line" grep -qx "greet | hello, http" "$tmp/body"
  check "log ?step= of no step of the job: 404" [ "$(api GET "/jobs/$id/log?step=nope")" = 404 ]
  check "... naming its steps" grep -q 'has no step \\"nope\\" (names are case-sensitive); its steps: greet' "$tmp/body"
  # JSON
  check "submit JSON: 201" [ "$(api POST /jobs -H 'Content-Type: application/json' \
    -d '{"pipeline":"js","image":"localhost/evrun-busybox:latest","steps":[{"name":"a","run":"echo from json"}]}')" = 201 ]
  local jid
  jid=$(jget 'd["id"]')
  check "JSON job succeeds" [ "$(api_wait "$jid")" = succeeded ]
  api GET "/jobs/$jid/log" > /dev/null
  check "JSON job's output" grep -qx "a | from json" "$tmp/body"
  # the text log as evrun-cli logs prints it: a job that failed ends with why
  api POST /jobs -H 'Content-Type: application/json' \
    -d '{"pipeline":"jf","image":"localhost/evrun-busybox:latest","steps":[{"name":"a","run":"exit 3"}]}' > /dev/null
  jid=$(jget 'd["id"]')
  check "a failing job fails" [ "$(api_wait "$jid")" = failed ]
  api GET "/jobs/$jid/log" > /dev/null
  check "its text log ends as evrun-cli logs does" [ "$(tail -n 1 "$tmp/body")" = "$(cli logs "$jid" | tail -n 1)" ]
  check "its text log ends as evrun-cli logs does [^job jid failed body]" grep -q "^job $jid failed" "$tmp/body"
  # a step that never started (an image podman does not have) has no exit_code
  api POST /jobs -H 'Content-Type: application/json' \
    -d '{"pipeline":"jn","image":"localhost/evrun-does-not-exist:latest","pull":"never","steps":[{"name":"a","run":"true"}]}' > /dev/null
  jid=$(jget 'd["id"]')
  check "a step that never started: the job fails" [ "$(api_wait "$jid")" = failed ]
  api GET "/jobs/$jid" > /dev/null
  check "... no exit_code, its reason" [ "$(jget '"%s %s %s" % (d["steps"][0]["status"], "exit_code" in d["steps"][0], d["steps"][0]["reason"][:5])')" = "failed False image" ]
  check "... the job's reason: no exit code" [ "$(jget 'd["reason"][:15]')" = "step a failed: " ]
  # a job's steps say what they need (the web UI draws the graph from it)
  api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"dg","image":"localhost/evrun-busybox:latest","steps":[{"name":"a","run":"true"},{"name":"b","needs":["a"],"run":"true"},{"name":"c","when":"always","run":"true"}]}' > /dev/null
  jid=$(jget 'd["id"]')
  api_wait "$jid" > /dev/null
  check "GET job: needs and when of each step" [ "$(jget '[(s["name"], s.get("needs"), s.get("when")) for s in d["steps"]]')" = "[('a', None, None), ('b', ['a'], None), ('c', None, 'always')]" ]
  # a git source whose fetch failed: the source asked for, no sha
  local gp
  gp=$(free_port)
  api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"gf","image":"localhost/evrun-busybox:latest","source":{"git":{"url":"http://127.0.0.1:'"$gp"'/none.git","ref":"main"}},"steps":[{"name":"a","run":"true"}]}' > /dev/null
  jid=$(jget 'd["id"]')
  check "a git fetch that fails: the job fails" [ "$(api_wait "$jid")" = failed ]
  api GET "/jobs/$jid" > /dev/null
  check "... its source as asked, without a sha" [ "$(jget 'json.dumps(d["source"], sort_keys=True)')" = '{"kind": "git", "ref": "main", "url": "http://127.0.0.1:'"$gp"'/none.git"}' ]
  # bad pipelines: 400 with body:line:col
  check "bad YAML: 400" [ "$(api POST /jobs -H 'Content-Type: application/yaml' \
    --data-binary $'pipeline: bad\nimage: localhost/evrun-busybox:latest\nsteps:\n  - name: a\n    rn: x\n')" = 400 ]
  check "bad YAML: where, the first in file order" grep -q '"message":"body:4:5: steps\[0\].run: missing' "$tmp/body"
  check "... and the rest in details" grep -q '"body:5:5: steps\[0\].rn: unknown key' "$tmp/body"
  check "bad JSON: 400" [ "$(api POST /jobs -H 'Content-Type: application/json' -d '{"steps": [')" = 400 ]
  check "bad UTF-8: 400" [ "$(printf '{"pipeline":"\xff"}' | api POST /jobs -H 'Content-Type: application/json' --data-binary @-)" = 400 ]
  check "unknown arg: 400" [ "$(api POST '/jobs?arg=NOPE=1' -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml")" = 400 ]
  check "runners: 200" [ "$(api GET /runners)" = 200 ]
  check "runners: the runner" [ "$(jget 'd["runners"][0]["id"]')" = gw-1 ]
  # 404
  check "unknown job: 404" [ "$(api GET /jobs/01ARYZ6S41TSV4RRFFQ69G5FAV)" = 404 ]
  check "unknown job's log: 404" [ "$(api GET /jobs/01ARYZ6S41TSV4RRFFQ69G5FAV/log)" = 404 ]
  check "no job id: 404" [ "$(api GET /jobs/nope)" = 404 ]
  check "unknown route: 404" [ "$(api GET /nope)" = 404 ]
  check "404 is JSON" [ "$(jget 'd["error"]["code"]')" = not_found ]
  # 413: one byte over the bus's message limit
  head -c 4194305 /dev/zero | tr '\0' '#' > "$tmp/big"
  check "over the limit: 413" [ "$(api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$tmp/big")" = 413 ]
  check "413 says too_large" [ "$(jget 'd["error"]["code"]')" = too_large ]
  check "still serving after 413" [ "$(api GET /runners)" = 200 ]
}

case_idempotency_and_list() {
  fresh list
  bus_broker && bus_runner gw-1 "" 2 && bus_wait_runners 1 && gateway
  local a b c
  api POST /jobs -H 'Idempotency-Key: k-1' -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml" > /dev/null
  a=$(jget 'd["id"]')
  check "same key: 200 (nothing new)" [ "$(api POST /jobs -H 'Idempotency-Key: k-1' -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml")" = 200 ]
  b=$(jget 'd["id"]')
  check "same key: the same job" [ "$a" = "$b" ]
  check "same key: existing" [ "$(jget 'd["existing"]')" = True ]
  api POST /jobs -H 'Idempotency-Key: k-2' -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml" > /dev/null
  c=$(jget 'd["id"]')
  check "another key: another job" [ -n "$c" ]
  check "another key: another job [c != a]" [ "$c" != "$a" ]
  check "a key of 256 characters: 400" [ "$(api POST /jobs -H "Idempotency-Key: $(printf 'k%.0s' $(seq 1 256))" -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml")" = 400 ]
  # a second gateway on the same state directory knows the key
  local first_url=$url
  gateway
  api POST /jobs -H 'Idempotency-Key: k-1' -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml" > /dev/null
  check "same key through another gateway: the same job" [ "$(jget 'd["id"]')" = "$a" ]
  url=$first_url
  for _ in 1 2 3; do
    api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml" > /dev/null
  done
  # 5 jobs; pages of 2: 2, 2, 1 and no cursor on the last
  local cursor="" pages=0 all=""
  while :; do
    api GET "/jobs?limit=2${cursor:+&cursor=$cursor}" > /dev/null
    all="$all $(jget '" ".join(j["id"] for j in d["jobs"])')"
    pages=$((pages + 1))
    cursor=$(jget 'd.get("next_cursor", "")')
    [ -z "$cursor" ] || [ "$pages" -gt 5 ] && break
  done
  check "list: 3 pages of 2" [ "$pages" = 3 ]
  check "list: each job once" [ "$(echo $all | tr ' ' '\n' | sort -u | wc -l)" = 5 ]
  check "list: 5 in all" [ "$(echo $all | wc -w)" = 5 ]
  check "list: newest first" [ "$(echo $all | tr ' ' '\n' | sort -r | tr '\n' ' ')" = "$(echo $all | tr ' ' '\n' | tr '\n' ' ')" ]
  check "list: pipeline filter" [ "$(api GET '/jobs?pipeline=nope')" = 200 ]
  check "list: pipeline filter [(jget len(d[jobs])) = 0]" [ "$(jget 'len(d["jobs"])')" = 0 ]
  check "list: bad limit: 400" [ "$(api GET '/jobs?limit=0')" = 400 ]
  check "list: bad cursor: 400" [ "$(api GET '/jobs?cursor=zz')" = 400 ]
  check "list: bad status: 400" [ "$(api GET '/jobs?status=dancing')" = 400 ]
  check "job a succeeds" [ "$(api_wait "$a")" = succeeded ]
  check "list: status filter" [ "$(api GET '/jobs?status=succeeded&limit=100')" = 200 ]
  check "list: status filter (the job listed)" grep -q "$a" "$tmp/body"
  # commands on an ended job: 409
  check "cancel an ended job: 409" [ "$(api POST "/jobs/$a/cancel")" = 409 ]
  check "409 says conflict" [ "$(jget 'd["error"]["code"]')" = conflict ]
  check "pause an ended job: 409" [ "$(api POST "/jobs/$a/pause")" = 409 ]
  check "resume an ended job: 409" [ "$(api POST "/jobs/$a/resume")" = 409 ]
  check "cancel an unknown job: 404" [ "$(api POST /jobs/01ARYZ6S41TSV4RRFFQ69G5FAV/cancel)" = 404 ]
  # cancel a running job
  ticks long 300 0.1
  api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$tmp/long.yml" > /dev/null
  local l
  l=$(jget 'd["id"]')
  for _ in $(seq 1 100); do api GET "/jobs/$l" > /dev/null; [ "$(jget 'd["status"]')" = running ] && break; sleep 0.1; done
  check "cancel a running job: 200" [ "$(api POST "/jobs/$l/cancel" -H 'Content-Type: application/json' -d '{"reason":"from http"}')" = 200 ]
  check "it ends cancelled" [ "$(api_wait "$l")" = cancelled ]
}

case_tokens() {
  fresh tokens
  bus_broker && gateway
  check "no token: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/runners")" = 401 ]
  check "401 is JSON" [ "$(jget 'd["error"]["code"]')" = unauthorized ]
  check "malformed: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Authorization: Bearer abc' "$url/runners")" = 401 ]
  check "not Bearer: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Basic $W" "$url/runners")" = 401 ]
  # alg none: the token's claims, no signature
  local none
  none=$(printf '{"alg":"none","typ":"JWT"}' | base64 -w0 | tr '+/' '-_' | tr -d '=').$(echo "$W" | cut -d. -f2).
  check "alg none: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $none" "$url/runners")" = 401 ]
  # signed with another secret
  local other
  mkdir -p "$tmp/other"
  other=$(cli token --state-dir "$tmp/other")
  check "another secret: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $other" "$url/runners")" = 401 ]
  check "another secret: says so" grep -q signature "$tmp/body"
  local short
  short=$(cli token --ttl 1s)
  sleep 2
  check "expired: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $short" "$url/runners")" = 401 ]
  check "expired: says so" grep -q expired "$tmp/body"
  check "bad --ttl: exit 2" bash -c "! '$bin/evrun-cli' token --ttl 5y 2>/dev/null"
  check "token alone on stdout" [ "$(cli token | wc -l)" = 1 ]
  check "the secret is 0600" [ "$(stat -c %a "$tmp/gateway/jwt.secret")" = 600 ]
  # read scope
  check "read token: GET 200" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $R" "$url/runners")" = 200 ]
  check "read token: submit 403" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $R" -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml" "$url/jobs")" = 403 ]
  check "403 is JSON" [ "$(jget 'd["error"]["code"]')" = forbidden ]
  check "read token: cancel 403" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $R" "$url/jobs/01ARYZ6S41TSV4RRFFQ69G5FAV/cancel")" = 403 ]
  check "read token: pause 403" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $R" "$url/jobs/01ARYZ6S41TSV4RRFFQ69G5FAV/pause")" = 403 ]
  # the broker gone: 503, within timeout_ms
  bus_stop
  gateway --timeout-ms 1000
  local t0=$SECONDS
  check "broker gone: 503" [ "$(api GET /runners)" = 503 ]
  check "503 says unavailable" [ "$(jget 'd["error"]["code"]')" = unavailable ]
  check "503 within a few seconds" [ $((SECONDS - t0)) -lt 5 ]
}

# tls_cert and tls_key: HTTPS, and no plain HTTP on that port
case_tls() {
  fresh tls
  bus_broker && bus_runner gw-1 "" 1 && bus_wait_runners 1
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    -days 1 -subj /CN=127.0.0.1 > /dev/null 2>&1
  check "a certificate made" [ -s "$tmp/cert.pem" ]
  gateway --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
  check "https URL" [ "${url%%:*}" = https ]
  check "over TLS: 200" [ "$(curl -s --cacert "$tmp/cert.pem" -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $R" "$url/runners")" = 200 ]
  check "plain HTTP: no answer" [ "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http${url#https}/runners")" = 000 ]
  check "a key without its certificate: refused" bash -c "! '$bin/evrun-gateway' --state-dir '$tmp' --listen 127.0.0.1:0 --tls-key '$tmp/key.pem' 2>/dev/null"
}

case_sse() {
  fresh sse
  bus_broker && bus_runner gw-1 "" 2 && bus_wait_runners 1 && gateway
  ticks sse 40 0.1
  api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$tmp/sse.yml" > /dev/null
  local id last
  id=$(jget 'd["id"]')
  # a first connection cut after about 2 s, then a reconnect from its last id
  curl -s -N --max-time 2 -H "Authorization: Bearer $R" -H 'Accept: text/event-stream' \
    "$url/jobs/$id/log" > "$tmp/sse1"
  sse_events "$tmp/sse1" > "$tmp/ev1"
  last=$(tail -1 "$tmp/ev1" | cut -d' ' -f1)
  check "first connection: some events" [ -n "$last" ]
  check "first connection: not the end yet" bash -c "! grep -q job.finished '$tmp/ev1'"
  curl -s -N --max-time 60 -H "Authorization: Bearer $R" -H 'Accept: text/event-stream' \
    -H "Last-Event-ID: $last" "$url/jobs/$id/log" > "$tmp/sse2"
  check "second connection: ends by itself after the job's end" [ $? -eq 0 ]
  sse_events "$tmp/sse2" > "$tmp/ev2"
  check "second connection: the last event is job.finished" [ "$(tail -1 "$tmp/ev2" | cut -d' ' -f2)" = job.finished ]
  cat "$tmp/ev1" "$tmp/ev2" > "$tmp/ev"
  local n
  n=$(tail -1 "$tmp/ev" | cut -d' ' -f1)
  check "ids 1..$n, each once, in order" [ "$(cut -d' ' -f1 "$tmp/ev" | tr '\n' ' ')" = "$(seq 1 "$n" | tr '\n' ' ')" ]
  python3 -c 'import json,sys; print("".join(json.loads(l.split(" ",2)[2]) for l in open(sys.argv[1])), end="")' "$tmp/ev" > "$tmp/out"
  check "every line once, in order" exactly_once "$tmp/out" 40 ""
  # after the end: the whole stream, then the end
  curl -s -N --max-time 30 -H "Authorization: Bearer $R" -H 'Accept: text/event-stream' \
    "$url/jobs/$id/log" > "$tmp/sse3"
  sse_events "$tmp/sse3" > "$tmp/ev3"
  check "after the end: the same events" cmp -s <(cut -d' ' -f1,2 "$tmp/ev") <(cut -d' ' -f1,2 "$tmp/ev3")
  check "Last-Event-ID at the end: an empty stream that ends" \
    [ "$(curl -s -N --max-time 30 -H "Authorization: Bearer $R" -H 'Accept: text/event-stream' -H "Last-Event-ID: $n" "$url/jobs/$id/log" | grep -c '^id:')" = 0 ]
  check "bad Last-Event-ID: 400" [ "$(api GET "/jobs/$id/log" -H 'Accept: text/event-stream' -H 'Last-Event-ID: x')" = 400 ]
}

# A client that stops reading a busy stream: the gateway's memory stays
# bounded and it keeps serving others.
case_slow_client() {
  fresh slow
  bus_broker && bus_runner gw-1 "" 2 && bus_wait_runners 1 && gateway
  pipeline chatty <<'YML'
pipeline: chatty
image: localhost/evrun-busybox:latest
steps:
  - name: talk
    run: i=0; while [ $i -lt 3000 ]; do head -c 4000 /dev/zero | tr '\0' 'x'; echo " $i"; i=$((i+1)); done
YML
  api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$tmp/chatty.yml" > /dev/null
  local id gw_pid=${bus_pids[-1]} rss0 rss1
  id=$(jget 'd["id"]')
  check "the busy job ends" [ "$(api_wait "$id")" = succeeded ]
  rss0=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")
  # six clients that ask for the whole stream (12 MB in 8 MiB history
  # pages) and never read: a gateway that made a page ahead for each
  # would hold some 50 MB more.  (The broker connection's receive queue
  # holds one page at a time, some 8 MB, whoever asks.)
  local slow=() k
  for k in 1 2 3 4 5 6; do
    python3 - "$url" "$id" "$R" <<'PY' &
import socket, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname, u.port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(("GET %s/jobs/%s/log HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
           "Authorization: Bearer %s\r\n\r\n" % (u.path, sys.argv[2], sys.argv[3])).encode())
time.sleep(20)
PY
    slow+=("$!")
  done
  sleep 4
  check "others still served" [ "$(api GET /runners)" = 200 ]
  rss1=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")
  echo "  gateway RSS $rss0 -> $rss1 KiB with 6 clients of a 12 MB stream that do not read"
  # (AddressSanitizer's shadow memory and thread caches make the resident
  # size of that build no measure: there the figure is printed only)
  grep -q __asan_init "$bin/evrun-gateway" ||
    check "memory bounded ($rss0 -> $rss1 KiB)" [ $((rss1 - rss0)) -lt 24576 ]
  kill "${slow[@]}" 2>/dev/null
  wait "${slow[@]}" 2>/dev/null
}

case_pipelines_and_artifacts() {
  fresh reg
  mkdir -m 0700 "$tmp/pipelines"
  cat > "$tmp/pipelines/art.yml" <<'YML'
pipeline: art
image: localhost/evrun-busybox:latest
args:
  WHO: {default: world, description: who to greet}
  MODE: {}
steps:
  - name: make
    run: mkdir -p out/sub && echo "hello, $WHO" > out/a.txt && seq 1 300000 > out/sub/big.txt
    artifacts: [out]
YML
  bus_broker && bus_runner gw-1 "" 2 && bus_wait_runners 1 && gateway
  check "pipelines: 200" [ "$(api GET /pipelines)" = 200 ]
  check "pipelines: name, file, concurrency, waiting, running" \
    [ "$(jget '"%s %s %s %s %s" % tuple(d["pipelines"][0][k] for k in ("name", "file", "concurrency", "waiting", "running"))')" = "art art.yml 0 0 0" ]
  check "pipelines: its args in order, required or with the default" \
    [ "$(jget 'json.dumps(d["pipelines"][0]["args"], sort_keys=True)')" = '[{"default": "world", "description": "who to greet", "name": "WHO", "required": false}, {"name": "MODE", "required": true}]' ]
  check "start by name: 201" [ "$(api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"art","args":{"WHO":"http","MODE":"m"}}')" = 201 ]
  local id
  id=$(jget 'd["id"]')
  check "start by name: the pipeline" [ "$(jget 'd["pipeline"]')" = art ]
  check "start by name: no note when the file loaded" [ "$(jget '"note" in d')" = False ]
  check "start by name: the job succeeds" [ "$(api_wait "$id")" = succeeded ]
  check "start by name: idempotent" [ "$(api POST /jobs -H 'Idempotency-Key: s-1' -H 'Content-Type: application/json' -d '{"pipeline":"art","args":{"MODE":"m"}}')" = 201 ]
  local s1
  s1=$(jget 'd["id"]')
  api POST /jobs -H 'Idempotency-Key: s-1' -H 'Content-Type: application/json' -d '{"pipeline":"art","args":{"MODE":"m"}}' > /dev/null
  check "start by name: the same key, the same job" [ "$(jget 'd["id"] + str(d["existing"])')" = "${s1}True" ]
  check "the same key, a required arg left out: 400 as without the key" [ "$(api POST /jobs -H 'Idempotency-Key: s-1' -H 'Content-Type: application/json' -d '{"pipeline":"art"}')" = 400 ]
  check "the same key, a required arg left out: 400 as without the key (the body names MODE)" grep -q MODE "$tmp/body"
  check "the same key, an unknown arg: 400" \
    [ "$(api POST /jobs -H 'Idempotency-Key: s-1' -H 'Content-Type: application/json' -d '{"pipeline":"art","args":{"MODE":"m","NOPE":"1"}}')" = 400 ]
  check "start an unknown pipeline: 404" [ "$(api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"nope"}')" = 404 ]
  check "start without a required arg: 400" [ "$(api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"art"}')" = 400 ]
  check "... naming it" grep -q MODE "$tmp/body"
  check "start with an unknown arg: 400" [ "$(api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"art","args":{"NOPE":"1"}}')" = 400 ]
  check "start with a read token: 403" [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $R" -H 'Content-Type: application/json' -d '{"pipeline":"art"}' "$url/jobs")" = 403 ]
  api GET /pipelines > /dev/null
  check "pipelines: the last job" [ "$(jget 'd["pipelines"][0]["last_job"]["id"]')" != "" ]
  # a bad edit: the last good version starts, and the answer says so
  cp "$tmp/pipelines/art.yml" "$tmp/art.good"
  printf 'pipeline: art\nsteps: [\n' > "$tmp/pipelines/art.yml"
  for _ in $(seq 1 50); do
    api GET /pipelines > /dev/null
    [ "$(jget '"load_error" in d["pipelines"][0]')" = True ] && break
    sleep 0.1
  done
  check "start by name, the file broken: 201" [ "$(api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"art","args":{"MODE":"m"}}')" = 201 ]
  check "... with a note naming the file" [ "$(jget 'd["note"]')" = "pipeline art's file art.yml has errors (evrun-cli pipelines shows them): this job runs the last version of it that loaded" ]
  api_wait "$(jget 'd["id"]')" > /dev/null
  cp "$tmp/art.good" "$tmp/pipelines/art.yml"
  # artifacts
  local files=0
  for _ in $(seq 1 100); do
    api GET "/jobs/$id/artifacts" > /dev/null
    files=$(jget 'len(d["artifacts"])')
    [ "$files" = 2 ] && break
    sleep 0.1
  done
  check "artifacts: both files listed" [ "$files" = 2 ]
  check "artifacts: size and sha256" [ "$(jget '[a for a in d["artifacts"] if a["path"] == "out/a.txt"][0]["size"]')" = 12 ]
  local sha
  sha=$(jget '[a for a in d["artifacts"] if a["path"] == "out/sub/big.txt"][0]["sha256"]')
  local st
  for _ in $(seq 1 100); do
    st=$(curl -s -o "$tmp/big.txt" -D "$tmp/headers" -w '%{http_code}' -H "Authorization: Bearer $W" "$url/jobs/$id/artifacts/make/out/sub/big.txt")
    [ "$st" = 200 ] && break
    sleep 0.1
  done
  check "artifact download: 200" [ "$st" = 200 ]
  check "artifact download: the bytes" cmp -s "$tmp/big.txt" <(seq 1 300000)
  check "artifact download: its sha256" [ "$(sha256sum < "$tmp/big.txt" | cut -d' ' -f1)" = "$sha" ]
  check "artifact download: the sha256 header" grep -qi "^X-Evrun-Sha256: $sha" "$tmp/headers"
  check "artifact download: the small file" [ "$(api GET "/jobs/$id/artifacts/make/out/a.txt")" = 200 ]
  check "artifact download: the small file [hello, http body]" grep -qx "hello, http" "$tmp/body"
  check "artifact: no such file: 404" [ "$(api GET "/jobs/$id/artifacts/make/out/nope.txt")" = 404 ]
  check "artifact: 404 says how to list" grep -q "/artifacts lists them" "$tmp/body"
  local trick
  for trick in 'make/../../../etc/passwd' 'make/out/%2e%2e/%2e%2e/x' 'make/out%2f..%2f..%2fx' 'make/%2fetc%2fpasswd' 'make/out/a.txt%00.png' '..%2fmake/out/a.txt'; do
    check "artifact path trick $trick: 400" [ "$(api GET "/jobs/$id/artifacts/$trick" --path-as-is)" = 400 ]
  done
  check "an escaped / in the path: named" grep -q 'the path holds an escaped / (%2F)' "$tmp/body"
  api GET "/jobs/$id/artifacts/../make/out/a.txt" --path-as-is > /dev/null
  check "a step trick: the step named" grep -q 'step \\"..\\": expected a step name' "$tmp/body"
  api GET "/jobs/$id/artifacts/make/out/%2e%2e/x" > /dev/null
  check "a path trick: a clear message" grep -q '"artifact path \\"out/../x\\": it has a . or .. component' "$tmp/body"
  check "still serving after the tricks" [ "$(api GET /runners)" = 200 ]
}

# An artifact the broker does not hold yet (its runner stopped at the test
# pause "ship"): 503 with Retry-After, then 200 once the runner, started
# again, has shipped it; one of which the broker holds another copy (of
# the same size): 503, not that copy's bytes; one the broker refused for
# good (over its --artifact-job-max-bytes): 410 too_large with the
# broker's reason.
case_artifact_states() {
  fresh artst
  bus_broker --artifact-job-max-bytes 3000000 && EVR_TEST_PAUSE_AT=ship bus_runner gw-1 "" 1 \
    && bus_wait_runners 1 && gateway
  pipeline big <<'YML'
pipeline: gw-big
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: seq 1 400000 > big.txt
    artifacts: [big.txt]
YML
  local j files=0 st
  j=$(submit "$tmp/big.yml")
  for _ in $(seq 1 300); do grep -q "test pause at ship" "$tmp/runner-gw-1.log" && break; sleep 0.1; done
  check "the runner stopped while shipping" grep -q "test pause at ship" "$tmp/runner-gw-1.log"
  for _ in $(seq 1 100); do
    api GET "/jobs/$j/artifacts" > /dev/null
    files=$(jget 'len(d["artifacts"])')
    [ "$files" = 1 ] && break
    sleep 0.1
  done
  check "the history names the file" [ "$files" = 1 ]
  check "not at the broker yet: 503" [ "$(api GET "/jobs/$j/artifacts/make/big.txt" -D "$tmp/h")" = 503 ]
  check "not at the broker yet: 503 [error unavailable]" jerr unavailable
  check "... Retry-After: 1" grep -qi "^Retry-After: 1" "$tmp/h"
  check "... saying why" grep -q "make/big.txt of job $j is not at the broker yet (its runner ships it after the step" "$tmp/body"
  kill -9 "$runner_pid_gw_1"; wait "$runner_pid_gw_1" 2>/dev/null
  bus_runner gw-1 "" 1     # no pause: it ships at its start
  for _ in $(seq 1 300); do
    st=$(api GET "/jobs/$j/artifacts/make/big.txt")
    [ "$st" = 200 ] && break
    sleep 0.1
  done
  check "shipped: 200" [ "$st" = 200 ]
  check "... the bytes" cmp -s "$tmp/body" <(seq 1 400000)
  # the broker holds a copy of the size the latest event names, and
  # another sha256 (tests/support/fake_ship.py: attempt 1's "abc" shipped,
  # attempt 2's "xyz" not): never those bytes under the event's sha256
  local fj h1 h2
  /usr/bin/python3 "$src/tests/support/fake_ship.py" "$tmp/bus" gw-fake > "$tmp/fake.out"
  fj=$(sed -n 's/^job //p' "$tmp/fake.out")
  h1=$(sed -n 's/^h1 //p' "$tmp/fake.out") h2=$(sed -n 's/^h2 //p' "$tmp/fake.out")
  check "another copy of the same size: 503" [ "$(api GET "/jobs/$fj/artifacts/a/f" -D "$tmp/h")" = 503 ]
  check "another copy of the same size: 503 [error unavailable]" jerr unavailable
  check "... Retry-After: 1" grep -qi "^Retry-After: 1" "$tmp/h"
  check "... naming both copies" grep -q "the broker holds another copy of a/f of job $fj (3 bytes, sha256 $h1) than the step recorded (3 bytes, sha256 $h2): its runner has not shipped the latest copy yet: try again" "$tmp/body"
  check "... no sha256 header" bash -c "! grep -qi '^X-Evrun-Sha256' '$tmp/h'"
  pipeline huge <<'YML'
pipeline: gw-huge
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: head -c 4000000 /dev/zero > huge.bin
    artifacts: [huge.bin]
YML
  local j2
  j2=$(submit "$tmp/huge.yml")
  check "the job succeeds (the broker's refusal fails no step)" [ "$(api_wait "$j2")" = succeeded ]
  for _ in $(seq 1 100); do grep -q "artifact make/huge.bin of job $j2: the broker refuses it" "$tmp/runner-gw-1.log" && break; sleep 0.1; done
  check "refused for good: 410" [ "$(api GET "/jobs/$j2/artifacts/make/huge.bin" -D "$tmp/h")" = 410 ]
  check "refused for good: 410 [error too_large]" jerr too_large
  check "... with the broker's reason" grep -q "the broker refused artifact huge.bin of step make of job $j2 for good (it never comes): 4000000 bytes, with the 0 bytes the job holds, over the broker's limit of 3000000 bytes a job" "$tmp/body"
  check "... no Retry-After" bash -c "! grep -qi '^Retry-After' '$tmp/h'"
}

# metrics [CURL-ARGS...]: GET /metrics (no token) into $tmp/metrics; the status
metrics() { curl -s -o "$tmp/metrics" -w '%{http_code}' "$@" "${url%/api/v1}/metrics"; }
prom() { python3 "$src/tests/support/prom_check.py" "$tmp/metrics" "$@"; }

case_metrics() {
  fresh met
  mkdir -m 0700 "$tmp/pipelines"
  cat > "$tmp/pipelines/met.yml" <<'YML'
pipeline: met
image: localhost/evrun-busybox:latest
args:
  CODE: {default: "0"}
steps:
  - {name: a, run: 'exit $CODE'}
  - {name: b, needs: [a], run: 'true'}
YML
  bus_broker && bus_runner gw-1 "" 2 && bus_wait_runners 1 && gateway
  check "metrics: 200 without a token" [ "$(metrics)" = 200 ]
  check "metrics: the text format's rules" prom
  check "metrics: the broker answers" prom 'evrun_broker_up=1' 'evrun_runners{state="idle"}=1'
  sleep 0.3   # the gateway's SUB socket joins
  local a b
  api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"met"}' > /dev/null
  a=$(jget 'd["id"]')
  api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"met","args":{"CODE":"3"}}' > /dev/null
  b=$(jget 'd["id"]')
  check "metrics: job a succeeds" [ "$(api_wait "$a")" = succeeded ]
  check "metrics: job b fails" [ "$(api_wait "$b")" = failed ]
  for _ in $(seq 1 50); do
    metrics > /dev/null
    prom 'evrun_jobs_finished_total{pipeline="met",status="failed"}=1' 2> /dev/null && break
    sleep 0.1
  done
  check "metrics: the rules, after jobs" prom
  check "metrics: jobs finished by pipeline and status" prom \
    'evrun_jobs_finished_total{pipeline="met",status="succeeded"}=1' \
    'evrun_jobs_finished_total{pipeline="met",status="failed"}=1'
  check "metrics: step durations (a, b of job a; a of job b)" prom \
    'evrun_step_duration_seconds_count{pipeline="met"}=3' \
    'evrun_step_duration_seconds_bucket{pipeline="met",le="+Inf"}=3'
  check "metrics: job durations" prom 'evrun_job_duration_seconds_count{pipeline="met"}=2'
  check "metrics: events" prom 'evrun_events_total{type="job.finished"}=2' \
    'evrun_events_total{type="step.finished"}=3'
  check "metrics: broker round trips" prom 'evrun_broker_request_duration_seconds_count>=1'
  check "metrics: a registered pipeline's queue" prom 'evrun_pipeline_waiting{pipeline="met"}=0' \
    'evrun_pipeline_running{pipeline="met"}=0'
  # a step that never started (its image not there) has no duration: not a
  # 0 s sample of the histogram, counted apart
  cat > "$tmp/nost.yml" <<'YML'
pipeline: nost
steps:
  - {name: a, image: 'localhost/evrun-does-not-exist:latest', pull: never, run: 'true'}
YML
  local n
  api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$tmp/nost.yml" > /dev/null
  n=$(jget 'd["id"]')
  check "metrics: a step that never starts fails its job" [ "$(api_wait "$n")" = failed ]
  for _ in $(seq 1 50); do
    metrics > /dev/null
    prom 'evrun_jobs_finished_total{pipeline="nost",status="failed"}=1' 2> /dev/null && break
    sleep 0.1
  done
  check "metrics: the rules, after a step that never started" prom
  check "metrics: a step that never started is no duration sample" prom \
    'evrun_step_duration_seconds_count{pipeline="nost"}=0' \
    'evrun_step_duration_seconds_count{pipeline="met"}=3'
  check "metrics: ... it is counted apart" prom \
    'evrun_steps_never_started_total{pipeline="nost"}=1' \
    'evrun_steps_never_started_total{pipeline="met"}=0'
  # a job waiting: queued with no runner to take it (a new gateway: its first scrape
  # asks the broker; later ones within 5 s get the same numbers); a second file
  # naming met, refused by the broker and listed all the same
  bus_stop
  cp "$tmp/pipelines/met.yml" "$tmp/pipelines/met2.yml"
  bus_broker && gateway
  api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"met"}' > /dev/null
  metrics > /dev/null
  check "metrics: a second file of a registered name: no series twice" prom
  check "metrics: a queued job by pipeline and status" prom 'evrun_jobs{pipeline="met",status="queued"}=1' \
    'evrun_pipeline_waiting{pipeline="met"}=1' 'evrun_runners{state="idle"}=0'
  # metrics_token: required
  printf 'metrics_token: required\n' > "$tmp/gw.yml"
  gateway --config "$tmp/gw.yml"
  check "metrics_token required: 401 without one" [ "$(metrics)" = 401 ]
  check "metrics_token required: 200 with a read token" [ "$(metrics -H "Authorization: Bearer $R")" = 200 ]
  printf 'metrics_token: sometimes\n' > "$tmp/gw2.yml"
  check "metrics_token: a bad value is refused (exit 2)" bash -c "'$bin/evrun-gateway' --state-dir '$tmp' --listen 127.0.0.1:0 --config '$tmp/gw2.yml' 2> '$tmp/err'; [ \$? = 2 ] && grep -q metrics_token '$tmp/err'"
}

# hook EVENT DELIVERY BODY-FILE [SECRET-FILE]: POST /hooks/github signed with
# the secret (default: the gateway's); the status, the answer in $tmp/body
hook() {
  local sig
  sig=$(python3 -c 'import hmac,hashlib,sys; print("sha256=" + hmac.new(open(sys.argv[1],"rb").read().strip(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "${4:-$tmp/gateway/webhook.secret}" "$3")
  curl -s -o "$tmp/body" -w '%{http_code}' -H "X-GitHub-Event: $1" -H "X-GitHub-Delivery: $2" \
    -H "X-Hub-Signature-256: $sig" -H 'Content-Type: application/json' --data-binary @"$3" \
    "${url%/api/v1}/hooks/github"
}

case_webhooks() {
  fresh hooks
  local g="git -c user.email=t@example.org -c user.name=t" repo=$tmp/repo fork=$tmp/fork
  mkdir -p "$repo/ci"
  $g -C "$repo" init -q -b main
  echo main > "$repo/file.txt"; echo 'echo "ci: trusted"' > "$repo/ci/run.sh"
  $g -C "$repo" add . && $g -C "$repo" commit -qm main
  $g -C "$repo" checkout -q -b feature
  echo feature > "$repo/file.txt"; echo 'echo "ci: changed by feature"' > "$repo/ci/run.sh"
  $g -C "$repo" commit -qam feature && $g -C "$repo" checkout -q main
  $g clone -q "$repo" "$fork"
  echo fork > "$fork/file.txt"; echo 'echo "ci: changed by a fork"' > "$fork/ci/run.sh"
  $g -C "$fork" commit -qam fork
  local main_sha feature_sha fork_sha
  main_sha=$(git -C "$repo" rev-parse main) feature_sha=$(git -C "$repo" rev-parse feature)
  fork_sha=$(git -C "$fork" rev-parse HEAD)
  mkdir -m 0700 "$tmp/pipelines"
  cat > "$tmp/pipelines/gh.yml" <<YML
pipeline: gh
image: localhost/evrun-busybox:latest
source: {git: {url: "file://$repo", ref: main}}
ci_source: {git: {url: "file://$repo", ref: main}}
on: {github: {events: [push, pull_request], branches: [main, "release/*"]}}
steps:
  - name: look
    untrusted: true
    run: echo "src \$(cat file.txt) sha \$EVRUN_SOURCE_SHA"; sh /job/ci/ci/run.sh
YML
  cat > "$tmp/pipelines/manual.yml" <<'YML'
pipeline: manual
image: localhost/evrun-busybox:latest
args:
  WHO: {default: world}
steps:
  - {name: hi, run: 'echo "hi $WHO"'}
YML
  bus_broker && bus_runner gw-1 "" 2 && bus_wait_runners 1 && gateway
  check "webhook secret made 0600" [ "$(stat -c %a "$tmp/gateway/webhook.secret")" = 600 ]
  printf '{"ref":"refs/heads/main","after":"%s","repository":{"clone_url":"file://%s","full_name":"o/r","default_branch":"main"}}' "$main_sha" "$repo" > "$tmp/push.json"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/wrong.secret"
  check "push, a wrong signature: 403" [ "$(hook push d-0 "$tmp/push.json" "$tmp/wrong.secret")" = 403 ]
  check "push, no signature: 403" [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-GitHub-Event: push' --data-binary @"$tmp/push.json" "${url%/api/v1}/hooks/github")" = 403 ]
  check "push to main: 202" [ "$(hook push d-1 "$tmp/push.json")" = 202 ]
  local id
  id=$(jget 'd["jobs"][0]["id"]')
  check "push to main: pipeline gh started" [ "$(jget 'd["jobs"][0]["pipeline"]')" = gh ]
  check "push to main: the job succeeds" [ "$(api_wait "$id")" = succeeded ]
  api GET "/jobs/$id/log" > /dev/null
  check "push to main: the pushed commit" grep -qx "look | src main sha $main_sha" "$tmp/body"
  api GET "/jobs/$id" > /dev/null
  check "push to main: the job's source" [ "$(jget 'd["source"]["sha"]')" = "$main_sha" ]
  check "the same delivery again: 202" [ "$(hook push d-1 "$tmp/push.json")" = 202 ]
  check "the same delivery again: the same job, existing" [ "$(jget 'd["jobs"][0]["id"] + str(d["jobs"][0]["existing"])')" = "${id}True" ]
  sed "s/refs\/heads\/main/refs\/heads\/feature/; s/$main_sha/$feature_sha/" "$tmp/push.json" > "$tmp/push2.json"
  check "push to feature: 200" [ "$(hook push d-2 "$tmp/push2.json")" = 200 ]
  check "push to feature: no pipeline matched, and why" grep -q 'no pipeline matched: of 2 registered pipelines, 1 have on.github, none with push in events and a branch pattern matching \\"feature\\"' "$tmp/body"
  sed "s/refs\/heads\/main/refs\/tags\/v1/" "$tmp/push.json" > "$tmp/tag.json"
  check "a tag push: 200, nothing started" [ "$(hook push d-3 "$tmp/tag.json")" = 200 ]
  check "a tag push: 200, nothing started [not a branch body]" grep -q 'not a branch' "$tmp/body"
  sed "s|file://$repo|https://u:pw@127.0.0.1/r.git|" "$tmp/push.json" > "$tmp/cred.json"
  check "a clone_url with a password: refused by the broker's check (400)" [ "$(hook push d-7 "$tmp/cred.json")" = 400 ]
  check "... naming the pipeline and the problem" [ "$(jget 'd["refused"][0]["pipeline"] + " " + str("source.git.url: credentials in the URL" in d["refused"][0]["error"]["message"])')" = "gh True" ]
  check "a delivery id with a space: 400" [ "$(hook push 'd 8' "$tmp/push.json")" = 400 ]
  check "a delivery id with a space: 400 [X-GitHub-Delivery body]" grep -q 'X-GitHub-Delivery' "$tmp/body"
  printf '{"ref": ' > "$tmp/bad.json"
  check "bad JSON, signed: 400" [ "$(hook push d-4 "$tmp/bad.json")" = 400 ]
  printf 'payload=%%7B%%22ref%%22%%3A1%%7D' > "$tmp/form.body"
  check "a form body (GitHub's default content type): 400" [ "$(hook push d-4f "$tmp/form.body")" = 400 ]
  check "... saying to set content type application/json" grep -q "set the webhook's content type to application/json" "$tmp/body"
  printf '[{"ref":"refs/heads/main"}]' > "$tmp/array.json"
  check "a JSON array: 400" [ "$(hook push d-4a "$tmp/array.json")" = 400 ]
  check "... expected an object, with no -1:-1 position" grep -q 'body: expected a JSON object (GitHub.s event), not an array' "$tmp/body"
  check "an event not handled: 200" [ "$(hook issues d-5 "$tmp/push.json")" = 200 ]
  check "an event not handled: 200 [not handled body]" grep -q 'not handled' "$tmp/body"
  # a pull request from a fork: the fork's commit, the CI scripts of the base's default branch
  printf '{"action":"opened","pull_request":{"base":{"ref":"main"},"head":{"sha":"%s","repo":{"clone_url":"file://%s","full_name":"x/fork"}}},"repository":{"clone_url":"file://%s","full_name":"o/r","default_branch":"main"}}' "$fork_sha" "$fork" "$repo" > "$tmp/pr.json"
  check "pull request from a fork: 202" [ "$(hook pull_request d-6 "$tmp/pr.json")" = 202 ]
  check "pull request from a fork: untrusted" [ "$(jget 'd["source"]["untrusted"]')" = True ]
  id=$(jget 'd["jobs"][0]["id"]')
  check "pull request: the job succeeds" [ "$(api_wait "$id")" = succeeded ]
  api GET "/jobs/$id/log" > /dev/null
  check "pull request: the fork's code" grep -qx "look | src fork sha $fork_sha" "$tmp/body"
  check "pull request: the base's CI scripts, not the fork's" grep -qx "look | ci: trusted" "$tmp/body"
  # a pipeline's own hook
  check "hook without a token file: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST "${url%/api/v1}/hooks/manual")" = 401 ]
  check "hook: says how to make one" grep -q 'evrun-cli hook-token manual' "$tmp/body"
  cp "$tmp/body" "$tmp/body.nofile"
  local t
  t=$(cli hook-token manual)
  check "hook-token: a token file 0600" [ "$(stat -c %a "$tmp/gateway/hooks/manual.token")" = 600 ]
  check "hook-token: the same token again" [ "$(cli hook-token manual)" = "$t" ]
  check "hook, a wrong token: 401" [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' -X POST "${url%/api/v1}/hooks/manual")" = 401 ]
  # whether a pipeline has a hook token is not a caller's to learn
  curl -s -o "$tmp/body" -X POST "${url%/api/v1}/hooks/manual"
  check "hook, no token given: as when it had no token file" cmp -s "$tmp/body" "$tmp/body.nofile"
  check "hook, bad JSON: 400" [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Evrun-Token: $t" -H 'Content-Type: application/json' -d '{"args":' "${url%/api/v1}/hooks/manual")" = 400 ]
  check "hook with its token: 202" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $t" -H 'Content-Type: application/json' -d '{"args":{"WHO":"hook"}}' "${url%/api/v1}/hooks/manual")" = 202 ]
  id=$(jget 'd["jobs"][0]["id"]')
  check "hook: the job succeeds" [ "$(api_wait "$id")" = succeeded ]
  api GET "/jobs/$id/log" > /dev/null
  check "hook: its args" grep -qx "hi | hi hook" "$tmp/body"
  cli hook-token ../x > /dev/null 2>&1
  check "hook-token: a bad name is refused (exit 2)" [ $? = 2 ]
  cli hook-token github > /dev/null 2> "$tmp/gh.err"
  check "hook-token github: refused (exit 2)" [ $? = 2 ]
  check "... saying why and what to use instead" grep -q 'a pipeline named github cannot have a hook of its own: POST /hooks/github takes GitHub.s webhooks.*on: {github: ...}' "$tmp/gh.err"
  check "... and no token file made" [ ! -e "$tmp/gateway/hooks/github.token" ]
  cli hook-token ghost > "$tmp/ghost.tok"
  check "hook-token --help: NAME need not be registered yet" bash -c "'$bin/evrun-cli' hook-token --help | grep -q 'NAME need not be registered yet'"
  check "hook of an unknown pipeline, with a token: 404" [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Evrun-Token: $(cat "$tmp/ghost.tok")" -X POST "${url%/api/v1}/hooks/ghost")" = 404 ]
  local old=$t
  t=$(cli hook-token manual --new)
  check "hook-token --new: the old token is refused" [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Evrun-Token: $old" -X POST "${url%/api/v1}/hooks/manual")" = 401 ]
  check "hook-token --new: the old token is refused [t != old]" [ "$t" != "$old" ]
}

# raw [ARGS...] < REQUEST: one raw HTTP exchange with the gateway (http_raw.py):
# prints "STATUS SECONDS closed|open"; the answer's body in $tmp/body, head in $tmp/headers
raw() { python3 "$src/tests/integration/http_raw.py" "${url_port:?}" "$tmp" "$@"; }
gw_port() { url_port=${url#http://127.0.0.1:}; url_port=${url_port%%/*}; }
secs_below() { awk -v s="$(echo "$1" | cut -d' ' -f2)" -v m="$2" 'BEGIN {exit !(s + 0 < m)}'; }
serving() { [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $R" "$url/runners")" = 200 ]; }
jerr() { [ "$(jget 'd["error"]["code"]' 2>/dev/null)" = "$1" ]; }   # the JSON error's code
# rq METHOD PATH [HEADER-LINES]: a request's head for raw, with the write token
rq() { printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n%s\r\n' "$1" "$2" "$W" "${3:-}"; }
# jwt HEADER-JSON PAYLOAD-JSON ALG: a token signed with the gateway's secret (ALG sha256, sha512)
jwt() {
  python3 - "$1" "$2" "$3" "$tmp/gateway/jwt.secret" <<'PY'
import base64, hashlib, hmac, sys
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=")
msg = b(sys.argv[1].encode()) + b"." + b(sys.argv[2].encode())
key = open(sys.argv[4], "rb").read().strip()
print((msg + b"." + b(hmac.new(key, msg, getattr(hashlib, sys.argv[3])).digest())).decode())
PY
}

# Requests a client should not send: each gets a JSON error with its
# status (or, past what libmicrohttpd holds, its own 414/431, or a closed
# connection), and the gateway serves the next one.
case_bad_input() {
  fresh bad
  printf 'http_request_timeout: 3\nhttp_idle_timeout: 4\n' > "$tmp/gw.yml"
  bus_broker && gateway --config "$tmp/gw.yml" && gw_port
  local id=01ARYZ6S41TSV4RRFFQ69G5FAV st q job
  # oversized bodies: a Content-Length over the limit is answered before any body is read
  st=$( { rq POST /api/v1/jobs $'Content-Type: application/yaml\r\nContent-Length: 100000000000\r\n'; printf 'steps: []\n'; } | raw --wait 5)
  check "Content-Length of 100 GB: 413 at once" [ "${st%% *}" = 413 ]
  check "Content-Length of 100 GB: 413 at once [error too_large]" jerr too_large
  check "... and the connection closed" [ "${st##* }" = closed ]
  check "still serving after a huge Content-Length" serving
  head -c 4194305 /dev/zero | tr '\0' '#' > "$tmp/big"
  check "a chunked body over the limit: 413" [ "$(api POST /jobs -H 'Content-Type: application/yaml' -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/big")" = 413 ]
  check "a chunked body over the limit: 413 [error too_large]" jerr too_large
  check "still serving after a chunked 413" serving
  # a Content-Length shorter than the body: the body is its first bytes, the rest a next request
  st=$( { rq POST /api/v1/jobs $'Content-Type: application/yaml\r\nContent-Length: 5\r\n'; printf 'steps: [{name: a, run: x}]\n'; } | raw --wait 5)
  check "a short Content-Length: 400 for the body it declares" [ "${st%% *}" = 400 ]
  check "a short Content-Length: 400 for the body it declares [error bad_pipeline]" jerr bad_pipeline
  check "a short Content-Length: the rest of the body answered as a next request (400)" grep -q '^HTTP/1.1 400 ' "$tmp/rest"
  check "still serving after a short Content-Length" serving
  # longer than the body: the request never ends; cut at http_request_timeout
  st=$( { rq POST /api/v1/jobs $'Content-Type: application/yaml\r\nContent-Length: 1000\r\n'; printf 'steps: []\n'; } | raw --wait 15)
  check "a long Content-Length: no answer, closed ($st)" [ "${st%% *} ${st##* }" = "000 closed" ]
  check "... within the request timeout ($st)" secs_below "$st" 9
  check "still serving after a long Content-Length" serving
  # slowloris: the head one byte every 0.3 s; cut after http_request_timeout (3 s)
  rq GET /api/v1/runners > "$tmp/slow.req"
  raw --delay 0.3 --wait 15 < "$tmp/slow.req" > "$tmp/slow.out" &
  local slow=$!
  sleep 1.5
  check "others served while a slow head trickles in" serving
  wait "$slow"
  st=$(cat "$tmp/slow.out")
  check "slowloris: closed without an answer ($st)" [ "${st%% *} ${st##* }" = "000 closed" ]
  check "slowloris: within a few seconds ($st)" secs_below "$st" 9
  check "still serving after slowloris" serving
  # bad JSON and YAML
  python3 -c "print('[' * 100000)" > "$tmp/deep.json"
  check "JSON nested 100000 deep: 400" [ "$(api POST /jobs -H 'Content-Type: application/json' --data-binary @"$tmp/deep.json")" = 400 ]
  check "JSON nested 100000 deep: 400 [error bad_request]" jerr bad_request
  check "... says where" grep -q '"message":"body:1:[0-9]*: bad JSON' "$tmp/body"
  python3 -c "print('a: ' + '[' * 100000)" > "$tmp/deep.yml"
  check "YAML nested 100000 deep: 400" [ "$(api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$tmp/deep.yml")" = 400 ]
  check "YAML nested 100000 deep: 400 [error bad_pipeline]" jerr bad_pipeline
  check "JSON with an escaped NUL: 400" [ "$(printf '{"pipeline":"a\\u0000b","steps":[]}' | api POST /jobs -H 'Content-Type: application/json' --data-binary @-)" = 400 ]
  check "JSON with an escaped NUL: 400 [error bad_request]" jerr bad_request
  check "JSON that is no UTF-8: 400" [ "$(printf '{"pipeline":"\xc0\xae","steps":[]}' | api POST /jobs -H 'Content-Type: application/json' --data-binary @-)" = 400 ]
  check "JSON that is no UTF-8: 400 [error bad_request]" jerr bad_request
  check "... says so" grep -q 'UTF-8' "$tmp/body"
  check "YAML that is no UTF-8: 400 with where" [ "$(printf 'pipeline: ok\nsteps:\n  - {name: a, run: "\xff"}\n' | api POST /jobs -H 'Content-Type: application/yaml' --data-binary @-)" = 400 ]
  check "YAML that is no UTF-8: 400 with where [message:body:3: body]" grep -q '"message":"body:3:' "$tmp/body"
  check "a cancel body that is no JSON: 400" [ "$(api POST "/jobs/$id/cancel" -H 'Content-Type: application/json' -d '{"reason":')" = 400 ]
  check "a cancel body that is no JSON: 400 [error bad_request]" jerr bad_request
  check "still serving after bad JSON and YAML" serving
  # bad UTF-8 in header values and query values
  check "Idempotency-Key not UTF-8: 400" [ "$(api POST /jobs -H $'Idempotency-Key: \xff\xfe' -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml")" = 400 ]
  check "Idempotency-Key not UTF-8: 400 [error bad_request]" jerr bad_request
  check "Authorization not UTF-8: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H $'Authorization: Bearer \xff\xfe.\xff.\xff' "$url/runners")" = 401 ]
  check "Authorization not UTF-8: 401 [error unauthorized]" jerr unauthorized
  check "Content-Type not UTF-8: 415" [ "$(api POST /jobs -H $'Content-Type: application/\xff' --data-binary @"$src/examples/hello.yml")" = 415 ]
  api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$src/examples/hello.yml" > /dev/null
  job=$(jget 'd["id"]')     # queued: no runner
  check "Last-Event-ID not UTF-8: 400" [ "$(api GET "/jobs/$job/log" -H 'Accept: text/event-stream' -H $'Last-Event-ID: \xff')" = 400 ]
  check "Last-Event-ID not UTF-8: 400 [error bad_request]" jerr bad_request
  check "?step= not UTF-8: 400" [ "$(api GET "/jobs/$job/log?step=%ff%fe")" = 400 ]
  check "?step= not UTF-8: 400 [error bad_request]" jerr bad_request
  check "?pipeline= not UTF-8: 400" [ "$(api GET '/jobs?pipeline=%ff%fe')" = 400 ]
  check "?pipeline= not UTF-8: 400 [error bad_request]" jerr bad_request
  check "a path not UTF-8: 404, the bytes named" [ "$(api GET '/nope/%ff')" = 404 ]
  check "a path not UTF-8: 404, the bytes named [nope/xFF body]" grep -q 'nope/\\\\xFF' "$tmp/body"
  check "still serving after bad UTF-8" serving
  # path tricks in artifact URLs (checked before the broker is asked)
  local t
  for t in 'make//etc/passwd' 'make/out//a.txt' 'make/out/%2e%2e/%2e%2e/x' 'make/%2e%2e%2f%2e%2e%2fx' \
           'make/out/a%00b' 'make/%c0%ae%c0%ae/x' 'make/out/..' "make/$(printf 'd%.0s' $(seq 1 1100))"; do
    check "artifact path ${t:0:40}: 400" [ "$(api GET "/jobs/$id/artifacts/$t" --path-as-is)" = 400 ]
    check "artifact path ${t:0:40}: 400 [error bad_request]" jerr bad_request
  done
  check "an artifact path of 40000 bytes: 414 (libmicrohttpd)" [ "$(api GET "/jobs/$id/artifacts/make/$(head -c 40000 /dev/zero | tr '\0' d)")" = 414 ]
  check "a double slash in the route: 404" [ "$(api GET '//runners' --path-as-is)" = 404 ]
  check "a double slash in the route: 404 [error not_found]" jerr not_found
  check "still serving after path tricks" serving
  # methods
  st=$(rq BREW /api/v1/jobs | raw)
  check "an unknown method: 405" [ "${st%% *}" = 405 ]
  check "an unknown method: 405 [error method_not_allowed]" jerr method_not_allowed
  check "... with Allow" grep -qi '^Allow: POST, GET' "$tmp/headers"
  st=$(rq DELETE /api/v1/runners | raw)
  check "DELETE /runners: 405 with Allow: GET" [ "${st%% *}" = 405 ]
  check "DELETE /runners: 405 with Allow: GET [^Allow: GET headers]" grep -qi '^Allow: GET' "$tmp/headers"
  check "PUT /metrics: 405 with Allow: GET" [ "$(curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X PUT "${url%/api/v1}/metrics")" = 405 ]
  check "PUT /metrics: 405 with Allow: GET [^Allow: GET headers]" grep -qi '^Allow: GET' "$tmp/headers"
  check "still serving after unknown methods" serving
  # header counts
  q=$(for i in $(seq 1 150); do printf 'X-Pad-%d: v\r\n' "$i"; done)$'\n'   # ($(...) cut the last \n)
  st=$(rq GET /api/v1/runners "$q" | raw)
  check "150 header fields: 431" [ "${st%% *}" = 431 ]
  check "150 header fields: 431 [error too_many_headers]" jerr too_many_headers
  q=$(for i in $(seq 1 5000); do printf 'X-Pad-%d: v\r\n' "$i"; done)$'\n'
  st=$(rq GET /api/v1/runners "$q" | raw)
  check "5000 header fields: 431 (libmicrohttpd)" [ "${st%% *}" = 431 ]
  check "still serving after many headers" serving
  # tokens
  local claims tok
  claims=$(printf '{"sub":"t","iat":%d,"exp":%d,"scope":"write"}' "$(date +%s)" $(( $(date +%s) + 600 )))
  tok=$(jwt '{"alg":"HS256","typ":"JWT"}' "$claims" sha256)
  check "a token made here with HS256: 200 (the helper signs right)" [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$url/runners")" = 200 ]
  tok=$(jwt '{"alg":"HS512","typ":"JWT"}' "$claims" sha512)
  check "alg HS512, signed with the secret: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $tok" "$url/runners")" = 401 ]
  check "alg HS512, signed with the secret: 401 [HS256 body]" grep -q HS256 "$tmp/body"
  tok=$(jwt '{"alg":"RS256","typ":"JWT"}' "$claims" sha256)
  check "alg RS256: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $tok" "$url/runners")" = 401 ]
  check "alg RS256: 401 [error unauthorized]" jerr unauthorized
  check "a token that is no base64: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Authorization: Bearer @@@.$$$.!!!' "$url/runners")" = 401 ]
  check "a token that is no base64: 401 [error unauthorized]" jerr unauthorized
  tok=$(head -c 5000 /dev/zero | tr '\0' a)
  check "a token of 5000 bytes: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $tok.a.a" "$url/runners")" = 401 ]
  check "a token of 5000 bytes: 401 [over 4096 bytes body]" grep -q 'over 4096 bytes' "$tmp/body"
  tok=$(head -c 40000 /dev/zero | tr '\0' a)
  check "a token of 40000 bytes: 431 (libmicrohttpd)" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $tok.a.a" "$url/runners")" = 431 ]
  check "still serving after bad tokens" serving
}

# A client that stops reading a live log is dropped after http_idle_timeout;
# it resumes with Last-Event-ID and gets the rest, each event once.
# query parameters: a route refuses one it does not take, naming it and the known ones; a
# missing arg's hint is the HTTP form (?arg=NAME=VALUE), not the command line's -a
case_query_params() {
  fresh query
  mkdir -m 0700 "$tmp/pipelines"
  printf 'pipeline: reg\nexecutor: process\nargs: {WHO: {}}\nsteps:\n  - {name: a, run: echo $WHO}\n' > "$tmp/pipelines/reg.yml"
  bus_broker && gateway && gw_port
  check "start by name, an arg missing: 400" [ "$(api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"reg"}')" = 400 ]
  check "... the broker's hint in the HTTP form" grep -q 'args.WHO: no default and not given (add ?arg=WHO=VALUE to the URL)' "$tmp/body"
  local hk
  hk=$(cli hook-token reg)
  check "a hook, an arg missing: 400" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "X-Evrun-Token: $hk" -X POST "${url%/api/v1}/hooks/reg")" = 400 ]
  check "... the hint names the body's args" grep -q 'args.WHO: no default and not given (give it in the body: {\\"args\\": {\\"WHO\\": VALUE}})' "$tmp/body"
  printf 'pipeline: who\nexecutor: process\nargs: {WHO: {}}\nsteps:\n  - {name: a, run: echo $WHO}\n' > "$tmp/who.yml"
  local yml=(-H 'Content-Type: application/yaml' --data-binary @"$tmp/who.yml")
  check "a missing arg: 400" [ "$(api POST /jobs "${yml[@]}")" = 400 ]
  check "... its hint is ?arg=WHO=VALUE" grep -q 'args.WHO: no default and not given (add ?arg=WHO=VALUE to the URL)' "$tmp/body"
  check "... not -a" bash -c "! grep -q 'use -a' $tmp/body"
  check "?WHO=x: 400" [ "$(api POST '/jobs?WHO=x&bogus=1' "${yml[@]}")" = 400 ]
  check "?WHO=x: 400 [error bad_request]" jerr bad_request
  check "... names them and the known ones" grep -q 'unknown query parameter WHO, bogus: this route takes arg, label (an arg is ?arg=NAME=VALUE)' "$tmp/body"
  check "?arg=WHO=x: accepted" [ "$(api POST '/jobs?arg=WHO=x&label=nobody' "${yml[@]}")" = 201 ]
  check "?label=gpu twice: 400" [ "$(api POST '/jobs?arg=WHO=x&label=gpu&label=gpu' "${yml[@]}")" = 400 ]
  check "?label=gpu twice: names it" grep -qF 'label: \"gpu\" given twice (each label once, the body'"'"'s and the query'"'"'s together)' "$tmp/body"
  # an arg given twice is refused, not its last value taken: in the query,
  # and as a repeated key of a start's body args (a body's ?arg= still wins)
  check "?arg=WHO twice: 400" [ "$(api POST '/jobs?arg=WHO=x&arg=WHO=y' "${yml[@]}")" = 400 ]
  check "?arg=WHO twice: names it" grep -qF 'arg: \"WHO\" given twice (each arg once)' "$tmp/body"
  check "start, ?arg=WHO twice: 400" [ "$(api POST '/jobs?arg=WHO=x&arg=WHO=y' -H 'Content-Type: application/json' -d '{"pipeline":"reg"}')" = 400 ]
  check "start, ?arg=WHO twice: names it" grep -qF 'arg: \"WHO\" given twice (each arg once)' "$tmp/body"
  check "start, body args.WHO twice: 400" [ "$(api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"reg","args":{"WHO":"x","WHO":"y"}}')" = 400 ]
  check "start, body args.WHO twice: names the key" grep -qF "duplicate object key" "$tmp/body"
  check "start, body args.WHO and ?arg=WHO: the query's wins" [ "$(api POST '/jobs?arg=WHO=q' -H 'Content-Type: application/json' -d '{"pipeline":"reg","args":{"WHO":"b"}}')" = 201 ]
  check "GET /jobs?limt=1: 400" [ "$(api GET '/jobs?limt=1')" = 400 ]
  check "GET /jobs?limt=1: 400 [unknown query parameter limt: this route take...]" grep -q 'unknown query parameter limt: this route takes pipeline, status, limit, cursor' "$tmp/body"
  check "GET /jobs?limit=1&pipeline=who: 200" [ "$(api GET '/jobs?limit=1&pipeline=who')" = 200 ]
  check "GET /runners?x=1: 400, takes none" [ "$(api GET '/runners?x=1')" = 400 ]
  check "GET /runners?x=1: 400, takes none [unknown query parameter x: this route takes n...]" grep -q 'unknown query parameter x: this route takes none' "$tmp/body"
  check "?arg+label=x (two known names joined by a space): 400" [ "$(api POST '/jobs?arg+label=x' "${yml[@]}")" = 400 ]
  check "?arg+label=x (two known names joined by a space): 400 [unknown query parameter arg label body]" grep -q 'unknown query parameter arg label' "$tmp/body"
}

# a port taken: the address and port named with the system's words, no certificate when
# TLS is off
case_taken_port() {
  fresh taken
  bus_broker && gateway && gw_port
  local rc
  timeout -k 10 20 "$bin/evrun-gateway" --state-dir "$tmp" --listen "127.0.0.1:$url_port" > "$tmp/taken.out" 2>&1
  rc=$?
  check "a taken port: exits at once, non-zero ($rc)" [ "$rc" -ne 0 ]
  check "a taken port: exits at once, non-zero ($rc) [rc -ne 124]" [ "$rc" -ne 124 ]
  check "... names the address and port" grep -q "cannot listen on 127.0.0.1:$url_port: Address already in use" "$tmp/taken.out"
  check "... not port 0" bash -c "! grep -q 'port 0' $tmp/taken.out"
  check "... no certificate without TLS" bash -c "! grep -qi 'certificate' $tmp/taken.out"
  check "the first still serving" serving
}

case_stalled_resume() {
  fresh stall
  printf 'http_idle_timeout: 3\n' > "$tmp/gw.yml"
  bus_broker && bus_runner gw-1 "" 2 && bus_wait_runners 1 && gateway --config "$tmp/gw.yml" && gw_port
  pipeline big <<'YML'
pipeline: big
image: localhost/evrun-busybox:latest
steps:
  - name: talk
    run: pad=$(head -c 4000 /dev/zero | tr '\0' x); i=1; while [ $i -le 3000 ]; do echo "$pad tick $i"; i=$((i+1)); done
YML
  api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$tmp/big.yml" > /dev/null
  local id last n st
  id=$(jget 'd["id"]')
  check "the 12 MB job succeeds" [ "$(api_wait "$id")" = succeeded ]
  # its page read again (as a browser polls it): no history read again
  local h0 h1
  h0=$(curl -s "${url%/api/v1}/metrics" | sed -n 's/^evrun_gateway_history_events_total //p')
  check "GET the ended job again: 200" [ "$(api GET "/jobs/$id")" = 200 ]
  check "GET the ended job again: 200 [(jget d[steps][0][status]) = succeeded]" [ "$(jget 'd["steps"][0]["status"]')" = succeeded ]
  check "GET its artifacts again: 200" [ "$(api GET "/jobs/$id/artifacts")" = 200 ]
  h1=$(curl -s "${url%/api/v1}/metrics" | sed -n 's/^evrun_gateway_history_events_total //p')
  check "... reading none of its 3000 events again ($h0 -> $h1)" [ -n "$h0" ]
  check "... reading none of its 3000 events again ($h0 -> $h1) [h0 = h1]" [ "$h0" = "$h1" ]
  local ev0 ev1
  ev0=$(curl -s "${url%/api/v1}/metrics" | sed -n 's/^evrun_gateway_history_events_total //p')
  # asks for the whole log and reads nothing for 8 s (a 4 KiB receive buffer)
  st=$(printf 'GET /api/v1/jobs/%s/log HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n' "$id" "$R" | raw --rcvbuf 4096 --pause 8 --wait 5)
  check "a client that stops reading: 200, then dropped ($st)" [ "${st%% *} ${st##* }" = "200 closed" ]
  sse_events "$tmp/body" > "$tmp/ev1"
  last=$(tail -1 "$tmp/ev1" | cut -d' ' -f1)
  check "... after some events" [ -n "$last" ]
  check "... before the end" bash -c "! grep -q job.finished '$tmp/ev1'"
  check "others still served" serving
  curl -s -N --max-time 60 -H "Authorization: Bearer $R" -H 'Accept: text/event-stream' \
    -H "Last-Event-ID: $last" "$url/jobs/$id/log" > "$tmp/sse2"
  sse_events "$tmp/sse2" > "$tmp/ev2"
  check "resumed with Last-Event-ID: to job.finished" [ "$(tail -1 "$tmp/ev2" | cut -d' ' -f2)" = job.finished ]
  # history pages sized to what the stream takes: the events read from the
  # broker are not many times those sent (a page cut at the stream's buffer
  # is asked again from there)
  ev1=$(curl -s "${url%/api/v1}/metrics" | sed -n 's/^evrun_gateway_history_events_total //p')
  n=$(tail -1 "$tmp/ev2" | cut -d' ' -f1)
  echo "  history events read for the two streams of $n events: $((ev1 - ev0))"
  check "history events read: at most 3 x $n + 1000 ($((ev1 - ev0)))" [ $((ev1 - ev0)) -le $((3 * n + 1000)) ]
  cat "$tmp/ev1" "$tmp/ev2" > "$tmp/ev"
  n=$(tail -1 "$tmp/ev" | cut -d' ' -f1)
  check "ids 1..$n, each once, in order" [ "$(cut -d' ' -f1 "$tmp/ev" | tr '\n' ' ')" = "$(seq 1 "$n" | tr '\n' ' ')" ]
  python3 -c 'import json,sys; print("".join(json.loads(l.split(" ",2)[2]) for l in open(sys.argv[1])), end="")' "$tmp/ev" > "$tmp/out"
  check "every line once, in order" exactly_once "$tmp/out" 3000 ""
}

# Clients that stop reading the live log of a job printing 64 KiB events:
# each holds at most its stream's buffer and a few publications in the
# gateway (16, some 1 MiB; 64 held were 4 MiB each).
case_stalled_live() {
  fresh stlive
  bus_broker && bus_runner gw-1 "" 2 && bus_wait_runners 1 && gateway && gw_port
  pipeline live <<'YML'
pipeline: live
image: localhost/evrun-busybox:latest
steps:
  - name: talk
    run: sleep 2; for k in $(seq 1 16); do head -c 1000000 /dev/zero | tr '\0' x | fold -w 1000; sleep 0.5; done
YML
  api POST /jobs -H 'Content-Type: application/yaml' --data-binary @"$tmp/live.yml" > /dev/null
  local id gw_pid=${bus_pids[-1]} rss0 rss1 k max=0 slow=()
  id=$(jget 'd["id"]')
  rss0=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")
  for k in 1 2 3 4 5 6 7 8 9 10; do
    printf 'GET /api/v1/jobs/%s/log HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n' "$id" "$R" \
      | raw --rcvbuf 4096 --pause 14 --wait 0 > /dev/null &
    slow+=("$!")
  done
  for k in $(seq 1 28); do
    rss1=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")
    [ "$rss1" -gt "$max" ] && max=$rss1
    sleep 0.5
  done
  echo "  gateway RSS $rss0 -> at most $max KiB with 10 clients of a live 16 MB stream that do not read"
  check "others still served" serving
  grep -q __asan_init "$bin/evrun-gateway" ||
    check "memory bounded: under 3 MiB a client ($rss0 -> $max KiB)" [ $((max - rss0)) -lt 30720 ]
  wait "${slow[@]}" 2>/dev/null
  check "the job succeeds" [ "$(api_wait "$id")" = succeeded ]
}

exactly_once() {   # FILE N PREFIX: lines "PREFIXtick 1".."PREFIXtick N" each once, in order
  local got want
  got=$(grep -o "tick [0-9]*$" "$1" | tr '\n' ' ')
  want=$(seq 1 "$2" | sed 's/^/tick /' | tr '\n' ' ')
  [ "$got" = "$want" ] || { echo "  want: $want" >&2; echo "  got:  $got" >&2; return 1; }
}

ticks() {   # NAME N PAUSE: a pipeline printing "tick 1".."tick N"
  pipeline "$1" <<YML
pipeline: $1
image: localhost/evrun-busybox:latest
steps:
  - name: count
    run: for i in \$(seq 1 $2); do echo "tick \$i"; sleep $3; done
YML
}

bus_script_cases "submit_and_read idempotency_and_list tokens tls sse slow_client pipelines_and_artifacts artifact_states metrics webhooks bad_input query_params taken_port stalled_resume stalled_live" "$@"
bus_script_end

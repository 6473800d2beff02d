#!/usr/bin/env bash
# test_gateway_api.sh BIN_DIR SRC_DIR [CASE...]: evrun-gateway's answers
# that depend on what the broker says, with a process runner (no podman):
# a matrix step's names in the artifact and log routes, the broker's
# refusals as HTTP statuses (busy 409, queue_full 429 with Retry-After), a
# submit the broker took but did not answer in time (503, outcome
# unknown, then the same Idempotency-Key: 200), the text log made UTF-8,
# and query and body checks (?step= of no step, ?limit, ?cursor, sizes,
# cancel, pause and resume bodies).  Hooks refused by the broker (busy
# 409, queue_full 429 with Retry-After, /hooks/NAME and /hooks/github);
# hook checks (a token in two headers, a spec sent to a hook, the
# broker's note, a GitHub redelivery's answer, webhook headers twice; a
# delivery that starts nothing quoting bytes that are no UTF-8; a body
# that is no JSON object).  A pipeline file whose name is no UTF-8.
# GET /metrics: a broker that hangs (SIGSTOP) costs a scrape 2 s and
# evrun_broker_up 0, and holds no other scrape; and against
# metrics_broker.py (a stand-in broker): more pipelines than have labels
# of their own counted as _other, a second file of a registered name
# written once.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
. "$src/tests/integration/gw_lib.sh"
bus_script_init gwa

jerr() { [ "$(jget 'd["error"]["code"]' 2>/dev/null)" = "$1" ]; }   # the JSON error's code
says() { grep -qF -- "$1" "$tmp/body"; }
hdr() { curl -s -D - -o "$tmp/body" -H "Authorization: Bearer $W" "$@" | tr -d '\r'; }

start() {   # a broker, a process runner and a gateway (its settings: ARGS)
  fresh "$1"
  shift
  printf '%s\n' "$@" > "$tmp/gw.yml"
  bus_broker && bus_runner api-1 "" 4 --executors process && bus_wait_runners 1 \
    && gateway --config "$tmp/gw.yml"
}

case_matrix() {
  start matrix 'timeout_ms: 5000'
  check "a matrix pipeline: 201" [ "$(api POST /jobs -H 'Content-Type: application/yaml' --data-binary $'pipeline: mx\nexecutor: process\nsteps:\n  - name: b\n    matrix: {OS: [x, y]}\n    run: echo "os $OS"; echo $OS > f.txt\n    artifacts: [f.txt]\n')" = 201 ]
  local id
  id=$(jget 'd["id"]')
  check "it succeeds" [ "$(api_wait "$id")" = succeeded ]
  api GET "/jobs/$id/artifacts" > /dev/null
  check "the artifacts list b[OS=x]" [ "$(jget 'sorted(a["step"] for a in d["artifacts"])')" = "['b[OS=x]', 'b[OS=y]']" ]
  check "a matrix step's file: 200" [ "$(api GET "/jobs/$id/artifacts/b%5BOS=x%5D/f.txt")" = 200 ]
  check "... its bytes" [ "$(cat "$tmp/body")" = x ]
  local etag
  etag=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $W" "$url/jobs/$id/artifacts/b%5BOS=x%5D/f.txt" | tr -d '\r' | sed -n 's/^ETag: //p')
  check "... an ETag, but If-None-Match of it is 200, no 304 (README)" [ -n "$etag" ]
  check "... an ETag, but If-None-Match of it is 200, no 304 (README) [(api GET /jobs/id/artifacts/b%5BOS=x%5D/f.txt...]" [ "$(api GET "/jobs/$id/artifacts/b%5BOS=x%5D/f.txt" -H "If-None-Match: $etag")" = 200 ]
  check "... unescaped brackets too" [ "$(api GET "/jobs/$id/artifacts/b[OS=y]/f.txt" -g)" = 200 ]
  check "... unescaped brackets too [(cat body) = y]" [ "$(cat "$tmp/body")" = y ]
  check "log ?step= of a matrix step: 200" [ "$(api GET "/jobs/$id/log?step=b%5BOS%3Dx%5D")" = 200 ]
  check "... its line only" [ "$(cat "$tmp/body")" = "b[OS=x] | os x" ]
  check "log ?step= of the written name: both" [ "$(api GET "/jobs/$id/log?step=b")" = 200 ]
  check "log ?step= of the written name: both [(grep -c | os body) = 2]" [ "$(grep -c '| os ' "$tmp/body")" = 2 ]
  check "a step of no step form: 400" [ "$(api GET "/jobs/$id/log?step=b%5BOS%5D")" = 400 ]
  check "a step of no step form: 400 [NAME[K=v,...]]" says "NAME[K=v,...]"
  curl -s -N -H "Authorization: Bearer $W" -H "Accept: text/event-stream" "$url/jobs/$id/log?step=b" > "$tmp/sse"
  check "SSE ?step= of the written name: both" [ "$(grep -c "\"step.output\"" "$tmp/sse")" = 2 ]
  check "an artifact of no step form: 400" [ "$(api GET "/jobs/$id/artifacts/b%5Bx/f.txt")" = 400 ]
  check "an artifact of no step form: 400 [error bad_request]" jerr bad_request
  # an empty path or step, a step over 127 bytes: 400 naming it (before: 404 "no such route")
  check "an artifact with an empty path: 400" [ "$(api GET "/jobs/$id/artifacts/b%5BOS=x%5D/")" = 400 ]
  check "an artifact with an empty path: 400 [error bad_request]" jerr bad_request
  check "an artifact with an empty path: 400 [artifact path : it is empty]" says 'artifact path \"\": it is empty'
  check "an artifact with an empty step: 400" [ "$(api GET "/jobs/$id/artifacts//f.txt")" = 400 ]
  check "an artifact with an empty step: 400 [expected a step name]" says 'expected a step name'
  check "an artifact with a step of 200 bytes: 400" [ "$(api GET "/jobs/$id/artifacts/$(printf 's%.0s' $(seq 1 200))/f.txt")" = 400 ]
  check "an artifact with a step of 200 bytes: 400 [at most 64 bytes]" says 'at most 64 bytes'
}

case_refusals() {
  start refusals 'timeout_ms: 5000'
  local busy=$'pipeline: one\nexecutor: process\nconcurrency: 1\nqueue: {limit: 0}\nsteps:\n  - {name: a, run: sleep 4}\n'
  check "busy: the first runs" [ "$(api POST /jobs -H 'Content-Type: application/yaml' --data-binary "$busy")" = 201 ]
  check "busy: the second is 409" [ "$(api POST /jobs -H 'Content-Type: application/yaml' --data-binary "$busy")" = 409 ]
  check "busy: the second is 409 [error busy]" jerr busy
  local full=$'pipeline: full\nexecutor: process\nconcurrency: 1\nqueue: {limit: 1}\nsteps:\n  - {name: a, run: sleep 4}\n'
  api POST /jobs -H 'Content-Type: application/yaml' --data-binary "$full" > /dev/null
  api POST /jobs -H 'Content-Type: application/yaml' --data-binary "$full" > /dev/null
  hdr -H 'Content-Type: application/yaml' --data-binary "$full" "$url/jobs" > "$tmp/head"
  check "queue_full: 429" grep -q '^HTTP/1.1 429' "$tmp/head"
  check "queue_full: 429 [error queue_full]" jerr queue_full
  check "queue_full: Retry-After" grep -q '^Retry-After: 5$' "$tmp/head"
}

case_unknown_outcome() {
  start outcome 'timeout_ms: 1000'
  local spec='{"pipeline":"late","executor":"process","steps":[{"name":"a","run":"true"}]}'
  check "the broker answers" [ "$(api GET /runners)" = 200 ]
  kill -STOP "$broker_pid"
  check "a submit the broker does not answer: 503" [ "$(api POST /jobs -H 'Content-Type: application/json' -H 'Idempotency-Key: late-1' -d "$spec")" = 503 ]
  check "a submit the broker does not answer: 503 [error unavailable]" jerr unavailable
  check "... outcome unknown: retry with the same key" says "outcome unknown"
  check "... outcome unknown: retry with the same key [retry with the same Idempotency-Key]" says "retry with the same Idempotency-Key"
  local id
  id=$(sed -n 's/.*(as \([0-9A-Z]*\)).*/\1/p' "$tmp/body")
  # a request right after: 503, its message of the earlier one's wait,
  # not its own (before: "no answer ... within 1000 ms" to a request that
  # waited for nothing); on a slow machine the gateway's own retry (from
  # 250 ms on, 1 s at most) may have failed first: its message then
  check "a request right after: 503" [ "$(api GET /runners)" = 503 ]
  check "a request right after: 503 [error unavailable]" jerr unavailable
  echo "  $(jget 'd["error"]["message"]')"
  if says 'an earlier request to the broker failed'; then
    check "... saying an earlier request failed and the broker is taken as down" says 'an earlier request to the broker failed (no answer from the broker at'
    check "... saying an earlier request failed and the broker is taken as down [within 1000 ms]" says 'within 1000 ms'
    check "... saying an earlier request failed and the broker is taken as down [; the broker is taken as down until it answers]" says '; the broker is taken as down until it answers'
  elif says 'cannot reach the broker at'; then   # its retry's connect saw no handshake
    check "... or the gateway's retry's own: cannot reach the broker" \
      says 'is evrun-broker running'
  else
    check "... or the gateway's retry's own: no answer from the broker" \
      says 'no answer from the broker at'
  fi
  kill -CONT "$broker_pid"
  local st=
  for _ in $(seq 1 50); do
    st=$(api POST /jobs -H 'Content-Type: application/json' -H 'Idempotency-Key: late-1' -d "$spec")
    [ "$st" = 503 ] || break
    sleep 0.2
  done
  check "the same key again: the job the broker took, once" [ "$(jget 'd["existing"]')" = True ]
  check "the same key again: the job the broker took, once [(jget d[id]) = id]" [ "$(jget 'd["id"]')" = "$id" ]
  check "... answered 200 (nothing new)" [ "$st" = 200 ]
  # no key: the advice is to look at the job first, not to retry with
  # a key it never had (before: "retry with the same Idempotency-Key
  # (this one had none)")
  kill -STOP "$broker_pid"
  check "no key, no answer: 503" [ "$(api POST /jobs -H 'Content-Type: application/json' -d "$spec")" = 503 ]
  id=$(sed -n 's/.*(as \([0-9A-Z]*\)).*/\1/p' "$tmp/body")
  check "... outcome unknown: see GET /jobs/ID before submitting again" bash -c "grep -qF 'outcome unknown' '$tmp/body' \
    && grep -qF 'see GET /api/v1/jobs/$id before submitting it again' '$tmp/body' \
    && grep -qF 'send an Idempotency-Key next time' '$tmp/body' && ! grep -qF 'retry with the same' '$tmp/body'"
  kill -CONT "$broker_pid"
  # the broker gone and known down by the gateway's watch: 503 at once,
  # nothing sent, so not "outcome unknown" (a submit tried but not sent
  # is the unit test test_client test_unsent's)
  kill -KILL "$broker_pid"
  wait "$broker_pid" 2>/dev/null
  check "the broker gone: 503" [ "$(api POST /jobs -H 'Content-Type: application/json' -H 'Idempotency-Key: late-2' -d "$spec")" = 503 ]
  check "... not 'outcome unknown' (nothing went out)" bash -c "! grep -qF 'outcome unknown' '$tmp/body'"
}

case_utf8() {
  start utf8 'timeout_ms: 5000'
  check "a job printing bytes that are no UTF-8: 201" [ "$(api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"raw","executor":"process","steps":[{"name":"a","run":"printf \"x\\377y\\n\""}]}')" = 201 ]
  local id
  id=$(jget 'd["id"]')
  check "it succeeds" [ "$(api_wait "$id")" = succeeded ]
  check "the text log: 200" [ "$(api GET "/jobs/$id/log")" = 200 ]
  check "... the byte is U+FFFD" [ "$(cat "$tmp/body")" = "a | x"$'\xef\xbf\xbd'"y" ]
  curl -s -N -H "Authorization: Bearer $W" -H "Accept: text/event-stream" "$url/jobs/$id/log" > "$tmp/sse"
  check "the live log keeps the bytes (base64)" grep -qF '"bytes":{"base64":"eP95Cg=="}' "$tmp/sse"
  # a line past 64 KiB is printed in pieces cut between characters: the
  # euro sign at bytes 65535..65537 goes whole into the second piece
  # (before: its first byte ended the first piece, and the text log had
  # U+FFFD on both sides of the break)
  local long='{"pipeline":"long","executor":"process","steps":[{"name":"a","run":"head -c 65535 /dev/zero | tr \"\\\\0\" a; printf \"\\342\\202\\254z\\n\""}]}'
  check "a job printing a 64 KiB line: 201" [ "$(api POST /jobs -H 'Content-Type: application/json' -d "$long")" = 201 ]
  id=$(jget 'd["id"]')
  check "it succeeds" [ "$(api_wait "$id")" = succeeded ]
  check "the text log: 200" [ "$(api GET "/jobs/$id/log")" = 200 ]
  check "... the character whole after the break" bash -c "[ \"\$(tail -n 1 '$tmp/body')\" = 'a | '$'\\xe2\\x82\\xac''z' ] && [ \$(head -n 1 '$tmp/body' | wc -c) = 65540 ]"
}

case_checks() {
  start checks 'timeout_ms: 5000'
  local spec='{"pipeline":"chk","executor":"process","steps":[{"name":"a","run":"echo hi"},{"name":"b","matrix":{"OS":["x"]},"run":"true"}]}'
  check "a job: 201" [ "$(api POST /jobs -H 'Content-Type: application/json' -d "$spec")" = 201 ]
  local id
  id=$(jget 'd["id"]')
  check "it succeeds" [ "$(api_wait "$id")" = succeeded ]
  # ?step= of no step of the job: 404 naming its steps, as evrun-cli logs --step
  check "log ?step=zz: 404" [ "$(api GET "/jobs/$id/log?step=zz")" = 404 ]
  check "log ?step=zz: 404 [error not_found]" jerr not_found
  check "... naming the job's steps" says 'has no step \"zz\" (names are case-sensitive); its steps: a, b[OS=x]'
  check "... as evrun-cli logs --step says" bash -c "\"$bin/evrun-cli\" logs --step zz $id 2>&1 | grep -qF 'its steps: a, b[OS=x]'"
  check "live log ?step=zz: 404 too" [ "$(api GET "/jobs/$id/log?step=zz" -H 'Accept: text/event-stream')" = 404 ]
  check "log ?step=a: 200" [ "$(api GET "/jobs/$id/log?step=a")" = 200 ]
  # Accept: media types case-insensitive; q=0 is "not this one" (before:
  # a case-sensitive substring, so Text/Event-Stream got text/plain)
  ctype() { curl -s -o /dev/null -w '%{content_type}' -H "Authorization: Bearer $W" -H "Accept: $1" "$url/jobs/$id/log"; }
  check "Accept: Text/Event-Stream: SSE" [ "$(ctype 'Text/Event-Stream')" = text/event-stream ]
  check "Accept: text/plain, TEXT/EVENT-STREAM;q=0.5: SSE" [ "$(ctype 'text/plain, TEXT/EVENT-STREAM;q=0.5')" = text/event-stream ]
  check "Accept: text/event-stream;q=0: text" [ "$(ctype 'text/event-stream;q=0, text/plain')" = "text/plain; charset=utf-8" ]
  check "Accept: text/event-stream; q=0.000: text" [ "$(ctype 'text/event-stream; q=0.000')" = "text/plain; charset=utf-8" ]
  check "Accept: text/event-streams: text" [ "$(ctype 'text/event-streams')" = "text/plain; charset=utf-8" ]
  # query parameters: a value always, once
  check "?limit with no '=': 400" [ "$(api GET '/jobs?limit')" = 400 ]
  check "?limit with no '=': 400 [query parameter limit has no value]" says "query parameter limit has no value"
  check "?limit=: 400" [ "$(api GET '/jobs?limit=')" = 400 ]
  check "?limit twice: 400" [ "$(api GET '/jobs?limit=1&limit=2')" = 400 ]
  check "?limit twice: 400 [query parameter limit is given twice]" says "query parameter limit is given twice"
  check "?step twice: 400" [ "$(api GET "/jobs/$id/log?step=a&step=b")" = 400 ]
  # an arg value: 4096 bytes at most (413 naming it); ?arg= over the body's args (README, openapi)
  local argspec='{"pipeline":"av","executor":"process","args":{"A":{}},"steps":[{"name":"a","run":"echo $A"}]}'
  check "an arg of 4097 bytes: 413 naming submit.args.A" [ "$(api POST "/jobs?arg=A=$(head -c 4097 /dev/zero | tr '\0' a)" -H 'Content-Type: application/json' -d "$argspec")" = 413 ]
  check "an arg of 4097 bytes: 413 naming submit.args.A [error too_large]" jerr too_large
  check "an arg of 4097 bytes: 413 naming submit.args.A [submit.args.A: string of 4097 bytes exceeds t...]" says 'submit.args.A: string of 4097 bytes exceeds the limit of 4096'
  check "an arg of 4096 bytes: 201" [ "$(api POST "/jobs?arg=A=$(head -c 4096 /dev/zero | tr '\0' a)" -H 'Content-Type: application/json' -d "$argspec")" = 201 ]
  check "a JSON spec whose bytes are no UTF-8: 400 at the byte" [ "$(api POST /jobs -H 'Content-Type: application/json' --data-binary $'{"pipeline":"u\xff"}')" = 400 ]
  check "a JSON spec whose bytes are no UTF-8: 400 at the byte [(JSON must be UTF-8)]" says '(JSON must be UTF-8)'
  check "a YAML spec whose bytes are no UTF-8: 400 at the byte" [ "$(api POST /jobs -H 'Content-Type: application/yaml' --data-binary $'pipeline: u\xff\n')" = 400 ]
  check "a YAML spec whose bytes are no UTF-8: 400 at the byte [error bad_pipeline]" jerr bad_pipeline
  check "a YAML spec whose bytes are no UTF-8: 400 at the byte [body:1:12: YAML syntax error]" says 'body:1:12: YAML syntax error'
  check "a malformed job id: 404" [ "$(api GET /jobs/01ABC)" = 404 ]
  check "a malformed job id: 404 [error not_found]" jerr not_found
  check "a malformed job id: 404 [the id is no job id]" says 'the id is no job id'
  check "?arg twice: taken (it repeats)" [ "$(api POST '/jobs?arg=A=1&arg=B=2' -H 'Content-Type: application/json' -d '{"pipeline":"ab","executor":"process","args":{"A":{},"B":{}},"steps":[{"name":"a","run":"true"}]}')" = 201 ]
  check "?pipeline= of 65 bytes: 400 naming the limit" [ "$(api GET "/jobs?pipeline=$(printf 'p%.0s' $(seq 1 65))")" = 400 ]
  check "?pipeline= of 65 bytes: 400 naming the limit [pipeline: at most 64 bytes]" says "pipeline: at most 64 bytes"
  check "?pipeline= of 64 bytes: 200" [ "$(api GET "/jobs?pipeline=$(printf 'p%.0s' $(seq 1 64))")" = 200 ]
  api GET '/jobs?limit=1' > /dev/null
  local cur
  cur=$(jget 'd["next_cursor"]' | tr A-Z a-z)
  check "?cursor= in lower case: 200, as /jobs/{id} takes it" [ "$(api GET "/jobs?limit=1&cursor=$cur")" = 200 ]
  # bodies: a pipeline over 1 MiB is 413
  { printf '{"pipeline":"big","executor":"process","steps":[{"name":"a","run":"true"}],"x":"'; head -c 2000000 /dev/zero | tr '\0' x; printf '"}'; } > "$tmp/big.json"
  check "a 2 MB pipeline: 413" [ "$(api POST /jobs -H 'Content-Type: application/json' --data-binary @"$tmp/big.json")" = 413 ]
  check "a 2 MB pipeline: 413 [error too_large]" jerr too_large
  check "a 2 MB pipeline: 413 [1 MiB]" says "1 MiB"
  # cancel: its body is JSON with reason only
  api POST /jobs -H 'Content-Type: application/json' -d '{"pipeline":"slow","executor":"process","steps":[{"name":"a","run":"sleep 30"}]}' > /dev/null
  local slow
  slow=$(jget 'd["id"]')
  check "cancel with an unknown key: 400" [ "$(api POST "/jobs/$slow/cancel" -H 'Content-Type: application/json' -d '{"reason":"x","reson":"y"}')" = 400 ]
  check "cancel with an unknown key: 400 [unknown key reson]" says 'unknown key \"reson\"'
  check "cancel as text/plain: 415" [ "$(api POST "/jobs/$slow/cancel" -H 'Content-Type: text/plain' -d 'stop')" = 415 ]
  check "cancel as text/plain: 415 [error unsupported_media_type]" jerr unsupported_media_type
  # pause and resume take no reason: refused, not dropped unsaid (before: 200)
  check "pause with a reason: 400" [ "$(api POST "/jobs/$slow/pause" -H 'Content-Type: application/json' -d '{"reason":"x"}')" = 400 ]
  check "... saying only a cancel records one" grep -qF 'a pause takes none; only a cancel records a reason' "$tmp/body"
  check "resume with a reason: 400" [ "$(api POST "/jobs/$slow/resume" -H 'Content-Type: application/json' -d '{"reason":"x"}')" = 400 ]
  check "pause as text/plain: 415" [ "$(api POST "/jobs/$slow/pause" -H 'Content-Type: text/plain' -d 'x')" = 415 ]
  check "pause with {}: 200" [ "$(api POST "/jobs/$slow/pause" -H 'Content-Type: application/json' -d '{}')" = 200 ]
  check "resume with no body: 200" [ "$(api POST "/jobs/$slow/resume")" = 200 ]
  check "cancel with a reason: 200" [ "$(api POST "/jobs/$slow/cancel" -H 'Content-Type: application/json' -d '{"reason":"done"}')" = 200 ]
}

# post_hook NAME TOKEN: POST /hooks/NAME with its token; the head (status line,
# headers) on stdout, the body in $tmp/body
post_hook() { curl -s -D - -o "$tmp/body" -X POST -H "X-Evrun-Token: $2" "${url%/api/v1}/hooks/$1" | tr -d '\r'; }
# github_sha DELIVERY SHA: a signed push of commit SHA to main on
# /hooks/github; the head (status line, headers) on stdout, the body in $tmp/body
github_sha() {
  printf '{"ref":"refs/heads/main","after":"%s","repository":{"clone_url":"https://example.org/r.git","full_name":"o/r","default_branch":"main"}}' "$2" > "$tmp/push.json"
  local sig
  sig=$(python3 -c 'import hmac,hashlib,sys; print("sha256=" + hmac.new(open(sys.argv[1],"rb").read().strip(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$tmp/gateway/webhook.secret" "$tmp/push.json")
  curl -s -D - -o "$tmp/body" -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: $1" -H "X-Hub-Signature-256: $sig" \
    -H 'Content-Type: application/json' --data-binary @"$tmp/push.json" "${url%/api/v1}/hooks/github" | tr -d '\r'
}
# github_push DELIVERY: github_sha of commit 00...01
github_push() { github_sha "$1" "$(printf '%040d' 1)"; }

case_hook_refusals() {
  fresh hookref
  mkdir -m 0700 "$tmp/pipelines"
  printf 'pipeline: one\nexecutor: process\nconcurrency: 1\nqueue: {limit: 0}\nsteps:\n  - {name: a, run: sleep 3}\n' > "$tmp/pipelines/one.yml"
  printf 'pipeline: full\nexecutor: process\nconcurrency: 1\nqueue: {limit: 1}\non: {github: {events: [push]}}\nsteps:\n  - {name: a, run: sleep 3}\n' > "$tmp/pipelines/full.yml"
  bus_broker && bus_runner api-1 "" 4 --executors process && bus_wait_runners 1 && gateway
  local one full
  one=$(cli hook-token one) full=$(cli hook-token full)
  check "hook: the first job of a pipeline with no wait list: 202" grep -q '^HTTP/1.1 202' <(post_hook one "$one")
  post_hook one "$one" > "$tmp/head"
  check "hook: the second is 409 busy" grep -q '^HTTP/1.1 409' "$tmp/head"
  check "hook: the second is 409 busy [error busy]" jerr busy
  check "... with no Retry-After" not_in '^Retry-After' "$tmp/head"
  post_hook full "$full" > /dev/null
  post_hook full "$full" > /dev/null
  post_hook full "$full" > "$tmp/head"
  check "hook: its wait list full: 429 queue_full" grep -q '^HTTP/1.1 429' "$tmp/head"
  check "hook: its wait list full: 429 queue_full [error queue_full]" jerr queue_full
  check "... with Retry-After, as POST /api/v1/jobs" grep -qx 'Retry-After: 5' "$tmp/head"
  github_push d-1 > "$tmp/head"
  check "github: every start refused: the refusal's 429" grep -q '^HTTP/1.1 429' "$tmp/head"
  check "github: every start refused: the refusal's 429 [error queue_full]" jerr queue_full
  check "... with Retry-After" grep -qx 'Retry-After: 5' "$tmp/head"
}

case_hook_checks() {
  fresh hookchk
  mkdir -m 0700 "$tmp/pipelines"
  printf 'pipeline: man\nexecutor: process\nargs: {WHO: {default: x}}\nsteps:\n  - {name: a, run: echo $WHO}\n' > "$tmp/pipelines/man.yml"
  printf 'pipeline: gh\nexecutor: process\non: {github: {events: [push]}}\nsteps:\n  - {name: a, run: "true"}\n' > "$tmp/pipelines/gh.yml"
  bus_broker && bus_runner api-1 "" 4 --executors process && bus_wait_runners 1 && gateway
  local t hk=${url%/api/v1}/hooks
  t=$(cli hook-token man)
  # both token headers: 400, whichever is right (before: Authorization
  # counted and a wrong X-Evrun-Token passed unseen)
  check "hook, Authorization and X-Evrun-Token: 400" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $t" -H 'X-Evrun-Token: wrong' -X POST "$hk/man")" = 400 ]
  check "hook, Authorization and X-Evrun-Token: 400 [error bad_request]" jerr bad_request
  check "... saying to send one" says 'both Authorization: Bearer and X-Evrun-Token: send the hook token in one of them'
  # another scheme's Authorization (a proxy's) is no token: X-Evrun-Token counts
  check "hook, Authorization: Basic and the right X-Evrun-Token: 202" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Authorization: Basic cHJveHk6cHc=' -H "X-Evrun-Token: $t" -X POST "$hk/man")" = 202 ]
  check "hook, X-Evrun-Token twice: 400" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "X-Evrun-Token: $t" -H "X-Evrun-Token: $t" -X POST "$hk/man")" = 400 ]
  check "hook, X-Evrun-Token twice: 400 [2 X-Evrun-Token headers: send one]" says '2 X-Evrun-Token headers: send one'
  # a spec sent to a hook: say what a hook takes and where a spec goes (before: "bad body")
  check "hook, a body with steps: 400" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "X-Evrun-Token: $t" -H 'Content-Type: application/json' -d '{"steps":[{"name":"a","run":"true"}]}' "$hk/man")" = 400 ]
  check "hook, a body with steps: 400 [error bad_request]" jerr bad_request
  check "... saying a hook takes no spec, and where one goes" says 'takes no pipeline spec (steps)'
  check "... saying a hook takes no spec, and where one goes [POST it to /api/v1/jobs]" says 'POST it to /api/v1/jobs'
  check "hook with its token: 202, no note" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "X-Evrun-Token: $t" -X POST "$hk/man")" = 202 ]
  check "hook with its token: 202, no note [(jget note in d[jobs][0]) = False]" [ "$(jget '"note" in d["jobs"][0]')" = False ]
  # a token file others can read: 401 to the caller, why (its path, its
  # mode) in the gateway's log only (before: in the answer, to anyone)
  chmod 644 "$tmp/gateway/hooks/man.token"
  check "hook, its token file readable by others: 401" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "X-Evrun-Token: $t" -X POST "$hk/man")" = 401 ]
  check "... saying the gateway's log says why" says "cannot be read (the gateway's log says why)"
  check "... naming no path" bash -c "! grep -qF '$tmp' '$tmp/body'"
  check "... the log names the file and its mode" grep -q "man.token can be read by others (mode 644)" "$gw_log"
  chmod 600 "$tmp/gateway/hooks/man.token"
  # a start by name with an arg in both the query and the body: the query's wins (README)
  check "a start, ?arg=WHO=q and body args WHO=b: 201" [ "$(api POST '/jobs?arg=WHO=q' -H 'Content-Type: application/json' -d '{"pipeline":"man","args":{"WHO":"b"}}')" = 201 ]
  local sid
  sid=$(jget 'd["id"]')
  check "... it succeeds" [ "$(api_wait "$sid")" = succeeded ]
  check "... with the query's value" bash -c "[ \"\$(curl -s -H 'Authorization: Bearer $W' '$url/jobs/$sid/log')\" = 'a | q' ]"
  # a pipeline whose file now has errors: started from its last good
  # version, with the broker's note (as POST /api/v1/jobs starting it by name)
  printf 'pipeline: man\nexecutor: process\nsteps: [\n' > "$tmp/pipelines/man.yml"
  for _ in $(seq 1 50); do
    api GET /pipelines > /dev/null
    [ "$(jget '[p.get("load_error") is not None for p in d["pipelines"] if p["name"] == "man"]')" = "[True]" ] && break
    sleep 0.1
  done
  check "hook of a pipeline whose file has errors: 202" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H "X-Evrun-Token: $t" -X POST "$hk/man")" = 202 ]
  check "... with the broker's note" bash -c "python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))[\"jobs\"][0][\"note\"]; sys.exit(not (\"man.yml\" in n and \"errors\" in n))' '$tmp/body'"
  # GitHub: a delivery id again with another, validly signed body: the
  # first body's job, and no source (it would name a commit the job does
  # not run; before: this body's)
  github_sha d-1 "$(printf '%040d' 1)" > "$tmp/head"
  check "github: a push: 202 with its source" grep -q '^HTTP/1.1 202' "$tmp/head"
  check "github: a push: 202 with its source [(jget d[source][ref]) = (printf %040d 1)]" [ "$(jget 'd["source"]["ref"]')" = "$(printf '%040d' 1)" ]
  local id
  id=$(jget 'd["jobs"][0]["id"]')
  github_sha d-1 "$(printf '%040d' 2)" > "$tmp/head"
  check "github: the same delivery, another commit: 202, the first job" grep -q '^HTTP/1.1 202' "$tmp/head"
  check "github: the same delivery, another commit: 202, the first job [(jget d[jobs][0][id] + str(d[jobs][0][existin...]" [ "$(jget 'd["jobs"][0]["id"] + str(d["jobs"][0]["existing"])')" = "${id}True" ]
  check "... and no source" [ "$(jget '"source" in d')" = False ]
  # GitHub's headers once each (which one would count?)
  check "github: X-GitHub-Event twice: 400" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'X-GitHub-Event: push' -H 'X-GitHub-Event: ping' -H 'X-Hub-Signature-256: sha256=00' -d '{}' "$hk/github")" = 400 ]
  check "github: X-GitHub-Event twice: 400 [2 X-GitHub-Event headers: send one]" says '2 X-GitHub-Event headers: send one'
  check "github: X-Hub-Signature-256 twice: 400" [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'X-GitHub-Event: ping' -H 'X-Hub-Signature-256: sha256=00' -H 'X-Hub-Signature-256: sha256=01' -d '{}' "$hk/github")" = 400 ]
  check "github: X-Hub-Signature-256 twice: 400 [2 X-Hub-Signature-256 headers: send one]" says '2 X-Hub-Signature-256 headers: send one'
}

# github_post EVENT FILE: FILE signed, as GitHub's EVENT, on /hooks/github;
# the head on stdout, the body in $tmp/body
github_post() {
  local sig
  sig=$(python3 -c 'import hmac,hashlib,sys; print("sha256=" + hmac.new(open(sys.argv[1],"rb").read().strip(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$tmp/gateway/webhook.secret" "$2")
  curl -s -D - -o "$tmp/body" -H "X-GitHub-Event: $1" -H "X-Hub-Signature-256: $sig" \
    -H 'Content-Type: application/json' --data-binary @"$2" "${url%/api/v1}/hooks/github" | tr -d '\r'
}

# a GitHub delivery that starts nothing says why in its message, whatever
# bytes it quotes, and one whose body is no JSON object is 400 (ping too) (before: an event name that is no UTF-8, or an action or
# tag cut between the bytes of a character, made no JSON: 200 with
# {"error": {"code": "internal", "message": "no answer"}})
case_hook_text() {
  fresh hooktext
  gateway
  local a63 e=$'\xc3\xa9'
  a63=$(printf 'a%.0s' $(seq 1 63))
  printf '{}' > "$tmp/empty.json"
  github_post $'\xff\xfe' "$tmp/empty.json" > "$tmp/head"
  check "github: an event name of bytes that are no UTF-8: 200" grep -q '^HTTP/1.1 200' "$tmp/head"
  check "... saying it is not handled, its bytes quoted" says 'event \"\\xFF\\xFE\" is not handled'
  github_post "$a63$e" "$tmp/empty.json" > "$tmp/head"
  check "github: an event name cut inside a character: 200" grep -q '^HTTP/1.1 200' "$tmp/head"
  check "... saying it is not handled" says 'is not handled (push, pull_request and workflow_job are)'
  printf '{"action":"%s%s"}' "$a63" "$e" > "$tmp/pr.json"
  github_post pull_request "$tmp/pr.json" > "$tmp/head"
  check "github: a pull_request action cut inside a character: 200" grep -q '^HTTP/1.1 200' "$tmp/head"
  check "... saying it starts nothing" says 'starts nothing (opened, synchronize and reopened do)'
  printf '{"ref":"refs/tags/%s%s%s"}' "$(printf 'a%.0s' $(seq 1 189))" "$e" "$e" > "$tmp/tag.json"
  github_post push "$tmp/tag.json" > "$tmp/head"
  check "github: a tag push cut inside a character: 200" grep -q '^HTTP/1.1 200' "$tmp/head"
  check "... saying it starts nothing" says '(not a branch) starts nothing'
  # a body that is no JSON object: 400 whatever the event (README; before:
  # ping and an event not handled answered 200 for any body)
  printf '[1]' > "$tmp/array.json"
  : > "$tmp/none.json"
  printf 'payload=%%7B%%7D' > "$tmp/form.json"
  local ev f
  for ev in ping issues; do
    for f in array none form; do
      github_post $ev "$tmp/$f.json" > "$tmp/head"
      check "github: $ev with a body $f: 400" grep -q '^HTTP/1.1 400' "$tmp/head"
      check "github: $ev with a body $f: 400 [error bad_request]" jerr bad_request
    done
  done
  check "... a form told to set the content type" says 'set the webhook'"'"'s content type to application/json'
  github_post ping "$tmp/empty.json" > "$tmp/head"
  check "github: ping with {}: 200 pong" grep -q '^HTTP/1.1 200' "$tmp/head"
  check "github: ping with {}: 200 pong [pong]" says pong
}

# a pipeline file whose name is no UTF-8 (or holds a newline) in the
# broker's pipelines_dir: skipped and said, its bytes quoted (before: every
# `pipelines` answer was malformed: GET /pipelines and each GitHub delivery
# 503, evrun_broker_up 0 for good, and the newline forged a log line)
case_pipeline_file_name() {
  fresh plname
  mkdir -m 0700 "$tmp/pipelines"
  printf 'pipeline: gh\nexecutor: process\non: {github: {events: [push]}}\nsteps:\n  - {name: a, run: "true"}\n' > "$tmp/pipelines/gh.yml"
  printf 'pipeline: [\n' > "$tmp/pipelines/"$'b\xff.yml'
  printf 'pipeline: [\n' > "$tmp/pipelines/"$'n\nforged.yml'
  bus_broker && gateway
  check "GET /pipelines: 200" [ "$(api GET /pipelines)" = 200 ]
  check "... gh alone" [ "$(jget '[p["name"] for p in d["pipelines"]]')" = "['gh']" ]
  github_push d-name > "$tmp/head"
  check "github: a push: 202" grep -q '^HTTP/1.1 202' "$tmp/head"
  metrics > /dev/null
  check "metrics: the broker is up" grep -qx 'evrun_broker_up 1' "$tmp/metrics"
  check "the broker says the file is skipped, its bytes quoted" grep -qF 'file "b\xFF.yml" skipped' "$tmp/broker.log"
  check "... the newline too: no forged line" grep -qF 'file "n\x0Aforged.yml" skipped' "$tmp/broker.log"
  check "... no line starts with the name's rest" not_in '^forged' "$tmp/broker.log"
}

# metrics [CURL-ARGS...]: GET /metrics into $tmp/metrics (or $mout); prints "STATUS SECONDS"
metrics() { curl -s -o "${mout:-$tmp/metrics}" -w '%{http_code} %{time_total}\n' "$@" "${url%/api/v1}/metrics"; }
prom() { python3 "$src/tests/support/prom_check.py" "$tmp/metrics" "$@"; }
not_in() { ! grep -qE -- "$1" "$2"; }   # REGEX FILE
below() { awk -v s="${1#* }" -v m="$2" 'BEGIN {exit !(s + 0 < m)}'; }   # "STATUS SECS" MAX

case_metrics_hung() {
  start hung 'timeout_ms: 10000'
  check "metrics: the broker answers" [ "$(metrics | cut -d' ' -f1)" = 200 ]
  check "metrics: the broker answers [prom evrun_broker_up=1]" prom 'evrun_broker_up=1'
  kill -STOP "$broker_pid"
  sleep 5.2   # the state asked at most every 5 s: the next scrape asks
  local a b c
  mout=$tmp/metrics-a metrics > "$tmp/a" &
  local pa=$!
  sleep 0.3
  b=$(metrics)
  check "metrics while another scrape asks the hung broker: not held ($b)" below "$b" 1
  wait "$pa"
  a=$(cat "$tmp/a")
  # its deadline is 2 s, the gateway's timeout_ms 10 s: 5 tells them apart under load
  check "metrics asking a hung broker: answered by its 2 s deadline, not timeout_ms ($a)" below "$a" 5
  mv "$tmp/metrics-a" "$tmp/metrics"
  check "... evrun_broker_up 0" prom 'evrun_broker_up=0'
  c=$(metrics)
  check "... and so for the scrapes after it ($c)" below "$c" 1
  check "... and so for the scrapes after it ($c) [prom evrun_broker_up=0]" prom 'evrun_broker_up=0'
  kill -CONT "$broker_pid"
}

case_metrics_bounds() {
  fresh bounds
  mkdir -p "$tmp/fake"
  printf 'client_endpoint: ipc://%s/fake/c\nevents_endpoint: ipc://%s/fake/p\n' "$tmp" "$tmp" > "$tmp/gw.yml"
  /usr/bin/python3 "$src/tests/integration/metrics_broker.py" "ipc://$tmp/fake/c" "ipc://$tmp/fake/p" "$tmp/fake" > "$tmp/fake.out" 2>&1 &
  bus_pids+=("$!")
  gateway --config "$tmp/gw.yml"
  for _ in $(seq 1 50); do
    metrics > /dev/null
    prom 'evrun_jobs_finished_total{pipeline="_other",status="succeeded"}=44' 2> /dev/null && break
    sleep 0.2
  done
  check "metrics: the text format's rules (no series twice)" prom
  check "metrics: 256 pipelines queued have labels of their own" prom \
    'evrun_jobs{pipeline="p000",status="queued"}=1' 'evrun_jobs{pipeline="p255",status="queued"}=1'
  check "... the other 44 count as _other" prom 'evrun_jobs{pipeline="_other",status="queued"}=44'
  check "... none past the bound has one" not_in 'pipeline="p(25[6-9]|2[6-9][0-9])"' "$tmp/metrics"
  check "metrics: jobs finished, 256 pipelines by label, the rest _other" prom \
    'evrun_jobs_finished_total{pipeline="p255",status="succeeded"}=1' \
    'evrun_jobs_finished_total{pipeline="_other",status="succeeded"}=44'
  check "metrics: a second file of a registered name: the registered one's series, once" \
    prom 'evrun_pipeline_waiting{pipeline="dup"}=2' 'evrun_pipeline_running{pipeline="dup"}=1'
  touch "$tmp/fake/stop"
}

bus_script_cases "matrix refusals unknown_outcome utf8 checks hook_refusals hook_checks hook_text pipeline_file_name metrics_hung metrics_bounds" "$@"
bus_script_end

# gw_lib.sh: sourced by the gateway tests after bus_lib.sh.  Starts
# evrun-gateway on a free loopback port of the state directory $tmp and
# talks to it with curl as a client of the HTTP API would.
#
#   gateway [ARGS...]             start it (its pid in $gw_pid, added to bus_pids;
#                                 its log $gw_log); sets $url, $W (a write token), $R (read)
#   api METHOD PATH [CURL-ARGS...]  the status; the body in $tmp/body
#   jget EXPR                     a value of the JSON in $tmp/body (d is the document)
#   api_wait ID                   wait until the job ended; prints its status
#   sse_events FILE               "ID TYPE OUTPUT" of each whole event of an SSE capture

# gateway [ARGS...]: starts evrun-gateway on a free port; sets $url, $W
# (a write token) and $R (a read token)
gw_n=0
gateway() {
  local log=$tmp/gateway-$((gw_n += 1)).log
  gw_log=$log
  "$bin/evrun-gateway" --state-dir "$tmp" --listen 127.0.0.1:0 "$@" >> "$log" 2>&1 &
  gw_pid=$!
  bus_pids+=("$gw_pid")
  url=
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^evrun-gateway: listening on \([^ ]*\).*/\1/p' "$log")
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || { echo "gateway: not listening; log:" >&2; tail "$log" >&2; return 1; }
  W=$(cli token) R=$(cli token --read-only)
}

# api METHOD PATH [CURL-ARGS...]: the status; the body in $tmp/body
api() {
  local m=$1 p=$2; shift 2
  curl -s -o "$tmp/body" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $W" "$@" "$url$p"
}

# jget EXPR: a value of the JSON in $tmp/body (d is the document)
jget() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$tmp/body" "$1"
}

# api_wait ID: waits until the job ended; prints its status
api_wait() {
  local st
  for _ in $(seq 1 600); do
    api GET "/jobs/$1" > /dev/null
    st=$(jget 'd["status"]')
    case $st in succeeded|failed|cancelled|timed_out|lost) echo "$st"; return 0 ;; esac
    sleep 0.1
  done
  echo timeout
}

# sse_events FILE: "ID DATA-TYPE" of each whole event of an SSE capture
# (one cut in the middle is left out, as a browser would)
sse_events() {
  python3 - "$1" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
blocks = text.split("\n\n")
if not text.endswith("\n\n"):
    blocks = blocks[:-1]
for b in blocks:
    eid, data = None, None
    for line in b.split("\n"):
        if line.startswith("id: "): eid = line[4:]
        if line.startswith("data: "): data = json.loads(line[6:])
    if eid is not None and data is not None:
        out = data["data"].get("bytes", "") if data["type"] == "step.output" else ""
        print(eid, data["type"], json.dumps(out))
PY
}


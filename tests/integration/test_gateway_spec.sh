#!/usr/bin/env bash
# test_gateway_spec.sh BIN_DIR SRC_DIR [CASE...]: evrun-gateway against its
# spec (schema/openapi.yaml, README "HTTP gateway"), checked by gw_spec.py,
# a client written from the spec alone: every route's answer (status,
# Content-Type, JSON fields and types) and the documented error of bad
# requests (tokens, methods, HEAD, paths, bodies, types, sizes, query
# arguments, ids, path tricks, slow clients).  A real broker, a runner
# with the process executor (no podman) and a gateway on loopback.
# CASE: gw_spec.py's cases (auth methods submit list job run
# runners_pipelines demand hooks metrics_ui wire edge ows hosts token_header
# signatures cors hook_head arg_names mhd_own broker_gone: the last, it
# stops the broker); default all.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/bus_lib.sh"
bus_script_init gws
case_name=spec

fresh spec
mkdir -m 0700 "$tmp/pipelines"
cat > "$tmp/pipelines/spec-art.yml" <<'YML'
pipeline: spec-art
executor: process
args:
  WHO: {default: world}
steps:
  - name: make
    run: mkdir -p out && echo "hello, $WHO" > out/a.txt && cat out/a.txt && head -c 8000000 /dev/zero > out/big.bin
    artifacts: [out]
YML
cat > "$tmp/pipelines/spec-gh.yml" <<'YML'
pipeline: spec-gh
executor: process
on: {github: {events: [push], branches: [main]}}
steps:
  - {name: a, run: 'true'}
YML
printf 'http_request_timeout: 4\nhttp_idle_timeout: 12\ntimeout_ms: 3000\n' > "$tmp/gw.yml"
port=$(free_port)
bus_broker && bus_runner spec-1 "" 2 --executors process && bus_wait_runners 1
"$bin/evrun-gateway" --state-dir "$tmp" --listen "127.0.0.1:$port" --config "$tmp/gw.yml" \
  >> "$tmp/gateway.log" 2>&1 &
bus_pids+=("$!")
check "the gateway listens" wait_port "$port" "$!"
# a second one whose idle timeout is below timeout_ms: its live logs still
# end with event: error when the broker stops (case broker_gone); 3
# connections per address (case wire); a UI directory of its own, with a
# file over 4 MiB (case edge); Host names of its own (http_allowed_hosts, case hosts)
mkdir -m 0700 "$tmp/ui2"
echo 'let small = 1;' > "$tmp/ui2/small.js"
head -c $((4 * 1024 * 1024 + 1)) /dev/zero > "$tmp/ui2/big.js"
printf 'http_idle_timeout: 2\ntimeout_ms: 3000\nhttp_max_per_ip: 3\nui_dir: %s\n%s\n' "$tmp/ui2" \
  'http_allowed_hosts: ci.example.org, .example.net' > "$tmp/gw2.yml"
port2=$(free_port)
"$bin/evrun-gateway" --state-dir "$tmp" --listen "127.0.0.1:$port2" --config "$tmp/gw2.yml" \
  >> "$tmp/gateway2.log" 2>&1 &
bus_pids+=("$!")
check "the second gateway listens" wait_port "$port2" "$!"
# http_allowed_hosts: a value that is no list of host names is refused, naming it
allowed_bad() {
  ! "$bin/evrun-gateway" --state-dir "$tmp" --allowed-hosts "$1" --print-config \
      > /dev/null 2> "$tmp/allowed.err" && grep -q "http_allowed_hosts = .*$2" "$tmp/allowed.err"
}
for v in 'http://ci.example.org' 'ci.example.org:443' '' 'a,,b' 'a b' '.' 'a_b.example'; do
  check "http_allowed_hosts \"$v\": exit 2 naming it" allowed_bad "$v" "expected host names\|empty"
done
allowed_ok() { "$bin/evrun-gateway" --state-dir "$tmp" --allowed-hosts "$1" --print-config > /dev/null; }
check "http_allowed_hosts \"*, .example.org\": taken" allowed_ok '*, .example.org'
hook=$(cli hook-token spec-art)
check "the spec client's checks" env EVR_BROKER_PID="$broker_pid" EVR_GW2_PORT="$port2" \
  python3 "$src/tests/integration/gw_spec.py" \
  "http://127.0.0.1:$port" "$tmp" spec-art "$hook" "$@"
check "the gateways still run" kill -0 "${bus_pids[-1]}" "${bus_pids[-2]}"
bus_script_end "$tmp/*.log"

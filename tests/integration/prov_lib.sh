# prov_lib.sh: sourced by test_provisioner.sh and test_demand.sh (after
# they set bin, src and shifted them off).  A temporary root $root (each
# case a fresh state directory under it, bus_lib.sh's `fresh`), the
# provisioner and gateway helpers, and prov_run that runs the cases:
#
#   ppipe NAME CMD [LABELS]       a process pipeline file $tmp/NAME.yml
#   prov CONFIG [ARGS...]         evrun-provisioner in the background; stop_prov
#   wait_for SECS CMD...          until CMD succeeds
#   gateway_up                    evrun-gateway on a free port ($gw_url, $gw_root)
#   demand BODY [CURL ARGS...]    POST /api/v1/demand; jget EXPR reads the answer
#   gh_hook EVENT DELIVERY FILE   a signed GitHub delivery
#   pod_image                     builds the podman kind's image ($runner_image)
#   prov_run NAME CASE...         each case_CASE, then the sanitizer check
root=$(mktemp -d /tmp/evr-prov-XXXXXX)
tmp=$root
. "$src/tests/integration/bus_lib.sh"
prov_pid=
# The single-use runners the provisioners of this test started that are
# still there (idle ones wait --once-wait for a job): ended, by the pids
# their provisioner logged, each checked to be a runner of this test.
stop_provisioned() {
  local log pid pids=
  for log in "$root"/prov.log "$root"/*/prov.log; do
    [ -f "$log" ] || continue
    pids="$pids $(sed -n 's/.*: started runner .* (pid \([0-9]*\), .*/\1/p' "$log")"
  done
  for pid in $pids; do
    tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q -- "--once .*$root" \
      && kill "$pid" 2>/dev/null
  done
  for pid in $pids; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q -- "--once .*$root" \
      && kill -9 "$pid" 2>/dev/null
  done
}
# The containers of the podman providers of this test that are still
# there: removed, by the names their provisioner logged.
stop_containers() {
  local log name
  for log in "$root"/prov.log "$root"/*/prov.log; do
    [ -f "$log" ] || continue
    for name in $(sed -n 's/.*: started runner .* (container \(evrun-runner-[a-z0-9-]*\) of .*/\1/p' "$log"); do
      pod container exists "$name" 2>/dev/null && pod rm -f -t 0 "$name" > /dev/null 2>&1
    done
  done
  return 0
}
pod() { podman --remote --url "$EVRUN_PODMAN_URL" "$@"; }
stop_all() {
  [ -n "$prov_pid" ] && kill "$prov_pid" 2>/dev/null && wait "$prov_pid" 2>/dev/null
  [ -d "$root/up/run" ] && EVRUN_STATE_DIR=$root/up "$bin/evrun-cli" down > /dev/null 2>&1
  prov_pid=
  stop_provisioned
  [ -n "${EVRUN_PODMAN_URL:-}" ] && stop_containers
  bus_stop
}
trap 'stop_all; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$root"' EXIT
fails=0 passes=0 case_name=

# A process pipeline NAME whose one step runs CMD; LABELS: its labels.
ppipe() {   # NAME CMD [LABELS]
  cat > "$tmp/$1.yml" <<YML
pipeline: $1
executor: process
${3:+labels: [$3]}
steps: [ { name: s, run: "$2" } ]
YML
}

# The podman kind's image, built from this build's binaries (quick when
# it is up to date); the podman cases need the service of the "podman"
# fixture (EVRUN_PODMAN_URL), test_provisioner.sh's also its image
# localhost/evrun-busybox.
runner_image=${EVRUN_RUNNER_IMAGE:-localhost/evrun-runner:latest}
pod_image() {
  [ -n "${pod_image_built:-}" ] && return 0
  if [ -z "${EVRUN_PODMAN_URL:-}" ]; then
    echo "the podman cases need EVRUN_PODMAN_URL (the service of the podman fixture)" >&2
    return 1
  fi
  EVRUN_RUNNER_IMAGE=$runner_image "$src/tools/build-runner-image" "$bin" > "$root/image.log" 2>&1 \
    || { cat "$root/image.log" >&2; return 1; }
  pod_image_built=1
}

prov() {   # CONFIG [ARGS...]: the provisioner in the background (pid in $prov_pid)
  local conf=$1; shift
  "$bin/evrun-provisioner" --config "$conf" --poll-ms 200 --log-level debug "$@" \
    >> "$tmp/prov.log" 2>&1 &
  prov_pid=$!
}

stop_prov() {
  [ -n "$prov_pid" ] && kill "$prov_pid" 2>/dev/null && wait "$prov_pid" 2>/dev/null
  prov_pid=
}

wait_for() {   # SECS CMD...: until CMD succeeds
  local secs=$1; shift
  for _ in $(seq 1 $((secs * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}

listed() { cli runners --json 2>/dev/null | grep -q "\"runner\":\"$1\".*\"state\":\"idle\""; }

runners_has() { cli runners 2>/dev/null | grep -q "$1"; }

status_has() { "$bin/evrun-provisioner" --status | grep -q "$1"; }

st() { cli status "$1" --json | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p'; }

gateway_up() {   # the gateway on a free port: $gw_url (/api/v1), $gw_root (/)
  "$bin/evrun-gateway" --state-dir "$tmp" --listen 127.0.0.1:0 >> "$tmp/gateway.log" 2>&1 &
  bus_pids+=("$!")
  gw_url=
  for _ in $(seq 1 100); do
    gw_url=$(sed -n 's/^evrun-gateway: listening on \([^ ]*\).*/\1/p' "$tmp/gateway.log")
    [ -n "$gw_url" ] && break
    sleep 0.05
  done
  gw_root=${gw_url%/api/v1}
}

demand() {   # BODY [CURL ARGS...]: POST /api/v1/demand; the status, the answer in $tmp/body
  local body=$1; shift
  curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer ${tok:-}" \
    -H 'Content-Type: application/json' "$@" -d "$body" "$gw_url/demand"
}

jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$tmp/body" "$1"; }

gh_hook() {   # EVENT DELIVERY BODY-FILE: POST /hooks/github signed; the status
  local sig
  sig=$(python3 -c 'import hmac,hashlib,sys; print("sha256=" + hmac.new(open(sys.argv[1],"rb").read().strip(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$tmp/gateway/webhook.secret" "$3")
  curl -s -o "$tmp/body" -w '%{http_code}' -H "X-GitHub-Event: $1" -H "X-GitHub-Delivery: $2" \
    -H "X-Hub-Signature-256: $sig" -H 'Content-Type: application/json' --data-binary @"$3" \
    "$gw_root/hooks/github"
}

started() { grep -c "provider $1: started runner" "$tmp/prov.log"; }

wait_status() {   # JOB STATUS [SECS]
  for _ in $(seq 1 $((${3:-20} * 10))); do
    [ "$(st "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

prov_run() {   # NAME CASE...: each case_CASE, then the sanitizer check; fails if any check did
  local name=$1 c; shift
  for c in "$@"; do
    case_name=$c
    echo "== $c"
    "case_$c"
  done
  stop_all
  case_name=sanitizers
  check "no sanitizer report in any broker or runner log" \
    bash -c "! grep -ls 'Sanitizer\|runtime error' $root/*/*.log $root/*/provisioner/logs/*.log | grep ."
  echo "$name: $passes passed, $fails failed"
  [ "$fails" -eq 0 ]
}

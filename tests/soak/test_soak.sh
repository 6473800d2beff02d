#!/usr/bin/env bash
# test_soak.sh BIN_DIR SRC_DIR [CASE...]: a real evrun-broker on ipc://
# sockets in a temporary directory, driven by evr_soak (fake runners and
# clients; no podman).  Each case starts its own broker.
#   slow_history  a client asks 1000 histories of a 2 MiB job and never
#                 reads: the broker grows by at most 64 MiB and gives it
#                 back when the client goes
#   churn         1100 fresh runner ids (more than the 1024 the broker
#                 keeps), then a new runner: all welcomed; --forget-ms
#                 forgets the lost ones
#   starve        a subscriber that never reads while 80 jobs with specs
#                 near 1 MiB (and 80 of 60 kB) are accepted: a second
#                 subscriber still gets
#                 every event of a job stored after them, live
#   soak          EVR_SOAK_SECONDS (default 60) of slow readers, a
#                 subscriber that never reads, runner-id churn and submits
#                 just under the size limit, while a client asks status,
#                 jobs, runners and history: every answer within 5 s, the
#                 broker's anonymous memory (RssAnon; the store's mapped
#                 pages are page cache) under EVR_SOAK_BOUND_MIB (default
#                 768: up to 8 unread connections x 16 MiB, 64 MiB of
#                 publications, two queued 4 MiB jobs and their copies,
#                 with room for the allocator; measured 250-540 MiB)
set -u
bin=$1 src=$2
shift 2
root=$(mktemp -d /tmp/evr-soak-XXXXXX)
tmp=$root
. "$src/tests/integration/bus_lib.sh"
trap 'bus_stop; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$root"' EXIT
fails=0 passes=0 case_name=

case_slow_history() {
  fresh sh
  bus_broker --no-sync
  "$bin/evr_soak" slow-history "ipc://$tmp/bus/clients" "ipc://$tmp/bus/runners" \
    "$broker_pid" "${EVR_SLOW_REQUESTS:-1000}" 64 > "$tmp/out" 2>&1
  check "a client that never reads costs the broker at most 64 MiB, given back" [ $? -eq 0 ]
  cat "$tmp/out"
}

case_churn() {
  fresh ch
  bus_broker --no-sync --heartbeat-ms 50 --lease-ms 100 --forget-ms 1000
  "$bin/evr_soak" churn "ipc://$tmp/bus/runners" 1100 > "$tmp/out" 2>&1
  check "1100 fresh runner ids and a new runner after them are welcomed" [ $? -eq 0 ]
  cat "$tmp/out"
  sleep 2
  local listed
  listed=$("$bin/evrun-cli" runners --json 2>/dev/null | grep -c '"runner"')
  check "runners lost past --forget-ms are forgotten ($listed listed)" [ "$listed" -eq 0 ]
  check "the broker said why it forgot them" grep -q "forgotten: lost past forget_ms" "$tmp/broker.log"
}

case_starve() {
  fresh st
  bus_broker --no-sync
  "$bin/evr_soak" starve "ipc://$tmp/bus/clients" "ipc://$tmp/bus/runners" \
    "ipc://$tmp/bus/events" "${EVR_STARVE_SUBMITS:-80}" > "$tmp/out" 2>&1
  check "a subscriber that never reads starves no other" [ $? -eq 0 ]
  cat "$tmp/out"
}

case_soak() {
  fresh sk
  bus_broker --no-sync --heartbeat-ms 100 --lease-ms 300 --forget-ms 2000
  "$bin/evr_soak" soak "ipc://$tmp/bus/clients" "ipc://$tmp/bus/runners" \
    "ipc://$tmp/bus/events" "$broker_pid" "${EVR_SOAK_SECONDS:-60}" \
    "${EVR_SOAK_BOUND_MIB:-768}" > "$tmp/out" 2>&1
  check "the broker kept answering within its memory bound" [ $? -eq 0 ]
  cat "$tmp/out"
  check "the broker is still running" kill -0 "$broker_pid"
}

cases=${*:-slow_history churn starve soak}
for c in $cases; do
  case_name=$c
  echo "== $c"
  "case_$c"
done
bus_stop
case_name=sanitizers
check "no sanitizer report in any broker log" \
  bash -c "! grep -l 'Sanitizer\|runtime error' $root/*/*.log"
echo "test_soak: $passes passed, $fails failed"
[ "$fails" -eq 0 ]

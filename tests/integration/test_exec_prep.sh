#!/usr/bin/env bash
# test_exec_prep.sh BIN_DIR SRC_DIR [CASE...]: evrun-runner --exec against
# the real podman service of the "podman" fixture, as test_exec.sh (its
# helpers are exec_lib.sh): a job's preparation under the pipeline's
# timeout (a resource served slowly: stopped, the reason naming it,
# nothing left; a runner killed mid-download ends the job by the first
# deadline) and a failed preparation that still runs the steps that run
# after a failure (README "Control flow").
set -u
bin=$1 src=$2
shift 2
. "$(dirname "$0")/exec_lib.sh"

case_resource_prep() {   # a failed preparation runs the steps that run after a failure
  local www=$tmp/www404
  mkdir -p "$www"
  echo "none" > "$www/other.txt"
  serve_dir "$www" || fails=$((fails + 1))
  httpd_pid=$serve_pid
  pipeline prep404 <<YML
pipeline: prep404
image: localhost/evrun-busybox:latest
resources:
  - { name: conf, url: "http://127.0.0.1:$serve_port/conf.txt", path: conf.txt }
on_error:
  run: 'echo "on_error: \$EVRUN_PREPARE_FAILED"'
steps:
  - { name: build, run: cat conf.txt }
  - { name: notify, when: always, run: 'echo "always: [\$EVRUN_FAILED_STEPS] \$(ls -A | wc -l)"' }
YML
  run prep404 "$tmp/prep404.yml"
  check "a 404: exit 1" [ "$rc" -eq 1 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/prep404.job"
  check "... the job failed, its reason the 404" grep -q "^reason: resource conf: .* answered HTTP 404" "$tmp/prep404.job"
  check "... build skipped with it" grep -Eq "^build +skipped" "$tmp/prep404.job"
  check "... the always step ran, in the workspace" grep -q "^notify | always: \[\] [0-9]" "$out"
  check "... on_error ran, told why" grep -q "^on_error | on_error: resource conf: .* answered HTTP 404" "$out"
  check "... nothing left in podman" [ "$(left_behind)" -eq 0 ]
  check "... store verifies" verified
  kill "$httpd_pid" 2>/dev/null
  httpd_pid=
}

# slow_server LOG: slow_http.py on a free port (10 bytes over 15 s); sets
# slow_port and httpd_pid
slow_server() {
  local try
  for try in 1 2 3; do
    slow_port=$(free_port) || return 1
    python3 "$src/tests/integration/slow_http.py" "$slow_port" "$1" &
    httpd_pid=$!
    wait_port "$slow_port" "$httpd_pid" 2> /dev/null && return 0
    kill "$httpd_pid" 2> /dev/null; wait "$httpd_pid" 2> /dev/null
  done
  echo "slow_server: did not start (3 ports tried)" >&2
  return 1
}

# the job's temporary files in the state directory (downloads, tars)
prep_tmp_left() { ls -A "$state/artifacts/$job" 2>/dev/null | grep -c '^\.' || true; }

case_resource_timeout() {   # the pipeline's timeout covers the resources' download
  slow_server "$tmp/slow.log" || { fails=$((fails + 1)); return; }
  pipeline slowres <<YML
pipeline: slowres
image: localhost/evrun-busybox:latest
timeout: 3s
resources: [{name: big, url: "http://127.0.0.1:$slow_port/blob", path: blob}]
on_error:
  run: 'echo "on_error: \$EVRUN_PREPARE_FAILED"'
steps:
  - { name: a, run: wc -c blob }
  - { name: tell, when: always, run: echo always ran }
YML
  local t0=$SECONDS
  run slowres "$tmp/slowres.yml" --grace 1
  check "exit 1" [ "$rc" -eq 1 ]
  check "ended well before the download's 15 s" [ $((SECONDS - t0)) -lt 11 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/slowres.job"
  check "timed out" grep -q "^job $job .* status timed_out" "$tmp/slowres.job"
  check "the reason names the download" \
    grep -qx "reason: the pipeline's timeout (3 s) passed while downloading resource big" "$tmp/slowres.job"
  check "a skipped" grep -Eq "^a +skipped" "$tmp/slowres.job"
  check "the always step ran" grep -qx "tell | always ran" "$out"
  check "on_error ran, told why" grep -q "^on_error | on_error: the pipeline's timeout (3 s) passed while downloading resource big" "$out"
  check "no temporary file left" [ "$(prep_tmp_left)" -eq 0 ]
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
  check "store verifies" verified
  for _ in $(seq 1 50); do grep -q "^closed /blob" "$tmp/slow.log" && break; sleep 0.1; done
  check "the download was stopped (the server saw it close)" grep -q "^closed /blob" "$tmp/slow.log"
  # killed mid-download: the restarted runner ends the job by the deadline
  # counted from job.accepted, not from its own start
  sed 's/^timeout: 3s/timeout: 6s/' "$tmp/slowres.yml" > "$tmp/slowrec.yml"
  state=$tmp/slowrec
  : > "$tmp/slow.log"
  t0=$SECONDS
  "$bin/evrun-runner" --exec "$tmp/slowrec.yml" --state-dir "$state" --grace 1 \
    > "$tmp/slowrec.out" 2> "$tmp/slowrec.err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "^GET /blob" "$tmp/slow.log" && break; sleep 0.1; done
  sleep 1
  kill -9 "$pid"
  wait "$pid" 2> /dev/null
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/slowrec.out" | head -n 1)
  "$bin/evrun-runner" --recover --state-dir "$state" --grace 1 > "$tmp/slowrec.r" 2>&1
  check "--recover: exit 1 (the job timed out)" [ $? -eq 1 ]
  check "... ended by the first deadline (6 s from the start, not from the restart)" \
    [ $((SECONDS - t0)) -lt 11 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/slowrec.job"
  check "... timed out" grep -q "^job $job .* status timed_out" "$tmp/slowrec.job"
  check "... the reason names the download" \
    grep -q "^reason: the pipeline's timeout (6 s) passed while downloading resource big" "$tmp/slowrec.job"
  check "... no temporary file left" [ "$(prep_tmp_left)" -eq 0 ]
  check "... nothing left in podman" [ "$(left_behind)" -eq 0 ]
  check "... store verifies" verified
  kill "$httpd_pid" 2>/dev/null
  httpd_pid=
}

cases=${*:-resource_prep resource_timeout}
# shellcheck disable=SC2086
run_cases $cases

#!/usr/bin/env bash
# test_demand.sh BIN_DIR SRC_DIR [CASE...]: demand for runners (README
# "Ephemeral runners and the provisioner", Demand; PROTOCOL.md "message
# demand"): POST /api/v1/demand and GitHub workflow_job events through
# evrun-gateway, the broker's demand table, evrun-provisioner starting
# runners for it, `evrun-cli runners` listing it.  Real evrun-broker,
# evrun-gateway, evrun-runner and evrun-provisioner processes on ipc://
# sockets and 127.0.0.1; the steps are host processes (`executor:
# process`): no podman service is needed.
set -u
bin=$1 src=$2
shift 2
. "$src/tests/integration/prov_lib.sh"

# Demand (PROTOCOL.md "message demand"): POST /api/v1/demand asks for
# runners with labels; --dry-run shows it; the provisioner starts them,
# their hellos meet it; a job with those labels then runs on one of them
# (nothing more started); bad bodies get 400 saying where; the ttl ends
# an entry nobody meets; a GitHub workflow_job (queued) that starts no
# pipeline asks for one runner with its labels.
case_demand() {
  fresh demand
  mkdir -m 0700 "$tmp/pipelines"
  cat > "$tmp/pipelines/wfp.yml" <<YML
pipeline: wfp
executor: process
labels: [gh]
on: {github: {events: [workflow_job], branches: [release]}}
steps: [ { name: s, run: "echo from-a-workflow-job" } ]
YML
  bus_broker && gateway_up
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
providers:
  - { name: dm, labels: [gh, linux], kind: process, executors: [process], max: 3,
      args: [--heartbeat-ms, "200", --lease-ms, "1500", --once-wait, "60"] }
  - { name: wf, labels: [wf, linux], kind: process, executors: [process], max: 1,
      args: [--heartbeat-ms, "200", --lease-ms, "1500", --once-wait, "60"] }
YML
  tok=$(cli token)
  check "demand: 202" [ "$(demand '{"labels":["gh"],"count":2,"ttl":120,"reason":"test burst"}')" = 202 ]
  local id; id=$(jget 'd["id"]')
  check "demand: the answer says what is kept" [ "$(jget 'd["count"], d["ttl"], d["labels"]')" = "(2, 120, ['gh'])" ] \
    && grep -q "kept: 2 runners with labels \[gh\] for 120 s" "$tmp/body"
  "$bin/evrun-provisioner" --config "$tmp/p.yml" --dry-run > "$tmp/dry.out" 2>&1
  check "demand: --dry-run shows the entry" grep -q "^demand $id: 2 runners wanted, 1[0-9][0-9] s left: test burst$" "$tmp/dry.out"
  check "demand: --dry-run, runner 2 of 2 to dm" grep -q "^demand $id runner 2 of 2 (1[0-9]* s left) (labels gh): provider dm would start a process runner (1/3 running)$" "$tmp/dry.out"
  check "demand: --dry-run started nothing" [ ! -e "$tmp/provisioner/runners" ]
  check "demand, the same Idempotency-Key twice: one demand" [ "$(demand '{"labels":["linux"]}' -H 'Idempotency-Key: k1')" = 202 ] \
    && local k1; k1=$(jget 'd["id"]') && [ "$(demand '{"labels":["linux"]}' -H 'Idempotency-Key: k1')" = 202 ] \
    && [ "$(jget 'd["id"]')" = "$k1" ] && grep -q "is kept already (1 runners still wanted): nothing added" "$tmp/body"
  check "demand, count 65: 400 saying so" [ "$(demand '{"count":65}')" = 400 ] && grep -q 'body.count: expected a whole number from 1 to 64' "$tmp/body"
  check "demand, a bad label: 400 saying which" [ "$(demand '{"labels":["ok","no way"]}')" = 400 ] && grep -q 'body.labels\[1\]: expected a label' "$tmp/body"
  check "demand, an unknown key: 400" [ "$(demand '{"runners":2}')" = 400 ] && grep -q 'unknown key \\"runners\\"' "$tmp/body"
  check "demand, bad JSON: 400 with where" [ "$(demand '{"count":')" = 400 ] && grep -q 'body:1:' "$tmp/body"
  check "demand, a read token: 403" [ "$(tok=$(cli token --read-only) demand '{}')" = 403 ]
  check "demand, no token: 401" [ "$(tok=nope demand '{}')" = 401 ]
  check "demand, a ttl of 1 s nobody meets: kept" [ "$(demand '{"labels":["nowhere"],"ttl":1}')" = 202 ]
  local short; short=$(jget 'd["id"]')
  sleep 1.5
  "$bin/evrun-provisioner" --config "$tmp/p.yml" --dry-run > "$tmp/dry2.out" 2>&1
  check "demand: the ttl ended it" bash -c "! grep -q '$short' '$tmp/dry2.out'"
  prov "$tmp/p.yml"
  # 2 for the burst, 1 for k1 (labels linux): 3 runners, dm's max
  check "demand: three runners started for it" wait_for 20 bash -c "[ \$(grep -c 'provider dm: started runner dm-.* for demand' '$tmp/prov.log') -eq 3 ]"
  check "demand: their hellos met it" wait_for 20 bash -c "[ \$(grep -c 'demand .*: runner dm-.* meets 1' '$tmp/broker.log') -eq 3 ]"
  check "demand: none left" wait_for 10 bash -c "'$bin/evrun-provisioner' --config '$tmp/p.yml' --dry-run | grep -q '^no job waits for a runner, no demand$'"
  sleep 1
  check "demand: no more started once met" [ "$(started dm)" -eq 3 ]
  ppipe dj "echo on-a-demand-runner" gh
  local j; j=$(submit "$tmp/dj.yml" 2>/dev/null)
  check "demand: a job with its labels ran" [ "$(wait_job "$j" 30)" = succeeded ]
  check "demand: on a runner started for the demand" grep -q '"runner":"dm-' <(cli status "$j" --json)
  check "demand: nothing more started for the job" [ "$(started dm)" -eq 3 ]
  # GitHub: a queued workflow_job that starts no pipeline asks for a runner with its labels
  printf '{"action":"queued","workflow_job":{"id":77,"labels":["wf","linux"],"head_branch":"main","head_sha":"%s"},"repository":{"clone_url":"https://example.invalid/r.git","full_name":"o/r","default_branch":"main"}}' \
    "$(printf 'a%.0s' $(seq 1 40))" > "$tmp/wj.json"
  check "workflow_job queued: 202 with a demand" [ "$(gh_hook workflow_job wd-1 "$tmp/wj.json")" = 202 ] \
    && [ "$(jget 'd["demand"]["labels"], d["demand"]["count"]')" = "(['wf', 'linux'], 1)" ]
  local wid; wid=$(jget 'd["demand"]["id"]')
  check "workflow_job: the same delivery again: the same demand" [ "$(gh_hook workflow_job wd-1 "$tmp/wj.json")" = 202 ] \
    && [ "$(jget 'd["demand"]["id"]')" = "$wid" ]
  check "workflow_job: the broker says where it came from" grep -q "demand $wid: 1 runner with labels \[wf,linux\] for 300 s: github workflow_job 77 of o/r" "$tmp/broker.log"
  check "workflow_job: a runner started for it" wait_for 20 bash -c "grep -q 'provider wf: started runner wf-.* for demand $wid runner 1 of 1' '$tmp/prov.log'"
  check "workflow_job: its hello met it" wait_for 20 grep -q "demand $wid: runner wf-.* meets 1 (0 still wanted)" "$tmp/broker.log"
  sed 's/"linux"\]/"li nux"]/' "$tmp/wj.json" > "$tmp/wj2.json"
  check "workflow_job with a bad label: 200, the demand refused saying why" [ "$(gh_hook workflow_job wd-2 "$tmp/wj2.json")" = 200 ] \
    && [ "$(jget 'd["demand_refused"]["message"]')" = "workflow_job.labels[1]: expected a label: 1 to 64 of letters, digits, _ . -" ]
  sed 's/"main"/"release"/' "$tmp/wj.json" > "$tmp/wj4.json"
  check "workflow_job that starts a pipeline: 202, its job, no demand" [ "$(gh_hook workflow_job wd-4 "$tmp/wj4.json")" = 202 ] \
    && [ "$(jget 'd["jobs"][0]["pipeline"], "demand" in d')" = "('wfp', False)" ]
  j=$(jget 'd["jobs"][0]["id"]')
  check "workflow_job: the pipeline's job ran" [ "$(wait_job "$j" 30)" = succeeded ]
  sed 's/"queued"/"completed"/' "$tmp/wj.json" > "$tmp/wj3.json"
  check "workflow_job completed: 200, no demand" [ "$(gh_hook workflow_job wd-3 "$tmp/wj3.json")" = 200 ] \
    && bash -c "! grep -q demand '$tmp/body'"
  local pids; pids=$(sed -n 's/.*: started runner .* (pid \([0-9]*\), .*/\1/p' "$tmp/prov.log" | tr '\n' ' ')
  check "demand: runners wait for a job" grep -q '"state":"idle"' <(cli runners --json)
  stop_prov
  check "demand: the provisioner's stop ended the runners waiting for a job" wait_for 15 bash -c \
    "for p in $pids; do [ ! -e /proc/\$p ] || grep -q '^State:.*Z' /proc/\$p/status || exit 1; done"
  # the broker's bounds: 1024 runners wanted, then 256 entries
  local n=0 code=
  for _ in $(seq 1 20); do
    code=$(demand '{"labels":["nowhere"],"count":64,"ttl":2}'); [ "$code" = 202 ] || break; n=$((n + 1))
  done
  check "demand: past 1024 runners wanted: 503 ($n of 64 kept)" [ "$code" = 503 ] && [ "$n" -eq 16 ] \
    && grep -q "the broker keeps 256 demand entries and 1024 runners wanted at most (now 16 entries, 1024 runners)" "$tmp/body"
  sleep 2.2
  n=0
  for _ in $(seq 1 260); do
    code=$(demand '{"labels":["nowhere"],"ttl":30}'); [ "$code" = 202 ] || break; n=$((n + 1))
  done
  check "demand: past 256 entries: 503 ($n kept)" [ "$code" = 503 ] && [ "$n" -eq 256 ] && grep -q "(now 256 entries, 256 runners)" "$tmp/body"
}

prov_run test_demand ${*:-demand}

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
  check "demand: the answer says what is kept" [ "$(jget 'd["count"], d["ttl"], d["labels"]')" = "(2, 120, ['gh'])" ]
  check "demand: the answer says what is kept [kept: 2 runners with labels [gh] for 120 s body]" grep -q "kept: 2 runners with labels \[gh\] for 120 s" "$tmp/body"
  "$bin/evrun-provisioner" --config "$tmp/p.yml" --dry-run > "$tmp/dry.out" 2>&1
  check "demand: --dry-run shows the entry" grep -q "^demand $id: 2 runners wanted, 1[0-9][0-9] s left: test burst$" "$tmp/dry.out"
  check "demand: --dry-run, runner 2 of 2 to dm" grep -q "^demand $id runner 2 of 2 (1[0-9]* s left) (labels gh): provider dm would start a process runner (1/3 running)$" "$tmp/dry.out"
  check "demand: --dry-run started nothing" [ ! -e "$tmp/provisioner/runners" ]
  check "demand, an Idempotency-Key: 202" [ "$(demand '{"labels":["linux"]}' -H 'Idempotency-Key: k1')" = 202 ]
  local k1; k1=$(jget 'd["id"]')
  check "demand, the same Idempotency-Key again: 200" [ "$(demand '{"labels":["linux"]}' -H 'Idempotency-Key: k1')" = 200 ]
  check "demand, the same Idempotency-Key again: a duplicate" [ "$(jget 'd["duplicate"]')" = True ]
  check "demand, the same Idempotency-Key again: the first demand ($k1)" [ "$(jget 'd["id"]')" = "$k1" ]
  check "demand, the same Idempotency-Key again: nothing added, saying so" \
    grep -q "is kept already (1 runner still wanted): nothing added" "$tmp/body"
  check "demand, count 65: 400 saying so" [ "$(demand '{"count":65}')" = 400 ]
  check "demand, count 65: 400 saying so [body.count: expected a whole number from 1 to...]" grep -q 'body.count: expected a whole number from 1 to 64' "$tmp/body"
  check "demand, a bad label: 400 saying which" [ "$(demand '{"labels":["ok","no way"]}')" = 400 ]
  check "demand, a bad label: 400 saying which [body.labels[1]: expected a label body]" grep -q 'body.labels\[1\]: expected a label' "$tmp/body"
  check "demand, an unknown key: 400" [ "$(demand '{"runners":2}')" = 400 ]
  check "demand, an unknown key: 400 [unknown key runners body]" grep -q 'unknown key \\"runners\\"' "$tmp/body"
  check "demand, bad JSON: 400 with where" [ "$(demand '{"count":')" = 400 ]
  check "demand, bad JSON: 400 with where [body:1: body]" grep -q 'body:1:' "$tmp/body"
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
  check "workflow_job queued: 202 with a demand" [ "$(gh_hook workflow_job wd-1 "$tmp/wj.json")" = 202 ]
  check "workflow_job queued: 202 with a demand [(jget d[demand][labels], d[demand][count]) = ...]" [ "$(jget 'd["demand"]["labels"], d["demand"]["count"]')" = "(['wf', 'linux'], 1)" ]
  local wid; wid=$(jget 'd["demand"]["id"]')
  check "workflow_job: the same delivery again: the same demand, a duplicate" [ "$(gh_hook workflow_job wd-1 "$tmp/wj.json")" = 200 ]
  check "workflow_job: the same delivery again: the same demand, a duplicate [(jget d[demand][id], d[duplicate]) = (wid, True)]" [ "$(jget 'd["demand"]["id"], d["duplicate"]')" = "('$wid', True)" ]
  check "workflow_job: the broker says where it came from" grep -q "demand $wid: 1 runner with labels \[wf,linux\] for 300 s: github workflow_job 77 of o/r" "$tmp/broker.log"
  check "workflow_job: a runner started for it" wait_for 20 bash -c "grep -q 'provider wf: started runner wf-.* for demand $wid runner 1 of 1' '$tmp/prov.log'"
  check "workflow_job: its hello met it" wait_for 20 grep -q "demand $wid: runner wf-.* meets 1 (0 still wanted)" "$tmp/broker.log"
  sed 's/"linux"\]/"li nux"]/' "$tmp/wj.json" > "$tmp/wj2.json"
  check "workflow_job with a bad label: 200, the demand refused saying why" [ "$(gh_hook workflow_job wd-2 "$tmp/wj2.json")" = 200 ]
  check "workflow_job with a bad label: 200, the demand refused saying why [(jget d[demand_refused][message]) = workflow_...]" [ "$(jget 'd["demand_refused"]["message"]')" = "workflow_job.labels[1]: expected a label: a letter or digit, then letters, digits, _ . - (at most 64 bytes)" ]
  sed 's/"main"/"release"/' "$tmp/wj.json" > "$tmp/wj4.json"
  check "workflow_job that starts a pipeline: 202, its job, no demand" [ "$(gh_hook workflow_job wd-4 "$tmp/wj4.json")" = 202 ]
  check "workflow_job that starts a pipeline: 202, its job, no demand [(jget d[jobs][0][pipeline], demand in d) = (w...]" [ "$(jget 'd["jobs"][0]["pipeline"], "demand" in d')" = "('wfp', False)" ]
  j=$(jget 'd["jobs"][0]["id"]')
  check "workflow_job: the pipeline's job ran" [ "$(wait_job "$j" 30)" = succeeded ]
  sed 's/"queued"/"completed"/' "$tmp/wj.json" > "$tmp/wj3.json"
  check "workflow_job completed: 200, no demand" [ "$(gh_hook workflow_job wd-3 "$tmp/wj3.json")" = 200 ]
  check "workflow_job completed: 200, no demand [bash -c ! grep -q demand tmp/body]" bash -c "! grep -q demand '$tmp/body'"
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
  check "demand: past 1024 runners wanted: 503 ($n of 64 kept)" [ "$code" = 503 ]
  check "demand: past 1024 runners wanted: 503 ($n of 64 kept) [n -eq 16]" [ "$n" -eq 16 ]
  check "demand: past 1024 runners wanted: 503 ($n of 64 kept) [the broker keeps 256 demand entries and 1024 ...]" grep -q "the broker keeps 256 demand entries and 1024 runners wanted at most (now 16 entries, 1024 runners)" "$tmp/body"
  sleep 2.2
  n=0
  for _ in $(seq 1 260); do
    code=$(demand '{"labels":["nowhere"],"ttl":30}'); [ "$code" = 202 ] || break; n=$((n + 1))
  done
  check "demand: past 256 entries: 503 ($n kept)" [ "$code" = 503 ]
  check "demand: past 256 entries: 503 ($n kept) [n -eq 256]" [ "$n" -eq 256 ]
  check "demand: past 256 entries: 503 ($n kept) [(now 256 entries, 256 runners) body]" grep -q "(now 256 entries, 256 runners)" "$tmp/body"
}

# A GitHub workflow_job event (queued) for job ID with LABELS (JSON
# strings), of repository o/r, into FILE.
wj_body() {   # FILE ID LABELS
  printf '{"action":"queued","workflow_job":{"id":%s,"labels":[%s],"head_branch":"main","head_sha":"%s"},"repository":{"clone_url":"https://example.invalid/r.git","full_name":"o/r","default_branch":"main"}}' \
    "$2" "$3" "$(printf 'a%.0s' $(seq 1 40))" > "$1"
}

# `evrun-cli runners` lists the demand the broker keeps after the runners
# and providers (wanted, labels, age, seconds left, source), --json as
# objects with a "demand" key; GET /api/v1/runners under "demand".
case_listed() {
  fresh listed
  bus_broker && gateway_up && bus_runner w "" 1 --executors process && bus_wait_runners 1
  tok=$(cli token)
  check "listed: a demand kept" [ "$(demand '{"labels":["lg","linux"],"count":2,"ttl":120,"reason":"a burst"}')" = 202 ]
  local id; id=$(jget 'd["id"]')
  check "listed: one without a reason kept" [ "$(demand '{"labels":["lz"]}')" = 202 ]
  local id2; id2=$(jget 'd["id"]')
  wj_body "$tmp/wj.json" 4242 '"lw"'
  check "listed: a workflow_job's demand kept" [ "$(gh_hook workflow_job ld-1 "$tmp/wj.json")" = 202 ]
  local wid; wid=$(jget 'd["demand"]["id"]')
  cli runners > "$tmp/runners.out" 2>&1
  check "listed: the runner first" grep -q "^w  *idle " "$tmp/runners.out"
  check "listed: a DEMAND table" grep -q "^DEMAND  *WANTED  *LABELS  *AGE  *LEFT  *SOURCE$" "$tmp/runners.out"
  check "listed: wanted, labels, age, seconds left, reason" grep -Eq "^$id  +2  lg,linux  +[0-9]+s  +(120|1[01][0-9])s  a burst$" "$tmp/runners.out"
  check "listed: POST /api/v1/demand as the source when no reason" grep -Eq "^$id2  +1  lz  +[0-9]+s  +(300|29[0-9])s  POST /api/v1/demand$" "$tmp/runners.out"
  check "listed: the workflow job and delivery as the source" grep -Eq "^$wid  +1  lw  .*  github workflow_job 4242 of o/r, delivery ld-1$" "$tmp/runners.out"
  cli runners --json > "$tmp/runners.json" 2>&1
  check "listed --json: an object with a demand key" python3 - "$tmp/runners.json" "$id" <<'PY'
import json, sys, time
rows = [json.loads(l) for l in open(sys.argv[1])]
d = [r for r in rows if r.get("demand") == sys.argv[2]]
assert len(d) == 1 and "job" not in d[0], rows
d = d[0]
assert d["count"] == 2 and d["labels"] == ["lg", "linux"] and 100 < d["ttl"] <= 120, d
assert d["reason"] == "a burst" and abs(d["created"] / 1e9 - time.time()) < 60, d
assert any(r.get("runner") == "w" and r.get("state") == "idle" for r in rows), rows
PY
  curl -s -H "Authorization: Bearer $(cli token --read-only)" "$gw_url/runners" > "$tmp/body"
  check "listed: GET /runners lists the demand too" [ "$(jget '[(x["id"], x["count"], x["labels"], x.get("reason"), "created" in x, 0 < x["ttl"] <= 300) for x in d["demand"]]')" \
    = "[('$id', 2, ['lg', 'linux'], 'a burst', True, True), ('$id2', 1, ['lz'], 'POST /api/v1/demand', True, True), ('$wid', 1, ['lw'], 'github workflow_job 4242 of o/r, delivery ld-1', True, True)]" ]
  check "listed: GET /runners still lists the runner" [ "$(jget '[x["id"] for x in d["runners"]]')" = "['w']" ]
}

# A job dispatched to a runner meets the oldest demand taken no later
# than the job was queued whose labels are all the job's (PROTOCOL.md
# "message demand"): a warm runner's free slot serves the demand, the job
# for it runs there, the demand goes, and the provisioner starts nothing
# for it.  A job queued before the demand, or without its labels, meets
# none; a job on a runner whose hello met demand uses that slot up.
case_dispatch() {
  fresh dispatch
  bus_broker && gateway_up && bus_runner w gd 1 --executors process && bus_wait_runners 1
  tok=$(cli token)
  cat > "$tmp/p.yml" <<YML
start_rate: 100/s
providers:
  - { name: dd, labels: [gd], kind: process, executors: [process], max: 2,
      args: [--heartbeat-ms, "200", --lease-ms, "1500", --once-wait, "30"] }
  - { name: dp, labels: [gp], kind: process, executors: [process], max: 1,
      args: [--heartbeat-ms, "200", --lease-ms, "1500", --once-wait, "30"] }
YML
  ppipe busy "sleep 2"
  ppipe old "echo old" gd
  ppipe nolabel "echo nolabel"
  ppipe fit "sleep 3" gd
  ppipe gp "sleep 2" gp
  local jb j0 jn jg jp
  jb=$(submit "$tmp/busy.yml" 2>/dev/null)
  wait_status "$jb" running 10
  j0=$(submit "$tmp/old.yml" 2>/dev/null)
  check "dispatch: a job demand [gd] kept while the runner is busy" [ "$(demand '{"labels":["gd"],"ttl":120}')" = 202 ]
  local id; id=$(jget 'd["id"]')
  wanted() { cli runners --json | python3 -c 'import json,sys; print(sum(r["count"] for l in sys.stdin for r in [json.loads(l)] if r.get("demand") == sys.argv[1]))' "$1"; }
  check "dispatch: the job queued before it ran" [ "$(wait_job "$j0" 20)" = succeeded ]
  check "dispatch: it met no demand (queued before it)" [ "$(wanted "$id")" = 1 ]
  check "dispatch: it met no demand (queued before it): no such line" not grep -q "job $j0 dispatched to w meets" "$tmp/broker.log"
  jn=$(submit "$tmp/nolabel.yml" 2>/dev/null)
  check "dispatch: a job without gd ran on w" [ "$(wait_job "$jn" 20)" = succeeded ]
  check "dispatch: it met no demand (no label gd)" [ "$(wanted "$id")" = 1 ]
  prov "$tmp/p.yml"
  sleep 1
  check "dispatch: w's free slot serves the demand: nothing started" [ "$(started dd)" -eq 0 ]
  jg=$(submit "$tmp/fit.yml" 2>/dev/null)
  check "dispatch: the job with gd runs on w" wait_status "$jg" running 10
  check "dispatch: the job with gd runs on w [runner:w <(cli status jg --json)]" grep -q '"runner":"w"' <(cli status "$jg" --json)
  check "dispatch: its dispatch met the demand" grep -q "demand $id: job $jg dispatched to w meets 1 (0 still wanted)" "$tmp/broker.log"
  check "dispatch: the demand is gone" [ "$(wanted "$id")" = 0 ]
  sleep 1.5
  check "dispatch: no runner started while w is busy with it" [ "$(started dd)" -eq 0 ]
  check "dispatch: the job succeeded" [ "$(wait_job "$jg" 20)" = succeeded ]
  # a runner whose hello met a demand: the job it takes uses that slot up
  check "dispatch: a demand [gp]" [ "$(demand '{"labels":["gp"],"ttl":120}')" = 202 ]
  local g1; g1=$(jget 'd["id"]')
  check "dispatch: a runner started for it, its hello met it" wait_for 20 grep -q "demand $g1: runner dp-[a-z0-9]* meets 1 (0 still wanted)" "$tmp/broker.log"
  check "dispatch: a second demand [gp]" [ "$(demand '{"labels":["gp"],"ttl":120}')" = 202 ]
  local g2; g2=$(jget 'd["id"]')
  jp=$(submit "$tmp/gp.yml" 2>/dev/null)
  check "dispatch: the gp job runs on the runner started for the first" wait_status "$jp" running 10
  check "dispatch: the gp job runs on the runner started for the first [runner:dp- <(cli status jp --json)]" grep -q '"runner":"dp-' <(cli status "$jp" --json)
  # (once it ends, its runner exits and dp, max 1, may start one for the second)
  check "dispatch: it used the slot the hello met: the second demand is still wanted" [ "$(wanted "$g2")" = 1 ]
  check "dispatch: it used the slot the hello met: no job met the second demand" not grep -q "demand $g2: job" "$tmp/broker.log"
  check "dispatch: the gp job succeeded" [ "$(wait_job "$jp" 20)" = succeeded ]
  stop_prov
}

# The same demand sent again adds nothing while the broker keeps it or
# for 24 hours after it was met or its ttl ended: a GitHub redelivery
# (the same X-GitHub-Delivery) or another delivery of the same
# workflow_job id is answered 200 with "duplicate": true, as is POST
# /api/v1/demand with the same Idempotency-Key.
case_dedupe() {
  fresh dedupe
  bus_broker && gateway_up
  tok=$(cli token)
  wj_body "$tmp/wj.json" 91 '"dd"'
  check "dedupe: a workflow_job: 202, a demand" [ "$(gh_hook workflow_job dd-1 "$tmp/wj.json")" = 202 ]
  check "dedupe: a workflow_job: 202, a demand [(jget d[demand][duplicate], duplicate in d) =...]" [ "$(jget 'd["demand"]["duplicate"], "duplicate" in d')" = "(False, False)" ]
  local x; x=$(jget 'd["demand"]["id"]')
  check "dedupe: the same delivery while kept: 200, a duplicate" [ "$(gh_hook workflow_job dd-1 "$tmp/wj.json")" = 200 ]
  check "dedupe: the same delivery while kept: 200, a duplicate [(jget d[demand][id], d[duplicate], d[demand][...]" [ "$(jget 'd["demand"]["id"], d["duplicate"], d["demand"]["duplicate"]')" = "('$x', True, True)" ]
  check "dedupe: the same delivery while kept: 200, a duplicate [a duplicate: workflow_job 91 (delivery dd-1) ...]" grep -q "a duplicate: workflow_job 91 (delivery dd-1) asked for a runner before: demand $x is kept already" "$tmp/body"
  bus_runner rd dd 1 --executors process
  check "dedupe: a new runner's hello met it" wait_for 10 grep -q "demand $x: runner rd meets 1 (0 still wanted)" "$tmp/broker.log"
  check "dedupe: redelivered after it was met: 200, a duplicate, nothing added" [ "$(gh_hook workflow_job dd-1 "$tmp/wj.json")" = 200 ]
  check "dedupe: redelivered after it was met: 200, a duplicate, nothing added [(jget d[demand][id], d[duplicate]) = (x, True)]" [ "$(jget 'd["demand"]["id"], d["duplicate"]')" = "('$x', True)" ]
  check "dedupe: redelivered after it was met: 200, a duplicate, nothing added [grep -Eq demand x was met [0-9]+ s ago: nothi...]" grep -Eq "demand $x was met [0-9]+ s ago: nothing added \(a duplicate\)" "$tmp/body"
  check "dedupe: another delivery of the same workflow job: 200, a duplicate" [ "$(gh_hook workflow_job dd-2 "$tmp/wj.json")" = 200 ]
  check "dedupe: another delivery of the same workflow job: 200, a duplicate [(jget d[demand][id], d[duplicate]) = (x, True)]" [ "$(jget 'd["demand"]["id"], d["duplicate"]')" = "('$x', True)" ]
  check "dedupe: no demand listed" bash -c "! '$bin/evrun-cli' runners | grep -q '^DEMAND'"
  wj_body "$tmp/wj2.json" 92 '"dd"'
  check "dedupe: another workflow job: 202, a new demand" [ "$(gh_hook workflow_job dd-3 "$tmp/wj2.json")" = 202 ]
  check "dedupe: another workflow job: 202, a new demand [(jget d[demand][id] != x) = True]" [ "$(jget 'd["demand"]["id"] != "'"$x"'"')" = True ]
  wj_body "$tmp/wj0.json" 0 '"dz"'
  check "dedupe: a workflow_job with id 0: 202, a demand" [ "$(gh_hook workflow_job dd-z "$tmp/wj0.json")" = 202 ]
  local z; z=$(jget 'd["demand"]["id"]')
  check "dedupe: ... named by its delivery, not 0" wait_for 5 grep -q "demand $z: 1 runner with labels \[dz\] for 300 s: github workflow_job dd-z of o/r, delivery dd-z" "$tmp/broker.log"
  check "dedupe: ... its redelivery's duplicate names the delivery" [ "$(gh_hook workflow_job dd-z "$tmp/wj0.json")" = 200 ]
  check "dedupe: ... its redelivery's duplicate names the delivery [a duplicate: workflow_job dd-z (delivery dd-z...]" grep -q "a duplicate: workflow_job dd-z (delivery dd-z) asked for a runner before: demand $z is kept already" "$tmp/body"
  check "dedupe: POST /api/v1/demand with a key: 202" [ "$(demand '{"labels":["kd"]}' -H 'Idempotency-Key: kd-1')" = 202 ]
  local k; k=$(jget 'd["id"]')
  bus_runner rk kd 1 --executors process
  check "dedupe: met by a new runner" wait_for 10 grep -q "demand $k: runner rk meets 1" "$tmp/broker.log"
  check "dedupe: the same key after it was met: 200, a duplicate" [ "$(demand '{"labels":["kd"]}' -H 'Idempotency-Key: kd-1')" = 200 ]
  check "dedupe: the same key after it was met: 200, a duplicate [(jget d[id], d[duplicate]) = (k, True)]" [ "$(jget 'd["id"], d["duplicate"]')" = "('$k', True)" ]
  check "dedupe: a ttl of 1 s: 202" [ "$(demand '{"labels":["nowhere"],"ttl":1}' -H 'Idempotency-Key: kd-2')" = 202 ]
  sleep 1.3
  check "dedupe: the same key after its ttl: 200, a duplicate saying so" [ "$(demand '{"labels":["nowhere"],"ttl":1}' -H 'Idempotency-Key: kd-2')" = 200 ]
  check "dedupe: the same key after its ttl: 200, a duplicate saying so [grep -Eq was retired at its ttl [0-9]+ s ago:...]" grep -Eq "was retired at its ttl [0-9]+ s ago: nothing added" "$tmp/body"
}

# A GitHub job's runs-on that no provider serves (GitHub adds
# self-hosted, which the providers lack): its demand is said once in the
# provisioner's log with the labels asked and offered, nothing started.
case_stranded() {
  fresh stranded
  bus_broker && gateway_up
  cat > "$tmp/p.yml" <<YML
providers:
  - { name: gl, labels: [linux], kind: process, executors: [process], max: 1 }
YML
  printf '{"action":"queued","workflow_job":{"id":91,"labels":["self-hosted","linux"],"head_branch":"main","head_sha":"%s"},"repository":{"clone_url":"https://example.invalid/r.git","full_name":"o/r","default_branch":"main"}}' \
    "$(printf 'b%.0s' $(seq 1 40))" > "$tmp/wj.json"
  check "stranded: the workflow_job's demand kept" [ "$(gh_hook workflow_job sd-1 "$tmp/wj.json")" = 202 ]
  local id; id=$(jget 'd["demand"]["id"]')
  prov "$tmp/p.yml"
  check "stranded: the provisioner says no provider has its labels" wait_for 10 grep -q "demand $id asks for labels self-hosted,linux that no provider has (gl offers linux,executor:process): no runner will be started for it" "$tmp/prov.log"
  check "stranded: a redelivery adds nothing" [ "$(gh_hook workflow_job sd-2 "$tmp/wj.json")" = 200 ]
  # passes go on (the providers' table is written anew, renamed, at each): said once
  local t0; t0=$(stat -c %i "$tmp/provisioner/providers" 2>/dev/null)
  check "stranded: more passes" wait_for 10 bash -c "[ \"\$(stat -c %i '$tmp/provisioner/providers')\" != '$t0' ]"
  check "stranded: said once" [ "$(grep -c "demand $id asks for labels" "$tmp/prov.log")" -eq 1 ]
  check "stranded: nothing started" [ "$(started gl)" -eq 0 ]
  # runs-on: [Linux]: GitHub matches labels in any case, evrun does not: the line says so
  sed 's/"id":91,"labels":\["self-hosted","linux"\]/"id":92,"labels":["Linux"]/' "$tmp/wj.json" > "$tmp/wj5.json"
  check "stranded: runs-on [Linux] kept" [ "$(gh_hook workflow_job sd-5 "$tmp/wj5.json")" = 202 ]
  id=$(jget 'd["demand"]["id"]')
  check "stranded: [Linux]: another case, said" wait_for 10 grep -q "demand $id asks for labels Linux that no provider has (gl offers linux,executor:process): no runner will be started for it; it waits for a runner with them to connect (provider gl has them in another case: labels match case and all)" "$tmp/prov.log"
  stop_prov
}

prov_run test_demand ${*:-demand listed dispatch dedupe stranded}

#!/usr/bin/env bash
# test_exec_job.sh BIN_DIR SRC_DIR [CASE...]: inside the job (issue 17)
# with evrun-runner --exec against the real podman service of the "podman"
# fixture: the steps' control channel, secrets registered at run time,
# follow-up jobs (evrun-job trigger, --follow-triggers, --file).  The
# helpers are test_exec.sh's (exec_lib.sh).
set -u
bin=$1 src=$2
shift 2
. "$(dirname "$0")/exec_lib.sh"

# pipeline_chan NAME: as pipeline, each line CHANNEL alone (indented as
# the Python program around it) made the opening of the step's control
# channel: json, os and socket imported, s the socket connected to
# $EVRUN_CONTROL, f its reader
pipeline_chan() {
  awk '/^ *CHANNEL$/ {
         i = substr($0, 1, length($0) - length("CHANNEL"))
         print i "import json, os, socket"
         print i "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)"
         print i "s.connect(os.environ[\"EVRUN_CONTROL\"])"
         print i "f = s.makefile(\"rb\")"
         next
       }
       { print }' > "$tmp/$1.yml"
}

case_job_secret() {   # issue 17: a step registers a secret over its control channel
  # the value is made inside the step, so that the pipeline's text (in
  # job.accepted) does not hold it: dyn$(...)Zq is dynehbbZq
  pipeline job-secret <<'YML'
pipeline: job-secret
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: |
      evrun-job hello
      V="dyn$(echo 4711 | tr 0-9 a-j)Zq"
      printf '%s\n' "$V" | evrun-job secret DEPLOY_KEY || exit 3
      echo "value: $V"
      printf 'split: %s' "$(echo "$V" | cut -c1-4)"; sleep 0.3; echo "$V" | cut -c5-
      sleep 0.1; echo "err: $V" >&2; sleep 0.1
      echo x | evrun-job secret PATH; echo "reserved: $?"
      echo '{"cmd":"nope"}' | evrun-job secret; echo "usage: $?"
      printf 'bin\377\376x' | evrun-job secret BIN && printf 'see bin\377\376x\n' ||
        { echo "not UTF-8: $?"; echo YmluIT8= | evrun-job secret BIN; }
      for i in $(seq 3 64); do echo "v$i" | evrun-job secret "N$i" || exit 4; done
      echo x | evrun-job secret ONE_TOO_MANY 2>&1 | sed 's/job [0-9A-Z]* has/job J has/'
  - name: use
    needs: [make]
    run: |
      echo "later: $DEPLOY_KEY (${#DEPLOY_KEY} bytes)"
YML
  local sec=dynehbbZq mode
  check "evrun-job is static (no program interpreter)" sh -c "! readelf -l '$bin/evrun-job' | grep -q INTERP"
  for mode in podman process; do
    if [ "$mode" = podman ]; then
      run job-secret "$tmp/job-secret.yml"
    else
      sed 's|^image: .*|executor: process|' "$tmp/job-secret.yml" > "$tmp/job-secret-proc.yml"
      run job-secret-proc "$tmp/job-secret-proc.yml" --executors process
    fi
    check "$mode: exit 0" [ "$rc" -eq 0 ]
    check "$mode: the channel knows its job and step" \
      grep -q "^make | {\"protocol\":1,\"job\":\"$job\",\"pipeline\":\"job-secret\",\"step\":\"make\",\"attempt\":1," "$out"
    check "$mode: registered" grep -q "^make > secret DEPLOY_KEY registered$" "$out"
    check "$mode: secret.registered in the log, the name only" \
      sh -c "'$bin/evrun-replay' '$state' --job '$job' | grep -q 'secret.registered .*\"step\":\"make\",\"attempt\":1,\"name\":\"DEPLOY_KEY\"'"
    check "$mode: one secret.registered per registration" \
      [ "$("$bin/evrun-replay" "$state" --job "$job" | grep -c 'secret.registered ')" -eq 64 ]
    check "$mode: masked once registered" grep -q "^make | value: \*\*\*$" "$out"
    check "$mode: masked on stderr" grep -q "^make | err: \*\*\*$" "$out"
    check "$mode: masked across chunks" grep -q "^make | split: \*\*\*$" "$out"
    check "$mode: a reserved name refused" grep -q "^make | evrun-job: refused: secret: \"name\": PATH is reserved" "$out"
    check "$mode: refused: exit 2" grep -q "^make | reserved: 2$" "$out"
    check "$mode: usage: exit 2" grep -q "^make | usage: 2$" "$out"
    if [ "$mode" = podman ]; then   # a container's environment could not carry it
      check "$mode: a value that is not UTF-8 refused, saying why" grep -q "^make | evrun-job: refused: secret: the value is not valid UTF-8, which a container's environment cannot carry (podman takes it as JSON text), so the later steps of this podman pipeline could not get BIN: not registered, nor masked; register it encoded (base64, for one) and decode it in the step$" "$out"
      check "$mode: ... exit 2" grep -q "^make | not UTF-8: 2$" "$out"
    else
      check "$mode: a value that is not UTF-8" grep -q "^make | see \*\*\*$" "$out"
    fi
    check "$mode: 64 names at most" grep -q "^make | evrun-job: refused: secret: job J has 64 secrets registered" "$out"
    check "$mode: a later step gets it as a variable" grep -q "^use | later: \*\*\* (9 bytes)$" "$out"
    check "$mode: stored masked" sh -c "'$bin/evrun-replay' '$state' --output '$job/make' | grep -q '^value: \*\*\*$'"
    check "$mode: never printed" sh -c "! grep -q '$sec' '$out' '$err'"
    check "$mode: never in the state directory (store, files)" sh -c "! grep -rqa '$sec' '$state'"
    check "$mode: nor a half of it" sh -c "! grep -rqa 'ehbbZq' '$state'"
    check "$mode: its file removed at the job's end" [ -z "$(ls -A "$state/job-secrets" 2>/dev/null)" ]
    check "$mode: the steps' channel directories removed" [ "$(ls "$state/ctl" | grep -vc '^evrun-job$')" -eq 0 ]
    check "$mode: store verifies" verified
  done
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_job_secret_lines() {   # a key of several lines registered: each line printed alone masked
  # the key is made inside the step (not in the pipeline's text): its
  # lines are keyLnA-bcde-one, keyLnB-pqrs-two, and a short one, "z9"
  pipeline job-secret-lines <<'YML'
pipeline: job-secret-lines
image: localhost/evrun-busybox:latest
triggers: [deploy]
steps:
  - name: make
    run: |
      a=$(echo 1234 | tr 0-9 a-j); b=$(echo 5678 | tr 0-9 k-t)
      key=$(printf '%s\n' "keyLnA-$a-one" "keyLnB-$b-two" z9)
      printf '%s\n' "$key" | evrun-job secret SSH_KEY || exit 3
      echo "$key" > k
      evrun-job trigger deploy -a "V=$(sed -n 2p k)" 2>&1; echo "line arg: $?"
      evrun-job trigger deploy -a "V=$(sed -n 3p k)" 2>&1; echo "short line arg: $?"
      head -2 k; echo "md: $(sed -n 2p k)"
      printf 'split: %s' "$(sed -n 1p k | cut -c1-9)"; sleep 0.3; sed -n 1p k | cut -c10-
      echo "short: $(sed -n 3p k)"
YML
  local mode
  for mode in podman process; do
    if [ "$mode" = podman ]; then
      run job-secret-lines "$tmp/job-secret-lines.yml"
    else
      sed 's|^image: .*|executor: process|' "$tmp/job-secret-lines.yml" > "$tmp/job-secret-lines-proc.yml"
      run job-secret-lines-proc "$tmp/job-secret-lines-proc.yml" --executors process
    fi
    check "$mode: exit 0" [ "$rc" -eq 0 ]
    check "$mode: each line of head -2 masked" [ "$(grep -c '^make | \*\*\*$' "$out")" -eq 2 ]
    check "$mode: a line alone masked" grep -q '^make | md: \*\*\*$' "$out"
    check "$mode: a line split across writes masked" grep -q '^make | split: \*\*\*$' "$out"
    check "$mode: a line under 4 bytes not masked alone" grep -q '^make | short: z9$' "$out"
    check "$mode: a line as a trigger's arg refused" grep -q '^make | line arg: 2$' "$out"
    check "$mode: ... as a secret's value" \
      grep -q '^make | evrun-job: refused: trigger: args.V holds the value of a secret of job' "$out"
    check "$mode: ... not a line under 4 bytes" grep -q '^make | short line arg: 0$' "$out"
    check "$mode: never printed" sh -c "! grep -Eq 'bcde-one|pqrs-two' '$out' '$err'"
    check "$mode: never in the state directory" sh -c "! grep -Erqa 'bcde-one|pqrs-two' '$state'"
  done
}

case_job_secret_name_holds() {   # a name that holds a secret's value: refused (names are not masked)
  pipeline job-secret-name <<'YML'
pipeline: job-secret-name
executor: process
secrets: [EVRUN_SECRET_NM]
steps:
  - name: make
    run: |
      echo x | evrun-job secret NmSecr8t; echo "declared: $?"
      v=$(echo 4711 | tr 0-9 A-J); printf '%s' "$v" | evrun-job secret "K_$v"; echo "own: $?"
      echo ok-value | evrun-job secret GOOD_NAME; echo "good: $?"
YML
  EVRUN_SECRET_NM=NmSecr8t run job-secret-name "$tmp/job-secret-name.yml" --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  check "a declared secret's value as the name: refused, exit 2" grep -q "^make | declared: 2$" "$out"
  check "... saying why" grep -q "^make | evrun-job: refused: secret: \"name\": holds the value of a secret of job [0-9A-Z]* (or of this one): a name cannot be masked" "$out"
  check "the value it names, in the name: refused" grep -q "^make | own: 2$" "$out"
  check "another name goes" grep -q "^make | good: 0$" "$out"
  check "one secret.registered, GOOD_NAME's" \
    [ "$("$bin/evrun-replay" "$state" --job "$job" | grep -c ' secret.registered  *{')" -eq 1 ]
  check "the names printed nowhere" sh -c "! grep -Eq 'K_EHBB|secret NmSecr8t' '$out' '$err'"
  check "... nor stored" sh -c "! grep -rqa 'K_EHBB' '$state'"
}

case_job_secret_python() {   # a client written from PROTOCOL.md alone, in a host-command step
  command -v python3 > /dev/null || { echo "  (no python3: skipped)"; return 0; }
  pipeline_chan job-secret-py <<'YML'
pipeline: job-secret-py
executor: process
steps:
  - name: py
    run: |
      python3 - <<'PY'
      CHANNEL
      value = "pyS" + str(6 * 7) + "Zq"
      reqs = [{"cmd": "hello", "id": 1},
              {"cmd": "secret", "name": "PY_KEY", "value": value, "id": "two"},
              {"cmd": "secret", "name": "HEX_KEY", "value_hex": "hex".encode().hex() + "4b", "id": 3},
              {"cmd": "reboot", "id": 4},
              {"cmd": "a" * 63 + "\u00e9", "id": 5}]
      s.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in reqs) + b"not json\n")
      for _ in range(len(reqs) + 1):
          a = json.loads(f.readline())
          print(a.get("id"), a["ok"], a.get("step", ""), a.get("error", "")[:40])
      print("value:", value, "hexK")
      PY
YML
  run job-secret-py "$tmp/job-secret-py.yml" --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  check "hello answered, in order" grep -q "^py | 1 True py $" "$out"
  check "value registered" grep -q "^py | two True  $" "$out"
  check "value_hex registered" grep -q "^py | 3 True  $" "$out"
  check "unknown command" grep -q "^py | 4 False  unknown command \"reboot\" (this runner" "$out"
  check "not JSON" grep -q "^py | None False  request is not JSON" "$out"
  # its name cut at 64 bytes inside the character: the runner crashed (SIGSEGV)
  check "an unknown command's long name, cut inside a character" \
    grep -q "^py | 5 False  unknown command \"aaaaaaaaaaaaaaaaaa" "$out"
  check "both masked" grep -q "^py | value: \*\*\* \*\*\*$" "$out"
  check "never in the state directory" sh -c "! grep -rqa 'pyS42Zq' '$state'"
}

case_job_secret_env_max() {   # registered secrets that would not fit a step's environment
  # 64 names of 32768 bytes (each allowed) made 2 MiB of variables: every
  # later step failed to start, "exec /bin/sh: Argument list too long"
  pipeline job-secret-env <<'YML'
pipeline: job-secret-env
executor: process
env: { N64: stale }
steps:
  - name: reg
    run: |
      for i in $(seq 1 64); do
        head -c 30000 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 32768 \
          | evrun-job secret "N$i" || exit 3
      done
  - name: use
    needs: [reg]
    run: echo "N1 ${#N1} bytes, N15 ${#N15}, N16 [${N16-unset}], N64 [${N64-unset}]"
YML
  run job-secret-env "$tmp/job-secret-env.yml" --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  check "the later step started" grep -q "^use | N1 32768 bytes, N15 32768, N16 \[unset\], N64 \[unset\]$" "$out"
  check "what it was not given said" \
    grep -q "^use > 49 registered secrets left out of its environment (over 524288 bytes of them in all; masked all the same; not set, nor the job's own of that name): N16, N17, N18, N19, N20, N21, N22, N23, \.\.\.$" "$out"
}

case_job_secret_values_max() {   # 256 registrations a job, a name registered again counting
  pipeline_chan job-secret-values <<'YML'
pipeline: job-secret-values
executor: process
steps:
  - name: py
    run: |
      python3 - <<'PY'
      CHANNEL
      for i in range(257):
          v = ("val%03dQz" % i).encode().hex()
          s.sendall(json.dumps({"cmd": "secret", "name": "K%d" % (i % 3), "value_hex": v}).encode() + b"\n")
          a = json.loads(f.readline())
          if not a["ok"]:
              print(i, a["error"].replace(os.environ["EVRUN_JOB_ID"], "J"))
      PY
YML
  run job-secret-values "$tmp/job-secret-values.yml" --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  check "the 257th refused, saying what to do" \
    grep -qx "py | 256 secret: job J has registered 256 values, the most it may (each registration counts, a name registered again too): register each value once" "$out"
  check "the 256 before it taken" [ "$(grep -c '^py > secret K[0-2] registered$' "$out")" -eq 256 ]
}

case_job_trigger_args() {   # a trigger's bad args: each refusal says which and what is wrong
  pipeline_chan job-trig-args <<'YML'
pipeline: job-trig-args
executor: process
triggers: [other]
steps:
  - name: t
    run: |
      evrun-job trigger other -a "V=$(head -c 5000 /dev/zero | tr '\0' a)"
      evrun-job trigger other -a 1K=v
      python3 - <<'PY'
      CHANNEL
      for args in ({"N": 5},):
          r = {"cmd": "trigger", "pipeline": "other", "call": "01JDX5QG0000000000000000AB", "args": args}
          s.sendall(json.dumps(r).encode() + b"\n")
          print(json.loads(f.readline())["error"])
      PY
YML
  run job-trig-args "$tmp/job-trig-args.yml" --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  # each was "\"args\": K: expected a variable name and a string of at
  # most 4096 bytes without NUL", whichever was wrong
  check "a value too long" grep -qx 't | evrun-job: refused: trigger: "args": V: 5000 bytes, more than 4096' "$out"
  check "a bad name" grep -qx 't | evrun-job: refused: trigger: "args": "1K" is not an arg'"'"'s name (letters, digits and _, not starting with a digit)' "$out"
  check "not a string" grep -qx 't | trigger: "args": N: expected a string value' "$out"
}

case_job_chan_parallel() {   # more evrun-jobs at once in one step than its channel's 8 connections
  pipeline job-chan-par <<'YML'
pipeline: job-chan-par
executor: process
steps:
  - name: many
    run: |
      for i in $(seq 1 40); do
        (evrun-job hello > /dev/null 2> "err.$i"; echo "$?" > "rc.$i") &
      done
      wait
      echo "failed: $(cat rc.* | grep -vc '^0$')"
      cat err.*
YML
  run job-chan-par "$tmp/job-chan-par.yml" --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  # some were "refused: too many connections ... close one and try again", exit 2
  check "all 40 answered" grep -q "^many | failed: 0$" "$out"
  check "nothing said" sh -c "! grep -q 'evrun-job' '$out'"
}

case_job_trigger_local() {   # issue 17: evrun-job trigger without a broker: the next jobs, not run
  pipeline job-trig <<'YML'
pipeline: job-trig
image: localhost/evrun-busybox:latest
triggers: [deploy, notify]
steps:
  - name: build
    run: |
      evrun-job trigger deploy notify -a ENV=prod -a "MSG=it's done" || exit 3
      evrun-job trigger other; echo "other: $?"
      evrun-job trigger; echo "usage: $?"
YML
  run job-trig "$tmp/job-trig.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the next job and its command" \
    grep -q "^build | next job: deploy: evrun-cli start deploy -a 'ENV=prod' -a 'MSG=it'\\\\''s done'$" "$out"
  check "... for each pipeline" grep -q "^build | next job: notify: evrun-cli start notify " "$out"
  check "... in the step's log" grep -q "^build > next job: deploy (no broker here: run it with: evrun-cli start deploy" "$out"
  check "not in triggers: refused, exit 2" grep -q "^build | other: 2$" "$out"
  check "... saying why" grep -q "^build | evrun-job: refused: trigger: pipeline other is not in the triggers: of pipeline job-trig (deploy, notify)" "$out"
  check "no pipeline named: exit 2" grep -q "^build | usage: 2$" "$out"
  # a secret's value as an arg: refused (the next job would keep it unmasked)
  pipeline job-trig-sec <<'YML'
pipeline: job-trig-sec
image: localhost/evrun-busybox:latest
secrets: [EVRUN_SECRET_TOK]
triggers: [deploy]
steps:
  - name: build
    run: |
      evrun-job trigger deploy -a "VERSION=v-$EVRUN_SECRET_TOK-1"; echo "secret arg: $?"
      evrun-job trigger deploy -a VERSION=plain; echo "plain arg: $?"
      evrun-job trigger deploy -a VERSION=a -a VERSION=b; echo "twice arg: $?"
YML
  EVRUN_SECRET_TOK=hunter2secret run job-trig-sec "$tmp/job-trig-sec.yml"
  check "a secret's value as an arg: refused, exit 2" grep -q "^build | secret arg: 2$" "$out"
  check "... saying why" grep -q "^build | evrun-job: refused: trigger: args.VERSION holds the value of a secret of job [0-9A-Z]*: the job it starts would keep it unmasked" "$out"
  check "... an arg without one goes" grep -q "^build | plain arg: 0$" "$out"
  check "... the value shown nowhere" sh -c "! grep -q hunter2secret '$out'"
  check "an arg given twice: refused, exit 2" grep -q "^build | twice arg: 2$" "$out"
  check "... saying which" grep -q '^build | evrun-job: trigger: -a "VERSION": given twice (each arg once)$' "$out"
}

case_job_trigger_secret_names() {   # a trigger whose names hold a secret: refused, never printed
  # names cannot be masked: the runner's own lines print them (next job:
  # ..., trigger PIPELINE: job J); the key's second line is a valid name
  pipeline job-trig-names <<'YML'
pipeline: job-trig-names
executor: process
secrets: [EVRUN_SECRET_KEY]
triggers: [deploy, Sec2LnName]
steps:
  - name: build
    run: |
      evrun-job trigger deploy -a "Sec2LnName=1"; echo "arg name: $?"
      evrun-job trigger Sec2LnName; echo "pipeline name: $?"
      evrun-job trigger deploy -a V=plain; echo "plain: $?"
YML
  EVRUN_SECRET_KEY=$(printf 'first-line-x
Sec2LnName
') run job-trig-names "$tmp/job-trig-names.yml" --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  check "an arg's name holding a secret: refused, exit 2" grep -q "^build | arg name: 2$" "$out"
  check "... saying why" grep -q "^build | evrun-job: refused: trigger: an arg's name holds the value of a secret of job [0-9A-Z]*: a name cannot be masked" "$out"
  check "a pipeline's name holding one: refused, exit 2" grep -q "^build | pipeline name: 2$" "$out"
  check "... saying why" grep -q "^build | evrun-job: refused: trigger: the pipeline's name holds the value of a secret of job" "$out"
  check "an arg without one goes" grep -q "^build | plain: 0$" "$out"
  check "the name printed nowhere (the runner's lines)" sh -c "! grep -q Sec2LnName '$out'"
  check "... nor its log" sh -c "! grep -q Sec2LnName '$err'"
}

case_job_trigger_follow() {   # --exec --follow-triggers: the triggered jobs run after the job, in turn
  local d=$tmp/follow-pipes pid i
  mkdir -p "$d"
  cat > "$d/root.yml" <<'YML'
pipeline: follow-root
executor: process
triggers: [follow-a, follow-b, follow-none]
steps:
  - name: build
    run: |
      evrun-job trigger follow-a -a "MSG=it's a" || exit 3
      evrun-job trigger follow-b || exit 4
      evrun-job trigger follow-none; echo "none: $?"
      evrun-job trigger follow-a; echo "no MSG: $?"
YML
  cat > "$d/a.yml" <<'YML'
pipeline: follow-a
executor: process
args:
  MSG: { description: what a says }
triggers: [follow-c]
steps:
  - name: say
    run: |
      echo "a says: $MSG"
      evrun-job trigger follow-c || exit 5
YML
  cat > "$d/b.yml" <<'YML'
pipeline: follow-b
executor: process
steps:
  - name: fail
    run: echo "b fails"; exit 7
YML
  cat > "$d/c.yml" <<'YML'
pipeline: follow-c
executor: process
steps:
  - name: last
    run: echo "c runs"
YML
  run follow-root "$d/root.yml" --executors process
  check "before: the follow-ups are not run" sh -c "! grep -q '^say | a says' '$out'"
  run follow "$d/root.yml" --executors process --follow-triggers
  check "exit 1: the worst of all (follow-b failed)" [ "$rc" -eq 1 ]
  check "the job succeeded" grep -Eq "^build +succeeded +0 " "$out"
  check "follow-a ran, with its args" grep -q "^say | a says: it's a$" "$out"
  check "... its header names the parent" \
    grep -q "^evrun-runner: job [0-9A-Z]*, pipeline follow-a, 1 step, .*, triggered by job $job step build$" "$out"
  check "follow-b ran and failed" grep -q "^fail | b fails$" "$out"
  check "follow-c (a follow-up of a follow-up) ran" grep -q "^last | c runs$" "$out"
  check "in turn: a, b, then c" sh -c "grep '^evrun-runner: job [0-9A-Z]*, pipeline follow-' '$out' | cut -d, -f2 | tr -d '\n' | grep -q '^ pipeline follow-root pipeline follow-a pipeline follow-b pipeline follow-c$'"
  check "an unknown pipeline refused, exit 2" grep -q "^build | none: 2$" "$out"
  check "... saying where it looked" grep -q "no pipeline \"follow-none\" in $d" "$out"
  check "args checked when triggered" grep -q "^build | no MSG: 2$" "$out"
  check "... naming the file" grep -q "build | evrun-job: refused: .*$d/a.yml.*MSG" "$out"
  local a
  a=$("$bin/evrun-replay" "$state" --json | grep '"follow-a"' | sed -n 's/.*"id":"\([0-9A-Z]*\)".*/\1/p')
  check "one job of follow-a" [ "$(echo "$a" | grep -c .)" -eq 1 ]
  check "its job.accepted has the parent" \
    sh -c "'$bin/evrun-replay' '$state' --events --json | grep job.accepted | grep '\"job\":\"$a\"' | grep -q '\"parent_job\":\"$job\",\"parent_step\":\"build\"'"
  check "four jobs in all" [ "$("$bin/evrun-replay" "$state" --json | grep -c '"pipeline"')" -eq 4 ]
  check "store verifies" verified
  # a chain that triggers itself ends at the depth bound
  cat > "$d/loop.yml" <<'YML'
pipeline: follow-loop
executor: process
triggers: [follow-loop]
steps:
  - name: again
    run: |
      evrun-job trigger follow-loop; echo "trigger: $?"
YML
  run follow-loop "$d/loop.yml" --executors process --follow-triggers --pipelines "$d"
  check "loop: exit 0" [ "$rc" -eq 0 ]
  check "loop: 1 + 8 jobs" [ "$(grep -c '^evrun-runner: job .*, pipeline follow-loop' "$out")" -eq 9 ]
  check "loop: the ninth refused" grep -q "refused: .*follow-up 8 of a chain: at most 8 deep" "$out"
  # killed after a trigger: a rerun runs the follow-up once
  cat > "$d/crash.yml" <<'YML'
pipeline: follow-crash
executor: process
triggers: [follow-c]
steps:
  - name: t
    run: |
      evrun-job trigger follow-c || exit 3
      echo triggered
      sleep 2
YML
  state=$tmp/follow-crash out=$tmp/follow-crash.out
  "$bin/evrun-runner" --exec "$d/crash.yml" --state-dir "$state" --executors process \
    --follow-triggers > "$out" 2>&1 &
  pid=$!
  for i in $(seq 1 150); do grep -q "^t | triggered$" "$out" && break; sleep 0.1; done
  kill -9 "$pid"
  wait "$pid" 2> /dev/null
  check "crash: triggered before the kill" grep -q "^t | triggered$" "$out"
  check "crash: the follow-up not run before" sh -c "! grep -q '^last | c runs' '$out'"
  "$bin/evrun-runner" --recover --state-dir "$state" --executors process --follow-triggers \
    > "$out.rec" 2>&1
  rc=$?
  check "crash: recovered, exit 0" [ "$rc" -eq 0 ]
  check "crash: the follow-up ran after the recovery" grep -q "^last | c runs$" "$out.rec"
  "$bin/evrun-runner" --recover --state-dir "$state" --executors process --follow-triggers \
    > "$out.rec2" 2>&1
  check "crash: a second rerun runs nothing" sh -c "! grep -q '^last | c runs' '$out.rec2'"
  check "crash: one job of follow-c" \
    [ "$("$bin/evrun-replay" "$state" --json | grep -c '"follow-c"')" -eq 1 ]
  check "crash: store verifies" verified
}

case_job_trigger_file() {   # evrun-job trigger --file: a pipeline file of the job's ci_source
  local d=$tmp/trigfile-src
  mkdir -p "$d/ci/sub" "$d/app"
  cat > "$d/ci/deploy.yml" <<'YML'
pipeline: follow-file
executor: process
args:
  WHERE: { description: where to }
steps:
  - name: deploy
    run: echo "deploying to $WHERE"
YML
  printf 'pipeline: follow-bad\nexecutor: process\nsteps:\n  - name: x\n    runn: echo\n' > "$d/ci/sub/bad.yml"
  cp "$d/ci/deploy.yml" "$d/ci/unlisted.yml"
  ln -s deploy.yml "$d/ci/link.yml"
  # the tested code's own deploy.yml: never the one triggered
  sed 's/deploying to/EVIL/' "$d/ci/deploy.yml" > "$d/app/deploy.yml"
  cat > "$d/root.yml" <<'YML'
pipeline: file-root
image: localhost/evrun-busybox:latest
source: { copy: app }
ci_source: { copy: ci }
triggers: ["file:deploy.yml", "file:sub/*.yml", "file:link.yml"]
steps:
  - name: go
    run: |
      echo "pipeline: follow-file" > deploy.yml   # the workspace's copy changes nothing
      evrun-job trigger --file deploy.yml -a WHERE=eu || exit 3
      evrun-job trigger --file unlisted.yml; echo "unlisted: $?"
      evrun-job trigger --file sub/bad.yml; echo "bad: $?"
      evrun-job trigger --file ../deploy.yml; echo "dotdot: $?"
      evrun-job trigger --file link.yml; echo "link: $?"
      evrun-job trigger --file deploy.yml; echo "no WHERE: $?"
YML
  run trigfile-local "$d/root.yml" --executors podman,process
  check "local: exit 0" [ "$rc" -eq 0 ]
  check "local: the command that runs it" \
    grep -q "^go | next job: deploy.yml: evrun-runner --exec deploy.yml -a 'WHERE=eu'$" "$out"
  run trigfile "$d/root.yml" --executors podman,process --follow-triggers
  check "exit 0" [ "$rc" -eq 0 ]
  check "the ci_source's file ran, with its args" grep -q "^deploy | deploying to eu$" "$out"
  check "... not the source's" sh -c "! grep -q EVIL '$out'"
  check "... its header names the parent" \
    grep -q "^evrun-runner: job [0-9A-Z]*, pipeline follow-file, .*, triggered by job $job step go$" "$out"
  check "a file not in triggers: refused" grep -q "^go | unlisted: 2$" "$out"
  check "... saying what to add" grep -q "file unlisted.yml is not in the triggers: of pipeline file-root: add file:unlisted.yml" "$out"
  check "a bad file refused" grep -q "^go | bad: 2$" "$out"
  check "... with its line and column" grep -q "refused: trigger: sub/bad.yml:5:5: .*runn" "$out"
  check "a path with .. refused" grep -q "^go | dotdot: 2$" "$out"
  check "... saying why" grep -q 'refused: trigger: "file": "../deploy.yml": an empty, "." or ".." component' "$out"
  check "a link not followed" grep -q "^go | link: 2$" "$out"
  check "... not in the ci_source as a file" grep -q "file link.yml: not in the job's ci_source" "$out"
  check "args checked when triggered" grep -q "^go | no WHERE: 2$" "$out"
  check "one follow-up" [ "$(grep -c '^evrun-runner: job .*, pipeline follow-file' "$out")" -eq 1 ]
  check "the kept files removed at the job's end" sh -c "! ls -d '$state'/artifacts/*/.trigger-files 2>/dev/null"
  check "store verifies" verified
}

case_job_chan_user() {   # a step's non-root user reaches the control channel
  pipeline job-chan-user <<'YML'
pipeline: job-chan-user
image: localhost/evrun-busybox:latest
steps:
  - name: as-user
    run: |
      echo 'u:x:1000:1000::/tmp:/bin/sh' >> /etc/passwd
      su -s /bin/sh u -c '
        id -u
        ls /run/evrun > /dev/null 2>&1; echo "list: $?"
        evrun-job hello | grep -o "\"step\":\"as-user\"" || exit 3
        printf "u%sZq" "$(echo 4711 | tr 0-9 a-j)" | evrun-job secret USER_KEY || exit 4
        echo "value: u$(echo 4711 | tr 0-9 a-j)Zq"'
YML
  run job-chan-user "$tmp/job-chan-user.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the step ran as uid 1000" grep -q "^as-user | 1000$" "$out"
  check "uid 1000 reached the channel" grep -q "^as-user | \"step\":\"as-user\"$" "$out"
  check "... and registered a secret, masked" grep -q "^as-user | value: \*\*\*$" "$out"
  check "... but cannot list the channel's directory" grep -q "^as-user | list: 1$" "$out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_job_secret_crash() {   # the runner killed (-9) between a registration and a print of the value
  pipeline job-secret-crash <<'YML'
pipeline: job-secret-crash
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: |
      V="dyn$(echo 4711 | tr 0-9 a-j)Zq"
      printf '%s' "$V" | evrun-job secret DEPLOY_KEY || exit 3
      echo registered
      sleep 3
      echo "value: $V"
      echo "err: $V" >&2
      # after the restart: the recovered runner listens on the channel again
      L="late$(echo 42 | tr 0-9 a-j)Zq"
      printf '%s' "$L" | evrun-job secret LATE_KEY || exit 4
      echo "late: $L"
  - name: use
    needs: [make]
    run: |
      echo "later: $DEPLOY_KEY (${#DEPLOY_KEY} bytes)"
YML
  sed 's|^image: .*|executor: process|' "$tmp/job-secret-crash.yml" > "$tmp/job-secret-crash-proc.yml"
  local sec=dynehbbZq mode name pid i
  for mode in podman process; do
    name=job-secret-crash file=$tmp/job-secret-crash.yml
    [ "$mode" = podman ] || name=job-secret-crash-proc file=$tmp/job-secret-crash-proc.yml
    state=$tmp/$name out=$tmp/$name.out err=$tmp/$name.err
    "$bin/evrun-runner" --exec "$file" --state-dir "$state" --executors "$mode" > "$out" 2> "$err" &
    pid=$!
    for i in $(seq 1 150); do grep -q "^make | registered$" "$out" && break; sleep 0.1; done
    kill -9 "$pid"
    wait "$pid" 2> /dev/null
    job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
    check "$mode: registered before the kill" grep -q "^make | registered$" "$out"
    check "$mode: kept outside the log, owner-only" \
      [ "$(stat -c %a "$state/job-secrets/$job" 2>/dev/null)" = 600 ]
    check "$mode: not printed before the kill" grep -vq "^make | value" "$out"
    "$bin/evrun-runner" --recover --state-dir "$state" --executors "$mode" > "$out.rec" 2> "$err.rec"
    rc=$?
    check "$mode: recovered: exit 0" [ "$rc" -eq 0 ]
    check "$mode: stored masked" sh -c "'$bin/evrun-replay' '$state' --output '$job/make' | grep -q '^value: \*\*\*$'"
    check "$mode: stderr stored masked" sh -c "'$bin/evrun-replay' '$state' --output '$job/make' | grep -q '^err: \*\*\*$'"
    check "$mode: registered again after the restart" \
      sh -c "'$bin/evrun-replay' '$state' --output '$job/make' | grep -q '^late: \*\*\*$'"
    check "$mode: that one never in the state directory" sh -c "! grep -rqa 'lateecZq' '$state'"
    check "$mode: the next step got it and masks it" \
      sh -c "'$bin/evrun-replay' '$state' --output '$job/use' | grep -q '^later: \*\*\* (9 bytes)$'"
    check "$mode: never printed" sh -c "! grep -q '$sec' '$out' '$err' '$out.rec' '$err.rec'"
    check "$mode: never in the state directory" sh -c "! grep -rqa '$sec' '$state'"
    check "$mode: its file removed at the job's end" [ ! -e "$state/job-secrets/$job" ]
    check "$mode: store verifies" verified
  done
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

cases=${*:-job_secret job_secret_lines job_secret_name_holds job_secret_python job_secret_env_max job_secret_values_max job_trigger_args job_chan_parallel job_secret_crash job_trigger_local job_trigger_secret_names job_trigger_follow job_trigger_file job_chan_user}
# shellcheck disable=SC2086
run_cases $cases

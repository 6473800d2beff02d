#!/usr/bin/env bash
# test_exec.sh BIN_DIR SRC_DIR [CASE...]: evrun-runner --exec against the
# real podman service of the "podman" fixture (EVRUN_PODMAN_URL).  Each
# case runs a pipeline in a fresh state directory and checks the output,
# the exit status, the event store (evrun-replay) and that no container
# or volume of the job is left.
#
# Here a pipeline's basics (steps, images, networks, limits, timeouts,
# secrets, resources, usage, SIGINT) and the process executor's; podman's
# failures (images, pulls, the service gone, odd answers) are
# test_exec_podman.sh's; the
# output's way and the control flow between steps are test_exec_flow.sh's,
# inside the job (evrun-job) test_exec_job.sh's.
set -u
bin=$1 src=$2
shift 2
. "$(dirname "$0")/exec_lib.sh"

case_hello() {
  run hello "$src/examples/hello.yml" -a WHO=tests
  check "exit 0" [ "$rc" -eq 0 ]
  check "live output with the step name" grep -q "^greet | hello, tests$" "$out"
  check "summary" grep -Eq "^greet +succeeded +0 " "$out"
  check "stored output" [ "$("$bin/evrun-replay" "$state" --output "$job/greet")" = "hello, tests" ]
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_failing() {
  pipeline failing <<'YML'
pipeline: failing
image: localhost/evrun-busybox:latest
steps:
  - name: first
    run: echo one
  - name: breaks
    run: |
      echo before the failure
      exit 3
  - name: never
    run: echo should not run
YML
  run failing "$tmp/failing.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/failing.job"
  check "job failed" grep -q "status failed" "$tmp/failing.job"
  check "exit code 3 recorded" grep -Eq "^breaks +failed +1 +3 " "$tmp/failing.job"
  check "later step skipped" grep -Eq "^never +skipped" "$tmp/failing.job"
  check "skipped step never ran" sh -c "! grep -q 'should not run' '$out'"
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_dag_parallel() {
  pipeline dag <<'YML'
pipeline: dag-parallel
image: localhost/evrun-busybox:latest
steps:
  - name: prepare
    run: echo ready
  - name: left
    needs: [prepare]
    run: sleep 1
  - name: right
    needs: [prepare]
    run: sleep 1
  - name: join
    needs: [left, right]
    run: echo joined
YML
  run dag "$tmp/dag.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  # started/finished (ns) of left and right from the stored projection
  local json times
  json=$("$bin/evrun-replay" "$state" --job "$job" --json | head -n 1)
  times=$(echo "$json" | grep -o '"name":"\(left\|right\)"[^}]*' \
          | sed 's/.*"started":\([0-9]*\),"finished":\([0-9]*\).*/\1 \2/')
  read -r ls le rs re <<< "$(echo $times)"
  check "both steps have times" [ -n "$ls" ]
  check "both steps have times [-n re]" [ -n "$re" ]
  check "the two 1 s steps overlap" [ "$ls" -lt "$re" ]
  check "the two 1 s steps overlap [rs -lt le]" [ "$rs" -lt "$le" ]
  check "join ran after both" grep -q "^join | joined$" "$out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_step_case() {   # two steps whose names differ in case only: two containers
  pipeline stepcase <<'YML'
pipeline: step-case
image: localhost/evrun-busybox:latest
parallel: 2
steps:
  - name: prepare
    run: echo ready
  - name: Build
    needs: [prepare]
    run: sleep 1; echo upper
  - name: build
    needs: [prepare]
    run: sleep 1; echo lower
YML
  run stepcase "$tmp/stepcase.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "Build ran" grep -q "^Build | upper$" "$out"
  check "build ran" grep -q "^build | lower$" "$out"
  local id
  id=$(echo "$job" | tr 'A-Z' 'a-z')
  check "container names: id lower case, step as written" \
    sh -c "'$bin/evrun-replay' '$state' --job '$job' | grep -q 'evrun-$id-Build-1'"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_on_failure() {
  pipeline stopall <<'YML'
pipeline: on-failure
image: localhost/evrun-busybox:latest
steps:
  - name: root
    run: "true"
  - name: breaks
    needs: [root]
    run: sleep 0.5; exit 1
  - name: sibling
    needs: [root]
    run: sleep 3; echo sibling done
  - name: after
    needs: [breaks, sibling]
    run: echo never
YML
  run stopall "$tmp/stopall.yml" --grace 1
  check "default: exit 1" [ "$rc" -eq 1 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/stopall.job"
  check "default: the running sibling is stopped" grep -Eq "^sibling +cancelled" "$tmp/stopall.job"
  check "default: dependents skipped" grep -Eq "^after +skipped" "$tmp/stopall.job"
  sed 's/^image:/on_failure: finish\nimage:/' "$tmp/stopall.yml" > "$tmp/finish.yml"
  run finish "$tmp/finish.yml" --grace 1
  check "finish: exit 1" [ "$rc" -eq 1 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/finish.job"
  check "finish: the sibling finishes" grep -Eq "^sibling +succeeded" "$tmp/finish.job"
  check "finish: its output kept" grep -q "^sibling | sibling done$" "$out"
  check "finish: dependents skipped" grep -Eq "^after +skipped" "$tmp/finish.job"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_retry() {
  pipeline retry <<'YML'
pipeline: retry
image: localhost/evrun-busybox:latest
steps:
  - name: flaky
    retry: { on: [failed], max: 2 }
    run: |
      n=$(cat /workspace/tries 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /workspace/tries
      echo "try $n"
      test $n -ge 3
  - name: after
    run: |
      echo "tries: $(cat /workspace/tries)"
YML
  run retry "$tmp/retry.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "third attempt succeeded" grep -Eq "^flaky +succeeded +3 " <("$bin/evrun-replay" "$state" --job "$job")
  check "every attempt's output stored" [ "$("$bin/evrun-replay" "$state" --output "$job/flaky" | tr '\n' ' ')" = "try 1 try 2 try 3 " ]
  check "the next step ran once after" grep -q "^after | tries: 3$" "$out"
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_workspace() {
  run workspace "$src/examples/workspace.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "the second step read the first step's file" grep -q "^test | read back: 1 2 3 4 5" "$out"
  check "artifact copied out" [ "$(cat "$state/artifacts/$job/test/build/result.txt" | wc -l)" -eq 5 ]
  check "no partial files" [ -z "$(find "$state/artifacts" -name '*.evrun-partial')" ]
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_step_image() {
  pipeline image <<'YML'
pipeline: per-step-image
image: localhost/evrun-busybox:latest
steps:
  - name: default
    run: cat /etc/evrun-image
  - name: other
    image: localhost/evrun-busybox-alt:latest
    run: cat /etc/evrun-image
YML
  run image "$tmp/image.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "default image" grep -q "^default | localhost/evrun-busybox:latest$" "$out"
  check "the step's own image" grep -q "^other | localhost/evrun-busybox-alt:latest$" "$out"
}

case_predefined() {   # CI and EVRUN_* in every step; a step's env may set them over
  pipeline predefined <<'YML'
pipeline: predefined
image: localhost/evrun-busybox:latest
steps:
  - name: show
    run: env | grep -E '^(CI|EVRUN_[A-Z_]*)=' | sort
  - name: over
    env: { CI: "no" }
    run: echo "CI=$CI step=$EVRUN_STEP attempt=$EVRUN_ATTEMPT"
YML
  run predefined "$tmp/predefined.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "CI=true" grep -qx "show | CI=true" "$out"
  check "EVRUN_JOB_ID" grep -qx "show | EVRUN_JOB_ID=$job" "$out"
  check "EVRUN_PIPELINE" grep -qx "show | EVRUN_PIPELINE=predefined" "$out"
  check "EVRUN_STEP" grep -qx "show | EVRUN_STEP=show" "$out"
  check "EVRUN_ATTEMPT" grep -qx "show | EVRUN_ATTEMPT=1" "$out"
  check "EVRUN_RUNNER (--exec: exec)" grep -qx "show | EVRUN_RUNNER=exec" "$out"
  check "a step's env sets over them" grep -qx "over | CI=no step=over attempt=1" "$out"
}

case_network() {   # bridge (default): an interface and a default route; none: loopback
  # only; host: the runner host's 127.0.0.1 (traffic only to 127.0.0.1)
  local www=$tmp/netwww port
  mkdir -p "$www"
  echo "served on the host" > "$www/hello.txt"
  serve_dir "$www" || fails=$((fails + 1))
  port=$serve_port httpd_pid=$serve_pid
  pipeline network <<YML
pipeline: network
image: localhost/evrun-busybox:latest
steps:
  - name: bridge
    run: |
      /bin/busybox ip -o -4 addr | grep -v ' lo ' | grep -q inet && echo has-interface
      /bin/busybox ip route | grep -q '^default via' && echo has-default-route
  - name: none
    network: none
    run: /bin/busybox ip -o link | grep -v ' lo:' | grep -c . || true
  - name: host
    network: host
    run: /bin/busybox wget -q -O - http://127.0.0.1:$port/hello.txt
YML
  run network "$tmp/network.yml"
  kill "$httpd_pid" 2>/dev/null; wait "$httpd_pid" 2>/dev/null; httpd_pid=
  check "exit 0" [ "$rc" -eq 0 ]
  check "bridge: an interface besides lo" grep -qx "bridge | has-interface" "$out"
  check "bridge: a default route" grep -qx "bridge | has-default-route" "$out"
  check "none: no link but lo" grep -qx "none | 0" "$out"
  check "host: the host's 127.0.0.1 reached" grep -qx "host | served on the host" "$out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
  # a runner whose operator denies the host's network refuses the job before
  # anything runs, naming the step and the setting
  run network-deny "$tmp/network.yml" --host-network deny
  check "host_network deny: exit 2 (the runner cannot run it)" [ "$rc" -eq 2 ]
  check "host_network deny: the step and the setting named" \
    grep -q "step host: network: host is refused by this runner (its host_network setting is deny)" \
    "$out" "$err"
  check "host_network deny: no step ran" sh -c "! grep -q '^bridge | ' '$out'"
  run network-bad "$tmp/network.yml" --host-network maybe
  check "host_network maybe: exit 2, the setting named" \
    sh -c "[ $rc -eq 2 ] && grep -q 'host_network = \"maybe\" (from flag): expected allow or deny' '$err'"
}

case_limits() {   # cpus, memory, pids at pipeline and step level; an OOM kill's reason
  pipeline plimits <<'YML'
pipeline: plimits
image: localhost/evrun-busybox:latest
limits: {cpus: 0.5, memory: 64M, pids: 77}
steps:
  - name: show
    run: cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max
  - name: own
    limits: {memory: 32M}
    run: cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max
  - name: hog
    limits: {memory: 16M}
    run: /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1
YML
  run plimits "$tmp/plimits.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "cpus 0.5: quota 50 ms per 100 ms" grep -qx "show | 50000" "$out"
  check "memory 64M" grep -qx "show | 67108864" "$out"
  check "pids 77" grep -qx "show | 77" "$out"
  check "a step's memory over the pipeline's" grep -qx "own | 33554432" "$out"
  check "... the pipeline's pids kept" grep -qx "own | 77" "$out"
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/plimits.job"
  check "the OOM kill's reason" grep -q "out of memory (limit 16 MiB)" "$out"
  check "... recorded with exit 137" grep -Eq "^hog +failed +1 +137 " "$tmp/plimits.job"
  check "... the reason in step.finished" grep -qF '"reason":"out of memory (limit 16 MiB)"' "$tmp/plimits.job"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_process_limits() {   # limits of a process pipeline, and a step's over them key by key
  pipeline plim <<'YML'
pipeline: plim
executor: process
limits: {nofile: 64, memory: 1G}
steps:
  - name: a
    run: echo "$(ulimit -n) $(ulimit -v)"
  - name: b
    limits: {nofile: 32}
    run: echo "$(ulimit -n) $(ulimit -v)"
YML
  run plim "$tmp/plim.yml" --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  check "the pipeline's limits" grep -qx "a | 64 1048576" "$out"
  check "a step's nofile over them, memory kept" grep -qx "b | 32 1048576" "$out"
}

case_process_signal() {   # a host step a signal ended says which; one that exits 137 is no SIGKILL
  pipeline psig <<'YML'
pipeline: psig
executor: process
on_failure: finish
steps:
  - {name: k, needs: [], run: 'kill -KILL $$'}
  - {name: t, needs: [], run: 'kill -TERM $$'}
  - {name: e, needs: [], run: exit 137}
YML
  run psig "$tmp/psig.yml" --executors process
  check "exit 1" [ "$rc" -eq 1 ]
  check "SIGKILL named" grep -Eq "^k > failed \(exit 137, [0-9.]+s\): killed by SIGKILL \(signal 9\), which evrun did not send \(another process, or the kernel's OOM killer: the host's kernel log says which\)$" "$out"
  check "SIGTERM named" grep -Eq "^t > failed \(exit 143, [0-9.]+s\): killed by SIGTERM \(signal 15\)$" "$out"
  check "an exit 137 is an exit" grep -Eq "^e > failed \(exit 137, [0-9.]+s\)$" "$out"
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/psig.job"
  check "... the exit code recorded as 128+N" grep -Eq "^k +failed +1 +137 " "$tmp/psig.job"
  check "... the reason in step.finished" grep -qF '"reason":"killed by SIGTERM (signal 15)"' "$tmp/psig.job"
  check "nothing left of the job" [ "$(process_left)" -eq 0 ]
}

case_no_newline() {   # a step's last line without a newline is ended before its status line
  pipeline nonl <<'YML'
pipeline: nonl
executor: process
steps:
  - name: a
    run: printf no-newline
  - name: b
    run: echo whole
YML
  run nonl "$tmp/nonl.yml" --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  check "the partial line ends on its own" grep -qx "a | no-newline" "$out"
  check "the status line on a line of its own" grep -q "^a > succeeded" "$out"
}

case_parallel_partial() {   # a line left open by one step is ended before another's text
  pipeline ppart <<'YML'
pipeline: ppart
executor: process
steps:
  - name: a
    needs: []
    run: printf 'half-'; sleep 1.5; printf 'rest\n'; printf 'err-open' >&2; sleep 1; echo out-line
  - name: b
    needs: []
    run: sleep 0.5; echo from-b; sleep 0.5; echo again-b
YML
  run ppart "$tmp/ppart.yml" --executors process
  check "parallel partial: exit 0" [ "$rc" -eq 0 ]
  check "parallel partial: a's open line ended on its own" grep -qx "a | half-" "$out"
  check "parallel partial: b's line on a line of its own" grep -qx "b | from-b" "$out"
  check "parallel partial: a's rest prefixed again" grep -qx "a | rest" "$out"
  check "parallel partial: a's open stderr line ended by its stdout" grep -qx "a | err-open" "$out"
  check "parallel partial: nothing goes on after an open line" not grep -E 'half-.|err-open.' "$out"
  check "parallel partial: b's status line on a line of its own" grep -q "^b > succeeded" "$out"
}

case_stream_order() {   # stdout and stderr lines stored in the order they were read
  pipeline order <<'YML'
pipeline: order
image: localhost/evrun-busybox:latest
steps:
  - name: s
    run: echo one; sleep 0.02; echo two >&2; sleep 0.02; echo three; sleep 0.02; echo four >&2
YML
  run order "$tmp/order.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  "$bin/evrun-replay" "$state" --events --json | grep "\"job\":\"$job\"" \
    | grep '"type":"step.output"' | sed -n 's/.*"bytes":"\([a-z]*\)\\n".*/\1/p' \
    | tr '\n' ' ' > "$tmp/order.seq"
  check "four output events, one a line, in the order written" \
    [ "$(cat "$tmp/order.seq")" = "one two three four " ]
  check "store verifies" verified
}

# conmon's attach socket reset (conmon closed a connection it never
# took: seen under load on a step that exits at once): the step does not
# fail for it; its output comes from podman's log once it has exited,
# each line once (EVR_TEST_CONMON_RESET takes each stream's end for a reset)
case_conmon_reset() {
  pipeline reset <<'YML'
pipeline: reset
image: localhost/evrun-busybox:latest
steps:
  - name: s
    run: seq 1 3000; echo err-line >&2; printf tail-no-newline
  - name: quick
    run: ":"
YML
  EVR_TEST_CONMON_RESET=1 run reset "$tmp/reset.yml"
  check "exit 0: no step failed for the reset" [ "$rc" -eq 0 ]
  check "the runner said what it did" grep -q "conmon's attach socket: reading conmon's attach socket: Connection reset by peer (EVR_TEST_CONMON_RESET); the rest of its output is read from podman's log" "$err"
  "$bin/evrun-replay" "$state" --output "$job/s" > "$tmp/reset.out" 2>&1
  check "every line once, in order" [ "$(grep -c '^[0-9]*$' "$tmp/reset.out")" -eq 3000 ]
  check "... none twice" [ "$(grep '^[0-9]*$' "$tmp/reset.out" | sort -u | wc -l)" -eq 3000 ]
  check "... stderr and the last partial line too, once each" sh -c "[ \$(grep -o err-line '$tmp/reset.out' | wc -l) -eq 1 ] && [ \$(grep -o tail-no-newline '$tmp/reset.out' | wc -l) -eq 1 ]"
  check "exit files stay in use for later steps (no fallback to inspect for all)" \
    sh -c "! grep -q 'exit file .* did not come' '$err'"
  check "store verifies" verified
}

case_artifact_dir() {   # the runner cannot make its artifacts directory: the reason names it
  pipeline adir <<'YML'
pipeline: adir
image: localhost/evrun-busybox:latest
steps:
  - {name: b, run: "echo x > o.txt", artifacts: [o.txt]}
YML
  mkdir -p "$tmp/adir"
  touch "$tmp/adir/artifacts"     # a file where the directory goes
  run adir "$tmp/adir.yml"
  check "exit 1" [ "$rc" -eq 1 ]
  check "the reason names the runner's directory, not the step's path" \
    grep -q "^b > failed (.*): its command exited 0, but artifact o.txt: mkdir $tmp/adir/artifacts/$job: Not a directory$" "$out"
}

case_timeout() {
  pipeline timeout <<'YML'
pipeline: timeout
image: localhost/evrun-busybox:latest
steps:
  - name: slow
    timeout: 2s
    run: |
      echo started
      sleep 30
YML
  local t0=$SECONDS
  run timeout "$tmp/timeout.yml" --grace 1
  check "exit 1" [ "$rc" -eq 1 ]
  check "stopped well before 30 s" [ $((SECONDS - t0)) -lt 15 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/timeout.job"
  check "step timed out" grep -Eq "^slow +timed_out" "$tmp/timeout.job"
  check "output before the timeout kept" grep -q "^slow | started$" "$out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
  # a step that ignores SIGTERM: killed after the grace, and its reason says so
  pipeline deaf <<'YML'
pipeline: deaf
image: localhost/evrun-busybox:latest
steps:
  - name: deaf
    timeout: 1s
    run: trap '' TERM; echo started; while :; do sleep 1; done
YML
  run deaf "$tmp/deaf.yml" --grace 1
  check "deaf: exit 1" [ "$rc" -eq 1 ]
  check "... the reason says SIGKILL ended it after the grace" \
    grep -q "^deaf > timed_out (exit 137.*): timed out after 1000 ms; it did not end on SIGTERM and was killed (SIGKILL) 1 s later, the runner's --grace$" "$out"
}

case_secret() {
  local secret=s3cr3t-Value-4711
  pipeline secret <<'YML'
pipeline: secret
image: localhost/evrun-busybox:latest
secrets: [DEPLOY_TOKEN]
steps:
  - name: leak
    run: |
      echo "whole: $DEPLOY_TOKEN"
      # the value split across two writes, 300 ms apart: two stored chunks
      printf '%s' "split: $(echo "$DEPLOY_TOKEN" | cut -c1-6)"
      sleep 0.3
      echo "$DEPLOY_TOKEN" | cut -c7-
      echo "length ${#DEPLOY_TOKEN}" >&2
YML
  DEPLOY_TOKEN=$secret run secret "$tmp/secret.yml" --secrets-allow DEPLOY_TOKEN
  check "exit 0" [ "$rc" -eq 0 ]
  check "masked in printed output" grep -q "^leak | whole: \*\*\*$" "$out"
  check "masked across chunks" grep -q "^leak | split: \*\*\*$" "$out"
  check "the step's end printed after its output" \
    [ "$(grep -n '^leak > succeeded' "$out" | cut -d: -f1)" -gt "$(grep -n '^leak | ' "$out" | tail -n 1 | cut -d: -f1)" ]
  check "never printed" sh -c "! grep -q '$secret' '$out' '$tmp/secret.err'"
  check "never in the store's files" sh -c "! grep -rqa '$secret' '$state'"
  check "nor any half of it" sh -c "! grep -rqa 'Value-4711' '$state'"
  check "stderr kept" grep -q "^leak | length 17$" "$out"
  # host commands: masked the same; nothing of it stays in the state
  # directory (the unit's environment file and raw output go with the unit)
  sed 's|^image: .*|executor: process|' "$tmp/secret.yml" > "$tmp/secret-proc.yml"
  DEPLOY_TOKEN=$secret run secret-proc "$tmp/secret-proc.yml" --secrets-allow DEPLOY_TOKEN \
    --executors process
  check "process: exit 0" [ "$rc" -eq 0 ]
  check "process: masked across chunks" grep -q "^leak | split: \*\*\*$" "$out"
  check "process: never printed" sh -c "! grep -q '$secret' '$out' '$err'"
  check "process: never in the state directory" sh -c "! grep -rqa '$secret' '$state'"
  check "process: nor any half of it" sh -c "! grep -rqa 'Value-4711' '$state'"
  run nosecret "$tmp/secret.yml" --secrets-allow DEPLOY_TOKEN
  check "missing secret: exit 2" [ "$rc" -eq 2 ]
  check "missing secret named" grep -q "secret DEPLOY_TOKEN: not set" "$tmp/nosecret.err"
}

case_secret_lines() {   # a secret of several lines (a PEM key): each line printed alone masked too
  local d=$tmp/secret-lines.d l
  mkdir -p "$d"
  printf '%s\n' '-----BEGIN TEST KEY-----' 'MIIEkeyLineOne4711abcdefghij' 'QUJDkeyLineTwo0815klmnopqrst' \
    'ab=' '-----END TEST KEY-----' > "$d/SSH_KEY"
  pipeline secret-lines <<'YML'
pipeline: secret-lines
image: localhost/evrun-busybox:latest
secrets: [SSH_KEY]
steps:
  - name: deploy
    run: |
      echo "$SSH_KEY" > k; cat k; head -2 k; echo "md: $(sed -n 2p k)"
      # a line split across two writes, 300 ms apart
      printf 'split: %s' "$(sed -n 3p k | cut -c1-10)"; sleep 0.3; sed -n 3p k | cut -c11-
      echo "crlf: $(sed -n 2p k)$(printf '\r')"
      echo "short: $(sed -n 4p k)"
YML
  sed 's|^image: .*|executor: process|' "$tmp/secret-lines.yml" > "$tmp/secret-lines-proc.yml"
  for l in podman process; do
    if [ "$l" = podman ]; then
      run secret-lines "$tmp/secret-lines.yml" --secrets-dir "$d"
    else
      run secret-lines-proc "$tmp/secret-lines-proc.yml" --secrets-dir "$d" --executors process
    fi
    check "$l: exit 0" [ "$rc" -eq 0 ]
    check "$l: the whole (cat) and each line (head -2) masked" \
      [ "$(grep -c '^deploy | \*\*\*$' "$out")" -eq 3 ]
    check "$l: a line alone masked" grep -q '^deploy | md: \*\*\*$' "$out"
    check "$l: a line split across writes masked" grep -q '^deploy | split: \*\*\*$' "$out"
    check "$l: a line with a CR masked" grep -q "^deploy | crlf: \*\*\*$(printf '\r')\$" "$out"
    check "$l: a line under 4 bytes is not masked alone" grep -q '^deploy | short: ab=$' "$out"
    check "$l: stored masked" sh -c "'$bin/evrun-replay' '$state' --output '$job/deploy' | grep -q '^md: \*\*\*$'"
    check "$l: no line printed" sh -c "! grep -Eq 'keyLine|TEST KEY' '$out' '$err'"
    check "$l: no line in the state directory" sh -c "! grep -Erqa 'keyLine|TEST KEY' '$state'"
  done
  # past 4096 lines: the rest not masked on their own, the runner says so
  seq -f 'many%05g' 1 4100 > "$d/MANY"
  printf 'pipeline: many\nexecutor: process\nsecrets: [MANY]\nsteps:\n  - name: s\n    run: echo "$MANY" | sed -n "1p;4100p"\n' \
    > "$tmp/many.yml"
  run many "$tmp/many.yml" --secrets-dir "$d" --executors process
  check "many: exit 0" [ "$rc" -eq 0 ]
  check "many: the first lines masked" grep -q '^s | \*\*\*$' "$out"
  check "many: a line past 4096 not masked alone" grep -q '^s | many04100$' "$out"
  check "many: said in the runner's log" \
    grep -q "job $job: 4 lines of its secrets are not masked on their own" "$err"
}

case_resource() {
  local www=$tmp/www port
  mkdir -p "$www/tree/sub"
  echo "plain resource" > "$www/notes.txt"
  echo "from the archive" > "$www/tree/sub/inside.txt"
  ln "$www/tree/sub/inside.txt" "$www/tree/also.txt"   # GNU tar: a hard link entry
  tar -C "$www/tree" -czf "$www/src.tar.gz" .
  serve_dir "$www" || fails=$((fails + 1))
  port=$serve_port httpd_pid=$serve_pid
  pipeline resource <<YML
pipeline: resource
image: localhost/evrun-busybox:latest
resources:
  - { name: notes, url: "http://127.0.0.1:$port/notes.txt", path: docs/notes.txt }
  - { name: src, url: "http://127.0.0.1:$port/src.tar.gz", path: src }
steps:
  - name: use
    run: |
      cat docs/notes.txt
      cat src/sub/inside.txt
      echo "linked: \$(cat src/also.txt), \$(stat -c %h src/also.txt) names"
YML
  run resource "$tmp/resource.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "plain file in /workspace" grep -q "^use | plain resource$" "$out"
  check "archive unpacked" grep -q "^use | from the archive$" "$out"
  check "a hard link: one file, two names" grep -q "^use | linked: from the archive, 2 names$" "$out"
  check "the resource's line" grep -q "^evrun-runner: resource notes: [0-9]* bytes from .* into docs/notes.txt in /workspace$" "$out"
  # the same into a process pipeline's workspace (a directory on the host)
  sed 's|^image: .*|executor: process|' "$tmp/resource.yml" > "$tmp/resource-proc.yml"
  run resource-proc "$tmp/resource-proc.yml" --executors process
  check "process: exit 0" [ "$rc" -eq 0 ]
  check "process: plain file in the workspace" grep -q "^use | plain resource$" "$out"
  check "process: archive unpacked" grep -q "^use | from the archive$" "$out"
  check "process: a hard link: one file, two names" grep -q "^use | linked: from the archive, 2 names$" "$out"
  check "process: the workspace is no /workspace" \
    grep -q "^evrun-runner: resource notes: [0-9]* bytes from .* into docs/notes.txt in the workspace directory$" "$out"
  check "process: /workspace named nowhere" sh -c "! grep -q /workspace '$out'"
  check "process: nothing left of the job" [ "$(process_left)" -eq 0 ]
  sed "s/notes.txt\", path/missing.txt\", path/" "$tmp/resource.yml" > "$tmp/resource404.yml"
  run resource404 "$tmp/resource404.yml"
  check "a 404 fails the job" [ "$rc" -eq 1 ]
  check "the 404 is named" grep -q "resource notes: .* answered HTTP 404" "$tmp/resource404.out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
  # a sparse file in a tar (GNU tar -S): written whole, not as a sparse
  # map podman cannot read
  mkdir -p "$www/sparse"
  truncate -s 16M "$www/sparse/holes.bin"   # one hole, no data
  echo data > "$www/sparse/next.txt"
  tar -C "$www/sparse" -S -czf "$www/sparse.tar.gz" .
  pipeline sparse <<YML
pipeline: sparse
image: localhost/evrun-busybox:latest
resources:
  - { name: holes, url: "http://127.0.0.1:$port/sparse.tar.gz", path: data }
steps:
  - name: use
    run: wc -c < data/holes.bin; cat data/next.txt
YML
  run sparse "$tmp/sparse.yml"
  check "sparse file: exit 0" [ "$rc" -eq 0 ]
  check "sparse file: whole size" grep -q "^use | 16777216$" "$out"
  check "sparse file: the entry after it" grep -q "^use | data$" "$out"
  check "sparse file: nothing left in podman" [ "$(left_behind)" -eq 0 ]
  kill "$httpd_pid" 2>/dev/null
  httpd_pid=
}

case_artifact_full() {   # needs root to mount a small tmpfs as the artifacts directory
  if [ "$(id -u)" -ne 0 ]; then echo "  skipped: needs root"; return; fi
  pipeline artfull <<'YML'
pipeline: artfull
image: localhost/evrun-busybox:latest
steps:
  - name: make
    run: mkdir -p out && dd if=/dev/urandom of=out/big bs=1024 count=2048 2>/dev/null
    artifacts: [out]
YML
  state=$tmp/artfull
  mkdir -p "$state/artifacts"
  mount -t tmpfs -o size=256k tmpfs "$state/artifacts" || { echo "  skipped: mount failed"; return; }
  mounted=$state/artifacts
  run artfull "$tmp/artfull.yml" --state-dir "$state"
  umount "$state/artifacts" && mounted=
  check "exit 1" [ "$rc" -eq 1 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/artfull.job"
  check "the cause named, with the file" \
    grep -q "artifact out: no space left on device writing $state/artifacts/$job/.download-" "$tmp/artfull.job"
  check "not the aborted download" bash -c "! grep -q 'aborted' '$tmp/artfull.job'"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_process_full() {   # needs root to mount a small tmpfs as the units directory
  # a step whose output fills the disk: its supervisor writes the exit
  # status in the room it kept, and the step fails saying so (before: no
  # room for it, the step was lost, "was it killed?", its log empty)
  if [ "$(id -u)" -ne 0 ]; then echo "  skipped: needs root"; return; fi
  pipeline procfull <<'YML'
pipeline: procfull
executor: process
steps:
  - name: fill
    run: seq 1 400000; exit 0
  - name: after
    run: echo never
YML
  state=$tmp/procfull
  mkdir -p "$state/units"
  mount -t tmpfs -o size=1m,mode=0700 tmpfs "$state/units" || { echo "  skipped: mount failed"; return; }
  mounted=$state/units
  run procfull "$tmp/procfull.yml" --executors process
  local left
  left=$(ls "$state/units" | wc -l)
  umount "$state/units" && mounted=
  check "exit 1" [ "$rc" -eq 1 ]
  check "the step failed, not lost" grep -Eq "^fill +failed " "$out"
  check "the cause named, with the unit and the step's exit" grep -q \
    "^job $job failed in .*: step fill failed: waiting for the process: no space left on device in $state/units/evrun-[0-9a-z]*-fill-1 when the step ended (exit 0): its output may be cut short" "$out"
  check "not taken for a killed supervisor" bash -c "! grep -q 'was it killed' '$out'"
  # (all lines but the last, which the disk may have cut)
  check "the output it could write is stored, in order" \
    bash -c "'$bin/evrun-replay' '$state' --output '$job/fill' | awk 'NR != \$1 { bad = NR } END { exit NR < 1000 || (bad && bad != NR) }'"
  check "the next step skipped" grep -Eq "^after +skipped " "$out"
  check "store verifies" verified
  check "its unit removed" [ "$left" -eq 0 ]
  check "nothing left of the job" [ "$(process_left)" -eq 0 ]
}

case_bad_file() {
  run bad "$src/tests/data/pipelines/bad/cycle.yml"
  check "exit 2" [ "$rc" -eq 2 ]
  check "the loader's message" grep -q "dependency cycle" "$err"
}

# usage errors: the message and the usage lines, not every option (the
# error would scroll away), exit 2; a file given without --exec says so
case_usage() {
  "$bin/evrun-runner" "$src/examples/hello.yml" > "$tmp/usage.out" 2> "$tmp/usage.err"
  check "a file without --exec: exit 2" [ $? -eq 2 ]
  check "... names it and says where it goes" \
    grep -q 'unexpected argument ".*hello.yml" (a pipeline file goes after --exec: evrun-runner --exec FILE)' "$tmp/usage.err"
  check "... the usage, not the options" [ "$(wc -l < "$tmp/usage.err")" -le 8 ]
  check "... points at --help" grep -q "every option: evrun-runner --help" "$tmp/usage.err"
  "$bin/evrun-runner" --exec a.yml b.yml 2> "$tmp/usage.err"
  check "two files: exit 2, naming the second" grep -q 'unexpected argument "b.yml" (--exec takes one FILE' "$tmp/usage.err"
  "$bin/evrun-runner" --exce a.yml 2> "$tmp/usage.err"
  check "an unknown option: exit 2" [ $? -eq 2 ]
  check "... the usage, not the options" [ "$(wc -l < "$tmp/usage.err")" -le 8 ]
  "$bin/evrun-runner" --help > "$tmp/usage.out"
  check "--help: every option on stdout" grep -q -- "--resource-redirects" "$tmp/usage.out"
}

case_term_at_start() {   # a signal while the runner starts: exit 143, nothing recorded
  pipeline tstart <<'YML'
pipeline: tstart
executor: process
steps:
  - name: s
    run: echo never
YML
  # a podman socket that answers its ping 2 s late: the runner is still
  # starting when the signal comes
  cat > "$tmp/slowpod.py" <<'PY'
import os, socket, sys, threading, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
def serve(c):
    c.recv(65536); time.sleep(2)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nLibpod-Api-Version: 4.3.1\r\n\r\nOK")
    time.sleep(1); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
  python3 "$tmp/slowpod.py" "$tmp/slowpod.sock" &
  local pod=$! p
  for _ in $(seq 1 50); do [ -S "$tmp/slowpod.sock" ] && break; sleep 0.1; done
  state=$tmp/tstart
  "$bin/evrun-runner" --exec "$tmp/tstart.yml" --state-dir "$state" --executors podman,process \
    --podman-url "unix://$tmp/slowpod.sock" > "$tmp/tstart.out" 2> "$tmp/tstart.err" &
  p=$!
  sleep 1
  kill -TERM "$p"
  wait "$p"; rc=$?
  kill "$pod"; wait "$pod" 2> /dev/null
  check "term at start: exit 143 (got $rc)" [ "$rc" -eq 143 ]
  check "term at start: says so" \
    grep -q "interrupted (SIGTERM) before any job was taken up: nothing recorded" "$tmp/tstart.err"
  check "term at start: no job recorded" not grep -q "tstart" <("$bin/evrun-replay" "$state")
}

case_sigint() {
  pipeline sigint <<'YML'
pipeline: sigint
image: localhost/evrun-busybox:latest
steps:
  - name: long
    run: |
      echo begun
      sleep 60
  - name: after
    run: echo never
YML
  state=$tmp/sigint
  local t0=$SECONDS
  "$bin/evrun-runner" --exec "$tmp/sigint.yml" --state-dir "$state" --grace 2 \
    > "$tmp/sigint.out" 2> "$tmp/sigint.err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "^long | begun" "$tmp/sigint.out" 2>/dev/null && break; sleep 0.1; done
  kill -INT "$pid"
  wait "$pid"
  rc=$?
  out=$tmp/sigint.out
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
  check "exit 1" [ "$rc" -eq 1 ]
  check "ended within the grace period" [ $((SECONDS - t0)) -lt 20 ]
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/sigint.job"
  check "job cancelled" grep -q "status cancelled" "$tmp/sigint.job"
  check "running step cancelled" grep -Eq "^long +cancelled" "$tmp/sigint.job"
  check "next step skipped" grep -Eq "^after +skipped" "$tmp/sigint.job"
  check "cancel recorded" grep -q "job.cancel_requested" "$tmp/sigint.job"
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_process() {   # examples/process.yml as host commands
  run process "$src/examples/process.yml" --executors process -a WHO=tests
  check "exit 0" [ "$rc" -eq 0 ]
  check "banner names the executor" grep -q "^evrun-runner: job .*, process (host commands in $state/work)$" "$out"
  check "live output, env and args" grep -q "^build | hello, tests, from Linux$" "$out"
  check "stderr too" grep -q "^build | compiling (a warning goes to stderr)$" "$out"
  check "stored output, both streams" [ "$("$bin/evrun-replay" "$state" --output "$job/build" | wc -l)" -eq 2 ]
  check "artifact copied out" cmp -s <(seq 1 5) "$state/artifacts/$job/build/dist/numbers.txt"
  check "ran in the workspace" grep -q "^built in $state/work/$job$" "$state/artifacts/$job/build/dist/README"
  check "the next step saw the workspace" grep -q "^test | sum 15$" "$out"
  check "summary" grep -Eq "^test +succeeded +0 " "$out"
  check "store verifies" verified
  check "nothing left of the job" [ "$(process_left)" -eq 0 ]
}

case_process_missing_artifact() {   # a path not there fails the step; the 0 is not the cause
  pipeline noart <<'YML'
pipeline: noart
executor: process
steps:
  - name: missing
    run: echo kept > yes.txt
    artifacts: [nope.txt, yes.txt]
YML
  run noart "$tmp/noart.yml" --executors process
  check "exit 1" [ "$rc" -eq 1 ]
  local why="its command exited 0, but artifact nope.txt: no such file or directory"
  check "the step's line: no exit 0 as the cause" grep -q "^missing > failed ([0-9.]*s): $why" "$out"
  check "the job's reason" grep -q "^job $job failed in .*: step missing failed: $why" "$out"
  check "the summary has the command's exit code" grep -Eq "^missing +failed +0 " "$out"
  check "the path that is there is kept" [ "$(cat "$state/artifacts/$job/missing/yes.txt")" = kept ]
  check "nowhere (exit 0)" sh -c "! grep -q '(exit 0' '$out'"
}

case_process_artifact_links() {   # process executor: links inside left out, a path that is one refused
  pipeline proclink <<'YML'
pipeline: proclink
executor: process
steps:
  - name: s
    run: mkdir -p out && echo real > out/real.txt && ln -s real.txt out/rel && ln -s /etc/passwd out/pw && ln out/real.txt out/hard && ln -s out lnk
    artifacts: [out, lnk]
YML
  run proclink "$tmp/proclink.yml" --executors process
  local a=$state/artifacts/$job/s
  check "exit 1 (lnk)" [ "$rc" -eq 1 ]
  check "the links inside named" grep -q "^s | evrun: artifact out: 2 symbolic links left out (links are not followed, nor copied): out/pw, out/rel$" "$out"
  check "the path that is a link refused, named" grep -q "^s > failed ([0-9.]*s): its command exited 0, but artifact lnk: a symbolic link (to \"out\"): links are not followed; name the file or directory it points to$" "$out"
  check "the files kept, the hard link a copy" [ "$(cat "$a/out/real.txt")/$(cat "$a/out/hard")/$(stat -c %h "$a/out/hard")" = real/real/1 ]
  check "no link kept, nothing followed" [ -z "$(find "$a" -type l)" ]
  check "no link kept, nothing followed [! -e a/lnk]" [ ! -e "$a/lnk" ]
  check "no link kept, nothing followed [(find a -type f | wc -l) -eq 2]" [ "$(find "$a" -type f | wc -l)" -eq 2 ]
}

case_process_link_secret() {   # a step's reason that quotes what it made: masked
  pipeline proclinksec <<'YML'
pipeline: proclinksec
executor: process
secrets: [LINK_SECRET]
steps:
  - name: s
    run: ln -s "$LINK_SECRET" lnk
    artifacts: [lnk]
YML
  LINK_SECRET=link-target-S3cret-61 run proclinksec "$tmp/proclinksec.yml" --executors process \
    --secrets-allow LINK_SECRET
  check "exit 1 (lnk)" [ "$rc" -eq 1 ]
  check "the note masked" grep -q '^s | evrun: artifact lnk: a symbolic link (to "\*\*\*")' "$out"
  check "the reason masked" grep -q '^s > failed ([0-9.]*s): its command exited 0, but artifact lnk: a symbolic link (to "\*\*\*")' "$out"
  check "the secret nowhere in the output or the store" \
    sh -c "! grep -rq 'link-target-S3cret-61' '$out' '$state'"
}

case_process_relative_state() {   # --state-dir relative to where the runner starts
  mkdir -p "$tmp/rel"
  local b
  b=$(cd "$bin" && pwd)
  (cd "$tmp/rel" && "$b/evrun-runner" --exec "$src/examples/process.yml" --executors process \
     -a WHO=tests --state-dir st > out 2> err)
  check "exit 0" [ $? -eq 0 ]
  check "steps ran" grep -q "^test | sum 15$" "$tmp/rel/out"
  check "the banner names the absolute workspace" \
    grep -q "^evrun-runner: job .*, process (host commands in $tmp/rel/st/work)$" "$tmp/rel/out"
}

case_process_refused() {   # not offered: refused with the reason, before anything runs
  run refused "$src/examples/process.yml"
  check "exit 2" [ "$rc" -eq 2 ]
  check "says the runner does not offer it, and how" \
    grep -q "this runner does not offer executor process (it offers: podman); start it with --executors podman,process" "$err"
  no_work() { [ ! -d "$state/work" ] || [ -z "$(ls "$state/work")" ]; }   # none, or empty
  check "no workspace made" no_work
  # the refusal comes before any executor is opened: with podman down too
  EVRUN_PODMAN_URL=unix:///tmp/evr-no-such-podman.sock "$bin/evrun-runner" \
    --exec "$src/examples/process.yml" --state-dir "$tmp/refused-np" > "$tmp/refused-np.out" 2>&1
  check "podman down: exit 2" [ $? -eq 2 ]
  check "podman down: the refusal, naming the file" grep -q "process.yml: this runner does not \
offer executor process (it offers: podman); start it with --executors podman,process" "$tmp/refused-np.out"
  check "podman down: not podman's error" bash -c "! grep -q 'podman at' '$tmp/refused-np.out'"
  "$bin/evrun-runner" --exec "$src/examples/process.yml" --executors procss > "$tmp/bad-x.out" 2>&1
  check "an unknown executor: exit 2" [ $? -eq 2 ]
  check "an unknown executor: named" grep -q 'executors = "procss" (from flag): unknown executor "procss" (expected podman, process' "$tmp/bad-x.out"
}

case_process_image() {   # an image in a process pipeline: refused at its key
  pipeline procimage <<'YML'
pipeline: procimage
executor: process
steps:
  - name: a
    image: localhost/evrun-busybox:latest
    run: echo never
YML
  run procimage "$tmp/procimage.yml" --executors process
  check "exit 2" [ "$rc" -eq 2 ]
  check "file:line:col and the fix" \
    grep -q "procimage.yml:5:12: steps\[0\].image: a process pipeline runs on the host; remove image" "$err"
  check "nothing ran" [ -z "$job" ]
}

case_process_sigint() {   # a cancel ends the step's whole process group
  pipeline procint <<'YML'
pipeline: procint
executor: process
steps:
  - name: long
    run: |
      sleep 300 &
      echo $! > bg.pid
      echo begun
      trap '' TERM
      wait
YML
  state=$tmp/procint
  "$bin/evrun-runner" --exec "$tmp/procint.yml" --executors process --state-dir "$state" \
    --grace 1 > "$tmp/procint.out" 2> "$tmp/procint.err" &
  local pid=$! bg
  for _ in $(seq 1 100); do grep -q "^long | begun" "$tmp/procint.out" 2>/dev/null && break; sleep 0.1; done
  bg=$(cat "$state"/work/*/bg.pid)
  check "the background process runs" kill -0 "$bg"
  kill -INT "$pid"
  wait "$pid"
  rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/procint.out" | head -n 1)
  check "exit 1" [ "$rc" -eq 1 ]
  check "step cancelled" grep -Eq "^long +cancelled" <("$bin/evrun-replay" "$state" --job "$job")
  check "the background process ended with it" sh -c "! kill -0 $bg 2>/dev/null"
  check "nothing left of the job" [ "$(process_left)" -eq 0 ]
}

# A process job left running by a killed runner, and a restart that does
# not offer process: refused (exit 2), naming the job and the fix, in every
# mode, the job left as it was; started with process, it finishes.
case_process_unfinished() {
  pipeline procnap <<'YML'
pipeline: procnap
executor: process
steps:
  - name: nap
    run: echo before; sleep 2; echo after
YML
  state=$tmp/procnap
  "$bin/evrun-runner" --exec "$tmp/procnap.yml" --executors process --state-dir "$state" \
    > "$tmp/procnap.out" 2> "$tmp/procnap.err" &
  local pid=$! want
  for _ in $(seq 1 100); do grep -q "^nap | before" "$tmp/procnap.out" 2>/dev/null && break; sleep 0.1; done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$tmp/procnap.out" | head -n 1)
  want="evrun-runner: job $job (pipeline procnap) is unfinished and runs with executor process, \
which this runner does not offer: start it with --executors podman,process"
  "$bin/evrun-runner" --recover --state-dir "$state" > "$tmp/procnap.r1" 2>&1
  check "--recover without process: exit 2" [ $? -eq 2 ]
  check "... naming the job and the fix" grep -qxF "$want" "$tmp/procnap.r1"
  timeout -k 10 20 "$bin/evrun-runner" --broker "ipc://$tmp/procnap-none" --state-dir "$state" \
    > "$tmp/procnap.r2" 2>&1
  check "--broker without process: exit 2" [ $? -eq 2 ]
  check "... naming the job and the fix" grep -qxF "$want" "$tmp/procnap.r2"
  "$bin/evrun-runner" --exec "$src/examples/hello.yml" --state-dir "$state" > "$tmp/procnap.r3" 2>&1
  check "--exec of another pipeline without process: exit 2" [ $? -eq 2 ]
  check "... naming the job and the fix" grep -qxF "$want" "$tmp/procnap.r3"
  check "the job left unfinished" grep -Eq "^$job +procnap +running " <("$bin/evrun-replay" "$state")
  "$bin/evrun-runner" --recover --executors process --state-dir "$state" > "$tmp/procnap.r4" 2>&1
  check "--recover with process: exit 0" [ $? -eq 0 ]
  check "the job succeeded" grep -Eq "^$job +procnap +succeeded " <("$bin/evrun-replay" "$state")
  check "its output whole, once" [ "$("$bin/evrun-replay" "$state" --output "$job/nap" | tr '\n' ' ')" = "before after " ]
  check "store verifies" verified
  check "nothing left of the job" [ "$(process_left)" -eq 0 ]
}

cases=${*:-hello failing dag_parallel step_case on_failure retry workspace step_image predefined network limits process_limits process_signal no_newline parallel_partial stream_order conmon_reset artifact_dir timeout secret secret_lines resource artifact_full process_full bad_file usage term_at_start sigint process process_missing_artifact process_artifact_links process_link_secret process_relative_state process_refused process_image process_sigint process_unfinished}
# shellcheck disable=SC2086
run_cases $cases

#!/usr/bin/env bash
# test_exec_flow.sh BIN_DIR SRC_DIR [CASE...]: evrun-runner --exec against
# the real podman service of the "podman" fixture, as test_exec.sh (its
# helpers are exec_lib.sh): the steps' output on its way (large, masked,
# to a slow non-blocking stdout, from conmon's attach socket) and the
# control flow between steps (allow_failure, when, on_error, a cancel's
# always steps, matrix steps, outputs passed on).
set -u
bin=$1 src=$2
shift 2
. "$(dirname "$0")/exec_lib.sh"

case_secret_short() {   # a secret of one byte: its masks triple the output, chunks stay in bounds
  pipeline secret_short <<'YML'
pipeline: secret_short
executor: process
secrets: [ONE]
steps:
  - name: xs
    run: head -c 300000 /dev/zero | tr '\000' x; echo
YML
  ONE=x run secret_short "$tmp/secret_short.yml" --secrets-allow ONE --executors process
  check "exit 0" [ "$rc" -eq 0 ]
  "$bin/evrun-replay" "$state" --output "$job/xs" > "$tmp/xs.stored"
  sed -n 's/^xs | //p' "$out" > "$tmp/xs.printed"
  check "stored whole" [ "$(tr -d '\n' < "$tmp/xs.stored" | wc -c)" -eq 900000 ]
  check "stored, every x masked" [ "$(tr -d '*\n' < "$tmp/xs.stored" | wc -c)" -eq 0 ]
  check "printed whole, every x masked" \
    [ "$(tr -d '\n' < "$tmp/xs.printed" | wc -c)" -eq 900000 -a "$(tr -d '*\n' < "$tmp/xs.printed" | wc -c)" -eq 0 ]
  check "store verifies" verified
}

case_big_output() {   # 600,000 short lines: printed and stored whole, a write per chunk
  pipeline big_output <<'YML'
pipeline: big_output
image: localhost/evrun-busybox:latest
steps:
  - name: big
    run: seq 1 600000
YML
  # stopped once the step is finished (all its output printed), the
  # count of write calls of the runner's main thread is read (the thread
  # that reads conmon's socket has its own)
  state=$tmp/big_output out=$tmp/big_output.out
  EVR_TEST_PAUSE_AT=between_steps:big "$bin/evrun-runner" --exec "$tmp/big_output.yml" \
    --state-dir "$state" > "$out" 2> "$tmp/big_output.err" &
  local pid=$! writes= i
  for i in $(seq 1 600); do
    [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null)" = T ] && break
    sleep 0.1
  done
  writes=$(sed -n 's/^syscw: //p' "/proc/$pid/task/$pid/io" 2>/dev/null)
  kill -CONT "$pid" 2>/dev/null
  wait "$pid"
  rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
  check "exit 0" [ "$rc" -eq 0 ]
  check "every line printed once, with the step name" \
    cmp -s <(grep '^big | ' "$out") <(seq 1 600000 | sed 's/^/big | /')
  check "stored whole" cmp -s <("$bin/evrun-replay" "$state" --output "$job/big") <(seq 1 600000)
  # 4 MB printed: one write per 4 KiB was 1,000 writes; three per 64 KiB
  # chunk, with the store's, some 340; stdout flushed once per commit
  # (its buffer 1 MiB), some 160 with the store's; now each chunk's text
  # written as it lies, not copied into stdout's buffer: one write a
  # chunk (~60 on a quiet machine; 335 seen with a load average of 18,
  # the chunks smaller and the store's commits more): under 700 still
  # tells it from a write per 4 KiB
  check "printed in few writes (${writes:-?})" [ "${writes:-1000000}" -lt 700 ]
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

# stdout a pipe left non-blocking (as a parent may leave it), read
# slowly: the chunks' text is written straight to it, and a full pipe
# (EAGAIN) is waited out, not a reason to drop the rest (through stdio's
# buffer, what the pipe did not take at once was dropped).
case_nonblocking_stdout() {
  pipeline nonblocking_stdout <<'YML'
pipeline: nonblocking_stdout
image: localhost/evrun-busybox:latest
network: none
steps:
  - name: nb
    run: seq 1 400000
YML
  state=$tmp/nonblocking_stdout out=$tmp/nonblocking_stdout.out
  python3 - "$bin/evrun-runner" "$tmp/nonblocking_stdout.yml" "$state" > "$out" \
    2> "$tmp/nonblocking_stdout.err" <<'PY'
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen([sys.argv[1], "--exec", sys.argv[2], "--state-dir", sys.argv[3]], stdout=w)
os.close(w)
while True:
    time.sleep(0.001)
    b = os.read(r, 65536)
    if not b:
        break
    sys.stdout.buffer.write(b)
sys.exit(p.wait())
PY
  rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
  check "exit 0" [ "$rc" -eq 0 ]
  check "every line printed once, with the step name" \
    cmp -s <(grep '^nb | ' "$out") <(seq 1 400000 | sed 's/^/nb | /')
  check "the end printed too" grep -q "^job $job succeeded" "$out"
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

# The output read straight from conmon's attach socket: the runner asks
# podman for no attach (a proxy in front of the service logs its calls),
# and the output is whole and in order on both streams, printed and
# stored; each exit code (0, 3) is read from conmon's exit file, with no
# inspect of a started container; the same through podman's attach (the
# fallback, forced by the test hook EVR_TEST_REST_ATTACH=1): one attach
# per step, each exit read by inspect.
case_conmon_attach() {
  pipeline conmon_attach <<'YML'
pipeline: conmon_attach
image: localhost/evrun-busybox:latest
steps:
  - name: both
    run: for i in $(seq 1 3000); do echo "out $i"; echo "err $i" >&2; done
  - name: bulk
    run: seq 1 200000; exit 3
YML
  local calls=$tmp/conmon_attach.calls ppid sock=${EVRUN_PODMAN_URL#unix://} mode
  python3 "$(dirname "$0")/podman_proxy.py" "$tmp/proxy.sock" "$sock" "$calls" &
  ppid=$!
  for _ in $(seq 100); do [ -S "$tmp/proxy.sock" ] && break; sleep 0.05; done
  for mode in conmon rest; do
    : > "$calls"
    if [ $mode = rest ]; then
      EVRUN_PODMAN_URL=unix://$tmp/proxy.sock EVR_TEST_REST_ATTACH=1 \
        run conmon_attach_$mode "$tmp/conmon_attach.yml"
    else
      EVRUN_PODMAN_URL=unix://$tmp/proxy.sock run conmon_attach_$mode "$tmp/conmon_attach.yml"
    fi
    check "$mode: exit 1 (bulk exits 3)" [ "$rc" -eq 1 ]
    check "$mode: exit code 3" grep -Eq "^bulk +failed +3 " "$out"
    check "$mode: stdout whole and in order, printed" \
      cmp -s <(grep '^both | out ' "$out") <(seq 1 3000 | sed 's/^/both | out /')
    check "$mode: stderr whole and in order, printed" \
      cmp -s <(grep '^both | err ' "$out") <(seq 1 3000 | sed 's/^/both | err /')
    check "$mode: stored whole" cmp -s <("$bin/evrun-replay" "$state" --output "$job/both" | sort) \
      <(for i in $(seq 1 3000); do echo "out $i"; echo "err $i"; done | sort)
    check "$mode: bulk stored whole" \
      cmp -s <("$bin/evrun-replay" "$state" --output "$job/bulk") <(seq 1 200000)
    check "$mode: store verifies" verified
    check "$mode: nothing left in podman" [ "$(left_behind)" -eq 0 ]
    # inspects of a container after its start (of its exit): a create's
    # (where conmon listens) comes before
    local exits
    exits=$(awk '/\/start$/ { sub(/\/start$/, "", $2); on[$2] = 1 }
                 $1 == "GET" && /\/json$/ { c = $2; sub(/\/json$/, "", c); n += (c in on) }
                 END { print n + 0 }' "$calls")
    if [ $mode = rest ]; then
      check "rest: podman's attach, once a step" [ "$(grep -c '/attach?' "$calls")" -eq 2 ]
      # (asked again while it still says running)
      check "rest: each exit read by inspect ($exits)" [ "$exits" -ge 2 ]
    else
      check "conmon: no attach asked of podman" [ "$(grep -c '/attach?' "$calls")" -eq 0 ]
      check "conmon: the calls went through the proxy" grep -q '/containers/create' "$calls"
      check "conmon: exits from conmon's files, no inspect ($exits)" [ "$exits" -eq 0 ]
    fi
  done
  kill "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null
}

# flow_pipeline NAME HEAD: allow_failure, when and on_error (README
# "Control flow"); HEAD is the executor's lines
flow_pipeline() {
  pipeline "$1" <<YML
pipeline: $1
$2
on_error:
  run: 'echo "oe \$EVRUN_FAILED_STEPS|\$EVRUN_FAILED_REASON_BUILD_1"'
steps:
  - name: lint
    run: echo linting; exit 2
    allow_failure: true
  - name: build.1
    run: echo building; exit 3
  - name: test
    run: echo never
  - name: report
    when: on_failure
    run: 'echo "failed: \$EVRUN_FAILED_STEPS"'
  - name: cleanup
    when: always
    run: echo cleaned
YML
}

# check_flow NAME: what flow_pipeline's job did
check_flow() {
  check "exit 1" [ "$rc" -eq 1 ]
  check "lint failed (allowed), live" grep -q "^lint > failed (allowed) (exit 2" "$out"
  check "summary: failed (allowed)" grep -Eq "^lint +failed \(allowed\) +2 " "$out"
  check "summary: build.1 failed" grep -Eq "^build\.1 +failed +3 " "$out"
  check "test skipped" grep -Eq "^test +skipped" "$out"
  check "on_failure step ran" grep -q "^report | failed: build.1$" "$out"
  check "always step ran" grep -q "^cleanup | cleaned$" "$out"
  check "on_error: failed steps, reason" grep -q "^on_error | oe build.1|failed (exit 3)$" "$out"
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/$1.job"
  check "job failed" grep -q "status failed" "$tmp/$1.job"
  check "replay: failed (allowed)" grep -Eq "^lint +failed \(allowed\)" "$tmp/$1.job"
  # its ATTEMPT and EXIT stand under their headings, as on the other rows
  check "replay: the columns line up on a failed (allowed) row" awk '
    /^STEP +STATUS +ATTEMPT/ { a = index($0, "ATTEMPT"); e = index($0, "EXIT") }
    /^lint +failed \(allowed\)/ { ok = a && substr($0, a, 7) ~ /^ *1$/ && substr($0, e, 4) ~ /^ *2$/ }
    END { exit !ok }' "$tmp/$1.job"
  check "store verifies" verified
}

case_flow() {   # allow_failure, when: on_failure | always, on_error
  flow_pipeline flow "image: localhost/evrun-busybox:latest"
  run flow "$tmp/flow.yml"
  check_flow flow
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_flow_process() {   # the same as host processes
  flow_pipeline flowproc "executor: process"
  run flowproc "$tmp/flowproc.yml" --executors process
  check_flow flowproc
  check "nothing left of the job" [ "$(process_left)" -eq 0 ]
}

case_flow_allowed() {   # only an allowed failure: the job succeeds, on_error is skipped
  pipeline flowok <<'YML'
pipeline: flowok
image: localhost/evrun-busybox:latest
on_error:
  run: echo never
steps:
  - name: lint
    run: exit 2
    allow_failure: true
  - name: test
    run: echo tested
YML
  run flowok "$tmp/flowok.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  check "job succeeded, saying so" grep -q "job $job succeeded (1 step failed (allowed))" "$out"
  check "test ran" grep -q "^test | tested$" "$out"
  check "on_error skipped" grep -Eq "^on_error +skipped" "$out"
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_matrix() {   # a 2x2 matrix: four steps with their values in env; needs waits for all
  pipeline matrix <<'YML'
pipeline: matrix
image: localhost/evrun-busybox:latest
steps:
  - name: build
    run: echo "built $OS-$V"
    matrix:
      OS: [linux, bsd]
      V: ["1", "2"]
  - name: join
    needs: [build]
    run: echo joined
YML
  run matrix "$tmp/matrix.yml"
  check "exit 0" [ "$rc" -eq 0 ]
  local os v
  for os in linux bsd; do
    for v in 1 2; do
      check "build[OS=$os,V=$v] ran with its values" grep -qF "build[OS=$os,V=$v] | built $os-$v" "$out"
    done
  done
  check "four build steps" [ "$(grep -c '^build\[.*| built' "$out")" -eq 4 ]
  check "join ran last" sh -c "tail -n +\$(grep -n '| built' '$out' | tail -n 1 | cut -d: -f1) '$out' | grep -q '^join | joined$'"
  check "stored output by the step's name" \
    [ "$("$bin/evrun-replay" "$state" --output "$job/build[OS=bsd,V=2]")" = "built bsd-2" ]
  local id
  id=$(echo "$job" | tr 'A-Z' 'a-z')
  check "container name in its container form" \
    sh -c "'$bin/evrun-replay' '$state' --job '$job' | grep -q 'evrun-$id-build.OS-linux.V-1-1'"
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_flow_sigint() {   # a cancel (SIGINT): the always step runs, on_error does not
  pipeline flowint <<'YML'
pipeline: flowint
image: localhost/evrun-busybox:latest
on_error:
  run: echo never
steps:
  - name: long
    run: echo begun; sleep 60
  - name: after
    run: echo never
  - name: cleanup
    when: always
    run: echo cleaned
YML
  state=$tmp/flowint
  "$bin/evrun-runner" --exec "$tmp/flowint.yml" --state-dir "$state" --grace 2 \
    > "$tmp/flowint.out" 2> "$tmp/flowint.err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "^long | begun" "$tmp/flowint.out" 2>/dev/null && break; sleep 0.1; done
  kill -INT "$pid"
  wait "$pid"
  rc=$?
  out=$tmp/flowint.out
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
  check "exit 1" [ "$rc" -eq 1 ]
  check "always step ran after the cancel" grep -q "^cleanup | cleaned$" "$out"
  "$bin/evrun-replay" "$state" --job "$job" > "$tmp/flowint.job"
  check "job cancelled" grep -q "status cancelled" "$tmp/flowint.job"
  check "long cancelled" grep -Eq "^long +cancelled" "$tmp/flowint.job"
  check "after skipped" grep -Eq "^after +skipped" "$tmp/flowint.job"
  check "cleanup succeeded" grep -Eq "^cleanup +succeeded" "$tmp/flowint.job"
  check "on_error skipped" grep -Eq "^on_error +skipped" "$tmp/flowint.job"
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

case_outputs() {   # KEY=VALUE lines to $EVRUN_OUTPUT: recorded masked, given to the steps that need it
  local secret=0utput-S3cret-77
  pipeline outputs <<'YML'
pipeline: outputs
image: localhost/evrun-busybox:latest
secrets: [OUT_TOKEN]
steps:
  - name: produce
    run: |
      echo "VERSION=1.2.3" >> "$EVRUN_OUTPUT"
      echo "TOKEN=abc-$OUT_TOKEN-xyz" >> "$EVRUN_OUTPUT"
      echo "not a pair" >> "$EVRUN_OUTPUT"
  - name: probe
    matrix: {OS: [linux]}
    run: echo "ARCH=$OS-x86" > "$EVRUN_OUTPUT"
  - name: linky
    run: ln -s /etc/passwd "$EVRUN_OUTPUT"
  - name: fifo
    run: mkfifo "$EVRUN_OUTPUT"
  - name: big
    run: head -c 70000 /dev/zero | tr '\0' a > "$EVRUN_OUTPUT"
  - name: named
    allow_failure: true
    run: |
      mkdir -p "out/d-$OUT_TOKEN" "out/e-$OUT_TOKEN/sub"; echo x > "out/$OUT_TOKEN.txt"
      echo z > "out/d-$OUT_TOKEN/f"; echo y > out/fine.txt
    artifacts: [out]
  - name: forge
    run: echo V=forged > "$(dirname "$EVRUN_OUTPUT")/.evrun-output-victim-1"
  - name: victim
    needs: [forge]
    run: echo "own ${EVRUN_OUTPUT##*/}"
  - name: peek
    needs: [produce]
    untrusted: true
    run: echo "left $(ls -a "$(dirname "$EVRUN_OUTPUT")" | grep -c '^.evrun-output-produce')"
  - name: consume
    needs: [produce, probe, linky, fifo, big, victim]
    run: |
      echo "others $(env | grep -c '^EVRUN_OUT_[LFBV]')"
      echo "version $EVRUN_OUT_PRODUCE_VERSION"
      echo "token $EVRUN_OUT_PRODUCE_TOKEN"
      echo "arch $EVRUN_OUT_PROBE_OS_LINUX_ARCH"
      echo "SEEN=yes" > "$EVRUN_OUTPUT"
YML
  OUT_TOKEN=$secret run outputs "$tmp/outputs.yml" --secrets-allow OUT_TOKEN
  check "exit 0" [ "$rc" -eq 0 ]
  check "the dependent got the value" grep -q "^consume | version 1.2.3$" "$out"
  check "a secret in a value is masked before it is passed on" grep -q "^consume | token abc-\*\*\*-xyz$" "$out"
  check "a matrix step's outputs, its name sanitized" grep -q "^consume | arch linux-x86$" "$out"
  check "a bad line is a warning in the step's output" \
    grep -q '^produce | evrun: \$EVRUN_OUTPUT: line 3: expected KEY=VALUE$' "$out"
  check "a link is not followed" grep -q '^linky | evrun: \$EVRUN_OUTPUT: .*not read' "$out"
  check "a FIFO is not read" grep -q '^fifo | evrun: \$EVRUN_OUTPUT: not read: not a regular file$' "$out"
  check "a file over 64 KiB is not read" \
    grep -q '^big | evrun: \$EVRUN_OUTPUT: larger than 65536 bytes: not read$' "$out"
  check "none of them gives a variable" grep -q "^consume | others 0$" "$out"
  check "an artifact named with a secret: refused, the name masked" \
    grep -q '^named | evrun: artifact out: file out/\*\*\*\.txt: its name holds a secret: not recorded, not kept$' "$out"
  check "... the other file kept" [ -f "$state/artifacts/$job/named/out/fine.txt" ]
  check "... no directory named with it kept (empty or emptied)" \
    [ -z "$(find "$state/artifacts/$job/named" -name "*$secret*")" ]
  check "the file's name is not guessable" grep -Eq '^victim \| own \.evrun-output-victim-1-[0-9a-f]{16}$' "$out"
  check "a file read is removed: a later untrusted step cannot read it" grep -q "^peek | left 0$" "$out"
  "$bin/evrun-replay" "$state" --events --json > "$tmp/outputs.events"
  check "recorded masked" grep -q '"type":"step.outputs".*"outputs":{"VERSION":"1.2.3","TOKEN":"abc-\*\*\*-xyz"}' "$tmp/outputs.events"
  check "evrun-replay --job shows them" grep -qx "  TOKEN=abc-\*\*\*-xyz" <("$bin/evrun-replay" "$state" --job "$job")
  check "a step no step needs: not read" sh -c "! grep -q '\"step\":\"consume\",\"attempt\":1,\"outputs\"' '$tmp/outputs.events'"
  check "the secret is never stored" sh -c "! grep -rqa '$secret' '$state'"
  check "store verifies" verified
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
  # host commands: EVRUN_OUTPUT is a file of the workspace directory (no
  # untrusted step: a process pipeline may have none, its steps run as the
  # runner's user; peek is then a later step of any kind)
  sed -e 's|^image: .*|executor: process|' -e '/^    untrusted: true$/d' "$tmp/outputs.yml" \
    > "$tmp/outputs-proc.yml"
  OUT_TOKEN=$secret run outputs-proc "$tmp/outputs-proc.yml" --secrets-allow OUT_TOKEN \
    --executors process
  check "process: exit 0" [ "$rc" -eq 0 ]
  check "process: the dependent got the values" grep -q "^consume | token abc-\*\*\*-xyz$" "$out"
  check "process: the matrix step's too" grep -q "^consume | arch linux-x86$" "$out"
  check "process: a link is not followed" grep -q '^linky | evrun: \$EVRUN_OUTPUT: .*not read' "$out"
  check "process: none of the bad files gives a variable" grep -q "^consume | others 0$" "$out"
  check "process: a file read is removed: a later step cannot read it" grep -q "^peek | left 0$" "$out"
  check "process: no artifact directory named with the secret kept" \
    [ -z "$(find "$state/artifacts/$job/named" -name "*$secret*")" ]
  check "process: ... the other file kept" [ -f "$state/artifacts/$job/named/out/fine.txt" ]
}

case_outputs_unread() {   # the file of a step no step needs, or cancelled: removed unread
  # the value is made inside the step (not in the pipeline's text); it was
  # left in the workspace for a later untrusted step to read: the next in
  # the file (steps in order: no needs), a when: always one after the
  # job's timeout
  pipeline outputs-unread <<'YML'
pipeline: outputs-unread
image: localhost/evrun-busybox:latest
timeout: 6s
steps:
  - name: write
    run: |
      V="un$(echo 4711 | tr 0-9 a-j)Zq"; printf '%s' "$V" | evrun-job secret TOKEN
      echo "K=$V" >> "$EVRUN_OUTPUT"
  - name: peek
    untrusted: true
    run: echo "left $(ls -a | grep -c '^.evrun-output-')"; cat .evrun-output-* 2>/dev/null | rev
  - name: stuck
    run: |
      echo "K=$TOKEN" >> "$EVRUN_OUTPUT"; sleep 60
  - name: after
    when: always
    untrusted: true
    run: echo "left $(ls -a | grep -c '^.evrun-output-')"; cat .evrun-output-* 2>/dev/null | rev
YML
  local mode
  for mode in podman process; do
    if [ "$mode" = podman ]; then
      run outputs-unread "$tmp/outputs-unread.yml"
    else   # no untrusted step in a process pipeline: a later step of any kind
      sed -e 's|^image: .*|executor: process|' -e '/^    untrusted: true$/d' \
        "$tmp/outputs-unread.yml" > "$tmp/outputs-unread-proc.yml"
      run outputs-unread-proc "$tmp/outputs-unread-proc.yml" --executors process
    fi
    check "$mode: the job timed out" grep -q "timed out" "$out"
    check "$mode: the next step finds no file" grep -q "^peek | left 0$" "$out"
    check "$mode: a when: always step after the timeout finds none" grep -q "^after | left 0$" "$out"
    check "$mode: the value never printed, reversed either" sh -c "! grep -q 'qZbbhenu' '$out'"
    check "$mode: nor stored" sh -c "! grep -rqa 'unehbbZq' '$state'"
  done
  check "nothing left in podman" [ "$(left_behind)" -eq 0 ]
}

cases=${*:-big_output secret_short flow flow_process flow_allowed flow_sigint matrix outputs outputs_unread conmon_attach nonblocking_stdout}
# shellcheck disable=SC2086
run_cases $cases

#!/usr/bin/env bash
# test_validate.sh BIN_DIR SOURCE_DIR: evrun-cli validate as a user runs it.
set -u
bin=$1 src=$2
tmp=$(mktemp -d /tmp/evr-test-validate-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
. "$(dirname "$0")/../support/check.sh"
cli=$bin/evrun-cli

"$cli" validate "$src"/examples/*.yml > "$tmp/out" 2> "$tmp/err"
check "examples: exit 0" [ $? -eq 0 ]
check "examples: one ok line each" [ "$(grep -c ': ok$' "$tmp/out")" -eq "$(ls "$src"/examples/*.yml | wc -l)" ]
check "examples: nothing on stderr" [ ! -s "$tmp/err" ]

# README's examples as a reader copies them: each ```yaml block that is a
# whole pipeline (pipeline: and steps:) is valid, and the runner settings
# with hooks load (its ON_ERROR hook's command held ": ", not YAML in a
# plain scalar)
mkdir "$tmp/readme"
awk -v d="$tmp/readme" '/^```yaml/{n++; f=sprintf("%s/b%02d.yml", d, n); y=1; next}
  /^```/{y=0; next} y{print > f}' "$src/README.md"
whole=0
for f in "$tmp"/readme/b*.yml; do
  grep -q '^pipeline:' "$f" && grep -q '^steps:' "$f" || continue
  whole=$((whole + 1))
  "$cli" validate "$f" > /dev/null 2> "$tmp/err"
  check "README block $(basename "$f" .yml): valid" [ ! -s "$tmp/err" ]
  [ -s "$tmp/err" ] && cat "$tmp/err"
done
check "README: its whole pipelines found (at least 6)" [ "$whole" -ge 6 ]
grep -l '^# evrun.yml of a runner' "$tmp"/readme/b*.yml > "$tmp/hooks-block"
check "README: the runner settings with hooks found" [ -s "$tmp/hooks-block" ]
"$bin/evrun-runner" --broker ipc://"$tmp"/x --config "$(cat "$tmp/hooks-block")" --print-config \
  > "$tmp/out" 2> "$tmp/err"
check "README: the runner settings with hooks load" [ $? -eq 0 ]
check "README: ... all four hooks" grep -q "^hooks:   # 4," "$tmp/out"

bad=$src/tests/data/pipelines/bad
"$cli" validate "$src/examples/hello.yml" "$bad/cycle.yml" "$bad/unknown_need.yml" > "$tmp/out" 2> "$tmp/err"
check "one bad file: exit 1" [ $? -eq 1 ]
check "the good file still reported" grep -q "hello.yml: ok" "$tmp/out"
check "cycle named on stderr" grep -q "cycle.yml:10:5: steps\[1\].needs: dependency cycle: a -> c -> b -> a" "$tmp/err"
check "every file checked" grep -q "unknown_need.yml:9:20: steps\[1\].needs\[1\]: unknown step \"buid\"" "$tmp/err"

"$cli" validate "$bad/args.yml" 2> "$tmp/err"
check "required arg missing: exit 1" [ $? -eq 1 ]
"$cli" validate -a TARGET=eu "$bad/args.yml" > "$tmp/out"
check "required arg given: exit 0" [ $? -eq 0 ]
"$cli" validate -a NOPE=1 -a TARGET=eu "$bad/args.yml" 2> "$tmp/err"
check "unknown arg: exit 1" [ $? -eq 1 ]
check "unknown arg named" grep -q 'the pipeline declares no arg "NOPE"' "$tmp/err"

"$cli" validate --print "$src/examples/dag.yml" > "$tmp/out"
check "--print: exit 0" [ $? -eq 0 ]
check "--print: JSON with the steps" grep -q '"name": "report"' "$tmp/out"
check "--print: normalized image" [ "$(grep -c '"image": "localhost/evrun-busybox:latest"' "$tmp/out")" -eq 6 ]

# a DAG with a step written without needs below others: it starts at once (a warning)
cat > "$tmp/mixed.yml" <<'YML'
pipeline: mixed
image: localhost/evrun-busybox:latest
steps:
  - { name: build, run: make }
  - { name: lint, run: lint }
  - { name: test, needs: [build], run: t }
  - { name: deploy, matrix: { ENV: [a, b] }, run: d }
  - { name: notify, needs: [], run: n }
  - { name: cleanup, when: always, run: c }
YML
"$cli" validate "$tmp/mixed.yml" > "$tmp/out" 2> "$tmp/err"
check "mixed needs: still valid, exit 0" [ $? -eq 0 ]
check "mixed needs: still valid, exit 0 [mixed.yml: ok out]" grep -q "mixed.yml: ok" "$tmp/out"
check "mixed needs: a warning for the step without needs, at its line" \
  grep -qxF "$tmp/mixed.yml:5:5: steps[1]: warning: no needs, in a pipeline whose other steps have needs: lint starts at once, not after build (write needs: [build] to wait for it, or needs: [] to start it at once without this warning)" "$tmp/err"
check "mixed needs: one for a matrix step, by its written name and index" \
  grep -qF "$tmp/mixed.yml:7:5: steps[3]: warning: no needs, in a pipeline whose other steps have needs: deploy starts at once, not after test" "$tmp/err"
check "mixed needs: none for needs: [] or when: always (2 warnings)" [ "$(wc -l < "$tmp/err")" -eq 2 ]
"$cli" validate "$src/examples/hello.yml" 2> "$tmp/err" > /dev/null
check "a sequence (no needs at all): no warning" [ ! -s "$tmp/err" ]
# submit (and run) print the same warnings before they send the file
EVRUN_STATE_DIR=$tmp/nobroker "$cli" submit "$tmp/mixed.yml" > /dev/null 2> "$tmp/err"
check "submit: the same warning, before it finds no broker" \
  grep -qxF "$tmp/mixed.yml:5:5: steps[1]: warning: no needs, in a pipeline whose other steps have needs: lint starts at once, not after build (write needs: [build] to wait for it, or needs: [] to start it at once without this warning)" "$tmp/err"

# parallel in a sequence (no needs, no dag: true) changes nothing: said, at its line
printf 'pipeline: seq\nimage: localhost/evrun-busybox:latest\nparallel: 4\nsteps: [{name: a, run: a}, {name: b, run: b}]\n' > "$tmp/seq.yml"
"$cli" validate "$tmp/seq.yml" > "$tmp/out" 2> "$tmp/err"
check "parallel in a sequence: still valid, exit 0" [ $? -eq 0 ]
check "parallel in a sequence: a warning at its line" \
  grep -qxF "$tmp/seq.yml:3:11: parallel: warning: 4 steps at once, but no step has needs: the steps run one after another, so parallel changes nothing (give steps needs, or write dag: true to start them all at once, up to parallel)" "$tmp/err"
printf 'pipeline: seq\nimage: localhost/evrun-busybox:latest\nparallel: 4\ndag: true\nsteps: [{name: a, run: a}, {name: b, run: b}]\n' > "$tmp/seq.yml"
"$cli" validate "$tmp/seq.yml" > /dev/null 2> "$tmp/err"
check "parallel with dag: true: no warning" [ ! -s "$tmp/err" ]

# GitHub's ${{ ... }} in a run: sh fails on it; said at the run's line, once a matrix step
printf 'pipeline: gh\nimage: localhost/evrun-busybox:latest\nsteps:\n  - name: a\n    matrix: {OS: [x, y]}\n    run: echo ${{ matrix.OS }}\n  - {name: b, run: echo $OS}\n' > "$tmp/gh.yml"
"$cli" validate "$tmp/gh.yml" > /dev/null 2> "$tmp/err"
check "\${{ }} in run: still valid, exit 0" [ $? -eq 0 ]
check "\${{ }} in run: a warning at its line, once" \
  grep -qxF "$tmp/gh.yml:6:10: steps[0].run: warning: \${{ ... }} is GitHub Actions' expression syntax; run goes to /bin/sh as written, which fails on it (bad substitution): write \$NAME for an env value or arg" "$tmp/err"
check "\${{ }} in run: one warning" [ "$(wc -l < "$tmp/err")" -eq 1 ]

# an env value is passed as written: a $NAME in it, or GitHub's ${{ }}, is said (once a matrix step)
printf 'pipeline: ev\nimage: localhost/evrun-busybox:latest\nenv: {B: b, A: "x${B}y", D: "cost $5", T: "${{ secrets.T }}"}\nsteps:\n  - name: a\n    matrix: {OS: [x, y]}\n    run: echo "$A"\n    env: {U: "https://$HOST/x"}\n' > "$tmp/ev.yml"
"$cli" validate "$tmp/ev.yml" > /dev/null 2> "$tmp/err"
check "\$NAME in env: still valid, exit 0" [ $? -eq 0 ]
check "\${B} in env: a warning at its line" \
  grep -qxF "$tmp/ev.yml:3:13: env.A: warning: \${B} is not expanded: an env value reaches the step as written (as GitHub's env, not GitLab's variables); use it in run, where the shell expands it" "$tmp/err"
check "\${{ }} in env: a warning at its line" \
  grep -qxF "$tmp/ev.yml:3:40: env.T: warning: \${{ ... }} is GitHub Actions' expression syntax; an env value reaches the step as written: a secret is listed under secrets: (read on the runner), an arg given with -a" "$tmp/err"
check "\$HOST in a matrix step's env: said once" \
  grep -qxF "$tmp/ev.yml:8:11: steps[0].env.U: warning: \$HOST is not expanded: an env value reaches the step as written (as GitHub's env, not GitLab's variables); use it in run, where the shell expands it" "$tmp/err"
check "env: three warnings (not \$5)" [ "$(wc -l < "$tmp/err")" -eq 3 ]

# a step's timeout over the pipeline's never applies (not a when: always step's, nor on_error's)
printf 'pipeline: to\nimage: localhost/evrun-busybox:latest\ntimeout: 10m\non_error: {run: x, timeout: 1h}\nsteps:\n  - {name: a, run: x, timeout: 1h, matrix: {K: [1, 2]}}\n  - {name: b, run: x, timeout: 10m}\n  - {name: c, run: x, timeout: 2h, when: always}\n' > "$tmp/to.yml"
"$cli" validate "$tmp/to.yml" > /dev/null 2> "$tmp/err"
check "step timeout over the pipeline's: still valid, exit 0" [ $? -eq 0 ]
check "step timeout over the pipeline's: a warning at its line, once" \
  grep -qxF "$tmp/to.yml:6:32: steps[0].timeout: warning: 1h, longer than the pipeline's timeout, 10m, which covers the whole job and ends it first" "$tmp/err"
check "step timeout over the pipeline's: one warning" [ "$(wc -l < "$tmp/err")" -eq 1 ]

# an artifact path: a matrix key's $KEY is put in, any other $NAME is said (once a matrix step)
printf 'pipeline: ar\nimage: localhost/evrun-busybox:latest\nsteps:\n  - name: a\n    matrix: {OS: [x, y]}\n    run: "true"\n    artifacts: ["dist/$OS", "out/${OS}/$SHA/f"]\n  - {name: b, run: "true", artifacts: [ok]}\n' > "$tmp/ar.yml"
"$cli" validate --print "$tmp/ar.yml" > "$tmp/out" 2> "$tmp/err"
check "\$NAME in an artifact path: still valid, exit 0" [ $? -eq 0 ]
check "matrix key in an artifact path: the combination's value" grep -q '"dist/y"' "$tmp/out"
check "\$NAME in an artifact path: a warning at its line, once" \
  grep -qxF "$tmp/ar.yml:7:29: steps[0].artifacts.paths[1]: warning: \$SHA is not expanded: an artifact path is taken as written (only a matrix key of the step, \$KEY or \${KEY}, is put in), so the runner looks for a file of that very name" "$tmp/err"
check "\$NAME in an artifact path: one warning" [ "$(wc -l < "$tmp/err")" -eq 1 ]

"$cli" validate > /dev/null 2>&1
check "no file: exit 2" [ $? -eq 2 ]
"$cli" validate -a bad "$src/examples/hello.yml" > /dev/null 2>&1
check "bad -a: exit 2" [ $? -eq 2 ]
"$cli" frobnicate > /dev/null 2>&1
check "unknown command: exit 2" [ $? -eq 2 ]
"$cli" valdate "$src/examples/hello.yml" 2> "$tmp/err"
check "a near-miss command: exit 2" [ $? -eq 2 ]
check "... did you mean" grep -q 'unknown command "valdate"; did you mean validate?' "$tmp/err"
"$cli" ps 2> "$tmp/err"
check "another tool's word: did you mean" grep -q 'unknown command "ps"; did you mean jobs?' "$tmp/err"
"$cli" validate "$tmp/missing.yml" 2> "$tmp/err"
check "missing file: exit 1" [ $? -eq 1 ]
check "missing file: says so" grep -q "missing.yml: cannot open: No such file or directory" "$tmp/err"
"$cli" validate - < "$src/examples/hello.yml" 2> "$tmp/err"
check "- (no such file): exit 1" [ $? -eq 1 ]
check "- (no such file): says how to read stdin" \
  grep -qxF -- '-: cannot open: No such file or directory ("-" is a file name here: for standard input give /dev/stdin)' "$tmp/err"
"$cli" validate /dev/stdin < "$src/examples/hello.yml" > "$tmp/out"
check "/dev/stdin: ok" grep -qxF "/dev/stdin: ok" "$tmp/out"
mkdir "$tmp/dir.yml"
"$cli" validate "$tmp/dir.yml" 2> "$tmp/err"
check "a directory: exit 1" [ $? -eq 1 ]
check "a directory: says so" grep -q "dir.yml: is a directory, not a pipeline file" "$tmp/err"
{ printf 'pipeline: p\nimage: i\nsteps:\n'
  for i in $(seq 1 40000); do echo "  - {name: s$i, run: x}"; done; } > "$tmp/huge.yml"
"$cli" validate "$tmp/huge.yml" 2> "$tmp/err"
check "a huge file: exit 1" [ $? -eq 1 ]
check "a huge file: its size and the limit" \
  grep -q "huge.yml: file of $(stat -c %s "$tmp/huge.yml") bytes exceeds the limit of 1048576 bytes" "$tmp/err"
# more errors than are shown: every command that loads a file says so
{ printf 'pipeline: p\nimage: i\nsteps:\n'
  for i in $(seq 1 30); do echo "  - {name: s$i, run: x, timeout: x, foo: 1}"; done; } > "$tmp/errs.yml"
"$cli" validate "$tmp/errs.yml" 2> "$tmp/err"
check "60 errors: validate shows 50" [ "$(grep -c ': steps\[' "$tmp/err")" -eq 50 ]
check "60 errors: ... and says so" grep -qxF "$tmp/errs.yml: 10 more errors not shown" "$tmp/err"
"$bin/evrun-runner" --exec "$tmp/errs.yml" --state-dir "$tmp/st" --executors process 2> "$tmp/err"
check "60 errors: --exec exits 2" [ $? -eq 2 ]
check "60 errors: --exec says so too" grep -qxF "$tmp/errs.yml: 10 more errors not shown" "$tmp/err"
EVRUN_STATE_DIR=$tmp/nobroker "$cli" run "$tmp/errs.yml" 2> "$tmp/err"
check "60 errors: run says so too" grep -qxF "$tmp/errs.yml: 10 more errors not shown" "$tmp/err"
# one 60000-byte script aliased into 20 steps: small file, 1.2 MB as sent
{ printf 'pipeline: p\nimage: i\nsteps:\n  - name: s0\n    run: &r '
  head -c 60000 /dev/zero | tr '\0' x; echo
  for i in $(seq 1 19); do echo "  - {name: s$i, run: *r}"; done; } > "$tmp/alias.yml"
"$cli" validate "$tmp/alias.yml" > "$tmp/out" 2> "$tmp/err"
check "aliases past the spec limit: exit 1" [ $? -eq 1 ]
check "aliases past the spec limit: the limit named" \
  grep -q "alias.yml:.*more than 1048576 bytes, the limit of a pipeline spec" "$tmp/err"

# copy: sources are checked as run's submit builds them
mkdir -p "$tmp/cp/src"
printf 'pipeline: p\nimage: i\nsource: {copy: ./nonexistent-dir}\nsteps:\n  - {name: a, run: x}\n' > "$tmp/cp/missing.yml"
"$cli" validate "$tmp/cp/missing.yml" > "$tmp/out" 2> "$tmp/err"
check "copy: a missing directory: exit 1" [ $? -eq 1 ]
check "copy: a missing directory: run's message" \
  grep -q "missing.yml:3:16: source.copy: copy .*nonexistent-dir: No such file or directory" "$tmp/err"
check "copy: says the check is run's and submit's, not --exec's" \
  grep -q "the copy: check is evrun-cli run's and submit's (evrun-runner --exec reads the directory itself" "$tmp/err"
head -c 1500000 /dev/urandom > "$tmp/cp/src/noise"
printf 'pipeline: p\nimage: i\nci_source: {copy: src}\nsteps:\n  - {name: a, run: x}\n' > "$tmp/cp/big.yml"
"$cli" validate "$tmp/cp/big.yml" > "$tmp/out" 2> "$tmp/err"
check "copy: over 1 MiB compressed: exit 1" [ $? -eq 1 ]
check "copy: over 1 MiB compressed: run's message" \
  grep -q "big.yml:3:19: ci_source.copy: copy .*src: the compressed tar is [0-9]* bytes, over the limit of 1048576 bytes" "$tmp/err"
rm "$tmp/cp/src/noise"; echo hi > "$tmp/cp/src/small"
"$cli" validate "$tmp/cp/big.yml" > "$tmp/out" 2> "$tmp/err"
check "copy: a small directory: ok" grep -q "big.yml: ok" "$tmp/out"
ln -s small "$tmp/cp/src/link"
"$cli" validate "$tmp/cp/big.yml" > "$tmp/out" 2> "$tmp/err"
check "copy: a symbolic link: at the copy: value" \
  grep -q "big.yml:3:19: ci_source.copy: copy .*src: link is a symbolic link" "$tmp/err"
rm "$tmp/cp/src/link"

"$cli" validate --help > "$tmp/out"
check "--help: exit 0 and usage" grep -q "usage: evrun-cli validate" "$tmp/out"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

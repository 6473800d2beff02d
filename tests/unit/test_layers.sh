#!/usr/bin/env bash
# tests/unit/test_layers.sh SRC: the engine, recovery and preparation
# compile against the executor interface alone.  Neither they nor any
# header they include (followed through runner/, schema/, store/, sys/)
# may include a backend's header (evr_podman.h, evr_http.h, curl,
# evr_exec_podman.h, evr_exec_process.h, evr_exec_process_ws.h,
# evr_unit.h, evr_shim.h, evr_tarout.h), nor call evr_podman_*,
# evr_http_*, curl_*, evr_exec_podman_*, evr_exec_process_*, evr_unit_*,
# evr_shim_* or evr_tarout_* (issue 12).
set -euo pipefail
src=${1:?usage: test_layers.sh SRC}
cd "$src"
files="runner/evr_engine.c runner/evr_engine_sched.c runner/evr_engine.h runner/evr_engine_int.h runner/evr_step.c runner/evr_step_end.c runner/evr_step_state.c runner/evr_step_pause.c
       runner/evr_recover.c runner/evr_prepare.c runner/evr_prepare_source.c"
dirs="runner schema store sys"
backends='evr_podman|evr_http|evr_exec_podman|evr_exec_process|evr_exec_process_ws|evr_unit|evr_shim|evr_tarout'
include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](('"$backends"')\.h|curl/)'
call_re='\b(('"$backends"')_[a-z_]+|curl_[a-z_]+)[[:space:]]*\('
fails=0

# the header a quoted include names, in one of $dirs (empty when none)
where() {
  for d in $dirs; do
    [ -f "$d/$1" ] && { echo "$d/$1"; return; }
  done
}

# every file reachable from $1 through quoted includes, itself included
declare -A seen=()
reach() {
  local f=$1 inc h
  [ -n "${seen[$f]:-}" ] && return
  seen[$f]=1
  for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
    h=$(where "$inc")
    [ -n "$h" ] && reach "$h"
  done
  return 0
}

for f in $files; do
  [ -f "$f" ] || { echo "FAILED: $f is missing"; fails=$((fails + 1)); continue; }
  seen=()
  reach "$f"
  for g in "${!seen[@]}"; do
    if grep -nE "$include_re" "$g" > /dev/null; then
      echo "FAILED: $f reaches $(grep -nE "$include_re" "$g" | head -1) in $g"
      fails=$((fails + 1))
    fi
  done
  # calls, outside comments' prose (a word followed by an open parenthesis)
  if grep -nE "$call_re" "$f" > /dev/null; then
    echo "FAILED: $f calls $(grep -noE "$call_re" "$f" | head -1)"
    fails=$((fails + 1))
  fi
done
if [ "$fails" -ne 0 ]; then
  echo "test_layers: $fails failed"
  exit 1
fi
echo "test_layers: the engine, recovery and preparation use evr_exec.h alone"

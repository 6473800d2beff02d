#!/usr/bin/env bash
# test_gateway_browser.sh BIN_DIR SRC_DIR: evrun's web UI in a real browser.
# A real broker and runner (bus_lib.sh, real podman from the "podman"
# fixture) with a registered pipeline "ui"; ui_browser.py starts the
# gateway and a headless Chromium and drives the pages over the DevTools
# protocol: the token entry, a job started from the pipelines page
# showing its live lines (across a gateway restart: Last-Event-ID), its
# head and graph asked again when a refresh fails or gets no answer (the
# DevTools Fetch domain fails or holds them), the DAG with a failed step in red, `<script>` output shown as text, ANSI
# colours, per-step folding, the jobs page updating by itself, a step's
# last line without a newline above its end's line, the start form made
# again when its pipeline file changes, and a live log's refusals (no
# broker: 503; the token expired: 401) shown with the gateway's reason.
# Screenshots of the jobs, job, runners and pipelines pages are kept in
# BUILD/test-artifacts/ui/.  Also: the default ui_dir of an installed
# layout.  Needs chromium and python3-websocket (tools/test installs
# them): without them it is skipped (exit 77).
set -u
bin=$1 src=$2
if ! command -v chromium > /dev/null || ! /usr/bin/python3 -c 'import websocket' 2> /dev/null; then
  echo "test_gateway_browser: skipped: needs chromium and python3-websocket" \
       "(apt-get install chromium python3-websocket; tools/test installs them)"
  exit 77
fi
. "$src/tests/integration/bus_lib.sh"
bus_script_init gwui --podman
out=$(cd "$bin/.." && pwd)/test-artifacts/ui
rm -rf "$out"
mkdir -p "$out"

case_name=install
# an installed layout: PREFIX/bin/evrun-gateway finds PREFIX/share/evrun/ui
mkdir -p "$tmp/inst/bin" "$tmp/inst/share/evrun"
cp "$bin/evrun-gateway" "$tmp/inst/bin/"
cp -r "$src/gateway/ui" "$tmp/inst/share/evrun/ui"
check "installed: ui_dir is PREFIX/share/evrun/ui" \
  grep -qx "ui_dir: $tmp/inst/share/evrun/ui *# .*(derived)" \
  <("$tmp/inst/bin/evrun-gateway" --state-dir "$tmp/inst" --print-config)
check "build tree: ui_dir is BUILD/share/evrun/ui, gateway/ui of the source" \
  [ "$(cd "$("$bin/evrun-gateway" --state-dir "$tmp/inst" --print-config |
          sed -n 's/^ui_dir: \([^ ]*\).*/\1/p')" && pwd -P)" = "$(cd "$src/gateway/ui" && pwd -P)" ]

# a settings file shared by every binary may hold the gateway's ui_dir
printf 'ui_dir: %s\n' "$tmp/inst/share/evrun/ui" > "$tmp/inst/evrun.yml"
check "ui_dir in a shared settings file: the broker takes the file" \
  "$bin/evrun-broker" --config "$tmp/inst/evrun.yml" --state-dir "$tmp/inst" --print-config

case_name=browser
fresh browser
mkdir -m 0700 "$tmp/pipelines"
cat > "$tmp/pipelines/ui.yml" <<'YML'
pipeline: ui
image: localhost/evrun-busybox:latest
args:
  WHO: { default: world }
  TICKS: { default: "8" }
steps:
  - name: build
    run: |
      printf '\033[31mred\033[0m \033[1;32mbold green\033[0m \033[38;5;208morange\033[0m \033[38;2;255;105;180mpink\033[0m\n'
      echo '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
      echo "hello, $WHO"
      i=1; while [ $i -le $TICKS ]; do echo "tick $i"; i=$((i + 1)); sleep 1; done
      printf 'build done'
  - name: test
    needs: [build]
    run: echo testing; echo 'oops on stderr' >&2; sleep 2; exit 3
  - name: lint
    needs: [build]
    run: echo lint ok
  - name: deploy
    needs: [test, lint]
    run: echo never
YML
bus_broker && bus_runner ui-1 "" 2 && bus_wait_runners 1
token=$(cli token)
/usr/bin/python3 "$src/tests/integration/ui_browser.py" "$bin" "$tmp" "$token" "$out" > "$tmp/browser.out" 2>&1
status=$?
cat "$tmp/browser.out"
passes=$((passes + $(grep -c '^ok - ' "$tmp/browser.out")))
nfail=$(grep -c '^not ok - ' "$tmp/browser.out")
fails=$((fails + nfail))
check "the browser test ends well" [ "$status" = 0 ]
check "the browser test ends well [nfail = 0]" [ "$nfail" = 0 ]
cp "$tmp"/gateway-ui-*.log "$out/" 2> /dev/null
echo "screenshots: $out"
bus_script_end

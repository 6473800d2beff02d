#!/usr/bin/python3
"""ui_browser.py: drives evrun's web UI in a real headless Chromium
through the DevTools protocol (python3-websocket), for
test_gateway_browser.sh.

    ui_browser.py BIN STATE_DIR TOKEN OUT_DIR

The broker and runner run already (STATE_DIR's bus, the registered
pipeline "ui" of the test script).  This script starts evrun-gateway
and Chromium itself (it restarts the gateway in the middle of a job to
cut the live log), ends both by pid, and prints one line per check:
"ok - WHAT" or "not ok - WHAT (why)"; exit status 1 when one failed.
Screenshots of the four pages go to OUT_DIR.  Every request goes to
127.0.0.1: Chromium's own background traffic is switched off and every
other host name resolves to nothing.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websocket

BIN, STATE, TOKEN, OUT = sys.argv[1:5]
failed = 0


def check(what, cond, why=""):
    global failed
    if cond:
        print("ok - %s" % what, flush=True)
    else:
        failed += 1
        print("not ok - %s%s" % (what, " (%s)" % (why,) if why else ""), flush=True)
    return cond


# ------------------------------------------------------------ the gateway

class Gateway:
    """evrun-gateway on STATE; port 0 the first time, the same after."""

    def __init__(self):
        self.proc = None
        self.port = 0
        self.n = 0

    def start(self, *extra):
        self.n += 1
        log = open(os.path.join(STATE, "gateway-ui-%d.log" % self.n), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "evrun-gateway"), "--state-dir", STATE,
             "--listen", "127.0.0.1:%d" % self.port] + list(extra), stdout=log,
            stderr=subprocess.STDOUT)
        log.close()
        path = os.path.join(STATE, "gateway-ui-%d.log" % self.n)
        for _ in range(200):
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", open(path).read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the gateway does not listen: " + open(path).read()[-500:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port


def http(url, token=None, body=None, method=None, accept=None):
    """(status, headers, body bytes) of one request."""
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# ------------------------------------------------------------- the browser

class Browser:
    """Headless Chromium with a temporary profile, one page, driven over
    the DevTools protocol."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="evr-chromium-")
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        args = [exe, "--headless", "--user-data-dir=" + self.dir,
                "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu",
                "--disable-dev-shm-usage",     # a container's /dev/shm is small
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--no-pings",
                "--disable-domain-reliability", "--disable-client-side-phishing-detection",
                "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--window-size=1280,860", "--hide-scrollbars", "--mute-audio", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")     # Chromium's sandbox refuses root
        self.log = open(os.path.join(OUT, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        for _ in range(600):     # 30 s: a loaded CI machine starts it slowly
            if os.path.exists(port_file) and open(port_file).read().count("\n") >= 1:
                break
            if self.proc.poll() is not None:
                raise RuntimeError("chromium ended at start: see chromium.log")
            time.sleep(0.05)
        port = int(open(port_file).read().split("\n")[0])
        pages = []
        for _ in range(100):
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=5) as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
            if pages:
                break
            time.sleep(0.05)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)
        self.id = 0
        self.events = []
        self.taken = 0      # self.events looked at by paused()
        for m in ("Page.enable", "Runtime.enable", "Network.enable", "Log.enable"):
            self.send(m)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": False})

    def send(self, method, params=None):
        self.id += 1
        me = self.id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr[:80], r["exceptionDetails"].get("exception", {})
                                           .get("description", r["exceptionDetails"])))
        return r["result"].get("value")

    def wait(self, expr, secs=15):
        """expr's value once truthy, or None after secs."""
        end = time.time() + secs
        while time.time() < end:
            v = self.eval(expr)
            if v:
                return v
            time.sleep(0.1)
        return None

    def go(self, url):
        self.send("Page.navigate", {"url": url})
        self.wait("document.readyState === 'complete'", 10)

    def paused(self):
        """The requests paused by the Fetch domain since the last call."""
        new = self.events[self.taken:]
        self.taken = len(self.events)
        return [e["params"]["requestId"] for e in new if e.get("method") == "Fetch.requestPaused"]

    def shot(self, name):
        time.sleep(0.3)    # a frame drawn after the last change
        r = self.send("Page.captureScreenshot", {"format": "png"})
        path = os.path.join(OUT, name + ".png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return path

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def js(s):
    return json.dumps(s)


def wait_refusing(br, job, expr, secs, refuse, hold_first=False, first=None):
    """br.wait(expr, secs) while the page's GET /api/v1/jobs/JOB (its
    head and graph; not /log) are paused with the DevTools Fetch domain:
    the first left with no answer at all when hold_first, the others
    failed as a reset connection while refuse() is true, then let through.
    first(), if given, runs once they are paused.  (expr's value,
    requests held, requests failed)"""
    br.send("Fetch.enable", {"patterns": [{"urlPattern": "*/api/v1/jobs/" + job}]})
    br.paused()
    if first:
        first()
    held = failed = 0
    value = None
    end = time.time() + secs
    while time.time() < end:
        value = br.eval(expr)
        if value:
            break
        for rid in br.paused():
            try:
                if hold_first and not held:
                    held += 1
                elif refuse():
                    br.send("Fetch.failRequest", {"requestId": rid,
                                                  "errorReason": "ConnectionReset"})
                    failed += 1
                else:
                    br.send("Fetch.continueRequest", {"requestId": rid})
            except RuntimeError:
                pass    # the page gave it up meanwhile
        time.sleep(0.1)
    br.send("Fetch.disable")
    return value, held, failed


def expired_token():
    """A token of the gateway's secret whose exp passed a minute ago."""
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
    now = int(time.time())
    key = open(os.path.join(STATE, "gateway", "jwt.secret"), "rb").read().strip()
    msg = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"." + b64(json.dumps(
        {"sub": "ui", "iat": now - 120, "exp": now - 60, "scope": "write"}).encode())
    return (msg + b"." + b64(hmac.new(key, msg, hashlib.sha256).digest())).decode()


PIPES = os.path.join(STATE, "pipelines")


def pipeline_file(name, text):
    """Writes STATE/pipelines/NAME as the broker reads it (a rename: whole)."""
    tmp = os.path.join(PIPES, ".tmp-" + name)
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(PIPES, name))


def form_follows_file(gw, br):
    """The start form of a pipeline file made again when the file changes
    its pipeline's name or args (before: the one made when the row first
    showed, its Start posting {"pipeline": null} for a file that first
    failed to load)."""
    row = "document.querySelector('#pipelines tr[data-file=\"late.yml\"]')"
    pipeline_file("late.yml", "pipeline: late\nsteps: nope\n")
    br.go(gw.url + "/#/pipelines")
    check("a file that never loaded: (not loaded), no Start", br.wait(
        "((r) => r && /not loaded/.test(r.textContent) && !r.querySelector('button.start'))(%s)"
        % row, 15))
    pipeline_file("late.yml", "pipeline: late\nimage: localhost/evrun-busybox:latest\nargs:\n"
                  "  NEED: {description: x}\nsteps:\n  - {name: a, run: 'echo $NEED'}\n")
    check("... loaded: Start shows",
          br.wait("((r) => !!(r && r.querySelector('button.start')))(%s)" % row, 15))
    br.eval("%s.querySelector('button.start').click()" % row)
    form = "document.querySelector('tr[data-form=\"%s\"]')"
    args = ("((f) => f ? Array.from(f.querySelectorAll('.arg')).map(r => r.querySelector("
            "'.arg-name').value + '=' + r.querySelector('.arg-value').placeholder) : null)(%s)")
    check("... its form: the pipeline's name and its arg", br.wait(
        "((f) => f && !f.hidden && f.querySelector('.start-submit').textContent === 'Start late')"
        "(%s)" % (form % "late"), 5) and br.eval(args % (form % "late")) == ["NEED=required"],
        br.eval(args % (form % "late")))
    pipeline_file("late.yml", "pipeline: later\nimage: localhost/evrun-busybox:latest\nargs:\n"
                  "  OTHER: {default: d}\nsteps:\n  - {name: a, run: 'echo $OTHER'}\n")
    check("renamed, other args, its form open: made again, still open", br.wait(
        "((f) => f && !f.hidden && f.querySelector('.start-submit').textContent === 'Start later')"
        "(%s)" % (form % "later"), 15) and not br.eval("!!%s" % (form % "late")))
    check("... with the new arg", br.eval(args % (form % "later")) == ["OTHER=default: d"],
          br.eval(args % (form % "later")))
    check("... saying it was made again", br.eval(
        "((f) => !!f && /file changed/.test((f.querySelector('.form-note') || {}).textContent))(%s)"
        % (form % "later")))
    os.unlink(os.path.join(PIPES, "late.yml"))
    check("the file removed: its row goes", br.wait("!%s" % row, 15))


def token_and_503(gw, br):
    """A live log's refusals show the gateway's reason: 503 while it has
    no broker, and 401 for a token that expired (before: "HTTP 503" and
    "the token was refused")."""
    st, _, b = http(gw.url + "/api/v1/jobs", TOKEN, json.dumps(
        {"pipeline": "ui", "args": {"TICKS": "60"}}).encode())
    job = json.loads(b).get("id", "")
    br.go(gw.url + "/#/job/" + job)
    check("a long job's live log", br.wait(
        "Array.from(document.querySelectorAll('#log .line .tx')).some(e => e.textContent === "
        "'tick 1')", 30))
    bad = os.path.join(STATE, "gw-nobroker.yml")
    with open(bad, "w") as f:
        f.write("client_endpoint: ipc://%s/nobroker/c\nevents_endpoint: ipc://%s/nobroker/p\n"
                % (STATE, STATE))
    gw.stop()
    gw.start("--config", bad)
    state = "(document.querySelector('#stream') || {}).textContent || ''"
    got = br.wait("/^reconnecting \\(HTTP 503: .*broker/.test(%s) && %s" % (state, state), 20)
    check("the gateway without a broker: reconnecting, with its reason", got, br.eval(state))
    br.eval("sessionStorage.setItem('evrun.token', %s)" % js(expired_token()))
    why = "(document.querySelector('.token-box .error:not([hidden])') || {}).textContent || ''"
    got = br.wait("/the token expired .* ago/.test(%s) && %s" % (why, why), 20)
    check("the token expired during the live log: the token page, with the gateway's reason",
          got, br.eval(why))
    gw.stop()
    gw.start()
    http(gw.url + "/api/v1/jobs/%s/cancel" % job, TOKEN, b"{}")


# --------------------------------------------------------------- the checks

def main():
    gw = Gateway()
    gw.start()
    br = None
    try:
        br = Browser()
        run(gw, br)
    finally:
        if br:
            br.close()
        gw.stop()


def run(gw, br):
    # the files: no token needed, the right types, nothing outside
    st, hd, body = http(gw.url + "/")
    check("GET / without a token: 200 text/html", st == 200
          and hd["Content-Type"].startswith("text/html"), "%s %s" % (st, hd["Content-Type"]))
    st, hd, body = http(gw.url + "/ui/app.js")
    check("GET /ui/app.js: text/javascript", st == 200
          and hd["Content-Type"].startswith("text/javascript"))
    st, _, _ = http(gw.url + "/ui/%2e%2e/%2e%2e/gateway/jwt.secret")
    check("a path out of ui_dir: 404", st == 404, st)
    st, _, _ = http(gw.url + "/api/v1/jobs")
    check("the API still needs a token: 401", st == 401, st)

    # token entry, once
    br.go(gw.url + "/")
    check("the page asks for a token", br.wait("!!document.querySelector('#token')"))
    br.eval("document.querySelector('#token').value = %s" % js("not a token \u00e9"))
    br.eval("document.querySelector('#token-save').click()")
    check("no token at all is refused at once", br.wait(
        "/no token/.test((document.querySelector('.token-box .error:not([hidden])') || {})"
        ".textContent)") and not br.eval("sessionStorage.getItem('evrun.token')"))
    br.eval("document.querySelector('#token').value = %s" % js("eyJ.eyJ.sig"))
    br.eval("document.querySelector('#token-save').click()")
    check("a bad token is refused, with the gateway's reason", br.wait(
        "/malformed|signature|token/.test((document.querySelector('.token-box .error:not([hidden])')"
        " || {}).textContent) && !sessionStorage.getItem('evrun.token')"))
    br.eval("document.querySelector('#token').value = %s" % js(TOKEN))
    br.eval("document.querySelector('#token-save').click()")
    check("with the token: the jobs page", br.wait("!!document.querySelector('#jobs')"))
    check("the token is in sessionStorage",
          br.eval("sessionStorage.getItem('evrun.token') === %s" % js(TOKEN)))
    br.go(gw.url + "/#/runners")
    check("a reload keeps the token (no second entry)",
          br.wait("!!document.querySelector('#runners [data-runner=\"ui-1\"]')")
          and not br.eval("!!document.querySelector('#token')"))

    # the jobs page updates by itself: a job submitted elsewhere appears
    br.go(gw.url + "/#/jobs")
    check("the jobs page loads", br.wait("!!document.querySelector('#jobs')"))
    st, _, b = http(gw.url + "/api/v1/jobs", TOKEN, json.dumps(
        {"pipeline": "ui", "args": {"WHO": "curl", "TICKS": "1"}}).encode())
    other = json.loads(b).get("id", "") if st == 201 else ""
    check("a job submitted with curl: 201", st == 201, st)
    check("the jobs page shows it without a reload",
          br.wait("!!document.querySelector('#jobs tr[data-job=\"%s\"]')" % other, 10))

    form_follows_file(gw, br)

    # pipelines: start "ui" from its form
    br.go(gw.url + "/#/pipelines")
    check("the pipelines page lists ui",
          br.wait("!!document.querySelector('#pipelines tr[data-pipeline=\"ui\"] button.start')"))
    br.eval("document.querySelector('tr[data-pipeline=\"ui\"] button.start').click()")
    check("the start form opens",
          br.wait("!document.querySelector('tr[data-form=\"ui\"]').hidden"))
    rows = br.eval("""Array.from(document.querySelectorAll('tr[data-form="ui"] .arg')).map(r =>
        r.querySelector('.arg-name').value + '=' + r.querySelector('.arg-value').placeholder)""")
    check("the start form lists the pipeline's args, defaults as hints",
          rows == ["WHO=default: world", "TICKS=default: 8"], rows)
    br.eval("""(() => { const f = document.querySelector('tr[data-form="ui"]');
        f.querySelector('.arg-name').value = 'WHO';
        f.querySelector('.arg-value').value = 'browser'; })()""")
    br.shot("pipelines")
    br.eval("document.querySelector('tr[data-form=\"ui\"] .start-submit').click()")
    job = br.wait("(/^#\\/job\\/([0-9A-Z]{26})$/.exec(location.hash) || [])[1]", 10)
    check("Start opens the new job's page", bool(job))
    if not job:
        return
    sel = "#log details[data-step=\"build\"]"
    lines = "Array.from(document.querySelectorAll('%s .line:not(.partial) .tx')).map(e => e.textContent)" % sel

    # its live lines, while it runs
    check("the job page shows its output: hello, browser",
          br.wait("%s.includes('hello, browser')" % lines, 30))
    check("a live line (tick 1) shows", br.wait("%s.includes('tick 1')" % lines, 20))
    st, _, b = http(gw.url + "/api/v1/jobs/" + job, TOKEN)
    check("... while the job still runs", json.loads(b).get("status") == "running",
          json.loads(b).get("status"))

    sub = "document.querySelector('#dag .node[data-step=\"build\"] text.sub').textContent"
    first = br.wait("%s.startsWith('running') && %s" % (sub, sub), 5) or ""
    # the gateway restarts: the page follows on with Last-Event-ID
    check("a second live line (tick 2) shows", br.wait("%s.includes('tick 2')" % lines, 10))
    time.sleep(1.1)
    check("a running step's node counts its time", first.startswith("running")
          and br.eval(sub).startswith("running") and br.eval(sub) != first, (first, br.eval(sub)))
    gw.stop()
    check("the page sees the stream cut",
          br.wait("(document.querySelector('#stream') || {}).dataset.state === 'reconnecting'", 10))
    gw.start()
    # the head and graph come from GET /jobs/ID, asked after events: each
    # one fails until the log has ended (and a second more), so the last
    # ones come after the job's last event: the page asks again by itself
    # (once, in CI, it kept "running" after its log had shown the end)
    stream = "(document.querySelector('#stream') || {dataset: {}}).dataset.state"
    ended = []

    def refuse():
        if not ended and br.eval(stream) == "ended":
            ended.append(time.time())
        return not ended or time.time() < ended[0] + 1

    status = "(document.querySelector('#job-status') || {dataset: {}}).dataset.status"
    done, _, refused = wait_refusing(br, job, "%s === 'failed'" % status, 40, refuse)
    check("the job ends failed (the page says so), its refreshes failing until the log "
          "ended", done and ended and refused > 0, (br.eval(status), br.eval(stream), refused,
          br.eval("(document.querySelector('.error:not([hidden])') || {}).textContent")))
    check("the stream ends with the job",
          br.wait("document.querySelector('#stream').dataset.state === 'ended'", 10))
    order = br.eval("Array.from(document.querySelectorAll('%s .body > div')).map(e => "
                    "e.classList.contains('meta') ? 'META' : e.textContent.replace(/^\\d+/, ''))"
                    % sel) or []
    check("a step's last line without a newline shows above its end's line",
          order[-2:] == ["build done", "META"], order[-3:])
    ticks = [t for t in br.eval(lines) if t.startswith("tick ")]
    want = ["tick %d" % i for i in range(1, 9)]
    check("every line once, in order, across the cut", ticks == want, ticks)
    reqs = [e["params"]["request"] for e in br.events
            if e.get("method") == "Network.requestWillBeSent"]
    lei = [r["headers"].get("Last-Event-ID") for r in reqs
           if r["url"].endswith("/api/v1/jobs/%s/log" % job)]
    check("the reconnect sent Last-Event-ID", any(v and int(v) > 0 for v in lei), lei)
    check("no request carries the token in its URL", not any(TOKEN in r["url"] for r in reqs))
    check("API calls send it as a bearer header",
          any(r["headers"].get("Authorization") == "Bearer " + TOKEN for r in reqs))

    # the graph: states and colours
    fill = br.eval("getComputedStyle(document.querySelector("
                   "'#dag .node[data-step=\"test\"] rect')).fill")
    check("the DAG shows the failed step in red", fill == "rgb(207, 34, 46)" and br.eval(
        "document.querySelector('#dag .node[data-step=\"test\"]').dataset.status") == "failed",
        fill)
    states = "['build','lint','deploy'].map(s => document.querySelector(" \
        "'#dag .node[data-step=\"' + s + '\"]').dataset.status).join()"
    # (lint is cancelled if test fails before it ends: the job fails fast)
    check("the DAG: build succeeded, lint succeeded (or cancelled), deploy skipped",
          br.wait("/^succeeded,(succeeded|cancelled),skipped$/.test(%s)" % states, 5),
          br.eval(states))
    check("the DAG: build -> test, build -> lint, test -> deploy, lint -> deploy", br.eval(
        "Array.from(document.querySelectorAll('#dag .edge')).map(e => e.dataset.from + '>' + "
        "e.dataset.to).sort().join()") == "build>lint,build>test,lint>deploy,test>deploy")
    check("the DAG shows durations",
          re.search(r"\d s$", br.eval("document.querySelector('#dag .node[data-step=\"build\"] "
                                      "text.sub').textContent") or ""))

    # output is text, never markup
    xss = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    check("a step printing <script> shows it as text", xss in br.eval(lines))
    check("... and nothing of it runs or is made",
          br.eval("window.__xss === undefined && !document.querySelector('#log img, #log script')"))

    # ANSI colours
    check("ANSI red is drawn red", br.eval(
        "Array.from(document.querySelectorAll('%s span.fg1')).some(e => e.textContent === 'red' "
        "&& getComputedStyle(e).color === 'rgb(255, 123, 114)')" % sel))
    check("ANSI bold green", br.eval(
        "Array.from(document.querySelectorAll('%s span.fg2.b')).some(e => e.textContent === "
        "'bold green')" % sel))
    check("a 256-colour and an RGB colour", br.eval(
        "Array.from(document.querySelectorAll('%s span')).filter(e => e.style.color).map(e => "
        "e.style.color).join()" % sel) == "rgb(255, 135, 0),rgb(255, 105, 180)")
    check("no escape sequence is left in the text",
          not br.eval("/\\x1b|\\[3[0-9]m/.test(document.querySelector('#log').textContent)"))
    check("stderr lines are marked", br.eval(
        "Array.from(document.querySelectorAll('#log details[data-step=\"test\"] .line.err .tx'))"
        ".some(e => e.textContent === 'oops on stderr')"))

    # folding per step
    br.eval("document.querySelector('%s > summary').click()" % sel)
    check("a click folds the step's log", br.eval(
        "!document.querySelector('%s').open && "
        "!document.querySelector('%s .line').checkVisibility()" % (sel, sel)))
    check("... and the other steps stay open", br.eval(
        "document.querySelector('#log details[data-step=\"test\"]').open"))
    br.eval("document.querySelector('%s > summary').click()" % sel)
    check("a second click unfolds it", br.eval("document.querySelector('%s').open" % sel))
    br.eval("window.scrollTo(0, 0)")
    br.shot("job")
    if os.environ.get("EVR_UI_DOC_SHOT"):   # README's picture: EVR_UI_DOC_SHOT=docs/ui-job.png
        r = br.send("Page.captureScreenshot", {"format": "png", "clip": {
            "x": 0, "y": 0, "width": 1280, "height": 760, "scale": 0.75}})
        with open(os.environ["EVR_UI_DOC_SHOT"], "wb") as f:
            f.write(base64.b64decode(r["data"]))

    # the demand the broker keeps, under the runners: as text (a reason holding markup)
    why = "<img src=x onerror=\"window.pwned=1\"> ui test"
    st, _, b = http(gw.url + "/api/v1/demand", TOKEN, json.dumps(
        {"labels": ["gpu-ui", "executor:podman"], "count": 2, "ttl": 600, "reason": why}).encode())
    dem = json.loads(b).get("id", "") if st == 202 else ""
    check("a demand posted: 202", st == 202, st)
    br.go(gw.url + "/#/runners")
    check("the runners page lists the runner",
          br.wait("!!document.querySelector('#runners tr[data-runner=\"ui-1\"]')"))
    row = "document.querySelector('#demand tr[data-demand=\"%s\"]')" % dem
    check("the runners page lists the demand", br.wait("!!" + row))
    cells = br.eval("((r) => r ? Array.from(r.cells).map((c) => c.textContent) : [])(%s)"
                    % row) or []
    check("... id, wanted, labels, age, seconds left, source", len(cells) == 6
          and cells[0] == dem and cells[1] == "2" and cells[2] == "gpu-uiexecutor:podman"
          and cells[3] != "" and cells[4].isdigit() and 0 < int(cells[4]) <= 600
          and cells[5] == why, cells)
    check("... its labels as chips", br.eval(
        "((r) => r ? r.cells[2].querySelectorAll('.chip').length : 0)(%s)" % row) == 2)
    check("... its source as text, no markup made", br.eval(
        "!document.querySelector('#demand img') && !window.pwned"))
    br.shot("runners")
    br.go(gw.url + "/#/jobs")
    check("the jobs page lists the job as failed", br.wait(
        "(document.querySelector('#jobs tr[data-job=\"%s\"] .badge') || {}).textContent "
        "=== 'failed'" % job, 10))
    br.shot("jobs")

    # Cancel on a job's page
    st, _, b = http(gw.url + "/api/v1/jobs", TOKEN, json.dumps(
        {"pipeline": "ui", "args": {"TICKS": "60"}}).encode())
    long = json.loads(b).get("id", "")
    br.go(gw.url + "/#/job/" + long)
    br.wait("%s.includes('tick 1')" % lines, 30)
    # the refresh after the click gets no answer: the page gives it up and asks again
    done, held, _ = wait_refusing(
        br, long, "%s === 'cancelled'" % status, 30, lambda: False, hold_first=True,
        first=lambda: br.eval("document.querySelector('h1 button.danger').click()"))
    check("Cancel cancels the job (a refresh with no answer asked again)", done and held == 1,
          (br.eval(status), held))
    check("... and its running step shows cancelled", br.wait(
        "document.querySelector('#dag .node[data-step=\"build\"]').dataset.status === "
        "'cancelled'", 10))
    token_and_503(gw, br)
    for p in ("jobs", "job", "runners", "pipelines"):
        path = os.path.join(OUT, p + ".png")
        check("screenshot %s.png" % p, os.path.exists(path) and os.path.getsize(path) > 5000 and
              open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n")

    errors = [e["params"]["exceptionDetails"].get("exception", {}).get("description", "")
              for e in br.events if e.get("method") == "Runtime.exceptionThrown"]
    check("no uncaught script error", not errors, errors[:3])
    csp = [e["params"]["entry"]["text"] for e in br.events if e.get("method") == "Log.entryAdded"
           and "Content Security Policy" in e["params"]["entry"].get("text", "")]
    check("nothing the Content-Security-Policy refused", not csp, csp[:3])


if __name__ == "__main__":
    try:
        main()
    except Exception as e:      # a broken driver is a failure, said as one
        check("the browser test runs to its end", False, repr(e))
    sys.exit(1 if failed else 0)

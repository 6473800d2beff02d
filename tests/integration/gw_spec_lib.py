#!/usr/bin/env python3
"""gw_spec_lib.py: the client of gw_spec.py (see there): its tokens, HTTP
requests as they are sent (http.client, raw sockets), and the checks of
answers against schema/openapi.yaml's schemas.  Reads gw_spec.py's
arguments (BASE STATE_DIR PIPELINE HOOK_TOKEN) from sys.argv when
imported.
"""
import base64
import hashlib
import hmac
import http.client
import json
import re
import socket
import sys
import time
import urllib.parse

BASE, STATE, PIPE, HOOK_TOKEN = sys.argv[1:5]
U = urllib.parse.urlparse(BASE)
HOST, PORT = U.hostname, U.port
API = "/api/v1"
fails = 0
passes = 0


def check(name, ok, detail=""):
    global fails, passes
    if ok:
        passes += 1
        print("  ok   %s" % name)
    else:
        fails += 1
        print("  FAIL %s %s" % (name, detail))
    return ok


# ------------------------------------------------------------- tokens

def b64(x):
    return base64.urlsafe_b64encode(x).rstrip(b"=")


SECRET = open(STATE + "/gateway/jwt.secret", "rb").read().strip()
HOOK_SECRET = open(STATE + "/gateway/webhook.secret", "rb").read().strip()


def jwt(claims=None, header=None, key=SECRET, alg=hashlib.sha256, **over):
    now = int(time.time())
    c = {"sub": "spec", "iat": now, "exp": now + 600, "scope": "write"}
    c.update(claims or {})
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    h = header or {"alg": "HS256", "typ": "JWT"}
    msg = b64(json.dumps(h).encode()) + b"." + b64(json.dumps(c).encode())
    return (msg + b"." + b64(hmac.new(key, msg, alg).digest())).decode()


W = jwt()
R = jwt(scope="read")


# -------------------------------------------------------------- client

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self._js = None

    def h(self, k):
        return self.headers.get(k.lower())

    def json(self):
        if self._js is None:
            try:
                self._js = json.loads(self.body.decode("utf-8"))
            except ValueError:
                self._js = False
        return self._js

    def __repr__(self):
        return "%d %s" % (self.status, self.body[:300])


def req(method, path, body=None, headers=None, token=W, ctype=None, timeout=20):
    hd = {}
    if token:
        hd["Authorization"] = "Bearer " + token
    if ctype:
        hd["Content-Type"] = ctype
    hd.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hd.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    c.request(method, path, body=body, headers=hd)
    r = c.getresponse()
    data = r.read() if method != "HEAD" else b""
    out = Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    c.close()
    return out


def api(method, path, body=None, **kw):
    return req(method, API + path, body, **kw)


def raw(data, wait=5.0, whole=False):
    """Sends bytes as they are (a server that answers early and closes may
    cut the sending short); the answer's (status, head, body) (status 0:
    none); with whole, all that comes until the server closes or nothing
    comes for wait seconds."""
    s = socket.create_connection((HOST, PORT), timeout=wait)
    out = b""
    try:
        s.sendall(data)
    except OSError:
        pass
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            head, sep, rest = out.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: *(\d+)", head)
            if sep and m and len(rest) >= int(m.group(1)) and not whole:
                break
    except socket.timeout:
        pass
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    st = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
    return st, head.decode("latin-1"), body


# ------------------------------------------------------- schema checks

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
JOB_STATUS = {"queued", "running", "paused", "succeeded", "failed", "cancelled", "timed_out",
              "lost"}
STEP_STATUS = {"pending", "queued", "starting", "running", "succeeded", "failed", "cancelled",
               "timed_out", "lost", "skipped"}


def types_ok(obj, required, optional, where):
    """Each field of required present with its type, optional ones typed;
    a list of problems."""
    bad = []
    if not isinstance(obj, dict):
        return ["%s: not an object" % where]
    for k, t in required.items():
        if k not in obj:
            bad.append("%s.%s missing" % (where, k))
    for k, t in list(required.items()) + list(optional.items()):
        if k not in obj:
            continue
        v = obj[k]
        if t == "time":
            ok = isinstance(v, str) and TIME.match(v)
        elif t == "int":
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif t == "strs":
            ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
        elif isinstance(t, set):
            ok = v in t
        else:
            ok = isinstance(v, t)
        if not ok:
            bad.append("%s.%s = %r: wrong type" % (where, k, v))
    return bad


JOB_REQ = {"id": str, "pipeline": str, "status": JOB_STATUS, "steps_total": "int",
           "steps_done": "int"}
JOB_OPT = {"runner": str, "created": "time", "started": "time", "finished": "time",
           "reason": str}


def job_problems(j, where="job"):
    bad = types_ok(j, JOB_REQ, JOB_OPT, where)
    if isinstance(j, dict) and isinstance(j.get("id"), str) and not ULID.match(j["id"]):
        bad.append("%s.id %r is no ULID" % (where, j["id"]))
    return bad


def is_json(r):
    return (r.h("content-type") or "").split(";")[0].strip() == "application/json" \
        and r.json() is not False


def err_ok(name, r, status, code=None, says=None):
    """r is status with a JSON error body naming the problem."""
    e = r.json().get("error") if is_json(r) and isinstance(r.json(), dict) else None
    ok = r.status == status and isinstance(e, dict) and isinstance(e.get("code"), str) \
        and isinstance(e.get("message"), str) and len(e["message"]) > 5 \
        and (code is None or e["code"] == code) \
        and (says is None or re.search(says, e["message"]) is not None)
    return check("%s: %d%s" % (name, status, " " + code if code else ""), ok, repr(r))


def schema_ok(name, r, status, problems_fn):
    ok = r.status == status and is_json(r)
    bad = problems_fn(r.json()) if ok else ["%r" % r]
    return check(name, ok and not bad, "; ".join(bad[:5]))


def wait_status(job, want, secs=30):
    st = None
    for _ in range(int(secs * 10)):
        r = api("GET", "/jobs/" + job, token=R)
        st = r.json().get("status") if r.status == 200 else None
        if st in want:
            return st
        time.sleep(0.1)
    return st

def detail_problems(js):
    bad = job_problems(js)
    bad += types_ok(js, {"steps": list, "events": "int"}, {"source": dict, "ci_source": dict},
                    "job")
    for i, s in enumerate(js.get("steps") or []):
        bad += types_ok(s, {"name": str, "status": STEP_STATUS},
                        {"attempt": "int", "needs": "strs", "when": {"on_failure", "always"},
                         "started": "time", "finished": "time", "exit_code": "int",
                         "duration_ms": "int", "reason": str}, "steps[%d]" % i)
    for k in ("source", "ci_source"):
        if k in js:
            bad += types_ok(js[k], {}, {"kind": {"git", "copy", "tarball"}, "url": str,
                                        "ref": str, "sha": str}, k)
    return bad

def sse(job, last=None, step=None, timeout=30):
    hd = {"Accept": "text/event-stream"}
    if last is not None:
        hd["Last-Event-ID"] = str(last)
    r = api("GET", "/jobs/%s/log%s" % (job, "?step=" + step if step else ""), headers=hd,
            token=R, timeout=timeout)
    evs = []
    for block in r.body.decode("utf-8", "replace").split("\n\n"):
        eid = data = None
        for line in block.split("\n"):
            if line.startswith("id: "):
                eid = int(line[4:])
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if eid is not None:
            evs.append((eid, data))
    return r, evs

def sign(body, key=HOOK_SECRET):
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

def gh(event, body, sig=None, delivery=None, extra=None):
    b = body if isinstance(body, bytes) else json.dumps(body).encode()
    hd = {"Content-Type": "application/json"}
    if event is not None:
        hd["X-GitHub-Event"] = event
    if sig is not False:
        hd["X-Hub-Signature-256"] = sign(b) if sig is None else sig
    if delivery:
        hd["X-GitHub-Delivery"] = delivery
    hd.update(extra or {})
    return req("POST", "/hooks/github", b, headers=hd, token=None)

def hook_started(js):
    bad = types_ok(js, {"jobs": list}, {"refused": list, "message": str, "demand": dict,
                                        "demand_refused": dict, "source": dict}, "body")
    for i, j in enumerate(js.get("jobs", [])):
        bad += types_ok(j, {"pipeline": str, "id": str, "existing": bool}, {}, "jobs[%d]" % i)
    return bad


ZID = "01ARYZ6S41TSV4RRFFQ69G5FAV"

#!/usr/bin/env python3
"""gw_spec.py BASE STATE_DIR PIPELINE HOOK_TOKEN: an independent client of
evrun-gateway, written from schema/openapi.yaml and README "HTTP gateway"
alone (test_gateway_spec.sh starts a broker, a process runner and the
gateway; BASE is http://127.0.0.1:PORT).  It makes its own tokens from
STATE_DIR/gateway/jwt.secret (a JWT HS256 with sub, iat, exp, scope) and
signs GitHub deliveries with STATE_DIR/gateway/webhook.secret.  PIPELINE is
a registered pipeline (executor: process) whose step `make` writes the
artifact out/a.txt ("hello, WHO") and prints "hello, WHO"; HOOK_TOKEN is
its hook token.

For every route: the valid request answers what the spec says (status,
Content-Type, the JSON fields and their types), and bad requests get the
documented status with a JSON error {"error": {"code", "message"}}.
Prints one line per check; exits 1 when any failed.  The client itself
(tokens, requests, schema checks) is gw_spec_lib.py.  Cases: the
arguments after HOOK_TOKEN (default all, broker_gone last: it stops the
broker, EVR_BROKER_PID).
"""
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_spec_lib as lib                   # noqa: E402
import gw_spec_edge                         # noqa: E402
from gw_spec_lib import *                   # noqa: E402,F401,F403


# --------------------------------------------------------------- cases

def case_auth():
    print("== auth")
    routes = [("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/%s" % ZID),
              ("POST", "/jobs/%s/cancel" % ZID), ("POST", "/jobs/%s/pause" % ZID),
              ("POST", "/jobs/%s/resume" % ZID), ("GET", "/jobs/%s/log" % ZID),
              ("GET", "/runners"), ("GET", "/pipelines"), ("GET", "/jobs/%s/artifacts" % ZID),
              ("GET", "/jobs/%s/artifacts/make/a.txt" % ZID), ("POST", "/demand")]
    for m, p in routes:
        r = api(m, p, token=None)
        err_ok("%s %s without a token" % (m, p), r, 401, "unauthorized")
        check("... with WWW-Authenticate: Bearer", (r.h("www-authenticate") or "")
              .startswith("Bearer"), repr(r.headers))
    bad = {
        "expired": jwt(exp=int(time.time()) - 10),
        "no exp": jwt(exp=None),
        "exp a string": jwt(exp="never"),
        "wrong signature": jwt(key=b"another secret"),
        "signature cut": W[:-4],
        "alg none": jwt(header={"alg": "none"}).rsplit(".", 1)[0] + ".",
        "alg HS512": jwt(header={"alg": "HS512", "typ": "JWT"}, alg=hashlib.sha512),
        "scope admin": jwt(scope="admin"),
        "no scope": jwt(scope=None),
        "issued in an hour": jwt(iat=int(time.time()) + 3600),
        "for another audience (aud)": jwt(aud="https://other.example.org"),
        "with an aud list": jwt(aud=["evrun", "other"]),
        "not valid for an hour (nbf)": jwt(nbf=int(time.time()) + 3600),
        "two parts": ".".join(W.split(".")[:2]),
        "four parts": W + ".x",
        "empty": "",
    }
    for what, tok in bad.items():
        r = api("GET", "/runners", headers={"Authorization": "Bearer " + tok}, token=None)
        err_ok("token %s" % what, r, 401, "unauthorized")
    r = api("GET", "/runners", headers={"Authorization": "Basic dTpw"}, token=None)
    err_ok("Basic credentials", r, 401, "unauthorized", "Bearer")
    r = api("GET", "/runners", headers={"Authorization": "bearer " + R}, token=None)
    check("the scheme in lower case (RFC 9110: case-insensitive): 200", r.status == 200, repr(r))
    r = api("GET", "/runners", headers={"Authorization": "Bearer " + R + " \t"}, token=None)
    check("whitespace after the token (not part of a field value, RFC 9110 5.5): 200",
          r.status == 200, repr(r))
    r = api("GET", "/runners", token=jwt(aud=None, nbf=int(time.time()) - 5))
    check("nbf in the past: 200", r.status == 200, repr(r))
    for m, p in routes:
        if m == "POST":
            r = api(m, p, token=R, body={})
            err_ok("%s %s with a read token" % (m, p), r, 403, "forbidden")


def case_methods():
    print("== methods, paths")
    spec = {  # path -> methods, as openapi.yaml lists them
        API + "/jobs": {"GET", "POST"}, API + "/jobs/" + ZID: {"GET"},
        API + "/jobs/%s/cancel" % ZID: {"POST"}, API + "/jobs/%s/pause" % ZID: {"POST"},
        API + "/jobs/%s/resume" % ZID: {"POST"}, API + "/jobs/%s/log" % ZID: {"GET"},
        API + "/runners": {"GET"}, API + "/pipelines": {"GET"},
        API + "/jobs/%s/artifacts" % ZID: {"GET"},
        API + "/jobs/%s/artifacts/make/out/a.txt" % ZID: {"GET"}, API + "/demand": {"POST"},
        "/metrics": {"GET"}, "/hooks/github": {"POST"}, "/hooks/" + PIPE: {"POST"},
        "/": {"GET"}, "/ui/app.js": {"GET"},
    }
    for path, methods in spec.items():
        for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            if m in methods:
                continue
            r = req(m, path)
            allow = {x.strip() for x in (r.h("allow") or "").split(",") if x.strip()}
            ok = err_ok("%s %s" % (m, path), r, 405, "method_not_allowed")
            if ok:
                check("... Allow lists %s" % sorted(methods), methods <= allow
                      and allow <= methods | {"HEAD"}, repr(r.headers))
    # HEAD: the GET's status and headers, no body (RFC 9110 9.3.2)
    for path in (API + "/runners", API + "/jobs", API + "/jobs/" + ZID, "/metrics", "/",
                 "/ui/app.js", "/ui/nope.js", API + "/demand"):
        g, h = req("GET", path), req("HEAD", path)
        check("HEAD %s: as GET (%d), no body" % (path, g.status),
              h.status == g.status and h.h("content-type") == g.h("content-type")
              and h.h("allow") == g.h("allow"), "HEAD %r GET %r" % (h, g))
    r = req("PUT", API + "/runners")
    check("Allow of a GET route names HEAD", "HEAD" in (r.h("allow") or ""), repr(r.headers))
    st, head, body = raw(("HEAD %s/runners HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                          "Connection: close\r\n\r\n" % (API, W)).encode())
    check("HEAD: no body on the wire", st == 200 and body == b"", "%d %r" % (st, body[:100]))
    check("HEAD with a read token: as GET (404)", req("HEAD", API + "/jobs/" + ZID,
                                                     token=R).status == 404)
    for path in ("/api/v1", "/api/v1/", "/api/v2/jobs", "/nope", "/api/v1/jobs/", "/jobs",
                 "/api/v1/jobs/%s/nope" % ZID, "/api/v1/runners/x", "/hooks", "/hooks/",
                 "/ui/", "/metrics/x"):
        err_ok("GET %s" % path, req("GET", path), 404, "not_found")
    st, head, body = raw(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    check("OPTIONS *: an answer (no crash)", st >= 400, "%d" % st)
    st, head, body = raw(b"GET /api/v1/runners HTTP/1.0\r\nAuthorization: Bearer "
                         + W.encode() + b"\r\n\r\n")
    check("HTTP/1.0 without Host: 200", st == 200, head[:200])


def case_submit():
    print("== POST /jobs")
    y = "pipeline: spec-yaml\nexecutor: process\nsteps:\n  - {name: a, run: 'echo yaml'}\n"
    r = api("POST", "/jobs?label=nobody", y, ctype="application/yaml")

    def submitted(js):
        return types_ok(js, {"id": str, "pipeline": str, "status": JOB_STATUS,
                             "existing": bool}, {}, "body") \
            + ([] if ULID.match(js.get("id", "")) else ["id is no ULID"])
    schema_ok("YAML: 201 Submitted", r, 201, submitted)
    check("YAML: pipeline, status queued, existing false", r.json().get("pipeline") ==
          "spec-yaml" and r.json().get("status") == "queued" and r.json().get("existing") is False,
          repr(r))
    global QUEUED
    QUEUED = r.json().get("id")
    j = {"pipeline": "spec-json", "executor": "process", "steps": [{"name": "a", "run": "true"}]}
    r = api("POST", "/jobs?label=nobody", j)
    schema_ok("JSON pipeline: 201 Submitted", r, 201, submitted)
    r = api("POST", "/jobs?label=nobody", {"pipeline": PIPE, "args": {"WHO": "x"},
                                           "labels": ["nobody-else"]})
    schema_ok("JSON start: 201 Submitted", r, 201, submitted)
    check("JSON start: the pipeline's name", r.json().get("pipeline") == PIPE, repr(r))
    key = "spec-key-" + str(time.time())
    a = api("POST", "/jobs?label=nobody", y, ctype="application/yaml",
            headers={"Idempotency-Key": key})
    b = api("POST", "/jobs?label=nobody", y, ctype="application/yaml",
            headers={"Idempotency-Key": key})
    check("Idempotency-Key: 201, then 200 with the same id, existing the 2nd time",
          a.status == 201 and b.status == 200 and a.json()["id"] == b.json()["id"]
          and a.json()["existing"] is False and b.json()["existing"] is True, "%r %r" % (a, b))
    c = api("POST", "/jobs?label=nobody", {"pipeline": PIPE}, headers={"Idempotency-Key": key})
    check("the same key, another pipeline: that job, named as it is (spec-yaml)",
          c.status == 200 and c.json()["id"] == a.json()["id"] and c.json()["existing"] is True
          and c.json()["pipeline"] == "spec-yaml", repr(c))
    api("POST", "/jobs/%s/cancel" % a.json()["id"])
    wait_status(a.json()["id"], {"cancelled"}, 10)
    c = api("POST", "/jobs?label=nobody", y, ctype="application/yaml",
            headers={"Idempotency-Key": key})
    check("the same key once the job ended: its status now (cancelled)", c.status == 200
          and c.json()["status"] == "cancelled" and c.json()["existing"] is True, repr(c))
    r = api("POST", "/jobs?label=nobody", y, ctype="application/yaml",
            headers={"Idempotency-Key": "k" * 255})
    check("Idempotency-Key of 255: 201", r.status == 201, repr(r))
    for what, k in (("256 characters", "k" * 256), ("a space", "a b"), ("a tab", "a\tb")):
        r = api("POST", "/jobs", y, ctype="application/yaml", headers={"Idempotency-Key": k})
        err_ok("Idempotency-Key with %s" % what, r, 400, "bad_request", "Idempotency-Key")
    # the keys of the hooks and demands are kept under prefixes: a submit's key never meets
    # them (hook:NAME:K would be the job the hook started with K, demand:K a demand's id)
    k = "spec-hook-key-" + str(time.time())
    h = req("POST", "/hooks/" + PIPE, {"labels": ["nobody"]}, token=HOOK_TOKEN,
            headers={"Idempotency-Key": k})
    d = api("POST", "/demand", {"count": 1, "ttl": 5, "labels": ["spec-k"]},
            headers={"Idempotency-Key": k})
    check("a hook's start and a demand with key K: 202", h.status == 202 and d.status == 202,
          "%r %r" % (h, d))
    for taken in ("hook:%s:%s" % (PIPE, k), "demand:" + k, "github:x:" + PIPE,
                  "github-demand:job:1"):
        r = api("POST", "/jobs?label=nobody", y, ctype="application/yaml",
                headers={"Idempotency-Key": taken})
        err_ok("Idempotency-Key %s (another route's): refused" % taken.split(":")[0], r, 400,
               "bad_request", "may not begin with")
    # media types
    err_ok("no Content-Type", api("POST", "/jobs", y), 415)
    err_ok("Content-Type text/plain", api("POST", "/jobs", y, ctype="text/plain"), 415)
    # bodies that are not pipelines
    for what, body, ct in (
            ("an empty body", "", "application/yaml"),
            ("an empty JSON body", "", "application/json"),
            ("bad JSON", '{"steps": [', "application/json"),
            ("a JSON array", "[1, 2]", "application/json"),
            ("a JSON string", '"steps"', "application/json"),
            ("JSON without steps or pipeline", '{"image": "x"}', "application/json"),
            ("JSON steps of the wrong type", '{"pipeline": "t", "steps": 5}',
             "application/json"),
            ("JSON step without run", '{"pipeline": "t", "steps": [{"name": "a"}]}',
             "application/json"),
            ("JSON with a duplicate key", '{"pipeline": "t", "pipeline": "u", "steps": []}',
             "application/json"),
            ("YAML that is a list", "- a\n- b\n", "application/yaml"),
            ("YAML with a tab", "pipeline: t\n\tsteps: []\n", "application/yaml"),
            ("a copy: source", '{"pipeline": "t", "source": {"copy": "."}, "steps": '
             '[{"name": "a", "run": "true"}]}', "application/json")):
        err_ok("submit %s" % what, api("POST", "/jobs", body, ctype=ct), 400)
    r = api("POST", "/jobs", '{"pipeline": "t", "steps": 5}', ctype="application/json")
    d = (r.json() or {}).get("error", {}).get("details")
    check("... a bad pipeline's details: strings body:LINE:COL", isinstance(d, list) and d
          and all(isinstance(x, str) and re.match(r"body:\d+:\d+: ", x) for x in d), repr(r))
    # a start (Start schema: additionalProperties false, maxLength, maxItems)
    for what, body in (("pipeline a number", {"pipeline": 5}),
                       ("pipeline null", {"pipeline": None}),
                       ("pipeline with a slash", {"pipeline": "../x"}),
                       ("pipeline of 65 bytes", {"pipeline": "p" * 65}),
                       ("args a list", {"pipeline": PIPE, "args": ["WHO=x"]}),
                       ("an arg a number", {"pipeline": PIPE, "args": {"WHO": 5}}),
                       ("65 args", {"pipeline": PIPE, "args": {"A%d" % i: "x"
                                                              for i in range(65)}}),
                       ("labels a string", {"pipeline": PIPE, "labels": "linux"}),
                       ("a label a number", {"pipeline": PIPE, "labels": [5]}),
                       ("33 labels", {"pipeline": PIPE, "labels": ["l%d" % i
                                                                  for i in range(33)]}),
                       ("an unknown field", {"pipeline": PIPE, "wat": 1}),
                       ("an unknown arg", {"pipeline": PIPE, "args": {"NOPE": "1"}})):
        err_ok("start with %s" % what, api("POST", "/jobs", body), 400)
    err_ok("start an unknown pipeline", api("POST", "/jobs", {"pipeline": "no-such-pipe"}),
           404, "not_found")
    # the broker's refusal of an unknown arg names it as this request gave it
    err_ok("start with an unknown arg: named body.args.NOPE",
           api("POST", "/jobs", {"pipeline": PIPE, "args": {"NOPE": "1"}}), 400, None,
           r'^body\.args\.NOPE: the pipeline declares no arg "NOPE"')
    err_ok("start with an unknown ?arg=: named ?arg=NOPE",
           api("POST", "/jobs?arg=NOPE=1", {"pipeline": PIPE}), 400, None,
           r'^\?arg=NOPE: the pipeline declares no arg "NOPE"')
    err_ok("submit with an unknown ?arg=: named ?arg=NOPE",
           api("POST", "/jobs?arg=NOPE=1", y, ctype="application/yaml"), 400, None,
           r'^\?arg=NOPE: the pipeline declares no arg "NOPE"')
    # query arguments
    for q in ("arg=NOVALUE", "arg==x", "arg=NOPE=1", "label=a/b", "label=", "label=" + "l" * 65):
        err_ok("submit ?%s" % q, api("POST", "/jobs?" + q, y, ctype="application/yaml"), 400,
               "bad_request" if q.startswith("label") else None)
    r = api("POST", "/jobs?" + "&".join("label=l%d" % i for i in range(33)), y,
            ctype="application/yaml")
    err_ok("submit with 33 ?label=", r, 400, "bad_request", "label")
    r = api("POST", "/jobs?" + "&".join("label=q%d" % i for i in range(20)),
            {"pipeline": PIPE, "labels": ["b%d" % i for i in range(20)]})
    err_ok("start with 20 labels and 20 ?label=", r, 400, "bad_request", "label")
    r = api("POST", "/jobs?" + "&".join("label=l%d" % i for i in range(32)), y,
            ctype="application/yaml")
    check("submit with 32 ?label=: 201", r.status == 201, repr(r))
    # sizes
    st, head, body = raw(("POST %s/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                          "Content-Type: application/yaml\r\nContent-Length: %d\r\n\r\n"
                          % (API, W, 4 * 1024 * 1024 + 1)).encode() + b"#" * (4 << 20) + b"#")
    check("a body over 4 MiB: 413 JSON", st == 413 and b"too_large" in body, head[:100])
    st, head, body = raw(("POST %s/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                          "Content-Type: application/yaml\r\nContent-Length: 99999999999\r\n"
                          "\r\n" % (API, W)).encode())
    check("Content-Length of 100 GB: 413 JSON", st == 413 and b"too_large" in body, head[:100])
    for cl in ("-1", "abc", "1e3", "18446744073709551616"):
        st, head, body = raw(("POST %s/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                              "Content-Type: application/yaml\r\nContent-Length: %s\r\n"
                              "Connection: close\r\n\r\nsteps: []\n" % (API, W, cl)).encode())
        check("Content-Length %s: 400 or 413, no crash" % cl, st in (400, 413), head[:100])


def case_list():
    print("== GET /jobs")
    r = api("GET", "/jobs", token=R)

    def page(js):
        bad = types_ok(js, {"jobs": list}, {"next_cursor": str}, "body")
        for i, j in enumerate(js.get("jobs", [])):
            bad += job_problems(j, "jobs[%d]" % i)
        return bad
    schema_ok("200, every Job typed", r, 200, page)
    check("default limit 50: at most 50", len(r.json().get("jobs", [])) <= 50)
    n = len(r.json()["jobs"])
    r = api("GET", "/jobs?limit=1", token=R)
    schema_ok("limit=1: 200", r, 200, page)
    check("limit=1: one job and a next_cursor", len(r.json()["jobs"]) == 1 and (n < 2 or
          isinstance(r.json().get("next_cursor"), str)), repr(r))
    c = r.json().get("next_cursor")
    if c:
        r2 = api("GET", "/jobs?limit=1&cursor=" + c, token=R)
        check("the next page: another job", r2.status == 200 and r2.json()["jobs"]
              and r2.json()["jobs"][0]["id"] != r.json()["jobs"][0]["id"], repr(r2))
    r = api("GET", "/jobs?limit=1000", token=R)
    check("limit=1000: 200, the last page: no next_cursor", r.status == 200
          and "next_cursor" not in r.json(), repr(r)[:200])
    for q in ("limit=-1", "limit=abc", "limit=0", "limit=1001", "limit=99999999999999999999999",
              "limit=", "limit=1.5", "limit=%2B5", "limit=%205", "limit=5%20", "limit=0x10", "limit=5x", "cursor=zz",
              "cursor=" + "Z" * 26, "status=dancing", "status=", "pipeline=a%ffb", "pipeline="):
        err_ok("?%s" % q, api("GET", "/jobs?" + q, token=R), 400, "bad_request")
    for s in sorted(JOB_STATUS):
        r = api("GET", "/jobs?status=" + s, token=R)
        check("?status=%s: 200, only such jobs" % s, r.status == 200 and all(
            j["status"] == s for j in r.json()["jobs"]), repr(r))
    r = api("GET", "/jobs?pipeline=spec-yaml", token=R)
    check("?pipeline=: only its jobs", r.status == 200 and r.json()["jobs"] and all(
        j["pipeline"] == "spec-yaml" for j in r.json()["jobs"]), repr(r))
    # an empty sequence between two & is no parameter (as a trailing & is); an empty name
    # with a value is one
    for q in ("limit=1&", "&limit=1", "limit=1&&status=queued", "&&"):
        r = api("GET", "/jobs?" + q, token=R)
        check("?%s: 200" % q, r.status == 200, repr(r)[:200])
    r = api("GET", "/runners?&", token=R)
    check("GET /runners?&: 200", r.status == 200, repr(r)[:200])
    err_ok("?=1", api("GET", "/jobs?=1", token=R), 400, "bad_request", "an empty name")




def case_job():
    print("== GET /jobs/{id}, cancel, pause, resume")
    r = api("GET", "/jobs/" + QUEUED, token=R)
    schema_ok("a queued job: 200 JobDetail", r, 200, detail_problems)
    check("... queued, its steps empty", r.json().get("status") == "queued", repr(r))
    r = api("GET", "/jobs/" + QUEUED.lower(), token=R)
    check("the id in lower case: 200", r.status == 200, repr(r))
    for bad in (ZID, "x", "0" * 25, "0" * 27, "I" * 26, "8" + "0" * 25,
                "a" * 127, "a" * 300):
        err_ok("GET /jobs/%s" % bad[:30], api("GET", "/jobs/" + bad, token=R), 404, "not_found")
    err_ok("GET /jobs/%00...: an escaped NUL in the path", api("GET", "/jobs/" + "%00" * 26,
                                                               token=R), 400, "bad_request")
    for cmd in ("cancel", "pause", "resume", "log", "artifacts"):
        m = "GET" if cmd in ("log", "artifacts") else "POST"
        err_ok("%s %s of an unknown job" % (m, cmd), api(m, "/jobs/%s/%s" % (ZID, cmd)), 404,
               "not_found")
        err_ok("%s %s of a bad id" % (m, cmd), api(m, "/jobs/nope/%s" % cmd), 404, "not_found")

    def taken(js):
        return types_ok(js, {"id": str, "message": str}, {}, "body")
    schema_ok("pause a queued job: 200 {id, message}", api("POST", "/jobs/%s/pause" % QUEUED),
              200, taken)
    check("... now paused", wait_status(QUEUED, {"paused"}, 10) == "paused")
    schema_ok("resume it: 200", api("POST", "/jobs/%s/resume" % QUEUED), 200, taken)
    check("... queued again", wait_status(QUEUED, {"queued"}, 10) == "queued")
    for what, body, ct in (("not JSON", "{", "application/json"),
                           ("a JSON array", "[]", "application/json"),
                           ("a reason that is a number", '{"reason": 5}', "application/json"),
                           ("a reason null", '{"reason": null}', "application/json"),
                           ("a reason of 1025 bytes", json.dumps({"reason": "r" * 1025}),
                            "application/json")):
        err_ok("cancel with %s" % what, api("POST", "/jobs/%s/cancel" % QUEUED, body, ctype=ct),
               400, "bad_request")
    check("... the job still queued", wait_status(QUEUED, {"queued"}, 1) == "queued")
    r = api("POST", "/jobs/%s/cancel" % QUEUED, {"reason": "r" * 1024})
    schema_ok("cancel with a reason of 1024 bytes: 200", r, 200, taken)
    check("... cancelled", wait_status(QUEUED, {"cancelled"}, 10) == "cancelled")
    for cmd in ("cancel", "pause", "resume"):
        err_ok("%s an ended job" % cmd, api("POST", "/jobs/%s/%s" % (QUEUED, cmd)), 409,
               "conflict")




def case_run():
    print("== a job run: log, SSE, artifacts")
    r = api("POST", "/jobs", {"pipeline": PIPE, "args": {"WHO": "spec"}})
    job = r.json().get("id")
    check("start the process pipeline: 201", r.status == 201, repr(r))
    check("it succeeds", wait_status(job, {"succeeded", "failed", "cancelled"}) == "succeeded")
    r = api("GET", "/jobs/" + job, token=R)
    schema_ok("the ended job: 200 JobDetail", r, 200, detail_problems)
    js = r.json()
    check("... its step make succeeded with exit_code 0, times", js.get("steps") and
          js["steps"][0]["name"] == "make" and js["steps"][0]["status"] == "succeeded"
          and js["steps"][0].get("exit_code") == 0 and "finished" in js and "started" in js
          and js.get("runner"), repr(r))
    r = api("GET", "/jobs/%s/log" % job, token=R)
    check("log as text: 200 text/plain", r.status == 200 and (r.h("content-type") or "")
          .startswith("text/plain"), repr(r))
    check("log as text: \"step | line\"", "make | hello, spec" in r.body.decode(), repr(r))
    err_ok("log ?step= of no such step: 404 naming the job's steps",
           api("GET", "/jobs/%s/log?step=nope" % job, token=R), 404, "not_found", "its steps: make")
    for q in ("step=a/b", "step=", "step=%00", "step=" + "s" * 65):
        err_ok("log ?%s" % q, api("GET", "/jobs/%s/log?%s" % (job, q), token=R), 400,
               "bad_request")
    r, evs = sse(job)
    check("SSE: 200 text/event-stream", r.status == 200 and (r.h("content-type") or "")
          .startswith("text/event-stream"), repr(r))
    ids = [e[0] for e in evs]
    check("SSE: ids 1..N in order", ids == list(range(1, len(ids) + 1)) and ids, str(ids))
    check("SSE: data is the event as JSON, ending with job.finished",
          all(isinstance(d, dict) and isinstance(d.get("type"), str) for _, d in evs)
          and evs[-1][1]["type"] == "job.finished", str(evs[-1:]))
    check("SSE: each data's jseq is its id, its job this one", all(
        d.get("jseq") == i and d.get("job") == job for i, d in evs), str(evs[:2])[:200])
    n = len(evs)
    _, evs2 = sse(job, last=2)
    check("Last-Event-ID 2: the events after it", [e[0] for e in evs2] == list(range(3, n + 1)),
          str([e[0] for e in evs2]))
    _, evs3 = sse(job, last=n)
    check("Last-Event-ID N: nothing, the stream ends", evs3 == [], str(evs3))
    _, evs4 = sse(job, step="make")
    check("SSE ?step=make: its events and job.finished", evs4 and all(
        d.get("data", {}).get("step") == "make" or d["type"] == "job.finished"
        for _, d in evs4), str([d["type"] for _, d in evs4]))
    for v in ("-1", "x", "4294967296", "1.5", " ", "99999999999999999999"):
        r = api("GET", "/jobs/%s/log" % job, headers={"Accept": "text/event-stream",
                                                      "Last-Event-ID": v}, token=R)
        err_ok("Last-Event-ID %r" % v, r, 400, "bad_request", "from 0 to 4294967295")
    # artifacts
    r = None
    for _ in range(100):
        r = api("GET", "/jobs/%s/artifacts" % job, token=R)
        if r.status == 200 and r.json().get("artifacts"):
            break
        time.sleep(0.1)

    def arts(js):
        bad = types_ok(js, {"id": str, "artifacts": list, "finished": bool}, {}, "body")
        for i, a in enumerate(js.get("artifacts", [])):
            bad += types_ok(a, {"step": str, "path": str, "size": "int", "sha256": str}, {},
                            "artifacts[%d]" % i)
        return bad
    schema_ok("artifacts: 200, typed", r, 200, arts)
    a = [x for x in r.json().get("artifacts", []) if x["path"] == "out/a.txt"]
    check("artifacts: out/a.txt of step make, finished", a and a[0]["step"] == "make"
          and r.json()["finished"] is True, repr(r))
    d = None
    for _ in range(100):
        d = api("GET", "/jobs/%s/artifacts/make/out/a.txt" % job, token=R)
        if d.status == 200:
            break
        time.sleep(0.1)
    want = b"hello, spec\n"
    check("download: 200 application/octet-stream, the bytes", d.status == 200
          and d.h("content-type") == "application/octet-stream" and d.body == want, repr(d))
    sha = hashlib.sha256(want).hexdigest()
    check("download: Content-Length, ETag, X-Evrun-Sha256", d.h("content-length") == str(
        len(want)) and d.h("x-evrun-sha256") == sha and (d.h("etag") or "").strip('"') == sha
        and a and a[0]["sha256"] == sha and a[0]["size"] == len(want), repr(d.headers))
    h = api("HEAD", "/jobs/%s/artifacts/make/out/a.txt" % job, token=R, timeout=10)
    check("HEAD of a download: 200, its headers", h.status == 200 and h.h("content-length")
          == str(len(want)) and h.h("x-evrun-sha256") == sha, repr(h))
    h = api("HEAD", "/jobs/%s/log" % job, headers={"Accept": "text/event-stream"}, token=R,
            timeout=10)
    check("HEAD of the live log: 200 text/event-stream, at once", h.status == 200
          and (h.h("content-type") or "").startswith("text/event-stream"), repr(h))
    # 16 downloads at once (clients that do not read a 8 MB file): the 17th is 503
    big = "/jobs/%s/artifacts/make/out/big.bin" % job
    r = None
    for _ in range(100):
        r = api("GET", big, token=R)
        if r.status == 200:
            break
        time.sleep(0.1)
    check("download of 8 MB: 200, the bytes", r.status == 200 and r.body == bytes(8000000)
          and r.h("x-evrun-sha256") == hashlib.sha256(r.body).hexdigest(), repr(r)[:100])
    held = []
    for _ in range(16):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, PORT))
        s.sendall(("GET %s%s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n"
                   % (API, big, R)).encode())
        held.append(s)
        if not s.recv(12).startswith(b"HTTP/1.1 200"):  # its answer has begun: it holds a slot
            break
    r = api("GET", big, token=R)
    err_ok("a 17th download at once", r, 503, "unavailable", "16")
    check("... with Retry-After: 5", r.h("retry-after") == "5", repr(r.headers))
    for s in held:
        s.close()
    r = None
    for _ in range(100):
        r = api("GET", big, token=R)
        if r.status == 200:
            break
        time.sleep(0.1)
    check("once they are gone: 200 again", r.status == 200 and len(r.body) == 8000000,
          repr(r)[:100])
    err_ok("download of no such file", api("GET", "/jobs/%s/artifacts/make/out/b.txt" % job,
                                           token=R), 404, "not_found")
    err_ok("a step with an escaped / (%2F would read as a separator): 400",
           api("GET", "/jobs/%s/artifacts/ma%%2Fke/out/a.txt" % job, token=R), 400,
           "bad_request", r"escaped / \(%2F\)")
    err_ok("download of no such step", api("GET", "/jobs/%s/artifacts/nope/out/a.txt" % job,
                                           token=R), 404, "not_found")
    for p in ("make/../x", "make/out/../a.txt", "make/out//a.txt", "make/%2Fetc/passwd",
              "make/out/a.txt%00", "make/out/%0a", "make/./out/a.txt", "make/out/",
              "../make/out/a.txt", "make/" + "d" * 1100):
        c = http.client.HTTPConnection(HOST, PORT, timeout=10)
        c.putrequest("GET", "%s/jobs/%s/artifacts/%s" % (API, job, p), skip_accept_encoding=True)
        c.putheader("Authorization", "Bearer " + R)
        c.endheaders()
        x = c.getresponse()
        rr = Resp(x.status, {k.lower(): v for k, v in x.getheaders()}, x.read())
        c.close()
        err_ok("artifact path %s" % p[:40], rr, 400, "bad_request")
    return job


def case_runners_pipelines():
    print("== GET /runners, /pipelines")

    def runners(js):
        bad = types_ok(js, {"runners": list}, {}, "body")
        for i, x in enumerate(js.get("runners", [])):
            bad += types_ok(x, {"id": str, "state": {"idle", "busy", "draining", "lost", "stopped"},
                                "capacity": "int", "running": "int", "credit": "int",
                                "labels": "strs"},
                            {"ephemeral": bool, "heartbeat": "time"}, "runners[%d]" % i)
        return bad
    r = api("GET", "/runners", token=R)
    schema_ok("runners: 200, typed", r, 200, runners)
    check("runners: the process runner", any(x.get("id") == "spec-1" for x in r.json().get(
        "runners", [])), repr(r))

    def pipes(js):
        bad = types_ok(js, {"pipelines": list}, {}, "body")
        for i, p in enumerate(js.get("pipelines", [])):
            bad += types_ok(p, {"name": str, "concurrency": "int", "waiting": "int",
                                "running": "int"}, {"file": str, "last_job": dict,
                                                    "schedule": dict, "load_error": str},
                            "pipelines[%d]" % i)
            if "last_job" in p:
                bad += types_ok(p["last_job"], {}, {"id": str, "status": JOB_STATUS},
                                "last_job")
        return bad
    r = api("GET", "/pipelines", token=R)
    schema_ok("pipelines: 200, typed", r, 200, pipes)
    check("pipelines: the registered one", any(p.get("name") == PIPE for p in r.json().get(
        "pipelines", [])), repr(r))


def case_demand():
    print("== POST /demand")

    def demand(js):
        return types_ok(js, {"id": str, "labels": "strs", "count": "int", "ttl": "int",
                             "message": str}, {}, "body")
    r = api("POST", "/demand", {"labels": ["spec"], "count": 2, "ttl": 60, "reason": "test"})
    schema_ok("a demand: 202 Demand", r, 202, demand)
    check("... as asked", r.json().get("count") == 2 and r.json().get("ttl") == 60
          and r.json().get("labels") == ["spec"], repr(r))
    r = api("POST", "/demand")
    schema_ok("no body: 202, the defaults (count 1, ttl 300)", r, 202, demand)
    check("... count 1, ttl 300", r.json().get("count") == 1 and r.json().get("ttl") == 300,
          repr(r))
    k = "dk-" + str(time.time())
    a = api("POST", "/demand", {"count": 1}, headers={"Idempotency-Key": k})
    b = api("POST", "/demand", {"count": 1}, headers={"Idempotency-Key": k})
    check("Idempotency-Key: one demand (202, then 200 with duplicate: true)",
          a.status == 202 and b.status == 200 and a.json()["id"] == b.json()["id"]
          and a.json().get("duplicate") is False and b.json().get("duplicate") is True,
          "%r %r" % (a, b))
    a = api("POST", "/demand", {"count": 1}, headers={"Idempotency-Key": "d" * 200})
    check("Idempotency-Key of 200: 202", a.status == 202, repr(a))
    a = api("POST", "/demand", {"count": 1}, headers={"Idempotency-Key": "d" * 200 + "x"})
    err_ok("Idempotency-Key of 201 (maxLength 200)", a, 400, "bad_request",
           "Idempotency-Key: expected 1 to 200 ")
    a = api("POST", "/demand", {"count": 1}, headers={"Idempotency-Key": "a b"})
    err_ok("Idempotency-Key with a space", a, 400, "bad_request",
           "Idempotency-Key: expected 1 to 200 ")
    # the broker keeps 1024 runners wanted at most: 503 past it
    st = []
    for i in range(20):
        r = api("POST", "/demand", {"count": 64, "ttl": 30}, headers={"Idempotency-Key":
                                                                      "full-%d" % i})
        st.append(r.status)
        if r.status != 202:
            break
    err_ok("demand past 1024 runners wanted", r, 503, "unavailable", "1024")
    for what, body in (("count 0", {"count": 0}), ("count 65", {"count": 65}),
                       ("count a string", {"count": "2"}), ("count 1.5", {"count": 1.5}),
                       ("count true", {"count": True}), ("ttl 0", {"ttl": 0}),
                       ("ttl 3601", {"ttl": 3601}), ("labels a string", {"labels": "x"}),
                       ("a bad label", {"labels": ["a b"]}),
                       ("33 labels", {"labels": ["l%d" % i for i in range(33)]}),
                       ("a reason of 1025 bytes", {"reason": "r" * 1025}),
                       ("a reason a number", {"reason": 5}), ("an unknown key", {"n": 1}),
                       ("a JSON array", [1]), ("bad JSON", "{"), ("null", "null")):
        err_ok("demand with %s" % what, api("POST", "/demand", body,
                                            ctype="application/json"), 400, "bad_request")








def case_hooks():
    print("== webhooks")
    ping = {"zen": "hi", "hook_id": 1}
    r = gh("ping", ping)
    schema_ok("ping: 200 HookStarted", r, 200, hook_started)
    check("... pong", r.json().get("message") == "pong", repr(r))
    b = json.dumps(ping).encode()
    for what, sig in (("none", False), ("of another secret", sign(b, b"other")),
                      ("sha1=", "sha1=" + hmac.new(HOOK_SECRET, b, hashlib.sha1).hexdigest()),
                      ("upper-case hex", sign(b).upper().replace("SHA256=", "sha256=")),
                      ("cut", sign(b)[:-2]), ("of another body", sign(b + b" ")),
                      ("empty", "")):
        if what == "upper-case hex":
            continue   # hex digits either case: RFC 4648 hex is case-insensitive
        r = gh("ping", ping, sig=sig)
        err_ok("a signature %s" % what, r, 403, "forbidden", "X-Hub-Signature-256")
        check("... with no WWW-Authenticate (a webhook has no HTTP scheme)",
              r.h("www-authenticate") is None, repr(r.headers))
    err_ok("no X-GitHub-Event", gh(None, ping), 400, "bad_request", "X-GitHub-Event")
    err_ok("bad JSON, signed", gh("push", b"{", delivery="sd-1"), 400, "bad_request")
    err_ok("a JSON array, signed", gh("push", b"[]", delivery="sd-2"), 400, "bad_request")
    err_ok("a push without its fields", gh("push", {"ref": "refs/heads/main"},
                                           delivery="sd-3"), 400, "bad_request")
    err_ok("a delivery id of 101", gh("ping", ping, delivery="d" * 101), 400, "bad_request",
           "X-GitHub-Delivery")
    r = gh("issues", {"action": "opened"}, delivery="sd-4")
    schema_ok("an event not handled: 200 HookStarted with a message", r, 200,
              lambda js: hook_started(js) + ([] if js.get("message") else ["no message"]))
    st, head, body = raw(b"POST /hooks/github HTTP/1.1\r\nHost: localhost\r\nX-GitHub-Event: push\r\n"
                         b"Content-Length: 4194305\r\n\r\n" + b" " * 4194305)
    check("a delivery over 4 MiB: 413 JSON", st == 413 and b"too_large" in body, head[:100])
    repo = {"clone_url": "https://example.org/o/r.git", "full_name": "o/r",
            "default_branch": "main"}
    push = {"ref": "refs/heads/main", "after": "a" * 40, "repository": repo}
    r = gh("push", push, delivery="spec-push-1")
    schema_ok("a push to main: 202 HookStarted", r, 202, hook_started)
    js = r.json() or {}
    check("... spec-gh started, the source named", [j["pipeline"] for j in js.get("jobs", [])]
          == ["spec-gh"] and js.get("source") == {"url": repo["clone_url"], "ref": "a" * 40,
                                                  "branch": "main", "untrusted": False}, repr(r))
    r2 = gh("push", push, delivery="spec-push-1")
    check("the same delivery again: the same job, existing", r2.status == 202 and js.get("jobs")
          and r2.json()["jobs"][0]["id"] == js["jobs"][0]["id"]
          and r2.json()["jobs"][0]["existing"] is True, repr(r2))
    for what, ev, body in (
            ("a push to another branch", "push", dict(push, ref="refs/heads/dev")),
            ("a tag push", "push", dict(push, ref="refs/tags/v1")),
            ("a branch deletion", "push", dict(push, deleted=True)),
            ("a closed pull request", "pull_request", {"action": "closed"})):
        r = gh(ev, body, delivery="spec-" + what.replace(" ", "-"))
        schema_ok("%s: 200 HookStarted, a message" % what, r, 200,
                  lambda js: hook_started(js) + ([] if js.get("message") else ["no message"]))
    err_ok("a push with a bad SHA", gh("push", dict(push, after="xyz"), delivery="spec-sha"),
           400, "bad_request", "after")
    wj = {"action": "queued", "workflow_job": {"id": 7, "head_branch": "dev", "head_sha": "b" * 40,
                                               "labels": ["linux"]}, "repository": repo}
    r = gh("workflow_job", wj, delivery="spec-wj-1")

    def with_demand(js):
        return hook_started(js) + types_ok(js.get("demand"), {
            "id": str, "labels": "strs", "count": "int", "ttl": "int", "message": str}, {},
            "demand")
    schema_ok("a workflow_job no pipeline takes: 202 with a Demand", r, 202, with_demand)
    r = gh("workflow_job", dict(wj, workflow_job=dict(wj["workflow_job"], labels=["a b"])),
           delivery="spec-wj-2")
    check("... with a bad label: demand_refused, an error object", isinstance(
        (r.json() or {}).get("demand_refused"), dict) and isinstance(
        r.json()["demand_refused"].get("message"), str), repr(r))
    # POST /hooks/{pipeline}
    url = "/hooks/" + PIPE
    r = req("POST", url, token=None)
    err_ok("a pipeline's hook without a token", r, 401, "unauthorized")
    err_ok("... a wrong one", req("POST", url, token="x" * 64), 401, "unauthorized")
    r = req("POST", url, {"labels": ["nobody"]}, headers={"X-Evrun-Token": HOOK_TOKEN + " "},
            token=None)
    check("... its token with a space after it: 202", r.status == 202, repr(r))
    err_ok("... an API token", req("POST", url, token=W), 401, "unauthorized")
    r = req("POST", url, {"args": {"WHO": "hook"}, "labels": ["nobody"]}, token=HOOK_TOKEN)
    schema_ok("with its token: 202 HookStarted", r, 202, hook_started)
    r = req("POST", url, headers={"X-Evrun-Token": HOOK_TOKEN, "Idempotency-Key": "h-1"},
            token=None, body={"labels": ["nobody"]})
    r2 = req("POST", url, headers={"X-Evrun-Token": HOOK_TOKEN, "Idempotency-Key": "h-1"},
             token=None, body={"labels": ["nobody"]})
    check("X-Evrun-Token and an Idempotency-Key: the same job", r.status == r2.status == 202
          and r.json()["jobs"][0]["id"] == r2.json()["jobs"][0]["id"]
          and r2.json()["jobs"][0]["existing"] is True, "%r %r" % (r, r2))
    r = req("POST", url, headers={"Idempotency-Key": "h" * 180}, token=HOOK_TOKEN,
            body={"labels": ["nobody"]})
    check("an Idempotency-Key of 180: 202", r.status == 202, repr(r))
    r = req("POST", url, headers={"Idempotency-Key": "h" * 181}, token=HOOK_TOKEN,
            body={"labels": ["nobody"]})
    err_ok("an Idempotency-Key of 181 (maxLength 180)", r, 400, "bad_request",
           "Idempotency-Key: expected 1 to 180 ")
    for what, body in (("bad JSON", "{"), ("a JSON array", "[]"),
                       ("args a list", {"args": []}), ("an arg a number", {"args": {"WHO": 1}}),
                       ("labels a string", {"labels": "x"}),
                       ("another pipeline", {"pipeline": "other"})):
        err_ok("a hook with %s" % what, req("POST", url, body, token=HOOK_TOKEN,
                                            ctype="application/json"), 400, "bad_request")
    r = req("POST", url, {"args": {"NOPE": "1"}}, token=HOOK_TOKEN)
    err_ok("a hook with an unknown arg (the broker refuses)", r, 400, "bad_request",
           r'^body\.args\.NOPE: the pipeline declares no arg "NOPE"')
    check("... HookStarted too: no jobs, the refusal under refused", not hook_started(r.json())
          and r.json()["jobs"] == [] and r.json()["refused"][0]["pipeline"] == PIPE, repr(r))
    err_ok("a hook of a bad name (an escaped /)", req("POST", "/hooks/a%2Fb", token=HOOK_TOKEN),
           400, "bad_request")


def case_metrics_ui():
    print("== /metrics, the UI")
    r = req("GET", "/metrics", token=None)
    check("metrics: 200 text/plain (format 0.0.4)", r.status == 200 and (r.h("content-type")
          or "").startswith("text/plain"), repr(r))
    check("metrics: evrun_broker_up 1", re.search(rb"^evrun_broker_up 1$", r.body, re.M),
          r.body[:200])
    r = req("GET", "/", token=None)
    check("GET /: 200 text/html", r.status == 200 and (r.h("content-type") or "")
          .startswith("text/html") and b"<" in r.body, repr(r))
    check("... ETag, Cache-Control: no-cache, a CSP", r.h("etag") and "no-cache" in (
        r.h("cache-control") or "") and "default-src 'self'" in (r.h(
            "content-security-policy") or ""), repr(r.headers))
    r2 = req("GET", "/", headers={"If-None-Match": r.h("etag") or "x"}, token=None)
    check("If-None-Match: 304, no body", r2.status == 304 and r2.body == b"", repr(r2))
    for inm in ("*", ' "x", W/%s' % (r.h("etag") or "x")):
        r2 = req("GET", "/", headers={"If-None-Match": inm}, token=None)
        check("If-None-Match: %s: 304" % inm, r2.status == 304 and r2.body == b"", repr(r2))
    r2 = req("GET", "/", headers={"If-None-Match": '"x", "*"'}, token=None)
    check("If-None-Match: \"x\", \"*\" (a tag named *): 200", r2.status == 200, repr(r2)[:80])
    for f, t in (("app.js", "text/javascript"), ("style.css", "text/css"),
                 ("favicon.svg", "image/svg+xml"), ("index.html", "text/html")):
        r = req("GET", "/ui/" + f, token=None)
        check("GET /ui/%s: 200 %s" % (f, t), r.status == 200 and (r.h("content-type") or "")
              .startswith(t) and r.h("etag"), repr(r))
    for p in ("nope.js", "../README.md", "%2e%2e/README.md", ".hidden.js", "app.js/",
              "a//app.js", "app.exe", "app", "~root.js", "x" * 300 + ".js"):
        err_ok("GET /ui/%s" % p[:40], req("GET", "/ui/" + p, token=None), 404, "not_found")
    err_ok("GET /ui/app.js%00.png", req("GET", "/ui/app.js%00.png", token=None), 400,
           "bad_request")


def log_with(marker, name="gateway.log", secs=5):
    """The gateway's log (test_gateway_spec.sh writes it to STATE_DIR/NAME)
    once it holds marker (bytes), or as it is after secs."""
    log = b""
    for _ in range(int(secs * 10)):
        with open(os.path.join(STATE, name), "rb") as f:
            log = f.read()
        if marker in log:
            break
        time.sleep(0.1)
    return log


def log_line(log, marker):
    """The first line of log holding marker, or None."""
    return next((x for x in log.split(b"\n") if marker in x), None)


def case_wire():
    print("== the wire: bad requests, slow clients")
    st, head, body = raw(b"GET / FOO\r\n\r\n")
    check("a request line with no HTTP version: 400 (libmicrohttpd's)", st == 400, head[:100])
    st, head, body = raw(b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n")
    check("HTTP/9.9: 505 (libmicrohttpd's)", st == 505, head[:100])
    st, head, body = raw(b"GARBAGE\r\n\r\n")
    check("a request line of one word: closed, no answer (libmicrohttpd)", st == 0, head[:100])
    st, head, body = raw(b"GET /api/v1/runners HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
                         + b"a" * 5000 + b".b.c\r\nConnection: close\r\n\r\n")
    check("a token of 5000 bytes: 401 JSON", st == 401 and b"unauthorized" in body, head[:100])
    # absolute-form request targets (RFC 9112 3.2.2: a server must take them): the path, its
    # host checked as Host is (case hosts); none with no host
    for target, want in (("http://127.0.0.1:%d%s/runners" % (PORT, API), b'"runners"'),
                         ("HTTP://LocalHost%s/runners" % API, b'"runners"'),
                         ("https://localhost%s/jobs?limit=1" % API, b'"jobs"')):
        st, head, body = raw(("GET %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                              "Connection: close\r\n\r\n" % (target, R)).encode())
        check("absolute-form GET %s: 200 with %s" % (target, want.decode()),
              st == 200 and want in body, repr(head[:100]) + repr(body[:100]))
    st, head, body = raw(("GET http://%s/runners HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
                          "%s\r\nConnection: close\r\n\r\n" % (API, R)).encode())
    check("absolute-form with no host: 400 JSON naming the target", st == 400
          and b"bad_request" in body and b"needs a host" in body,
          repr(head[:100]) + repr(body[:200]))
    # framing a proxy in front may read otherwise (request smuggling, RFC 9112 6.1, 6.3):
    # refused, and the body never read as a next request
    y = b"pipeline: p\nexecutor: process\nsteps:\n  - {name: a, run: x}\n"
    h = ("POST %s/jobs?label=nobody HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
         "Content-Type: application/yaml\r\n" % (API, W)).encode()
    smuggled = b"GET /api/v1/runners HTTP/1.1\r\nHost: localhost\r\n\r\n"
    for what, data in (
            ("two Content-Length that differ",
             h + b"Content-Length: %d\r\nContent-Length: 3\r\n\r\n" % len(y) + y + smuggled),
            ("Content-Length and Transfer-Encoding", h + b"Content-Length: 4\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(y) + y + b"\r\n0\r\n\r\n"
             + smuggled),
            ("\"Transfer-Encoding :\" (a space before the colon, RFC 9112 5.1)",
             h + b"Content-Length: %d\r\nTransfer-Encoding : chunked\r\n\r\n" % len(y) + y
             + smuggled),
            ("a Transfer-Encoding folded into the line above (obs-fold)",
             h + b"Content-Length: %d\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n" % len(y)
             + y + smuggled)):
        st, head, body = raw(data, wait=3, whole=True)
        ok = st == 400 and b"bad_request" in body and b"HTTP/1.1" not in body
        check("%s: 400 JSON, nothing more on that connection" % what, ok, head[:60] + repr(body))
    # requests refused before routing are in the access log as routed ones are, with why
    for what, says in (("two Content-Length", b"two Content-Length headers that differ"),
                       ("Content-Length and Transfer-Encoding",
                        b"both Content-Length and Transfer-Encoding"),
                       ("a space before the colon", b"header field \"Transfer-Encoding \"")):
        line = log_line(log_with(says), says)
        check("... %s: logged: POST /api/v1/jobs -> 400 (refused before routing: ...)" % what,
              line is not None and b" gateway: POST /api/v1/jobs -> 400 (refused before "
              b"routing: bad_request: " in line, repr(line))
    st, head, body = raw(("GET %s/m431 HTTP/1.1\r\nHost: localhost\r\n%sConnection: close\r\n\r\n"
                          % (API, "".join("X-H%d: v\r\n" % i for i in range(101)))).encode())
    check("101 header fields: 431 JSON", st == 431 and b"too_many_headers" in body, head[:100])
    line = log_line(log_with(b"/m431 -> "), b"/m431 -> ")
    check("... logged: GET /api/v1/m431 -> 431 (refused before routing: too_many_headers: ...)",
          line is not None and b"GET /api/v1/m431 -> 431 (refused before routing: "
          b"too_many_headers: the request has 10" in line, repr(line))
    st, head, body = raw(("POST %s/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                          "Content-Type: application/yaml\r\nContent-Length: 77777777777\r\n"
                          "\r\n" % (API, W)).encode())
    line = log_line(log_with(b"77777777777"), b"77777777777")
    check("a Content-Length over the limit: 413, logged (refused before routing: too_large)",
          st == 413 and line is not None and b"POST /api/v1/jobs -> 413 (refused before "
          b"routing: too_large: the body is 77777777777 bytes" in line, repr(line))
    chunk = b"#" * ((4 << 20) + 1)
    st, head, body = raw(("POST %s/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                          "Content-Type: application/yaml\r\nTransfer-Encoding: chunked\r\n"
                          "\r\n" % (API, W)).encode() + b"%x\r\n" % len(chunk) + chunk
                         + b"\r\n0\r\n\r\n")
    says = b"413 (refused before routing: too_large: the body is over the limit"
    line = log_line(log_with(says), says)
    check("a chunked body over the limit: 413, logged", st == 413 and line is not None
          and b"POST /api/v1/jobs -> " + says in line, repr(line))
    # libmicrohttpd's own answers: its message is one warn line of the log, not raw stderr
    st, head, body = raw(b"GET /" + b"m414" * 10000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    says = b"response code is 414"
    line = log_line(log_with(says), says)
    check("a request line past libmicrohttpd's 32 KiB: its 414, its message a line of the log "
          "(gateway: warn: libmicrohttpd: ...)", st == 414 and line is not None
          and b" gateway: warn: libmicrohttpd: Error processing request (HTTP response code is "
          b"414" in line, repr(line)[:200])
    st, head, body = raw(("POST %s/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                          "Content-Type: application/yaml\r\nTransfer-Encoding: chunked\r\n"
                          "\r\n" % (API, W)).encode() + b"2;" + b"e" * 40000 + b"\r\nab\r\n0\r\n\r\n")
    check("a chunk's size line past libmicrohttpd's 32 KiB: its own 500 (README, Limits)",
          st == 500, head[:100])
    # a URL's escaped line breaks do not make lines of the gateway's log (test_gateway_spec.sh
    # writes it to STATE_DIR/gateway.log): no forged entry from a client without a token
    forged = "2026-01-01T00:00:00.000Z gateway: POST /api/v1/jobs -> 201 FORGED"
    r = req("GET", "/ui/x%0A" + urllib.parse.quote(forged) + "%0D%0A.js", token=None)
    check("a URL with %0A: 404", r.status == 404, repr(r))
    log = log_with(b"FORGED")
    check("... no line of the log begins with what followed it",
          not any(line.startswith(forged.encode()) for line in log.split(b"\n")),
          repr([x for x in log.split(b"\n") if b"FORGED" in x][:2]))
    check("... the entry says where the line break was (\\x0A)", b"x\\x0A2026" in log,
          repr([x for x in log.split(b"\n") if b"FORGED" in x][:2]))
    # a literal "\x0A" in a URL and a C1 control (NEL, 0x85) are escaped too
    r = req("GET", "/ui/lit%5Cx0Aend%C2%85nel.js", token=None)
    check("a URL with a backslash and a NEL: 404", r.status == 404, repr(r))
    log = log_with(b"nel.js")
    check("... the backslash and the bytes past ASCII logged as \\xHH",
          b"/ui/lit\\x5Cx0Aend\\xC2\\x85nel.js" in log,
          repr([x for x in log.split(b"\n") if b"nel.js" in x][:2]))
    # a client that opens and sends half a request: others are served meanwhile; and one
    # that sends a whole head and part of its body
    s = socket.create_connection((HOST, PORT))
    s.sendall(b"GET /api/v1/runners HTTP/1.1\r\nHost: localhost\r\n")
    s2 = socket.create_connection((HOST, PORT))
    s2.sendall(("POST %s/jobs?label=slow HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/yaml\r\nContent-Length: 100\r\n\r\nsteps"
                % (API, W)).encode())
    r = api("GET", "/runners", token=R)
    check("a half-sent request does not hold up others", r.status == 200, repr(r))
    t0 = time.monotonic()
    for what, sock in (("head", s), ("body", s2)):
        sock.settimeout(15)
        try:
            got = sock.recv(100)
        except socket.timeout:
            got = b"(timeout)"
        sock.close()
        check("... a half-sent %s is closed within http_request_timeout (%.1f s)"
              % (what, time.monotonic() - t0), got == b"" or got.startswith(b"HTTP/"), repr(got))
    says = b"- - -> 408 (request timeout: no whole request head came within http_request_timeout"
    check("... logged: - - -> 408 (request timeout: ...)", log_line(log_with(says), says))
    says = b"POST /api/v1/jobs -> 408 (request timeout: its body was not all in"
    check("... logged: POST /api/v1/jobs -> 408 (request timeout: ...)",
          log_line(log_with(says), says))
    # a fourth connection from one address where http_max_per_ip is 3 (the second
    # gateway's): closed at once, logged
    if os.environ.get("EVR_GW2_PORT"):
        port2 = int(os.environ["EVR_GW2_PORT"])
        held = [socket.create_connection((HOST, port2), timeout=5) for _ in range(3)]
        time.sleep(0.3)
        extra = socket.create_connection((HOST, port2), timeout=5)
        try:
            got = extra.recv(100)
        except OSError as e:
            got = repr(e).encode()
        says = b"- - -> 503 (connection refused: 127.0.0.1 has 3 open, the limit of " \
               b"http_max_per_ip; closed without an answer)"
        check("a 4th connection from one address (http_max_per_ip 3): closed, no answer",
              got == b"" or b"reset" in got.lower(), repr(got))
        check("... logged: - - -> 503 (connection refused: ...)",
              log_line(log_with(says, "gateway2.log"), says))
        for x in held + [extra]:
            x.close()
        time.sleep(0.3)
        c = http.client.HTTPConnection(HOST, port2, timeout=10)
        c.request("GET", "/metrics")
        st = c.getresponse().status
        c.close()
        check("... once they are closed, a new one is served", st == 200, st)
    # pipelined requests on one connection
    one = "GET %s/runners HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n" % (API, R)
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall((one * 3).encode())
    data = b""
    try:
        while data.count(b"HTTP/1.1 200") < 3:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except socket.timeout:
        pass
    s.close()
    check("three pipelined requests: three 200s", data.count(b"HTTP/1.1 200") == 3,
          data[:200])
    r = api("GET", "/runners", token=R)
    check("still serving at the end", r.status == 200, repr(r))


def case_broker_gone():
    """The broker stops answering (EVR_BROKER_PID, started by
    test_gateway_spec.sh, is stopped, then ended):
    a live log ends with `event: error`, the API answers 503 JSON; so does
    one from the gateway at EVR_GW2_PORT, whose http_idle_timeout (2 s) is
    below timeout_ms (3 s)."""
    import signal
    print("== the broker gone")
    r = api("POST", "/jobs?label=nobody", {"pipeline": PIPE})
    job = r.json().get("id")
    ports = [PORT] + ([int(os.environ["EVR_GW2_PORT"])] if os.environ.get("EVR_GW2_PORT") else [])
    socks = []
    for port in ports:
        s = socket.create_connection((HOST, port), timeout=60)
        s.sendall(("GET %s/jobs/%s/log HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % (API, job, R)).encode())
        data = b""
        while b"\r\n\r\n" not in data:     # the answer's head: the stream is on (a queued
                                            # job may have no event yet)
            b = s.recv(65536)
            if not b:
                break
            data += b
        socks.append((port, s, data))
    time.sleep(3)   # the second gateway's streams outlive its idle timeout while quiet
    broker = int(os.environ["EVR_BROKER_PID"])
    os.kill(broker, signal.SIGSTOP)     # it stops answering (its sockets stay open)
    t0 = time.monotonic()
    for port, s, data in socks:
        try:
            while b"event: error" not in data:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        except socket.timeout:
            pass
        s.close()
        m = re.search(rb"event: error\r?\ndata: ([^\r\n]*)", data.replace(b"\r\n", b"\n"))
        err = json.loads(m.group(1)) if m else None
        check("a live log (port %d): a last event: error with code and message (%.1f s)"
              % (port, time.monotonic() - t0), isinstance(err, dict)
              and isinstance(err.get("code"), str) and isinstance(err.get("message"), str),
              data[-300:])
    err_ok("GET /runners", api("GET", "/runners", token=R), 503, "unavailable")
    err_ok("POST /jobs", api("POST", "/jobs", {"pipeline": PIPE}), 503, "unavailable")
    r = req("GET", "/metrics", token=None)
    check("metrics: still 200", r.status == 200, repr(r))
    check("the UI: still 200", req("GET", "/", token=None).status == 200)
    os.kill(broker, signal.SIGTERM)
    os.kill(broker, signal.SIGCONT)


QUEUED = None


def main():
    cases = sys.argv[5:] or ["auth", "methods", "submit", "list", "job", "run",
                             "runners_pipelines", "demand", "hooks", "metrics_ui", "wire", "edge",
                             "ows", "hosts", "token_header", "signatures", "cors", "hook_head", "arg_names", "mhd_own", "broker_gone"]
    for c in cases:
        if c in ("job", "list") and QUEUED is None and "submit" not in cases:
            case_submit()
        (getattr(gw_spec_edge, "case_" + c, None) or globals()["case_" + c])()
    print("gw_spec: %d passed, %d failed" % (lib.passes, lib.fails))
    sys.exit(1 if lib.fails else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""gw_spec_edge.py: gw_spec.py's cases `edge` and `ows` (see there): requests
at the edges of HTTP/1.1 as raw bytes (folded header lines, HEAD on a live
log, query parameters past the limit, fragments, unsupported transfer
codings, duplicate fields, spaces after a field's value) and the
documented answer of each; and `hosts` (Host names, http_allowed_hosts),
`token_header`, `signatures` (GitHub's), `cors`, `hook_head` (a hook's
token before its body), `arg_names` and `mhd_own` (libmicrohttpd's own
answers).  Imported by gw_spec.py, which runs each case_NAME.
"""
import http.client
import os
import re
import socket
import time
import urllib.parse

import gw_spec_lib as lib
from gw_spec_lib import *                   # noqa: F401,F403
from gw_spec_lib import API, HOST, R, W, api, check, raw, req, sign


def rq(target, headers="", method="GET", token=R, version="HTTP/1.1", host=True):
    """A request head as bytes: METHOD TARGET VERSION, Host, the token,
    headers (a str of whole lines), Connection: close."""
    return ("%s %s %s\r\n%s%s%sConnection: close\r\n\r\n"
            % (method, target, version, "Host: localhost\r\n" if host else "",
               "Authorization: Bearer %s\r\n" % token if token else "", headers)).encode()


def bad(what, data, status=400, says=b"", wait=3):
    st, head, body = raw(data, wait=wait)
    return check("%s: %d JSON%s" % (what, status, " saying %r" % says.decode() if says else ""),
                 st == status and b'"error"' in body and says in body,
                 repr(head[:80]) + repr(body[:300]))


def case_edge():
    print("== edges of HTTP/1.1: folded lines, HEAD, query limits, fragments, codings")
    y = b"pipeline: p\nexecutor: process\nsteps:\n  - {name: a, run: x}\n"
    h = ("POST %s/jobs?label=nobody HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
         "Content-Type: application/yaml\r\n" % (API, W)).encode()
    smuggled = b"GET /api/v1/runners HTTP/1.1\r\nHost: localhost\r\n\r\n"
    # obs-fold (RFC 9112 5.2): libmicrohttpd 0.9.75 joins the line to the name above
    for what, fold in (("Transfer-Encoding:\\r\\n chunked", b"Transfer-Encoding:\r\n chunked"),
                       ("Content-Length:\\r\\n\\t5", b"X-A: 1\r\nContent-Length:\r\n\t5"),
                       ("X-A: a\\r\\n b (any field)", b"X-A: a\r\n b"),
                       ("X-A: a\\r\\n \\r\\n (a blank continuation)", b"X-A: a\r\n ")):
        st, head, body = raw(h + b"Content-Length: %d\r\n" % len(y) + fold + b"\r\n\r\n" + y
                             + smuggled, wait=3, whole=True)
        check("a folded line %s: 400 JSON naming obs-fold, nothing more on that connection"
              % what, st == 400 and b"obs-fold" in body and b"HTTP/1.1" not in body,
              head[:60] + repr(body[:300]))
    st, head, body = raw(rq(API + "/runners", "X-A: a\r\nX-B:  \t b\r\n"))
    check("fields on lines of their own, spaces after the colon: 200", st == 200,
          head[:60] + repr(body[:200]))
    # HEAD on a live log: the stream's headers and nothing after them (no last chunk)
    js = api("POST", "/jobs?label=nobody", y, ctype="application/yaml").json() or {}
    job = js.get("id", "0" * 26)
    st, head, body = raw(rq("%s/jobs/%s/log" % (API, job), "Accept: text/event-stream\r\n",
                            method="HEAD"), wait=3, whole=True)
    check("HEAD on a live log: 200 text/event-stream, the headers alone (no 0\\r\\n\\r\\n)",
          st == 200 and "text/event-stream" in head and body == b""
          and "chunked" not in head.lower(), repr(head) + repr(body))
    # the request target as sent: parameters past the limit (libmicrohttpd runs out of room
    # for them at about 600 and closes without an answer), NUL bytes, escaped slashes,
    # fragments
    many = "&".join(["a=1"] * 600)
    bad("600 query parameters", rq("%s/jobs?%s" % (API, many)), 400,
        b"the query has 600 parameters, over the limit of 200")
    bad("201 query parameters", rq("%s/jobs?%s" % (API, "&".join(["limit=1"] * 201))), 400,
        b"over the limit of 200")
    bad("200 query parameters (at the limit: the route's own check)",
        rq("%s/jobs?%s" % (API, "&".join(["limit=1"] * 200))), 400, b"given twice")
    bad("a NUL byte in the target (/api/v1/runners\\0/zz)",
        rq(API + "/runners\0/zz"), 400, b"NUL byte")
    # a NUL byte in a header field's value: libmicrohttpd keeps it, and the value read as a
    # string would end there (the token, or Idempotency-Key: k\0x read as k)
    for what, field in (("Authorization, then more of it", "Authorization: Bearer %s\0x" % R),
                        ("Idempotency-Key (the last field)", "Idempotency-Key: k\0x"),
                        ("X-A, its first byte", "X-A: \0x")):
        data = ("GET %s/runners HTTP/1.1\r\nHost: localhost\r\n%s%s\r\n\r\n"
                % (API, "" if what.startswith("Authorization") else
                   "Authorization: Bearer %s\r\nConnection: close\r\n" % R, field))
        if what.startswith("Authorization"):
            data = data.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
        bad("a NUL byte in a header field's value (%s)" % what, data.encode(), 400,
            b"its value holds a NUL byte")
    # a bare CR (no LF after it): one field here, two to a proxy that ends a line there
    # ("X-A: a\rContent-Length: 10": a body the gateway would not read, a request smuggled)
    for what, head in (("in a value, before Content-Length", "X-A: a\rContent-Length: 10\r\n"),
                       ("in a field's name", "X\rY: 1\r\n"),
                       ("before a CRLF", "X-A: 1\r\r\n")):
        bad("a bare CR %s" % what, ("POST %s/demand HTTP/1.1\r\nHost: localhost\r\nAuthorization: "
                                    "Bearer %s\r\n%sConnection: close\r\n\r\n{}"
                                    % (API, W, head)).encode(), 400, b"a bare CR")
    bad("a bare CR in the request target", rq(API + "/jobs?arg=A%3Dx\ry"), 400, b"a bare CR")
    # a space in the target: libmicrohttpd ends it at the last space, a proxy may at the first
    for target in (API + "/run ners", API + "/runners ", API + "/jobs?pipeline=a b"):
        bad("a space in the request target (%r)" % target, rq(target), 400,
            b"it holds a space or tab")
    st, head, body = raw(rq(API + "/jobs?pipeline=a%20b"))
    check("a space sent as %20: 200", st == 200, head[:60] + repr(body[:100]))
    bad("an escaped / in the path (/api/v1%2Fjobs)", rq("/api/v1%2Fjobs"), 400,
        b"escaped / (%2F)")
    bad("an escaped / in an artifact path (%2f)",
        rq("%s/jobs/%s/artifacts/a/out%%2fa.txt" % (API, job)), 400, b"escaped / (%2F)")
    for target in (API + "/runners#x", "http://h%s/runners#x" % API, API + "/jobs?limit=1#x"):
        bad("a #fragment (%s)" % target, rq(target), 400, b"#fragment")
    st, head, body = raw(rq("%s/jobs/%s/artifacts/a/%%23x" % (API, job)))
    check("an escaped # (%23) in a path is no fragment: not 400", st not in (0, 400),
          head[:60] + repr(body[:200]))
    # a UI file over 4 MiB: 404, as anything else not served (the second gateway's ui_dir)
    port2 = int(os.environ.get("EVR_GW2_PORT") or 0)
    for name, want in (("small.js", 200), ("big.js", 404)):
        if not port2:
            break
        c = http.client.HTTPConnection(HOST, port2, timeout=10)
        c.request("GET", "/ui/" + name)
        x = c.getresponse()
        body = x.read()
        c.close()
        check("GET /ui/%s (%s): %d" % (name, "over 4 MiB" if want == 404 else "small", want),
              x.status == want and (want == 200 or b"over 4194304 bytes" in body),
              "%d %r" % (x.status, body[:200]))
    # a job.accepted that comes live has the stub spec the broker publishes (every run "");
    # one from the job's history (a reconnect with Last-Event-ID: 0) the whole
    stub = b"pipeline: p\nexecutor: process\nsteps:\n  - {name: a, run: echo stub-check}\n"
    j2 = (api("POST", "/jobs?label=nobody", stub, ctype="application/yaml").json()
          or {}).get("id", "0" * 26)
    s = socket.create_connection((lib.HOST, lib.PORT), timeout=5)
    s.sendall(rq("%s/jobs/%s/log" % (API, j2), "Accept: text/event-stream\r\n"))
    live = b""
    while b"\r\n\r\n" not in live:         # the head: subscribed, its history read
        live += s.recv(65536) or b"\r\n\r\n"
    api("POST", "/jobs/%s/cancel" % j2)
    t0 = time.time()
    while not live.endswith(b"\r\n0\r\n\r\n") and time.time() - t0 < 5:
        b = s.recv(65536)
        if not b:
            break
        live += b
    s.close()
    st, head, hist = raw(rq("%s/jobs/%s/log" % (API, j2), "Accept: text/event-stream\r\n"
                            "Last-Event-ID: 0\r\n"), whole=True)
    # the live one is the stub, unless the gateway read it from the
    # history (a gap in the broker's publications, other cases' events
    # in between on a loaded machine): the whole then, never a mix
    stub_live = b'"run":""' in live and b"stub-check" not in live
    whole_live = b'"run":"echo stub-check"' in live and b'"run":""' not in live
    check("a live job.accepted: the stub spec (run \"\") or, read from the history, the "
          "whole; from history (Last-Event-ID: 0) the whole",
          b'"type":"job.accepted"' in live and (stub_live or whole_live)
          and b'"run":"echo stub-check"' in hist,
          repr(live[-400:]) + repr(hist[:300]))
    # a cancel's (pause's, resume's) body that is no JSON: the parser's reason, \xHH quoted
    for body, says in ((b"{", rb"^body:1:1: bad JSON: "),
                       (b'{"reason":"a\\u0000b"}',
                        rb"^body:1:\d+: bad JSON: a NUL character \(\\u0000\) is not allowed"),
                       (b'{"reason":"\xff"}', rb"^body:1:\d+: bad JSON: .*\(JSON must be UTF-8\)"),
                       (b"[1]", rb"^body: expected a JSON object .*not an array")):
        for verb in ("cancel", "pause"):
            r = api("POST", "/jobs/%s/%s" % (job, verb), body, ctype="application/json")
            msg = ((r.json() or {}).get("error") or {}).get("message", "") if r.json() else ""
            check("%s with the body %r: 400 saying %s" % (verb, body, says.decode()),
                  r.status == 400 and re.search(says.decode(), msg) is not None, repr(r))
    r = api("POST", "/jobs", b'{"steps": ["\\u0000"]}', ctype="application/json")
    check("a submit with \\u0000: 400 in words, not jansson's flag name", r.status == 400
          and b"a NUL character (\\\\u0000) is not allowed" in r.body
          and b"JSON_ALLOW_NUL" not in r.body, repr(r))
    # a transfer coding libmicrohttpd does not decode: 501 at once, naming it (it read the
    # body until the connection closed, and never answered)
    for te in ("identity", "gzip, chunked", "chunked "):
        t0 = time.time()
        st, head, body = raw(h + b"Transfer-Encoding: %s\r\n\r\n" % te.encode() + y, wait=3)
        check("Transfer-Encoding %r, no Content-Length: 501 at once, naming it" % te,
              st == 501 and b"not_implemented" in body
              and ('\\"%s\\"' % te).encode() in body and time.time() - t0 < 2,
              head[:60] + repr(body[:200]))
    st, head, body = raw(h + b"Transfer-Encoding: Chunked\r\n\r\n" + b"%x\r\n" % len(y) + y
                         + b"\r\n0\r\n\r\n")
    check("Transfer-Encoding: Chunked (any case): read (201)", st == 201, head[:60] + repr(body))
    # one Authorization, one Host (none only in HTTP/1.0)
    bad("two Authorization headers (the first one good)",
        rq(API + "/runners", "Authorization: Bearer x.y.z\r\n"), 400,
        b"2 Authorization headers: send one")
    bad("HTTP/1.1 without Host", rq(API + "/runners", host=False), 400,
        b"needs a Host header")
    bad("two Host headers", rq(API + "/runners", "Host: y\r\n"), 400, b"2 Host headers")
    # fields read once, where a proxy could read the other or both: two Transfer-Encoding
    # (chunked, then gzip: a body to the connection's close to a proxy that joins them),
    # Content-Type, Idempotency-Key (one job now, another when retried with the second key)
    # and Last-Event-ID; each refused, naming it
    for what, field in (("Transfer-Encoding: chunked, then gzip",
                         b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip"),
                        ("Transfer-Encoding: chunked twice",
                         b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
                        ("Content-Type: application/yaml, then text/plain",
                         b"Content-Type: text/plain"),
                        ("Idempotency-Key: a, then b",
                         b"Idempotency-Key: edge-a\r\nIdempotency-Key: edge-b")):
        name = field.split(b":")[0]
        bad("two %s headers (%s)" % (name.decode(), what),
            h + field + b"\r\n\r\n" + b"%x\r\n" % len(y) + y + b"\r\n0\r\n\r\n"
            if name == b"Transfer-Encoding" else
            h + field + b"\r\nContent-Length: %d\r\n\r\n" % len(y) + y, 400,
            b"2 " + name + b" headers: send one")
    bad("two Last-Event-ID headers on a live log",
        rq("%s/jobs/%s/log" % (API, job), "Accept: text/event-stream\r\nLast-Event-ID: 1\r\n"
           "Last-Event-ID: 5\r\n"), 400, b"2 Last-Event-ID headers: send one")
    st, head, body = raw(rq(API + "/runners", version="HTTP/1.0", host=False))
    check("HTTP/1.0 without Host: 200", st == 200, head[:60] + repr(body[:100]))
    # Transfer-Encoding in HTTP/1.0, which has none: a proxy of it reads no body, the
    # chunks the next request (RFC 9112 6.1)
    bad("Transfer-Encoding: chunked in an HTTP/1.0 request",
        ("POST %s/demand HTTP/1.0\r\nAuthorization: Bearer %s\r\nContent-Type: "
         "application/json\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
         "2\r\n{}\r\n0\r\n\r\n" % (API, W)).encode(), 400, b"in an HTTP/1.0 request")
    # X-GitHub-Event: required (signed, so that the signature is not what fails)
    d = b'{"zen": "x"}'
    for what, ev in (("missing", None), ("empty", "")):
        hd = {"X-Hub-Signature-256": sign(d), "Content-Type": "application/json"}
        if ev is not None:
            hd["X-GitHub-Event"] = ev
        r = req("POST", "/hooks/github", d, headers=hd, token=None)
        check("a signed GitHub delivery with X-GitHub-Event %s: 400 saying so" % what,
              r.status == 400 and b"X-GitHub-Event: " + what.encode() in r.body, repr(r))
    # a body of another type than JSON: 415 on demand and hooks, as on cancel and pause
    hook = "/hooks/" + lib.PIPE
    for ctype in ("text/yaml", "application/x-www-form-urlencoded", "text/plain"):
        r = api("POST", "/demand", b'{"count": 1}', ctype=ctype)
        check("POST /demand as %s: 415 naming it" % ctype, r.status == 415
              and b"unsupported_media_type" in r.body and ctype.encode() in r.body, repr(r))
        r = req("POST", hook, b'{"labels": ["nobody"]}', token=lib.HOOK_TOKEN, ctype=ctype)
        check("POST /hooks/NAME as %s: 415 naming it" % ctype, r.status == 415
              and b"unsupported_media_type" in r.body and ctype.encode() in r.body, repr(r))
    r = req("POST", hook, b'{"labels": ["nobody"]}', token=lib.HOOK_TOKEN,
            ctype="application/json; charset=utf-8")
    check("POST /hooks/NAME as application/json; charset=utf-8: 202", r.status == 202, repr(r))
    # POST /jobs's ?arg= and ?label= on a hook: 400 saying the body has them (WHO has a
    # default: dropped quietly, the job ran with it)
    for q in ("?arg=WHO=query", "?label=nobody", "?x=1&label=nobody&arg=WHO=q"):
        r = req("POST", hook + q, b'{"labels": ["nobody"]}', token=lib.HOOK_TOKEN,
                ctype="application/json")
        check("POST /hooks/NAME%s: 400 saying a hook takes them in the body" % q,
              r.status == 400 and b"a hook takes its args and runner labels in the body"
              in r.body, repr(r))
    r = req("POST", hook + "?source=cron&x", b'{"labels": ["nobody"]}', token=lib.HOOK_TOKEN,
            ctype="application/json")
    check("POST /hooks/NAME?source=cron&x (not read): 202", r.status == 202, repr(r))
    # tokens: an exp of 0 or below is expired, not missing; a crit header is refused; the key
    # is the secret file's bytes without its trailing newline
    for what, tok, says in (
            ("exp 0", lib.jwt(exp=0), b"the token expired"),
            ("exp -5", lib.jwt(exp=-5), b"the token expired"),
            ("a crit header", lib.jwt(header={"alg": "HS256", "typ": "JWT", "crit": ["x"],
                                              "x": 1}), b"crit"),
            ("signed with the file's newline too", lib.jwt(key=lib.SECRET + b"\n"),
             b"signature does not match")):
        r = api("GET", "/runners", token=tok)
        check("token with %s: 401 saying %r" % (what, says.decode()), r.status == 401
              and says in r.body, repr(r))
    with open(lib.STATE + "/gateway/jwt.secret", "rb") as f:
        raw_secret = f.read()
    r = api("GET", "/runners", token=lib.jwt(key=raw_secret.rstrip(b"\r\n")))
    check("the made secret: 64 hex digits and a newline", re.fullmatch(
        rb"[0-9a-f]{64}\n", raw_secret) is not None, repr(raw_secret))
    check("token signed with the file's bytes up to its newline: 200", r.status == 200, repr(r))
    # a query value that is no UTF-8 is quoted \xHH, named; a bad hook name says what is wrong
    for q in ("pipeline=%ff", "status=a%c0%80"):
        r = api("GET", "/jobs?" + q, token=R)
        key = q.split("=")[0]
        check("GET /jobs?%s: 400 naming %s, its bytes quoted \\xHH" % (q, key), r.status == 400
              and ("query parameter %s: " % key).encode() in r.body
              and b"is not UTF-8" in r.body and b"\\\\x" in r.body, repr(r))
    r = api("GET", "/jobs?pipeline=" + urllib.parse.quote("é"), token=R)
    check("GET /jobs?pipeline=é (UTF-8): 200", r.status == 200, repr(r))
    st, head, body = raw(rq("/hooks/.", method="POST", token=None))
    check("POST /hooks/.: 404 saying a name starts with a letter or digit", st == 404
          and b"starts with a letter or digit" in body, head[:60] + repr(body))
    r = api("POST", "/demand", {"labels": [".x"]})
    check("a demand label .x: 400 saying a label starts with a letter or digit",
          r.status == 400 and b"expected a label: a letter or digit, then" in r.body, repr(r))
    # Idempotency-Key: printable ASCII without the space, as openapi's pattern says
    for key, want in (("a b", 400), ("a\tb", 400), ("!~", 201)):
        r = api("POST", "/jobs?label=nobody", y, ctype="application/yaml",
                headers={"Idempotency-Key": key + str(time.time())})
        check("Idempotency-Key %r: %d" % (key, want), r.status == want, repr(r))
    # a duplicate demand (the same key, another count) answers the demand kept, not the request
    k = "dup-" + str(time.time())
    a = api("POST", "/demand", {"count": 1, "labels": ["spec-dup"]}, headers={"Idempotency-Key": k})
    b = api("POST", "/demand", {"count": 3, "labels": ["other"], "ttl": 9},
            headers={"Idempotency-Key": k})
    ja, jb = a.json() or {}, b.json() or {}
    check("a duplicate demand with another count: 200, the kept demand's count and labels, "
          "\"1 runner\"", a.status == 202 and b.status == 200 and jb.get("duplicate") is True
          and jb.get("count") == 1 and jb.get("labels") == ["spec-dup"]
          and 0 < jb.get("ttl", 0) <= 300 and "(1 runner still wanted)" in jb.get("message", ""),
          "%r %r" % (ja, jb))


def case_ows():
    print("== spaces and tabs after a header field's value: no part of it (RFC 9112 5)")
    y = b"pipeline: p\nexecutor: process\nsteps:\n  - {name: a, run: echo ows}\n"
    key = "ows-%f" % time.time()
    h = ("POST %s/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
         "Content-Type: application/yaml\r\nContent-Length: %d\r\nConnection: close\r\n"
         % (API, W, len(y))).encode()
    st, head, body = raw(h + b"Idempotency-Key: %s \t\r\n\r\n" % key.encode() + y)
    first = re.search(rb'"id":"([0-9A-Z]{26})"', body)
    r = api("POST", "/jobs", y, ctype="application/yaml", headers={"Idempotency-Key": key})
    check("Idempotency-Key \"K \\t\", then \"K\": 201, then 200 with the same job",
          st == 201 and first is not None and r.status == 200
          and (r.json() or {}).get("id") == first.group(1).decode(),
          head[:60] + repr(body[:200]) + repr(r))
    job = first.group(1).decode() if first else "0" * 26
    wait_status(job, ("succeeded", "failed"))
    st, head, body = raw(rq("%s/jobs/%s/log" % (API, job), "Accept: text/event-stream\r\n"
                            "Last-Event-ID: 1 \r\n"), whole=True)
    ids = [int(i) for i in re.findall(rb"\nid: (\d+)", b"\n" + body)]
    check("Last-Event-ID: \"1 \": the events after 1", st == 200 and ids[:1] == [2],
          head[:60] + repr(body[:200]))
    d = b'{"zen": "x"}'
    st, head, body = raw(("POST /hooks/github HTTP/1.1\r\nHost: localhost\r\nX-GitHub-Event: ping\t\r\n"
                          "X-Hub-Signature-256: %s \r\nX-GitHub-Delivery: ows-1 \r\n"
                          "Content-Type: application/json\r\nContent-Length: %d\r\n"
                          "Connection: close\r\n\r\n" % (sign(d), len(d))).encode() + d)
    check("a signed delivery with X-GitHub-Event \"ping\\t\" (and a space after the signature "
          "and the delivery): pong", st == 200 and b'"pong"' in body,
          head[:60] + repr(body[:200]))
    # Content-Type: a tab before its parameters or after it (RFC 9110 5.6.6: OWS ";")
    for ctype in ("application/json\t", "application/json\t;charset=utf-8"):
        d = b'{"count": 1, "labels": ["spec-ows"], "ttl": 5}'
        st, head, body = raw(("POST %s/demand HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                              "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                              % (API, W, ctype, len(d))).encode() + d)
        check("POST /demand with Content-Type %r: 202" % ctype, st == 202,
              head[:60] + repr(body[:200]))
    st, head, body = raw(h.replace(b"application/yaml", b"application/yaml\t") + b"\r\n" + y)
    check("POST /jobs with Content-Type \"application/yaml\\t\": 201", st == 201,
          head[:60] + repr(body[:200]))


def case_hosts():
    print("== Host: the names a gateway on loopback answers to (DNS rebinding)")
    port2 = int(os.environ.get("EVR_GW2_PORT") or 0)

    def get(host, path=API + "/runners", port=PORT):
        s = socket.create_connection((HOST, port), timeout=10)
        s.sendall(rq(path).replace(b"Host: localhost\r\n", b"Host: %s\r\n" % host.encode()))
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
        s.close()
        head, _, body = out.partition(b"\r\n\r\n")
        return (int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0), body
    for host in ("localhost", "localhost:%d" % PORT, "LocalHost.", "ui.localhost:%d" % PORT,
                 "127.0.0.1:%d" % PORT, "127.0.0.2", "[::1]:%d" % PORT, "10.1.2.3:80"):
        st, body = get(host)
        check("Host: %s: 200" % host, st == 200, "%d %r" % (st, body[:200]))
    for host in ("evil.example", "evil.example:%d" % PORT, "127.0.0.1.evil.example",
                 "localhost.evil.example", "x", "localhost:80x", "[evil.example]", "[::1",
                 "[::1]x"):
        for path in (API + "/runners", "/metrics", "/", "/ui/app.js"):
            st, body = get(host, path)
            check("Host: %s, GET %s: 421 misdirected_request naming http_allowed_hosts"
                  % (host, path), st == 421 and b'"misdirected_request"' in body
                  and b"http_allowed_hosts" in body, "%d %r" % (st, body[:300]))
    # a target in absolute form: its host is the one checked, the Host header not read
    # (RFC 9112 3.2.2)
    for target, host, want in (("http://evil.example%s/runners" % API, "localhost", 421),
                               ("HTTP://EVIL.example:80%s/runners" % API, "127.0.0.1", 421),
                               ("http://localhost:%d%s/runners" % (PORT, API), "evil.example",
                                200)):
        st, body = get(host, target)
        check("GET %s with Host: %s: %d" % (target, host, want), st == want and (
            want == 200 or b"the request target's host" in body), "%d %r" % (st, body[:300]))
    if not port2:
        return
    # the second gateway's http_allowed_hosts: "ci.example.org, .example.net"
    for host in ("ci.example.org", "CI.example.org:443", "example.net", "a.b.example.net:1",
                 "localhost", "127.0.0.1"):
        st, body = get(host, "/metrics", port2)
        check("http_allowed_hosts: Host: %s: 200" % host, st == 200, "%d %r" % (st, body[:200]))
    for host in ("evil.example", "xexample.net", "example.org", "ci.example.org.evil"):
        st, body = get(host, "/metrics", port2)
        check("http_allowed_hosts: Host: %s: 421" % host, st == 421
              and b"names of http_allowed_hosts" in body, "%d %r" % (st, body[:300]))


def case_token_header():
    print("== a token's header: typ")
    now = int(time.time())
    for typ in ("JWT", "jwt", None):
        hd = {"alg": "HS256"} if typ is None else {"alg": "HS256", "typ": typ}
        r = api("GET", "/runners", token=lib.jwt(header=hd, exp=now + 60))
        check("typ %s: 200" % typ, r.status == 200, repr(r))
    for typ in ("at+jwt", "JOSE", ""):
        r = api("GET", "/runners", token=lib.jwt(header={"alg": "HS256", "typ": typ},
                                                  exp=now + 60))
        check("typ %r: 401 saying typ must be JWT" % typ, r.status == 401
              and b'typ \\"%s\\": expected JWT, or no typ' % typ.encode() in r.body, repr(r))
    # a hook token, or the secret itself, pasted for a token: said so
    hook = lib.HOOK_TOKEN
    secret = lib.SECRET.decode()
    for what, tok in (("a hook token", hook), ("jwt.secret's content", secret)):
        r = api("GET", "/runners", token=tok)
        check("%s as the bearer token: 401 saying it is no token" % what, r.status == 401
              and b"64 hex digits are a hook token" in r.body
              and b"evrun-cli token" in r.body, repr(r))
    r = api("GET", "/runners", token="x.y")
    check("two parts: 401 saying how to make one", r.status == 401
          and b"(make one with evrun-cli token)" in r.body, repr(r))


def case_signatures():
    print("== /hooks/github: what is wrong with a signature")
    d = b'{"zen": "x"}'
    good = sign(d)
    for what, h, says in (
            ("another body's", {"X-Hub-Signature-256": sign(b"{}")}, b"does not match the body"),
            ("in capitals (hex digits in any case)", {"X-Hub-Signature-256":
                                                      "sha256=" + good[7:].upper()}, None),
            ("SHA256= prefix", {"X-Hub-Signature-256": "SHA256=" + good[7:]},
             b'\\"SHA256=%s\\" is not sha256= and 64 hex digits' % good[7:].encode()),
            ("cut short", {"X-Hub-Signature-256": good[:-2]}, b"is not sha256= and 64 hex"),
            ("sha1= in it", {"X-Hub-Signature-256": "sha1=" + "0" * 40},
             b"is not sha256= and 64 hex"),
            ("only the SHA-1 header", {"X-Hub-Signature": "sha1=" + "0" * 40},
             b"missing (only X-Hub-Signature, SHA-1, came"),
            ("none", {}, b"X-Hub-Signature-256: missing (the body")):
        h = dict(h, **{"X-GitHub-Event": "ping", "Content-Type": "application/json"})
        r = req("POST", "/hooks/github", d, headers=h, token=None)
        if says is None:
            check("signature %s: 200 pong" % what, r.status == 200, repr(r))
        else:
            check("signature %s: 403 saying %r" % (what, says.decode()), r.status == 403
                  and says in r.body and not r.h("www-authenticate"), repr(r))


def case_cors():
    print("== CORS: none (README \"Web UI\")")
    origin = {"Origin": "https://evil.example"}
    r = req("OPTIONS", API + "/jobs", headers=dict(origin, **{
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"}), token=None)
    check("a preflight: 405, no Access-Control-Allow-*", r.status == 405 and not any(
        k.startswith("access-control-") for k in r.headers), repr(r.headers))
    for path, tok in ((API + "/runners", R), ("/metrics", None), ("/", None),
                      ("/hooks/github", None)):
        r = req("POST" if path.startswith("/hooks") else "GET", path, headers=origin, token=tok)
        check("%s with an Origin: no Access-Control-* header (%d)" % (path, r.status), not any(
            k.startswith("access-control-") for k in r.headers), repr(r.headers))


def case_hook_head():
    print("== /hooks/NAME: the token checked before the body is read")
    for what, token in (("a wrong token", "X-Evrun-Token: wrong\r\n"), ("no token", "")):
        s = socket.create_connection((HOST, PORT), timeout=10)
        # a body of 3 MB announced, 9 bytes of it sent: the answer may not wait for the rest
        s.sendall(("POST /hooks/%s HTTP/1.1\r\nHost: localhost\r\n%sContent-Type: "
                   "application/json\r\nContent-Length: 3000000\r\n\r\n{\"args\":"
                   % (lib.PIPE, token)).encode())
        out = b""
        try:
            while b"\r\n\r\n" not in out or b"}}" not in out:
                b = s.recv(4096)
                if not b:
                    break
                out += b
        except socket.timeout:
            pass
        s.close()
        check("%s and a body not all sent: 401 at once" % what, out.startswith(
            b"HTTP/1.1 401") and b"not the hook token of pipeline" in out, repr(out[:300]))
    r = req("POST", "/hooks/%s" % lib.PIPE, b"{}", headers={"X-Evrun-Token": lib.HOOK_TOKEN},
            ctype="application/json", token=None)
    check("the right token: 202", r.status == 202, repr(r))


def case_arg_names():
    print("== ?arg=: what is wrong with one")
    for q in ("1A=x", "A-B=x", "=x", "WHO", "%s=x" % ("A" * 65)):
        r = api("POST", "/jobs?arg=" + q, {"pipeline": lib.PIPE})
        check("?arg=%s: 400 quoting it and saying what NAME may be" % q[:20], r.status == 400
              and (b'arg \\"%s' % q[:40].encode()) in r.body
              and b"an environment variable name" in r.body, repr(r))


def case_mhd_own():
    print("== answers libmicrohttpd gives itself (README \"Limits\")")
    h = ("POST %s/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
         "Content-Type: application/json\r\nConnection: close\r\n" % (API, W))
    for cl, want in (("-1", 400), ("+2", 400), ("0x2", 400), ("99999999999999999999999", 413)):
        st, head, body = raw((h + "Content-Length: %s\r\n\r\n{}" % cl).encode(), whole=True)
        check("Content-Length: %s: %d, closed" % (cl, want), st == want, repr(head[:80]))
    st, head, body = raw((h + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nab\r\n"
                          "0\r\n\r\n").encode(), whole=True)
    check("a chunk size past 64 bits: 413", st == 413, repr(head[:80]))

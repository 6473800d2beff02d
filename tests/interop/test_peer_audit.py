"""test_peer_audit.py: a client and a runner written from
schema/PROTOCOL.md alone, against a real broker with no runner process
(no podman): broker_py.sh starts it.

Each check quotes what the document says a message gets: its answer's
type, code and the message's words where the document gives them, for
every client request and runner message, valid and hostile (limits at,
one past and far past, wrong types, unknown keys, duplicate keys, order,
resends, reconnections).  After the hostile part the broker must still
serve, and broker_py.sh checks it stops cleanly with no sanitizer report.
"""
import hashlib
import os
import struct
import sys
import time

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402
from evrun_client import new_ulid  # noqa: E402

check = Checks("test_peer_audit")
CEP, REP, EEP = (os.environ["EVR_CLIENT_EP"], os.environ["EVR_RUNNER_EP"],
                 os.environ["EVR_EVENTS_EP"])
CODES = ("bad_request", "unknown_type", "not_found", "queue_full", "busy",
         "conflict", "too_large", "unavailable", "internal")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def dealer(ep):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    return s


def pack(body):
    return body if isinstance(body, bytes) else msgpack.packb(body, use_bin_type=True)


def send(s, mtype, body=None):
    s.send_multipart([f"evrun1 {mtype}".encode(), pack({} if body is None else body)])


def recv(s, timeout=5.0, skip=("heartbeat",)):
    """(type, body) of the next message, or (None, None) after timeout."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0 or not s.poll(int(left * 1000)):
            return None, None
        frames = s.recv_multipart()
        hdr = frames[0].decode("ascii", "replace")
        if len(frames) != 2 or not hdr.startswith("evrun1 "):
            return ("<frames %d %r>" % (len(frames), hdr)), None
        mtype = hdr[7:]
        if mtype in skip:
            continue
        return mtype, msgpack.unpackb(frames[-1], raw=False, strict_map_key=False)


def ask(s, mtype, body=None, timeout=5.0):
    send(s, mtype, body)
    return recv(s, timeout)


def stream(s, mtype, body=None):
    """(items, last type, last body) of a stream request."""
    send(s, mtype, body)
    items = []
    while True:
        t, b = recv(s)
        if t in ("end", "error", None):
            return items, t, b
        items.append((t, b))


def expect_error(name, answer, code, says=None, exact=False):
    t, b = answer
    ok = t == "error" and isinstance(b, dict) and b.get("code") == code
    msg = (b or {}).get("message", "")
    if ok and says is not None:
        ok = (msg == says) if exact else (says in msg)
    check(name, ok, f"got {t} {b!r}"[:600])
    if t == "error":
        check(name + ": error has code and message of str", isinstance(b.get("code"), str)
              and isinstance(b.get("message"), str) and b["code"] in CODES
              and len(b["message"].encode()) <= 4096, repr(b)[:300])


def expect(name, answer, mtype, pred=None):
    t, b = answer
    ok = t == mtype and (pred is None or pred(b))
    check(name, ok, f"got {t} {b!r}"[:600])
    return b


# --- raw msgpack, for what a library will not write ---------------------------

def mstr(s):
    b = s.encode() if isinstance(s, str) else s
    if len(b) < 32:
        return bytes([0xa0 | len(b)]) + b
    if len(b) < 256:
        return b"\xd9" + bytes([len(b)]) + b
    if len(b) < 65536:
        return b"\xda" + struct.pack(">H", len(b)) + b
    return b"\xdb" + struct.pack(">I", len(b)) + b


def mmap(pairs):
    """A map from raw (key bytes, value bytes) pairs, duplicates allowed."""
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def nested(depth):
    """An array nested `depth` deep (non-empty at each level)."""
    return b"\x91" * (depth - 1) + b"\x91\x01"


def spec(name="pa", steps=None, **kw):
    s = {"pipeline": name, "executor": "process", "labels": ["pa-only"],
         "steps": steps or [{"name": "a", "run": "true"}]}
    s.update(kw)
    return s


# --- client requests -----------------------------------------------------------

def test_frames(c):
    c.send_multipart([b"evrun1 jobs"])
    expect_error("one frame: bad_request", recv(c), "bad_request")
    c.send_multipart([b"", b"evrun1 jobs", pack({})])
    expect_error("an empty first frame: the header error", recv(c), "bad_request",
                 'header: expected "evrun1 <type>"')
    c.send_multipart([b"evrun1 " + b"j" * 57, pack({})])
    expect_error("a header of 64 bytes: bad_request", recv(c), "bad_request", "header")
    c.send_multipart([b"evrun1 ack\0xyz", pack({})])
    expect_error("a NUL in the type: unknown_type, echoed with ?", recv(c), "unknown_type",
                 'header: unknown message type "ack?xyz"')
    c.send_multipart([b"evrun1 ", pack({})])
    expect_error("nothing after the space: bad_request", recv(c), "bad_request", "header")
    c.send_multipart([b"evrun1  runners", pack({})])
    expect_error("two spaces: unknown_type", recv(c), "unknown_type")
    c.send_multipart([b"evrun1 jobs", b"x", pack({"limit": 1})])
    t, b = recv(c)
    check("middle frames ignored: the last frame is the body", t in ("job", "end"), repr(t))
    while t == "job":
        t, b = recv(c)
    expect_error("trailing bytes: bad_request", ask(c, "jobs", pack({}) + b"\x00"),
                 "bad_request")
    expect_error("a truncated body: bad_request", ask(c, "status", b"\x81\xa3job\xba0"),
                 "bad_request")
    expect_error("0xc1: bad_request", ask(c, "jobs", b"\xc1"), "bad_request")
    expect_error("a body not a map: bad_request", ask(c, "jobs", pack([1])), "bad_request")
    expect_error("ok on the client socket: not a client request", ask(c, "ok", {}),
                 "bad_request", "ok is not a client request: this is the broker's client "
                 "socket; a runner (evrun-runner --broker) connects to its runner socket, "
                 + REP)
    expect_error("hello on the client socket: the words runners rely on",
                 ask(c, "hello", {"runner": "r", "capacity": 1, "version": "v"}),
                 "bad_request", "hello is not a client request")
    expect_error("a malformed hello on the client socket fails its table first",
                 ask(c, "hello", {"runner": "r", "capacity": "x", "version": "v"}),
                 "bad_request", "hello.capacity: expected")


def test_encoding(c):
    job = new_ulid()
    depth16 = mmap([(mstr("x"), nested(15))])      # body + 15 arrays = 16
    t, b = ask(c, "jobs", depth16)
    check("nesting 16 deep in an unknown key: taken", t in ("job", "end"), f"{t} {b!r}")
    while t == "job":
        t, b = recv(c)
    expect_error("nesting 17 deep: too_large", ask(c, "jobs", mmap([(mstr("x"), nested(16))])),
                 "too_large")
    t, b = ask(c, "jobs", mmap([(mstr("x"), b"\xc0"), (b"\x07", b"\x01"),
                                (mstr("limit"), b"\x01")]))
    check("unknown key with nil, int key: ignored", t in ("job", "end"), f"{t} {b!r}")
    while t == "job":
        t, b = recv(c)
    expect_error("duplicate key: bad_request",
                 ask(c, "status", mmap([(mstr("job"), mstr(job)), (mstr("job"), mstr(job))])),
                 "bad_request")
    expect_error("nil for a known field: bad_request", ask(c, "jobs", {"pipeline": None}),
                 "bad_request", "jobs.pipeline")
    expect_error("a float: bad_request", ask(c, "jobs", {"limit": 1.0}), "bad_request",
                 "jobs.limit")
    expect_error("a negative uint32", ask(c, "jobs", {"limit": -1}), "bad_request",
                 "expected non-negative int, got -1")
    expect_error("a uint32 of 2^32: too_large", ask(c, "jobs", {"limit": 2 ** 32}), "too_large",
                 "jobs.limit")
    t, b = ask(c, "jobs", {"limit": 2 ** 32 - 1})
    check("a uint32 of 2^32-1: taken", t in ("job", "end"), f"{t} {b!r}")
    while t == "job":
        t, b = recv(c)
    expect_error("a uint of -1: bad_request", ask(c, "history", {"job": job, "from": -1}),
                 "bad_request", "expected non-negative int, got -1")
    expect_error("bin for a str: bad_request", ask(c, "status", {"job": job.encode()}),
                 "bad_request", "status.job")
    expect_error("str not UTF-8: bad_request", ask(c, "jobs", mmap([(mstr("pipeline"),
                                                                    mstr(b"\xff\xfe"))])),
                 "bad_request", "jobs.pipeline")
    expect_error("overlong UTF-8: bad_request",
                 ask(c, "jobs", mmap([(mstr("pipeline"), mstr(b"\xc0\xaf"))])), "bad_request")
    expect_error("a surrogate: bad_request",
                 ask(c, "jobs", mmap([(mstr("pipeline"), mstr(b"\xed\xa0\x80"))])),
                 "bad_request")
    expect_error("a NUL in a str: bad_request", ask(c, "jobs", {"pipeline": "a\0b"}),
                 "bad_request")
    expect_error("order: the first failing field names the code (bad_request)",
                 ask(c, "cancel", mmap([(mstr("job"), b"\x07"),
                                        (mstr("reason"), mstr("r" * 1025))])),
                 "bad_request", "cancel.job: expected str, got int")
    expect_error("order: the first failing field names the code (too_large)",
                 ask(c, "cancel", mmap([(mstr("reason"), mstr("r" * 1025)),
                                        (mstr("job"), b"\x07")])), "too_large")
    expect_error("a missing required field", ask(c, "status", {}), "bad_request",
                 'status: missing required field "job"', exact=True)
    # ULIDs
    expect_error("ULID of 27 bytes: too_large", ask(c, "cancel", {"job": job + "A"}),
                 "too_large", "cancel.job: string of 27 bytes exceeds the limit of 26", True)
    expect_error("ULID with U", ask(c, "cancel", {"job": job[:25] + "U"}), "bad_request",
                 "cancel.job: expected a ULID: 'U' at position 26 is not Crockford base32 "
                 "(0-9 and A-Z without I, L, O, U)")
    expect_error("ULID starting 8", ask(c, "cancel", {"job": "8" + job[1:]}), "bad_request",
                 "the first character is '8', above 7 (the time would overflow 48 bits)")
    expect_error("ULID of 25", ask(c, "cancel", {"job": job[:25]}), "bad_request",
                 "cancel.job: expected a ULID: 26 characters, got 25")
    expect_error("ULID lower case", ask(c, "cancel", {"job": job[:24] + "a" + job[25]}),
                 "bad_request", "expected a ULID in upper case ('a' at position 25)")
    expect_error("ULID empty", ask(c, "cancel", {"job": ""}), "bad_request", "cancel.job")


def test_submit(c):
    job = new_ulid()
    expect("submit: accepted", ask(c, "submit", {"job": job, "spec": spec()}), "accepted",
           lambda b: b.get("job") == job and not b.get("existing"))
    expect("resubmit: existing", ask(c, "submit", {"job": job, "spec": spec("other")}),
           "accepted", lambda b: b.get("job") == job and b.get("existing") is True
           and "message" not in b)
    st = expect("status of a queued job", ask(c, "status", {"job": job}), "job",
                lambda b: b.get("status") == "queued" and b.get("pipeline") == "pa"
                and b.get("steps") == {"a": "pending"}
                and b.get("labels") and "executor:process" in b["labels"]
                and "pa-only" in b["labels"] and isinstance(b.get("created"), int))
    check("the first spec wins", (st or {}).get("pipeline") == "pa")
    items, t, b = stream(c, "history", {"job": job})
    check("history of a queued job: an empty page", t == "end" and not items
          and not b.get("more"), f"{t} {b!r}")
    expect_error("status of an unknown job", ask(c, "status", {"job": new_ulid()}),
                 "not_found")
    expect_error("history of an unknown job", ask(c, "history", {"job": new_ulid()}),
                 "not_found")
    # labels and args
    expect_error("a repeated label", ask(c, "submit", {"job": new_ulid(), "spec": spec(),
                                                      "labels": ["gpu", "x", "gpu"]}),
                 "bad_request", 'submit.labels: "gpu" at [2] repeats [0]', exact=True)
    expect_error("33 labels: too_large",
                 ask(c, "submit", {"job": new_ulid(), "spec": spec(),
                                   "labels": [f"l{i}" for i in range(33)]}), "too_large")
    expect_error("a label with a colon",
                 ask(c, "submit", {"job": new_ulid(), "spec": spec(), "labels": ["a:b"]}),
                 "bad_request", "submit.labels")
    expect_error("an args key that is an int",
                 ask(c, "submit", {"job": new_ulid(), "spec": spec(), "args": {1: "x"}}),
                 "bad_request", "submit.args: key of entry [0]: expected str, got int",
                 exact=True)
    expect_error("an args key of 4097 bytes",
                 ask(c, "submit", {"job": new_ulid(), "spec": spec(),
                                   "args": {"a": "1", "k" * 4097: "x"}}),
                 "too_large", "submit.args: key of entry [1]: string of 4097 bytes exceeds "
                 "the limit of 4096", exact=True)
    expect_error("an arg the spec does not declare",
                 ask(c, "submit", {"job": new_ulid(), "spec": spec(), "args": {"X": "1"}}),
                 "bad_request")
    expect_error("image empty is refused",
                 ask(c, "submit", {"job": new_ulid(), "spec": spec(image="")}), "bad_request")
    expect_error("a spec naming a step twice",
                 ask(c, "submit", {"job": new_ulid(),
                                   "spec": spec(steps=[{"name": "a", "run": "x"},
                                                       {"name": "a", "run": "y"}])}),
                 "bad_request")
    expect_error("a step without run",
                 ask(c, "submit", {"job": new_ulid(), "spec": spec(steps=[{"name": "a"}])}),
                 "bad_request", 'submit.spec.steps[0]: missing required field "run"', True)
    expect_error("a run that is an int",
                 ask(c, "submit", {"job": new_ulid(),
                                   "spec": spec(steps=[{"name": "a", "run": "x"},
                                                       {"name": "b", "run": 1}])}),
                 "bad_request", "submit.spec.steps[1].run: expected str, got int", True)
    expect_error("a tar without a copy source",
                 ask(c, "submit", {"job": new_ulid(), "spec": spec(), "source_tar": b"x"}),
                 "bad_request", "submit.source_tar: the spec's source is not copy: a "
                 "directory, so nothing would unpack this tar (leave source_tar out)", True)
    expect_error("a source_tar of 1 MiB + 1: too_large",
                 ask(c, "submit", {"job": new_ulid(), "spec": spec(),
                                   "source_tar": b"x" * (1048577)}), "too_large")
    big = spec(steps=[{"name": f"s{i}", "run": "r" * 4090} for i in range(256)])
    expect_error("a spec over 1 MiB: too_large naming both sizes",
                 ask(c, "submit", {"job": new_ulid(), "spec": big}), "too_large",
                 "over the limit of 1048576 bytes")
    expect_error("257 steps: too_large",
                 ask(c, "submit", {"job": new_ulid(),
                                   "spec": spec(steps=[{"name": f"s{i}", "run": "x"}
                                                       for i in range(257)])}), "too_large")
    expect_error("a submit without spec", ask(c, "submit", {"job": new_ulid()}), "bad_request",
                 'submit: missing required field "spec"', exact=True)
    return job


def test_control(c, queued):
    expect_error("pause of an unknown job", ask(c, "pause", {"job": new_ulid()}), "not_found")
    expect_error("resume of a queued job: conflict", ask(c, "resume", {"job": queued}),
                 "conflict")
    expect("pause of a queued job: ok", ask(c, "pause", {"job": queued}), "ok")
    expect("  held: paused", ask(c, "status", {"job": queued}), "job",
           lambda b: b.get("status") == "paused")
    expect_error("pause of a held job: conflict", ask(c, "pause", {"job": queued}), "conflict")
    expect("resume of a held job: ok", ask(c, "resume", {"job": queued}), "ok")
    expect("cancel of a queued job: ok",
           ask(c, "cancel", {"job": queued, "reason": "a\x1b[2J\\"}), "ok")
    expect("  ended cancelled, its reason escaped", ask(c, "status", {"job": queued}), "job",
           lambda b: b.get("status") == "cancelled" and b.get("reason") == "a\\x1b[2J\\\\")
    expect_error("a second cancel of a finished job: conflict",
                 ask(c, "cancel", {"job": queued}), "conflict")
    expect_error("pause of a finished job: conflict", ask(c, "pause", {"job": queued}),
                 "conflict")
    j = new_ulid()
    ask(c, "submit", {"job": j, "spec": spec()})
    expect("cancel without reason", ask(c, "cancel", {"job": j}), "ok")
    expect("  reason: cancelled by a user", ask(c, "status", {"job": j}), "job",
           lambda b: b.get("reason") == "cancelled by a user")
    expect_error("cancel reason of 1025 bytes", ask(c, "cancel", {"job": j, "reason": "r" * 1025}),
                 "too_large")
    expect_error("drain of an unknown runner", ask(c, "drain", {"runner": "nobody"}),
                 "not_found")
    expect_error("drain of a bad runner id", ask(c, "drain", {"runner": "-x"}), "bad_request")
    expect_error("drain of a 65-byte runner id", ask(c, "drain", {"runner": "r" * 65}),
                 "too_large")


def test_lists(c):
    items, t, b = stream(c, "jobs", {"limit": 1})
    check("jobs limit 1: one job and more", t == "end" and len(items) == 1
          and b.get("more") is True and b.get("count") == 1, f"{len(items)} {t} {b!r}")
    if items:
        last = items[-1][1]["job"]
        nxt, t2, b2 = stream(c, "jobs", {"limit": 1, "before": last})
        check("jobs before: an older job", t2 == "end" and len(nxt) == 1
              and nxt[0][1]["job"] < last, repr(nxt))
    items, t, b = stream(c, "jobs", {"pipeline": ""})
    check('jobs pipeline "": matches no job', t == "end" and not items, f"{t} {b!r}")
    expect_error('jobs status "": bad_request', ask(c, "jobs", {"status": ""}), "bad_request")
    expect_error("jobs status unknown: bad_request", ask(c, "jobs", {"status": "done"}),
                 "bad_request")
    items, t, b = stream(c, "jobs", {"status": "cancelled"})
    check("jobs status filter", t == "end" and items
          and all(x[1]["status"] == "cancelled" for x in items), f"{t} {len(items)}")
    check("jobs end carries queue_limit", t == "end" and isinstance(b.get("queue_limit"), int),
          repr(b))
    check("jobs newest first", [x[1]["job"] for x in items]
          == sorted([x[1]["job"] for x in items], reverse=True))
    for _ in range(120):
        ask(c, "submit", {"job": new_ulid(), "spec": spec("pa-many", labels=["nobody-has"])})
    for limit, n, more in ((0, 100, True), (2 ** 32 - 1, 120, False), (120, 120, False),
                           (119, 119, True)):
        items, t, b = stream(c, "jobs", {"pipeline": "pa-many", "limit": limit})
        check(f"jobs of 120 with limit {limit}: {n}, more {more}", t == "end"
              and len(items) == n and b.get("count") == n and bool(b.get("more")) == more,
              f"{len(items)} {b!r}")
    items, t, b = stream(c, "runners")
    check("runners: a stream", t == "end", f"{t} {b!r}")
    items, t, b = stream(c, "pipelines")
    check("pipelines: a stream", t == "end", f"{t} {b!r}")
    items, t, b = stream(c, "providers")
    check("providers: a stream", t == "end", f"{t} {b!r}")
    expect_error("start of an unregistered pipeline",
                 ask(c, "start", {"job": new_ulid(), "pipeline": "nope"}), "not_found")
    expect_error("start with a bad pipeline name",
                 ask(c, "start", {"job": new_ulid(), "pipeline": "a b"}), "bad_request")
    t, b = ask(c, "prune", {"dry_run": True})
    check("prune: pruned, or conflict when retention is off",
          t == "pruned" or (t == "error" and b.get("code") == "conflict"), f"{t} {b!r}")


def test_demand(c):
    d = new_ulid()
    expect("demand: ok with its id", ask(c, "demand", {"job": d, "labels": ["x"]}), "ok",
           lambda b: b.get("job") == d and isinstance(b.get("message"), str)
           and not b.get("existing"))
    expect("demand again: existing", ask(c, "demand", {"job": d}), "ok",
           lambda b: b.get("existing") is True)
    items, t, b = stream(c, "demands")
    mine = [x[1] for x in items if x[1].get("job") == d]
    check("demands lists it with count 1, ttl and created",
          t == "end" and mine and mine[0].get("count") == 1
          and 0 < mine[0].get("ttl", 0) <= 300 and mine[0].get("created", 0) > 0, repr(items))
    expect_error("demand count 65", ask(c, "demand", {"job": new_ulid(), "count": 65}),
                 "bad_request")
    expect_error("demand ttl 3601", ask(c, "demand", {"job": new_ulid(), "ttl": 3601}),
                 "bad_request")
    expect("demand count 64 ttl 3600", ask(c, "demand", {"job": new_ulid(), "count": 64,
                                                         "ttl": 3600}), "ok")
    expect("demand executor: label", ask(c, "demand", {"job": new_ulid(),
                                                       "labels": ["executor:process"]}), "ok")
    expect("provider: ok", ask(c, "provider", {"provider": "p1", "runner": "prov",
                                               "max": 3, "reason": "x\ny"}), "ok")
    items, t, b = stream(c, "providers")
    mine = [x[1] for x in items if x[1].get("provider") == "p1"]
    check("providers lists it with heartbeat, reason escaped",
          t == "end" and mine and mine[0].get("heartbeat", 0) > 0
          and mine[0].get("reason") == "x\\ny" and mine[0].get("max") == 3, repr(items))
    expect_error("provider without name", ask(c, "provider", {}), "bad_request",
                 'provider: missing required field "provider"', exact=True)


def test_fetch(c):
    j = new_ulid()
    expect_error("fetch of an unknown job",
                 ask(c, "fetch", {"job": j, "step": "a", "path": "f"}), "not_found",
                 f"the broker holds no artifact f of step a of job {j} (not shipped by its "
                 "runner yet, or never)", exact=True)
    for bad in ("../x", "/x", "a//b", "a/", "./a", "a\nb", ""):
        expect_error(f"fetch path {bad!r}", ask(c, "fetch", {"job": j, "step": "a",
                                                             "path": bad}), "bad_request")
    expect_error("fetch sha256 upper case",
                 ask(c, "fetch", {"job": j, "step": "a", "path": "f", "sha256": "A" * 64}),
                 "bad_request")


# --- runner messages -------------------------------------------------------------

def hello(s, rid, seq=0, **kw):
    body = {"runner": rid, "capacity": kw.pop("capacity", 1), "version": "peer-audit",
            "labels": kw.pop("labels", ["pa-only", "executor:process"])}
    if seq:
        body["seq"] = seq
    body.update(kw)
    return ask(s, "hello", body)


def ev(seq, job, jseq, etype, data):
    e = {"seq": seq, "type": etype, "time": time.time_ns(), "data": data}
    if job:
        e["job"], e["jseq"] = job, jseq
    return e


def test_runner_session(c):
    r = dealer(REP)
    expect_error("a runner message before hello: unavailable", ask(r, "credit", {"credit": 1}),
                 "unavailable", "this connection has not said hello (the broker restarted?), "
                 "or another connection has said hello since with its runner id (two runners "
                 "with one id?): send hello first", exact=True)
    expect_error("goodbye before hello: unavailable", ask(r, "goodbye", {"seq": 0}),
                 "unavailable")
    expect_error("submit on the runner socket",
                 ask(r, "submit", {"job": new_ulid(), "spec": spec()}), "bad_request",
                 "submit is not a message a runner sends: this is the broker's runner socket; "
                 "a client (evrun-cli) connects to its client socket, " + CEP, exact=True)
    expect_error("a hello with executor:docker: conflict",
                 hello(r, "pa-r1", labels=["executor:docker"]), "conflict",
                 "hello: runner pa-r1: label executor:docker names no executor evrun has "
                 "(executor:podman, executor:process)")
    expect_error("a hello with a repeated label",
                 hello(r, "pa-r1", labels=["a", "a"]), "bad_request",
                 'hello.labels: "a" at [1] repeats [0]', exact=True)
    expect_error("a hello without version",
                 ask(r, "hello", {"runner": "pa-r1", "capacity": 1}), "bad_request",
                 'hello: missing required field "version"', exact=True)
    expect_error("a hello with a bad id", hello(r, ".x"), "bad_request", "hello.runner")
    expect("hello: welcome seq 0", hello(r, "pa-r1"), "welcome",
           lambda b: b == {"runner": "pa-r1", "seq": 0} or
           (b.get("runner") == "pa-r1" and not b.get("seq")))
    # seq rules of a batch
    expect_error("events seq 0", ask(r, "events", {"events": [ev(0, None, 0, "runner.started",
                                                                {"runner": "pa-r1",
                                                                 "version": "v"})]}),
                 "bad_request", "events.events[0].seq: expected 1 or more (a runner's log "
                 "counts from 1), got 0", exact=True)
    rs = {"runner": "pa-r1", "version": "v"}
    expect_error("events not increasing",
                 ask(r, "events", {"events": [ev(1, None, 0, "runner.started", rs),
                                              ev(1, None, 0, "runner.started", rs)]}),
                 "bad_request", "events.events[1].seq: 1 after 1: a batch is in seq order",
                 exact=True)
    expect_error("events with a gap",
                 ask(r, "events", {"events": [ev(2, None, 0, "runner.started", rs)]}),
                 "bad_request", "store: events of pa-r1: seq 2 follows 0 (a gap)", exact=True)
    expect_error("events: 1025 items: too_large",
                 ask(r, "events", {"events": [ev(i + 1, None, 0, "runner.started", rs)
                                              for i in range(1025)]}), "too_large")
    expect_error("events: a runner event with a job",
                 ask(r, "events", {"events": [ev(1, new_ulid(), 1, "runner.started", rs)]}),
                 "bad_request")
    expect_error("events: an unknown type",
                 ask(r, "events", {"events": [ev(1, None, 0, "runner.exploded", {})]}),
                 "bad_request")
    expect("events seq 1: ack 1",
           ask(r, "events", {"events": [ev(1, None, 0, "runner.started", rs)]}),
           "ack", lambda b: b.get("seq") == 1)
    expect("a resend: ack, not stored again",
           ask(r, "events", {"events": [ev(1, None, 0, "runner.started", rs)]}),
           "ack", lambda b: b.get("seq") == 1)
    send(r, "heartbeat", {"running": 0})
    t, b = recv(r, 0.5)
    check("heartbeat: no answer", t is None, f"{t} {b!r}")
    # a job: dispatch, accepted, run, finished
    job = new_ulid()
    expect("submit for the fake runner", ask(c, "submit", {"job": job, "spec": spec("pa-run"),
                                                           "args": {}}), "accepted")
    send(r, "credit", {"credit": 5})            # capacity 1: at most one dispatch
    t, d = recv(r)
    expect("credit: dispatch", (t, d), "dispatch",
           lambda b: b.get("job") == job and b.get("spec", {}).get("pipeline") == "pa-run")
    j2 = new_ulid()
    ask(c, "submit", {"job": j2, "spec": spec("pa-run")})
    t, b = recv(r, 0.7)
    check("capacity 1: no second dispatch", t is None, f"{t} {b!r}")
    items, _, _ = stream(c, "runners")
    me = [x[1] for x in items if x[1].get("runner") == "pa-r1"]
    check("runners: pa-r1 with its capacity", me and me[0].get("capacity") == 1
          and me[0].get("state") in ("idle", "busy") and "executor:process" in me[0]["labels"],
          repr(me))
    check("runners: running counts the job dispatched and not taken yet, busy",
          me and me[0].get("running") == 1 and me[0].get("state") == "busy", repr(me))
    check("runners: credit is the last credit less the jobs dispatched since",
          me and me[0].get("credit") == 4, repr(me))
    send(r, "heartbeat", {"running": 7})
    time.sleep(0.2)
    items, _, _ = stream(c, "runners")
    me = [x[1] for x in items if x[1].get("runner") == "pa-r1"]
    check("a heartbeat's running is not read: still 1", me and me[0].get("running") == 1,
          repr(me))
    expect_error("pause of a dispatched job: conflict", ask(c, "pause", {"job": job}),
                 "conflict", "being handed to runner pa-r1")
    sp = d["spec"]
    evs = [ev(2, job, 1, "job.accepted", {"pipeline": "pa-run", "spec": sp}),
           ev(3, job, 2, "job.started", {}),
           ev(4, job, 3, "step.queued", {"step": "a", "attempt": 1}),
           ev(5, job, 4, "step.starting", {"step": "a", "attempt": 1, "container": "c"}),
           ev(6, job, 5, "step.started", {"step": "a", "attempt": 1, "container_id": "c"}),
           ev(7, job, 6, "step.output", {"step": "a", "stream": "stdout", "offset": 0,
                                         "raw": 3, "bytes": b"hi\n"})]
    expect("events: job.accepted ... ack 7", ask(r, "events", {"events": evs}), "ack",
           lambda b: b.get("seq") == 7)
    expect("status: running on pa-r1", ask(c, "status", {"job": job}), "job",
           lambda b: b.get("status") == "running" and b.get("runner") == "pa-r1"
           and b.get("steps", {}).get("a") == "running" and b.get("started", 0) > 0)
    items, t, b = stream(c, "history", {"job": job})
    hist = [x[1]["event"] for x in items]
    check("history: 6 events in jseq order, archive seqs",
          t == "end" and [e["jseq"] for e in hist] == list(range(1, 7)) and b.get("count") == 6,
          f"{t} {b!r} {[e.get('jseq') for e in hist]}")
    check("history: job.accepted carries the runner",
          hist and hist[0]["data"].get("runner") == "pa-r1", repr(hist[:1])[:300])
    items, t, b = stream(c, "history", {"job": job, "from": 3, "limit": 2})
    check("history from 3 limit 2: jseq 3, 4, more", t == "end" and b.get("more") is True
          and [x[1]["event"]["jseq"] for x in items] == [3, 4], f"{t} {b!r}")
    items, t, b = stream(c, "history", {"job": job, "from": 2 ** 64 - 1})
    check("history from 2^64-1: an empty page", t == "end" and not items and not b.get("more"),
          f"{t} {b!r}")
    # pause / resume of a running job
    expect("pause of a running job: ok (sent)", ask(c, "pause", {"job": job}), "ok")
    t, ctl = recv(r)
    expect("  the runner gets control pause", (t, ctl), "control",
           lambda b: b.get("command") == "pause" and b.get("job") == job)
    expect("a second pause before its event: ok, not sent again",
           ask(c, "pause", {"job": job}), "ok", lambda b: "already sent" in b.get("message", ""))
    t, b = recv(r, 0.5)
    check("  nothing sent", t is None, f"{t} {b!r}")
    # query
    expect("query of a job", ask(r, "query", {"seq": 9, "job": job}), "queried",
           lambda b: b.get("seq") == 9 and b.get("status") == "running"
           and b.get("pipeline") == "pa-run" and "code" not in b)
    expect("query of an unknown job", ask(r, "query", {"seq": 10, "job": new_ulid()}), "queried",
           lambda b: b.get("seq") == 10 and b.get("code") == "not_found"
           and isinstance(b.get("message"), str))
    expect("query of both", ask(r, "query", {"seq": 11, "job": job, "pipeline": "pa-run"}),
           "queried", lambda b: b.get("seq") == 11 and b.get("code") == "bad_request")
    expect("query of neither", ask(r, "query", {"seq": 12}), "queried",
           lambda b: b.get("seq") == 12 and b.get("code") == "bad_request")
    expect("query of a pipeline", ask(r, "query", {"seq": 13, "pipeline": "pa-run"}), "queried",
           lambda b: b.get("seq") == 13 and b.get("running") == 1 and b.get("waiting") == 1,)
    # artifacts
    data = b"artifact bytes\n" * 100
    sha = hashlib.sha256(data).hexdigest()
    art = {"job": job, "step": "a", "path": "out/f.txt", "sha256": sha, "size": len(data)}
    expect("artifact_chunk probe: offset 0", ask(r, "artifact_chunk", dict(art, offset=0)),
           "artifact_ack", lambda b: b.get("offset") == 0 and not b.get("done")
           and b.get("sha256") == sha and b.get("path") == "out/f.txt" and "reason" not in b)
    expect("artifact_chunk at the wrong offset: the length held",
           ask(r, "artifact_chunk", dict(art, offset=5, data=data[5:10])), "artifact_ack",
           lambda b: b.get("offset") == 0 and "reason" not in b)
    expect("artifact_chunk half", ask(r, "artifact_chunk", dict(art, offset=0, data=data[:700])),
           "artifact_ack", lambda b: b.get("offset") == 700)
    expect_error("fetch with sha256 while half held", ask(c, "fetch", {
        "job": job, "step": "a", "path": "out/f.txt", "sha256": sha}), "not_found",
        "(not shipped by its runner yet: 700 bytes of it received so far)")
    expect("artifact_chunk rest: done",
           ask(r, "artifact_chunk", dict(art, offset=700, data=data[700:])), "artifact_ack",
           lambda b: b.get("offset") == len(data) and b.get("done") is True)
    expect("artifact_chunk probe of a held file: done",
           ask(r, "artifact_chunk", dict(art, offset=0)), "artifact_ack",
           lambda b: b.get("done") is True)
    expect("fetch: artifact_data", ask(c, "fetch", {"job": job, "step": "a", "path": "out/f.txt",
                                                    "sha256": sha}), "artifact_data",
           lambda b: b.get("data") == data and b.get("size") == len(data)
           and b.get("offset") == 0 and b.get("step") == "a")
    expect("fetch at the end: no data", ask(c, "fetch", {"job": job, "step": "a",
                                                         "path": "out/f.txt",
                                                         "offset": len(data)}),
           "artifact_data", lambda b: "data" not in b and b.get("offset") == len(data))
    expect_error("fetch past the end", ask(c, "fetch", {"job": job, "step": "a",
                                                        "path": "out/f.txt",
                                                        "offset": len(data) + 1}),
                 "bad_request", f"fetch.offset: {len(data) + 1} is past the end of artifact "
                 f"out/f.txt ({len(data)} bytes)", exact=True)
    expect_error("fetch of another sha256", ask(c, "fetch", {
        "job": job, "step": "a", "path": "out/f.txt", "sha256": "0" * 64}), "not_found",
        "the broker holds another copy (sha256 " + sha)
    expect("a piece past the size: refused for good",
           ask(r, "artifact_chunk", dict(art, sha256="1" * 64, offset=0, data=b"x" * 5000)),
           "artifact_ack", lambda b: b.get("reason") ==
           f"a piece at 0 of 5000 bytes passes the size {len(data)}")
    expect("a chunk of an unknown job: refused",
           ask(r, "artifact_chunk", dict(art, job=j2, offset=0)), "artifact_ack",
           lambda b: isinstance(b.get("reason"), str))
    expect_error("artifact_chunk with data over 1 MiB",
                 ask(r, "artifact_chunk", dict(art, offset=0, data=b"x" * 1048577)),
                 "too_large")
    expect_error("artifact_chunk path with ..",
                 ask(r, "artifact_chunk", dict(art, path="a/../b", offset=0)), "bad_request")
    # trigger
    expect("trigger of an unknown parent",
           ask(r, "trigger", {"job": new_ulid(), "pipeline": "p", "parent_job": new_ulid(),
                              "parent_step": "a"}), "triggered",
           lambda b: b.get("code") == "not_found" and "is not known to the broker as a job of "
           "runner pa-r1 (no such job): a runner triggers for the jobs it was sent only"
           in b.get("message", ""))
    expect("trigger spec without file",
           ask(r, "trigger", {"job": new_ulid(), "pipeline": "pa", "spec": spec(),
                              "parent_job": job, "parent_step": "a"}), "triggered",
           lambda b: b.get("code") == "bad_request"
           and "trigger.file: required with trigger.spec" in b.get("message", ""))
    expect("trigger file without spec",
           ask(r, "trigger", {"job": new_ulid(), "pipeline": "pa", "file": "x.yml",
                              "parent_job": job, "parent_step": "a"}), "triggered",
           lambda b: b.get("code") == "bad_request"
           and "trigger.file: only with trigger.spec" in b.get("message", ""))
    expect("trigger of an unregistered pipeline for its own job",
           ask(r, "trigger", {"job": new_ulid(), "pipeline": "nope", "parent_job": job,
                              "parent_step": "a"}), "triggered",
           lambda b: b.get("code") == "not_found")
    # a takeover by a second connection
    r2 = dealer(REP)
    expect("hello on a second connection: welcome seq 7", hello(r2, "pa-r1", seq=7),
           "welcome", lambda b: b.get("seq") == 7)
    expect_error("the first connection is no longer heard",
                 ask(r, "heartbeat", {}) if False else ask(r, "credit", {"credit": 0}),
                 "unavailable")
    expect_error("a shorter log under a known id: conflict", hello(r, "pa-r1", seq=3),
                 "conflict")
    # the job ends: a job.finished succeeded with a step not ended is refused
    fin = [ev(8, job, 7, "job.finished", {"status": "succeeded"})]
    t, b = ask(r2, "events", {"events": fin})
    got = {t: b}
    t, b = recv(r2)
    got[t] = b
    check("a refused job.finished: ack and control cancel",
          got.get("ack", {}).get("seq") == 8
          and got.get("control", {}).get("command") == "cancel", repr(got)[:400])
    expect("  the broker ended the job failed", ask(c, "status", {"job": job}), "job",
           lambda b: b.get("status") == "failed" and "the broker refused event seq 8 "
           "(job.finished) of runner pa-r1" in b.get("reason", "")
           and b.get("steps", {}).get("a", "").startswith("failed"))
    # the second job is dispatched now that the slot is free
    send(r2, "credit", {"credit": 1})
    t, d2 = recv(r2)
    expect("the freed slot takes the next job", (t, d2), "dispatch",
           lambda b: b.get("job") == j2)
    # another runner's job.accepted of it is refused
    r3 = dealer(REP)
    expect("a third runner", hello(r3, "pa-r3"), "welcome")
    t, b = ask(r3, "events", {"events": [ev(1, j2, 1, "job.accepted",
                                            {"pipeline": "pa-run", "spec": d2["spec"]})]})
    got = {t: b}
    t, b = recv(r3)
    got[t] = b
    check("job.accepted of a job dispatched elsewhere: ack + cancel",
          got.get("ack", {}).get("seq") == 1 and got.get("control", {}).get("job") == j2,
          repr(got)[:300])
    expect("  the job is still dispatched (queued)", ask(c, "status", {"job": j2}), "job",
           lambda b: b.get("status") == "queued")
    # goodbye: the dispatched job goes back to the queue at once
    send(r2, "goodbye", {"seq": 8, "reason": "stopped by a signal"})
    t, b = recv(r2, 0.5)
    check("goodbye: no answer", t is None, f"{t} {b!r}")
    time.sleep(0.3)
    items, _, _ = stream(c, "runners")
    me = [x[1] for x in items if x[1].get("runner") == "pa-r1"]
    check("after goodbye: stopped", me and me[0].get("state") == "stopped", repr(me))
    expect_error("after goodbye the connection must say hello again",
                 ask(r2, "credit", {"credit": 1}), "unavailable")
    # a hello with another id on the same connection moves it; the old id is lost at once
    r4 = dealer(REP)
    expect("r4 hello as pa-a", hello(r4, "pa-a"), "welcome")
    expect("r4 hello as pa-b", hello(r4, "pa-b"), "welcome")
    items, _, _ = stream(c, "runners")
    st = {x[1]["runner"]: x[1]["state"] for x in items}
    check("the earlier id is lost at once", st.get("pa-a") == "lost" and
          st.get("pa-b") == "idle", repr(st))
    for s in (r, r2, r3, r4):
        s.close()


def test_more_limits(c):
    t, b = ask(c, "jobs", mmap([(mstr("x"), b"\x91" * 15 + b"\x90")]))
    check("16 non-empty levels and an empty one: taken (empty ones do not count)",
          t in ("job", "end"), f"{t} {b!r}")
    while t == "job":
        t, b = recv(c)
    c.send_multipart([b"evrun1 " + b"j" * 56, pack({})])
    expect_error("a header of 63 bytes: unknown_type, not bad_request", recv(c), "unknown_type")

    def reason_kept(sent):
        j = new_ulid()
        ask(c, "submit", {"job": j, "spec": spec("pa-cut")})
        ask(c, "cancel", {"job": j, "reason": sent})
        return (ask(c, "status", {"job": j})[1] or {}).get("reason", "")
    r = reason_kept("\n" * 1024)
    check("a reason longer once escaped: cut visibly to 1024 bytes, no escape split",
          len(r.encode()) <= 1024 and r.endswith("\\n\u2026"), repr(r[-8:]))
    r = reason_kept("a" * 1020 + "\x1b")
    check("a reason that fits once escaped: not cut", r == "a" * 1020 + "\\x1b", repr(r[-8:]))
    r = reason_kept("a" * 1021 + "\u009b")
    check("a C1 control as \\u009b, cut to fit", r == "a" * 1021 + "\u2026", repr(r[-8:]))
    args = {f"a{i:02d}": "v" for i in range(64)}
    t, b = ask(c, "submit", {"job": new_ulid(), "spec": spec("pa-cut"), "args": args})
    msg = (b or {}).get("message", "")
    check("64 undeclared args of 3 letters: 42 named, then '; and 22 more'",
          t == "error" and msg.count("declares no arg") == 42 and msg.endswith("; and 22 more")
          and len(msg.encode()) <= 4096, msg[-60:])


def test_hostile_runner(c):
    """Overflowing offsets and seqs from a runner, and what subscribers see."""
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(EEP)
    sub.setsockopt(zmq.SUBSCRIBE, b"ev.")
    sub.setsockopt(zmq.SUBSCRIBE, b"rn.pa-h")
    time.sleep(0.3)
    r = dealer(REP)
    mine = ["pa-h-only", "executor:process"]    # no other test's job comes here
    expect("hello pa-h", hello(r, "pa-h", capacity=2 ** 32 - 1, labels=mine), "welcome")
    expect_error("capacity 2^32: too_large", hello(r, "pa-h", capacity=2 ** 32), "too_large",
                 "hello.capacity")
    expect("hello pa-h again", hello(r, "pa-h", labels=mine), "welcome")
    job = new_ulid()
    sp = spec("pa-h", steps=[{"name": "a", "run": "echo $X", "env": {"K": "v"}}],
              args={"X": {"default": "d"}}, env={"E": "1"}, labels=["pa-h-only"])
    expect("submit with args", ask(c, "submit", {"job": job, "spec": sp, "args": {"X": "y"}}),
           "accepted")
    send(r, "credit", {"credit": 1})
    t, d = recv(r)
    expect("dispatch carries the args", (t, d), "dispatch",
           lambda b: b.get("args") == {"X": "y"})
    evs = [ev(1, job, 1, "job.accepted", {"pipeline": "pa-h", "spec": (d or {}).get("spec", sp),
                                          "args": {"X": "y"}}),
           ev(2, job, 2, "job.started", {})]
    expect("accepted and started", ask(r, "events", {"events": evs}), "ack")
    pubs = []
    end = time.monotonic() + 2
    while time.monotonic() < end and not any(p[0].endswith(b".job.started") for p in pubs):
        if sub.poll(100):
            f = sub.recv_multipart()
            pubs.append((f[0], len(f), msgpack.unpackb(f[-1], raw=False)))
    acc = [p for p in pubs if p[0] == f"ev.{job}.job.accepted".encode()]
    check("publications are two frames", pubs and all(p[1] == 2 for p in pubs), repr(pubs)[:300])
    check("job.accepted published with the spec's stub and no args",
          acc and acc[0][2]["event"]["data"]["spec"] == {
              "pipeline": "pa-h", "executor": "process", "labels": ["pa-h-only"],
              "steps": [{"name": "a", "run": ""}]}
          and "args" not in acc[0][2]["event"]["data"]
          and acc[0][2]["event"]["data"].get("runner") == "pa-h", repr(acc)[:400])
    check("rn.pa-h published", any(p[0] == b"rn.pa-h" and p[2].get("runner") == "pa-h"
                                   for p in pubs), repr(pubs)[:300])
    items, t, b = stream(c, "history", {"job": job})
    check("history keeps the whole spec and args",
          items and items[0][1]["event"]["data"].get("args") == {"X": "y"}
          and items[0][1]["event"]["data"]["spec"].get("env") == {"E": "1"}, repr(items)[:300])
    items, t, b = stream(c, "history", {"job": job, "from": 2 ** 32 + 1})
    check("history from 2^32+1: an empty page, not from 1", t == "end" and not items, repr(b))
    sha = hashlib.sha256(b"x" * 10).hexdigest()
    art = {"job": job, "step": "a", "path": "ov", "sha256": sha, "size": 10}
    expect("a piece whose offset + length wraps: refused for good",
           ask(r, "artifact_chunk", dict(art, offset=2 ** 64 - 2, data=b"abcde")),
           "artifact_ack", lambda b: b.get("reason") ==
           "a piece at 18446744073709551614 of 5 bytes passes the size 10")
    expect("a file of 2^64-1 bytes: over the job's limit",
           ask(r, "artifact_chunk", dict(art, path="huge", size=2 ** 64 - 1, offset=0)),
           "artifact_ack", lambda b: "over the broker's limit of" in b.get("reason", ""))
    expect_error("fetch at offset 2^64-1 of nothing held",
                 ask(c, "fetch", {"job": job, "step": "a", "path": "ov", "offset": 2 ** 64 - 1}),
                 "not_found")
    expect("query seq 2^64-1 echoed", ask(r, "query", {"seq": 2 ** 64 - 1, "job": job}),
           "queried", lambda b: b.get("seq") == 2 ** 64 - 1)
    expect("trigger naming another pipeline than its spec's",
           ask(r, "trigger", {"job": new_ulid(), "pipeline": "other", "spec": spec("pa-h"),
                              "file": "x.yml", "parent_job": job, "parent_step": "a"}),
           "triggered", lambda b: b.get("code") == "bad_request" and b.get("message") ==
           "trigger.pipeline: other is not the spec's pipeline (pa-h)")
    expect("trigger of a file the parent's triggers: does not name",
           ask(r, "trigger", {"job": new_ulid(), "pipeline": "pa-h", "spec": spec("pa-h"),
                              "file": "x.yml", "parent_job": job, "parent_step": "a"}),
           "triggered", lambda b: b.get("code") == "conflict" and b.get("message") ==
           f"file x.yml is not in the triggers: of job {job}")
    expect_error("step.output bytes of 128 KiB + 1: too_large",
                 ask(r, "events", {"events": [ev(3, job, 3, "step.output", {
                     "step": "a", "stream": "stdout", "offset": 0, "raw": 1,
                     "bytes": b"x" * 131073})]}), "too_large",
                 "events.events[0].data.bytes: 131073 bytes exceed the limit of 131072")
    expect_error("a job event of jseq 0", ask(r, "events", {"events": [
        ev(3, job, 0, "job.paused", {})]}), "bad_request", "jseq")
    send(r, "goodbye", {"seq": 2 ** 64 - 1})
    t, b = recv(r, 0.5)
    check("a goodbye naming a seq past what the broker holds: no answer", t is None, repr(t))
    items, _, _ = stream(c, "runners")
    me = [x[1] for x in items if x[1].get("runner") == "pa-h"]
    check("  the runner is stopped, its job still its own", me and me[0]["state"] == "stopped",
          repr(me))
    expect("  the job stays running", ask(c, "status", {"job": job}), "job",
           lambda b: b.get("status") == "running" and b.get("runner") == "pa-h")
    r.close()
    sub.close()


def test_bounds(c):
    """What the broker keeps in memory is bounded (Decisions, demand, provider)."""
    r = dealer(REP)
    bad = None
    for i in range(1030):
        t, b = hello(r, f"pa-many-{i}")
        if t != "welcome":
            bad = (i, t, b)
            break
    check("1030 runner ids said hello on one connection: each welcomed", bad is None, repr(bad))
    items, t, b = stream(c, "runners")
    check("the broker keeps at most 1024 runner ids", t == "end" and len(items) <= 1024
          and any(x[1]["runner"] == "pa-many-1029" for x in items), f"{len(items)} {b!r}")
    r.close()
    got = [ask(c, "demand", {"job": new_ulid()}) for _ in range(260)]
    kept = sum(1 for t, b in got if t == "ok")
    refused = [b for t, b in got if t == "error"]
    check("at most 256 demand entries kept, the rest unavailable",
          kept <= 256 and refused and all(b.get("code") == "unavailable" for b in refused)
          and "the broker keeps 256 demand entries" in refused[0].get("message", ""),
          f"{kept} {refused[:1]!r}")
    got = [ask(c, "provider", {"provider": f"pb{i}"}) for i in range(260)]
    refused = [b for t, b in got if t == "error"]
    check("at most 256 providers kept, the rest unavailable",
          refused and all(b.get("code") == "unavailable" for b in refused)
          and refused[-1].get("message") == "the broker keeps 256 providers at most; "
          "provider pb259 is not kept", repr(refused[-1:]))


def test_resync(c):
    """Decisions, Resync: after hello{seq: S} no work until the broker holds the log to S."""
    r = dealer(REP)
    j = new_ulid()
    expect("a job for the resync runner",
           ask(c, "submit", {"job": j, "spec": spec("pa-rs", labels=["pa-rs-x"])}), "accepted")
    expect("hello seq 3 of a new id: welcome seq 0",
           hello(r, "pa-rs", seq=3, labels=["pa-rs-x", "executor:process"]), "welcome",
           lambda b: not b.get("seq"))
    send(r, "credit", {"credit": 1})
    t, b = recv(r, 0.7)
    check("no dispatch before the broker holds the log", t is None, f"{t} {b!r}")
    rs = {"runner": "pa-rs", "version": "v"}
    expect("events 1-2", ask(r, "events", {"events": [ev(1, None, 0, "runner.started", rs),
                                                      ev(2, None, 0, "runner.started", rs)]}),
           "ack", lambda b: b.get("seq") == 2)
    t, b = recv(r, 0.7)
    check("none at 2 of 3 either", t is None, f"{t} {b!r}")
    expect("event 3", ask(r, "events", {"events": [ev(3, None, 0, "runner.started", rs)]}),
           "ack", lambda b: b.get("seq") == 3)
    expect("at 3: the dispatch comes", recv(r), "dispatch", lambda b: b.get("job") == j)
    r.close()


def test_too_large_body(c):
    body = pack({"x": b"\0" * (4194305 - 8)})
    check("the body is 4 MiB + 1", len(body) == 4194305, str(len(body)))
    expect_error("a body of 4 MiB + 1: too_large", ask(c, "jobs", body), "too_large")
    t, b = ask(c, "jobs", {"limit": 1})
    check("the connection stays after too_large", t in ("job", "end"), repr(t))
    while t == "job":
        t, b = recv(c)


def main():
    c = dealer(CEP)
    test_frames(c)
    test_encoding(c)
    queued = test_submit(c)
    test_control(c, queued)
    test_lists(c)
    test_demand(c)
    test_fetch(c)
    test_runner_session(c)
    test_more_limits(c)
    test_hostile_runner(c)
    test_resync(c)
    test_bounds(c)
    test_too_large_body(c)
    t, b = ask(c, "runners")
    check("the broker still serves", t in ("runner", "end"), repr(t))
    c.close()
    return check.end()


if __name__ == "__main__":
    sys.exit(main())

"""Interop test: drive a running evrun broker (and runner) with the Python
client written from schema/PROTOCOL.md.  Endpoints come from EVR_CLIENT_EP
and EVR_EVENTS_EP; run through test_interop.sh, which starts the processes.
Prints a line per check; exits 1 when any check fails."""
import os
import sys
import time
import traceback

import zmq

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evrun_client import (MAX_BYTES, Client, ErrorAnswer, Subscriber, frames_for,  # noqa: E402
                          is_ulid, make_spec, make_step, new_ulid, pack, ulid_time)

IMAGE = "localhost/evrun-busybox:latest"
LINES = (b"interop-one\n", b"interop-two\n")
failures = []


def check(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    if not ok:
        failures.append(name)
    return ok


def stage(fn, *args):
    try:
        return fn(*args)
    except Exception as e:  # a crash fails the stage, the others still run
        traceback.print_exc()
        check(f"{fn.__name__} ran", False, f"{type(e).__name__}: {e}")
        return None


def output_of(events):
    return b"".join(e["data"]["bytes"] for e in events if e["type"] == "step.output")


def published(ev):
    """ev as the broker publishes it (PROTOCOL.md, event job.accepted): a
    job.accepted with its spec cut to the stub and no args."""
    if ev.get("type") != "job.accepted":
        return ev
    data = {k: v for k, v in ev["data"].items() if k != "args"}
    spec = data.get("spec", {})
    stub = {k: spec[k] for k in ("pipeline", "image", "labels") if k in spec}
    stub["steps"] = [{"name": st.get("name", ""), "run": "",
                      **({"image": st["image"]} if "image" in st else {})}
                     for st in spec.get("steps", [])]
    data["spec"] = stub
    return {**ev, "data": data}


def same_events(got, stored):
    """got (live, or from history) are the stored events, each as stored or
    as published."""
    return len(got) == len(stored) and all(g == s or g == published(s)
                                           for g, s in zip(got, stored))


def envelope_ok(ev, job):
    return (isinstance(ev, dict) and ev.get("job") == job and isinstance(ev.get("jseq"), int)
            and ev["jseq"] >= 1 and isinstance(ev.get("seq"), int) and isinstance(ev.get("time"), int)
            and isinstance(ev.get("type"), str) and isinstance(ev.get("data"), dict))


def test_ulid():
    check("ulid: document example decodes to its time",
          ulid_time("01ARYZ6S41TSV4RRFFQ69G5FAV") == 1469918176385)
    ids = [new_ulid() for _ in range(1000)]
    check("ulid: generated ids valid, upper case, strictly increasing",
          all(map(is_ulid, ids)) and ids == sorted(set(ids)), ids[0])


def test_submit(client, sub, job):
    sub.subscribe(f"ev.{job}.")
    time.sleep(0.3)  # let the subscription reach the XPUB before the first event
    spec = make_spec("interop", [make_step("one", "echo interop-one"),
                                 make_step("two", "echo interop-two")], image=IMAGE)
    acc = client.submit(job, spec)
    check("submit: accepted, same job, not existing",
          acc.get("job") == job and not acc.get("existing"), repr(acc))
    acc2 = client.submit(job, spec)
    check("resubmit same id: accepted with existing: true",
          acc2.get("job") == job and acc2.get("existing") is True, repr(acc2))
    return acc.get("job") == job


def test_live(sub, job):
    live, bad, deadline = [], [], time.monotonic() + 60
    while time.monotonic() < deadline:
        pub = sub.recv(deadline - time.monotonic())
        if pub is None:
            break
        ev = pub.event
        if not (pub.nframes == 2 and envelope_ok(ev, job) and pub.topic == f"ev.{job}.{ev['type']}"):
            bad.append(f"frames={pub.nframes} topic={pub.topic} body={pub.body!r:.200}")
            continue
        live.append(ev)
        if ev["type"] == "job.finished":
            break
    check("live: publications are [topic ev.<job>.<type>, event body]", live and not bad,
          f"{len(live)} good" + "".join(f"; bad: {b}" for b in bad[:3]))
    if not check("live: job.finished within 60 s", live and live[-1]["type"] == "job.finished",
                 f"{len(live)} events, last {live[-1]['type'] if live else None}"):
        return live
    seqs = [e["jseq"] for e in live]
    check("live: jseq dense from where it joined",
          seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"joined at {seqs[0]}, {seqs}")
    check("live: job.finished status succeeded", live[-1]["data"].get("status") == "succeeded",
          repr(live[-1]["data"]))
    out = output_of(live)
    check("live: step.output holds both lines", all(line in out for line in LINES), repr(out))
    return live


def test_history(client, job, live):
    events, end = client.history(job, 1)
    n = len(events)
    check("history: event records with the job's envelope", all(envelope_ok(e, job) for e in events))
    check("history: jseq dense 1..N", [e["jseq"] for e in events] == list(range(1, n + 1)),
          f"N={n}")
    check("history: end count = N", end.get("count", 0) == n, f"end={end!r} N={n}")
    check("history: job.accepted first", n > 0 and events[0]["type"] == "job.accepted")
    check("history: job.finished last, succeeded",
          n > 0 and events[-1]["type"] == "job.finished"
          and events[-1]["data"].get("status") == "succeeded")
    check("history: types", True, " ".join(e["type"] for e in events))
    if live:
        first = live[0]["jseq"]
        check("history: output bytes equal the live stream's",
              output_of(e for e in events if e["jseq"] >= first) == output_of(live))
        check("history: events equal the published ones (job.accepted: its stub)",
              [published(e) for e in events[first - 1:first - 1 + len(live)]] == live)
        acc = [e for e in live if e["type"] == "job.accepted"]
        check("live: job.accepted carries the spec's stub: every run empty, no args",
              acc and all(all(st.get("run") == "" for st in e["data"]["spec"]["steps"])
                          and "args" not in e["data"] for e in acc), f"{len(acc)} seen live")
    tail, tend = client.history(job, n)
    check("history from N: one event, end count 1",
          [e["jseq"] for e in tail] == [n] and tend.get("count", 0) == 1, f"{len(tail)} {tend!r}")
    return events


def test_follow(client, job, ep, history):
    sub = Subscriber(ep)
    sub.subscribe(f"ev.{job}.")
    try:
        got = list(sub.follow(job, client, timeout=10))
    finally:
        sub.close()
    check("follow (late joiner): every event once, 1..N", got == history, f"{len(got)} events")


def test_status(client, job):
    st = client.status(job)
    check("status: job message, status succeeded",
          st.get("job") == job and st.get("status") == "succeeded"
          and st.get("pipeline") == "interop", repr(st))
    try:
        client.status(new_ulid())
        check("status of unknown job: error not_found", False, "answered")
    except ErrorAnswer as e:
        check("status of unknown job: error not_found", e.code == "not_found", str(e))


def test_malformed(ep):
    job = new_ulid()
    step = {"name": "one", "run": "true"}
    base = {"pipeline": "bad", "image": IMAGE}
    cases = [
        ("single frame", [b"evrun1 runners"], "bad_request", None),
        ("unknown type", [b"evrun1 nosuchtype", b"\x80"], "unknown_type", None),
        ("submit body not msgpack", [b"evrun1 submit", b"\xc1"], "bad_request", None),
        ("submit without spec", ("submit", {"job": job}), "bad_request", "spec"),
        ("submit steps[1].run an int",
         ("submit", {"job": job, "spec": {**base, "steps": [step, {"name": "two", "run": 7}]}}),
         "bad_request", "steps[1].run"),
        ("huge declared array length, few bytes",
         [b"evrun1 submit", b"\x82\xa3job\xba" + job.encode() + b"\xa4spec\xdd\xff\xff\xff\xff\x01"],
         "bad_request", None),
        ("array16 declaring 200 items, 1 byte",
         [b"evrun1 runners", b"\x81\xa1x\xdc\x00\xc8\x01"], "bad_request", None),
        ("header without type", [b"evrun1", b"\x80"], "bad_request", None),
        ("spec.pipeline of 65 bytes",
         ("submit", {"job": job, "spec": {**base, "pipeline": "p" * 65, "steps": [step]}}),
         "too_large", "pipeline"),
        ("nesting 17 deep", [b"evrun1 runners", b"\x81\xa1x" + b"\x91" * 16 + b"\x01"],
         "too_large", None),
    ]
    last = None
    for name, msg, code, names in cases:
        c = Client(ep, timeout=5)
        if isinstance(msg, tuple):
            c.send(*msg)
        else:
            c.send_frames(msg)
        try:
            atype, body = c.recv()
            ok = (atype == "error" and body.get("code") == code and c.frame_counts == {2}
                  and isinstance(body.get("message"), str)
                  and (names is None or names in body["message"]))
            check(f"malformed: {name} -> error {code}" + (f" naming {names}" if names else ""),
                  ok, f"got {atype} {body!r}")
        except (TimeoutError, Exception) as e:
            check(f"malformed: {name} -> error {code}", False, f"{type(e).__name__}: {e}")
        if last:
            last.close()
        last = c
    for who, c in (("same DEALER", last), ("fresh DEALER", Client(ep))):
        try:
            items, end = c.runners()
            check(f"after malformed input: runners stream answers ({who})",
                  end.get("count", 0) == len(items) and len(items) >= 1
                  and all(isinstance(r.get("runner"), str) and r.get("state") for r in items),
                  f"{len(items)} runners: " + ", ".join(f"{r.get('runner')}={r.get('state')}" for r in items))
        except Exception as e:
            check(f"after malformed input: runners stream answers ({who})", False, str(e))
        c.close()


def answer_of(ep, frames, timeout=5):
    """(type, body) answering frames sent on a fresh DEALER, or None."""
    c = Client(ep, timeout=timeout)
    try:
        c.send_frames(frames)
        return c.recv()
    except TimeoutError:
        return None
    finally:
        c.close()


def expect_error(ep, name, frames, code, says=None, says_not=None):
    got = answer_of(ep, frames)
    ok = (got is not None and got[0] == "error" and got[1].get("code") == code
          and (says is None or says in got[1].get("message", ""))
          and (says_not is None or says_not not in got[1].get("message", "")))
    return check(f"wire: {name} -> error {code}", ok, repr(got))


def test_wire_codes(ep):
    """Error codes a client written from PROTOCOL.md expects."""
    job, step = new_ulid(), {"name": "one", "run": "true"}
    spec = {"pipeline": "wire", "image": IMAGE, "steps": [step]}
    sub_ = lambda s: frames_for("submit", {"job": new_ulid(), "spec": s})  # noqa: E731
    expect_error(ep, "jobs limit -1 (negative uint32)", frames_for("jobs", {"limit": -1}),
                 "bad_request", "jobs.limit")
    expect_error(ep, "spec.parallel -1", sub_({**spec, "parallel": -1}), "bad_request",
                 "spec.parallel")
    expect_error(ep, "jobs limit 2^32 (above uint32)", frames_for("jobs", {"limit": 1 << 32}),
                 "too_large", "jobs.limit")
    ev = {"seq": 1, "job": job, "jseq": 1, "type": "step.finished", "time": 1,
          "data": {"step": "one", "exit_code": 1 << 63, "duration": 0}}
    expect_error(ep, "exit_code 2^63 (above int)", frames_for("events", {"events": [ev]}),
                 "too_large", "exit_code")
    expect_error(ep, "header with a NUL after a known type", [b"evrun1 ack\0xyz", b"\x80"],
                 "unknown_type", "ack?xyz", says_not='"ack"')
    expect_error(ep, "header of 64 bytes", [b"evrun1 " + b"a" * 57, b"\x80"], "bad_request")
    expect_error(ep, "header of 63 bytes, unknown type", [b"evrun1 " + b"a" * 56, b"\x80"],
                 "unknown_type")
    expect_error(ep, "broker -> client type as a request", frames_for("ok", {}), "bad_request",
                 "not a client request")
    expect_error(ep, "spec.image empty, no step image", sub_({**spec, "image": ""}),
                 "bad_request", "image")
    expect_error(ep, "steps[0].image empty", sub_({**spec, "steps": [{**step, "image": ""}]}),
                 "bad_request", "steps[0].image")
    expect_error(ep, "on_failure empty", sub_({**spec, "on_failure": ""}), "bad_request",
                 "on_failure")
    expect_error(ep, "queue.strategy empty", sub_({**spec, "queue": {"strategy": ""}}),
                 "bad_request", "queue.strategy")
    expect_error(ep, "partitioned_replace without partition_by",
                 sub_({**spec, "queue": {"strategy": "partitioned_replace"}}), "bad_request",
                 "needs queue.partition_by")
    expect_error(ep, "partition_by naming no arg",
                 sub_({**spec, "queue": {"strategy": "partitioned_replace", "partition_by": "X"}}),
                 "bad_request", "queue.partition_by")
    expect_error(ep, "interrupt with append", sub_({**spec, "queue": {"interrupt": True}}),
                 "bad_request", "queue.interrupt")
    expect_error(ep, "start_delay a string", sub_({**spec, "start_delay": "10s"}),
                 "bad_request", "start_delay")
    expect_error(ep, "submit labels [\"\"]",
                 frames_for("submit", {"job": new_ulid(), "spec": spec, "labels": [""]}),
                 "bad_request", "submit.labels")


def test_wire_size(ep):
    """4 MiB bodies: up to 4 MiB + 4096 answered too_large; beyond, no answer."""
    job = new_ulid()
    base = {"job": job, "reason": "x"}

    def body_of(size):
        # an unknown key holding bin pads the body of a `cancel` to exactly size bytes
        pad = size - len(pack({**base, "pad": b""}))
        for hdr in range(6):   # bin8/16/32 headers: 2, 3, 5 bytes
            b = pack({**base, "pad": b"\0" * (pad - hdr)})
            if len(b) == size:
                return b
        raise AssertionError(size)
    for size in (MAX_BYTES + 1, MAX_BYTES + 4096):
        expect_error(ep, f"body of 4 MiB + {size - MAX_BYTES}",
                     [b"evrun1 cancel", body_of(size)], "too_large", "exceeds the limit")
    c = Client(ep, timeout=2)
    try:
        c.send_frames([b"evrun1 cancel", body_of(MAX_BYTES + 4097)])
        try:
            c.recv()
            check("wire: body of 4 MiB + 4097 -> no answer (connection closed)", False,
                  "answered")
        except TimeoutError:
            check("wire: body of 4 MiB + 4097 -> no answer (connection closed)", True)
        c.timeout = 10   # the DEALER reconnects by itself
        items, end = c.runners()
        check("wire: the same DEALER is answered after that", end.get("count") == len(items))
    finally:
        c.close()


def test_wire_unknown(client):
    """Unknown keys: only well-formed msgpack, body size and nesting apply."""
    job = new_ulid()
    odd = {"long": "u" * 70000, "many": list(range(300)), "bin": b"\0" * 5000,
           "nil": None, "float": 1.5, 7: "int key", "neg": -5}
    spec = make_spec("wire", [{**make_step("one", "true"), "x-step": odd}], image=IMAGE,
                     labels=["h-wire-no-such-runner"])
    spec["x-spec"] = odd
    try:
        acc = client.request("submit", {"job": job, "spec": spec, "x-future": odd,
                                        "x-bin": b"\0" * ((1 << 20) + 1)},
                             expect=("accepted",))[1]
        ok = acc.get("job") == job
    except Exception as e:
        acc, ok = e, False
    check("wire: unknown keys of any size and type are ignored", ok, repr(acc)[:200])
    if ok:
        client.cancel(job)


def test_wire_queued(client, sub):
    """A queued job: created is the submit time, always; pause leaves no event."""
    job, t0 = new_ulid(), time.time_ns()
    sub.subscribe(f"ev.{job}.")
    time.sleep(0.2)
    spec = make_spec("wire-q", [make_step("one", "true")], image=IMAGE,
                     labels=["h-wire-no-such-runner"], queue={})
    client.submit(job, spec)
    st = client.status(job)
    created = st.get("created", 0)
    check("queued: status queued, created = submit time",
          st.get("status") == "queued" and t0 <= created <= time.time_ns(), repr(st))
    client.pause(job)
    st = client.status(job)
    events, end = client.history(job, 1)
    pub = sub.recv(0.5)
    check("queued: pause -> status paused, no event stored or published",
          st.get("status") == "paused" and events == [] and end.get("count", 0) == 0
          and pub is None, f"{st!r} {events!r} {pub and pub.topic}")
    client.resume(job)
    time.sleep(0.05)
    client.cancel(job, "wire test\x1b[2J\nnext\u009b1m")
    st = client.status(job)
    check("queued then cancelled: created still the submit time, before finished",
          st.get("status") == "cancelled" and st.get("created") == created
          and st.get("finished", 0) > created, repr(st))
    # a reason is shown to others in terminals: on one line, no escape
    check("cancel: a reason's control characters kept as escapes",
          st.get("reason") == "wire test\\x1b[2J\\nnext\\u009b1m", repr(st))
    job2 = new_ulid()
    # {}: the broker's limit; limit 0 (no wait list) without concurrency:
    # a job waiting only for a runner is accepted
    for queue in ({}, {"limit": 0}):
        job2 = new_ulid()
        try:
            client.submit(job2, {**spec, "queue": queue})
            client.cancel(job2)
            check(f"queue {queue!r} accepted", True)
        except ErrorAnswer as e:
            check(f"queue {queue!r} accepted", False, str(e))
    # limit 0 with its concurrency full: refused, `busy`
    spec0 = {**spec, "concurrency": 1, "queue": {"limit": 0}}
    first = new_ulid()
    client.submit(first, spec0)
    try:
        client.submit(new_ulid(), spec0)
        check("queue limit 0, concurrency 1 full: refused busy", False, "accepted")
    except ErrorAnswer as e:
        check("queue limit 0, concurrency 1 full: refused busy", e.code == "busy", str(e))
    client.cancel(first)


def test_wire_pages(client, ep):
    """A history longer than one page: `end.more` pages it, a short page is
    not the end, and a follower goes live after the last page."""
    job = new_ulid()
    spec = make_spec("wire-big", [make_step("big", "head -c 9437184 /dev/zero | tr '\\0' x")],
                     image=IMAGE)
    sub = Subscriber(ep)
    sub.subscribe(f"ev.{job}.")
    try:
        client.submit(job, spec)
        got = list(sub.follow(job, client, timeout=60))
    finally:
        sub.close()
    first, end = client.history(job, 1)
    check("history: a page cut by its byte limit says more: true",
          end.get("more") is True and 0 < len(first) < 1000 and end.get("count") == len(first),
          f"{len(first)} events, end {end!r}")
    items, lend = client.stream("history", {"job": job, "from": 2, "limit": 3})
    check("history with limit 3: events 2, 3, 4, and more: true",
          [it.get("event", {}).get("jseq") for it in items] == [2, 3, 4]
          and lend.get("more") is True and lend.get("count") == 3, f"end {lend!r}")
    everything = client.history_all(job, 1)
    last_end = client.history(job, everything[-1]["jseq"])[1] if everything else {}
    check("history: pages asked while more bring 1..N, the last says no more",
          [e["jseq"] for e in everything] == list(range(1, len(everything) + 1))
          and everything[-1]["type"] == "job.finished" and not last_end.get("more"),
          f"{len(everything)} events")
    check("follow: paged history then live: every event once",
          same_events(got, everything) and sum(len(e["data"].get("bytes", b"")) for e in got
                                    if e["type"] == "step.output") == 9437184,
          f"{len(got)} events")


def test_demand(client):
    """demand and demands (PROTOCOL.md): kept once per id, listed with what
    is left, count and ttl bounded."""
    d, labels = new_ulid(), ["io-no-such-label"]
    ok = client.request("demand", {"job": d, "labels": labels, "count": 2, "ttl": 30,
                                   "reason": "interop"}, expect=("ok",))[1]
    check("demand: answered ok with its id", ok.get("job") == d, repr(ok))
    again = client.request("demand", {"job": d, "labels": labels, "count": 5},
                           expect=("ok",))[1]
    check("demand: the same id again adds nothing", "nothing added" in again.get("message", ""),
          repr(again))
    check("demand: ok says existing (a duplicate) the second time only",
          again.get("existing") is True and not ok.get("existing"), repr((ok, again)))
    items, end = client.stream("demands")
    mine = [i for i in items if i.get("job") == d]
    check("demands: lists it once, with count, ttl left, reason, created",
          len(mine) == 1 and mine[0].get("count") == 2 and 0 < mine[0].get("ttl", 0) <= 30
          and mine[0].get("labels") == labels and mine[0].get("reason") == "interop"
          and mine[0].get("created", 0) > 0 and end.get("count") == len(items),
          repr(mine)[:300])
    # the refusal names the field as the decoder's do: PATH: expected ..., got ...
    for fields, what, says in (
            ({"count": 65}, "count 65", "demand.count: expected 1 to 64 (runners wanted), got 65"),
            ({"ttl": 3601}, "ttl 3601", "demand.ttl: expected 1 to 3600 (seconds), got 3601"),
            ({"labels": ["a b"]}, "a bad label",
             'demand.labels: expected labels: letters, digits, _ . - (at most 64 bytes each), '
             'or executor:NAME, got "a b" at [0]')):
        try:
            client.request("demand", {"job": new_ulid(), **fields})
            got = None
        except ErrorAnswer as e:
            got = (e.code, e.message)
        check(f"demand: {what} is bad_request, saying {says!r}",
              got == ("bad_request", says), repr(got))


def main():
    if len(sys.argv) > 2:
        sys.exit("usage: test_interop.py [BIN_DIR]  (BIN_DIR unused: processes come from test_interop.sh)")
    cep, eep = os.environ["EVR_CLIENT_EP"], os.environ["EVR_EVENTS_EP"]
    client, sub, job = Client(cep, timeout=10), Subscriber(eep), new_ulid()
    print(f"job {job}", flush=True)
    test_ulid()
    live = history = None
    if stage(test_submit, client, sub, job):
        live = stage(test_live, sub, job)
        history = stage(test_history, client, job, live)
        if history:
            stage(test_follow, client, job, eep, history)
        stage(test_status, client, job)
    stage(test_malformed, cep)
    stage(test_wire_codes, cep)
    stage(test_wire_size, cep)
    stage(test_wire_unknown, client)
    stage(test_wire_queued, client, sub)
    stage(test_wire_pages, client, eep)
    stage(test_demand, client)
    check("answers are two frames (header, body)", client.frame_counts <= {2},
          f"frame counts seen: {sorted(client.frame_counts)}")
    client.close()
    sub.close()
    zmq.Context.instance().term()
    print(f"{'FAILED' if failures else 'OK'}: {len(failures)} check(s) failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

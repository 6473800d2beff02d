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
from evrun_client import (Client, ErrorAnswer, Subscriber, is_ulid, make_spec,  # noqa: E402
                          make_step, new_ulid, ulid_time)

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
        check("history: events equal the published ones",
              events[first - 1:first - 1 + len(live)] == live)
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
    check("answers are two frames (header, body)", client.frame_counts <= {2},
          f"frame counts seen: {sorted(client.frame_counts)}")
    client.close()
    sub.close()
    zmq.Context.instance().term()
    print(f"{'FAILED' if failures else 'OK'}: {len(failures)} check(s) failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

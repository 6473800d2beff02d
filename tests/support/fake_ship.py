#!/usr/bin/env python3
"""fake_ship.py BUS_DIR RUNNER_ID: a runner made of protocol messages
(schema/PROTOCOL.md) that ships artifact copies the way a real runner
cannot be made to on demand, for the broker's and the gateway's checks
of which copy they serve.

It says hello on BUS_DIR/runners with a label of its own, submits a job
on BUS_DIR/clients with that label, takes it, and records for step `a`
two attempts each naming a file `f` of 3 bytes: attempt 1 "abc", then
attempt 2 "xyz" (the latest step.artifact).  It ships only attempt 1's
copy whole, and 1 byte of attempt 2's (a partial file at the broker), so
the broker holds a copy of the same size as the latest event's but
another sha256.  Then it sends the artifact_chunk pieces that pass the
file's size (offset 10 of a 3-byte file; 6 bytes at offset 0) and
prints each answer's `reason` as "past_size_reason: REASON".

Prints "job J", "h1 SHA256", "h2 SHA256" (the copies' sha256) first;
exit 0 when every message was answered as a broker answers, else 1 (said
on stderr)."""
import hashlib
import os
import random
import sys
import time

import msgpack
import zmq

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid():
    v = (int(time.time() * 1000) << 80) | random.getrandbits(80)
    return "".join(ALPHABET[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


def fail(what):
    print("fake_ship: " + what, file=sys.stderr)
    sys.exit(1)


def recv(s, what):
    if not s.poll(10000):
        fail("no answer to %s within 10 s" % what)
    frames = s.recv_multipart()
    return (frames[0].decode("ascii", "replace").partition(" ")[2],
            msgpack.unpackb(frames[-1], raw=False))


def call(s, mtype, body, expect):
    """Sends mtype and waits for an answer of type expect (others, such as
    heartbeats, skipped)."""
    s.send_multipart([("evrun1 " + mtype).encode(), msgpack.packb(body, use_bin_type=True)])
    for _ in range(100):
        got, answer = recv(s, mtype)
        if got == expect:
            return answer
        if got == "error":
            fail("%s: error %r" % (mtype, answer))
    fail("%s: no %s among 100 answers" % (mtype, expect))


def main():
    bus, rid = sys.argv[1:3]
    ctx = zmq.Context()
    run = ctx.socket(zmq.DEALER)
    run.setsockopt(zmq.LINGER, 0)
    run.connect("ipc://%s/runners" % bus)
    cl = ctx.socket(zmq.DEALER)
    cl.setsockopt(zmq.LINGER, 0)
    cl.connect("ipc://%s/clients" % bus)
    label = "fake-ship-" + rid
    call(run, "hello", {"runner": rid, "capacity": 1, "version": "fake_ship",
                        "labels": [label]}, "welcome")
    run.send_multipart([b"evrun1 credit", msgpack.packb({"credit": 1})])
    job = ulid()
    spec = {"pipeline": "fake-ship", "image": "img",
            "steps": [{"name": "a", "run": "x", "artifacts": ["f"]}]}
    call(cl, "submit", {"job": job, "spec": spec, "labels": [label]}, "accepted")
    for _ in range(100):
        got, _ = recv(run, "submit (a dispatch)")
        if got == "dispatch":
            break
    else:
        fail("no dispatch")
    h1, h2 = hashlib.sha256(b"abc").hexdigest(), hashlib.sha256(b"xyz").hexdigest()
    print("job", job)
    print("h1", h1)
    print("h2", h2)
    now = time.time_ns()
    kinds = [("job.accepted", {"pipeline": "fake-ship", "spec": spec, "runner": rid}),
             ("job.started", {"runner": rid})]
    for attempt, sha, exit_code, status in ((1, h1, 1, "failed"), (2, h2, 0, "succeeded")):
        kinds += [("step.queued", {"step": "a", "attempt": attempt}),
                  ("step.starting", {"step": "a", "attempt": attempt, "container": "c"}),
                  ("step.started", {"step": "a", "attempt": attempt, "container_id": "c"}),
                  ("step.artifact", {"step": "a", "attempt": attempt, "path": "f", "size": 3,
                                     "sha256": sha}),
                  ("step.finished", {"step": "a", "attempt": attempt, "exit_code": exit_code,
                                     "duration": 1, "status": status})]
    kinds.append(("job.finished", {"status": "succeeded"}))
    events = [{"seq": i + 1, "job": job, "jseq": i + 1, "type": t, "time": now, "data": d}
              for i, (t, d) in enumerate(kinds)]
    ack = call(run, "events", {"events": events}, "ack")
    if ack.get("seq") != len(events):
        fail("events: acknowledged up to %r of %d" % (ack.get("seq"), len(events)))
    f = {"job": job, "step": "a", "path": "f", "size": 3}

    def chunk(sha, offset, data=None):
        body = dict(f, sha256=sha, offset=offset)
        if data is not None:
            body["data"] = data
        return call(run, "artifact_chunk", body, "artifact_ack")

    chunk(h1, 0)
    a = chunk(h1, 0, b"abc")
    if not a.get("done"):
        fail("attempt 1's copy: not done: %r" % a)
    chunk(h2, 0)
    a = chunk(h2, 0, b"x")
    if a.get("offset") != 1 or a.get("done"):
        fail("1 byte of attempt 2's copy: answered %r" % a)
    for offset, data in ((10, b"abc"), (0, b"abcdef")):
        a = chunk(h2, offset, data)
        print("past_size_reason:", a.get("reason"))
    a = chunk(h2, 0)
    if a.get("offset") != 1:
        fail("after the refusals: the broker holds %r bytes of attempt 2's copy" % a)
    run.close()
    cl.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""hostile_broker.py EP: stands in for evrun-broker on its runner endpoint EP
(binds it), written from schema/PROTOCOL.md alone (pyzmq and msgpack), and
sends one evrun-runner what no broker should, checking the runner goes on:

  1. malformed messages (one frame, an empty first frame, an unknown type,
     a body that is no msgpack), a `control` of a job it does not hold or
     of no command it knows, unasked `artifact_ack`, `queried`,
     `triggered` and an `error` of an unknown code: each only logged;
  2. an `ack` of seq 2^64-1, past every event the runner sent: ignored,
     so the events of the job dispatched next still come (they did not:
     the runner took every seq as acknowledged and sent nothing more);
     a second job dispatched with it finds no free slot (capacity 1): it
     is taken and run all the same;
  3. that job's artifact answered `artifact_ack` with an offset past the
     file's size: the runner asks again after a second, not at once (it
     asked some 3000 times a second, each a log line); then shipped;
  4. a `welcome` whose seq is past the runner's log (another log under
     its id): the runner stops (test_hostile_broker.sh checks it exits 2
     saying so); it took it and sent nothing below that seq.

Welcomes the first hello with seq 0, acks every batch, heartbeats every
200 ms.  Prints "ok" and exits 0 when every check held; prints
"FAILED: ..." and exits 1 otherwise.
"""
import hashlib
import sys
import time

import msgpack
import zmq

PROTO = "evrun1"
JOB = "01JQ7ZK3M8X2V9T4B6N0C5D7H0"
OTHER = "01JQ7ZK3M8X2V9T4B6N0C5D7H1"
SECOND = "01JQ7ZK3M8X2V9T4B6N0C5D7H2"
SPEC = {"pipeline": "hostile", "executor": "process",
        "steps": [{"name": "a", "run": "printf hi > out.txt", "artifacts": ["out.txt"]}]}
SPEC2 = {"pipeline": "hostile2", "executor": "process", "steps": [{"name": "b", "run": "true"}]}


class Broker:
    def __init__(self, ep):
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ep)
        self.rid = None
        self.events = []        # every event got, by runner seq order
        self.chunks = []        # (mono time, artifact_chunk body)
        self.beat = 0.0
        self.on_chunk = None    # artifact_chunk -> artifact_ack body, or None: no answer

    def send(self, mtype, body, raw=None):
        self.sock.send_multipart([self.rid, f"{PROTO} {mtype}".encode(),
                                  raw if raw is not None else
                                  msgpack.packb(body, use_bin_type=True)])

    def serve(self, secs, until=None):
        """Answers the runner for secs (or until until() holds)."""
        end = time.monotonic() + secs
        while time.monotonic() < end and not (until and until()):
            if self.rid and time.monotonic() - self.beat > 0.2:
                self.send("heartbeat", {})
                self.beat = time.monotonic()
            if not self.sock.poll(50):
                continue
            frames = self.sock.recv_multipart()
            mtype = frames[1].decode()[len(PROTO) + 1:]
            body = msgpack.unpackb(frames[-1], raw=False)
            if mtype == "hello" and self.rid is None:
                self.rid = frames[0]
                self.send("welcome", {"runner": body["runner"], "seq": 0})
            elif mtype == "events":
                self.events += body["events"]
                self.send("ack", {"seq": body["events"][-1]["seq"]})
            elif mtype == "artifact_chunk":
                self.chunks.append((time.monotonic(), body))
                ack = self.on_chunk(body) if self.on_chunk else None
                if ack is not None:
                    self.send("artifact_ack", ack)

    def finished(self, job=None):
        return any(e["type"] == "job.finished" and e.get("job") == (job or JOB)
                   for e in self.events)


def main():
    b = Broker(sys.argv[1])
    bad = []
    b.serve(20, lambda: b.rid is not None)
    if b.rid is None:
        print("FAILED: no hello within 20 s")
        return 1
    b.serve(0.5)
    # 1. malformed and unasked messages
    b.sock.send_multipart([b.rid, b"evrun1 ack"])
    b.sock.send_multipart([b.rid, b"", b"evrun1 ack", msgpack.packb({"seq": 1})])
    b.send("bogus", {})
    b.send("ack", None, raw=b"\xc1")
    b.send("control", {"command": "cancel", "job": OTHER})
    b.send("control", {"command": "drainx"})
    b.send("control", {"command": "pause"})
    b.send("artifact_ack", {"job": OTHER, "step": "a", "path": "x", "sha256": "0" * 64,
                            "offset": 5, "done": True})
    b.send("queried", {"seq": 77})
    b.send("triggered", {"job": OTHER, "code": "weird", "message": "x"})
    b.send("error", {"code": "nonsense", "message": "x"})
    b.serve(0.5)
    # 2. an ack past the log, then a job
    b.send("ack", {"seq": 2 ** 64 - 1})
    b.serve(0.3)
    b.on_chunk = lambda c: None
    b.send("dispatch", {"job": JOB, "spec": SPEC})
    b.send("dispatch", {"job": SECOND, "spec": SPEC2})
    b.serve(15, lambda: b.finished() and b.finished(SECOND))
    kinds = [e["type"] for e in b.events if e.get("job") == JOB]
    if not b.finished():
        bad.append("2: the job's events after an ack past the log: got %s" % kinds)
    if not b.finished(SECOND):
        bad.append("2: the job past the capacity: got %s"
                   % [e["type"] for e in b.events if e.get("job") == SECOND])
    # 3. an artifact_ack past the size for 3 s, then the right answers
    b.serve(5, lambda: b.chunks)
    if not b.chunks:
        bad.append("3: no artifact_chunk came")
    else:
        size = b.chunks[0][1]["size"]
        b.on_chunk = lambda c: {k: c[k] for k in ("job", "step", "path", "sha256")} | {
            "offset": size + 100}
        n0 = len(b.chunks)
        b.send("artifact_ack", b.on_chunk(b.chunks[0][1]))
        b.serve(3)
        n = len(b.chunks) - n0
        if n > 6:
            bad.append("3: %d artifact_chunks in 3 s answered past the size: asked at once" % n)
        if n < 1:
            bad.append("3: not asked again after an ack past the size")
        data = b"hi"
        sha = hashlib.sha256(data).hexdigest()

        def right(c):
            held = c["offset"] + len(c.get("data", b""))
            return {k: c[k] for k in ("job", "step", "path", "sha256")} | {
                "offset": held, "done": held == c["size"] and c["sha256"] == sha}
        b.on_chunk = right
        b.serve(5, lambda: b.chunks[-1][1].get("data") == data)
        if b.chunks[-1][1].get("data") != data:
            bad.append("3: the file's bytes never came after the right answers")
    # 4. a welcome past the log
    last = b.events[-1]["seq"] if b.events else 0
    b.send("welcome", {"runner": "x", "seq": last + 1000})
    b.serve(1)
    for why in bad:
        print("FAILED:", why)
    if not bad:
        print("ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""test_artifact_room.py: the broker's artifact_job_max_bytes, counted
over a job's files whole and partial (PROTOCOL.md "Artifacts", 3), as a
runner written from schema/PROTOCOL.md ships them, against a real broker
with no runner process (broker_py.sh starts it; CMakeLists sets
EVRUN_ARTIFACT_JOB_MAX_BYTES=10000 for it).

The room is exact as files come whole, as a piece is held partly, as a
copy replaces an earlier one and as bytes that do not match their sha256
are dropped (refused for good: every byte came to the broker, none lost
in a crash, and sent again they would not match either: the runner's
shipping was stuck on the file for ever); and a file's start costs the
broker the same however many files the job has: it walked the job's
directory at each, so a job of N files cost it N^2 / 2 stats on its loop (2000 files: 13 s of a broker
that served nothing else meanwhile); and a job holds at most 4096 files
begun and not whole (each an inode and a block of the broker's disk,
whatever its bytes).
"""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402
from test_peer_audit import REP, CEP, ask, dealer, ev, hello, recv, send, spec  # noqa: E402
from evrun_client import new_ulid  # noqa: E402

check = Checks("test_artifact_room")
CAP = 10000


def job_on(c, r, name):
    """A job dispatched to and accepted by the runner on r; its id."""
    j = new_ulid()
    ask(c, "submit", {"job": j, "spec": spec(name, labels=["room-x"])})
    send(r, "credit", {"credit": 1})
    t, d = recv(r)
    check(f"{name}: dispatched", t == "dispatch" and d.get("job") == j, repr(t))
    return j, (d or {}).get("spec", {})


class Ship:
    def __init__(self, r, job):
        self.r, self.job = r, job

    def chunk(self, path, data, offset=0, piece=None, sha=None, size=None):
        """One artifact_chunk of the file data at path (piece: the bytes
        sent, None: a probe); its artifact_ack."""
        m = {"job": self.job, "step": "a", "path": path,
             "sha256": sha or hashlib.sha256(data).hexdigest(),
             "size": len(data) if size is None else size, "offset": offset}
        if piece:
            m["data"] = piece
        t, b = ask(self.r, "artifact_chunk", m)
        return b if t == "artifact_ack" else {"unexpected": t, "body": b}

    def whole(self, path, data):
        return self.chunk(path, data, 0, data)


def refusal(size, held):
    return (f"{size} bytes, with the {held} bytes the job holds, over the broker's limit of "
            f"{CAP} bytes a job (its artifact_job_max_bytes setting)")


def test_room(c, r):
    j, sp = job_on(c, r, "room")
    seq = [0]

    def events(*evs):
        out = []
        for t, d in evs:
            seq[0] += 1
            out.append(ev(seq[0], j, seq[0], t, d))
        return ask(r, "events", {"events": out})
    events(("job.accepted", {"pipeline": "room", "spec": sp}), ("job.started", {}))
    s = Ship(r, j)
    check("f1 of 1000 bytes whole: done", s.whole("f1", b"1" * 1000).get("done") is True)
    f2 = b"2" * 9000
    check("f2 of 9000 (room 9000): taken", s.chunk("f2", f2).get("offset") == 0
          and "reason" not in s.chunk("f2", f2))
    check("5000 bytes of f2 held", s.chunk("f2", f2, 0, f2[:5000]).get("offset") == 5000)
    a = s.chunk("f3", b"3" * 4001)
    check("f3 of 4001 with 6000 held: refused, naming 6000", a.get("reason") ==
          refusal(4001, 6000), repr(a))
    a = s.chunk("f3", b"3" * 4000)
    check("f3 of 4000 with 6000 held: taken", "reason" not in a, repr(a))
    check("f1 replaced by a copy of 500: done", s.whole("f1", b"x" * 500).get("done") is True)
    a = s.chunk("f4", b"4" * 4501)
    check("after the replacement the job holds 5500", a.get("reason") == refusal(4501, 5500),
          repr(a))
    bad = b"5" * 100
    a = s.chunk("f5", bad, 0, bad, sha="0" * 64)
    # every byte came to this broker: none was lost in a crash, so the
    # runner's bytes are not those of its sha256, and would not be if sent
    # again (its shipping stuck on the file for ever): refused for good
    check("f5 whose bytes do not match its sha256: refused for good, naming theirs",
          a.get("offset") == 0 and not a.get("done") and a.get("reason") ==
          "the 100 bytes received have the sha256 " + hashlib.sha256(bad).hexdigest()
          + ", not the file's (the runner's copy changed since it was recorded?)", repr(a))
    t, b = ask(c, "fetch", {"job": j, "step": "a", "path": "f5", "sha256": "0" * 64})
    check("... a fetch of that copy says it never comes", t == "error"
          and b.get("code") == "internal" and b.get("message", "").startswith(
              f"the broker refused artifact f5 of step a of job {j} for good (it never "
              "comes): the 100 bytes received"), f"{t} {b!r}")
    empty = s.chunk("f8", b"", sha="1" * 64)
    check("an empty file whose sha256 is not of nothing: refused for good",
          "reason" in empty and not empty.get("done"), repr(empty))
    a = s.chunk("f4", b"4" * 4501)
    check("... its bytes dropped: still 5500", a.get("reason") == refusal(4501, 5500), repr(a))
    a = s.chunk("f4", b"4" * 4500)
    check("f4 of 4500 fits exactly", "reason" not in a, repr(a))
    over = b"6" * 10
    a = s.chunk("f6", over, 0, b"6" * 5)
    check("5 bytes of f6 held", a.get("offset") == 5, repr(a))
    a = s.chunk("f6", over, sha=hashlib.sha256(over).hexdigest(), size=3)
    check("a probe of f6's sha256 saying size 3, 5 bytes held: its partial dropped, offset 0",
          a.get("offset") == 0 and "reason" not in a, repr(a))
    a = s.chunk("f7", b"7" * 4501)
    check("... the dropped partial not counted: 5500", a.get("reason") == refusal(4501, 5500),
          repr(a))


def test_cost(c, r):
    j, sp = job_on(c, r, "room-many")
    ask(r, "events", {"events": [ev(3, j, 1, "job.accepted", {"pipeline": "room-many",
                                                                 "spec": sp}),
                                 ev(4, j, 2, "job.started", {})]})
    s = Ship(r, j)
    times = []  # 2000 files started, as a runner that died mid-file would leave them
    for block in range(2):
        t0 = time.monotonic()
        for i in range(block * 1000, block * 1000 + 1000):
            data = b"%04d" % i     # its first byte only: a partial file each, no fsync
            a = s.chunk(f"m/{i}", data, 0, data[:1])
            if a.get("offset") != 1:
                check(f"file {i} shipped", False, repr(a))
                return
        times.append(time.monotonic() - t0)
    check("files 1000-2000 of a job cost the broker no more than its first 1000 "
          "(it walked the job's files at each)", times[1] < 1.5 * times[0] + 0.5,
          "%.2f s then %.2f s" % tuple(times))
    print("test_artifact_room: 1000 files in %.2f s, the next 1000 in %.2f s" % tuple(times))
    for i in range(2000, 4096):
        data = b"%04d" % i
        a = s.chunk(f"m/{i}", data, 0, data[:1])
        if a.get("offset") != 1:
            check(f"file {i} begun", False, repr(a))
            return
    a = s.chunk("m/4096", b"4096", 0, b"4")
    check("the 4097th file begun and not whole: refused for good",
          a.get("reason") == "the job holds 4096 files begun and not whole already, the "
          "broker's limit", repr(a))
    a = s.chunk("m/0", b"0000", 1, b"000")
    check("... while a file begun goes on", a.get("done") is True, repr(a))
    a = s.whole("m/0", b"zzzz")
    check("a new copy of m/0 replaces the first (the job's files counted again)",
          a.get("done") is True, repr(a))
    a = s.chunk("m/4096", b"4096", 0, b"4")
    check("... one more may begin, 4095 being held", a.get("offset") == 1, repr(a))
    a = s.chunk("m/4097", b"4097", 0, b"4")
    check("... and not another: the count of the files walked again is right",
          (a.get("reason") or "").startswith("the job holds 4096 files begun"), repr(a))


def main():
    c, r = dealer(CEP), dealer(REP)
    t, b = hello(r, "room-r", labels=["room-x", "executor:process"], capacity=2)
    check("hello", t == "welcome", repr(b))
    test_room(c, r)
    test_cost(c, r)
    c.close()
    r.close()
    return check.end()


if __name__ == "__main__":
    sys.exit(main())

"""test_history_pages.py: a `history` page is bounded by the bytes of its
events, not only of their output (PROTOCOL.md `history`, "Flow control":
a page is at most about 12.5 MiB, so a client that keeps one request
outstanding and reads its answer never reaches the 16 MiB its answers
may queue).  Before, only `step.output` bytes counted: a job whose steps
each recorded a `step.outputs` of 64 values of 4 KiB (some 266 KB an
event) gave a page of 70 of them, 18 MB, which the broker could not
queue: the page was cut, `error{unavailable}`, each time it was asked.
A runner written from schema/PROTOCOL.md plays the job against a real
broker (broker_py.sh starts it; no runner process, no podman).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402
from test_peer_audit import CEP, REP, ask, dealer, ev, hello, recv, send, spec, stream  # noqa: E402
from evrun_client import new_ulid  # noqa: E402

check = Checks("test_history_pages")
STEPS = 70
OUTPUTS = {f"K{i}": "v" * 4096 for i in range(64)}


def main():
    c, r = dealer(CEP), dealer(REP)
    hello(r, "hp-r", labels=["hp-only", "executor:process"])
    job = new_ulid()
    steps = [{"name": f"s{i}", "run": "true"} for i in range(STEPS)]
    t, b = ask(c, "submit", {"job": job, "spec": spec("hp", steps=steps, labels=["hp-only"])})
    check("submit: accepted", t == "accepted", f"{t} {b!r}")
    send(r, "credit", {"credit": 1})
    t, d = recv(r)
    check("dispatched", t == "dispatch" and d.get("job") == job, repr(t))
    seq = [0]

    def events(*evs):
        out = []
        for etype, data in evs:
            seq[0] += 1
            out.append(ev(seq[0], job, seq[0], etype, data))
        return ask(r, "events", {"events": out})
    t, b = events(("job.accepted", {"pipeline": "hp", "spec": (d or {}).get("spec")}),
                  ("job.started", {}))
    check("accepted and started", t == "ack", f"{t} {b!r}")
    for i in range(STEPS):
        s = f"s{i}"
        t, b = events(("step.queued", {"step": s, "attempt": 1}),
                      ("step.starting", {"step": s, "attempt": 1, "container": "c"}),
                      ("step.started", {"step": s, "attempt": 1, "container_id": "c"}),
                      ("step.outputs", {"step": s, "attempt": 1, "outputs": OUTPUTS}),
                      ("step.finished", {"step": s, "attempt": 1, "exit_code": 0,
                                         "duration": 1, "status": "succeeded"}))
        if t != "ack" or b.get("seq") != seq[0]:
            check(f"step {s}'s events stored", False, f"{t} {b!r}"[:300])
            return check.end()
    total = seq[0]
    got, pages, sizes, frm = [], 0, [], 1
    while pages < 20:
        send(c, "history", {"job": job, "from": frm})
        page, size = [], 0
        while True:
            t, b = recv(c, 10)
            if t != "event":
                break
            page.append(b["event"]["jseq"])
            size += len(repr(b))
        pages += 1
        sizes.append(size)
        check(f"page {pages} from {frm}: ends with end, not {t}", t == "end",
              f"{t} {b!r}"[:300])
        if t != "end":
            break
        got += page
        if not b.get("more"):
            break
        frm = page[-1] + 1
    check(f"every event once, in jseq order ({len(got)} of {total})",
          got == list(range(1, total + 1)), f"{got[:5]}...{got[-5:]}")
    check(f"more than one page ({pages})", pages > 1)
    check("no page much over 12.5 MiB", all(s < 14 << 20 for s in sizes), repr(sizes))
    return check.end()


if __name__ == "__main__":
    sys.exit(main())

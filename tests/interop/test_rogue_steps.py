"""test_rogue_steps.py: a runner's job.accepted whose spec names a step
twice, against a real broker with no runner process (no podman):
broker_py.sh starts it.

The broker checks a runner's events with the per-field checks and the
job's transitions, not the whole-spec validation of a submit (PROTOCOL.md
"Pipeline spec"), so a rogue runner can have a job.accepted stored whose
steps repeat a name.  When the broker then refuses one of its events and
ends the job `failed` itself (PROTOCOL.md "events"), its own events must
be legal: the events of a repeated name go to its first step, so the
broker must not skip a second step of that name once the first has
ended.  It did: its step.skipped was refused by its own archive and the
job stayed `running` for good.  Written from schema/PROTOCOL.md.
"""
import os
import sys
import time

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402
from evrun_client import new_ulid  # noqa: E402

check = Checks("test_rogue_steps")


def dealer(ep):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 5000)
    s.connect(ep)
    return s


def send(s, mtype, body):
    s.send_multipart([f"evrun1 {mtype}".encode(), msgpack.packb(body, use_bin_type=True)])


def recv(s, skip=("heartbeat",)):
    while True:
        frames = s.recv_multipart()
        mtype = frames[0].decode().split(" ", 1)[1]
        if mtype not in skip:
            return mtype, msgpack.unpackb(frames[-1], raw=False)


def main():
    c, r = dealer(os.environ["EVR_CLIENT_EP"]), dealer(os.environ["EVR_RUNNER_EP"])
    job = new_ulid()
    spec = {"pipeline": "rogue", "executor": "process", "labels": ["rogue-only"],
            "steps": [{"name": "a", "run": "true"}]}
    send(c, "submit", {"job": job, "spec": spec})
    check("submit accepted", recv(c)[0] == "accepted")
    send(r, "hello", {"runner": "rogue-r", "capacity": 1, "version": "test",
                      "labels": ["rogue-only", "executor:process"]})
    check("hello welcomed", recv(r)[0] == "welcome")
    send(r, "credit", {"credit": 1})
    mtype, d = recv(r)
    check("the job dispatched", mtype == "dispatch" and d.get("job") == job, repr(mtype))
    now = time.time_ns()
    twice = dict(spec, steps=[{"name": "a", "run": "true"}, {"name": "a", "run": "true"}])
    evs = [("job.accepted", {"pipeline": "rogue", "spec": twice}),
           ("job.started", {}),
           ("step.queued", {"step": "a", "attempt": 1}),
           ("step.starting", {"step": "a", "attempt": 1, "container": "c"}),
           ("step.started", {"step": "a", "attempt": 1, "container_id": "c"}),
           ("step.finished", {"step": "a", "attempt": 1, "status": "succeeded",
                              "exit_code": 0, "duration": 1}),
           ("step.queued", {"step": "a", "attempt": 1})]   # refused: a has ended
    send(r, "events", {"events": [{"seq": i + 1, "job": job, "jseq": i + 1, "type": t,
                                   "time": now, "data": data}
                                  for i, (t, data) in enumerate(evs)]})
    got = {}
    for _ in range(2):
        mtype, body = recv(r)
        got[mtype] = body
    check("the refused event's job is cancelled on the runner",
          got.get("control", {}).get("command") == "cancel", repr(got))
    check("the batch is acknowledged", got.get("ack", {}).get("seq") == len(evs), repr(got))
    send(c, "status", {"job": job})
    mtype, st = recv(c)
    check("the broker ended the job failed", mtype == "job" and st.get("status") == "failed",
          repr(st))
    check("its reason names the refused event",
          "the broker refused event seq 7 (step.queued) of runner rogue-r" in st.get("reason", ""),
          repr(st.get("reason")))
    send(r, "goodbye", {"seq": len(evs)})
    time.sleep(0.2)
    c.close()
    r.close()
    return check.end()


if __name__ == "__main__":
    sys.exit(main())

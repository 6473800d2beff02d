"""skew_broker.py EP: stands in for evrun-broker on its runner endpoint EP
(binds it), written from schema/PROTOCOL.md alone (pyzmq and msgpack), and
sends one evrun-runner dispatches it cannot decode, as a broker of another
version could have queued them (see "Dispatch" and `job.accepted` there):

  A  a process spec whose artifact path holds a glob (`out/*.xml`), which
     this version's checks refuse: A fails, its job.accepted holding the
     spec's stub (names kept, every run "");
  A  the same bytes again: nothing more is recorded;
  C  a job id that is no ULID: nothing can be recorded for it;
  B  a spec whose pipeline name is no string: B fails, its job.accepted
     holding the stub of no readable spec (pipeline "unreadable", one step
     "unreadable", run "");
  E  a spec of no step: E fails, its stub holding the one step "unreadable";
  F  a spec whose steps are both named "x/y" (names the whole check
     refuses): F fails, its stub holding its pipeline's name and the one
     step "unreadable", not the names no check passed;
  D  a valid process job: it runs (the runner goes on serving).

Welcomes the first runner (seq 0: its whole log comes), acks every batch,
heartbeats every 200 ms.  Prints every job event as JSON on stdout, then
"ok" and exits 0 when every check held; prints "FAILED: ..." and exits 1
otherwise (or after 60 s without D's end).
"""
import json
import re
import sys
import time

import msgpack
import zmq

PROTO = "evrun1"
JOB_A = "01JQ7ZK3M8X2V9T4B6N0C5D7EA"
JOB_B = "01JQ7ZK3M8X2V9T4B6N0C5D7EB"
JOB_D = "01JQ7ZK3M8X2V9T4B6N0C5D7ED"
JOB_E = "01JQ7ZK3M8X2V9T4B6N0C5D7EE"
JOB_F = "01JQ7ZK3M8X2V9T4B6N0C5D7EF"


def send(sock, rid, mtype, body):
    sock.send_multipart([rid, f"{PROTO} {mtype}".encode(),
                         msgpack.packb(body, use_bin_type=True)])


def dispatches(stage):
    """The dispatch bodies of a stage: 0 first, 1 once A has ended."""
    glob = {"job": JOB_A, "args": {"K": "v"},
            "spec": {"pipeline": "skew", "executor": "process",
                     "steps": [{"name": "build", "run": "make",
                                "artifacts": ["out/*.xml"]},
                               {"name": "test", "run": "make test"}]}}
    if stage == 0:
        return [glob]
    return [glob,
            {"job": "not-a-ulid", "spec": {"pipeline": "c", "steps": []}},
            {"job": JOB_B, "spec": {"pipeline": 7, "steps": "none"}},
            {"job": JOB_E, "spec": {"pipeline": "empty", "steps": []}},
            {"job": JOB_F, "spec": {"pipeline": "dup", "executor": "process",
                                    "steps": [{"name": "x/y", "run": "a"},
                                              {"name": "x/y", "run": "b"}]}},
            {"job": JOB_D, "spec": {"pipeline": "after", "executor": "process",
                                    "steps": [{"name": "s", "run": "true"}]}}]


def check(events, version):
    """The checks on the job events got, in runner seq order: failures."""
    bad = []
    by_job = {}
    for ev in events:
        by_job.setdefault(ev.get("job"), []).append(ev)
    kinds = {j: [e["type"] for e in evs] for j, evs in by_job.items()}
    want = "this runner (evrun %s) cannot read the job's dispatch: " % version
    a = by_job.get(JOB_A, [])
    if kinds.get(JOB_A) != ["job.accepted", "job.finished"]:
        bad.append("A: job.accepted and job.finished once each, got %s" % kinds.get(JOB_A))
    else:
        acc, fin = a[0]["data"], a[1]["data"]
        stub = {"pipeline": "skew", "executor": "process",
                "steps": [{"name": "build", "run": ""}, {"name": "test", "run": ""}]}
        if acc.get("pipeline") != "skew" or acc.get("spec") != stub or acc.get("args"):
            bad.append("A: job.accepted holds the stub, no args: %s" % acc)
        reason = fin.get("reason", "")
        if fin.get("status") != "failed" or not reason.startswith(want) or not re.search(
                r'steps\[0\]\.artifacts\.paths\[0\]: "out/\*\.xml" holds a glob character',
                reason):
            bad.append("A: failed, the reason naming the field: %s" % fin)
    b = by_job.get(JOB_B, [])
    if kinds.get(JOB_B) != ["job.accepted", "job.finished"]:
        bad.append("B: job.accepted and job.finished once each, got %s" % kinds.get(JOB_B))
    else:
        acc, fin = b[0]["data"], b[1]["data"]
        if acc.get("pipeline") != "unreadable" or acc.get("spec") != {
                "pipeline": "unreadable", "steps": [{"name": "unreadable", "run": ""}]}:
            bad.append("B: job.accepted holds the stub of no spec: %s" % acc)
        if fin.get("status") != "failed" or not fin.get("reason", "").startswith(
                want + "dispatch.spec.pipeline: "):
            bad.append("B: failed, the reason naming the field: %s" % fin)
    e = by_job.get(JOB_E, [])
    if [x["type"] for x in e] != ["job.accepted", "job.finished"] or e[0]["data"].get("spec") != {
            "pipeline": "empty", "steps": [{"name": "unreadable", "run": ""}]} or \
            not e[1]["data"].get("reason", "").startswith(want + "dispatch.spec: "):
        bad.append("E: failed, its stub with the step unreadable: %s" % e)
    f = by_job.get(JOB_F, [])
    if [x["type"] for x in f] != ["job.accepted", "job.finished"] or f[0]["data"].get("spec") != {
            "pipeline": "dup", "steps": [{"name": "unreadable", "run": ""}]} or \
            not f[1]["data"].get("reason", "").startswith(want + "dispatch.spec: "):
        bad.append("F: failed, its stub with no unchecked step name: %s" % f)
    if kinds.get(JOB_D, [None])[-1:] != ["job.finished"] or \
            by_job[JOB_D][-1]["data"].get("status") != "succeeded":
        bad.append("D: the valid job after them succeeded, got %s" % kinds.get(JOB_D))
    others = set(by_job) - {JOB_A, JOB_B, JOB_D, JOB_E, JOB_F, None}
    if others:
        bad.append("no event of another job (the bad id): %s" % sorted(others))
    order = [e["job"] for e in events if e.get("job") in (JOB_A, JOB_B)]
    if order != [JOB_A, JOB_A, JOB_B, JOB_B]:
        bad.append("A's refusal before B's, nothing in between: %s" % order)
    return bad


def main():
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(sys.argv[1])
    runner, version, stage, held = None, None, 0, 0
    events = []
    until = time.monotonic() + 60
    beat = 0.0
    while time.monotonic() < until:
        if runner and time.monotonic() >= beat:
            send(sock, runner, "heartbeat", {})
            beat = time.monotonic() + 0.2
        if not sock.poll(100):
            continue
        frames = sock.recv_multipart()
        rid, hdr, body = frames[0], frames[1].decode(), msgpack.unpackb(frames[-1], raw=False)
        mtype = hdr.split(" ", 1)[1]
        if mtype == "hello" and runner is None:
            runner, version = rid, body["version"]
            send(sock, rid, "welcome", {"runner": body["runner"], "seq": 0})
            for d in dispatches(0):
                send(sock, rid, "dispatch", d)
        elif mtype == "events" and rid == runner:
            for ev in body["events"]:
                if ev["seq"] != held + 1:
                    continue    # a resend of what we hold (or a gap: it comes again)
                held = ev["seq"]
                if ev.get("job"):
                    events.append(ev)
                    print(json.dumps(ev, sort_keys=True), flush=True)
            send(sock, rid, "ack", {"seq": held})
            ended = {e["job"] for e in events if e["type"] == "job.finished"}
            if stage == 0 and JOB_A in ended:
                stage = 1
                for d in dispatches(1):
                    send(sock, rid, "dispatch", d)
            if JOB_D in ended:
                time.sleep(0.5)     # anything the runner still sends comes too
                while sock.poll(100):
                    more = sock.recv_multipart()
                    if more[1].decode().endswith(" events"):
                        for ev in msgpack.unpackb(more[-1], raw=False)["events"]:
                            if ev.get("job") and ev["seq"] > held:
                                events.append(ev)
                                print(json.dumps(ev, sort_keys=True), flush=True)
                bad = check(events, version)
                for b in bad:
                    print("FAILED: " + b, flush=True)
                if not bad:
                    print("ok", flush=True)
                return 1 if bad else 0
    print("FAILED: timed out at stage %d, %d job events" % (stage, len(events)), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())

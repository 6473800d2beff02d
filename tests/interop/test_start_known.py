"""test_start_known.py: a `start` sent again with the id of the job it
started is answered `accepted{existing: true}` (PROTOCOL.md `start`: "a
known job id is answered accepted with existing"), also once the
registered pipeline's file was removed.  Before, the pipeline was looked
up first, so a client (evrun-gateway resending a webhook's start, a
script retrying after a timeout) was told `not_found` about a job that
was queued, and took it for one never started.  Its args are still bound
first, as a resubmit's are (Decisions, "A resubmit").  So for a
runner's `trigger` sent again (a step's `evrun-job trigger` retried):
"a known id is answered triggered with existing" (PROTOCOL.md
`trigger`), not `not_found` once the pipeline is gone.  A real broker
with no runner (no podman): broker_py.sh starts it.  Written from
schema/PROTOCOL.md, with the peer audit's helpers.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402
from test_peer_audit import CEP, REP, ask, dealer, ev, hello, recv, send, spec, stream  # noqa: E402
from evrun_client import new_ulid  # noqa: E402

check = Checks("test_start_known")
PIPE = """pipeline: sk
executor: process
labels: [sk-nobody]
args:
  WHO: { default: w }
steps:
  - name: a
    run: echo $WHO
"""


def write(pdir, name, text):
    """The file written whole (renamed into place), as an editor would."""
    tmp = os.path.join(pdir, "." + name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(pdir, name))


def pipelines(c):
    items, t, _ = stream(c, "pipelines")
    return {x[1].get("pipeline"): x[1] for x in items} if t == "end" else {}


def wait_for(what, cond):
    for _ in range(100):
        if cond():
            return True
        time.sleep(0.05)
    check(what, False, "not within 5 s")
    return False


def main():
    c = dealer(CEP)
    # broker_py.sh's state directory holds the broker's pipelines directory
    pdir = os.path.join(os.path.dirname(os.path.dirname(CEP[len("ipc://"):])), "pipelines")
    os.makedirs(pdir, exist_ok=True)
    write(pdir, "sk.yml", PIPE)
    if not wait_for("the pipeline registers", lambda: "sk" in pipelines(c)):
        return check.end()
    j = new_ulid()
    t, b = ask(c, "start", {"job": j, "pipeline": "sk", "args": {"WHO": "x"}})
    check("start: accepted", t == "accepted" and b.get("job") == j and not b.get("existing"),
          f"{t} {b!r}")
    t, b = ask(c, "start", {"job": j, "pipeline": "sk", "args": {"WHO": "x"}})
    check("the same start again: existing", t == "accepted" and b.get("existing") is True,
          f"{t} {b!r}")
    # a runner's job whose step triggers sk
    r = dealer(REP)
    hello(r, "sk-r", labels=["sk-parent", "executor:process"])
    parent = new_ulid()
    ask(c, "submit", {"job": parent, "spec": spec("skp", labels=["sk-parent"])})
    send(r, "credit", {"credit": 1})
    t, d = recv(r)
    check("the parent is dispatched", t == "dispatch" and d.get("job") == parent, repr(t))
    t, b = ask(r, "events", {"events": [
        ev(1, parent, 1, "job.accepted", {"pipeline": "skp", "spec": (d or {}).get("spec")}),
        ev(2, parent, 2, "job.started", {})]})
    check("the parent runs", t == "ack" and b.get("seq") == 2, f"{t} {b!r}")
    child = new_ulid()
    trig = {"job": child, "pipeline": "sk", "parent_job": parent, "parent_step": "a"}
    t, b = ask(r, "trigger", trig)
    check("trigger: the child accepted", t == "triggered" and b.get("job") == child
          and "code" not in b and not b.get("existing"), f"{t} {b!r}")
    # the file changed: WHO is no longer declared, so the args sent would not bind
    write(pdir, "sk.yml", PIPE.replace("args:\n  WHO: { default: w }\n", ""))
    wait_for("the new version registers", lambda: "args" not in pipelines(c).get("sk", {"args": 1}))
    t, b = ask(c, "start", {"job": new_ulid(), "pipeline": "sk", "args": {"WHO": "x"}})
    check("a new id with an arg the new version lacks: bad_request",
          t == "error" and b.get("code") == "bad_request", f"{t} {b!r}")
    t, b = ask(c, "start", {"job": j, "pipeline": "sk", "args": {"WHO": "x"}})
    check("the first start again once its args no longer bind: bad_request, as a "
          "resubmit's (Decisions, A resubmit)", t == "error"
          and b.get("code") == "bad_request", f"{t} {b!r}")
    t, b = ask(c, "start", {"job": j, "pipeline": "sk"})
    check("... and without them: existing", t == "accepted" and b.get("existing") is True,
          f"{t} {b!r}")
    # the file removed: no pipeline of that name
    os.unlink(os.path.join(pdir, "sk.yml"))
    wait_for("the pipeline goes", lambda: "sk" not in pipelines(c))
    t, b = ask(c, "start", {"job": new_ulid(), "pipeline": "sk"})
    check("a new id of the removed pipeline: not_found",
          t == "error" and b.get("code") == "not_found", f"{t} {b!r}")
    t, b = ask(c, "start", {"job": j, "pipeline": "sk", "args": {"WHO": "x"}})
    check("the first start again once its pipeline is gone: existing",
          t == "accepted" and b.get("existing") is True, f"{t} {b!r}")
    t, b = ask(r, "trigger", trig)
    check("the trigger again once its pipeline is gone: existing", t == "triggered"
          and b.get("job") == child and b.get("existing") is True and "code" not in b,
          f"{t} {b!r}")
    t, b = ask(r, "trigger", dict(trig, job=new_ulid()))
    check("a trigger of a new id of the removed pipeline: not_found", t == "triggered"
          and b.get("code") == "not_found", f"{t} {b!r}")
    t, b = ask(c, "status", {"job": j})
    check("the job is the first start's, queued", t == "job" and b.get("pipeline") == "sk"
          and b.get("status") == "queued", f"{t} {b!r}")
    return check.end()


if __name__ == "__main__":
    sys.exit(main())

"""bus_trigger.py BIN_DIR [CASE ...]: a runner's trigger and the ids
retention removed, against a real evrun-broker (ipc:// sockets, a
temporary state directory) whose runners are played on its runner socket
(bus_control.py's FakeRunner), with the client of tests/interop (written
from schema/PROTOCOL.md).  No podman is needed.

Cases:
  file_dispatched  a file trigger for a parent dispatched to the runner
                   (its job.accepted not sent yet) is checked against the
                   dispatched spec's triggers: (taken; a file no entry
                   matches: conflict); so after job.accepted, and after
                   the parent finished; a resend is existing
  codes            the refusals' codes: a spec without file, or of another
                   pipeline: bad_request; a parent the broker never saw:
                   not_found; a parent waiting in the queue, or running on
                   another runner: conflict; no such registered pipeline:
                   not_found
  lost_retry       a follow-up whose step retries on lost, lost with its
                   runner: its retry is queued from its submit as sent (its
                   parent kept), listed among the parent's children, and
                   at the lost job's depth in the chain (reclaim 1 s)
  retention        with keep_per_pipeline 1, the ids of jobs retention
                   removed are refused (conflict, naming retention) by
                   submit, start and trigger: never queued again; a new id
                   is taken, a kept one answered existing
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bus_control import (Broker, FakeRunner, answer, cases_asked, check, run_case,  # noqa: E402
                         spec_for, summary)
from evrun_client import Client, make_spec, make_step, new_ulid  # noqa: E402

REG = """pipeline: reg
executor: process
steps:
  - name: x
    run: "true"
"""


def parent_spec(label):
    return spec_for(label) | {"pipeline": "par", "triggers": ["dep", "file:ci/*.yml"]}


def file_spec():
    return make_spec("fp", [make_step("x", "true")]) | {"executor": "process"}


def trigger(r, parent, job=None, **fields):
    """The broker's `triggered` answer to a trigger of r for parent:
    (job, code, message, existing)."""
    job = job or new_ulid()
    body = {"job": job, "pipeline": "fp", "spec": file_spec(), "file": "ci/a.yml",
            "parent_job": parent, "parent_step": "go"}
    body.update(fields)
    for k in [k for k, v in body.items() if v is None]:
        del body[k]
    r.c.send("trigger", body)
    _, b = r.wait("triggered")
    return b.get("job"), b.get("code"), b.get("message", ""), bool(b.get("existing"))


def dispatched(r, c, spec):
    job = new_ulid()
    c.submit(job, spec)
    _, b = r.wait("dispatch")
    assert b.get("job") == job, b
    return job


def accepted_parent(br, c, rid):
    """A runner rid (label lt, 2 slots) and a parent job it has accepted:
    (runner, parent)."""
    r = FakeRunner(br, rid, ["lt"])
    r.connect()
    r.credit(2)
    p = dispatched(r, c, parent_spec("lt"))
    r.accept(p, parent_spec("lt"))
    return r, p


def case_file_dispatched(br):
    c = Client(br.clients)
    r = FakeRunner(br, "trg-f", ["lt"])
    r.connect()
    r.credit(2)
    p = dispatched(r, c, parent_spec("lt"))
    first = new_ulid()
    t = trigger(r, p, first)
    check("dispatched parent: a file its triggers: match is taken", t[:2] == (first, None), t)
    t = trigger(r, p, file="ci/sub/b.yml")
    check("... one no entry matches (* stays in one component): conflict",
          t[1] == "conflict" and f"file ci/sub/b.yml is not in the triggers: of job {p}" == t[2],
          t)
    t = trigger(r, p, file="other.yml")
    check("... other.yml: conflict", t[1] == "conflict" and "is not in the triggers:" in t[2], t)
    r.accept(p, parent_spec("lt"))
    t = trigger(r, p, file="ci/c.yml")
    check("accepted parent: taken", t[1] is None and not t[3], t)
    t = trigger(r, p, first)
    check("the first trigger sent again: existing", t == (first, None, "", True), t)
    r.events(p, ("job.finished", {"status": "succeeded"}))
    t = trigger(r, p, file="ci/d.yml")
    check("finished parent (the archive's spec): taken", t[1] is None, t)
    t = trigger(r, p, file="x.yml")
    check("... a file it does not name: conflict", t[1] == "conflict", t)
    c.close()
    r.c.close()


def case_codes(br):
    c = Client(br.clients)
    r, p = accepted_parent(br, c, "trg-c")
    t = trigger(r, p, file=None)
    check("a spec without file: bad_request",
          t[1:3] == ("bad_request", "trigger.file: required with trigger.spec"), t)
    t = trigger(r, p, pipeline="other")
    check("a spec of another pipeline: bad_request",
          t[1] == "bad_request" and t[2].startswith("trigger.pipeline: other is not"), t)
    t = trigger(r, p, spec=None)   # its file would be dropped, a registered pipeline started
    check("a file without spec: bad_request",
          t[1:3] == ("bad_request", "trigger.file: only with trigger.spec (the file's pipeline)"),
          t)
    made_up = new_ulid()
    t = trigger(r, made_up)
    check("a parent the broker never saw: not_found", t[1] == "not_found"
          and f"job {made_up} is not known to the broker as a job of runner trg-c (no such job)"
          in t[2], t)
    waiting = new_ulid()
    c.submit(waiting, parent_spec("nobody"))
    t = trigger(r, waiting)
    check("a parent waiting in the queue: conflict",
          t[1] == "conflict" and "(it waits in the queue)" in t[2], t)
    other = FakeRunner(br, "trg-o", ["lo"])
    other.connect()
    t = trigger(other, p)
    check("a parent of another runner: conflict", t[1] == "conflict" and
          f"job {p} does not run on runner trg-o: it triggers nothing there (it runs on trg-c)"
          == t[2], t)
    t = trigger(r, p, pipeline="nonesuch", spec=None, file=None)
    check("no such registered pipeline: not_found",
          t[1] == "not_found" and "no registered pipeline \"nonesuch\"" in t[2], t)
    t = trigger(r, p, pipeline="reg", spec=None, file=None)
    check("a registered pipeline: taken", t[1] is None, t)
    c.close()
    r.c.close()
    other.c.close()


def kv_dump(br):
    import subprocess
    return subprocess.run(["mdb_dump", "-p", "-s", "kv", f"{br.root}/broker"],
                          capture_output=True, text=True).stdout


def case_lost_retry(br):
    import time
    c = Client(br.clients)
    r, p = accepted_parent(br, c, "trg-l")
    kid_spec = file_spec()
    kid_spec["steps"][0]["retry"] = {"on": ["lost"], "max": 1}
    kid, code, msg, _ = trigger(r, p, spec=kid_spec)
    check("lost retry: the follow-up is taken", code is None, (code, msg))
    w = FakeRunner(br, "trg-w", ["executor:process"])
    w.connect()
    w.credit(1)
    _, d = w.wait("dispatch")
    check("lost retry: the follow-up dispatched, its parent with it",
          d.get("job") == kid and d.get("parent_job") == p, d)
    w.accept(kid, d.get("spec"))
    w.events(kid, ("step.queued", {"step": "x", "attempt": 1}),
             ("step.starting", {"step": "x", "attempt": 1, "container": "u"}),
             ("step.started", {"step": "x", "attempt": 1, "container_id": "c"}))
    w.c.close()                                 # silent: lost, then its jobs taken
    retry = None
    end = time.time() + 15
    while time.time() < end and not retry:
        st = c.status(kid)
        if st.get("status") == "lost" and "queued again as " in st.get("reason", ""):
            retry = st["reason"].split("queued again as ")[1].split(" ")[0]
        time.sleep(0.1)
    check("lost retry: the follow-up ends lost, queued again", retry is not None, c.status(kid))
    if not retry:
        return
    kids = c.status(p).get("children", [])
    check("lost retry: the retry is among the parent's children", retry in kids, kids)
    check("lost retry: the retry's parent is the lost job's",
          c.status(retry).get("parent_job") == p, c.status(retry))
    dump = kv_dump(br)
    check("lost retry: the retry is at the lost job's depth in the chain (1)",
          f" depth/{retry}\n 1\n" in dump, dump[-600:])
    c.close()
    r.c.close()


def case_retention(br):
    c = Client(br.clients)
    ids = [new_ulid() for _ in range(3)]
    for j in ids:
        c.submit(j, make_spec("ret", [make_step("a", "true")], image="img", labels=["nobody"]))
        c.cancel(j, "done")
    _, b = c.request("prune", {}, expect=("pruned",))
    check("prune: the two older removed (keep_per_pipeline 1)", b.get("jobs") == 2, b)
    gone, kept = ids[0], ids[2]
    a = answer(c, "status", {"job": gone})
    check("status of a removed job: not_found, removed by retention",
          a[0] == "error" and a[1].startswith("not_found:") and "removed by retention" in a[1], a)
    spec = make_spec("ret", [make_step("a", "true")], image="img", labels=["nobody"])
    a = answer(c, "submit", {"job": gone, "spec": spec})
    check("submit of a removed id: conflict, naming retention", a[0] == "error"
          and a[1].startswith(f"conflict: submit.job: job {gone} may have run already and "
                              "been removed by retention (the broker has removed 2 finished "
                              f"jobs, up to {ids[1]}): not queued again"), a)
    a = answer(c, "status", {"job": gone})
    check("... nothing queued: still not_found", a[0] == "error"
          and a[1].startswith("not_found:"), a)
    a = answer(c, "start", {"job": ids[1], "pipeline": "reg"})
    check("start with a removed id: conflict", a[0] == "error"
          and a[1].startswith(f"conflict: start.job: job {ids[1]} may have run already"), a)
    try:
        _, b = c.request("submit", {"job": kept, "spec": spec}, expect=("accepted",))
        check("a kept id: accepted, existing", b.get("existing") is True, b)
        fresh = new_ulid()
        _, b = c.request("submit", {"job": fresh, "spec": spec}, expect=("accepted",))
        check("a new id: accepted, not existing", not b.get("existing"), b)
    except Exception as e:      # noqa: BLE001
        check("kept and new ids accepted", False, repr(e))
    r = FakeRunner(br, "trg-r", ["lt"])
    r.connect()
    r.credit(2)
    p = dispatched(r, c, parent_spec("lt"))
    r.accept(p, parent_spec("lt"))
    t = trigger(r, p, gone, pipeline="reg", spec=None, file=None)
    check("a trigger naming a removed id: conflict", t[1] == "conflict"
          and t[2].startswith(f"trigger.job: job {gone} may have run already"), t)
    t = trigger(r, p, ids[1])
    check("... a file trigger too", t[1] == "conflict" and "removed by retention" in t[2], t)
    a = answer(c, "status", {"job": gone})
    check("... nothing queued", a[0] == "error" and a[1].startswith("not_found:"), a)
    t = trigger(r, p, pipeline="reg", spec=None, file=None)
    check("a trigger with a new id: taken", t[1] is None, t)
    c.close()
    r.c.close()


CASES = {"file_dispatched": (case_file_dispatched, ()), "codes": (case_codes, ()),
         "lost_retry": (case_lost_retry, ("--reclaim-ms", "1000")),
         "retention": (case_retention, ("--retention-keep-per-pipeline", "1",
                                        "--retention-interval", "1h"))}


def main():
    import tempfile
    bin_dir, names = cases_asked(__doc__, CASES)
    if bin_dir is None:
        return 2
    for name in names:
        root = tempfile.mkdtemp(prefix="evr-trg-", dir="/tmp")
        os.mkdir(f"{root}/pipelines", 0o700)
        with open(f"{root}/pipelines/reg.yml", "w") as f:
            f.write(REG)
        fn, args = CASES[name]
        run_case(name, Broker(bin_dir, root, args), fn, settle=0.1)
    return summary()


if __name__ == "__main__":
    sys.exit(main())

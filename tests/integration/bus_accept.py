"""bus_accept.py BIN_DIR [CASE ...]: how a real evrun-broker takes a
runner's job.accepted (and a job's end), with runners played on its runner
socket by this script and the client of tests/interop (written from
schema/PROTOCOL.md).  No podman is needed.

Cases:
  refused_own    a job.accepted the archive refuses (naming another runner,
                 jseq 2, no steps), from the runner the job was dispatched
                 to: the job ends failed (the broker's events, the reason
                 naming the refusal), the runner's slot is free, its later
                 events of the job are acked and not stored
  no_runner      a job.accepted without `runner` is the sender's: status
                 names it, a cancel reaches it
  elsewhere      a runner never sent the job sends its job.accepted while the
                 job is dispatched to another: refused, told to cancel; the
                 other's is taken
  never_sent     a runner sends the job.accepted (another pipeline, its own
                 steps) of a job waiting in the queue and of a paused one,
                 neither dispatched to it: refused, told to cancel, the jobs
                 keep their pipeline, their pause and no runner; the job is
                 still dispatched to a runner with its labels and taken
  hello_again    a runner says hello again while a job's dispatch is on its
                 way (the job waits again), then sends its job.accepted: the
                 job is its (running there, its slot taken); one paused
                 meanwhile is refused, told to cancel, and stays paused
  restart        as hello_again, with the broker killed (SIGKILL) and started
                 again between the job's return to the queue and the
                 job.accepted: a job sent to h1, then h2, waits again; after
                 the restart h1's job.accepted is taken (the runners a job
                 was sent to are in its queue record); one paused meanwhile
                 is refused as put back and paused, not as never sent; a
                 job never sent waits on
  cancel_restart a cancel of a job dispatched and not accepted yet (`ok`),
                 then the broker killed (SIGKILL) and started again: the
                 runner that did not take it says hello: the job ends
                 cancelled with the cancel's reason (not dispatched
                 again); the runner that did, resends its job.accepted:
                 it is told to cancel, with that reason
  interrupt_restart  submits of a `queue.interrupt` pipeline, each
                 interrupting the one before while it is dispatched and not
                 accepted yet (`accepted`), then the broker killed
                 (SIGKILL) and started again: as cancel_restart, with the
                 reasons "interrupted by JOB": the runner that did not take
                 its job ends it cancelled, the one that did is told to
                 cancel; the last job runs
  policy_kill    a submit of a `replace` (limit 1) `interrupt` pipeline with
                 the broker killed (SIGKILL) between its journal write and
                 the flush (EVR_TEST_SUBMIT_DELAY_MS), after a job
                 dispatched and not accepted was interrupted and while one
                 waits: after the restart the waiting one is cancelled
                 "replaced by" the new job, the dispatched one's runner is
                 told to cancel ("interrupted by" the job after it), the new
                 job is queued (taken up from the journal) and runs
  held_restart   a `queue.interrupt` submit while the running job it
                 interrupts has its runner lost (the cancel held for it),
                 then the broker killed (SIGKILL) and started again: the
                 runner, back, is told to cancel ("interrupted by JOB");
                 a held cancel sent is not sent again after a second
                 restart (lease 0.8 s)
  accept_kill    a cancel of a job dispatched and not accepted yet, then its
                 job.accepted: the runner is told to cancel before the job's
                 queue record goes; the broker killed (SIGKILL) right after
                 (EVR_TEST_ACCEPT_DELAY_MS) finds the record at its restart
                 with the archive holding the job: the cancel is held, and
                 the runner, back, is told to cancel again with its reason
                 (and the force of a second cancel)
  submit_kill    8 clients submitting at once to a broker that flushes its
                 journal (no --no-sync; libevr_unflushed.so: writes not
                 flushed are lost at a SIGKILL, as by a power loss) while a
                 runner takes dispatches and ends them (writes of the queue
                 table amid the journal's batches and checkpoints); the
                 broker killed (SIGKILL) amid them: after a restart every
                 acknowledged job is known, none lost
  lost_back      runners lost past reclaim_ms come back and send the
                 job.accepted of a job dispatched meanwhile to another runner:
                 not taken, each told to cancel; the other's is taken (lease
                 1 s, reclaim 2 s)
  finished       job.finished{succeeded} with a step running, or without
                 job.started, and a job.accepted whose pipeline is not its
                 spec's: refused, the job ends failed; a runner's own
                 sequences (a refusal, a cancel, a success) are taken
"""
import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bus_control import (Broker, FakeRunner, answer, cases_asked, check,  # noqa: E402
                         run_case, summary)
from evrun_client import Client, make_spec, make_step, new_ulid  # noqa: E402


def pspec(label, pipeline="pp"):
    spec = make_spec(pipeline, [make_step("a", "true")], labels=[label])
    spec["executor"] = "process"
    return spec


def runner(br, rid, label, capacity=1):
    r = FakeRunner(br, rid, ["executor:process", label], capacity=capacity)
    r.connect()
    return r


def send(r, *evs):
    """One batch of (job, jseq, type, data), each the runner's next seq;
    waits for its ack (what else came is kept in r.got)."""
    batch = []
    for job, jseq, typ, data in evs:
        r.seq += 1
        batch.append({"seq": r.seq, "job": job, "jseq": jseq, "type": typ,
                      "time": time.time_ns(), "data": data})
    r.c.send("events", {"events": batch})
    return r.wait("ack")[1].get("seq")


def dispatch(c, r, label, pipeline="pp"):
    """A job submitted and dispatched to r: (job, the dispatch's spec)."""
    job = new_ulid()
    c.submit(job, pspec(label, pipeline))
    _, b = r.wait("dispatch")
    assert b.get("job") == job, b
    return job, b.get("spec")


def cancels(msgs):
    return [(b.get("job"), b.get("reason", "")) for t, b in msgs
            if t == "control" and b.get("command") == "cancel"]


def runner_row(c, rid):
    items, _ = c.runners()
    return next((x for x in items if x.get("runner") == rid), {})


def wait_for(fn, secs=5.0):
    end = time.time() + secs
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.05)
    return fn()


def restart_with(br, **env):
    """The broker stopped and started again with env set for it alone."""
    br.stop()
    was = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        br.start()
    finally:
        for k, v in was.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


def log_has(br, text):
    with open(f"{br.root}/broker.log") as f:
        return text in f.read()


def case_refused_own(br):
    c = Client(br.clients)
    r = runner(br, "r3", "r3")
    r.credit(1)
    variants = [("naming another runner", lambda s: ({"runner": "other"}, 1, s),
                 "names runner other, but comes from runner r3"),
                ("with jseq 2", lambda s: ({}, 2, s), "per-job seq 1 expected"),
                ("with no steps", lambda s: ({}, 1, dict(s, steps=[])), "carries no steps")]
    for name, make, why in variants:
        job, spec = dispatch(c, r, "r3")
        extra, jseq, sp = make(spec)
        seq = send(r, (job, jseq, "job.accepted", dict({"pipeline": "pp", "spec": sp}, **extra)))
        got = cancels(r.pending(0.3))
        check(f"{name}: the runner is told to cancel, naming the refused event",
              len(got) == 1 and got[0][0] == job
              and f"the broker refused event seq {seq} (job.accepted) of runner r3" in got[0][1]
              and why in got[0][1] and got[0][1].endswith("the job is ended here"), got)
        st = c.status(job)
        check(f"{name}: the job ended failed, the reason naming the refusal",
              st.get("status") == "failed" and not st.get("runner")
              and f"the broker refused event seq {seq} (job.accepted)" in st.get("reason", ""),
              st)
        row = runner_row(c, "r3")
        check(f"{name}: the runner's slot is free", not row.get("running")
              and row.get("state") == "idle", row)
        # the runner obeys: its own events of the job are acked, not stored
        n = len(c.history_all(job))
        send(r, (job, jseq + 1, "job.cancel_requested", {"reason": "told"}),
             (job, jseq + 2, "job.finished", {"status": "cancelled", "reason": "told"}))
        check(f"{name}: its later events acked, nothing more asked of it", r.pending(0.3) == [])
        check(f"{name}: ... and not stored", len(c.history_all(job)) == n == 2
              and c.status(job).get("status") == "failed")
        check(f"{name}: the broker logged it", log_has(br, f"job {job}: r3 finished its copy"))
        r.credit(1)
    # the slot serves the next job as usual
    job, spec = dispatch(c, r, "r3")
    send(r, (job, 1, "job.accepted", {"pipeline": "pp", "spec": spec, "runner": "r3"}))
    check("the next job is dispatched to it and taken", c.status(job).get("runner") == "r3")
    c.close()
    r.c.close()


def case_no_runner(br):
    c = Client(br.clients)
    r = runner(br, "rn", "rn")
    r.credit(1)
    job, spec = dispatch(c, r, "rn")
    send(r, (job, 1, "job.accepted", {"pipeline": "pp", "spec": spec}),
         (job, 2, "job.started", {}))
    st = c.status(job)
    check("status: running on the sender", st.get("status") == "running"
          and st.get("runner") == "rn", st)
    ev = c.history_all(job)[0]
    check("its stored job.accepted names the sender", ev["data"].get("runner") == "rn", ev)
    a = c.cancel(job)
    check("cancel: sent to it", "cancel sent to runner rn" in a.get("message", ""), a)
    check("the runner got the cancel", [j for j, _ in cancels(r.pending(0.3))] == [job])
    c.close()
    r.c.close()


def case_elsewhere(br):
    c = Client(br.clients)
    a = runner(br, "fr8a", "fr8")
    b = runner(br, "fr8b", "other")
    a.credit(1)
    job, spec = dispatch(c, a, "fr8")
    seq = send(b, (job, 1, "job.accepted", {"pipeline": "pp", "spec": spec, "runner": "fr8b"}))
    got = cancels(b.pending(0.3))
    check("fr8b's job.accepted: refused, fr8b told to cancel",
          len(got) == 1 and got[0][0] == job and f"refused event seq {seq} (job.accepted)" in
          got[0][1] and "but the job is dispatched to runner fr8a" in got[0][1], got)
    st = c.status(job)
    check("the job still waits for fr8a", st.get("status") == "queued"
          and st.get("runner") == "fr8a", st)
    send(a, (job, 1, "job.accepted", {"pipeline": "pp", "spec": spec, "runner": "fr8a"}),
         (job, 2, "job.started", {"runner": "fr8a"}))
    st = c.status(job)
    check("fr8a's own is taken: running there", st.get("status") == "running"
          and st.get("runner") == "fr8a", st)
    check("fr8a was told nothing", cancels(a.pending(0.2)) == [])
    send(b, (job, 2, "job.cancel_requested", {}), (job, 3, "job.finished",
                                                   {"status": "cancelled"}))
    check("fr8b's later events of it: acked, nothing more asked", b.pending(0.3) == [])
    check("... and the job is fr8a's still", c.status(job).get("status") == "running")
    c.close()
    a.c.close()
    b.c.close()


def case_never_sent(br):
    c = Client(br.clients)
    t = runner(br, "t1", "t1")
    t.credit(1)
    waiting, paused = new_ulid(), new_ulid()
    c.submit(waiting, pspec("nobody"))          # no runner has its label
    c.submit(paused, pspec("nobody"))
    c.pause(paused)
    forged = make_spec("forged", [make_step("evil", "x")], labels=["t1"])
    forged["executor"] = "process"
    for job, how in ((waiting, ""), (paused, ", paused")):
        seq = send(t, (job, 1, "job.accepted", {"pipeline": "forged", "spec": forged,
                                                "runner": "t1"}))
        got = cancels(t.pending(0.3))
        check(f"never sent{how}: refused, told to cancel",
              len(got) == 1 and got[0][0] == job
              and f"refused event seq {seq} (job.accepted)" in got[0][1]
              and f"but the job was not dispatched to it: it waits in the queue{how};" in got[0][1],
              got)
        st = c.status(job)
        check(f"never sent{how}: the job keeps its pipeline, no runner",
              st.get("pipeline") == "pp" and not st.get("runner")
              and st.get("status") == ("paused" if how else "queued"), st)
        check(f"never sent{how}: nothing stored", c.history_all(job) == [])
    # the waiting one still goes to a runner with its labels, which takes it
    d = runner(br, "d1", "nobody")
    d.credit(1)
    _, b = d.wait("dispatch")
    check("the waiting job is dispatched to a runner with its labels", b.get("job") == waiting, b)
    send(d, (waiting, 1, "job.accepted", {"pipeline": "pp", "spec": b.get("spec"),
                                          "runner": "d1"}))
    st = c.status(waiting)
    check("... and taken there", st.get("runner") == "d1", st)
    c.close()
    t.c.close()
    d.c.close()


def case_hello_again(br):
    c = Client(br.clients)
    h = runner(br, "h1", "h1", capacity=2)
    h.credit(1)
    job, spec = dispatch(c, h, "h1")
    h.connect()                                 # its log holds no job.accepted of it
    check("hello again: the job waits again", wait_for(
        lambda: c.status(job).get("status") == "queued" and not c.status(job).get("runner")),
        c.status(job))
    send(h, (job, 1, "job.accepted", {"pipeline": "pp", "spec": spec, "runner": "h1"}))
    got = cancels(h.pending(0.3))
    st = c.status(job)
    check("hello again: its job.accepted is taken, not refused",
          got == [] and st.get("runner") == "h1", (got, st))
    check("hello again: the job.accepted is stored",
          [e.get("type") for e in c.history_all(job)] == ["job.accepted"], c.history_all(job))
    # a second job: sent, the runner says hello again, the job is paused,
    # then its job.accepted comes
    h.credit(1)
    held, spec2 = dispatch(c, h, "h1")
    h.connect()
    check("hello again: the second job waits again",
          wait_for(lambda: c.status(held).get("status") == "queued"), c.status(held))
    c.pause(held)
    seq = send(h, (held, 1, "job.accepted", {"pipeline": "pp", "spec": spec2, "runner": "h1"}))
    got = cancels(h.pending(0.3))
    check("paused after it was sent: refused, told to cancel",
          len(got) == 1 and got[0][0] == held
          and f"refused event seq {seq} (job.accepted)" in got[0][1]
          and "but the job was put back in the queue and paused there" in got[0][1], got)
    st = c.status(held)
    check("paused after it was sent: it stays paused, no runner, nothing stored",
          st.get("status") == "paused" and not st.get("runner")
          and c.history_all(held) == [], st)
    c.close()
    h.c.close()


def case_restart(br):
    c = Client(br.clients)
    h1, h2 = runner(br, "h1", "hr"), runner(br, "h2", "hr", capacity=2)
    h1.credit(1)
    job, spec = dispatch(c, h1, "hr")
    h1.connect()                                # its log holds no job.accepted of it
    check("restart: the job waits again after h1", wait_for(
        lambda: c.status(job).get("status") == "queued" and not c.status(job).get("runner")),
        c.status(job))
    h2.credit(2)
    _, b = h2.wait("dispatch")
    check("restart: then dispatched to h2", b.get("job") == job, b)
    held, spec2 = dispatch(c, h2, "hr")
    h2.connect()
    check("restart: both wait again after h2", wait_for(
        lambda: all(c.status(j).get("status") == "queued" and not c.status(j).get("runner")
                    for j in (job, held))), (c.status(job), c.status(held)))
    c.pause(held)
    plain = new_ulid()                          # never sent: its record is of version 1
    c.submit(plain, pspec("nobody"))
    c.close()
    br.proc.kill()                              # SIGKILL
    br.proc.wait()
    br.start()
    c = Client(br.clients)
    h1.connect()
    h2.connect()
    send(h1, (job, 1, "job.accepted", {"pipeline": "pp", "spec": spec, "runner": "h1"}))
    got = cancels(h1.pending(0.3))
    st = c.status(job)
    check("restart: h1's job.accepted is taken, not refused",
          got == [] and st.get("runner") == "h1", (got, st))
    check("restart: the job.accepted is stored",
          [e.get("type") for e in c.history_all(job)] == ["job.accepted"], c.history_all(job))
    seq = send(h2, (held, 1, "job.accepted", {"pipeline": "pp", "spec": spec2, "runner": "h2"}))
    got = cancels(h2.pending(0.3))
    check("restart: the paused one is refused as put back and paused there",
          len(got) == 1 and got[0][0] == held
          and f"refused event seq {seq} (job.accepted)" in got[0][1]
          and "but the job was put back in the queue and paused there" in got[0][1], got)
    check("restart: it stays paused, no runner",
          c.status(held).get("status") == "paused" and not c.status(held).get("runner"),
          c.status(held))
    check("restart: a job never sent still waits", c.status(plain).get("status") == "queued",
          c.status(plain))
    c.close()
    h1.c.close()
    h2.c.close()


def case_cancel_restart(br):
    c = Client(br.clients)
    ra, rb = runner(br, "ra", "cr"), runner(br, "rb", "cr")
    ra.credit(1)
    ja, _ = dispatch(c, ra, "cr")
    rb.credit(1)
    jb, spec = dispatch(c, rb, "cr")
    for j in (ja, jb):
        ok = c.cancel(j, f"stop {j}")
        check("cancel restart: ok, sent once the runner takes it",
              "as soon as it takes the job" in ok.get("message", ""), ok)
    ok = c.cancel(jb, "again")                  # a second cancel: it goes with force
    check("cancel restart: a second cancel, its when: always steps stopped too",
          "asked again, it stops the job's when: always steps too" in ok.get("message", ""), ok)
    c.close()
    br.proc.kill()                              # SIGKILL
    br.proc.wait()
    br.start()
    c = Client(br.clients)
    ra.connect()                                # its log holds no job.accepted of it
    check("cancel restart: the job ra did not take ends cancelled, with its reason", wait_for(
        lambda: c.status(ja).get("status") == "cancelled"
        and c.status(ja).get("reason") == f"stop {ja}"), c.status(ja))
    rb.seq = 1
    rb.connect()
    rb.seq = 0
    send(rb, (jb, 1, "job.accepted", {"pipeline": "pp", "spec": spec, "runner": "rb"}))
    got = [x for x in rb.pending(0.5) if x[0] == "control"]
    check("cancel restart: rb, whose job.accepted comes now, is told to cancel, with its "
          "first reason and the second cancel's force",
          [(b.get("command"), b.get("job"), b.get("reason"), b.get("force")) for _, b in got]
          == [("cancel", jb, f"stop {jb}", True)], got)
    d = runner(br, "rd", "cr")
    d.credit(1)
    check("cancel restart: nothing is dispatched again", not [
        x for x in d.pending(0.5) if x[0] == "dispatch"])
    c.close()
    for r in (ra, rb, d):
        r.c.close()


def case_interrupt_restart(br):
    c = Client(br.clients)
    ra, rb = runner(br, "ia", "ir"), runner(br, "ib", "ir")
    spec = pspec("ir", "pi")
    spec["queue"] = {"strategy": "replace", "interrupt": True}
    jobs = {}
    for r in (ra, rb):
        r.credit(1)
        job = new_ulid()
        c.submit(job, spec)
        _, b = r.wait("dispatch")
        check("interrupt restart: dispatched", b.get("job") == job, b)
        jobs[r.rid] = job
    jn = new_ulid()
    acc = c.submit(jn, spec)                    # interrupts ib's; waits for a runner
    check("interrupt restart: the interrupting submit is accepted",
          acc.get("job") == jn and not acc.get("existing"), acc)
    c.close()
    br.proc.kill()                              # SIGKILL
    br.proc.wait()
    br.start()
    c = Client(br.clients)
    ja, jb = jobs["ia"], jobs["ib"]
    ra.connect()                                # its log holds no job.accepted of it
    check("interrupt restart: the job ia did not take ends cancelled, interrupted by ib's",
          wait_for(lambda: c.status(ja).get("status") == "cancelled"
                   and c.status(ja).get("reason") == f"interrupted by {jb}"), c.status(ja))
    rb.seq = 1
    rb.connect()
    rb.seq = 0
    send(rb, (jb, 1, "job.accepted", {"pipeline": "pi", "spec": spec, "runner": "ib"}))
    got = [x for x in rb.pending(0.5) if x[0] == "control"]
    check("interrupt restart: ib, whose job.accepted comes now, is told to cancel, "
          "interrupted by the new job",
          [(b.get("command"), b.get("job"), b.get("reason"), bool(b.get("force")))
           for _, b in got] == [("cancel", jb, f"interrupted by {jn}", False)], got)
    d = runner(br, "id", "ir")
    d.credit(1)
    sent = [b.get("job") for t, b in d.pending(0.5) if t == "dispatch"]
    check("interrupt restart: the new job is dispatched, the interrupted ones not again",
          sent == [jn], (sent, jn))
    c.close()
    for r in (ra, rb, d):
        r.c.close()


def case_policy_kill(br):
    restart_with(br, EVR_TEST_SUBMIT_DELAY_MS="1000")   # written, then 1 s before its flush
    c = Client(br.clients)
    ra = runner(br, "pa", "pk")
    spec = pspec("pk", "pq")
    spec["queue"] = {"limit": 1, "strategy": "replace", "interrupt": True}
    ra.credit(1)
    j1, j2, j3 = new_ulid(), new_ulid(), new_ulid()
    c.submit(j1, spec)
    _, b = ra.wait("dispatch")
    check("policy kill: the first dispatched", b.get("job") == j1, b)
    c.submit(j2, spec)                          # interrupts j1, waits (no credit)
    c.send("submit", {"job": j3, "spec": spec})     # replaces j2: killed before its answer
    time.sleep(0.5)
    br.proc.kill()                              # SIGKILL
    br.proc.wait()
    br.start()
    c = Client(br.clients)
    check("policy kill: the waiting job cancelled, replaced by the new one",
          c.status(j2).get("status") == "cancelled"
          and c.status(j2).get("reason") == f"replaced by {j3}", c.status(j2))
    check("policy kill: the new job queued (its journal record taken up)",
          c.status(j3).get("status") == "queued", c.status(j3))
    ra.seq = 1
    ra.connect()
    ra.seq = 0
    send(ra, (j1, 1, "job.accepted", {"pipeline": "pq", "spec": spec, "runner": "pa"}))
    got = [x for x in ra.pending(0.5) if x[0] == "control"]
    check("policy kill: the dispatched job's runner is told to cancel, interrupted by j2",
          [(b.get("command"), b.get("job"), b.get("reason")) for _, b in got]
          == [("cancel", j1, f"interrupted by {j2}")], got)
    d = runner(br, "pd", "pk")
    d.credit(1)
    sent = [b.get("job") for t, b in d.pending(0.5) if t == "dispatch"]
    check("policy kill: the new job is dispatched, no other", sent == [j3], (sent, j3))
    c.close()
    for r in (ra, d):
        r.c.close()


def case_held_restart(br):
    c = Client(br.clients)
    ra = runner(br, "ha", "hh")
    spec = pspec("hh", "ph")
    spec["queue"] = {"strategy": "replace", "interrupt": True}
    ra.credit(1)
    j1, j2 = new_ulid(), new_ulid()
    c.submit(j1, spec)
    _, b = ra.wait("dispatch")
    check("held restart: dispatched", b.get("job") == j1, b)
    ra.accept(j1, spec)
    ra.c.close()                                # silent: lost past its lease
    check("held restart: the runner is lost", wait_for(lambda: log_has(br, "runner ha lost")))
    c.submit(j2, spec)                          # interrupts j1: its cancel held for ha
    check("held restart: the cancel is held for the runner",
          log_has(br, f"job {j1}: interrupted by {j2}: cancel not sent"))
    c.close()
    for again in (False, True):
        br.proc.kill()                          # SIGKILL
        br.proc.wait()
        br.start()
        ra.c = None
        ra.connect()                            # its log resent: nothing new
        got = [(b.get("command"), b.get("job"), b.get("reason"))
               for t, b in ra.pending(0.8) if t == "control"]
        want = [] if again else [("cancel", j1, f"interrupted by {j2}")]
        check("held restart: back after the restart, the runner is told to cancel"
              if not again else "held restart: sent once: not again after a second restart",
              got == want, got)
    ra.c.close()


def case_accept_kill(br):
    restart_with(br, EVR_TEST_ACCEPT_DELAY_MS="3000")   # cancel sent, record not deleted yet
    c = Client(br.clients)
    ra = runner(br, "ka", "ak")
    ra.credit(1)
    ja, spec = dispatch(c, ra, "ak")
    ok = c.cancel(ja, "stop it")
    check("accept kill: ok, sent once the runner takes it",
          "as soon as it takes the job" in ok.get("message", ""), ok)
    c.cancel(ja, "again")                       # a second: it goes with force
    c.close()
    ra.seq += 1
    ra.c.send("events", {"events": [{"seq": ra.seq, "job": ja, "jseq": 1, "type": "job.accepted",
                                     "time": time.time_ns(),
                                     "data": {"pipeline": "pp", "spec": spec, "runner": "ka"}}]})
    got = [(b.get("command"), b.get("job"), b.get("reason"), b.get("force"))
           for t, b in ra.pending(1.0) if t == "control"]
    check("accept kill: told to cancel (with force) before the record goes",
          got == [("cancel", ja, "stop it", True)], got)
    br.proc.kill()                              # SIGKILL, within the delay
    br.proc.wait()
    br.start()
    ra.c = None
    ra.connect()                                # its log resent: nothing new
    got = [(b.get("command"), b.get("job"), b.get("reason"), b.get("force"))
           for t, b in ra.pending(0.8) if t == "control"]
    check("accept kill: after the restart (the record a leftover), told to cancel again, "
          "with force still", got == [("cancel", ja, "stop it", True)], got)
    c = Client(br.clients)
    check("accept kill: the job is the runner's (accepted, not ended by the broker)",
          c.status(ja).get("status") == "queued" and c.status(ja).get("runner") == "ka",
          c.status(ja))
    c.close()
    ra.c.close()


def case_submit_kill(br):
    import threading
    asan = os.environ.get("ASAN_OPTIONS")
    restart_with(br, LD_PRELOAD=f"{br.bin}/libevr_unflushed.so",
                 ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
    r = FakeRunner(br, "fk", ["executor:process", "fk"], capacity=64)
    r.connect()
    r.credit(64)
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def client():
        c = Client(br.clients, timeout=3.0)
        try:
            while not stop.is_set():
                job = new_ulid()
                spec = pspec("fk", "fq")
                spec["queue"] = {"limit": 100000}
                c.submit(job, spec)
                with lock:
                    acked.append(job)
        except Exception:   # the broker killed: no answer
            pass
        c.close()
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    end, taken = time.time() + 30, 0
    while len(acked) < 600 and time.time() < end:
        # each dispatch taken and ended: writes of the queue table (the
        # dispatch, the record's deletion) amid the submits' flushes
        for t, b in r.pending(0.02):
            if t == "dispatch":
                r.events(b["job"], ("job.accepted", {"pipeline": "fq", "spec": b["spec"],
                                                     "runner": "fk"}),
                         ("job.finished", {"status": "failed", "reason": "taken"}))
                taken += 1
    br.proc.kill()                              # SIGKILL amid submits and dispatches
    br.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    check("submit kill: submits acknowledged before the kill", len(acked) >= 600, len(acked))
    check("submit kill: jobs dispatched and ended meanwhile", taken >= 20, taken)
    check("submit kill: submits shared commits",
          log_has(br, "submits in one commit") and log_has(br, "written into the store"))
    br.start()
    c = Client(br.clients)
    lost = [j for j in acked if answer(c, "status", {"job": j})[0] != "job"]
    check(f"submit kill: every acknowledged job known after the restart ({len(lost)} of "
          f"{len(acked)} not)", not lost, lost[:5])
    c.close()
    r.c.close()


def case_lost_back(br):
    """ra's hello says seq 0, then its job.accepted comes as seq 1 (as the
    client that found it did); ra2's hello says seq 1, its log's
    job.accepted then resent (as evrun-runner does)."""
    c = Client(br.clients)
    a, a2 = runner(br, "ra", "lb"), runner(br, "ra2", "lb")
    a.credit(1)
    job, spec = dispatch(c, a, "lb")
    a2.credit(1)
    job2, spec2 = dispatch(c, a2, "lb")
    time.sleep(3.5)     # silent past lease (1 s) and reclaim (2 s): the jobs wait again
    check("taken from ra and ra2: queued again", wait_for(
        lambda: not c.status(job).get("runner") and not c.status(job2).get("runner")))
    b = runner(br, "rb", "lb", capacity=2)
    b.credit(2)
    got = {b.wait("dispatch")[1].get("job"), b.wait("dispatch")[1].get("job")}
    check("both dispatched to rb", got == {job, job2}, got)
    a.connect()
    seq = send(a, (job, 1, "job.accepted", {"pipeline": "pp", "spec": spec, "runner": "ra"}))
    got = cancels(a.pending(0.3))
    check("ra's job.accepted: refused, ra told to cancel",
          len(got) == 1 and got[0][0] == job and f"refused event seq {seq} (job.accepted)" in
          got[0][1] and "dispatched to runner rb" in got[0][1], got)
    a2.seq = 1
    a2.connect()
    a2.seq = 0
    send(a2, (job2, 1, "job.accepted", {"pipeline": "pp", "spec": spec2, "runner": "ra2"}))
    got = cancels(a2.pending(0.3))
    # (told twice: once for the event, once more at its resync, which
    # tells a runner back again of every copy it holds)
    check("ra2's (its log's, resent): not taken, ra2 told to cancel",
          got and all(j == job2 and "while it was lost" in why for j, why in got), got)
    for j, sp in ((job, spec), (job2, spec2)):
        send(b, (j, 1, "job.accepted", {"pipeline": "pp", "spec": sp, "runner": "rb"}))
        st = c.status(j)
        check("rb's is taken", st.get("runner") == "rb" and st.get("status") == "queued", st)
    check("rb was told nothing", cancels(b.pending(0.3)) == [])
    c.close()
    for r in (a, a2, b):
        r.c.close()


def case_finished(br):
    c = Client(br.clients)
    r = runner(br, "rf", "rf", capacity=8)
    r.credit(8)
    step = [("step.queued", {"step": "a", "attempt": 1}),
            ("step.starting", {"step": "a", "attempt": 1, "container": "u"}),
            ("step.started", {"step": "a", "attempt": 1, "container_id": "c"})]

    def run(job, spec, evs):
        """job.accepted then evs, numbered on; the seq of the last."""
        batch = [("job.accepted", {"pipeline": "pp", "spec": spec, "runner": "rf"})] + evs
        return send(r, *[(job, k + 1, t, d) for k, (t, d) in enumerate(batch)])

    def refused(name, job, seq, why):
        got = cancels(r.pending(0.3))
        st = c.status(job)
        check(f"{name}: refused, the runner told to cancel", len(got) == 1 and
              f"refused event seq {seq} (job.finished)" in got[0][1] and why in got[0][1], got)
        check(f"{name}: the job ended failed by the broker", st.get("status") == "failed"
              and "the job is ended here" in st.get("reason", ""), st)
        return st

    job, spec = dispatch(c, r, "rf")
    seq = run(job, spec, [("job.started", {})] + step + [("job.finished",
                                                          {"status": "succeeded"})])
    st = refused("succeeded with step a running", job, seq,
                 "step a is running: a job succeeds only once every step has ended")
    check("... its step ended too", st.get("steps", {}).get("a", "").startswith("failed"), st)
    job, spec = dispatch(c, r, "rf")
    seq = run(job, spec, [("job.finished", {"status": "succeeded"})])
    refused("succeeded without job.started", job, seq, "a job succeeds only once started")
    job, spec = dispatch(c, r, "rf")
    seq = send(r, (job, 1, "job.accepted", {"pipeline": "px", "spec": spec, "runner": "rf"}))
    got = cancels(r.pending(0.3))
    check("a job.accepted of pipeline px with a spec of pp: refused",
          len(got) == 1 and 'its pipeline "px" is not its spec\'s ("pp")' in got[0][1], got)
    st = c.status(job)
    check("... the job ended failed, under pp", st.get("status") == "failed"
          and st.get("pipeline") == "pp", st)
    # what a runner sends is taken
    job, spec = dispatch(c, r, "rf")
    run(job, spec, [("job.finished", {"status": "failed", "reason": "cannot run here"})])
    st = c.status(job)
    check("a runner's refusal (accepted, then failed): taken", st.get("status") == "failed"
          and st.get("reason") == "cannot run here" and st.get("runner") == "rf", st)
    job, spec = dispatch(c, r, "rf")
    run(job, spec, [("job.started", {})] + step + [
        ("job.cancel_requested", {"reason": "stop"}),
        ("job.finished", {"status": "cancelled", "reason": "stop"})])
    check("cancelled with step a running: taken", c.status(job).get("status") == "cancelled")
    job, spec = dispatch(c, r, "rf")
    run(job, spec, [("job.started", {})] + step + [
        ("job.paused", {}),
        ("step.finished", {"step": "a", "attempt": 1, "exit_code": 0, "duration": 1,
                           "status": "succeeded"}),
        ("job.finished", {"status": "succeeded"})])
    st = c.status(job)
    check("succeeded once its step ended (paused meanwhile): taken",
          st.get("status") == "succeeded" and st.get("steps_done") == 1, st)
    check("nothing refused of them", cancels(r.pending(0.3)) == [])
    c.close()
    r.c.close()


FAST = ("--heartbeat-ms", "300", "--lease-ms", "1000", "--reclaim-ms", "2000")
CASES = {"refused_own": (case_refused_own, None), "no_runner": (case_no_runner, None),
         "elsewhere": (case_elsewhere, None), "never_sent": (case_never_sent, None),
         "hello_again": (case_hello_again, None), "restart": (case_restart, None),
         "cancel_restart": (case_cancel_restart, None),
         "interrupt_restart": (case_interrupt_restart, None),
         "policy_kill": (case_policy_kill, None),
         "held_restart": (case_held_restart, ("--heartbeat-ms", "200", "--lease-ms", "800")),
         "accept_kill": (case_accept_kill, None),
         "submit_kill": (case_submit_kill, ("--log-level", "debug", "--heartbeat-ms", "200")),
         "lost_back": (case_lost_back, FAST),
         "finished": (case_finished, None)}


def main():
    bin_dir, names = cases_asked(__doc__, CASES)
    if bin_dir is None:
        return 2
    for name in names:
        fn, timing = CASES[name]
        root = tempfile.mkdtemp(prefix="evr-acc-", dir="/tmp")
        synced = name in ("submit_kill",)   # its journal flushed: the thread that does it
        run_case(name, Broker(bin_dir, root,
                              timing=(() if synced else ("--no-sync",))
                              + (timing or ("--heartbeat-ms", "200"))), fn)
    return summary()


if __name__ == "__main__":
    sys.exit(main())

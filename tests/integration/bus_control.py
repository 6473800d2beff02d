"""bus_control.py BIN_DIR [CASE ...]: a client's pause, resume and drain
against a real evrun-broker (ipc:// sockets, a temporary state directory)
and runners played on its runner socket by this script (evrun-runner
itself in one case), with the client of
tests/interop (written from schema/PROTOCOL.md).  No podman is needed.

Cases:
  pause_resume   pause then resume at once, both sent to the runner in
                 order; a second pause before job.paused is ok "already
                 sent", not sent again; after job.paused a pause is conflict
  executor       a hello with the label executor:docker is refused
  drain_hello    a drain holds over the runner's reconnection when its hello
                 says draining; a hello without it (a new process) is idle
  restart        after a broker restart the runners holding jobs are listed
                 (lost); a drain of one is held, over another restart too,
                 and sent after its welcome; no job goes to it
  real_runner    evrun-runner (process executor) drained stays draining
                 over a broker restart
  cancel_reason  a job's cancel reason is its first cancel's: a second
                 cancel (no reason, or another) of a dispatched job is ok
                 "already asked" and the runner gets the first's reason
                 once it takes the job (also when a queue.interrupt
                 comes after the cancel), with force (it was cancelled
                 twice); a queued job ends with it (a second cancel:
                 conflict); a running one (evrun-runner) keeps it over a
                 second cancel without a reason
  cancel_twice   a second cancel of a running job being cancelled: sent
                 with force (also before its job.cancel_requested came),
                 said so in the ok; on evrun-runner its `when: always`
                 step that runs is stopped at once and the one after it
                 skipped, the job ends cancelled with the first reason,
                 both cancels in its events (the second with force)
  ok_texts       an `ok` quoting a long value is whole (PROTOCOL.md: a text
                 within its 4096 bytes is never cut) and UTF-8: a second
                 cancel quoting a first reason of 512 "é", a demand
                 listing 32 labels of 73 bytes
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from evrun_client import (Client, ErrorAnswer, ProtocolError, make_spec,  # noqa: E402
                          make_step, new_ulid, parse_message)

FAILS = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        FAILS.append(name)


class Broker:
    def __init__(self, bin_dir, root, args=(),
                 timing=("--heartbeat-ms", "200", "--lease-ms", "1500")):
        self.bin, self.root, self.proc = bin_dir, root, None
        self.args, self.timing = list(args), list(timing)
        self.clients = f"ipc://{root}/bus/clients"
        self.runners = f"ipc://{root}/bus/runners"

    def start(self):
        for s in ("clients", "runners", "events"):
            try:
                os.unlink(f"{self.root}/bus/{s}")
            except FileNotFoundError:
                pass
        log = open(f"{self.root}/broker.log", "a")
        self.proc = subprocess.Popen([f"{self.bin}/evrun-broker", "--local", "--state-dir",
                                      self.root] + self.timing + self.args,
                                     stdout=log, stderr=log)
        for _ in range(100):
            if os.path.exists(f"{self.root}/bus/clients"):
                return
            time.sleep(0.05)
        raise RuntimeError("broker: no socket after 5 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class FakeRunner:
    """A runner on the broker's runner socket: what the broker sends it that
    a call did not wait for is kept in self.got as (type, body)."""

    def __init__(self, broker, rid, labels, capacity=2):
        self.broker, self.rid, self.labels, self.capacity = broker, rid, labels, capacity
        self.seq, self.jseq, self.c, self.got = 0, {}, None, []

    def connect(self, draining=False, expect_error=False):
        if self.c:
            self.c.close()
        self.c = Client(self.broker.runners)
        self.got = []
        body = {"runner": self.rid, "labels": self.labels, "capacity": self.capacity,
                "version": "test", "seq": self.seq}
        if draining:
            body["draining"] = True
        self.c.send("hello", body)
        t, b = self.wait("welcome", "error")
        if t == "error" and not expect_error:
            raise RuntimeError(f"hello refused: {b}")
        return t, b

    def wait(self, *types, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            if not self.c.sock.poll(100):
                continue
            t, b = parse_message(self.c.sock.recv_multipart())
            if t in types:
                return t, b
            if t != "heartbeat":
                self.got.append((t, b))
        raise TimeoutError(f"{self.rid}: no {types} within {timeout} s")

    def pending(self, secs=0.5):
        """What came within secs (heartbeats left out), and what was kept."""
        end = time.time() + secs
        while time.time() < end:
            if self.c.sock.poll(50):
                t, b = parse_message(self.c.sock.recv_multipart())
                if t != "heartbeat":
                    self.got.append((t, b))
        out, self.got = self.got, []
        return out

    def credit(self, n):
        self.c.send("credit", {"credit": n})

    def events(self, job, *evs):
        batch = []
        for typ, data in evs:
            self.seq += 1
            self.jseq[job] = self.jseq.get(job, 0) + 1
            batch.append({"seq": self.seq, "job": job, "jseq": self.jseq[job], "type": typ,
                          "time": time.time_ns(), "data": data})
        self.c.send("events", {"events": batch})
        self.wait("ack")

    def accept(self, job, spec, start=True):
        evs = [("job.accepted", {"pipeline": spec["pipeline"], "spec": spec, "runner": self.rid})]
        if start:
            evs.append(("job.started", {"runner": self.rid}))
        self.events(job, *evs)


def spec_for(label):
    return make_spec("ctl", [make_step("a", "sleep 60")], image="img", labels=[label])


def answer(c, mtype, fields):
    """(type, message or code) of a request's answer."""
    try:
        t, b = c.request(mtype, fields)
        return t, b.get("message", "")
    except ErrorAnswer as e:
        return "error", f"{e.code}: {e.message}"


def runner_state(c, rid):
    items, _ = c.runners()
    for r in items:
        if r.get("runner") == rid:
            return r.get("state")
    return None


def wait_status(c, job, status, secs=5):
    for _ in range(secs * 20):
        if c.status(job).get("status") == status:
            return True
        time.sleep(0.05)
    return False


def dispatched_job(runner, client, label):
    job = new_ulid()
    client.submit(job, spec_for(label))
    t, b = runner.wait("dispatch")
    assert b.get("job") == job, b
    return job


def controls(msgs):
    return [(b.get("command"), b.get("job")) for t, b in msgs if t == "control"]


def case_pause_resume(br):
    c = Client(br.clients)
    r = FakeRunner(br, "ctl-p", ["lp"])
    r.connect()
    r.credit(2)
    job = dispatched_job(r, c, "lp")
    r.accept(job, spec_for("lp"))
    check("the job runs", wait_status(c, job, "running"))
    a1 = answer(c, "pause", {"job": job})
    a2 = answer(c, "resume", {"job": job})
    check("pause: ok, sent", a1[0] == "ok" and "sent to runner ctl-p" in a1[1], a1)
    check("resume right after: ok, sent after the pause", a2[0] == "ok" and "sent" in a2[1]
          and "already" not in a2[1], a2)
    got = controls(r.pending())
    check("the runner got pause then resume", got == [("pause", job), ("resume", job)], got)
    r.events(job, ("job.paused", {}), ("job.resumed", {}))
    check("running again", wait_status(c, job, "running"))
    a3 = answer(c, "pause", {"job": job})
    a4 = answer(c, "pause", {"job": job})
    check("pause: ok", a3[0] == "ok" and "already" not in a3[1], a3)
    check("a second pause before job.paused: ok, already sent",
          a4[0] == "ok" and "already sent" in a4[1], a4)
    got = controls(r.pending())
    check("the runner got one pause", got == [("pause", job)], got)
    r.events(job, ("job.paused", {}))
    check("paused", wait_status(c, job, "paused"))
    a5 = answer(c, "pause", {"job": job})
    check("pause of a paused job (confirmed): conflict",
          a5[0] == "error" and a5[1].startswith("conflict:") and "already paused" in a5[1], a5)
    a6 = answer(c, "resume", {"job": job})
    check("resume: ok, sent", a6[0] == "ok" and "resume sent" in a6[1], a6)
    r.events(job, ("job.resumed", {}))
    check("running at the end", wait_status(c, job, "running"))
    a7 = answer(c, "resume", {"job": job})
    check("resume of a running job (confirmed): conflict",
          a7[0] == "error" and "is not paused" in a7[1], a7)
    # its connection gone without a word (killed), within its lease: the
    # refusal says nothing was sent, not a socket's error alone
    r.c.close()
    time.sleep(0.3)
    a8 = answer(c, "pause", {"job": job})
    check("pause of a killed runner's job: unavailable, nothing sent, ask again",
          a8[0] == "error" and a8[1].startswith("unavailable:")
          and "is not connected" in a8[1] and "nothing was sent" in a8[1], a8)
    c.close()


def case_executor(br):
    c = Client(br.clients)
    r = FakeRunner(br, "ctl-x", ["executor:podman", "executor:docker"])
    t, b = r.connect(expect_error=True)
    check("hello with executor:docker: error conflict naming it (the runner gives up)",
          t == "error" and b.get("code") == "conflict" and "executor:docker" in
          b.get("message", ""), (t, b))
    check("the runner is not listed", runner_state(c, "ctl-x") is None)
    ok = FakeRunner(br, "ctl-y", ["executor:process", "executor:podman", "x"])
    t, b = ok.connect()
    check("hello with executor:process and executor:podman: welcome", t == "welcome", (t, b))
    c.close()
    r.c.close()
    ok.c.close()


def case_drain_hello(br):
    c = Client(br.clients)
    r = FakeRunner(br, "ctl-d", ["ld"])
    r.connect()
    r.credit(1)
    a = answer(c, "drain", {"runner": "ctl-d"})
    check("drain: ok", a[0] == "ok", a)
    check("the runner got the drain", controls(r.pending()) == [("drain", None)])
    check("draining", runner_state(c, "ctl-d") == "draining")
    r.connect(draining=True)        # the same process, reconnected
    r.credit(1)
    check("hello with draining: still draining", runner_state(c, "ctl-d") == "draining")
    job = new_ulid()
    c.submit(job, spec_for("ld"))
    got = [t for t, _ in r.pending(0.6)]
    check("no job dispatched to it", "dispatch" not in got, got)
    r.connect()                     # a new process under that id
    r.credit(1)
    t, b = r.wait("dispatch")
    check("hello without draining (a new process): it takes jobs again",
          b.get("job") == job and runner_state(c, "ctl-d") == "busy", b)
    c.close()
    r.c.close()


def case_restart(br):
    c = Client(br.clients)
    r = FakeRunner(br, "ctl-r", ["lr"])
    r.connect()
    r.credit(2)
    active = dispatched_job(r, c, "lr")
    r.accept(active, spec_for("lr"))
    check("the job runs", wait_status(c, active, "running"))
    c.close()
    r.c.close()
    br.stop()
    br.start()
    c = Client(br.clients)
    check("after a restart: the runner holding a job is listed lost",
          runner_state(c, "ctl-r") == "lost")
    a = answer(c, "drain", {"runner": "ctl-r"})
    check("drain of it: ok, held for its hello", a[0] == "ok" and "held for it" in a[1], a)
    check("still shown lost (it is not connected)", runner_state(c, "ctl-r") == "lost")
    a = answer(c, "drain", {"runner": "ctl-nobody"})
    check("drain of an unknown runner: not_found", a[0] == "error"
          and a[1].startswith("not_found:"), a)
    c.close()
    br.stop()
    br.start()
    c = Client(br.clients)
    check("after another restart: still listed", runner_state(c, "ctl-r") == "lost")
    r.connect()
    r.credit(2)
    queued = new_ulid()
    c.submit(queued, spec_for("lr"))
    got = r.pending(0.8)
    check("its drain (held in the store) came after welcome, no dispatch", controls(got) == [("drain", None)]
          and "dispatch" not in [t for t, _ in got], got)
    check("draining once back", runner_state(c, "ctl-r") == "draining")
    r.connect(draining=True)
    check("and after its reconnection (the drain sent once)",
          controls(r.pending(0.4)) == [] and runner_state(c, "ctl-r") == "draining")
    c.close()
    r.c.close()


def case_real_runner(br):
    """evrun-runner itself (process executor only: no podman) keeps its
    drain over a broker restart: its hello says draining."""
    c = Client(br.clients)
    log = open(f"{br.root}/runner.log", "a")
    rn = subprocess.Popen([f"{br.bin}/evrun-runner", "--broker", br.runners, "--id", "ctl-real",
                           "--executors", "process", "--capacity", "1", "--state-dir",
                           f"{br.root}/r", "--heartbeat-ms", "200", "--lease-ms", "1500"],
                          stdout=log, stderr=log)
    try:
        for _ in range(100):
            if runner_state(c, "ctl-real") == "idle":
                break
            time.sleep(0.1)
        check("the runner connects", runner_state(c, "ctl-real") == "idle")
        a = answer(c, "drain", {"runner": "ctl-real"})
        check("drain: ok", a[0] == "ok", a)
        c.close()
        br.stop()
        br.start()
        c = Client(br.clients)
        st = None
        for _ in range(100):
            st = runner_state(c, "ctl-real")
            if st not in (None, "lost"):
                break
            time.sleep(0.1)
        check("after a broker restart it is back, still draining", st == "draining", st)
    finally:
        rn.terminate()
        try:
            rn.wait(10)
        except subprocess.TimeoutExpired:
            rn.kill()
            rn.wait()
        c.close()


def finished_reason(c, job):
    """The reason of job's job.finished (None: not finished)."""
    for ev in c.history_all(job):
        if ev.get("type") == "job.finished":
            return ev.get("data", {}).get("reason")
    return None


def start_runner(br, rid):
    """evrun-runner (process executor, capacity 1) as rid: its Popen."""
    log = open(f"{br.root}/runner-{rid}.log", "a")
    return subprocess.Popen([f"{br.bin}/evrun-runner", "--broker", br.runners, "--id", rid,
                             "--executors", "process", "--capacity", "1", "--state-dir",
                             f"{br.root}/{rid}", "--heartbeat-ms", "200", "--lease-ms", "1500"],
                            stdout=log, stderr=log)


def stop_runner(rn):
    rn.terminate()
    try:
        rn.wait(10)
    except subprocess.TimeoutExpired:
        rn.kill()
        rn.wait()


def case_cancel_reason(br):
    c = Client(br.clients)
    r = FakeRunner(br, "ctl-c", ["lc"])
    r.connect()
    r.credit(2)
    # dispatched, not accepted yet: the cancel waits for the runner to take it
    job = dispatched_job(r, c, "lc")
    a1 = answer(c, "cancel", {"job": job, "reason": "early"})
    a2 = answer(c, "cancel", {"job": job})
    a3 = answer(c, "cancel", {"job": job, "reason": "late"})
    check("dispatched: cancel with a reason: ok, held for the runner",
          a1[0] == "ok" and "as soon as it takes" in a1[1], a1)
    check("a second cancel without a reason: ok, already asked (the first reason kept)",
          a2[0] == "ok" and "already asked (early)" in a2[1]
          and "asked again, it stops the job's when: always steps too" in a2[1], a2)
    check("a third with another reason: ok, already asked",
          a3[0] == "ok" and "already asked (early)" in a3[1], a3)
    check("nothing sent before the runner takes it", controls(r.pending(0.3)) == [])
    r.accept(job, spec_for("lc"), start=False)
    got = [(b.get("command"), b.get("job"), b.get("reason"), b.get("force")) for t, b
           in r.pending() if t == "control"]
    check("once taken, the runner gets one cancel with the first reason, with force",
          got == [("cancel", job, "early", True)], got)
    # a queue.interrupt of that dispatched job after the cancel keeps the cancel's reason
    ispec = make_spec("ctli", [make_step("a", "sleep 60")], image="img", labels=["lc"],
                      queue={"strategy": "replace", "interrupt": True})
    first = new_ulid()
    c.submit(first, ispec)
    t, b = r.wait("dispatch")
    a1 = answer(c, "cancel", {"job": first, "reason": "early"})
    c.submit(new_ulid(), ispec)     # interrupts first
    r.accept(first, ispec, start=False)
    got = [(b.get("command"), b.get("job"), b.get("reason"), b.get("force")) for t, b
           in r.pending() if t == "control"]
    check("cancelled, then interrupted while dispatched: the cancel's reason, no force",
          a1[0] == "ok" and got == [("cancel", first, "early", None)], (a1, got))
    # queued (no runner has its label): the first cancel ends it, with its reason
    queued = new_ulid()
    c.submit(queued, spec_for("nobody"))
    a1 = answer(c, "cancel", {"job": queued, "reason": "early"})
    a2 = answer(c, "cancel", {"job": queued})
    check("queued: cancel: ok, cancelled while queued", a1[0] == "ok" and "while queued" in a1[1],
          a1)
    check("a second cancel: conflict, it has finished",
          a2[0] == "error" and a2[1].startswith("conflict:") and "has finished" in a2[1], a2)
    reason = finished_reason(c, queued)
    check("its job.finished keeps the first reason", reason == "early", reason)
    # running on evrun-runner: a second cancel without a reason erases nothing
    rn = start_runner(br, "ctl-creal")
    try:
        run = new_ulid()
        c.submit(run, make_spec("ctlr", [make_step("a", "sleep 60")]) | {"executor": "process"})
        check("the job runs on evrun-runner", wait_status(c, run, "running", 15))
        for _ in range(100):    # its step started: the cancel stops it
            if any(ev.get("type") == "step.started" for ev in c.history_all(run)):
                break
            time.sleep(0.1)
        a1 = answer(c, "cancel", {"job": run, "reason": "early"})
        a2 = answer(c, "cancel", {"job": run})
        check("running: both cancels ok, sent", a1[0] == "ok" and a2[0] == "ok", (a1, a2))
        check("it ends cancelled", wait_status(c, run, "cancelled", 15))
        reason = finished_reason(c, run)
        check("with the first cancel's reason", reason == "early", reason)
    finally:
        stop_runner(rn)
    c.close()
    r.c.close()


def case_cancel_twice(br):
    c = Client(br.clients)
    r = FakeRunner(br, "ctl-2", ["l2"])
    r.connect()
    r.credit(1)
    # a played runner: the second cancel comes before any job.cancel_requested
    job = dispatched_job(r, c, "l2")
    r.accept(job, spec_for("l2"))
    check("the played job runs", wait_status(c, job, "running", 5))
    a1 = answer(c, "cancel", {"job": job, "reason": "first"})
    a2 = answer(c, "cancel", {"job": job, "reason": "second"})
    got = [(b.get("command"), b.get("reason"), b.get("force")) for t, b in r.pending()
           if t == "control" and b.get("job") == job]
    check("first cancel: sent, no force", a1 == ("ok", "cancel sent to runner ctl-2"), a1)
    check("second cancel: ok, saying it stops the when: always steps",
          a2[0] == "ok" and a2[1].startswith("cancel sent to runner ctl-2 again: the job was "
                                             "being cancelled already, so its when: always "
                                             "steps are stopped too, at once"), a2)
    check("the runner gets both, the second with force",
          got == [("cancel", "first", None), ("cancel", "second", True)], got)
    r.c.close()
    # evrun-runner: an always step that hangs is stopped by the second cancel
    rn = start_runner(br, "ctl-2real")
    try:
        run = new_ulid()
        steps = [make_step("a", "echo begun; sleep 60"),
                 make_step("clean", "echo cleaning; sleep 60") | {"when": "always"},
                 make_step("last", "echo never") | {"when": "always"}]
        c.submit(run, make_spec("ctl2", steps) | {"executor": "process"})

        def seen(kind, step):
            return any(ev.get("type") == kind and ev.get("data", {}).get("step") == step
                       for ev in c.history_all(run))

        for _ in range(150):
            if seen("step.started", "a"):
                break
            time.sleep(0.1)
        a1 = answer(c, "cancel", {"job": run, "reason": "early"})
        for _ in range(150):    # the first cancel stopped a; clean runs
            if seen("step.started", "clean"):
                break
            time.sleep(0.1)
        check("after the first cancel the always step runs", seen("step.started", "clean"))
        t0 = time.monotonic()
        a2 = answer(c, "cancel", {"job": run})
        check("running: second cancel ok, saying so", a1[0] == "ok" and a2[0] == "ok"
              and "again: the job was being cancelled already" in a2[1], (a1, a2))
        check("it ends cancelled at once (not after the always step's 60 s grace)",
              wait_status(c, run, "cancelled", 10) and time.monotonic() - t0 < 10)
        evs = c.history_all(run)
        cancels = [ev.get("data", {}) for ev in evs if ev.get("type") == "job.cancel_requested"]
        check("both cancels recorded, the second with force",
              len(cancels) == 2 and not cancels[0].get("force")
              and cancels[1].get("force") is True, cancels)
        ends = {ev["data"]["step"]: ev["data"] for ev in evs
                if ev.get("type") in ("step.finished", "step.skipped")}
        check("the always step that ran: cancelled, saying why",
              ends.get("clean", {}).get("status") == "cancelled"
              and ends["clean"].get("reason") == "stopped: the job was cancelled again",
              ends.get("clean"))
        check("the always step after it: skipped, never started",
              "last" in ends and not seen("step.started", "last"), ends.get("last"))
        check("the job keeps the first cancel's reason", finished_reason(c, run) == "early",
              finished_reason(c, run))
        a3 = answer(c, "cancel", {"job": run})
        check("a cancel after it ended: conflict", a3[0] == "error" and "conflict" in a3[1], a3)
    finally:
        stop_runner(rn)
    c.close()


def case_ok_texts(br):
    c = Client(br.clients)
    r = FakeRunner(br, "ctl-t", ["lt"])
    r.connect()
    r.credit(1)
    # "cancel already asked (REASON): ...": a reason of 1024 bytes, 2 each character
    # (it was cut at 511 bytes, mid-character: an answer no client could decode)
    long = "\u00e9" * 512
    job = dispatched_job(r, c, "lt")
    a1 = answer(c, "cancel", {"job": job, "reason": long})
    try:
        a2 = answer(c, "cancel", {"job": job})
    except ProtocolError as e:
        a2 = ("undecodable", str(e))
    check("a second cancel: ok, quoting the first reason whole",
          a1[0] == "ok" and a2[0] == "ok"
          and f"already asked ({long}): it reaches ctl-t as soon" in a2[1],
          (a1, a2[0], a2[1][-120:]))
    # "demand ID kept: ... labels [...]": 32 labels of 73 bytes (it was cut at 2048 bytes,
    # with no mark)
    labels = ["executor:%02d" % i + "x" * 62 for i in range(32)]
    try:
        a = answer(c, "demand", {"job": new_ulid(), "labels": labels})
    except ProtocolError as e:
        a = ("undecodable", str(e))
    check("a demand's ok lists its 32 labels whole",
          a[0] == "ok" and ",".join(labels) + "] for 300 s" in a[1], (a[0], a[1][-120:]))
    c.close()
    r.c.close()


CASES = {"pause_resume": case_pause_resume, "executor": case_executor,
         "drain_hello": case_drain_hello, "restart": case_restart,
         "real_runner": case_real_runner, "cancel_reason": case_cancel_reason,
         "cancel_twice": case_cancel_twice, "ok_texts": case_ok_texts}


def run_case(name, br, fn, settle=0.0):
    """Runs case fn on broker br (started here, stopped and its directory
    removed after): a case that breaks off counts as failed, and a failed
    one shows the end of the broker's log."""
    print(f"--- {name}")
    before = len(FAILS)
    try:
        br.start()
        time.sleep(settle)
        fn(br)
    except Exception as e:      # a case that broke off counts as failed
        check(f"{name} ran to its end", False, repr(e))
    finally:
        br.stop()
        if len(FAILS) > before:
            with open(f"{br.root}/broker.log") as f:
                print("--- broker.log (last lines)\n" + "".join(f.readlines()[-25:]))
        shutil.rmtree(br.root, ignore_errors=True)


def cases_asked(doc, cases):
    """BIN_DIR and the case names of the command line (all cases when none
    is named); (None, None), doc or the cases said on stderr, when the
    line is short or names a case there is not."""
    if len(sys.argv) < 2:
        print(doc, file=sys.stderr)
        return None, None
    names = sys.argv[2:] or list(cases)
    for name in names:
        if name not in cases:
            print(f"unknown case {name}; cases: {' '.join(cases)}", file=sys.stderr)
            return None, None
    return sys.argv[1], names


def summary():
    """Prints the outcome of the cases run; the exit status."""
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    return 1 if FAILS else 0


def main():
    bin_dir, names = cases_asked(__doc__, CASES)
    if bin_dir is None:
        return 2
    for name in names:
        root = tempfile.mkdtemp(prefix="evr-ctl-", dir="/tmp")
        run_case(name, Broker(bin_dir, root), CASES[name])
    return summary()


if __name__ == "__main__":
    sys.exit(main())

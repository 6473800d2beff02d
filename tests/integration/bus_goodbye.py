"""bus_goodbye.py BIN_DIR [CASE ...]: a runner that stops cleanly says
`goodbye` (schema/PROTOCOL.md): the broker shows it `stopped`, not `lost`,
and queues again at once the jobs it dispatched to it that it never
accepted.  Against a real evrun-broker (ipc:// sockets, a temporary state
directory, the default --reclaim-ms of 10 minutes), with evrun-runner
itself (process executor only: no podman) or runners played on the
broker's runner socket (FakeRunner of bus_control.py); in one case a
stand-in broker written from PROTOCOL.md serves a real evrun-runner.

Cases:
  sigterm   evrun-runner stopped by SIGTERM is listed stopped once it
            exited and stays so past the lease (it is not lost) and after
            the broker's restart; started again it says hello and is idle,
            and after another restart it is not listed stopped
  exits     a drained runner with --exit-when-drained, and a --once runner
            after its job, are listed stopped when they exit
  returned  a runner's goodbye puts a job dispatched to it and not accepted
            back in the queue at once (another runner gets it); the job it
            accepted stays with it; its hello again makes it busy; a
            goodbye naming a seq the broker does not hold returns nothing
  stopping  evrun-runner, stopping (SIGTERM) while a job runs, does not take
            a dispatch that comes after its credit 0, finishes its job, and
            says goodbye with the last seq of its log (a stand-in broker)
"""
import os
import signal
import subprocess
import sys
import time

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bus_control  # noqa: E402
from bus_control import (FakeRunner, answer, check, dispatched_job, runner_state,  # noqa: E402
                         spec_for)
from evrun_client import Client, make_spec, make_step, new_ulid  # noqa: E402


def start_runner(br, rid, *extra, endpoint=None):
    log = open(f"{br.root}/runner-{rid}.log", "a")
    return subprocess.Popen([f"{br.bin}/evrun-runner", "--broker", endpoint or br.runners,
                             "--id", rid, "--executors", "process", "--state-dir",
                             f"{br.root}/r-{rid}", "--heartbeat-ms", "200", "--lease-ms",
                             "1500", *extra], stdout=log, stderr=log)


def ended(proc, secs):
    """The exit status of proc, waited for at most secs (None: still runs,
    then killed)."""
    try:
        return proc.wait(secs)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def wait_state(c, rid, want, secs=5.0):
    st = None
    for _ in range(int(secs * 20)):
        st = runner_state(c, rid)
        if st == want:
            break
        time.sleep(0.05)
    return st


def broker_log(br):
    with open(f"{br.root}/broker.log") as f:
        return f.read()


def process_spec(pipeline, run, label):
    spec = make_spec(pipeline, [make_step("s", run)], labels=[label])
    spec["executor"] = "process"
    return spec


def case_sigterm(br):
    c = Client(br.clients)
    rn = start_runner(br, "gb-t")
    try:
        check("the runner connects", wait_state(c, "gb-t", "idle", 10) == "idle")
        rn.send_signal(signal.SIGTERM)
        check("SIGTERM: it exits 0", ended(rn, 15) == 0)
        st = wait_state(c, "gb-t", "stopped", 3.0)
        check("listed stopped once it exited", st == "stopped", st)
        time.sleep(2.5)     # past the lease (1.5 s): a runner gone without a word is lost
        st = runner_state(c, "gb-t")
        check("still stopped past the lease, not lost", st == "stopped", st)
        check("the broker's log says why", "runner gb-t stopped: it said goodbye (stopped by a "
              "signal); 0 jobs left with it" in broker_log(br))
        with open(f"{br.root}/runner-gb-t.log") as f:
            check("the runner's log says it said goodbye", "said goodbye to the broker (stopped "
                  "by a signal" in f.read())
        c.close()
        br.stop()       # the mark outlives the broker: not lost after its restart
        br.start()
        c = Client(br.clients)
        st = runner_state(c, "gb-t")
        check("the broker restarted: still listed stopped, not lost", st == "stopped", st)
        rn = start_runner(br, "gb-t")
        check("started again: hello, idle", wait_state(c, "gb-t", "idle", 10) == "idle")
        c.close()
        br.stop()       # its hello dropped the mark: after a restart it is not stopped
        br.start()
        c = Client(br.clients)
        st = wait_state(c, "gb-t", "idle", 10)
        check("the broker restarted again: the runner back, idle", st == "idle", st)
    finally:
        if rn.poll() is None:
            rn.terminate()
            ended(rn, 15)
        c.close()


def case_exits(br):
    c = Client(br.clients)
    rd = start_runner(br, "gb-d", "--exit-when-drained")
    ro = start_runner(br, "gb-o", "--once", "--labels", "gbonce")
    try:
        check("both connect", wait_state(c, "gb-d", "idle", 10) == "idle"
              and wait_state(c, "gb-o", "idle", 10) == "idle")
        a = answer(c, "drain", {"runner": "gb-d"})
        check("drain: ok", a[0] == "ok", a)
        check("drained with --exit-when-drained: it exits 0", ended(rd, 15) == 0)
        st = wait_state(c, "gb-d", "stopped", 3.0)
        check("... and is listed stopped", st == "stopped", st)
        job = new_ulid()
        c.submit(job, process_spec("gbonce", "true", "gbonce"))
        check("--once: it exits 0 after its job", ended(ro, 30) == 0)
        check("... the job succeeded", c.status(job).get("status") == "succeeded",
              c.status(job))
        st = wait_state(c, "gb-o", "stopped", 3.0)
        check("... and it is listed stopped", st == "stopped", st)
        time.sleep(2.0)
        check("both still stopped past the lease", runner_state(c, "gb-d") == "stopped"
              and runner_state(c, "gb-o") == "stopped")
        log = broker_log(br)
        check("the broker's log says why each left",
              "runner gb-d stopped: it said goodbye (drained)" in log
              and "runner gb-o stopped: it said goodbye (--once: its job ended)" in log)
    finally:
        for p in (rd, ro):
            if p.poll() is None:
                p.terminate()
                ended(p, 15)
        c.close()


def case_returned(br):
    c = Client(br.clients)
    a = FakeRunner(br, "gb-a", ["lg"])
    a.connect()
    a.credit(2)
    running = dispatched_job(a, c, "lg")
    a.accept(running, spec_for("lg"))
    waiting = dispatched_job(a, c, "lg")    # dispatched, never accepted
    a.c.send("goodbye", {"seq": a.seq, "reason": "test: leaving"})
    st = wait_state(c, "gb-a", "stopped", 2)
    check("goodbye: listed stopped", st == "stopped", st)
    b = FakeRunner(br, "gb-b", ["lg"])
    b.connect()
    b.credit(2)
    try:
        t, body = b.wait("dispatch", timeout=3)
        got = body.get("job")
    except TimeoutError:
        got = None
    check("the job dispatched and not accepted goes to another runner at once", got == waiting,
          got)
    check("no other job goes there", "dispatch" not in [t for t, _ in b.pending(0.5)])
    s = c.status(running)
    check("the job it accepted stays with it, running", s.get("status") == "running"
          and s.get("runner") == "gb-a", s)
    a.connect()
    st = wait_state(c, "gb-a", "busy", 2)
    check("its hello again: busy (it holds that job)", st == "busy", st)
    # a goodbye naming a seq the broker does not hold: the job waits
    u = FakeRunner(br, "gb-u", ["lu"])
    u.connect()
    u.credit(1)
    held = dispatched_job(u, c, "lu")
    u.c.send("goodbye", {"seq": u.seq + 5})
    st = wait_state(c, "gb-u", "stopped", 2)
    check("goodbye ahead of the log the broker holds: stopped", st == "stopped", st)
    v = FakeRunner(br, "gb-v", ["lu"])
    v.connect()
    v.credit(1)
    check("... its dispatched job is not queued again (it may be in the log the broker lacks)",
          "dispatch" not in [t for t, _ in v.pending(1.0)])
    check("... said in the broker's log", f"runner gb-u: its goodbye names seq {u.seq + 5} of its "
          "log, the broker holds 0" in broker_log(br))
    u.connect()     # back: its log (empty) does not accept the job: queued again
    t, body = v.wait("dispatch", timeout=3)
    check("... until its hello shows it never took the job", body.get("job") == held, body)
    for r in (a, b, u, v):
        r.c.close()
    c.close()


class StandIn:
    """A broker on a runner endpoint, written from PROTOCOL.md: welcome
    (seq 0), ack of every batch, heartbeats; what the runner sends is kept."""

    def __init__(self, endpoint):
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.rid, self.held, self.beat = None, 0, 0.0
        self.events, self.credits, self.bye = [], [], None

    def send(self, mtype, body):
        self.sock.send_multipart([self.rid, f"evrun1 {mtype}".encode(),
                                  msgpack.packb(body, use_bin_type=True)])

    def serve(self, done, secs):
        """Serves until done() holds (True) or secs pass (False)."""
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if done():
                return True
            if self.rid and time.monotonic() >= self.beat:
                self.send("heartbeat", {})
                self.beat = time.monotonic() + 0.2
            if not self.sock.poll(50):
                continue
            frames = self.sock.recv_multipart()
            rid, mtype = frames[0], frames[1].decode().split(" ", 1)[1]
            body = msgpack.unpackb(frames[-1], raw=False)
            if mtype == "hello":
                self.rid = rid
                self.send("welcome", {"runner": body["runner"], "seq": 0})
            elif mtype == "events":
                for ev in body["events"]:
                    if ev["seq"] == self.held + 1:
                        self.held = ev["seq"]
                        self.events.append(ev)
                self.send("ack", {"seq": self.held})
            elif mtype == "credit":
                self.credits.append(body.get("credit", 0))
            elif mtype == "goodbye":
                self.bye = body
        return done()

    def kinds(self, job):
        return [e["type"] for e in self.events if e.get("job") == job]


def case_stopping(br):
    ep = f"ipc://{br.root}/standin"
    sb = StandIn(ep)
    rn = start_runner(br, "gb-s", "--capacity", "2", "--stop-timeout", "20", endpoint=ep)
    one, two = new_ulid(), new_ulid()
    try:
        check("the runner says hello and asks for jobs",
              sb.serve(lambda: sb.rid and 2 in sb.credits, 10))
        sb.send("dispatch", {"job": one, "spec": process_spec("gbs", "sleep 2", "x")})
        check("it takes a job", sb.serve(lambda: "job.started" in sb.kinds(one), 10),
              sb.kinds(one))
        rn.send_signal(signal.SIGTERM)
        n = len(sb.credits)
        check("SIGTERM: credit 0", sb.serve(lambda: 0 in sb.credits[n:], 5), sb.credits)
        sb.send("dispatch", {"job": two, "spec": process_spec("gbs", "true", "x")})
        check("it says goodbye", sb.serve(lambda: sb.bye is not None, 30))
        sb.serve(lambda: False, 0.5)    # anything it still sends
        check("the dispatch after its credit 0 is not taken (no event of it)",
              sb.kinds(two) == [], sb.kinds(two))
        fin = [e for e in sb.events if e.get("job") == one and e["type"] == "job.finished"]
        check("its running job ended first", len(fin) == 1
              and fin[0]["data"].get("status") == "succeeded", sb.kinds(one))
        check("goodbye: the last seq of its log, all acknowledged",
              sb.bye and sb.bye.get("seq") == sb.held and sb.held > 0, (sb.bye, sb.held))
        check("goodbye: says why", sb.bye and sb.bye.get("reason") == "stopped by a signal",
              sb.bye)
        check("it exits 0", ended(rn, 10) == 0)
        with open(f"{br.root}/runner-gb-s.log") as f:
            check("its log says the job was not taken",
                  f"job {two} not taken: this runner is stopping" in f.read())
    finally:
        if rn.poll() is None:
            rn.kill()
            rn.wait()
        sb.sock.close()


CASES = {"sigterm": case_sigterm, "exits": case_exits, "returned": case_returned,
         "stopping": case_stopping}


if __name__ == "__main__":
    bus_control.CASES = CASES
    bus_control.__doc__ = __doc__
    sys.exit(bus_control.main())

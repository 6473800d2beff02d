#!/usr/bin/env python3
"""bench_gateway.py: the load client of tests/bench/bench-gateway (one run).

    bench_gateway.py --url URL --token TOKEN --gw-pid PID --bin BIN --state DIR
                     --tmp DIR [--followers 200] [--jobs 10] [--lines 200]
                     [--interval 0.1] [--rate 50] [--seconds 20] [--stall-bytes N]

Against a running broker, runners (labels `follow` and `burst`, process
executor) and evrun-gateway at URL, all at once:
  - JOBS `follow` jobs, each printing LINES lines "L i TIME" INTERVAL
    apart (TIME: the host's clock when printed);
  - FOLLOWERS Server-Sent-Events clients of their live logs (round robin
    over the jobs), all in one selectors loop; evrun-tail --pipeline follow
    on the bus next to them;
  - RATE submits a second through HTTP for SECONDS (a `burst` job each,
    one connection kept alive), and evrun-bench-gw-bus at RATE/10 on the
    bus in the same time;
  - one client that follows a job printing STALL_BYTES in 1000-byte lines
    and stops reading: the gateway must drop it (its idle timeout), and
    it resumes with Last-Event-ID;
  - GET /jobs/{id} and /jobs/{id}/artifacts of that big job once a second.
Then checks every follower got every event of its job once, by id (the
job's seq), ending with job.finished, and every line once in order.
Prints `name: value` lines (medians and p90 over the samples of the run).
Exit status 1 when something was lost or repeated, or a request failed.
Python standard library only; connects only to 127.0.0.1.
"""
import argparse
import http.client
import json
import os
import select
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

FOLLOW_YML = """pipeline: follow
executor: process
labels: [follow]
steps:
  - name: talk
    run: python3 -u {talk} {lines} {interval} {width}
"""
BURST_YML = """pipeline: burst
executor: process
labels: [burst]
steps:
  - {name: s, run: "true"}
"""
SKIP = 5    # lines not timed: printed before every follower had joined
TALK_PY = """import sys, time
n, pause, width = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
pad = "x" * width
for i in range(1, n + 1):
    print("L %d %.6f%s" % (i, time.time(), pad), flush=True)
    if pause:
        time.sleep(pause)
"""


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


class Api:
    """One kept-alive HTTP/1.1 connection to the gateway."""

    def __init__(self, url, token):
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.base, self.token = u.hostname, u.port, u.path, token
        self.conn = None

    def call(self, method, path, body=None, ctype=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            h = {"Authorization": "Bearer " + self.token}
            if ctype:
                h["Content-Type"] = ctype
            try:
                self.conn.request(method, self.base + path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return None


class Follower:
    """One SSE client, non-blocking: HTTP/1.1, chunked, parsed as it comes."""

    def __init__(self, host, port, path, token, job, last_id=None, rcvbuf=None):
        self.job, self.raw, self.text, self.head = job, b"", b"", None
        self.chunk, self.crlf, self.eof, self.closed = 0, 0, False, False
        self.ids, self.lines, self.delays, self.finished = [], [], [], False
        self.partial, self.status, self.error = "", None, None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((host, port))
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
               "Authorization: Bearer %s\r\n" % (path, token))
        if last_id is not None:
            req += "Last-Event-ID: %d\r\n" % last_id
        self.sock.sendall((req + "\r\n").encode())
        self.sock.setblocking(False)

    def readable(self):
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError as e:
            self.error, data = str(e), b""
        now = time.time()
        if not data:
            self.closed = True
            return
        self.raw += data
        if self.head is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head, self.raw = self.raw[:i].decode("latin-1"), self.raw[i + 4:]
            self.status = int(self.head.split()[1])
        self._dechunk()
        self._events(now)

    def _dechunk(self):
        while self.raw and not self.eof:
            if self.chunk == 0 and self.crlf == 0:
                i = self.raw.find(b"\r\n")
                if i < 0:
                    return
                size = int(self.raw[:i].split(b";")[0] or b"0", 16)
                self.raw = self.raw[i + 2:]
                if size == 0:
                    self.eof = True
                    return
                self.chunk, self.crlf = size, 2
            elif self.chunk:
                take = self.raw[:self.chunk]
                self.text += take
                self.raw, self.chunk = self.raw[len(take):], self.chunk - len(take)
            else:       # the CRLF after a chunk's data
                n = min(self.crlf, len(self.raw))
                self.raw, self.crlf = self.raw[n:], self.crlf - n

    def _events(self, now):
        while True:
            i = self.text.find(b"\n\n")
            if i < 0:
                return
            block, self.text = self.text[:i].decode("utf-8"), self.text[i + 2:]
            eid, data = None, None
            for line in block.split("\n"):
                if line.startswith("id: "):
                    eid = int(line[4:])
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line.startswith("event: error"):
                    self.error = block
            if eid is None or data is None:
                continue
            self.ids.append(eid)
            if data["type"] == "job.finished":
                self.finished = True
            if data["type"] == "step.output":
                self.partial += data["data"].get("bytes", "")
                *whole, self.partial = self.partial.split("\n")
                for ln in whole:
                    f = ln.split(" ")
                    if len(f) >= 3 and f[0] == "L":
                        self.lines.append(int(f[1]))
                        if int(f[1]) > SKIP:
                            self.delays.append((now - float(f[2][:17].rstrip("x"))) * 1000)

    def problems(self, nlines):
        """What is wrong with what this follower got, or None."""
        if self.status != 200:
            return "status %s" % self.status
        if not self.finished:
            return "no job.finished (closed %s, error %s)" % (self.closed, self.error)
        if self.ids != list(range(self.ids[0], self.ids[0] + len(self.ids))):
            return "ids not each once in order: %s" % self.ids[:50]
        if self.lines != list(range(1, nlines + 1)):
            return "lines not each once in order (%d of %d)" % (len(self.lines), nlines)
        return None


def drain(f, idle):
    """Reads f until its end, or until nothing came for idle seconds."""
    while not (f.closed or f.eof):
        r, _, _ = select.select([f.sock], [], [], idle)
        if not r:
            return
        f.readable()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def submit(api, yml):
    st, body = api.call("POST", "/jobs", yml, "application/yaml")
    if st != 201:
        raise SystemExit("bench_gateway: submit: %s %s" % (st, body[:300]))
    return json.loads(body)["id"]


def wait_end(api, job, secs):
    for _ in range(int(secs * 5)):
        st, body = api.call("GET", "/jobs/" + job)
        if st == 200 and json.loads(body)["status"] in ("succeeded", "failed", "cancelled"):
            return json.loads(body)["status"]
        time.sleep(0.2)
    return "timeout"


def main():
    ap = argparse.ArgumentParser()
    for k, d in (("url", None), ("token", None), ("gw-pid", None), ("bin", None),
                 ("state", None), ("tmp", None), ("followers", 200), ("jobs", 10),
                 ("lines", 200), ("interval", 0.1), ("rate", 50), ("seconds", 20),
                 ("stall-bytes", 20000000), ("idle-timeout", 30)):
        ap.add_argument("--" + k, default=d, required=d is None)
    a = ap.parse_args()
    gw_pid, nfol, njobs, nlines = int(a.gw_pid), int(a.followers), int(a.jobs), int(a.lines)
    rate, secs = float(a.rate), float(a.seconds)
    u = urllib.parse.urlparse(a.url)
    api = Api(a.url, a.token)
    talk = os.path.join(a.tmp, "talk.py")
    with open(talk, "w") as f:
        f.write(TALK_PY)
    follow_yml = FOLLOW_YML.format(talk=talk, lines=nlines, interval=a.interval, width=0)
    stall_lines = max(1, int(a.stall_bytes) // 1000)
    big_yml = FOLLOW_YML.format(talk=talk, lines=stall_lines, interval=0, width=980)
    with open(os.path.join(a.tmp, "burst.yml"), "w") as f:
        f.write(BURST_YML)
    out = {}
    failures = []

    api.call("GET", "/runners")
    time.sleep(0.5)
    out["gateway_rss_before_kib"] = rss_kib(gw_pid)

    # the bus's followers: evrun-tail --job of each job, lines stamped as they come
    bus_delays = []
    tails = []

    def tail_reader(proc):
        for line in proc.stdout:
            now = time.time()
            f = line.rstrip("\n").split(" | ", 1)
            w = f[1].split(" ") if len(f) == 2 else []
            if len(w) >= 3 and w[0] == "L" and int(w[1]) > SKIP:
                bus_delays.append((now - float(w[2][:17].rstrip("x"))) * 1000)

    # the big job and the client that stops reading
    big = submit(api, big_yml)
    stalled = Follower(u.hostname, u.port, u.path + "/jobs/%s/log" % big, a.token, big,
                       rcvbuf=4096)
    stall_t0 = time.time()

    jobs = [submit(api, follow_yml) for _ in range(njobs)]
    for job in jobs:
        tails.append(subprocess.Popen([os.path.join(a.bin, "evrun-tail"), "--state-dir",
                                       a.state, "--job", job], stdout=subprocess.PIPE,
                                      text=True, bufsize=1))
        threading.Thread(target=tail_reader, args=(tails[-1],), daemon=True).start()
    sel = selectors.DefaultSelector()
    fols = []
    t_conn = time.time()
    for i in range(nfol):
        job = jobs[i % njobs]
        f = Follower(u.hostname, u.port, u.path + "/jobs/%s/log" % job, a.token, job)
        sel.register(f.sock, selectors.EVENT_READ, f)
        fols.append(f)
    out["followers_connect_s"] = round(time.time() - t_conn, 2)

    stop = threading.Event()
    rss = []
    nthreads = []

    def sampler():
        while not stop.is_set():
            rss.append(rss_kib(gw_pid))
            nthreads.append(threads_of(gw_pid))
            time.sleep(0.5)
    threading.Thread(target=sampler, daemon=True).start()

    http_ms, get_ms, art_ms = [], [], []
    errors = []

    def submitter():
        sapi = Api(a.url, a.token)
        with open(os.path.join(a.tmp, "burst.yml")) as f:
            yml = f.read()
        t0, n = time.monotonic(), int(rate * secs)
        for k in range(n):
            d = t0 + k / rate - time.monotonic()
            if d > 0:
                time.sleep(d)
            t = time.monotonic()
            try:
                st, body = sapi.call("POST", "/jobs", yml, "application/yaml")
            except OSError as e:
                st, body = 0, str(e).encode()
            if st != 201:
                errors.append("submit: %s %s" % (st, body[:200]))
            else:
                http_ms.append((time.monotonic() - t) * 1000)

    def poller():
        papi = Api(a.url, a.token)
        while not stop.is_set():
            t = time.monotonic()
            st, _ = papi.call("GET", "/jobs/" + big)
            if st == 200:
                get_ms.append((time.monotonic() - t) * 1000)
            t = time.monotonic()
            st, _ = papi.call("GET", "/jobs/%s/artifacts" % big)
            if st == 200:
                art_ms.append((time.monotonic() - t) * 1000)
            time.sleep(1.0)

    bus = subprocess.Popen([os.path.join(a.bin, "evrun-bench-gw-bus"), a.state,
                            os.path.join(a.tmp, "burst.yml"), str(rate / 10), str(secs)],
                           stdout=subprocess.PIPE, text=True)
    subs = [threading.Thread(target=submitter), threading.Thread(target=poller, daemon=True)]
    for t in subs:
        t.start()

    # serve the followers until each has ended (or a deadline)
    deadline = time.time() + nlines * float(a.interval) + secs + 120
    live = len(fols)
    while live and time.time() < deadline:
        for key, _ in sel.select(timeout=1.0):
            f = key.data
            f.readable()
            if f.closed or f.eof:
                sel.unregister(f.sock)
                f.sock.close()
                live -= 1
    for f in fols:
        if not (f.closed or f.eof):
            f.sock.close()
    subs[0].join()
    for line in bus.communicate()[0].splitlines():
        k, _, v = line.partition(": ")
        out[k] = v
    if bus.returncode:
        failures.append("evrun-bench-gw-bus failed")

    # the client that stopped reading: wait past the idle timeout, then read
    # what the socket holds; a drop ends it without job.finished
    wait = float(a.idle_timeout) + 5 - (time.time() - stall_t0)
    if wait > 0:
        time.sleep(wait)
    out["gateway_rss_stalled_kib"] = rss_kib(gw_pid)
    drain(stalled, 5)
    stalled.sock.close()
    dropped = not stalled.finished
    out["stalled_client_dropped"] = "yes" if dropped else "no"
    out["stalled_client_events_before_drop"] = len(stalled.ids)
    if not dropped:
        failures.append("the client that stopped reading was not dropped within the idle "
                        "timeout (%ss)" % a.idle_timeout)
    # resume from its last event: every line of the big job once
    if stalled.ids:
        r = Follower(u.hostname, u.port, u.path + "/jobs/%s/log" % big, a.token, big,
                     last_id=stalled.ids[-1])
        r.partial = stalled.partial
        drain(r, 60)
        r.sock.close()
        ids = stalled.ids + r.ids
        lines = stalled.lines + r.lines
        ok = (ids == list(range(1, len(ids) + 1)) and r.finished
              and lines == list(range(1, stall_lines + 1)))
        out["stalled_client_resumed_complete"] = "yes" if ok else "no"
        if not ok:
            failures.append("the stalled client, resumed with Last-Event-ID %d, did not get "
                            "every event once (%d ids, %d of %d lines)"
                            % (stalled.ids[-1], len(ids), len(lines), stall_lines))
    stop.set()
    for t in tails:
        t.terminate()
        t.wait()

    bad = [(i, p) for i, p in ((i, f.problems(nlines)) for i, f in enumerate(fols)) if p]
    out["followers"] = nfol
    out["followers_complete"] = nfol - len(bad)
    for i, p in bad[:5]:
        failures.append("follower %d (job %s): %s" % (i, fols[i].job, p))
    delays = [d for f in fols for d in f.delays]
    out["http_submits"] = len(http_ms)
    out["http_submit_ms_median"] = "%.2f" % statistics.median(http_ms) if http_ms else "nan"
    out["http_submit_ms_p90"] = "%.2f" % pct(http_ms, 0.9)
    out["sse_line_delay_ms_median"] = "%.1f" % statistics.median(delays) if delays else "nan"
    out["sse_line_delay_ms_p90"] = "%.1f" % pct(delays, 0.9)
    out["bus_line_delay_ms_median"] = ("%.1f" % statistics.median(bus_delays)
                                       if bus_delays else "nan")
    out["bus_line_delay_ms_p90"] = "%.1f" % pct(bus_delays, 0.9)
    out["get_job_big_ms_median"] = "%.1f" % statistics.median(get_ms) if get_ms else "nan"
    out["get_artifacts_big_ms_median"] = "%.1f" % statistics.median(art_ms) if art_ms else "nan"
    out["gateway_rss_during_max_kib"] = max(rss) if rss else 0
    out["gateway_threads_max"] = max(nthreads) if nthreads else 0
    time.sleep(3)
    out["gateway_rss_after_kib"] = rss_kib(gw_pid)
    out["big_job_status"] = wait_end(api, big, 120)
    for e in errors[:5]:
        failures.append(e)
    for k, v in out.items():
        print("%s: %s" % (k, v))
    for f in failures:
        print("bench_gateway: FAIL: " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

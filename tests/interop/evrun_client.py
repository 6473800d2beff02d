"""A small client for the evrun wire protocol (evrun1), written from
schema/PROTOCOL.md alone.  Needs pyzmq and msgpack (stdlib otherwise).

    c = Client("ipc:///path/bus/clients")
    job = new_ulid()
    c.submit(job, make_spec("demo", [make_step("one", "echo hi")], image="busybox"))
    for ev in Subscriber(...).follow(job): ...
"""
import os
import re
import threading
import time

import msgpack
import zmq

PROTOCOL = "evrun1"
HEADER_MAX = 64                 # EVR_MSG_HEADER_MAX: a header is shorter than this
MAX_BYTES = 4 * 1024 * 1024     # EVR_MSG_MAX_BYTES
STREAM_ITEMS = {"jobs": "job", "runners": "runner", "history": "event", "demands": "demand"}
ERROR_CODES = ("bad_request", "unknown_type", "not_found", "queue_full", "busy",
               "conflict", "too_large", "unavailable", "internal")
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "timed_out", "lost")


class ProtocolError(Exception):
    """The peer sent something PROTOCOL.md does not allow."""


class ErrorAnswer(Exception):
    """The broker answered with an `error` message."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


# --- ULIDs (Identifiers) ------------------------------------------------------

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_ulid_lock = threading.Lock()
_ulid_last = [-1, 0]            # last ms, last random part


def encode_ulid(ms, rand):
    """48-bit ms timestamp + 80 random bits -> 26 upper-case Crockford chars."""
    v = (ms << 80) | rand
    return "".join(CROCKFORD[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


def ulid_time(ulid):
    """The millisecond timestamp of a ULID."""
    v = 0
    for ch in ulid:
        v = (v << 5) | CROCKFORD.index(ch)
    return v >> 80


def is_ulid(s):
    return isinstance(s, str) and _ULID_RE.fullmatch(s) is not None


def new_ulid():
    """A new ULID; strictly increasing within one millisecond of this process."""
    with _ulid_lock:
        ms = max(time.time_ns() // 1_000_000, _ulid_last[0])
        if ms == _ulid_last[0]:
            rand = _ulid_last[1] + 1
            if rand >> 80:          # random part exhausted: move to the next ms
                ms, rand = ms + 1, int.from_bytes(os.urandom(10), "big")
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _ulid_last[:] = [ms, rand]
        return encode_ulid(ms, rand)


# --- Encoding -----------------------------------------------------------------

def _is_zero(v):
    return v is None or v is False or (type(v) is not bool and v in ("", 0, [], {}, b""))


def compact(fields):
    """Drop optional fields holding their zero value (absent fields are omitted)."""
    return {k: v for k, v in fields.items() if not _is_zero(v)}


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(body):
    """Exactly one msgpack map (trailing bytes are an error); non-str keys ignored."""
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as e:
        raise ProtocolError(f"undecodable body: {e}") from e
    if not isinstance(obj, dict):
        raise ProtocolError(f"body is not a map: {type(obj).__name__}")
    return {k: v for k, v in obj.items() if isinstance(k, str)}


def frames_for(mtype, fields=None):
    """The two frames of a message: header `evrun1 <type>`, msgpack map body."""
    header = f"{PROTOCOL} {mtype}".encode()
    assert len(header) < HEADER_MAX, "header too long"
    return [header, pack(fields or {})]


def parse_header(frame):
    try:
        text = frame.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(f"header not ASCII: {frame!r}") from None
    proto, sep, mtype = text.partition(" ")
    if proto != PROTOCOL or not sep or not mtype or " " in mtype or len(frame) >= HEADER_MAX:
        raise ProtocolError(f"bad header {frame!r}")
    return mtype


def parse_message(frames):
    """(type, body) of a message received on a DEALER (no routing envelope):
    first frame header, last frame body, middle frames ignored."""
    if len(frames) < 2:
        raise ProtocolError(f"message of {len(frames)} frame(s)")
    return parse_header(frames[0]), unpack(frames[-1])


# --- Pipeline spec --------------------------------------------------------------

def make_step(name, run, image=None, needs=None, timeout=0, artifacts=None,
              env=None, retry=None):
    """A `step` record; timeout in ms; retry = {"on": [...], "max": n}."""
    return {"name": name, "run": run, **compact(
        {"image": image, "needs": needs, "timeout": timeout,
         "artifacts": artifacts, "env": env, "retry": retry})}


def make_spec(pipeline, steps, image=None, labels=None, concurrency=0, parallel=0,
              on_failure=None, queue=None, timeout=0, env=None, args=None,
              secrets=None, resources=None):
    """A `spec` record.  `args` maps a name to {"default":..,"description":..};
    `queue` is kept when given, even empty (it then carries meaning)."""
    spec = {"pipeline": pipeline, "steps": list(steps)}
    spec.update(compact({"image": image, "labels": labels, "concurrency": concurrency,
                         "parallel": parallel, "on_failure": on_failure,
                         "timeout": timeout, "env": env, "args": args,
                         "secrets": secrets, "resources": resources}))
    if queue is not None:
        spec["queue"] = compact(queue)
    return spec


# --- Client (DEALER) --------------------------------------------------------------

class Client:
    """Requests and answers on the broker's client ROUTER.  One request is
    outstanding at a time: answers carry no request id and come in order."""

    def __init__(self, endpoint, timeout=5.0, ctx=None):
        self.ctx = ctx or zmq.Context.instance()
        self.timeout = timeout
        self.frame_counts = set()   # frames per answer seen (the document says 2)
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_BYTES)
        self.sock.connect(endpoint)

    def close(self):
        self.sock.close()

    def send_frames(self, frames):
        self.sock.send_multipart(frames)

    def send(self, mtype, fields=None):
        self.send_frames(frames_for(mtype, fields))

    def recv_frames(self, timeout=None):
        t = self.timeout if timeout is None else timeout
        if not self.sock.poll(int(t * 1000)):
            raise TimeoutError(f"no answer within {t} s")
        frames = self.sock.recv_multipart()
        self.frame_counts.add(len(frames))
        return frames

    def recv(self, timeout=None):
        """The next message as (type, body)."""
        return parse_message(self.recv_frames(timeout))

    @staticmethod
    def _raise_error(mtype, body):
        if mtype == "error":
            code, msg = body.get("code"), body.get("message")
            if not isinstance(code, str) or not isinstance(msg, str):
                raise ProtocolError(f"error without code/message: {body!r}")
            raise ErrorAnswer(code, msg)

    def request(self, mtype, fields=None, expect=None):
        """Send one request and return its single answer (type, body);
        raise ErrorAnswer for `error`, ProtocolError for an unexpected type."""
        self.send(mtype, fields)
        atype, body = self.recv()
        self._raise_error(atype, body)
        if expect and atype not in expect:
            raise ProtocolError(f"{mtype}: answer {atype!r}, expected {expect}")
        return atype, body

    def stream(self, mtype, fields=None):
        """Send a stream request; return (items, end body).  Items are the
        bodies of the stream's messages; raise ErrorAnswer on `error`."""
        item_type = STREAM_ITEMS[mtype]
        self.send(mtype, fields)
        items = []
        while True:
            atype, body = self.recv()
            self._raise_error(atype, body)
            if atype == "end":
                return items, body
            if atype != item_type:
                raise ProtocolError(f"{mtype} stream: got {atype!r}, expected {item_type!r} or 'end'")
            items.append(body)

    # requests
    def submit(self, job, spec, args=None, labels=None):
        return self.request("submit", {"job": job, "spec": spec,
                                       **compact({"args": args, "labels": labels})},
                            expect=("accepted",))[1]

    def status(self, job):
        return self.request("status", {"job": job}, expect=("job",))[1]

    def history(self, job, from_seq=1):
        """One page: (events, end body): the `event` records, not the message
        bodies; `end.more` says the page stopped at its limit."""
        items, end = self.stream("history", {"job": job, **compact({"from": from_seq})})
        return [it.get("event") for it in items], end

    def history_all(self, job, from_seq=1):
        """Every stored event from from_seq on: pages asked while `end.more`."""
        events = []
        while True:
            page, end = self.history(job, from_seq)
            events += page
            if not end.get("more"):
                return events
            if not page:
                raise ProtocolError(f"history of {job}: more: true on an empty page")
            from_seq = page[-1]["jseq"] + 1

    def jobs(self, pipeline=None, status=None, limit=0):
        return self.stream("jobs", compact({"pipeline": pipeline, "status": status,
                                            "limit": limit}))

    def runners(self):
        return self.stream("runners")

    def cancel(self, job, reason=None):
        return self.request("cancel", {"job": job, **compact({"reason": reason})},
                            expect=("ok",))[1]

    def pause(self, job):
        return self.request("pause", {"job": job}, expect=("ok",))[1]

    def resume(self, job):
        return self.request("resume", {"job": job}, expect=("ok",))[1]

    def drain(self, runner):
        return self.request("drain", {"runner": runner}, expect=("ok",))[1]


# --- Subscriber (SUB on the XPUB) ---------------------------------------------------

class Publication:
    """One publication: its topic, how many frames it had, and its body
    (an `event` or `runner` message body)."""

    def __init__(self, frames):
        if len(frames) < 2:
            raise ProtocolError(f"publication of {len(frames)} frame(s)")
        self.nframes = len(frames)
        self.topic = frames[0].decode("utf-8", "replace")
        self.body = unpack(frames[-1])

    @property
    def event(self):
        return self.body.get("event")


class Subscriber:
    def __init__(self, endpoint, ctx=None):
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_BYTES)
        self.sock.connect(endpoint)

    def close(self):
        self.sock.close()

    def subscribe(self, prefix):
        """Byte-prefix subscription: `ev.<job>.` one job, `ev.` every job, `rn.` runners."""
        self.sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def recv(self, timeout):
        """The next Publication, or None after `timeout` seconds."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return Publication(self.sock.recv_multipart())

    def follow(self, job, client, timeout=60.0):
        """Yield every event of `job` once, in jseq order, until job.finished
        (the History sequence).  Subscribe to `ev.<job>.` before calling this."""
        last, deadline = 0, time.monotonic() + timeout
        pending = client.history_all(job, 1)
        while True:
            while pending:
                ev = pending.pop(0)
                if ev["jseq"] <= last:
                    continue                    # already yielded
                if ev["jseq"] > last + 1:       # gap: ask history again
                    pending = client.history_all(job, last + 1)
                    if not pending or pending[0]["jseq"] != last + 1:
                        raise ProtocolError(f"history of {job} lacks jseq {last + 1}")
                    continue
                last += 1
                yield ev
                if ev["type"] == "job.finished":
                    return
            left = deadline - time.monotonic()
            pub = self.recv(left) if left > 0 else None
            if pub is None:
                raise TimeoutError(f"job {job}: no job.finished within {timeout} s")
            if isinstance(pub.event, dict) and pub.event.get("job") == job:
                pending = [pub.event]

"""artifacts_broker.py EP: stands in for evrun-broker on its client
endpoint EP (binds it), written from schema/PROTOCOL.md alone (pyzmq and
msgpack), to play a retried step whose later copy reaches the broker
between `evrun-cli artifacts` reading the job's history and fetching:

  history (from 1)  answers the job's events so far: step b's first
                    attempt's step.artifact of out.txt (sha256 A);
  fetch A           `not_found`, the broker holding another copy (B: the
                    second attempt's, shipped meanwhile);
  history (from 2)  answers the events since: the second attempt's
                    step.artifact of out.txt (sha256 B);
  fetch B           the bytes of B.

Prints each request's type (and the sha256 a fetch names) on stdout;
exits 0 once B's bytes went out and a last `history` was not asked (or
after 20 s, 1).
"""
import hashlib
import sys
import time

import msgpack
import zmq

PROTO = "evrun1"
JOB = "01JQ7ZK3M8X2V9T4B6N0C5D7EA"
OLD = b"first attempt\n"
NEW = b"second attempt, the one to keep\n"
SHA_OLD = hashlib.sha256(OLD).hexdigest()
SHA_NEW = hashlib.sha256(NEW).hexdigest()


def send(sock, rid, mtype, body):
    sock.send_multipart([rid, f"{PROTO} {mtype}".encode(),
                         msgpack.packb(body, use_bin_type=True)])


def event(jseq, etype, data):
    return {"event": {"seq": jseq, "job": JOB, "jseq": jseq, "type": etype,
                      "time": time.time_ns(), "data": data}}


def artifact(jseq, attempt, sha, data):
    return event(jseq, "step.artifact", {"step": "b", "attempt": attempt, "path": "out.txt",
                                         "sha256": sha, "size": len(data)})


EVENTS = [artifact(1, 1, SHA_OLD, OLD), artifact(2, 2, SHA_NEW, NEW)]


def main():
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(sys.argv[1])
    shown = 1           # the events stored when the first history is read
    sent_new = False
    deadline = time.time() + 20
    while time.time() < deadline:
        if not sock.poll(200):
            continue
        rid, head, body = sock.recv_multipart()
        mtype = head.decode().split(" ", 1)[1]
        req = msgpack.unpackb(body, raw=False)
        print(mtype, req.get("sha256", ""), flush=True)
        if mtype == "history":
            first = req.get("from", 1)
            for ev in EVENTS[first - 1:shown]:
                send(sock, rid, "event", ev)
            send(sock, rid, "end", {"count": max(0, shown - first + 1)})
        elif mtype == "fetch" and req.get("sha256") == SHA_NEW:
            off = req.get("offset", 0)
            send(sock, rid, "artifact_data", {"step": "b", "path": "out.txt", "size": len(NEW),
                                              "offset": off, "data": NEW[off:]})
            sent_new = True
        elif mtype == "fetch":
            shown = 2   # the second attempt's copy arrived, its event stored before
            send(sock, rid, "error", {
                "code": "not_found",
                "message": f"the broker holds another copy (sha256 {SHA_NEW}, {len(NEW)} "
                           f"bytes) of artifact out.txt of step b of job {JOB}, not the copy "
                           f"asked for (sha256 {req.get('sha256')})"})
        else:
            send(sock, rid, "error", {"code": "bad_request", "message": "not played here"})
        if sent_new:
            time.sleep(0.5)
            return 0
    print("FAILED: B's bytes never asked for", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""metrics_broker.py CLIENT_EP EVENTS_EP DIR: stands in for evrun-broker on
its client endpoint (a ROUTER) and its event stream (an XPUB), binding
both, written from schema/PROTOCOL.md alone (pyzmq and msgpack), to feed
evrun-gateway's GET /metrics more than its label bound and a hung broker:

  jobs       status queued: one job of each of the pipelines p000..p299
             (300, past the 256 with labels of their own); none of the
             other statuses;
  runners    one idle runner;
  pipelines  "dup" registered by a.yml (2 waiting, 1 running), and b.yml
             naming "dup" too, refused for it (load_error), as the broker
             lists a second file of a registered name;
  events     once the gateway subscribes to "ev.": job.accepted and
             job.finished (succeeded) of each of those 300 jobs;
  DIR/hang   while this file is there, requests are read and never
             answered (a broker stopped with SIGSTOP answers no more).

Any other request gets `error{code: bad_request}`.  Exits once DIR/stop
is there, or after 120 s.
"""
import os
import sys
import time

import msgpack
import zmq

PROTO = "evrun1"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
N = 300


def send(sock, rid, mtype, body):
    sock.send_multipart([rid, f"{PROTO} {mtype}".encode(),
                         msgpack.packb(body, use_bin_type=True)])


def job_id(i):
    tail = "".join(CROCKFORD[(i >> (5 * k)) & 31] for k in (3, 2, 1, 0))
    return "01JQ7ZK3M8X2V9T4B6N0C5" + tail


def pipe(i):
    return "p%03d" % i


def event(i, jseq, etype, data):
    return {"event": {"seq": 2 * i + jseq, "job": job_id(i), "jseq": jseq, "type": etype,
                      "time": time.time_ns(), "data": data}}


def publish(pub):
    for i in range(N):
        spec = {"pipeline": pipe(i), "executor": "process",
                "steps": [{"name": "s", "run": ""}]}
        for jseq, etype, data in ((1, "job.accepted", {"pipeline": pipe(i), "spec": spec}),
                                  (2, "job.finished", {"status": "succeeded"})):
            pub.send_multipart([f"ev.{job_id(i)}.{etype}".encode(),
                                msgpack.packb(event(i, jseq, etype, data), use_bin_type=True)])


def answer(sock, rid, mtype, req):
    if mtype == "jobs":
        n = 0
        if req.get("status") == "queued":
            for i in range(N):
                send(sock, rid, "job", {"job": job_id(i), "pipeline": pipe(i),
                                        "status": "queued"})
                n += 1
        send(sock, rid, "end", {"count": n})
    elif mtype == "runners":
        send(sock, rid, "runner", {"runner": "fake-1", "capacity": 1, "state": "idle"})
        send(sock, rid, "end", {"count": 1})
    elif mtype == "pipelines":
        send(sock, rid, "pipeline", {"pipeline": "dup", "file": "a.yml", "waiting": 2,
                                     "running": 1})
        send(sock, rid, "pipeline", {
            "pipeline": "dup", "file": "b.yml",
            "load_error": "b.yml: pipeline \"dup\" is registered by a.yml already: a name "
                          "is registered once (rename the pipeline in one of the files)"})
        send(sock, rid, "end", {"count": 2})
    else:
        send(sock, rid, "error", {"code": "bad_request", "message": "not played here"})


def main():
    cep, pep, folder = sys.argv[1:4]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(cep)
    pub = ctx.socket(zmq.XPUB)
    pub.bind(pep)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(pub, zmq.POLLIN)
    deadline = time.time() + 120
    while time.time() < deadline and not os.path.exists(os.path.join(folder, "stop")):
        ready = dict(poller.poll(200))
        if pub in ready:
            sub = pub.recv()
            if sub[:1] == b"\x01" and b"ev.".startswith(sub[1:]):
                publish(pub)
        if sock in ready:
            rid, head, body = sock.recv_multipart()
            if os.path.exists(os.path.join(folder, "hang")):
                continue
            answer(sock, rid, head.decode().split(" ", 1)[1], msgpack.unpackb(body, raw=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

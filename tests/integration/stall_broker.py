"""stall_broker.py CLIENT_EP DIR: stands in for evrun-broker on its client
endpoint (a ROUTER, bound), written from schema/PROTOCOL.md alone (pyzmq
and msgpack), to hold one answer of `evrun-cli run --wait` back while the
test interrupts it (a Ctrl-C while the client waits for that answer):

  submit   accepted, at once;
  runners  one idle runner offering executor:process, then `end`;
  status   the job running;
  DIR/stall-TYPE  the next TYPE request (runners or status; the file is
           removed then) makes DIR/asked-TYPE and is answered only once
           DIR/go is there (late: a client that stopped waiting has gone
           on, or asks on a fresh connection); a later request on the
           same connection waits behind it (a broker answers a
           connection's requests in order).

Any other request gets `error{code: bad_request}`.  Prints each request
type on stdout as it comes.  Exits once DIR/stop is there, or after 60 s.
"""
import os
import sys
import time

import msgpack
import zmq

PROTO = "evrun1"


def send(sock, rid, mtype, body):
    sock.send_multipart([rid, f"{PROTO} {mtype}".encode(),
                         msgpack.packb(body, use_bin_type=True)])


def answer(sock, rid, mtype, req):
    if mtype == "submit":
        send(sock, rid, "accepted", {"job": req["job"]})
    elif mtype == "runners":
        send(sock, rid, "runner", {"runner": "stall-1", "labels": ["executor:process"],
                                   "capacity": 1, "state": "idle", "credit": 1})
        send(sock, rid, "end", {"count": 1})
    elif mtype == "status":
        send(sock, rid, "job", {"job": req["job"], "pipeline": "stall", "status": "running"})
    else:
        send(sock, rid, "error", {"code": "bad_request", "message": "not played here"})


def main():
    cep, folder = sys.argv[1:3]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(cep)
    held = []
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(os.path.join(folder, "stop")):
        if held and os.path.exists(os.path.join(folder, "go")):
            for rid, mtype, req in held:
                answer(sock, rid, mtype, req)
            held = []
        if not sock.poll(20):
            continue
        rid, head, body = sock.recv_multipart()
        mtype, req = head.decode().split(" ", 1)[1], msgpack.unpackb(body, raw=False)
        print(mtype, flush=True)
        if os.path.exists(os.path.join(folder, "stall-" + mtype)):
            os.remove(os.path.join(folder, "stall-" + mtype))   # the first one only
            held.append((rid, mtype, req))
            open(os.path.join(folder, "asked-" + mtype), "w").close()
            continue
        if any(h[0] == rid for h in held):
            held.append((rid, mtype, req))
            continue
        answer(sock, rid, mtype, req)
    return 0


if __name__ == "__main__":
    sys.exit(main())

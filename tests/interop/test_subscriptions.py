"""test_subscriptions.py: what a subscriber may send the broker's event
socket, against a real broker with no runner (no podman):
broker_py.sh starts it.

A subscriber sends subscriptions only, each a byte and a topic prefix, and
no topic is longer than `rn.` and a 64-byte runner id.  libzmq keeps each
subscription in a trie of some 36 bytes a byte of prefix while its
subscriber stays connected, so the broker takes frames of at most 4096
bytes from subscribers (PROTOCOL.md "Topics on the XPUB socket"): a longer
one closes that subscriber's connection.  Before, 300 subscriptions of
20 KB (6 MB sent) cost the broker some 180 MB.  A subscriber that sends
only short subscriptions is served as ever.  Written from
schema/PROTOCOL.md, with the interop client's ULIDs.
"""
import os
import sys
import time

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402

check = Checks("test_subscriptions")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    pid = int(os.environ["EVR_BROKER_PID"])
    ctx = zmq.Context.instance()
    events_ep, runners_ep = os.environ["EVR_EVENTS_EP"], os.environ["EVR_RUNNER_EP"]

    before = rss_kib(pid)
    x = ctx.socket(zmq.XSUB)
    x.setsockopt(zmq.LINGER, 0)
    x.setsockopt(zmq.SNDHWM, 0)
    x.connect(events_ep)
    time.sleep(0.3)
    for i in range(300):   # distinct, so that no two share a trie path
        x.send(b"\x01ev." + os.urandom(8) + b"y" * 20000)
    time.sleep(3)
    grown = rss_kib(pid) - before
    check(f"300 subscriptions of 20 KB cost the broker under 40 MiB ({grown} KiB)",
          grown < 40 * 1024)
    x.close()

    # a subscriber of short prefixes is served: rn.<runner> at a hello
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVTIMEO, 5000)
    sub.connect(events_ep)
    sub.setsockopt(zmq.SUBSCRIBE, b"rn.subs-check")
    time.sleep(0.5)
    r = ctx.socket(zmq.DEALER)
    r.setsockopt(zmq.LINGER, 0)
    r.setsockopt(zmq.RCVTIMEO, 5000)
    r.connect(runners_ep)
    r.send_multipart([b"evrun1 hello", msgpack.packb(
        {"runner": "subs-check", "capacity": 1, "version": "test"})])
    try:
        welcome = r.recv_multipart()[0]
        topic = sub.recv_multipart()[0]
    except zmq.Again:
        welcome = topic = None
    check("a hello is welcomed", welcome == b"evrun1 welcome", repr(welcome))
    check("its rn. publication reaches a subscriber of short prefixes",
          topic == b"rn.subs-check", repr(topic))
    r.send_multipart([b"evrun1 goodbye", msgpack.packb({"seq": 0})])
    time.sleep(0.2)
    r.close()
    sub.close()
    return check.end()


if __name__ == "__main__":
    sys.exit(main())

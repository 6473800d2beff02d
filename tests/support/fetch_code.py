#!/usr/bin/env python3
"""fetch_code.py SOCKET JOB STEP PATH SHA256 EXPECT [WANT [OFFSET]]: one
`fetch` of an artifact file (schema/PROTOCOL.md) on the broker's ipc://
client socket, with `sha256` when SHA256 is not empty (and `offset`
OFFSET); exit 0 when the answer is EXPECT: an error code, or
`artifact_data`; and, WANT given, an error's message holds WANT, or the
data is WANT exactly (WANT "*": any message or data, to give an OFFSET
alone).  Prints the answer otherwise."""
import sys

import msgpack
import zmq


def main():
    sock_path, job, step, path, sha, expect = sys.argv[1:7]
    want = sys.argv[7] if len(sys.argv) > 7 else None
    body = {"job": job, "step": step, "path": path}
    if len(sys.argv) > 8:
        body["offset"] = int(sys.argv[8])
    if sha:
        body["sha256"] = sha
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect("ipc://" + sock_path)
    s.send_multipart([b"evrun1 fetch", msgpack.packb(body, use_bin_type=True)])
    if not s.poll(10000):
        print("fetch_code: no answer within 10 s", file=sys.stderr)
        return 1
    frames = s.recv_multipart()
    mtype = frames[0].decode("ascii", "replace").partition(" ")[2]
    answer = msgpack.unpackb(frames[-1], raw=False)
    got = answer.get("code") if mtype == "error" else mtype
    s.close()
    ctx.term()
    if got != expect:
        print(f"fetch_code: expected {expect}, got {mtype}: {answer!r}", file=sys.stderr)
        return 1
    if want is not None and want != "*" and not (want in answer.get("message", "") if mtype == "error"
                                 else answer.get("data", b"") == want.encode()):
        print(f"fetch_code: expected {want!r} in the answer, got {mtype}: {answer!r}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""http_raw.py PORT OUTDIR [--delay S] [--wait S] [--rcvbuf N] [--pause S]: one raw
HTTP exchange with 127.0.0.1:PORT, for requests curl will not make
(test_gateway.sh, cases bad_input and stalled_resume).

Sends stdin's bytes as they are (with --delay, one byte at a time that
many seconds apart, stopping when the server closes), then reads the
answer until the server closes the connection or nothing comes for
--wait seconds (default 10; 0: reads nothing, closes).  With --pause, reads nothing for that many
seconds first (a client that stops reading; --rcvbuf shrinks its socket
buffer).  Writes the answer's head to OUTDIR/headers and its body
(de-chunked; with a Content-Length, that many bytes) to OUTDIR/body,
what followed it (the answer to a next request) to OUTDIR/rest; prints
"STATUS SECONDS CLOSED": the status (000 when no answer came), the
seconds from the first byte sent to the end, and whether the server
closed the connection (closed / open).
"""
import socket
import sys
import time


def dechunk(b):
    out = b""
    while b:
        i = b.find(b"\r\n")
        if i < 0:
            break
        n = int(b[:i].split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += b[i + 2:i + 2 + n]
        b = b[i + 2 + n + 2:]
    return out


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    opts = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    delay = float(opts.get("--delay", 0))
    wait = float(opts.get("--wait", 10))
    req = sys.stdin.buffer.read()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if "--rcvbuf" in opts:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(opts["--rcvbuf"]))
    s.connect(("127.0.0.1", port))
    t0 = time.monotonic()
    closed = False
    try:
        if delay:
            for i in range(len(req)):
                s.sendall(req[i:i + 1])
                time.sleep(delay)
        else:
            s.sendall(req)
    except OSError:
        closed = True      # reset or broken pipe: the server closed it
    if "--pause" in opts:
        time.sleep(float(opts["--pause"]))
    data = b""
    s.settimeout(wait)
    try:
        while wait > 0:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            data += b
    except socket.timeout:
        pass
    except OSError:
        closed = True
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "000"
    rest = b""
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    else:
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                n = int(value)
                body, rest = body[:n], body[n:]
    with open(outdir + "/headers", "wb") as f:
        f.write(head)
    with open(outdir + "/body", "wb") as f:
        f.write(body)
    with open(outdir + "/rest", "wb") as f:
        f.write(rest)
    print(status, "%.1f" % (time.monotonic() - t0), "closed" if closed else "open")


if __name__ == "__main__":
    main()

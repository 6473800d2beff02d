#!/usr/bin/env python3
"""podman_proxy.py LISTEN TARGET LOG [REFUSE]: a unix-socket proxy in front
of a podman service that appends each HTTP request line it passes ("POST
/v4.0.0/libpod/images/pull?..."), one a line, to LOG, so that a test can
count the calls a runner made.  With REFUSE, a request whose line holds
that text is not passed on: the proxy answers it with podman's 500 error
("refused by podman_proxy.py") and closes the connection; with
EVR_PROXY_ANSWER=garbage it answers 200 with a body that is no JSON
("<html>podman_proxy.py garbage"), with EVR_PROXY_ANSWER=text500 a 500
whose body is no JSON (a proxy's or a crashed service's page).  Runs
until killed."""
import os
import re
import socket
import sys
import threading

listen, target, log = sys.argv[1:4]
refuse = sys.argv[4].encode() if len(sys.argv) > 4 else None
REFUSAL = (b'{"cause":"refused","message":"refused by podman_proxy.py","response":500}')
ANSWER = os.environ.get("EVR_PROXY_ANSWER", "")
STATUS = b"500 Internal Server Error"
if ANSWER == "garbage":
    STATUS, REFUSAL = b"200 OK", b"<html>podman_proxy.py garbage"
elif ANSWER == "text500":
    REFUSAL = b"<html>502 bad gateway (podman_proxy.py)</html>"
REQ = re.compile(rb"(?:^|\r\n)((?:GET|POST|PUT|DELETE|HEAD) [^ \r\n]+) HTTP/1\.[01]\r\n")
lock = threading.Lock()


def pump(src, dst, logged):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if logged:
                lines = [m.group(1) for m in REQ.finditer(data)]
                with lock, open(log, "ab") as f:
                    for line in lines:
                        f.write(line + b"\n")
                if refuse and any(refuse in line for line in lines):
                    src.sendall(b"HTTP/1.1 " + STATUS + b"\r\nContent-Type: "
                                b"application/json\r\nConnection: close\r\nContent-Length: "
                                + str(len(REFUSAL)).encode() + b"\r\n\r\n" + REFUSAL)
                    break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client):
    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        up.connect(target)
    except OSError:
        client.close()
        return
    threading.Thread(target=pump, args=(up, client, False), daemon=True).start()
    pump(client, up, True)


if os.path.exists(listen):
    os.unlink(listen)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(listen)
srv.listen(64)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()

#!/usr/bin/env python3
"""podman_proxy.py LISTEN TARGET LOG: a unix-socket proxy in front of a
podman service that appends each HTTP request line it passes ("POST
/v4.0.0/libpod/images/pull?..."), one a line, to LOG, so that a test can
count the calls a runner made.  Runs until killed."""
import os
import re
import socket
import sys
import threading

listen, target, log = sys.argv[1:4]
REQ = re.compile(rb"(?:^|\r\n)((?:GET|POST|PUT|DELETE|HEAD) [^ \r\n]+) HTTP/1\.[01]\r\n")
lock = threading.Lock()


def pump(src, dst, logged):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if logged:
                with lock, open(log, "ab") as f:
                    for m in REQ.finditer(data):
                        f.write(m.group(1) + b"\n")
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

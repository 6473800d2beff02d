#!/usr/bin/python3
"""Helpers of test_limits.sh (standard library only, 127.0.0.1 only).

  serve PORT DIR OTHER_PORT   HTTP on 127.0.0.1:PORT: files of DIR; /same/NAME
                              redirects to /NAME, /other/NAME to the same
                              NAME on 127.0.0.1:OTHER_PORT; /error-body answers
                              500 with a body of 64 MiB sent slowly (about 10
                              s), and writes DIR/error-body.ended when the
                              client ends the transfer before it is all sent
  gztar OUT NAME SIZE         a gzip'd tar whose one file NAME holds SIZE zero
                              bytes, made of gzip members of 1 MiB each (so a
                              large SIZE costs little time: 1 GiB is 1 MB)
  measure OUT CMD...          runs CMD; writes "PEAK_RSS_KIB WRITTEN_BYTES"
                              (VmHWM, and the bytes the process wrote with
                              write(2) and the like: /proc/PID/io wchar, read
                              while it is a zombie) to OUT; exits as CMD did
"""
import gzip
import http.server
import os
import sys
import tarfile
import time


def serve(port, root, other):
    class H(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=root, **k)

        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path == "/error-body":
                self.send_response(500)
                self.send_header("Content-Length", str(64 << 20))
                self.end_headers()
                chunk = b"e" * 65536
                try:
                    for _ in range(1024):
                        self.wfile.write(chunk)
                        time.sleep(0.01)
                except (BrokenPipeError, ConnectionResetError):
                    open(os.path.join(root, "error-body.ended"), "w").close()
                return
            for pre, base in (("/same/", ""), ("/other/", "http://127.0.0.1:%d" % other)):
                if self.path.startswith(pre):
                    self.send_response(302)
                    self.send_header("Location", base + "/" + self.path[len(pre):])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            super().do_GET()

    http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


def gztar(out, name, size):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    mib = 1 << 20
    zeros = gzip.compress(b"\0" * mib, 9)
    with open(out, "wb") as f:
        f.write(gzip.compress(info.tobuf(tarfile.GNU_FORMAT)))
        left = size
        while left >= mib:
            f.write(zeros)
            left -= mib
        pad = (512 - size % 512) % 512
        f.write(gzip.compress(b"\0" * (left + pad + 1024)))


def measure(out, cmd):
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    wchar = 0
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("wchar:"):
                wchar = int(line.split()[1])
    _, status, ru = os.wait4(pid, 0)
    with open(out, "w") as f:
        f.write("%d %d\n" % (ru.ru_maxrss, wchar))
    sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "serve":
        serve(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif what == "gztar":
        gztar(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif what == "measure":
        measure(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)

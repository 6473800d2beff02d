#!/usr/bin/env python3
"""slow_http.py PORT LOG [--bytes N] [--seconds S]: an HTTP server on
127.0.0.1:PORT whose every GET answers 200 with N bytes (default 10),
sent one at a time over S seconds (default 15): a resource served slowly
(test_exec_prep.sh, case resource_timeout).  Appends "GET PATH" to LOG as a
request comes and "closed PATH" when the client went away before the
end (a download stopped).  Runs until killed.
"""
import argparse
import http.server
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("log")
    ap.add_argument("--bytes", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15.0)
    a = ap.parse_args()

    def note(text):
        with open(a.log, "a") as f:
            f.write(text + "\n")

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            note("GET " + self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(a.bytes))
            self.end_headers()
            try:
                for _ in range(a.bytes):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(a.seconds / a.bytes)
            except OSError:
                note("closed " + self.path)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Slow)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""auth_http.py PORT LOG USER:PASSWORD TOKEN [DIR]: a private file server
for test_resource_auth.sh and test_source.sh (README "Private
downloads").  Two servers on the
same PORT, one thread each:

- 127.0.0.1: GET /basic/NAME answers 200 and DIR/NAME's bytes (when
  DIR is given and has it), else "file NAME", only with
  `Authorization: Basic base64(USER:PASSWORD)`, /bearer/NAME only with
  `Authorization: Bearer TOKEN`, else 401; /here/PATH redirects (302) to
  /PATH on itself; /away/PATH redirects to http://127.0.0.2:PORT/PATH,
  /local/PATH to http://localhost:PORT/PATH (the same address under
  another host name); /open/NAME answers 200 and "open NAME" to anyone.
- 127.0.0.2: every GET answers 200 and "open NAME", credentials or not
  (the other host a redirect leads to).

Each request appends "HOST PATH AUTH" to LOG (AUTH the Authorization
header's scheme, or "-" when none came: the value itself is never
written).  Runs until killed.
"""
import base64
import http.server
import os
import sys
import threading


def main():
    port, log, basic, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    top = sys.argv[5] if len(sys.argv) > 5 else None
    want_basic = "Basic " + base64.b64encode(basic.encode()).decode()
    want_bearer = "Bearer " + token
    lock = threading.Lock()

    def note(host, path, auth):
        with lock, open(log, "a") as f:
            f.write("%s %s %s\n" % (host, path, auth.split(" ")[0] if auth else "-"))

    def handler(host):
        class H(http.server.BaseHTTPRequestHandler):
            def answer(self, status, body=b"", location=None):
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="evr"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                auth = self.headers.get("Authorization")
                note(host, self.path, auth)
                parts = self.path.split("/", 2)
                kind, rest = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
                if host == "127.0.0.2":
                    self.answer(200, ("open %s\n" % self.path).encode())
                elif kind == "here":
                    self.answer(302, location="/" + rest)
                elif kind == "local":
                    self.answer(302, location="http://localhost:%d/%s" % (port, rest))
                elif kind == "open":
                    self.answer(200, ("open %s\n" % self.path).encode())
                elif kind == "away":
                    self.answer(302, location="http://127.0.0.2:%d/%s" % (port, rest))
                elif kind in ("basic", "bearer") and auth == (
                        want_basic if kind == "basic" else want_bearer):
                    path = os.path.join(top, rest) if top and "/" not in rest else None
                    if path and os.path.isfile(path):
                        with open(path, "rb") as f:
                            self.answer(200, f.read())
                    else:
                        self.answer(200, ("file %s\n" % rest).encode())
                else:
                    self.answer(401, b"unauthorized\n")

            def log_message(self, *args):
                pass
        return H

    servers = [http.server.ThreadingHTTPServer((h, port), handler(h))
               for h in ("127.0.0.1", "127.0.0.2")]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()

"""job_channel.py SOCKET [FULL]: a stand-in for a step's control channel, written
from schema/PROTOCOL.md ("Job control channel"), for test_job_client.sh:
evrun-job against answers a runner may give.  Serves until killed; each
connection's request lines are answered in order:

  result  job 01K...RES: succeeded, with outputs of 40 values of 3000
          bytes (about 120 KiB: a job of several steps with large
          outputs); any other job: unknown ("result: no job ...")
  trigger {"job": "01K...RES", "state": "accepted"} (the child above)
  hello   a short answer
  secret  refused, the error's text escaped as any JSON encoder may
          (\\u for what is not ASCII, a pair for what is past U+FFFF,
          \\r \\b \\f \\/)

With FULL (a number), the first FULL connections are answered as a
channel with too many connections answers one (before reading it), and
closed at once.
"""
import json
import socket
import sys
import threading

BIG = "01K0000000000000000000B1G0"

def answer(req):
    cmd = req.get("cmd")
    if cmd == "hello":
        return {"protocol": 1, "job": "01K00000000000000000000JOB", "pipeline": "p",
                "step": "s", "attempt": 1, "commands": ["hello", "trigger", "result"], "ok": True}
    if cmd == "secret":   # json.dumps writes \\u00e9, \\ud83d\\ude00; \\/ by hand
        return {"ok": False, "error": "secret: caf\u00e9 \U0001F600 cr\r ff\f bs\b "
                "slash/ tab\t q\" bsl\\ ctl\x01 end"}
    if cmd == "trigger":
        return {"job": BIG, "state": "accepted", "ok": True}
    if cmd == "result" and req.get("job") == BIG:
        outputs = {"gen%d/K%d" % (i % 3, i): "x" * 3000 for i in range(40)}
        return {"job": BIG, "status": "succeeded", "steps_total": 3, "steps_done": 3,
                "outputs": outputs, "steps": [{"name": "gen%d" % i, "status": "succeeded",
                                               "exit_code": 0} for i in range(3)],
                "pipeline": "big", "state": "done", "ok": True}
    if cmd == "result":
        return {"ok": False, "error": "result: no job %s (unknown, or removed by retention)"
                % req.get("job")}
    return {"ok": False, "error": "unknown command \"%s\"" % cmd}

def serve(c):
    buf = b""
    with c:
        while True:
            try:
                r = c.recv(65536)
            except OSError:   # reset by a client that gave up
                return
            if not r:
                return
            buf += r
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                a = json.dumps(answer(json.loads(line)), separators=(",", ":"))
                a = a.replace("slash/", "slash\\/")
                try:
                    c.sendall(a.encode() + b"\n")
                except OSError:   # the client gave up reading: its status says so
                    return

s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
full = int(sys.argv[2]) if len(sys.argv) > 2 else 0
while True:
    conn, _ = s.accept()
    if full > 0:
        full -= 1
        conn.sendall(b'{"ok":false,"error":"too many connections to this step\'s channel '
                     b'(at most 8 at once): close one and try again"}\n')
        conn.close()
        continue
    threading.Thread(target=serve, args=(conn,), daemon=True).start()

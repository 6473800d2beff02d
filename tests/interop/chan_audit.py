#!/usr/bin/env python3
"""chan_audit.py: run inside a step (evrun-runner --exec, process executor):
a client of the job control channel written from schema/PROTOCOL.md ("Job
control channel") alone, sending valid and bad requests and checking each
answer against the document.  Prints "FAIL - ..." per failed check and
"chan: N checks, M failed"; exits 1 when any failed."""
import json
import os
import socket
import sys
import time

checks = fails = 0


def check(ok, what, got=None):
    global checks, fails
    checks += 1
    if not ok:
        fails += 1
        print(f"FAIL - {what}: got {got!r}"[:600], flush=True)


def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.environ["EVRUN_CONTROL"])
    return s


def lines(s, n):
    """n answer lines from s, parsed (None for a line that is not a JSON object)."""
    f = s.makefile("rb")
    out = []
    for _ in range(n):
        raw = f.readline()
        if not raw:
            out.append(None)
            continue
        check(raw.endswith(b"\n") and raw.count(b"\n") == 1, "an answer is one line", raw)
        try:
            a = json.loads(raw)
        except ValueError:
            a = None
        check(isinstance(a, dict) and isinstance(a.get("ok"), bool)
              and (a["ok"] or isinstance(a.get("error"), str)),
              "an answer is an object with ok (and error when false)", raw)
        out.append(a)
    return out


def ask(raw, starts=None, ok=False, what=None):
    """Sends raw (bytes, one or more lines) on a new connection; checks the
    one answer: ok, or an error starting with starts."""
    s = conn()
    s.sendall(raw)
    (a,) = lines(s, 1)
    s.close()
    what = what or raw[:60]
    if ok:
        check(a is not None and a.get("ok") is True, f"{what}: ok", a)
    else:
        check(a is not None and a.get("ok") is False
              and a.get("error", "").startswith(starts), f"{what}: error {starts!r}", a)
    return a


def closed(s):
    try:
        return s.recv(1) == b""
    except OSError:
        return True


def main():
    # hello, with its members
    a = ask(b'{"cmd":"hello","id":7}\n', ok=True)
    check(a and a.get("id") == 7 and a.get("protocol") == 1 and a.get("step") == "probe"
          and a.get("pipeline") == "chan-audit" and len(a.get("job", "")) == 26
          and a.get("attempt") == 1 and "hello" in a.get("commands", []),
          "hello: id echoed, protocol 1, job, pipeline, step, attempt, commands", a)
    a = ask(b'{"cmd":"hello","id":"x"}\r\n', ok=True, what="CRLF, a string id")
    check(a and a.get("id") == "x", "a string id echoed", a)
    # framing errors
    ask(b"not json\n", "request is not JSON (column ")
    ask(b'{"cmd":"hello","cmd":"hello"}\n', "request is not JSON", what="a key twice")
    ask(b'{"cmd":"hel\x00lo"}\n', "request is not JSON", what="a NUL byte")
    ask(b"[1,2]\n", "request is not a JSON object")
    ask(b'"cmd"\n', "request is not a JSON object")
    ask(b'5\n', "request is not a JSON object")
    ask(b"\xff\xfe\n", "request is not JSON", what="bytes that are not UTF-8")
    ask(b'{"cmd":"hello"}\xff\n', "request is not JSON", what="not UTF-8 after an object")
    ask(b'{"cmd":"\xc0\xafx"}\n', "request is not JSON", what="an overlong UTF-8 form")
    ask(b'{"cmd":"hello",\xff:1}\n', "request is not JSON", what="a key that is not UTF-8")
    ask(b'{"cmd":7}\n', 'request has no string "cmd"')
    ask(b'{"id":1}\n', 'request has no string "cmd"')
    a = ask(b'{"cmd":"reboot","id":3}\n', 'unknown command "reboot" (this runner knows: ')
    check(a and a.get("id") == 3, "an error echoes the id", a)
    # pipelining, empty lines skipped, answers in order
    s = conn()
    s.sendall(b'\n{"cmd":"hello","id":1}\n\n\r\n{"cmd":"nope","id":2}\nbad\n{"cmd":"hello","id":3}\n')
    got = lines(s, 4)
    check([x and x.get("id") for x in got] == [1, 2, None, 3]
          and [x and x.get("ok") for x in got] == [True, False, False, True],
          "pipelined: four answers in order", got)
    s.close()
    # a last line without \n: answered once the client shuts its writing half
    s = conn()
    s.sendall(b'{"cmd":"hello","id":9}')
    s.shutdown(socket.SHUT_WR)
    (a,) = lines(s, 1)
    check(a and a.get("id") == 9 and a.get("ok"), "a last line without newline: answered", a)
    s.close()
    # a line of 262145 bytes: an error, then the connection is closed
    head, tail = b'{"cmd":"hello","pad":"', b'"}'
    line = head + b"y" * (262144 - len(head) - len(tail)) + tail
    s = conn()
    s.sendall(line[:-2] + b'x"}\n')
    (a,) = lines(s, 1)
    check(a and a.get("ok") is False
          and a.get("error", "").startswith("request line longer than 262144 bytes"),
          "a line over 262144 bytes: error", a)
    check(closed(s), "... and the connection is closed")
    s.close()
    ask(line + b"\n", ok=True, what=f"a line of {len(line)} bytes (and its newline)")
    # 8 connections at once; one more gets an error and is closed
    held = [conn() for _ in range(8)]
    for h in held:
        h.sendall(b'{"cmd":"hello"}\n')
        lines(h, 1)
    s = conn()
    (a,) = lines(s, 1)
    check(a and a.get("ok") is False
          and a.get("error", "").startswith("too many connections to this step's channel"),
          "a 9th connection: error", a)
    check(closed(s), "... and it is closed")
    s.close()
    for h in held:
        h.close()
    for _ in range(40):   # the runner sees the closes on its next turn
        s = conn()
        s.sendall(b'{"cmd":"hello"}\n')
        (a,) = lines(s, 1)
        s.close()
        if a and a.get("ok"):
            break
        time.sleep(0.05)
    check(a and a.get("ok"), "a connection once the others closed: ok", a)
    # secret: its checks
    ask(b'{"cmd":"secret","name":"1A","value":"v"}\n', 'secret: "name": ')
    ask(b'{"cmd":"secret","name":"PATH","value":"v"}\n', 'secret: "name": ')
    ask(b'{"cmd":"secret","name":"EVRUN_X","value":"v"}\n', 'secret: "name": ')
    ask(b'{"cmd":"secret","name":"' + b"A" * 129 + b'","value":"v"}\n', 'secret: "name": ',
        what="a name of 129 bytes")
    ask(b'{"cmd":"secret","name":"OK1","value":""}\n',
        'secret: "value": 0 bytes: expected 1 to 32768 bytes without NUL')
    ask(b'{"cmd":"secret","name":"OK1","value":"' + b"v" * 32769 + b'"}\n',
        'secret: "value": 32769 bytes: expected 1 to 32768 bytes without NUL',
        what="a value of 32769 bytes")
    ask(b'{"cmd":"secret","name":"OK1","value":"a\\u0000b"}\n', "request is not JSON",
        what="a value with a NUL")
    ask(b'{"cmd":"secret","name":"OK1","value_hex":"abc"}\n',
        'secret: "value_hex": expected an even number of hex digits')
    ask(b'{"cmd":"secret","name":"OK1","value_hex":"zz"}\n',
        'secret: "value_hex": expected an even number of hex digits (0-9, a-f, A-F)',
        what="value_hex not hex")
    ask(b'{"cmd":"secret","name":"OK1"}\n', "secret: ", what="neither value nor value_hex")
    ask(b'{"cmd":"secret","name":"OK1","value":"a","value_hex":"61"}\n', "secret: ",
        what="both value and value_hex")
    ask(b'{"cmd":"secret","name":7,"value":"v"}\n', "secret: ", what="a name not a string")
    ask(b'{"cmd":"secret","name":"OK1","value":"chanS3cr3t"}\n', ok=True,
        what="a good secret")
    # trigger and result without a broker (evrun-runner --exec)
    ask(b'{"cmd":"trigger","pipeline":"other","call":"01JDX5QG0000000000000000AB"}\n',
        "trigger: pipeline other is not in the triggers: of pipeline chan-audit",
        what="a pipeline not in triggers:")
    ask(b'{"cmd":"trigger","pipeline":"deploy","call":"nope"}\n', "trigger: ",
        what="a call that is not a ULID")
    ask(b'{"cmd":"trigger","call":"01JDX5QG0000000000000000AB"}\n', "trigger: ",
        what="neither pipeline nor file")
    ask(b'{"cmd":"trigger","pipeline":"deploy","call":"01JDX5QG0000000000000000AB",'
        b'"args":{"A":7}}\n', 'trigger: "args": ', what="an arg value not a string")
    a = ask(b'{"cmd":"trigger","pipeline":"deploy","call":"01JDX5QG0000000000000000AB"}\n',
            ok=True, what="a trigger without a broker")
    check(a and a.get("local") is True and "evrun-cli start deploy" in a.get("command", ""),
          "... local, with the command", a)
    ask(b'{"cmd":"result","job":"01JDX5QG0000000000000000AB"}\n',
        "result: no broker here (evrun-runner --exec): ")
    ask(b'{"cmd":"result","job":"01JDX5QG0000000000000000AB","pipeline":"deploy"}\n',
        "result: ", what="result with both job and pipeline")
    ask(b'{"cmd":"result"}\n', "result: ", what="result with neither")
    print("value: chanS3cr3t")
    print(f"chan: {checks} checks, {fails} failed", flush=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())

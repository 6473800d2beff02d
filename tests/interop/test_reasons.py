"""test_reasons.py: a client's reasons and its refused fields, against a
real broker with no runner (no podman): broker_py.sh starts it.

A `cancel`, `demand` or `provider` reason is shown to others in
terminals: the broker keeps it on one line with its control characters
escaped, and its backslashes too (PROTOCOL.md "A client's reason is kept
on one line"), so a reason that holds the four characters \\x1b is not
shown as one that held ESC.  A `demand`'s fields and a list of labels
(`submit`, `demand`) are refused naming the field (PROTOCOL.md
"Encoding"), and so is a submit's tar its spec has no copy source for.
Written from schema/PROTOCOL.md, with the interop client.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402
from evrun_client import Client, ErrorAnswer, make_spec, make_step, new_ulid  # noqa: E402

check = Checks("test_reasons")

# sent -> kept: ESC, newline, tab, C1 CSI escaped; a backslash doubled, so
# the ESC byte and the text "\x1b" stay two different reasons
REASONS = (
    ("a\x1b[2J", "a\\x1b[2J"),
    ("a\\x1b[2J", "a\\\\x1b[2J"),
    ("line\nnext\tcol\u009b1m", "line\\nnext\\tcol\\u009b1m"),
    ("C:\\dir", "C:\\\\dir"),
    ("plain é", "plain é"),
)


def refusal(client, mtype, body):
    """(code, message) of the error answering body, or None when it was taken."""
    try:
        client.request(mtype, body)
    except ErrorAnswer as e:
        return e.code, e.message
    return None


def test_cancel_reasons(client):
    # a job no runner takes (its label nobody has) waits: cancelled queued
    spec = make_spec("reasons", [make_step("one", "true")], image="localhost/evrun-busybox:latest",
                     labels=["reasons-no-such-runner"])
    for sent, kept in REASONS:
        job = new_ulid()
        client.submit(job, spec)
        client.cancel(job, sent)
        st = client.status(job)
        check(f"cancel reason {sent!r}: kept as {kept!r}",
              st.get("status") == "cancelled" and st.get("reason") == kept, repr(st))


def test_demand_reasons(client):
    for sent, kept in REASONS:
        d = new_ulid()
        client.request("demand", {"job": d, "labels": ["reasons-none"], "ttl": 60,
                                  "reason": sent}, expect=("ok",))
        items, _ = client.stream("demands")
        mine = [i for i in items if i.get("job") == d]
        check(f"demand reason {sent!r}: listed as {kept!r}",
              len(mine) == 1 and mine[0].get("reason") == kept, repr(mine))


def test_provider_reasons(client):
    for n, (sent, kept) in enumerate(REASONS):
        name = f"reasons-p{n}"
        client.request("provider", {"provider": name, "runner": "reasons-prov",
                                    "labels": ["linux"], "reason": sent, "max": 1},
                       expect=("ok",))
        client.send("providers")
        got = []
        while True:
            mtype, body = client.recv()
            if mtype != "provider":
                break
            got.append(body)
        mine = [p for p in got if p.get("provider") == name]
        check(f"provider reason {sent!r}: listed as {kept!r}",
              mtype == "end" and len(mine) == 1 and mine[0].get("reason") == kept, repr(mine))


def test_demand_fields(client):
    # each refusal names the field as the decoder's do: PATH: what, got ...
    for fields, says in (
            ({"count": 65}, "demand.count: expected 1 to 64 (runners wanted), got 65"),
            ({"count": 0, "ttl": 3601}, "demand.ttl: expected 1 to 3600 (seconds), got 3601"),
            ({"labels": ["a b"]},
             'demand.labels: expected labels: letters, digits, _ . - (at most 64 bytes each), '
             'or executor:NAME, got "a b" at [0]'),
            ({"labels": ["gpu", "executor:podman", "gpu"]},
             'demand.labels: "gpu" at [2] repeats [0]'),
            ({"reason": "x" * 1025}, None)):
        got = refusal(client, "demand", {"job": new_ulid(), **fields})
        if says is None:
            check(f"demand {fields!r:.40}: too_large", got and got[0] == "too_large", repr(got))
        else:
            check(f"demand {fields!r}: bad_request, saying {says!r}",
                  got == ("bad_request", says), repr(got))
    spec = make_spec("reasons", [make_step("one", "true")], image="localhost/evrun-busybox:latest")
    got = refusal(client, "submit", {"job": new_ulid(), "spec": spec,
                                     "labels": ["gpu", "x", "gpu"]})
    check("submit labels [gpu, x, gpu]: bad_request naming the repeat",
          got == ("bad_request", 'submit.labels: "gpu" at [2] repeats [0]'), repr(got))


def test_copy_tars(client):
    # a tar goes with a copy source only (PROTOCOL.md submit, "Copy
    # sources"): one the spec has no copy source for is refused, naming it
    spec = make_spec("reasons", [make_step("one", "true")], image="localhost/evrun-busybox:latest",
                     labels=["reasons-no-such-runner"])
    for field, source in (("source_tar", "source"), ("ci_source_tar", "ci_source")):
        got = refusal(client, "submit", {"job": new_ulid(), "spec": spec, field: b"\x1f\x8b"})
        says = (f"submit.{field}: the spec's {source} is not copy: a directory, so nothing "
                f"would unpack this tar (leave {field} out)")
        check(f"submit {field} without a copy source: bad_request naming it",
              got == ("bad_request", says), repr(got))


def main():
    client = Client(os.environ["EVR_CLIENT_EP"], timeout=10)
    test_cancel_reasons(client)
    test_demand_reasons(client)
    test_provider_reasons(client)
    test_demand_fields(client)
    test_copy_tars(client)
    client.close()
    return check.end()


if __name__ == "__main__":
    sys.exit(main())

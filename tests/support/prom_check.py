#!/usr/bin/env python3
"""prom_check.py FILE [NAME{LABELS}=VALUE|NAME{LABELS}>=VALUE ...]: parses FILE
as the Prometheus text exposition format (0.0.4) with its rules and exits 1
naming the first rule broken:

- lines are `# HELP name text`, `# TYPE name type`, other `#` comments, or
  samples `name{label="value",...} number`; names [a-zA-Z_:][a-zA-Z0-9_:]*,
  label names [a-zA-Z_][a-zA-Z0-9_]*, label values with only \\\\, \\" and \\n
  escapes;
- at most one HELP and one TYPE per family, TYPE before its samples, the
  samples of a family together, no series twice;
- a histogram's series per label set: _bucket lines with `le` ascending,
  cumulative (never decreasing), the last `le="+Inf"` and equal to _count,
  and a _sum.

Each further argument is an expectation on a series: its value equals (=)
or is at least (>=) VALUE.  Used by tests/integration/test_gateway.sh."""
import math
import re
import sys

NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')
LABEL = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')
TYPES = {'counter', 'gauge', 'histogram', 'summary', 'untyped'}


def fail(n, msg):
    print(f'prom_check: line {n}: {msg}', file=sys.stderr)
    sys.exit(1)


def parse_labels(s, n):
    """s starts after '{'; returns (labels dict, rest after '}')."""
    labels, i = {}, 0
    while True:
        if s[i:i + 1] == '}':
            return labels, s[i + 1:]
        m = LABEL.match(s, i)
        if not m:
            fail(n, f'bad label name at {s[i:i + 20]!r}')
        key, i = m.group(0), m.end()
        if s[i:i + 2] != '="':
            fail(n, f'label {key}: expected ="')
        i += 2
        val = []
        while True:
            if i >= len(s):
                fail(n, f'label {key}: unterminated value')
            c = s[i]
            if c == '\\':
                e = s[i + 1:i + 2]
                if e not in ('\\', '"', 'n'):
                    fail(n, f'label {key}: bad escape \\{e}')
                val.append('\n' if e == 'n' else e)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == '\n':
                fail(n, f'label {key}: raw newline')
            else:
                val.append(c)
                i += 1
        if key in labels:
            fail(n, f'label {key} twice')
        labels[key] = ''.join(val)
        if s[i:i + 1] == ',':
            i += 1


def family_of(name, types):
    for suf in ('_bucket', '_sum', '_count'):
        if name.endswith(suf) and types.get(name[:-len(suf)]) in ('histogram', 'summary'):
            return name[:-len(suf)]
    return name


def main():
    text = open(sys.argv[1], encoding='utf-8').read()
    if not text.endswith('\n'):
        fail(0, 'the text does not end with a newline')
    helps, types, done, series = set(), {}, set(), {}
    current = None
    hist = {}   # (family, labels without le) -> {'b': [(le, v)], 'sum', 'count'}
    for n, line in enumerate(text.split('\n')[:-1], 1):
        if line.startswith('#'):
            parts = line.split(' ', 3)
            if len(parts) >= 3 and parts[1] in ('HELP', 'TYPE'):
                fam = parts[2]
                if not NAME.fullmatch(fam):
                    fail(n, f'bad metric name {fam!r}')
                if fam in done or (current and fam != current and fam in (types.keys() | helps)):
                    fail(n, f'{fam}: {parts[1]} after its samples or another family')
                if parts[1] == 'HELP':
                    if fam in helps:
                        fail(n, f'{fam}: a second HELP')
                    helps.add(fam)
                else:
                    if fam in types:
                        fail(n, f'{fam}: a second TYPE')
                    if len(parts) < 4 or parts[3] not in TYPES:
                        fail(n, f'{fam}: bad type')
                    types[fam] = parts[3]
                if current and current != fam:
                    done.add(current)
                current = fam
            continue
        if not line.strip():
            continue
        m = NAME.match(line)
        if not m:
            fail(n, 'bad sample name')
        name, rest = m.group(0), line[m.end():]
        labels = {}
        if rest.startswith('{'):
            labels, rest = parse_labels(rest[1:], n)
        fields = rest.split()
        if not rest.startswith(' ') or len(fields) not in (1, 2):
            fail(n, 'expected one value (and maybe a timestamp) after the name')
        try:
            value = float(fields[0])
        except ValueError:
            fail(n, f'bad value {fields[0]!r}')
        fam = family_of(name, types)
        if fam in done:
            fail(n, f'{fam}: its samples are not together')
        if current and current != fam:
            done.add(current)
        current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            fail(n, f'{name}{labels}: twice')
        series[key] = value
        if types.get(fam) == 'histogram':
            rest_l = tuple(sorted((k, v) for k, v in labels.items() if k != 'le'))
            h = hist.setdefault((fam, rest_l), {'b': []})
            if name == fam + '_bucket':
                if 'le' not in labels:
                    fail(n, f'{name}: a bucket without le')
                le = math.inf if labels['le'] == '+Inf' else float(labels['le'])
                if h['b'] and (le <= h['b'][-1][0] or value < h['b'][-1][1]):
                    fail(n, f'{name}: buckets not ascending or not cumulative')
                h['b'].append((le, value))
            elif name == fam + '_sum':
                h['sum'] = value
            elif name == fam + '_count':
                h['count'] = value
            else:
                fail(n, f'{name}: not a histogram series of {fam}')
    for (fam, labels), h in hist.items():
        if not h['b'] or h['b'][-1][0] != math.inf:
            fail(0, f'{fam}{dict(labels)}: no le="+Inf" bucket last')
        if 'sum' not in h or 'count' not in h:
            fail(0, f'{fam}{dict(labels)}: no _sum or _count')
        if h['b'][-1][1] != h['count']:
            fail(0, f'{fam}{dict(labels)}: +Inf bucket {h["b"][-1][1]} != _count {h["count"]}')
    for want in sys.argv[2:]:
        m = re.fullmatch(r'([^{=>]+)(\{.*\})?(>=|=)(.+)', want)
        name, lab, op, val = m.group(1), m.group(2), m.group(3), float(m.group(4))
        labels = parse_labels(lab[1:], 0)[0] if lab else {}
        got = series.get((name, tuple(sorted(labels.items()))))
        if got is None or (op == '=' and got != val) or (op == '>=' and got < val):
            print(f'prom_check: {want}: got {got}', file=sys.stderr)
            sys.exit(1)


main()

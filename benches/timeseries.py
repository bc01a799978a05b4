#!/usr/bin/env python3
"""Helpers for benches/timeseries.sh (the time-series peer benchmark).

    timeseries.py count FILE                      lines and samples of a line-protocol file
    timeseries.py run OUT.json -- CMD...          run CMD: wall time, peak RSS, stderr
    timeseries.py influx-write PORT DB PRECISION BATCH FILE
                                                  POST FILE to InfluxDB's /write in batches
    timeseries.py influx-count PORT DB            field values InfluxDB holds (count(*))
    timeseries.py influx-settle PORT TIMEOUT      wait until InfluxDB holds nothing in its
                                                  cache or WAL and no compaction runs
    timeseries.py to-openmetrics FILE PRECISION OUT
                                                  the samples of FILE as OpenMetrics text
    timeseries.py sizes DIR                       bytes of the files under DIR, by kind
    timeseries.py report RESULTS_DIR OUT.md       the generated doc (also printed)

Every subcommand that measures prints one JSON object on stdout. Only
127.0.0.1 is ever contacted.
"""
import http.client
import json
import os
import resource
import subprocess
import sys
import time


# ---------------------------------------------------------------- line protocol

def _split(s, seps, quotes=False):
    """Split `s` at unescaped characters in `seps` (outside double quotes
    when `quotes`), keeping escapes in the parts."""
    parts, cur, i, inq = [], [], 0, False
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            i += 2
            continue
        if quotes and c == '"':
            inq = not inq
        elif not inq and c in seps:
            parts.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in ', ="\\':
            out.append(s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def parse_line(line):
    """(measurement, [(tag, value)], [(field, raw value)], timestamp or None)."""
    if "\\" not in line and '"' not in line:
        # No escapes and no string fields: plain splits give the same parts.
        sections = line.split()
        key = sections[0].split(",")
        tags = [tuple(kv.split("=", 1)) for kv in key[1:]]
        fields = [tuple(kv.split("=", 1)) for kv in sections[1].split(",")]
        ts = int(sections[2]) if len(sections) > 2 else None
        return key[0], tags, fields, ts
    sections = _split(line, " ", quotes=True)
    sections = [x for x in sections if x != ""]
    key = _split(sections[0], ",")
    measurement = _unescape(key[0])
    tags = []
    for kv in key[1:]:
        k, v = _split(kv, "=")[:2]
        tags.append((_unescape(k), _unescape(v)))
    fields = []
    for kv in _split(sections[1], ",", quotes=True):
        k, v = kv.split("=", 1) if "\\" not in kv else _split(kv, "=", quotes=True)[:2]
        fields.append((_unescape(k), v))
    ts = int(sections[2]) if len(sections) > 2 else None
    return measurement, tags, fields, ts


def lp_lines(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip() == "" or line.lstrip().startswith("#"):
                continue
            yield line


def cmd_count(path):
    lines = samples = 0
    for line in lp_lines(path):
        lines += 1
        samples += len(parse_line(line)[2])
    print(json.dumps({"lines": lines, "samples": samples}))


# ---------------------------------------------------------------- processes

def cmd_run(out, argv):
    """Run argv; its wall time (perf_counter around the whole process) and
    peak RSS. Fails when the command does."""
    start = time.perf_counter()
    p = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    stdout, stderr = p.communicate()
    seconds = time.perf_counter() - start
    # This helper runs one command per process: the children's peak RSS is
    # that command's.
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "argv": argv,
        "returncode": p.returncode,
        "seconds": seconds,
        "peak_rss_kib": ru.ru_maxrss,
        "stdout": stdout.decode(errors="replace"),
        "stderr": stderr.decode(errors="replace"),
    }
    with open(out, "w") as f:
        json.dump(result, f)
    sys.stderr.write(result["stderr"])
    if p.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with status {p.returncode}")


# ---------------------------------------------------------------- InfluxDB

def cmd_influx_write(port, db, precision, batch, path):
    """POST the file to /write?db=DB&precision=P in batches of BATCH lines
    over one keep-alive connection. The file is read and split before the
    clock starts; the time is from the first request to the last response."""
    batch = int(batch)
    lines = list(lp_lines(path))
    samples = sum(len(parse_line(x)[2]) for x in lines)
    bodies = [
        ("\n".join(lines[i : i + batch]) + "\n").encode() for i in range(0, len(lines), batch)
    ]
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=300)
    url = f"/write?db={db}&precision={precision}"
    cpu0 = time.process_time()
    start = time.perf_counter()
    for body in bodies:
        conn.request("POST", url, body=body, headers={"Content-Type": "text/plain"})
        r = conn.getresponse()
        text = r.read()
        if r.status != 204:
            raise SystemExit(f"InfluxDB /write answered {r.status}: {text[:500]!r}")
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    conn.close()
    print(
        json.dumps(
            {
                "lines": len(lines),
                "samples": samples,
                "requests": len(bodies),
                "batch_lines": batch,
                "seconds": seconds,
                "client_cpu_seconds": cpu,
            }
        )
    )


def _debug_vars(port):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    conn.request("GET", "/debug/vars")
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return json.loads(body)


def cmd_influx_settle(port, timeout):
    """Wait until every shard of database `bench` has an empty cache and
    WAL, no compaction is running or queued, and nothing has changed in its
    TSM files for 5 s (with the 1 s cold durations of the config, the
    planner has then had several chances to compact further). A shard that
    holds a single TSM file after its snapshot is never fully compacted:
    there is nothing to merge."""
    deadline = time.monotonic() + float(timeout)
    start = time.monotonic()
    last = None
    stable_since = None
    while True:
        v = _debug_vars(port)
        cache = wal = busy = snapshots = full = shards = files = disk = 0
        for val in v.values():
            if not isinstance(val, dict) or (val.get("tags") or {}).get("database") != "bench":
                continue
            name, values = val.get("name"), val.get("values") or {}
            if name == "tsm1_cache":
                shards += 1
                cache += values.get("memBytes", 0)
                snapshots += values.get("snapshotCount", 0)
            elif name == "tsm1_wal":
                wal += values.get("currentSegmentDiskBytes", 0) + values.get("oldSegmentsDiskBytes", 0)
            elif name == "tsm1_engine":
                for k, x in values.items():
                    if k.endswith("Active") or k.endswith("Queue"):
                        busy += x
                full += values.get("tsmFullCompactions", 0)
            elif name == "tsm1_filestore":
                files += values.get("numFiles", 0)
                disk += values.get("diskBytes", 0)
        state = (shards, cache, wal, busy, full, files, disk)
        if shards > 0 and cache == 0 and wal == 0 and busy == 0 and state == last:
            if stable_since is None:
                stable_since = time.monotonic()
            elif time.monotonic() - stable_since >= 5:
                print(
                    json.dumps(
                        {
                            "shards": shards,
                            "tsm_files": files,
                            "full_compactions": full,
                            "settle_seconds": time.monotonic() - start,
                        }
                    )
                )
                return
        else:
            stable_since = None
        last = state
        if time.monotonic() > deadline:
            raise SystemExit(
                f"InfluxDB did not settle in {timeout} s: cache {cache} B, wal {wal} B, "
                f"{busy} compactions active or queued, {files} TSM files, {shards} shards"
            )
        time.sleep(0.5)


def cmd_influx_count(port, db):
    """The number of field values InfluxDB holds: SELECT count(*) over every
    measurement, summed."""
    import urllib.parse

    q = urllib.parse.urlencode({"db": db, "q": "SELECT count(*) FROM /.*/"})
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=300)
    conn.request("GET", f"/query?{q}")
    r = conn.getresponse()
    body = json.loads(r.read())
    conn.close()
    if r.status != 200:
        raise SystemExit(f"InfluxDB /query answered {r.status}: {body}")
    total = 0
    for result in body.get("results", []):
        if "error" in result:
            raise SystemExit(f"InfluxDB count(*) failed: {result['error']}")
        for series in result.get("series", []):
            for row in series.get("values", []):
                total += sum(x for x in row[1:] if isinstance(x, int))
    print(json.dumps({"samples": total}))


# ---------------------------------------------------------------- Prometheus

def _metric_name(measurement, field):
    return measurement if field == "value" else f"{measurement}_{field}"


def _om_label_value(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _om_value(raw):
    if raw.endswith("i") or raw.endswith("u"):
        return raw[:-1]
    if raw in ("t", "T", "true", "True", "TRUE"):
        return "1"
    if raw in ("f", "F", "false", "False", "FALSE"):
        return "0"
    if raw.startswith('"'):
        return None
    return raw


def cmd_to_openmetrics(path, precision, out):
    """One family per metric name (`# TYPE name unknown`), families grouped,
    each series' samples in time order; a field `value` keeps the
    measurement's name, any other field `f` becomes `measurement_f`. A
    second sample at the same (series, time) replaces the first, as in
    Sydra and InfluxDB (OpenMetrics refuses duplicates)."""
    div = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[precision]
    series = {}
    samples = strings = 0
    for line in lp_lines(path):
        m, tags, fields, ts = parse_line(line)
        if ts is None:
            raise SystemExit(f"{path}: a line without a timestamp: {line[:200]}")
        labels = ",".join(f'{k}="{_om_label_value(v)}"' for k, v in sorted(tags) if v != "")
        for f, raw in fields:
            v = _om_value(raw)
            if v is None:
                strings += 1
                continue
            series.setdefault((_metric_name(m, f), labels), {})[ts] = v
            samples += 1
    families = {}
    for name, labels in series:
        families.setdefault(name, []).append(labels)
    kept = 0
    with open(out, "w") as o:
        for name in sorted(families):
            o.write(f"# TYPE {name} unknown\n")
            for labels in sorted(families[name]):
                key = f"{name}{{{labels}}}" if labels else name
                for ts, v in sorted(series[(name, labels)].items()):
                    secs = str(ts) if div == 1 else f"{ts // div}.{ts % div:0{len(str(div)) - 1}d}"
                    o.write(f"{key} {v} {secs}\n")
                    kept += 1
        o.write("# EOF\n")
    print(
        json.dumps(
            {
                "families": len(families),
                "series": len(series),
                "samples_in": samples,
                "samples_out": kept,
                "duplicates_replaced": samples - kept,
                "string_fields_skipped": strings,
            }
        )
    )


# ---------------------------------------------------------------- sizes

def cmd_sizes(root):
    """Apparent bytes (st_size) and allocated bytes (st_blocks * 512) of
    every regular file under root, in total and by kind."""
    total = alloc = files = 0
    kinds = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            files += 1
            total += st.st_size
            alloc += st.st_blocks * 512
            rel = os.path.relpath(p, root)
            top = rel.split(os.sep)[0] if os.sep in rel else "(top)"
            ext = os.path.splitext(n)[1] or n
            kinds.setdefault("dir:" + top, 0)
            kinds["dir:" + top] += st.st_size
            kinds.setdefault("ext:" + ext, 0)
            kinds["ext:" + ext] += st.st_size
            if os.sep + "chunks" + os.sep in os.sep + rel:
                kinds["prom:chunks"] = kinds.get("prom:chunks", 0) + st.st_size
            elif n == "index":
                kinds["prom:index"] = kinds.get("prom:index", 0) + st.st_size
    print(json.dumps({"bytes": total, "allocated_bytes": alloc, "files": files, "kinds": kinds}))


# ---------------------------------------------------------------- report

def _rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f} M/s"
    return f"{x / 1e3:.0f} k/s"


def _bytes(b):
    if b >= 1 << 20:
        return f"{b / (1 << 20):.1f} MiB"
    if b >= 1 << 10:
        return f"{b / (1 << 10):.1f} KiB"
    return f"{b} B"


def _load(d, name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def dataset_section(d, ds):
    meta = _load(d, f"{ds}.meta.json")
    count = meta["count"]
    n = count["samples"]
    sy_runs = [_load(d, f"{ds}.sydra.{i}.json") for i in range(meta["repeat"])]
    sy_rates = [n / r["seconds"] for r in sy_runs]
    sy_rate = _median(sy_rates)
    parses = [json.loads(_load(d, f"{ds}.parse.{i}.json")["stdout"]) for i in range(meta["repeat"])]
    parse_rates = [p["points"] / p["seconds"] for p in parses]
    parse_rate = _median(parse_rates)
    sy_size = _load(d, f"{ds}.sydra.size.json")
    ix_runs = [_load(d, f"{ds}.influx.write.{i}.json") for i in range(meta["repeat"])]
    ix_rates = [r["samples"] / r["seconds"] for r in ix_runs]
    ix_rate = _median(ix_rates)
    ix_settle = _load(d, f"{ds}.influx.settle.json")
    ix_data = _load(d, f"{ds}.influx.data.json")
    ix_wal = _load(d, f"{ds}.influx.wal.json")
    ix_rss = _load(d, f"{ds}.influx.rss.json")
    ix_count = _load(d, f"{ds}.influx.count.json")["samples"]
    sy_written = [int(r["stderr"].split("wrote ", 1)[1].split(" ", 1)[0]) for r in sy_runs]
    om = _load(d, f"{ds}.om.json")
    prom = _load(d, f"{ds}.prom.json")
    prom_size = _load(d, f"{ds}.prom.size.json")
    pk = prom_size["kinds"]
    prom_block = pk.get("prom:chunks", 0) + pk.get("prom:index", 0)
    tsm = ix_data["kinds"].get("ext:.tsm", 0)
    sy_wal = sy_size["kinds"].get("dir:wal", 0)
    sy_total = sy_size["bytes"]
    sy_compact = _load(d, f"{ds}.sydra.compact.json")
    sy_stats = _load(d, f"{ds}.sydra.stats.json")
    sy_objects = sy_stats["reachable"]["bytes"]

    def spread(xs):
        return f"{_rate(min(xs))} – {_rate(max(xs))}" if len(xs) > 1 else "one run"

    rows = []
    rows.append(
        f"| Sydra `sydra write --precision {meta['precision']}` (whole process, durable at exit) "
        f"| {_rate(sy_rate)} | {spread(sy_rates)} | {sy_runs[-1]['peak_rss_kib'] / 1024:.0f} MiB "
        f"| {_bytes(sy_total)} (WAL {_bytes(sy_wal)}) | {sy_total / n:.2f} — WAL, before compaction |"
    )
    rows.append(
        f"| Sydra after `sydra compact --all` ({sy_compact['seconds']:.1f} s) and a GC keeping one commit "
        f"| — | — | {sy_compact['peak_rss_kib'] / 1024:.0f} MiB "
        f"| objects {_bytes(sy_objects)} (blobs {_bytes(sy_stats['blobs']['bytes'])}, trees {_bytes(sy_stats['trees']['bytes'])}; "
        f"{sy_stats['objects']['count']:,} objects) | **{sy_objects / n:.2f}** segments + index + trees + commit |"
    )
    rows.append(
        f"| Sydra line-protocol parse only (`lp_parse`, in memory) | {_rate(parse_rate)} "
        f"| {spread(parse_rates)} | — | — | — |"
    )
    rows.append(
        f"| InfluxDB {meta['influx_version']} `POST /write` ({ix_runs[-1]['batch_lines']:,}-line batches, one connection) "
        f"| {_rate(ix_rate)} | {spread(ix_rates)} | {ix_rss['vm_hwm_kib'] / 1024:.0f} MiB "
        f"| TSM {_bytes(tsm)} in {ix_settle['tsm_files']} file(s); rest of the data dir {_bytes(ix_data['bytes'] - tsm)} "
        f"apparent (the series file, preallocated and sparse: the whole data dir has {_bytes(ix_data['allocated_bytes'])} allocated); WAL dir {_bytes(ix_wal['bytes'])} "
        f"| **{tsm / n:.2f}** TSM, compacted |"
    )
    rows.append(
        f"| Prometheus {meta['prom_version']} `promtool tsdb create-blocks-from openmetrics` "
        f"| — (backfill: {prom['seconds']:.1f} s) | — | {prom['peak_rss_kib'] / 1024:.0f} MiB "
        f"| chunks {_bytes(pk.get('prom:chunks', 0))} + index {_bytes(pk.get('prom:index', 0))} in {meta['prom_blocks']} block(s) "
        f"| **{prom_block / n:.2f}** block (chunks + index) |"
    )
    lines = [
        f"## {ds}: `{meta['file']}`",
        "",
        meta["describe"],
        "",
        f"{count['lines']:,} lines, **{n:,} samples** (field values; InfluxDB calls a line a point, "
        f"Sydra and Prometheus count each field value as a sample: every rate and size below is per sample). "
        f"{om['series']:,} series in {om['families']:,} metric families; "
        f"{om['duplicates_replaced']:,} samples repeat a (series, time) and replace the earlier one in every store. "
        f"Sydra made {_load(d, ds + '.sydra.series.json')['series']:,} series.",
        "",
        "| store | ingest (median) | ingest range | peak RSS (writer or server) | on disk | bytes / sample |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Ratios (same run):",
        "",
        f"- Sydra write rate / InfluxDB ingest rate: **{sy_rate / ix_rate:.2f}×** (goal ≥ 10×)",
        f"- Sydra bytes/sample after full compaction / Prometheus block: **{sy_objects / max(prom_block, 1):.2f}×** "
        f"(goal ≤ 1×)",
        f"- Sydra bytes/sample after full compaction / InfluxDB TSM: **{sy_objects / max(tsm, 1):.2f}×**",
        f"- parse-only share of Sydra's write time (median rates): {sy_rate / parse_rate * 100:.0f}%",
        "",
        f"InfluxDB settled (cache and WAL empty, {ix_settle['tsm_files']} TSM file(s) in "
        f"{ix_settle['shards']} shard(s), {ix_settle['full_compactions']} full compaction(s)) "
        f"{ix_settle['settle_seconds']:.0f} s after the last write; "
        f"the Python client used {ix_runs[-1]['client_cpu_seconds']:.2f} s of CPU during its "
        f"{ix_runs[-1]['seconds']:.2f} s. Prometheus: {prom_size['files']} files; promtool read "
        f"{om['samples_out']:,} samples (`promtool tsdb list`: {meta['prom_listed_samples']:,}).",
        "",
        f"Stored counts: Sydra wrote {', '.join(f'{x:,}' for x in sy_written)} points "
        f"(`sydra write`, per run); InfluxDB holds {ix_count:,} field values (`SELECT count(*)`); "
        f"the Prometheus blocks hold {meta['prom_listed_samples']:,} samples."
        + ("" if all(x == n for x in sy_written) and ix_count == om["samples_out"]
           and meta["prom_listed_samples"] == om["samples_out"]
           else " **The counts differ from the input's: read the rates and sizes with that in mind.**"),
        "",
    ]
    return "\n".join(lines), {
        "dataset": ds,
        "samples": n,
        "sydra_rate": sy_rate,
        "influx_rate": ix_rate,
        "ratio": sy_rate / ix_rate,
        "sydra_bps": sy_total / n,
        "sydra_compacted_bps": sy_objects / n,
        "influx_tsm_bps": tsm / n,
        "prom_bps": prom_block / n,
        "parse_rate": parse_rate,
    }


def cmd_report(d, out):
    run = _load(d, "run.json")
    sections, summary = [], []
    for ds in run["datasets"]:
        text, s = dataset_section(d, ds)
        sections.append(text)
        summary.append(s)
    la0, la1 = run.get("loadavg_start", "?"), run.get("loadavg_end", "?")
    head = [
        "# Time-series benchmarks: Sydra beside InfluxDB and Prometheus",
        "",
        "<!-- Generated by benches/timeseries.sh (benches/timeseries.py). Do not edit by hand: "
        "change the script and run it again. -->",
        "",
        "Line-protocol ingest and bytes on disk of Sydra, InfluxDB 1.6 and Prometheus's TSDB on the "
        "same real data, measured in one run. The criterion benches of the storage layers are in "
        "[BENCHMARKS.md](BENCHMARKS.md).",
        "",
        "## Summary",
        "",
        "| dataset | samples | Sydra write | InfluxDB ingest | Sydra / InfluxDB | Sydra B/sample after compaction | Sydra B/sample (WAL, before) | InfluxDB TSM B/sample | Prometheus block B/sample | Sydra parse only |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        head.append(
            f"| {s['dataset']} | {s['samples']:,} | {_rate(s['sydra_rate'])} | {_rate(s['influx_rate'])} "
            f"| {s['ratio']:.2f}× | **{s['sydra_compacted_bps']:.2f}** | {s['sydra_bps']:.2f} | {s['influx_tsm_bps']:.2f} | {s['prom_bps']:.2f} "
            f"| {_rate(s['parse_rate'])} |"
        )
    head += [
        "",
        "Goals (issue 12): Sydra's write at least 10× InfluxDB's ingest; bytes per sample after "
        "full compaction (segments, rollups, series index, trees, commit; the WAL collected) at "
        "most Prometheus's block on the scrape data, and at most InfluxDB's TSM on the year of "
        "weather. The WAL column is what `sydra write` leaves before any compaction.",
        "",
        "## How this was produced",
        "",
        f"- command: `{run['command']}`",
        f"- date: {run['finished']} (run started {run['started']})",
        f"- source: commit `{run['commit']}`{run['dirty']}",
        f"- CPU: {run['cpu']}",
        f"- cores (`nproc`): {run['nproc']}",
        f"- memory: {run['memory']}",
        f"- kernel (`uname -r`): {run['kernel']}",
        f"- filesystem of the scratch dir `{run['work_parent']}` (`df -T`): {run['fs']}",
        f"- peers: InfluxDB `{run['influx_version']}`, Prometheus `{run['prom_version']}` (Debian packages); "
        f"{run['python']}",
        f"- load average (1, 5, 15 min) at start: {la0}; at end: {la1} (other work shares the 2 cores and the disk)",
        f"- repetitions: {run['repeat']} ingest runs per store and dataset (fresh store each; the table gives the median "
        f"and the range); sizes from the last run",
        "",
        "## Method",
        "",
        "- **Sydra**: `sydra init` in a fresh directory, then `sydra write --precision P FILE` timed as a whole "
        "process (start, open, parse, append, one sync at exit: exit 0 means every point is durable). Size: every "
        "file of the data directory (WAL segments, objects, refs, lock files), apparent size. The parse-only row "
        "does the work of `sydra write`'s parsing thread on the file in memory, on one thread, and appends "
        "nothing: a line whose measurement and tags are spelled as in an earlier line has only its fields and "
        "timestamp parsed; any other line is parsed whole and its series keys built "
        "(`benches/src/bin/lp_parse.rs`).",
        "- **InfluxDB**: `influxd -config F` of the Debian package on 127.0.0.1 with its meta, data and WAL "
        "directories in a fresh scratch directory (reporting, `_internal` monitoring, query and HTTP logs off; "
        "otherwise the defaults, `inmem` index, WAL fsync on every write request). A small Python client "
        "(`http.client`, one keep-alive connection) POSTs the file to `/write?db=bench&precision=P` in batches of "
        "5,000 lines; the time runs from the first request to the last 204. Python's own CPU use competes for "
        "the same cores and is reported. To measure the compacted size without waiting hours, the config sets "
        "`cache-snapshot-write-cold-duration` and `compact-full-write-cold-duration` to 1 s; the script waits "
        "until `/debug/vars` shows an empty cache and WAL and no compaction running for every shard, stops "
        "`influxd` (SIGTERM) and sums the `.tsm` files of the data directory (the data dir also holds "
        "`fields.idx`; the WAL dir is reported apart and is empty after the snapshot).",
        "- **Prometheus**: the same samples converted to OpenMetrics text (`benches/timeseries.py "
        "to-openmetrics`: one `# TYPE name unknown` family per metric, families grouped, each series in time "
        "order, timestamps in seconds; a field `value` keeps the measurement's name, another field `f` becomes "
        "`measurement_f`, e.g. `weather_temp{origin=\"EWR\"}`), then `promtool tsdb create-blocks-from "
        "openmetrics --max-block-duration=744h` (a hidden flag; 744 h is the 31-day cap Prometheus itself "
        "uses for compacted blocks, so a year of weather lands in 486-hour blocks rather than 4,000 2-hour "
        "ones). Size: `chunks/` + `index` of every block (`meta.json` and `tombstones` are a few hundred "
        "bytes each and left out). The backfill time is shown but is not an ingest rate: promtool reads the "
        "whole file once per block range.",
        "- Bytes are apparent file sizes (`st_size`); samples are counted from the input file.",
        "",
    ]
    text = "\n".join(head) + "\n" + "\n".join(sections)
    with open(out, "w") as f:
        f.write(text)
    print(text)


def main():
    a = sys.argv[1:]
    if not a:
        raise SystemExit(__doc__)
    cmd, rest = a[0], a[1:]
    if cmd == "count":
        cmd_count(*rest)
    elif cmd == "run":
        if len(rest) < 3 or rest[1] != "--":
            raise SystemExit("usage: timeseries.py run OUT.json -- CMD...")
        cmd_run(rest[0], rest[2:])
    elif cmd == "influx-write":
        cmd_influx_write(*rest)
    elif cmd == "influx-count":
        cmd_influx_count(*rest)
    elif cmd == "influx-settle":
        cmd_influx_settle(*rest)
    elif cmd == "to-openmetrics":
        cmd_to_openmetrics(*rest)
    elif cmd == "sizes":
        cmd_sizes(*rest)
    elif cmd == "report":
        cmd_report(*rest)
    else:
        raise SystemExit(f"unknown subcommand {cmd}\n{__doc__}")


if __name__ == "__main__":
    main()

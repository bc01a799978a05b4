//! The time-series endpoints of `sydra serve`: Prometheus remote write and
//! remote read, the InfluxDB 1.x write API, and Sydra's own query and
//! series endpoints (docs/OPERATIONS.md, "Prometheus, Telegraf and
//! dashboards").
//!
//! Every write goes through the engine's appender: a 2xx is sent only after
//! `commit` returned, so with the server's `SyncMode::Always` the points are
//! durable before the client hears of them. A request that is refused (4xx)
//! changes nothing: it is decoded and checked whole before the first point
//! is appended.

use std::io::{Read, Write};
use std::sync::Arc;

use ahash::AHashMap as HashMap;
use prost::Message;
use serde_json::json;
use tiny_http::{Request, Response, StatusCode};

use super::chunks;
use super::prompb::{self, Label as PromLabel, ReadRequest};
use super::{Ctx, EngineGuard, Reject, Resp, boxed, header, json_resp, read_body};
use crate::engine::Engine;
use crate::error::Error;
use crate::series::lineproto::{self, Precision};
use crate::series::selector::{Label, Matcher, Op};
use crate::series::{Agg, Column, Selector, SeriesKey, SeriesRef, Value, WHOLE_RANGE};

/// The most bytes of a write request's body as sent (compressed).
pub const MAX_WRITE_BYTES: u64 = 64 << 20;
/// The most bytes a write or read request may decode to.
pub const MAX_DECODED_BYTES: usize = 256 << 20;
/// The most samples one remote read answers (Prometheus's own
/// `storage.remote.read-sample-limit` default).
pub const MAX_READ_SAMPLES: usize = 50_000_000;
/// The field Prometheus samples are stored in.
pub const PROM_FIELD: &str = "value";
/// The tag `/write` keeps its `db` parameter in.
pub const DB_TAG: &str = "db";
/// ns per ms.
const MS: i64 = 1_000_000;

type Answer = std::result::Result<Resp, Reject>;

/// Refuse a write the server does not take: read-only (403), no token
/// (401), or a head over its bound (503, retried by every client).
fn may_write<'c>(
    ctx: &'c Ctx,
    req: &Request,
    query: &str,
) -> std::result::Result<EngineGuard<'c>, Reject> {
    if ctx.options.read_only {
        return Err(Reject(403, "this server is read-only".into()));
    }
    if !super::authorized(ctx, req) && !param_token(ctx, query) {
        return Err(Reject(
            401,
            "a write needs the server's bearer token".into(),
        ));
    }
    let engine = ctx.engine()?;
    if let Some(why) = engine.poisoned() {
        // Another request's failure; it reopens the engine as it answers.
        return Err(Reject(
            503,
            format!("the engine is being reopened after a failure ({why}); retry"),
        ));
    }
    // Back-pressure: `maintain` compacts the whole head past the bound; at
    // twice it the compactor has fallen behind, so writers wait.
    let bound = engine.options().series_head_max_bytes.saturating_mul(2);
    if engine.head_bytes() > bound {
        ctx.wake_maintenance();
        return Err(Reject(
            503,
            format!("the head holds more than {bound} bytes and is being compacted; retry"),
        ));
    }
    Ok(engine)
}

/// InfluxDB 1.x clients send credentials as `?u=&p=`: the password is the
/// token.
fn param_token(ctx: &Ctx, query: &str) -> bool {
    match (&ctx.options.token, param(query, "p")) {
        (Some(token), Some(p)) => super::constant_time_eq(p.as_bytes(), token.as_bytes()),
        _ => false,
    }
}

/// The value of `name` in a URL query, decoded (`+` is a space).
pub(super) fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

fn content_encoding(req: &Request) -> Option<String> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv("Content-Encoding"))
        .map(|h| h.value.as_str().trim().to_ascii_lowercase())
}

/// A snappy block (Prometheus's framing), decoded within the bound.
fn unsnappy(body: &[u8]) -> std::result::Result<Vec<u8>, Reject> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| Reject(400, format!("the body is not snappy-compressed: {e}")))?;
    if len > MAX_DECODED_BYTES {
        return Err(Reject(
            413,
            format!("the body decodes to {len} bytes; at most {MAX_DECODED_BYTES} are taken"),
        ));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Reject(400, format!("the body is not snappy-compressed: {e}")))
}

/// Answer 500 for an engine error while writing, 400 for a point the
/// store refuses (its type, a string, its time).
fn write_error(e: Error, what: &str) -> Reject {
    match e {
        Error::Series(m) => Reject(400, format!("{what}: {m}")),
        e => Reject(500, format!("the points were not written: {e}")),
    }
}

/// `POST /api/v1/write`: a snappy `prometheus.WriteRequest`.
pub(super) fn prom_write(ctx: &Ctx, req: &mut Request) -> Answer {
    let engine = may_write(ctx, req, "")?;
    let body = read_body(req, MAX_WRITE_BYTES)?;
    let raw = unsnappy(&body)?;
    let wr = prompb::WriteRequest::decode(raw.as_slice()).map_err(|e| {
        Reject(
            400,
            format!("the body is not a prometheus.WriteRequest: {e}"),
        )
    })?;
    // Keys first, so a bad series refuses the request before anything is
    // appended.
    let mut keys = Vec::with_capacity(wr.timeseries.len());
    for ts in &wr.timeseries {
        let key = prom_key(&ts.labels).map_err(|m| Reject(400, m))?;
        if !ts.histograms.is_empty() || !ts.exemplars.is_empty() {
            return Err(Reject(
                400,
                format!(
                    "series {key} carries native histograms or exemplars, which Sydra does \
                     not store; turn off send_native_histograms and send_exemplars"
                ),
            ));
        }
        keys.push(key);
    }
    let mut app = engine.appender();
    for (ts, key) in wr.timeseries.iter().zip(&keys) {
        let r = engine.series(key)?;
        for s in &ts.samples {
            let t = s.timestamp.checked_mul(MS).ok_or_else(|| {
                Reject(
                    400,
                    format!("series {key}: timestamp {} ms is out of range", s.timestamp),
                )
            })?;
            app.append(r, t, Value::F64(s.value))
                .map_err(|e| write_error(e, &format!("series {key}")))?;
        }
    }
    app.commit()
        .map_err(|e| Reject(500, format!("the samples were not written: {e}")))?;
    ctx.note_write(&engine);
    Ok(no_content())
}

fn no_content() -> Resp {
    boxed(Response::empty(StatusCode(204)))
}

/// Labels to a key: `__name__` the measurement, the others tags (an empty
/// value is an absent label, as in Prometheus), field `value`.
fn prom_key(labels: &[PromLabel]) -> std::result::Result<SeriesKey, String> {
    let mut name = None;
    let mut tags = Vec::with_capacity(labels.len());
    for l in labels {
        if l.name == "__name__" {
            name = Some(l.value.as_str());
        } else if !l.value.is_empty() {
            tags.push((l.name.clone(), l.value.clone()));
        }
    }
    let shown = || {
        labels
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("the series {{{}}} has no __name__ label", shown()))?;
    SeriesKey::new(name, tags, PROM_FIELD).map_err(|e| format!("the series {{{}}}: {e}", shown()))
}

/// A key's Prometheus labels, sorted by name.
fn prom_labels(key: &SeriesKey) -> Vec<PromLabel> {
    let mut labels: Vec<PromLabel> = std::iter::once(PromLabel {
        name: "__name__".into(),
        value: key.measurement().into(),
    })
    .chain(key.tags().iter().map(|(k, v)| PromLabel {
        name: k.clone(),
        value: v.clone(),
    }))
    .collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels
}

/// A remote read query's matchers as a selector of the series stored from
/// Prometheus (field `value`).
fn prom_selector(matchers: &[prompb::LabelMatcher]) -> std::result::Result<Selector, String> {
    let mut sel = Selector::all();
    for m in matchers {
        let op = match m.r#type {
            0 => Op::Eq,
            1 => Op::Ne,
            2 => Op::Re,
            3 => Op::NotRe,
            t => return Err(format!("matcher {:?} has the unknown type {t}", m.name)),
        };
        let label = match m.name.as_str() {
            "__name__" => Label::Measurement,
            n => Label::Tag(n.to_owned()),
        };
        sel.matchers.push(Matcher::new(label, op, &m.value)?);
    }
    sel.matchers
        .push(Matcher::new(Label::Field, Op::Eq, PROM_FIELD)?);
    Ok(sel)
}

/// `POST /api/v1/read`: a snappy `prometheus.ReadRequest`, answered with a
/// snappy `prometheus.ReadResponse` of raw samples (the `SAMPLES` response
/// type) read from the live data.
pub(super) fn prom_read(ctx: &Ctx, req: &mut Request) -> std::result::Result<super::Bytes, Reject> {
    let engine = ctx.engine()?;
    let body = read_body(req, MAX_WRITE_BYTES)?;
    let raw = unsnappy(&body)?;
    let rr = ReadRequest::decode(raw.as_slice()).map_err(|e| {
        Reject(
            400,
            format!("the body is not a prometheus.ReadRequest: {e}"),
        )
    })?;
    // The first type the client accepts that is served, as Prometheus
    // negotiates; none named means SAMPLES.
    let streamed = match rr
        .accepted_response_types
        .iter()
        .find(|&&t| t == prompb::RESPONSE_SAMPLES || t == chunks::RESPONSE_STREAMED_XOR_CHUNKS)
    {
        Some(&t) => t == chunks::RESPONSE_STREAMED_XOR_CHUNKS,
        None if rr.accepted_response_types.is_empty() => false,
        None => {
            return Err(Reject(
                400,
                format!(
                    "none of the accepted response types {:?} is served \
                     (0 SAMPLES, 1 STREAMED_XOR_CHUNKS)",
                    rr.accepted_response_types
                ),
            ));
        }
    };
    let view = engine.view(None)?;
    let mut out: Vec<Vec<prompb::ReadSeries>> = Vec::with_capacity(rr.queries.len());
    let mut total = 0usize;
    for q in &rr.queries {
        let sel = prom_selector(&q.matchers).map_err(|m| Reject(400, m))?;
        let from = q.start_timestamp_ms.saturating_mul(MS);
        let to = q.end_timestamp_ms.saturating_mul(MS).saturating_add(MS - 1);
        let mut result: Vec<prompb::ReadSeries> = Vec::new();
        if from <= to {
            let mut open: Option<Arc<SeriesKey>> = None;
            let mut it = view.query(&sel, from, to)?;
            while let Some(b) = it.next_columns() {
                let b = b?;
                if open.as_ref() != Some(&b.key) {
                    result.push(prompb::ReadSeries {
                        labels: prom_labels(&b.key),
                        ..prompb::ReadSeries::default()
                    });
                    open = Some(b.key.clone());
                }
                let Some(series) = result.last_mut() else {
                    continue;
                };
                total += add_samples(series, &b.timestamps, &b.values);
                if total > MAX_READ_SAMPLES {
                    return Err(Reject(
                        400,
                        format!(
                            "the query selects more than {MAX_READ_SAMPLES} samples; \
                             narrow its matchers or time range"
                        ),
                    ));
                }
            }
        }
        out.push(result);
    }
    if streamed {
        return Ok(super::Bytes {
            headers: &[("Content-Type", chunks::CONTENT_TYPE)],
            body: chunks::encode_streamed(&out).map_err(|e| Reject(500, e))?,
        });
    }
    let encoded = prompb::encode_read_response(&out);
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&encoded)
        .map_err(|e| Reject(500, format!("cannot compress the answer: {e}")))?;
    Ok(super::Bytes {
        headers: &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        body: compressed,
    })
}

/// Append a run of points to a remote-read series as samples: times in
/// milliseconds (points finer than a millisecond: the last of each),
/// values as floats. Returns how many samples it added.
fn add_samples(series: &mut prompb::ReadSeries, ts: &[i64], values: &Column) -> usize {
    let before = series.timestamps.len();
    match values {
        Column::F64(c) => push_samples(series, ts, c.iter().copied()),
        Column::I64(c) => push_samples(series, ts, c.iter().map(|&x| x as f64)),
        Column::Bool(c) => push_samples(series, ts, c.iter().map(|&b| f64::from(u8::from(b)))),
    }
    series.timestamps.len() - before
}

fn push_samples(series: &mut prompb::ReadSeries, ts: &[i64], vals: impl Iterator<Item = f64>) {
    for (&t, v) in ts.iter().zip(vals) {
        let ms = t.div_euclid(MS);
        match (series.timestamps.last(), series.values.last_mut()) {
            (Some(&last), Some(lv)) if last == ms => *lv = v,
            _ => {
                series.timestamps.push(ms);
                series.values.push(v);
            }
        }
    }
}

/// An InfluxDB-shaped error: `{"error": "..."}`.
fn influx_error(code: u16, msg: &str) -> Resp {
    json_resp(code, &json!({ "error": msg }))
}

/// `POST /write?db=&precision=`: InfluxDB 1.x line protocol, plain or
/// gzip. The whole body is parsed and checked before any point is
/// appended, so a 400 writes nothing.
pub(super) fn influx_write(ctx: &Ctx, req: &mut Request, query: &str) -> Resp {
    match influx_write_inner(ctx, req, query) {
        Ok(r) => r,
        Err(Reject(code, msg)) => influx_error(code, &msg),
    }
}

fn influx_write_inner(ctx: &Ctx, req: &mut Request, query: &str) -> Answer {
    let engine = may_write(ctx, req, query)?;
    let db = param(query, "db")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| Reject(400, "database is required (the db parameter)".into()))?;
    let precision = match param(query, "precision") {
        None => Precision::Nanoseconds,
        Some(p) if p.is_empty() => Precision::Nanoseconds,
        Some(p) => p.parse().map_err(|e: String| Reject(400, e))?,
    };
    let gzip = match content_encoding(req).as_deref() {
        None | Some("" | "identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(Reject(
                415,
                format!("Content-Encoding {other:?} is not taken (gzip or none)"),
            ));
        }
    };
    let body = read_body(req, MAX_WRITE_BYTES)?;
    let body = if gzip { gunzip(&body)? } else { body };
    let now = crate::now_ns();
    // Series handles by the line's spelling (a slice of the body) and
    // field: no key is built twice for one body. Lines go straight into the
    // appender, which holds them until `commit`: a bad line drops it, so a
    // refused body writes nothing, and memory is the appender's columns
    // (16 bytes a point), not the parsed lines.
    let mut handles: HashMap<&str, Vec<(String, SeriesRef)>> = HashMap::new();
    let mut app = engine.appender();
    for line in lineproto::parse(&body, precision) {
        let line = line.map_err(|e| Reject(400, e.to_string()))?;
        if line.tags.iter().any(|(k, _)| k == DB_TAG) {
            return Err(Reject(
                400,
                format!(
                    "line {}: the tag {DB_TAG:?} is the URL's db parameter and cannot be set \
                     in a line",
                    line.line
                ),
            ));
        }
        let ts = line.timestamp.unwrap_or(now);
        for (field, value) in &line.fields {
            let known = handles.get(line.raw_series).and_then(|fs| {
                fs.iter()
                    .find(|(f, _)| f.as_str() == field.as_ref())
                    .map(|(_, r)| *r)
            });
            let r = match known {
                Some(r) => r,
                None => {
                    let tags = line
                        .tags
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .chain(std::iter::once((DB_TAG.to_owned(), db.clone())));
                    let key = SeriesKey::new(line.measurement.as_ref(), tags, field.as_ref())
                        .map_err(|e| Reject(400, format!("line {}: {e}", line.line)))?;
                    let r = engine.series(&key)?;
                    handles
                        .entry(line.raw_series)
                        .or_default()
                        .push((field.to_string(), r));
                    r
                }
            };
            app.append(r, ts, value.clone())
                .map_err(|e| write_error(e, &format!("line {}", line.line)))?;
        }
    }
    app.commit()
        .map_err(|e| Reject(500, format!("the points were not written: {e}")))?;
    ctx.note_write(&engine);
    Ok(no_content())
}

fn gunzip(body: &[u8]) -> std::result::Result<Vec<u8>, Reject> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_DECODED_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Reject(400, format!("the body is not gzip: {e}")))?;
    if out.len() > MAX_DECODED_BYTES {
        return Err(Reject(
            413,
            format!("the body decodes to more than {MAX_DECODED_BYTES} bytes"),
        ));
    }
    Ok(out)
}

/// `POST /query`: only what InfluxDB clients send before writing
/// (`CREATE DATABASE`, which needs nothing here: a database is a tag).
pub(super) fn influx_query(ctx: &Ctx, req: &mut Request, query: &str) -> Resp {
    let mut q = param(query, "q");
    if q.is_none() {
        // Clients may send the statement form-encoded in the body.
        if let Ok(body) = read_body(req, 64 << 10) {
            q = param(&String::from_utf8_lossy(&body), "q");
        }
    }
    let q = q.unwrap_or_default();
    let words: Vec<String> = q
        .split_whitespace()
        .take(2)
        .map(str::to_ascii_uppercase)
        .collect();
    if words == ["CREATE", "DATABASE"] {
        if ctx.options.read_only {
            return influx_error(403, "this server is read-only");
        }
        return json_resp(200, &json!({"results": [{"statement_id": 0}]}));
    }
    influx_error(
        400,
        &format!(
            "InfluxQL is not served (only CREATE DATABASE, accepted as a no-op); query with \
             GET /api/v1/query?selector=…: {q:?}"
        ),
    )
}

/// `GET /ping`: what InfluxDB clients probe.
pub(super) fn ping() -> Resp {
    boxed(
        Response::empty(StatusCode(204))
            .with_header(header("X-Influxdb-Version", "1.8.0-sydra"))
            .with_header(header("X-Influxdb-Build", "OSS")),
    )
}

/// The revision `as_of` names, as a commit id hex (400 or 404 when it
/// names none).
fn resolve_as_of(engine: &Engine, query: &str) -> std::result::Result<Option<String>, Reject> {
    let Some(rev) = param(query, "as_of").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let id = engine
        .repo()
        .resolve(&rev)
        .map_err(|e| Reject(404, format!("as_of {rev:?}: {e}")))?;
    engine
        .repo()
        .expect_commit(id)
        .map_err(|e| Reject(400, format!("as_of {rev:?}: {e}")))?;
    Ok(Some(id.to_hex()))
}

fn selector_param(query: &str) -> std::result::Result<Selector, Reject> {
    match param(query, "selector") {
        None => Ok(Selector::all()),
        Some(s) => Selector::parse(&s).map_err(|e| Reject(400, format!("selector {s:?}: {e}"))),
    }
}

/// `GET /api/v1/series?selector=&as_of=`: the series of a version.
pub(super) fn series(ctx: &Ctx, query: &str) -> Answer {
    let engine = ctx.engine()?;
    let sel = selector_param(query)?;
    let as_of = resolve_as_of(&engine, query)?;
    let view = engine.view(as_of.as_deref())?;
    let list: Vec<serde_json::Value> = view
        .select(&sel)?
        .iter()
        .map(|(k, t)| json!({"series": k.series_string(), "field": k.field(), "type": t.to_string()}))
        .collect();
    Ok(json_resp(200, &json!({"as_of": as_of, "series": list})))
}

/// The parameters of `GET /api/v1/query`.
struct QueryParams {
    sel: Selector,
    from: i64,
    to: i64,
    as_of: Option<String>,
    agg: Option<(i64, Agg, bool)>,
}

fn query_params(engine: &Engine, query: &str) -> std::result::Result<QueryParams, Reject> {
    let time = |name: &str, default: i64| match param(query, name) {
        None => Ok(default),
        Some(s) => {
            crate::time::parse_query_time(&s).map_err(|e| Reject(400, format!("{name}: {e}")))
        }
    };
    let (from, to) = (time("from", i64::MIN)?, time("to", i64::MAX)?);
    if from > to {
        return Err(Reject(400, "from is after to".into()));
    }
    let step = param(query, "step")
        .map(|s| crate::time::parse_step(&s).map_err(|e| Reject(400, format!("step: {e}"))))
        .transpose()?;
    let agg = param(query, "agg")
        .map(|s| {
            s.parse::<Agg>()
                .map_err(|e| Reject(400, format!("agg: {e}")))
        })
        .transpose()?;
    let agg = match (agg, step) {
        (Some(f), step) => Some((step.unwrap_or(WHOLE_RANGE), f, step.is_none())),
        (None, Some(_)) => return Err(Reject(400, "step needs agg".into())),
        (None, None) => None,
    };
    Ok(QueryParams {
        sel: selector_param(query)?,
        from,
        to,
        as_of: resolve_as_of(engine, query)?,
        agg,
    })
}

/// `GET /api/v1/query?selector=&from=&to=&as_of=&step=&agg=`: the
/// `sydra query` semantics as JSON, streamed series by series:
/// `{"as_of": COMMIT|null, "series": [{"series", "field", "points":
/// [[t_ns, value], …]}, …]}`. A failure part way ends the stream before
/// its closing brackets, which no JSON parser accepts.
pub(super) fn query(ctx: &Arc<Ctx>, query: &str) -> std::result::Result<super::Reply, Reject> {
    let engine = ctx.engine()?;
    let p = query_params(&engine, query)?;
    // Checked here so a bad request is a 4xx, not a cut stream.
    drop(engine.view(p.as_of.as_deref())?);
    let ctx = ctx.clone();
    super::streamed("application/json", move |writer| {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, writer);
        let _ = stream_query(&ctx, &p, &mut out);
    })
}

fn stream_query(ctx: &Ctx, p: &QueryParams, out: &mut impl Write) -> std::io::Result<()> {
    let Ok(engine) = ctx.engine() else {
        return Ok(());
    };
    let failed = std::io::Error::other;
    let view = engine.view(p.as_of.as_deref()).map_err(failed)?;
    write!(out, "{{\"as_of\":{},\"series\":[", json!(p.as_of))?;
    let mut open: Option<Arc<SeriesKey>> = None;
    let mut rows = |key: &Arc<SeriesKey>, points: &[(i64, Value)], out: &mut dyn Write| {
        let mut first = true;
        if open.as_ref() != Some(key) {
            if open.is_some() {
                out.write_all(b"]},")?;
            }
            let head = json!({"series": key.series_string(), "field": key.field()}).to_string();
            write!(out, "{},\"points\":[", &head[..head.len() - 1])?;
            open = Some(key.clone());
        } else {
            first = false;
        }
        for (t, v) in points {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            write!(out, "[{t},{}]", v.to_json())?;
        }
        std::io::Result::Ok(())
    };
    match p.agg {
        Some((step, f, whole)) => {
            for r in view
                .aggregate(&p.sel, p.from, p.to, step, f)
                .map_err(failed)?
            {
                let (key, mut buckets) = r.map_err(failed)?;
                if whole && p.from == i64::MIN {
                    buckets.iter_mut().for_each(|b| b.0 = 0);
                }
                rows(&key, &buckets, out)?;
            }
        }
        None => {
            for b in view.query(&p.sel, p.from, p.to).map_err(failed)? {
                let b = b.map_err(failed)?;
                rows(&b.key, &b.points, out)?;
            }
        }
    }
    if open.is_some() {
        out.write_all(b"]}")?;
    }
    out.write_all(b"]}\n")?;
    out.flush()?;
    Ok(())
}

//! The messages of Prometheus's remote write and remote read protocols
//! (version 1: `prometheus.WriteRequest`, `prometheus.ReadRequest`,
//! `prometheus.ReadResponse`), as `prost` messages.
//!
//! Facts taken from Prometheus's `prompb/remote.proto` and
//! `prompb/types.proto` (Apache License 2.0, Copyright the Prometheus
//! Authors): the message names, field numbers and types below, and
//! nothing else. Only the fields Sydra reads or writes are declared;
//! `exemplars` and `histograms` are declared as opaque bytes so a request
//! carrying them is seen (and refused) rather than silently dropped.
//!
//! The wire framing around them is snappy's block format (not its framed
//! stream format), as Prometheus sends and expects.

use crate::varint::{len as varint_len, put as put_varint};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Field 3 (`MetricMetadata`): type and help text, not stored.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub metadata: Vec<Vec<u8>>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Field 2.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Field 3 (`Exemplar`), sent only with `send_exemplars`.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub exemplars: Vec<Vec<u8>>,
    /// Field 4 (`Histogram`), sent only with `send_native_histograms`.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub histograms: Vec<Vec<u8>>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Field 1.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Field 2: milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.ReadRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// Field 2: `ResponseType` values in the client's order of preference
    /// (0 `SAMPLES`, 1 `STREAMED_XOR_CHUNKS`); empty means `SAMPLES`.
    #[prost(int32, repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

/// `ReadRequest.ResponseType.SAMPLES`.
pub const RESPONSE_SAMPLES: i32 = 0;

/// `prometheus.Query`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Query {
    /// Field 1, inclusive.
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    /// Field 2, inclusive.
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    /// Field 3.
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
}

/// `prometheus.LabelMatcher`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelMatcher {
    /// Field 1: 0 `EQ`, 1 `NEQ`, 2 `RE`, 3 `NRE`.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Field 3.
    #[prost(string, tag = "3")]
    pub value: String,
}

/// `prometheus.ReadResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    /// Field 1, in the order of the request's queries.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

/// `prometheus.QueryResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResult {
    /// Field 1; samples of each series sorted by time.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// Prometheus's staleness marker: the NaN whose bits are these. Stored and
/// returned as is, like any other float.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// One series of a remote-read answer: its labels and samples
/// (milliseconds, value), strictly increasing in time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadSeries {
    /// Its labels, `__name__` first.
    pub labels: Vec<Label>,
    /// Sample times, milliseconds since the Unix epoch.
    pub timestamps: Vec<i64>,
    /// Sample values, one per timestamp.
    pub values: Vec<f64>,
}

/// A length-delimited field's bytes beyond its body: the key and length.
fn framed(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

fn sample_len(t: i64, v: f64) -> usize {
    let value = if v.to_bits() != 0 { 9 } else { 0 };
    let time = if t != 0 { 1 + varint_len(t as u64) } else { 0 };
    value + time
}

fn string_field_len(s: &str) -> usize {
    if s.is_empty() { 0 } else { framed(s.len()) }
}

fn label_len(l: &Label) -> usize {
    string_field_len(&l.name) + string_field_len(&l.value)
}

fn series_len(s: &ReadSeries) -> usize {
    let labels: usize = s.labels.iter().map(|l| framed(label_len(l))).sum();
    let samples: usize = s
        .timestamps
        .iter()
        .zip(&s.values)
        .map(|(&t, &v)| framed(sample_len(t, v)))
        .sum();
    labels + samples
}

fn put_string_field(out: &mut Vec<u8>, key: u8, s: &str) {
    if !s.is_empty() {
        out.push(key);
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
}

/// `prometheus.ReadResponse` holding, per query in order, its series,
/// encoded in one pass into one buffer of the exact size. The bytes are
/// those `prost` writes for the same message (fields in order, defaults
/// left out), except that a value of -0.0 is written: `prost` leaves it
/// out as equal to the default, and it would read back as +0.0.
pub fn encode_read_response(results: &[Vec<ReadSeries>]) -> Vec<u8> {
    const LEN: u8 = 2; // the wire type of a length-delimited field
    let lens: Vec<Vec<usize>> = results
        .iter()
        .map(|r| r.iter().map(series_len).collect())
        .collect();
    let result_lens: Vec<usize> = lens
        .iter()
        .map(|r| r.iter().map(|&l| framed(l)).sum())
        .collect();
    let total: usize = result_lens.iter().map(|&l| framed(l)).sum();
    let mut out = Vec::with_capacity(total);
    for ((r, series_lens), &rl) in results.iter().zip(&lens).zip(&result_lens) {
        out.push(1 << 3 | LEN); // ReadResponse.results
        put_varint(&mut out, rl as u64);
        for (s, &sl) in r.iter().zip(series_lens) {
            out.push(1 << 3 | LEN); // QueryResult.timeseries
            put_varint(&mut out, sl as u64);
            for l in &s.labels {
                out.push(1 << 3 | LEN); // TimeSeries.labels
                put_varint(&mut out, label_len(l) as u64);
                put_string_field(&mut out, 1 << 3 | LEN, &l.name);
                put_string_field(&mut out, 2 << 3 | LEN, &l.value);
            }
            for (&t, &v) in s.timestamps.iter().zip(&s.values) {
                out.push(2 << 3 | LEN); // TimeSeries.samples
                out.push(sample_len(t, v) as u8); // at most 20
                if v.to_bits() != 0 {
                    out.push(1 << 3 | 1); // Sample.value, 64-bit
                    out.extend_from_slice(&v.to_le_bytes());
                }
                if t != 0 {
                    out.push(2 << 3); // Sample.timestamp, varint
                    put_varint(&mut out, t as u64);
                }
            }
        }
    }
    debug_assert_eq!(out.len(), total);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn lcg(x: &mut u64) -> u64 {
        *x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *x >> 11
    }

    #[test]
    fn the_hand_encoded_read_response_is_what_prost_writes() {
        let mut x = 7u64;
        let specials = [
            0.0,
            f64::NAN,
            f64::INFINITY,
            1.5,
            -3.25e300,
            f64::MIN_POSITIVE,
        ];
        for case in 0..200 {
            let results: Vec<Vec<ReadSeries>> = (0..lcg(&mut x) % 3)
                .map(|_| {
                    (0..lcg(&mut x) % 4)
                        .map(|_| {
                            let n = (lcg(&mut x) % 300) as usize;
                            let mut t = (lcg(&mut x) % 5) as i64 - 2;
                            if case % 7 == 0 {
                                t = -1_000_000_000_000;
                            }
                            let mut ts = Vec::new();
                            let mut vs = Vec::new();
                            for _ in 0..n {
                                ts.push(t);
                                t += 1 + (lcg(&mut x) % 100_000_000) as i64;
                                let r = lcg(&mut x);
                                vs.push(if r.is_multiple_of(4) {
                                    specials[(r as usize / 4) % specials.len()]
                                } else {
                                    f64::from_bits(r << 11)
                                });
                            }
                            ReadSeries {
                                labels: (0..lcg(&mut x) % 4)
                                    .map(|i| Label {
                                        name: if i == 1 {
                                            String::new()
                                        } else {
                                            format!("l{i}")
                                        },
                                        value: "v".repeat((lcg(&mut x) % 200) as usize),
                                    })
                                    .collect(),
                                timestamps: ts,
                                values: vs,
                            }
                        })
                        .collect()
                })
                .collect();
            let as_prost = ReadResponse {
                results: results
                    .iter()
                    .map(|r| QueryResult {
                        timeseries: r
                            .iter()
                            .map(|s| TimeSeries {
                                labels: s.labels.clone(),
                                samples: s
                                    .timestamps
                                    .iter()
                                    .zip(&s.values)
                                    .map(|(&timestamp, &value)| Sample { value, timestamp })
                                    .collect(),
                                ..TimeSeries::default()
                            })
                            .collect(),
                    })
                    .collect(),
            };
            let mine = encode_read_response(&results);
            assert_eq!(mine, as_prost.encode_to_vec(), "case {case}");
            let back = ReadResponse::decode(mine.as_slice()).unwrap();
            assert_eq!(back.results.len(), results.len());
        }
    }

    #[test]
    fn negative_zero_keeps_its_sign() {
        let s = ReadSeries {
            labels: vec![],
            timestamps: vec![5],
            values: vec![-0.0],
        };
        let b = encode_read_response(&[vec![s]]);
        let back = ReadResponse::decode(b.as_slice()).unwrap();
        let v = back.results[0].timeseries[0].samples[0].value;
        assert_eq!(v.to_bits(), (-0.0f64).to_bits());
    }
}

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

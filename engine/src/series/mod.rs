//! The time-series layer (DESIGN.md §10): series keys and values, InfluxDB
//! line protocol in and out. The write path (appender, head, compaction) and
//! the read path build on these types.

pub mod append;
pub mod codec;
pub mod compact;
pub mod delete;
pub mod diff;
pub mod head;
pub mod key;
pub mod lineproto;
pub mod query;
pub mod record;
pub mod rollup;
pub(crate) mod segcache;
pub mod segment;
pub mod selector;
pub mod view;

pub use append::{AppendCommit, Appender};
pub use compact::{CompactOptions, CompactReport};
pub use delete::DeleteReport;
pub use diff::{DiffStats, SeriesDiff, SeriesDiffs};
pub use head::Column;
pub use head::SeriesRef;
pub use key::{KeyError, SeriesId, SeriesKey, Value, ValueType};
pub use lineproto::{Line, ParseError, Point, Precision};
pub use query::{Agg, Batch, Buckets, ColumnBatch, Points, QueryStats, WHOLE_RANGE, bucket_of};
pub use selector::{Selector, SelectorError};
pub use view::View;

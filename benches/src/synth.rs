//! The synthetic monitoring store of the replication benches
//! (`remote_bench`, `s3_bench`), made with the engine's own write path:
//! 100 hosts × 10 metrics (byte and request counters, float gauges at full
//! precision and rounded to 0.1, integer gauges, a CPU-seconds float
//! counter, a constant, an up flag, a step function), one point per series
//! every `interval` seconds (a host's 10 series share a timestamp, 0 to 24
//! ms of scrape jitter), one appender commit per scrape, one compaction per
//! hour of data. `docs/BENCHMARKS-REMOTE.md` describes the data.

use std::fs;
use std::path::Path;

use sydra_engine::series::{CompactOptions, CompactReport, SeriesKey, SeriesRef, Value};
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options};

/// Apparent bytes of every regular file under `p`.
pub fn du(p: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(p) else {
        return fs::symlink_metadata(p).map(|m| m.len()).unwrap_or(0);
    };
    let mut n = 0;
    for e in rd.flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            n += du(&e.path());
        } else if ft.is_file() {
            n += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    n
}

pub fn engine_options() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

/// The first point's time: an hour boundary (blocks are one hour).
pub const T0_S: i64 = 1_699_999_200;

/// Deterministic noise.
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub const METRICS: [(&str, &str); 10] = [
    ("net", "rx_bytes"),
    ("http", "requests"),
    ("system", "load1"),
    ("mem", "used_ratio"),
    ("cpu", "usage_percent"),
    ("proc", "open_fds"),
    ("cpu", "seconds_total"),
    ("mem", "total_bytes"),
    ("target", "up"),
    ("disk", "inodes_used"),
];

/// The state of one series: its last value.
#[derive(Debug, Clone, Copy)]
pub struct SeriesState {
    int: i64,
    float: f64,
}

/// What a built store holds, kept in `built.json`.
#[derive(Debug)]
pub struct Built {
    pub series: u64,
    pub hours: u64,
    pub interval: u64,
    pub points: u64,
}

impl Built {
    pub fn read(dir: &Path) -> Option<Built> {
        let s = fs::read_to_string(dir.join("built.json")).ok()?;
        let get = |k: &str| -> Option<u64> {
            let at = s.find(&format!("\"{k}\": "))? + k.len() + 4;
            s[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        Some(Built {
            series: get("series")?,
            hours: get("hours")?,
            interval: get("interval")?,
            points: get("points")?,
        })
    }

    pub fn write(&self, dir: &Path) {
        fs::write(
            dir.join("built.json"),
            format!(
                "{{\"series\": {}, \"hours\": {}, \"interval\": {}, \"points\": {}}}\n",
                self.series, self.hours, self.interval, self.points
            ),
        )
        .unwrap();
    }
}

/// Appends hours of scrapes to an open engine; the series states persist
/// from hour to hour (a value keeps walking where it stopped).
#[derive(Debug)]
pub struct Writer {
    refs: Vec<SeriesRef>,
    state: Vec<SeriesState>,
    rng: Rng,
    interval: u64,
}

impl Writer {
    pub fn key(i: u64) -> SeriesKey {
        let (m, f) = METRICS[(i % 10) as usize];
        SeriesKey::new(
            m,
            [
                ("host".to_string(), format!("node-{:03}", i / 10)),
                ("dc".to_string(), format!("dc{}", i / 10 % 3)),
            ],
            f,
        )
        .unwrap()
    }

    pub fn new(e: &Engine, series: u64, interval: u64) -> Writer {
        let mut refs = Vec::new();
        let mut state = Vec::new();
        let mut rng = Rng(0x5EED_0000_0000_0001);
        for i in 0..series {
            refs.push(e.series(&Writer::key(i)).unwrap());
            state.push(SeriesState {
                int: (rng.next_u64() % 1_000_000) as i64,
                float: rng.unit() * 4.0,
            });
        }
        Writer {
            refs,
            state,
            rng,
            interval,
        }
    }

    /// The handles of the same series in a reopened engine.
    pub fn rebind(&mut self, e: &Engine) {
        self.refs = (0..self.refs.len() as u64)
            .map(|i| e.series(&Writer::key(i)).unwrap())
            .collect();
    }

    /// Hour `h` of scrapes, one appender commit per scrape. Returns points.
    pub fn hour(&mut self, e: &Engine, h: u64) -> u64 {
        let per_hour = 3600 / self.interval;
        let mut n = 0;
        for p in 0..per_hour {
            let base_ns = (T0_S + (h * 3600 + p * self.interval) as i64) * 1_000_000_000;
            let mut app = e.appender();
            let mut ts = base_ns;
            for (i, r) in self.refs.iter().enumerate() {
                if i % 10 == 0 {
                    // One scrape per host: whole milliseconds of jitter.
                    ts = base_ns + (self.rng.next_u64() % 25) as i64 * 1_000_000;
                }
                let st = &mut self.state[i];
                let v = match i % 10 {
                    0 => {
                        st.int += (self.rng.next_u64() % 200_000) as i64;
                        Value::I64(st.int)
                    }
                    1 => {
                        st.int += (self.rng.next_u64() % 400) as i64;
                        Value::I64(st.int)
                    }
                    2 => {
                        st.float = (st.float + (self.rng.unit() - 0.5) * 0.2).abs();
                        Value::F64(st.float)
                    }
                    3 => {
                        st.float = (st.float + (self.rng.unit() - 0.5) * 0.01).clamp(0.0, 1.0);
                        Value::F64(st.float)
                    }
                    4 => Value::F64((self.rng.unit() * 1000.0).round() / 10.0),
                    5 => {
                        st.int = (st.int % 10_000 + (self.rng.next_u64() % 7) as i64 - 3).max(0);
                        Value::I64(st.int)
                    }
                    6 => {
                        st.float += self.rng.unit() * self.interval as f64 * 2.0;
                        Value::F64(st.float)
                    }
                    7 => Value::F64(68_719_476_736.0),
                    8 => Value::Bool(!self.rng.next_u64().is_multiple_of(10_000)),
                    _ => {
                        if self.rng.next_u64().is_multiple_of(500) {
                            st.int += (self.rng.next_u64() % 1000) as i64;
                        }
                        Value::I64(st.int)
                    }
                };
                app.append(*r, ts, v).unwrap();
                n += 1;
            }
            app.commit().unwrap();
        }
        n
    }
}

/// Bytes a clone would carry: packs, loose objects, the WAL and stored
/// WAL ranges.
pub fn store_bytes(dir: &Path) -> u64 {
    du(&dir.join("objects")) + du(&dir.join("wal")) + du(&dir.join("walchunks"))
}

/// One more hour of scrapes on the store and the one compaction it
/// triggers (`built.json` follows).
pub fn advance(store: &Path, built: &mut Built, w: &mut Option<Writer>) -> (u64, CompactReport) {
    let e = Engine::open(store, engine_options()).unwrap();
    let w = w.get_or_insert_with(|| Writer::new(&e, built.series, built.interval));
    w.rebind(&e);
    let points = w.hour(&e, built.hours);
    let c = e.compact(CompactOptions::default()).unwrap();
    e.sync().unwrap();
    drop(e);
    built.hours += 1;
    built.points += points;
    built.write(store);
    (points, c)
}

/// Append hours `from..to` and compact after each (one compaction per hour).
pub fn append_hours(e: &Engine, w: &mut Writer, from: u64, to: u64) -> (u64, u64) {
    let mut points = 0;
    let mut compactions = 0;
    for h in from..to {
        points += w.hour(e, h);
        let r = e.compact(CompactOptions::default()).unwrap();
        if r.commit.is_some() {
            compactions += 1;
        }
    }
    e.sync().unwrap();
    (points, compactions)
}

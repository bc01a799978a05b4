//! WAL benches: Sydra's log beside raw write loops and raw hashing.
//!
//! Groups (criterion ids `<group>/<function>/<parameter>`):
//! - `wal/append_never`: 10,000 appends of 100-byte records per iteration
//!   with `SyncMode::Never`, through `Wal` and through `Engine`, vs a
//!   `BufWriter<File>` (1 MiB, the WAL's buffer size) loop writing the same
//!   framed bytes (CRC computed in the loop). Each timed stretch ends with a
//!   flush to the OS; a fresh log is started before 48 MiB so the 64 MiB
//!   rotation (which fdatasyncs the full segment even in `Never` mode) stays
//!   out of this group, and so does creating the first segment.
//! - `wal/append_always`: `SyncMode::Always` with 1, 8 and 32 threads each
//!   appending 32 records per iteration (group commit), vs one thread doing
//!   `write` + `fdatasync` per record. Records per fdatasync are saved to
//!   `sydra-bench-results/wal_group_commit.json`.
//! - `wal/replay`: replay from the head of a checkpointed log of
//!   `$SYDRA_BENCH_REPLAY_MB` MiB (default 1024) of 100-byte records, every
//!   chunk verified (CRC32 + BLAKE3), every payload yielded, from the page
//!   cache; vs BLAKE3 (and CRC32 + BLAKE3) over the same segment bytes.
//!   Peak RSS of a replay is measured by the `replay_rss` binary, in its own
//!   process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use sydra_benches::raw::{RECORD_HEADER_LEN, create_log, frame};
use sydra_benches::{payload, scratch, syncfs};
use sydra_engine::wal::{SyncMode, Wal, WalOptions};
use sydra_engine::{Engine, Options};

const RECORD: usize = 100;
const PER_ITER: u64 = 10_000;
const FRESH_LOG_AFTER: u64 = 48 << 20;
const ALWAYS_PER_THREAD: u64 = 32;
const THREADS: [usize; 3] = [1, 8, 32];

fn wal_options(sync: SyncMode) -> WalOptions {
    WalOptions {
        sync,
        ..WalOptions::default()
    }
}

fn engine(dir: &Path, sync: SyncMode) -> Engine {
    let options = Options {
        wal: wal_options(sync),
        ..Options::default()
    };
    Engine::create(dir.join("data"), options).unwrap()
}

/// Time `iters` iterations of `PER_ITER` appends against logs made by
/// `open`, starting a fresh log (untimed) before it would reach
/// `FRESH_LOG_AFTER` bytes. `open` returns the log, its append, and its
/// flush; the first append is done untimed so file creation is excluded.
fn timed_appends<L>(
    iters: u64,
    open: impl Fn(&Path) -> L,
    append: impl Fn(&mut L, u64, &[u8]),
    flush: impl Fn(&mut L),
) -> Duration {
    let rec = payload(RECORD, 7);
    let per_log = (FRESH_LOG_AFTER / (PER_ITER * (RECORD_HEADER_LEN + RECORD) as u64)).max(1);
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let dir = scratch("wal-");
        let mut log = open(dir.path());
        append(&mut log, 1, &rec);
        flush(&mut log);
        syncfs(dir.path());
        let n = per_log.min(iters - done);
        let mut seq = 2;
        let start = Instant::now();
        for _ in 0..n {
            for _ in 0..PER_ITER {
                append(&mut log, seq, black_box(&rec));
                seq += 1;
            }
        }
        flush(&mut log);
        total += start.elapsed();
        drop(log);
        done += n;
    }
    total
}

fn bench_append_never(c: &mut Criterion) {
    let (warm, measure) = sydra_benches::timing_cheap();
    let mut g = c.benchmark_group("wal/append_never");
    g.warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat);
    if sydra_benches::quick() {
        g.sample_size(10);
    }
    g.throughput(Throughput::Bytes(PER_ITER * RECORD as u64));
    g.bench_function(BenchmarkId::new("sydra_wal", "100B"), |b| {
        b.iter_custom(|iters| {
            timed_appends(
                iters,
                |d| Wal::open(d, wal_options(SyncMode::Never), 0).unwrap().0,
                |w, _, p| {
                    w.append(p).unwrap();
                },
                |w| {
                    w.flush().unwrap();
                },
            )
        })
    });
    g.bench_function(BenchmarkId::new("sydra_engine", "100B"), |b| {
        b.iter_custom(|iters| {
            timed_appends(
                iters,
                |d| engine(d, SyncMode::Never),
                |e, _, p| {
                    e.append(p).unwrap();
                },
                |e| {
                    e.wal().flush().unwrap();
                },
            )
        })
    });
    g.bench_function(BenchmarkId::new("raw_bufwriter", "100B"), |b| {
        b.iter_custom(|iters| {
            timed_appends(
                iters,
                |d| {
                    let f = create_log(&d.join("raw.log"));
                    (
                        BufWriter::with_capacity(1 << 20, f),
                        Vec::with_capacity(256),
                    )
                },
                |(w, buf), seq, p| {
                    buf.clear();
                    frame(buf, seq, p);
                    w.write_all(buf).unwrap();
                },
                |(w, _)| w.flush().unwrap(),
            )
        })
    });
    g.finish();
}

/// (threads -> (appends, fdatasyncs)) seen by the `Always` bench.
static GROUP_COMMIT: Mutex<BTreeMap<usize, (u64, u64)>> = Mutex::new(BTreeMap::new());

fn bench_append_always(c: &mut Criterion) {
    let (warm, measure) = sydra_benches::timing_heavy();
    let mut g = c.benchmark_group("wal/append_always");
    g.warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    let rec = payload(RECORD, 8);
    for threads in THREADS {
        g.throughput(Throughput::Elements(threads as u64 * ALWAYS_PER_THREAD));
        g.bench_function(
            BenchmarkId::new("sydra_engine", format!("{threads}_threads")),
            |b| {
                b.iter_custom(|iters| {
                    let dir = scratch("wal-always-");
                    let e = engine(dir.path(), SyncMode::Always);
                    e.append(&rec).unwrap();
                    syncfs(dir.path());
                    let before = e.wal().stats();
                    // The threads start once per sample and append
                    // `iters` × ALWAYS_PER_THREAD records each: the steady
                    // rate of `threads` appenders, without thread start-up
                    // and the ramp of each iteration in it. The clock starts
                    // when every thread is ready.
                    let ready = std::sync::Barrier::new(threads + 1);
                    let elapsed = std::thread::scope(|s| {
                        for _ in 0..threads {
                            s.spawn(|| {
                                ready.wait();
                                for _ in 0..iters * ALWAYS_PER_THREAD {
                                    e.append(&rec).unwrap();
                                }
                            });
                        }
                        ready.wait();
                        Instant::now()
                    })
                    .elapsed();
                    let after = e.wal().stats();
                    let mut gc = GROUP_COMMIT.lock().unwrap();
                    let slot = gc.entry(threads).or_default();
                    slot.0 += after.appends - before.appends;
                    slot.1 += after.syncs - before.syncs;
                    elapsed
                })
            },
        );
    }
    g.throughput(Throughput::Elements(ALWAYS_PER_THREAD));
    g.bench_function(BenchmarkId::new("raw_fdatasync", "1_threads"), |b| {
        b.iter_custom(|iters| {
            let dir = scratch("wal-raw-");
            let mut f = create_log(&dir.path().join("raw.log"));
            f.sync_all().unwrap();
            syncfs(dir.path());
            let mut buf = Vec::with_capacity(256);
            let mut seq = 1;
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..ALWAYS_PER_THREAD {
                    buf.clear();
                    frame(&mut buf, seq, &rec);
                    seq += 1;
                    f.write_all(&buf).unwrap();
                    f.sync_data().unwrap();
                }
            }
            start.elapsed()
        })
    });
    g.finish();
    let gc = GROUP_COMMIT.lock().unwrap();
    let rows: Vec<String> = gc
        .iter()
        .map(|(t, (a, s))| format!("\"{t}\": {{\"appends\": {a}, \"fdatasyncs\": {s}}}"))
        .collect();
    sydra_benches::write_result("wal_group_commit", &format!("{{{}}}\n", rows.join(", ")));
}

fn bench_replay(c: &mut Criterion) {
    let mb = sydra_benches::replay_mb();
    let record = sydra_benches::replay_record_len();
    let t = Instant::now();
    let fx = sydra_benches::build_replay_fixture(mb, record);
    eprintln!(
        "wal/replay: built {} records ({} MiB framed, {} segments) in {:.1?}",
        fx.records,
        fx.framed_bytes >> 20,
        fx.segments.len(),
        t.elapsed()
    );
    // Sanity (not timing): the replay yields every record.
    assert_eq!(
        sydra_benches::replay_all(&fx.engine),
        (fx.records, fx.payload_bytes)
    );
    sydra_benches::write_result(
        "wal_replay",
        &format!(
            "{{\"mib\": {mb}, \"record_bytes\": {record}, \"records\": {}, \"payload_bytes\": {}, \
             \"framed_bytes\": {}, \"segments\": {}}}\n",
            fx.records,
            fx.payload_bytes,
            fx.framed_bytes,
            fx.segments.len()
        ),
    );
    let maps: Vec<_> = fx
        .segments
        .iter()
        .map(|p| sydra_objects::map::map_file(&std::fs::File::open(p).unwrap()).unwrap())
        .collect();
    let data_start = 16;
    let segment_bytes: u64 = maps.iter().map(|m| (m.len() - data_start) as u64).sum();

    let (warm, measure) = sydra_benches::timing_heavy();
    let mut g = c.benchmark_group("wal/replay");
    g.warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(segment_bytes));
    let label = format!("{mb}MiB_{record}B");
    g.bench_function(BenchmarkId::new("sydra_replay_head", &label), |b| {
        b.iter(|| sydra_benches::replay_all(&fx.engine))
    });
    g.bench_function(BenchmarkId::new("raw_blake3", &label), |b| {
        b.iter(|| {
            for m in &maps {
                black_box(blake3::hash(&m[data_start..]));
            }
        })
    });
    g.bench_function(BenchmarkId::new("raw_crc32_blake3", &label), |b| {
        b.iter(|| {
            for m in &maps {
                black_box(crc32fast::hash(&m[data_start..]));
                black_box(blake3::hash(&m[data_start..]));
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = wal;
    config = Criterion::default().without_plots();
    targets = bench_append_never, bench_append_always, bench_replay
}
criterion_main!(wal);

//! Writes the seed corpora `fuzz/seeds/<target>/gen-*` from a real store
//! built with the sydra API: object files, tree/commit/chunk payloads, ref
//! files, reflog lines, WAL segments, revisions, operation scripts, packs
//! and pack indexes.
//!
//! ```text
//! cd fuzz && cargo run --release --example gen_corpus
//! ```
//!
//! Files not named `gen-*` (kept findings, `crash-*`) are left alone; stale
//! `gen-*` files are removed. Commit timestamps come from the clock, so
//! object ids differ from run to run; the revision seeds use the fixed
//! repository of `sydra_fuzz::revision`, whose ids never change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sydra_engine::objects::{Kind, ObjectId};
use sydra_engine::wal::record::{
    SEGMENT_VERSION_1, encode_gap, encode_record, encode_record_version, segment_header,
    segment_header_version,
};
use sydra_engine::wal::{SyncMode, WalOptions, list_segments, record::segment_file_name};
use sydra_engine::{Engine, Options};
use sydra_fuzz::ops::{Applied, Op};

/// Seeds per target, by file name.
#[derive(Default)]
struct Seeds(BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &'static str, label: &str, bytes: impl Into<Vec<u8>>) {
        let bytes = bytes.into();
        let hash = blake3::hash(&bytes).to_hex();
        let name = format!("gen-{label}-{}", &hash[..12]);
        self.0.entry(target).or_default().insert(name, bytes);
    }

    fn write(&self, root: &Path) {
        for (target, files) in &self.0 {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
                let entry = entry.unwrap_or_else(|e| panic!("{e}"));
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("gen-") && !files.contains_key(&name) {
                    std::fs::remove_file(entry.path()).unwrap_or_else(|e| panic!("{e}"));
                }
            }
            for (name, bytes) in files {
                std::fs::write(dir.join(name), bytes).unwrap_or_else(|e| panic!("{e}"));
            }
            let total: usize = files.values().map(Vec::len).sum();
            println!("{target:>14}: {:3} files, {total:6} bytes", files.len());
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in rd.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("store");
    let mut seeds = Seeds::default();

    // A small store: records in 512-byte segments, three checkpoints (the
    // last one applying past a whole segment), a snapshot and a branch.
    let options = Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            segment_size: 512,
            max_record: 256,
            ..WalOptions::default()
        },
        ..Options::default()
    };
    let e = Engine::create(&dir, options).unwrap_or_else(|e| panic!("{e}"));
    let rec = |i: u64| {
        format!(
            "cpu,host=h{} value={}.5 {}",
            i % 3,
            i * 7,
            1_700_000_000 + i
        )
    };
    for i in 1..=12 {
        e.append(rec(i).as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    e.checkpoint(None, "first")
        .unwrap_or_else(|e| panic!("{e}"));
    e.snapshot(Some("before-apply"))
        .unwrap_or_else(|e| panic!("{e}"));
    let batch: Vec<Vec<u8>> = (13..=20).map(|i| rec(i).into_bytes()).collect();
    e.append_batch(&batch).unwrap_or_else(|e| panic!("{e}"));
    e.checkpoint(Some(9), "apply through 9")
        .unwrap_or_else(|e| panic!("{e}"));
    e.branch("experiment", "before-apply")
        .unwrap_or_else(|e| panic!("{e}"));
    e.append(b"").unwrap_or_else(|e| panic!("{e}"));
    e.append(&[0u8, 255, 10, 13])
        .unwrap_or_else(|e| panic!("{e}"));
    e.checkpoint(Some(20), "apply through 20")
        .unwrap_or_else(|e| panic!("{e}"));
    e.append(b"tail record").unwrap_or_else(|e| panic!("{e}"));
    e.sync().unwrap_or_else(|e| panic!("{e}"));
    let store = e.repo().objects().clone();
    drop(e);

    // Objects: whole files (loose ones, and pack entries, which are byte
    // for byte loose files), and payloads by kind.
    let mut files: Vec<(ObjectId, Vec<u8>)> = Vec::new();
    for path in files_under(&dir.join("objects")) {
        if let Some(id) = sydra_engine::objects::store::id_from_path(&path) {
            files.push((id, std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"))));
        }
    }
    for p in store.packs().iter() {
        let bytes = p.bytes();
        sydra_engine::objects::pack::scan(bytes, false, |e| {
            let at = e.offset as usize;
            files.push((e.id, bytes[at..at + e.len as usize].to_vec()));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut ids = Vec::new();
    for (id, file) in &files {
        let (id, file) = (*id, file.clone());
        let obj = store.get(&id).unwrap_or_else(|e| panic!("{e}"));
        let kind = obj.kind;
        let payload = obj.data.to_vec();
        let label = kind.to_string();
        seeds.add("loose_object", &label, file.clone());
        match kind {
            Kind::Tree => seeds.add("tree", "tree", payload),
            Kind::Commit => seeds.add("commit", "commit", payload),
            Kind::Blob => {
                if payload.starts_with(b"SYCK") {
                    seeds.add("chunk", "chunk", payload.clone());
                }
                seeds.add("blob", "blob", payload);
            }
        }
        if ids.len() < 6 {
            ids.push(id);
        }
    }
    for id in ids {
        let hex = id.to_hex();
        seeds.add("object_id", "full", hex.clone());
        seeds.add("object_id", "short", hex[..7].to_owned());
        seeds.add("object_id", "upper", hex[..12].to_uppercase());
    }
    for i in [1, 12, 20] {
        seeds.add("blob", "record", rec(i));
    }
    seeds.add("blob", "empty", Vec::new());
    for (label, text) in [("min", "abcd"), ("long", &"0".repeat(65)), ("bad", "abcg")] {
        seeds.add("object_id", label, text.to_owned());
    }
    // Damaged object files: torn, flipped, trailing byte.
    if let Some((_, file)) = files.first() {
        let file = file.clone();
        seeds.add("loose_object", "torn", file[..file.len() - 3].to_vec());
        let mut flipped = file.clone();
        flipped[60.min(file.len() - 1)] ^= 1;
        seeds.add("loose_object", "flipped", flipped);
        let mut trailing = file;
        trailing.push(0);
        seeds.add("loose_object", "trailing", trailing);
    }

    // Refs and reflogs.
    for path in files_under(&dir.join("refs")) {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        seeds.add("ref_file", "ref", bytes);
        let rel = path.strip_prefix(&dir).unwrap_or_else(|e| panic!("{e}"));
        seeds.add("ref_name", "name", rel.to_string_lossy().into_owned());
    }
    let head = std::fs::read(dir.join("HEAD")).unwrap_or_else(|e| panic!("{e}"));
    seeds.add("ref_file", "head", head);
    for name in [
        "HEAD",
        "refs/heads/a.lock",
        "refs/heads/..",
        "refs/x@{1}",
        "@",
    ] {
        seeds.add("ref_name", "edge", name);
    }
    for path in files_under(&dir.join("logs")) {
        let log = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        seeds.add("reflog_line", "file", log.clone());
        for line in log.split_inclusive(|&b| b == b'\n').take(3) {
            seeds.add("reflog_line", "line", line.to_vec());
        }
    }

    // WAL segments. wal_segment: a flag byte, then the segment (flag 0:
    // as is; 7: header, seqs and CRCs rewritten to be valid).
    let wal = dir.join("wal");
    let segs = list_segments(&wal).unwrap_or_else(|e| panic!("{e}"));
    for (i, seg) in segs.iter().enumerate() {
        let bytes =
            std::fs::read(wal.join(segment_file_name(*seg))).unwrap_or_else(|e| panic!("{e}"));
        if i < 4 || i + 1 == segs.len() {
            let mut s = vec![0u8];
            s.extend_from_slice(&bytes);
            seeds.add("wal_segment", "segment", s.clone());
            s[0] = 7;
            seeds.add("wal_segment", "segment-fixed", s);
        }
        if *seg == 1 {
            // wal_recovery, template A (fresh directory): segment 1 as the
            // only segment; whole, torn in a record, torn in the header.
            for (label, cut) in [
                ("whole", bytes.len()),
                ("torn", bytes.len() - 5),
                ("header", 9),
            ] {
                let mut s = vec![0u8];
                s.extend_from_slice(&bytes[..cut]);
                seeds.add("wal_recovery", label, s);
            }
        }
    }
    // wal_recovery, templates B and C (records 1..=5 present): a segment
    // starting at 6, whole and torn, and with fix-up flags.
    let mut seg6 = segment_header(6).to_vec();
    for seq in 6..=9 {
        encode_record(&mut seg6, seq, format!("recovered record {seq}").as_bytes());
    }
    for (template, fix) in [(1u8, 0u8), (2, 0), (1, 7), (2, 7), (3, 0)] {
        for cut in [seg6.len(), seg6.len() - 7] {
            let mut s = vec![template | (fix << 5)];
            s.extend_from_slice(&seg6[..cut]);
            seeds.add("wal_recovery", "seg6", s);
        }
    }

    // Version-1 segments (still read, never appended to): segment 1 alone
    // in the fresh template, whole and torn.
    let mut v1 = segment_header_version(SEGMENT_VERSION_1, 1).to_vec();
    for seq in 1..=4 {
        let payload = format!("v1 record {seq}");
        encode_record_version(&mut v1, SEGMENT_VERSION_1, seq, payload.as_bytes());
    }
    for cut in [v1.len(), v1.len() - 5] {
        let mut s = vec![0u8];
        s.extend_from_slice(&v1[..cut]);
        seeds.add("wal_segment", "v1", s.clone());
        seeds.add("wal_recovery", "v1", s);
    }
    // Gap records (what `sydra wal repair` writes): a lone segment with a
    // gap between records, and a segment 6 that starts with a gap.
    let mut gapped = segment_header(1).to_vec();
    encode_record(&mut gapped, 1, b"before the gap");
    encode_gap(&mut gapped, 2, 5);
    encode_record(&mut gapped, 6, b"after the gap");
    let mut s = vec![0u8];
    s.extend_from_slice(&gapped);
    seeds.add("wal_segment", "gap", s);
    let mut gap6 = segment_header(6).to_vec();
    encode_gap(&mut gap6, 6, 9);
    encode_record(&mut gap6, 10, b"after the gap");
    for template in [1u8, 2] {
        let mut s = vec![template];
        s.extend_from_slice(&gap6);
        seeds.add("wal_recovery", "gap", s);
    }

    // Revisions over the fixed repository.
    let f = sydra_fuzz::revision::fixture();
    let mut revs: Vec<String> = [
        "HEAD",
        "main",
        "dev",
        "alias",
        "unborn",
        "snap1",
        "sec",
        "tags/v1",
        "v1",
        "heads/main",
        "refs/heads/main",
        "refs/heads",
        "main~1",
        "main^",
        "main@{0}",
        "main:a",
        "",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for id in f.objects.iter().take(6) {
        let hex = id.to_hex();
        revs.push(hex.clone());
        revs.push(hex[..4].to_owned());
        revs.push(hex[..9].to_uppercase());
    }
    for name in f.refs.keys() {
        revs.push(name.clone());
    }
    for rev in revs {
        seeds.add("revision", "rev", rev);
    }

    // Operation scripts for engine_ops (first byte: segment size choice).
    let scripts: Vec<(u8, Vec<Op>)> = vec![
        (
            0,
            vec![
                Op::Append { len: 40, fill: 1 },
                Op::AppendBatch {
                    n: 5,
                    len: 100,
                    fill: 2,
                },
                Op::Checkpoint(Applied::Between(3)),
                Op::Snapshot,
                Op::Append { len: 200, fill: 3 },
                Op::Reopen,
                Op::Checkpoint(Applied::All),
                Op::Branch { from: 1 },
                Op::Check,
            ],
        ),
        (
            1,
            vec![
                Op::AppendBatch {
                    n: 11,
                    len: 60,
                    fill: 4,
                },
                Op::Sync,
                Op::Checkpoint(Applied::Keep),
                Op::AppendBatch {
                    n: 7,
                    len: 30,
                    fill: 5,
                },
                Op::TornReopen { cut: 20 },
                Op::Checkpoint(Applied::TooHigh(3)),
                Op::Checkpoint(Applied::BelowHead),
                Op::Snapshot,
                Op::Reopen,
            ],
        ),
        (
            0,
            vec![
                Op::Snapshot,
                Op::Branch { from: 0 },
                Op::Append { len: 300, fill: 6 },
                Op::Checkpoint(Applied::Keep),
                Op::Append { len: 0, fill: 0 },
                Op::TornReopen { cut: 3 },
                Op::Check,
            ],
        ),
        (
            2,
            vec![
                Op::AppendBatch {
                    n: 3,
                    len: 250,
                    fill: 7,
                },
                Op::Checkpoint(Applied::All),
                Op::Snapshot,
                Op::AppendBatch {
                    n: 3,
                    len: 250,
                    fill: 8,
                },
                Op::Checkpoint(Applied::Between(200)),
                Op::Snapshot,
                Op::Branch { from: 2 },
                Op::Reopen,
            ],
        ),
    ];
    for (size, ops) in scripts {
        let mut bytes = vec![size];
        for op in &ops {
            op.encode(&mut bytes);
        }
        seeds.add("engine_ops", "script", bytes);
    }

    // A few ids for object_id that a store never holds.
    seeds.add("object_id", "zero", ObjectId::from_bytes([0; 32]).to_hex());
    series_seeds(&mut seeds);
    segment_seeds(&mut seeds);
    pack_seeds(&mut seeds, &store);
    seeds.write(&root);
}

/// Packs and indexes for `pack_scan` and `pack_index`: the store's packs
/// (written by its batches) whole, torn and damaged (some with the flags
/// that repair them), a pack written by a batch of every kind, the empty
/// pack, and inputs for `pack_scan`'s built mode.
fn pack_seeds(seeds: &mut Seeds, store: &sydra_engine::objects::Store) {
    use sydra_engine::objects::pack::{self, index};
    use sydra_engine::objects::{Durability, Options as StoreOptions, Store};
    use sydra_fuzz::pack::{
        IDX_FIX_FANOUT, IDX_FIX_HEADER, IDX_FIX_TRAILER, IDX_SORT, PACK_BUILD, PACK_FIX_COUNT,
        PACK_FIX_ENTRIES, PACK_FIX_IDS, PACK_FIX_TRAILER,
    };
    let with_flags = |flags: u8, bytes: &[u8]| {
        let mut v = vec![flags];
        v.extend_from_slice(bytes);
        v
    };
    // A pack of all three kinds from a batch of its own, besides the
    // store's (commits, trees and blobs of the engine).
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let own = Store::create(
        tmp.path().join("objects"),
        StoreOptions {
            durability: Durability::None,
            ..StoreOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut batch = own.batch(Durability::None);
    for (kind, payload) in [
        (Kind::Blob, &b"hello"[..]),
        (Kind::Blob, b""),
        (Kind::Blob, &[0u8, 1, 2, 255][..]),
    ] {
        batch.put(kind, payload).unwrap_or_else(|e| panic!("{e}"));
    }
    let blob = ObjectId::compute(Kind::Blob, b"hello");
    let tree = sydra_engine::objects::Tree::from_entries(vec![sydra_engine::objects::Entry {
        kind: Kind::Blob,
        name: "hello".into(),
        id: blob,
    }])
    .unwrap_or_else(|e| panic!("{e}"));
    batch
        .put(Kind::Tree, &tree.encode())
        .unwrap_or_else(|e| panic!("{e}"));
    batch.commit().unwrap_or_else(|e| panic!("{e}"));
    let mut packs: Vec<(Vec<u8>, Vec<u8>)> = store
        .packs()
        .iter()
        .take(2)
        .map(|p| (p.bytes().to_vec(), p.idx_bytes().to_vec()))
        .collect();
    packs.extend(
        own.packs()
            .iter()
            .map(|p| (p.bytes().to_vec(), p.idx_bytes().to_vec())),
    );
    assert!(packs.len() >= 2, "no packs to seed from");
    for (bytes, idx) in &packs {
        seeds.add("pack_scan", "pack", with_flags(0, bytes));
        seeds.add(
            "pack_scan",
            "torn",
            with_flags(0, &bytes[..bytes.len() - 5]),
        );
        // A payload byte flipped: as is, and with every check repaired.
        let mut flipped = bytes.clone();
        flipped[pack::HEADER + 60] ^= 1;
        seeds.add("pack_scan", "flipped", with_flags(0, &flipped));
        let repair = PACK_FIX_ENTRIES | PACK_FIX_IDS | PACK_FIX_COUNT | PACK_FIX_TRAILER;
        seeds.add("pack_scan", "repaired", with_flags(repair, &flipped));
        seeds.add("pack_index", "index", with_flags(0, idx));
        seeds.add("pack_index", "torn", with_flags(0, &idx[..idx.len() - 40]));
        seeds.add(
            "pack_index",
            "refit",
            with_flags(
                IDX_FIX_HEADER | IDX_FIX_FANOUT | IDX_FIX_TRAILER,
                &idx[..idx.len() - 40],
            ),
        );
        // The first two ids swapped: as is, and sorted back.
        let n = (idx.len() - index::OFF_IDS - 32) / 40;
        if n >= 2 {
            let mut swapped = idx.clone();
            let a = index::OFF_IDS;
            let (first, second) = swapped[a..a + 64].split_at_mut(32);
            first.swap_with_slice(second);
            seeds.add("pack_index", "swapped", with_flags(0, &swapped));
            let fix = IDX_SORT | IDX_FIX_FANOUT | IDX_FIX_TRAILER;
            seeds.add("pack_index", "sorted", with_flags(fix, &swapped));
        }
    }
    // The empty pack and its index.
    let mut empty = pack::MAGIC.to_vec();
    empty.push(pack::VERSION);
    empty.extend_from_slice(&[0; 11]);
    let hash = ObjectId::from_bytes(*blake3::hash(&empty).as_bytes());
    empty.extend_from_slice(hash.as_bytes());
    seeds.add("pack_scan", "empty", with_flags(0, &empty));
    let idx = index::encode(&hash, &mut []).unwrap_or_else(|e| panic!("{e}"));
    seeds.add("pack_index", "empty", with_flags(0, &idx));
    // Built mode: flip position (u16 LE) and mask, then objects (control
    // byte: kind mod 3, bit 7 a wrong id; length; payload).
    let built: [&[u8]; 3] = [
        b"\x05\x00\x01\x00\x03abc\x01\x06tree!!\x02\x04cmmt\x00\x00",
        b"\x40\x00\x80\x00\x01a\x00\x01a",
        b"\x70\x00\x10\x00\x02ok\x80\x05wrong",
    ];
    for b in built {
        seeds.add("pack_scan", "built", with_flags(PACK_BUILD, b));
    }
    // Entries for pack_index's encoder, 4 bytes each (id bytes, offset).
    seeds.add(
        "pack_index",
        "entries",
        with_flags(
            0,
            b"\x00\x01\x02\x10\x00\x01\x03\x20\xff\x00\x00\x30\x00\x01\x02\x40",
        ),
    );
}

/// Real compacted blobs (a float series with a rollup, an integer and a
/// boolean series), an index blob and selectors for `series_segment`.
fn segment_seeds(seeds: &mut Seeds) {
    use sydra_engine::series::{CompactOptions, SeriesKey, Value};
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let e = Engine::create(tmp.path(), Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let block = 1_700_000_000_000_000_000 / 3_600_000_000_000 * 3_600_000_000_000;
    let mut app = e.appender();
    for (i, f) in ["usage", "count", "up"].iter().enumerate() {
        let key = SeriesKey::new("cpu", [("host".into(), "a".into())], *f)
            .unwrap_or_else(|e| panic!("{e}"));
        let r = e.series(&key).unwrap_or_else(|e| panic!("{e}"));
        for j in 0..300i64 {
            let v = match i {
                0 => Value::F64(20.0 + (j % 13) as f64 / 10.0),
                1 => Value::I64(j * 3 - 100),
                _ => Value::Bool(j % 5 < 3),
            };
            app.append(r, block + j * 10_000_000_000, v)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    app.commit().unwrap_or_else(|e| panic!("{e}"));
    e.compact(CompactOptions {
        all: true,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let repo = e.repo();
    let blob = |path: &str| -> Vec<u8> {
        let id = repo
            .resolve(&format!("main:{path}"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        repo.objects()
            .get(&id)
            .unwrap_or_else(|e| panic!("{e}"))
            .data
            .to_vec()
    };
    let framed = |mode: u8, a: &[u8], b: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(&(a.len() as u16).to_le_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        v
    };
    let list = |path: &str| -> Vec<(String, ObjectId)> {
        let id = repo
            .resolve(&format!("main:{path}"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let obj = repo.objects().get(&id).unwrap_or_else(|e| panic!("{e}"));
        let t = obj.tree().unwrap_or_else(|e| panic!("{e}"));
        t.entries
            .iter()
            .map(|e| (e.name.to_string(), e.id))
            .collect()
    };
    for (aa, _) in list("series") {
        for (dir, _) in list(&format!("series/{aa}")) {
            let d = format!("series/{aa}/{dir}");
            for (name, _) in list(&d) {
                let Some(base) = name.strip_suffix(".v") else {
                    continue;
                };
                let v = blob(&format!("{d}/{name}"));
                let t = blob(&format!("{d}/{base}.t"));
                seeds.add("series_segment", "segment", framed(0, &t, &v));
                if let Ok(r) = repo.resolve(&format!("main:{d}/{base}.1m")) {
                    let r = repo.objects().get(&r).unwrap_or_else(|e| panic!("{e}"));
                    seeds.add("series_segment", "rollup", framed(1, &v, &r.data));
                }
            }
        }
    }
    for (aa, _) in list("index/series") {
        let mut v = vec![2, u8::from_str_radix(&aa, 16).unwrap_or(0)];
        v.extend(blob(&format!("index/series/{aa}")));
        seeds.add("series_segment", "index", v);
    }
    for s in [
        r#"cpu{host="a", dc=~"eu-.*", _field!="x"}"#,
        r#"{__name__=~'m|n', k!~"\d+"}"#,
        "\"odd name\"",
    ] {
        let mut v = vec![3];
        v.extend_from_slice(s.as_bytes());
        seeds.add("series_segment", "selector", v);
    }
}

/// Line protocol and series column codecs: the shapes real data has.
fn series_seeds(seeds: &mut Seeds) {
    use sydra_engine::series::codec;
    let lines: [(&str, &[u8]); 4] = [
        (
            "basic",
            b"cpu,host=a\\ b,region=eu usage=1.5,idle=3i,ok=t,msg=\"hi \\\"x\\\"\" 1700000000000000000\n# c\n\nmem free=2\r\n",
        ),
        (
            "ms",
            b"\x02weather,station=JFK temp=39.02,dewp=26.06 1357016400000\nweather,station=LGA temp=39.92 1357020000000\n",
        ),
        (
            "escapes",
            b"m\\,x\\ y\\=z,t\\\\=v\\\\ f\\=g=\"a\\\\b\" -5\nm f=1e-300,g=-0,h=.5,i=-9223372036854775808i\n",
        ),
        (
            "errors",
            b"m,t=a=b f=1\nm f=1u\nm f=NaN\nm f=\"open\n,t=1 f=1\nm f=1 1 2\n",
        ),
    ];
    for (label, text) in lines {
        seeds.add("line_protocol", label, text.to_vec());
    }
    // Scrape timestamps: 1 s in ms stored as ns, with jitter and a gap.
    let ts: Vec<i64> = (0..300i64)
        .map(|i| {
            (1_700_000_000_000
                + i * 1000
                + [0, 1, 0, 2][(i % 4) as usize]
                + if i > 200 { 1000 } else { 0 })
                * 1_000_000
        })
        .collect();
    seeds.add("series_codecs", "ts-scrape", codec::encode_timestamps(&ts));
    seeds.add(
        "series_codecs",
        "ts-few",
        codec::encode_timestamps(&[5, -7]),
    );
    let weather: Vec<f64> = (0..200)
        .map(|i| f64::from(3902 + (i * 37 % 200) - 100) / 100.0)
        .collect();
    seeds.add("series_codecs", "f64-decimal", codec::encode_f64(&weather));
    let odd = [0.1 + 0.2, -0.0, f64::NAN, 1e300, 5e-324];
    seeds.add("series_codecs", "f64-xor", codec::encode_f64(&odd));
    let counter: Vec<i64> = (0..300).map(|i| i * 4096 + i % 3).collect();
    seeds.add("series_codecs", "i64-counter", codec::encode_i64(&counter));
    seeds.add(
        "series_codecs",
        "i64-any",
        codec::encode_i64(&[i64::MIN, i64::MAX, 0, -1]),
    );
    let flags: Vec<bool> = (0..100).map(|i| i % 10 < 7).collect();
    seeds.add("series_codecs", "bool-runs", codec::encode_bool(&flags));

    use sydra_engine::series::record::{SamplesRecord, SeriesRecord, ValuesRef};
    use sydra_engine::series::{SeriesKey, ValueType};
    let key = |m: &str, tags: &[(&str, &str)], f: &str| {
        SeriesKey::new(
            m,
            tags.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            f,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut defs = SeriesRecord::new();
    defs.push(
        1,
        ValueType::Float,
        &key("cpu", &[("host", "a"), ("dc", "x y")], "usage"),
    );
    defs.push(2, ValueType::Boolean, &key("up", &[], "value"));
    defs.push(
        300,
        ValueType::String,
        &key("log", &[("db", "telegraf")], "msg"),
    );
    seeds.add("series_record", "series", defs.finish());
    let mut samples = SamplesRecord::new();
    let ok = |r: Result<(), sydra_engine::series::record::RecordError>| {
        r.unwrap_or_else(|e| panic!("{e}"))
    };
    ok(samples.push(1, &ts[..10], ValuesRef::F64(&weather[..10])));
    ok(samples.push(2, &[5, 6, 7], ValuesRef::Bool(&[true, true, false])));
    ok(samples.push(4, &[-1], ValuesRef::I64(&[i64::MIN])));
    ok(samples.push(300, &[9], ValuesRef::Str(&["say \"hi\"".to_string()])));
    seeds.add("series_record", "samples", samples.finish());
}

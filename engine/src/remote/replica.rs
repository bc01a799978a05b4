//! Read replicas on an S3 remote (DESIGN.md §11, DECISIONS 61): queries
//! and as-of reads answered straight from the bucket, through a bounded
//! local cache, without cloning.
//!
//! At open the replica reads the manifest (the refs and the live packs)
//! and each pack's transfer index (`packs/pack-<hex>.syti`, docs/FORMAT.md
//! §22), keeping the indexes in the cache directory (they never change,
//! being named by the pack's content). A pack pushed before indexes were
//! uploaded is downloaded once and indexed locally.
//!
//! Then every object or WAL range a read needs and the cache lacks is one
//! ranged GET of its entry, verified like any fetched data (framing, CRC,
//! BLAKE3 for objects; length, CRC and BLAKE3 against its chunk for a
//! range) and kept in the cache's `store/`, an ordinary data directory
//! (loose objects, `walchunks/`). When the cache holds more than its
//! bound, the copies kept first are removed first (first in, first out:
//! a replica's working set is the recent versions, and a removed copy is
//! one request away).
//!
//! The cache directory is the replica's alone: it is marked (`replica-of`,
//! holding the URL) when created, and a directory that is not empty and not
//! so marked, or marked for another remote, is refused, so eviction never
//! touches a real data directory.
//!
//! Reads that miss the cache block on the S3 client's own (current-thread)
//! runtime: do not call them from inside an async runtime's worker (use
//! `spawn_blocking`). Several threads may read at once; their requests are
//! served in turn.
//!
//! The replica's refs are the manifest's, read at open and again by
//! [`Replica::refresh`]: a revision names one of them (`main`,
//! `snapshots/nightly`, `refs/heads/main`) or a full commit id, with `~N`
//! and `@{TIME}` steps (a time walks the first-parent history by commit
//! time: the replica has no reflog of the remote).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use sydra_objects::{Fallback, ObjectId, Store};
use sydra_refs::RefName;

use super::remote_err;
use super::s3::S3Remote;
use super::tindex::{Span, TransferIndex};
use crate::engine::{Engine, Options};
use crate::error::{Error, Result};
use crate::series::View;

/// Settings of [`Engine::open_remote`].
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// Bytes of fetched objects and ranges the cache keeps (default 1 GiB;
    /// the indexes are not counted).
    pub cache_max_bytes: u64,
    /// Settings of the cache directory's engine.
    pub engine: Options,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        ReplicaOptions {
            cache_max_bytes: 1 << 30,
            engine: Options::default(),
        }
    }
}

/// What a replica has cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Requests made to the bucket (manifest, indexes, entries).
    pub requests: u64,
    /// Bytes downloaded (indexes and entries).
    pub bytes: u64,
    /// Objects fetched.
    pub objects: u64,
    /// WAL ranges fetched.
    pub ranges: u64,
    /// Bytes the cache holds now.
    pub cache_bytes: u64,
    /// Copies removed from the cache to keep it within its bound.
    pub evicted: u64,
}

/// A read replica: see the module docs. Reads go through
/// [`Replica::view`]; [`Replica::engine`] is the cache's engine.
#[derive(Debug)]
pub struct Replica {
    engine: Engine,
    source: Arc<Source>,
}

/// Where an item sits: the pack (index into `packs`) and its span.
type Place = (u32, Span);

/// What the manifest listed when last read: the refs, and where each
/// object and WAL range sits in the live packs.
#[derive(Debug, Default)]
struct Catalog {
    generation: u64,
    packs: Vec<String>,
    refs: Vec<(RefName, ObjectId)>,
    objects: HashMap<ObjectId, Place>,
    ranges: HashMap<ObjectId, Place>,
    /// Per pack, its objects by offset: what else a coalesced read holds.
    by_offset: Vec<Vec<(Span, ObjectId)>>,
}

#[derive(Debug)]
struct Source {
    url: String,
    s3: S3Remote,
    /// Replaced whole by [`Replica::refresh`]; a read keeps the one it
    /// started with (its places index that catalog's packs).
    catalog: RwLock<Arc<Catalog>>,
    /// Held by a refresh from its manifest read to its swap.
    refreshing: Mutex<()>,
    /// Where the packs' transfer indexes are kept.
    idx_dir: PathBuf,
    cache: Mutex<Cache>,
    max_bytes: u64,
    bytes: AtomicU64,
    fetched_objects: AtomicU64,
    fetched_ranges: AtomicU64,
}

#[derive(Debug, Default)]
struct Cache {
    /// Kept copies, oldest first, each once.
    order: VecDeque<PathBuf>,
    sizes: HashMap<PathBuf, u64>,
    bytes: u64,
    evicted: u64,
}

impl Cache {
    fn keep(&mut self, path: PathBuf, len: u64, max: u64) {
        // Kept already (two readers fetched the same entry): counted once.
        if self.sizes.contains_key(&path) {
            return;
        }
        self.sizes.insert(path.clone(), len);
        self.order.push_back(path);
        self.bytes += len;
        // The copy just kept stays: its reader is about to use it.
        while self.bytes > max && self.order.len() > 1 {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            let n = self.sizes.remove(&old).unwrap_or(0);
            // Already gone is fine (removed by hand, or a GC of the cache).
            let _ = std::fs::remove_file(&old);
            self.bytes -= n;
            self.evicted += 1;
        }
    }
}

/// The file that marks a directory as a replica's cache, holding the URL.
const MARKER: &str = "replica-of";

/// Make sure `cache` is a replica cache of `url` (or create it): never
/// evict from a data directory that is not one, or mix two remotes.
fn claim_cache(cache: &Path, url: &str) -> Result<()> {
    let marker = cache.join(MARKER);
    match std::fs::read_to_string(&marker) {
        Ok(s) if s.trim_end() == url => return Ok(()),
        Ok(s) => {
            return Err(remote_err(
                url,
                format!(
                    "{} is the cache of another remote ({}); give --cache another directory",
                    cache.display(),
                    s.trim_end()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read", &marker)(e)),
    }
    let empty = match std::fs::read_dir(cache) {
        Ok(mut d) => d.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(Error::io("list", cache)(e)),
    };
    if !empty {
        return Err(remote_err(
            url,
            format!(
                "{} is not empty and not a replica cache (no {MARKER} file): a replica evicts files from its cache, so it uses only a directory of its own",
                cache.display()
            ),
        ));
    }
    std::fs::create_dir_all(cache).map_err(Error::io("create directory", cache))?;
    write_atomic(&marker, format!("{url}\n").as_bytes())
}

/// The directory under the cache where transfer indexes are kept.
const INDEX_DIR: &str = "replica-indexes";
/// The data directory under the cache that holds the fetched copies.
const STORE_DIR: &str = "store";

impl Engine {
    /// Open a read replica of the S3 remote `url` (`s3://BUCKET/PREFIX`)
    /// with its cache in `cache` (created if missing; a data directory of
    /// its own, locked while the replica is open). Reads the manifest and
    /// the pack indexes the cache lacks.
    pub fn open_remote(
        url: &str,
        cache: impl AsRef<Path>,
        options: ReplicaOptions,
    ) -> Result<Replica> {
        let cache = cache.as_ref();
        let s3 = super::s3::open(url, None, false)?;
        claim_cache(cache, url)?;
        let store = cache.join(STORE_DIR);
        let engine = if store.join("objects").is_dir() {
            Engine::open(&store, options.engine.clone())?
        } else {
            Engine::create(&store, options.engine.clone())?
        };
        let idx_dir = cache.join(INDEX_DIR);
        std::fs::create_dir_all(&idx_dir).map_err(Error::io("create directory", &idx_dir))?;
        let mut bytes = 0u64;
        let manifest = s3.manifest()?;
        let catalog = load_catalog(url, &s3, manifest, &engine, &idx_dir, &mut bytes)?;
        if catalog.packs.is_empty() && catalog.refs.is_empty() {
            return Err(remote_err(
                url,
                "has no manifest: nothing was pushed there (or the bucket does not exist)",
            ));
        }
        let source = Arc::new(Source {
            url: url.to_owned(),
            s3,
            catalog: RwLock::new(Arc::new(catalog)),
            refreshing: Mutex::new(()),
            idx_dir,
            cache: Mutex::new(scan_cache(&store)?),
            max_bytes: options.cache_max_bytes,
            bytes: AtomicU64::new(bytes),
            fetched_objects: AtomicU64::new(0),
            fetched_ranges: AtomicU64::new(0),
        });
        let fallback: Arc<dyn Fallback> = source.clone();
        if !engine.repo().objects().set_fallback(fallback) {
            return Err(remote_err(
                url,
                "the cache's object store already has a fallback",
            ));
        }
        let ranges_src: Arc<dyn crate::replay::RangeSource> = source.clone();
        let _ = engine.range_source.set(ranges_src);
        Ok(Replica { engine, source })
    }
}

/// The catalog of `manifest` (of `url`): the transfer index of each pack it
/// lists (from `idx_dir` where kept, else from the bucket, kept there
/// after), recording the history boundaries the packs carry in `engine`'s
/// repository. Adds the bytes downloaded to `bytes`.
fn load_catalog(
    url: &str,
    s3: &S3Remote,
    manifest: super::s3::Manifest,
    engine: &Engine,
    idx_dir: &Path,
    bytes: &mut u64,
) -> Result<Catalog> {
    let mut objects = HashMap::new();
    let mut ranges = HashMap::new();
    let mut packs = Vec::new();
    let mut by_offset = Vec::new();
    let mut shallow = Vec::new();
    for (i, p) in manifest.packs.iter().enumerate() {
        let i = u32::try_from(i).map_err(|_| remote_err(url, "too many packs"))?;
        let trailer = p.trailer().ok_or_else(|| {
            remote_err(url, format!("pack name {} is not pack-<hex>.sytx", p.name))
        })?;
        let local = idx_dir.join(super::s3::index_name(&p.name));
        let index = match std::fs::read(&local) {
            Ok(b) => TransferIndex::parse(&b, &trailer, p.bytes).ok(),
            Err(_) => None,
        };
        let index = match index {
            Some(ix) => ix,
            None => {
                let (raw, ix) = match s3.get_index(&p.name, p.max_index_bytes())? {
                    Some(b) => {
                        *bytes += b.len() as u64;
                        let ix = TransferIndex::parse(&b, &trailer, p.bytes).map_err(|e| {
                            remote_err(url, format!("{}: {e}", super::s3::index_name(&p.name)))
                        })?;
                        (b, ix)
                    }
                    None => {
                        // Pushed before indexes were uploaded: index
                        // it here, once.
                        let file = s3.get_pack(p, engine.repo().objects())?;
                        *bytes += p.bytes;
                        let f = sydra_objects::fs::open_regular(&file.path)
                            .map_err(Error::io("open", &file.path))?;
                        let map = sydra_objects::map::map_file(&f)
                            .map_err(Error::io("map", &file.path))?;
                        // Downloaded: its trailer is checked first.
                        let ix = super::parse_transfer(&map)
                            .and_then(|_| TransferIndex::build(&map))
                            .map_err(|e| remote_err(url, format!("packs/{}: {e}", p.name)))?;
                        (ix.encode(), ix)
                    }
                };
                write_atomic(&local, &raw)?;
                ix
            }
        };
        let mut at: Vec<(Span, ObjectId)> = index.objects.iter().map(|(id, s)| (*s, *id)).collect();
        at.sort_by_key(|(s, _)| s.offset);
        by_offset.push(at);
        for (id, span) in index.objects {
            objects.entry(id).or_insert((i, span));
        }
        for (id, span) in index.ranges {
            ranges.entry(id).or_insert((i, span));
        }
        shallow.extend(index.shallow);
        packs.push(p.name.clone());
    }
    // The remote's history ends where its pushes' did (a source cut
    // by retention): record those boundaries as a clone would, so a
    // walk back in time stops there instead of missing a parent.
    let horizon = sydra_gc::Horizon::read(engine.repo().layout().root())?;
    shallow.retain(|c| !horizon.is_boundary(c));
    if !shallow.is_empty() {
        super::add_boundaries(engine.repo(), &shallow)?;
    }
    let mut refs = Vec::new();
    for (name, id) in &manifest.refs {
        let n = RefName::new(name).map_err(|e| remote_err(url, format!("ref {name}: {e}")))?;
        refs.push((n, *id));
    }
    Ok(Catalog {
        generation: manifest.generation,
        packs,
        refs,
        objects,
        ranges,
        by_offset,
    })
}

impl Replica {
    /// The cache's engine (its object store reads through to the remote).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The remote's refs as its manifest listed them at open or at the
    /// last [`Replica::refresh`].
    pub fn refs(&self) -> Vec<(RefName, ObjectId)> {
        self.source.catalog().refs.clone()
    }

    /// Read the manifest again, so refs moved and packs pushed since open
    /// (or the last refresh) are read; packs the remote's GC removed are
    /// no longer asked for. Returns whether the manifest changed (its
    /// generation moved); when it did not, nothing else is read. A read
    /// in progress finishes with the catalog it started with. Costs one
    /// request, plus one per new pack's index; the kept indexes are
    /// parsed again.
    pub fn refresh(&self) -> Result<bool> {
        let s = &self.source;
        // One refresh at a time: two racing could install the older
        // manifest's catalog last.
        let _one = s.refreshing.lock();
        let manifest = s.s3.manifest()?;
        if manifest.generation == s.catalog().generation {
            return Ok(false);
        }
        if manifest.packs.is_empty() && manifest.refs.is_empty() {
            return Err(remote_err(
                &s.url,
                "has no manifest now (deleted, or the bucket was emptied); the replica keeps what it read before",
            ));
        }
        let mut bytes = 0;
        let c = load_catalog(
            &s.url,
            &s.s3,
            manifest,
            &self.engine,
            &s.idx_dir,
            &mut bytes,
        )?;
        s.bytes.fetch_add(bytes, Ordering::Relaxed);
        *s.catalog.write() = Arc::new(c);
        Ok(true)
    }

    /// `rev` with its base (a ref of the remote, short or full, or a full
    /// commit id) replaced by the commit id; `None` is `main`.
    pub fn resolve(&self, rev: Option<&str>) -> Result<String> {
        let rev = rev.unwrap_or("main");
        let parsed = crate::revision::parse(rev)?;
        let base = parsed.base;
        let rest = &rev[base.len()..];
        if base.len() == ObjectId::HEX_LEN && base.parse::<ObjectId>().is_ok() {
            return Ok(rev.to_owned());
        }
        let candidates: Vec<String> = if base == "HEAD" {
            vec!["refs/heads/main".into()]
        } else if base.starts_with("refs/") {
            vec![base.to_owned()]
        } else {
            crate::revision::SHORT_NAME_PREFIXES
                .iter()
                .map(|p| format!("{p}{base}"))
                .collect()
        };
        let refs = self.source.catalog().refs.clone();
        for c in candidates {
            if let Some((_, id)) = refs.iter().find(|(n, _)| n.as_str() == c) {
                return Ok(format!("{id}{rest}"));
            }
        }
        Err(Error::revision(
            rev,
            format!(
                "the remote {} has no ref {base:?} (a replica reads the remote's refs or full commit ids)",
                self.source.url
            ),
        ))
    }

    /// The series as of `as_of` (default: the remote's `main`), as
    /// [`Engine::view`] reads them.
    pub fn view(&self, as_of: Option<&str>) -> Result<View<'_>> {
        let rev = self.resolve(as_of)?;
        self.engine.view(Some(&rev)).map_err(|e| match e {
            // Name the revision as the caller wrote it.
            Error::Revision { reason, .. } => Error::revision(as_of.unwrap_or("main"), reason),
            e => e,
        })
    }

    /// What the replica has cost so far.
    pub fn stats(&self) -> ReplicaStats {
        let s = &self.source;
        let c = s.cache.lock();
        ReplicaStats {
            requests: s.s3.requests(),
            bytes: s.bytes.load(Ordering::Relaxed),
            objects: s.fetched_objects.load(Ordering::Relaxed),
            ranges: s.fetched_ranges.load(Ordering::Relaxed),
            cache_bytes: c.bytes,
            evicted: c.evicted,
        }
    }
}

/// The largest single entry a replica reads into memory.
const MAX_ENTRY: u64 = 1 << 30;

impl Source {
    /// The catalog reads use now.
    fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().clone()
    }

    /// Where an entry is, for errors: `URL/packs/NAME at OFFSET+LEN` (the
    /// URL alone when no index lists it).
    fn describe(&self, c: &Catalog, place: Option<&Place>) -> String {
        match place {
            Some((p, s)) => format!(
                "{}/packs/{} at {}+{}",
                self.url.trim_end_matches('/'),
                c.packs[*p as usize],
                s.offset,
                s.len
            ),
            None => self.url.clone(),
        }
    }

    /// Refuse an entry too large to hold in memory.
    fn check_size(&self, c: &Catalog, (pack, span): &Place) -> Result<()> {
        if span.len > MAX_ENTRY {
            return Err(remote_err(
                &self.url,
                format!(
                    "packs/{} holds an entry of {} bytes at {}, more than a replica reads into memory ({MAX_ENTRY}); clone the remote instead",
                    c.packs[*pack as usize], span.len, span.offset
                ),
            ));
        }
        Ok(())
    }

    fn get(&self, c: &Catalog, place: &Place) -> Result<Vec<u8>> {
        self.check_size(c, place)?;
        let (pack, span) = place;
        let name = &c.packs[*pack as usize];
        let b = self.s3.get_range(name, span.offset, span.len)?;
        self.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
}

/// Entries of one pack at most this far apart are read in one request
/// (the bytes between them are fetched and dropped, or kept when they are
/// whole entries).
const COALESCE_GAP: u64 = 16 << 10;
/// The most one coalesced request reads.
const COALESCE_MAX: u64 = 8 << 20;
/// The most a batch of concurrent requests holds in memory (one request
/// larger than this goes alone).
const BATCH_BYTES: u64 = 64 << 20;

impl Source {
    /// Fetch the spans `want` (pack, span) with as few ranged GETs as
    /// coalescing allows, several in flight, handing `each` (pack, start,
    /// body) per request; at most [`BATCH_BYTES`] are held at a time.
    fn get_coalesced(
        &self,
        c: &Catalog,
        mut want: Vec<Place>,
        each: &mut dyn FnMut(u32, u64, Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        for w in &want {
            self.check_size(c, w)?;
        }
        want.sort_by_key(|(p, s)| (*p, s.offset));
        let mut reqs: Vec<(u32, u64, u64)> = Vec::new();
        for (p, s) in want {
            let end = s.offset + s.len;
            match reqs.last_mut() {
                Some((lp, start, e))
                    if *lp == p
                        && s.offset <= e.saturating_add(COALESCE_GAP)
                        && end - *start <= COALESCE_MAX =>
                {
                    *e = (*e).max(end);
                }
                _ => reqs.push((p, s.offset, end)),
            }
        }
        let mut rest = &reqs[..];
        while !rest.is_empty() {
            // At least one request per batch, however large.
            let mut n = 0;
            let mut bytes = 0;
            while let Some((_, a, b)) = rest.get(n)
                && (n == 0 || bytes + (b - a) <= BATCH_BYTES)
            {
                bytes += b - a;
                n += 1;
            }
            let (batch, later) = rest.split_at(n);
            rest = later;
            let asks: Vec<(&str, std::ops::Range<u64>)> = batch
                .iter()
                .map(|(p, a, b)| (c.packs[*p as usize].as_str(), *a..*b))
                .collect();
            let bodies = self.s3.get_many(&asks)?;
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
            for ((p, a, _), body) in batch.iter().zip(bodies) {
                each(*p, *a, body)?;
            }
        }
        Ok(())
    }
}

impl Fallback for Source {
    fn fetch_many(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(ObjectId, Vec<u8>) -> sydra_objects::Result<()>,
    ) -> sydra_objects::Result<()> {
        let c = self.catalog();
        let want: Vec<Place> = ids
            .iter()
            .filter_map(|id| c.objects.get(id).copied())
            .collect();
        let fetched = self.get_coalesced(&c, want, &mut |p, start, body| {
            // Every whole entry the body holds: those asked for, and the
            // small ones between them (a series' rollups, say).
            let end = start + body.len() as u64;
            let entries = &c.by_offset[p as usize];
            let mut i = entries.partition_point(|(s, _)| s.offset < start);
            while let Some((s, id)) = entries.get(i)
                && s.offset + s.len <= end
            {
                let at = (s.offset - start) as usize;
                self.fetched_objects.fetch_add(1, Ordering::Relaxed);
                sink(*id, body[at..at + s.len as usize].to_vec()).map_err(Error::Objects)?;
                i += 1;
            }
            Ok(())
        });
        // Errors of the sink (the store's checks) pass through as they
        // are; the source's own become corrupt-object errors naming it.
        fetched.map_err(|e| match e {
            Error::Objects(o) => o,
            e => sydra_objects::Error::Fetch {
                id: ids.first().copied().unwrap_or_default(),
                from: self.url.clone(),
                reason: e.to_string(),
            },
        })
    }

    fn has(&self, id: &ObjectId) -> bool {
        self.catalog().objects.contains_key(id)
    }

    fn fetch(&self, id: &ObjectId) -> sydra_objects::Result<Option<Vec<u8>>> {
        let c = self.catalog();
        let Some(place) = c.objects.get(id) else {
            return Ok(None);
        };
        let b = self
            .get(&c, place)
            .map_err(|e| sydra_objects::Error::Fetch {
                id: *id,
                from: self.origin(id),
                reason: e.to_string(),
            })?;
        self.fetched_objects.fetch_add(1, Ordering::Relaxed);
        Ok(Some(b))
    }

    fn kept(&self, store: &Store, id: &ObjectId, file_len: u64) {
        self.cache
            .lock()
            .keep(store.path_of(id), file_len, self.max_bytes);
    }

    fn origin(&self, id: &ObjectId) -> String {
        let c = self.catalog();
        self.describe(&c, c.objects.get(id))
    }
}

impl crate::replay::RangeSource for Source {
    fn fetch_range(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        let c = self.catalog();
        let Some(place) = c.ranges.get(id) else {
            return Ok(None);
        };
        let b = self.get(&c, place)?;
        self.fetched_ranges.fetch_add(1, Ordering::Relaxed);
        Ok(Some(b))
    }

    fn fetch_ranges(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(ObjectId, Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let c = self.catalog();
        let want: Vec<(ObjectId, Place)> = ids
            .iter()
            .filter_map(|id| c.ranges.get(id).map(|p| (*id, *p)))
            .collect();
        // Per pack, the wanted ranges by offset: each body takes the run of
        // them it covers.
        let mut by_pack: HashMap<u32, Vec<(Span, ObjectId)>> = HashMap::new();
        for (id, (p, s)) in &want {
            by_pack.entry(*p).or_default().push((*s, *id));
        }
        for v in by_pack.values_mut() {
            v.sort_by_key(|(s, _)| s.offset);
        }
        self.get_coalesced(
            &c,
            want.iter().map(|(_, p)| *p).collect(),
            &mut |p, start, body| {
                let end = start + body.len() as u64;
                let Some(list) = by_pack.get(&p) else {
                    return Ok(());
                };
                let from = list.partition_point(|(s, _)| s.offset < start);
                for (s, id) in &list[from..] {
                    if s.offset + s.len > end {
                        break;
                    }
                    let at = (s.offset - start) as usize;
                    self.fetched_ranges.fetch_add(1, Ordering::Relaxed);
                    sink(*id, body[at..at + s.len as usize].to_vec())?;
                }
                Ok(())
            },
        )
    }

    fn range_origin(&self, id: &ObjectId) -> String {
        let c = self.catalog();
        self.describe(&c, c.ranges.get(id))
    }

    fn kept_range(&self, path: &Path, len: u64) {
        self.cache
            .lock()
            .keep(path.to_path_buf(), len, self.max_bytes);
    }
}

/// The copies a cache directory already holds (loose objects and stored
/// ranges), oldest first by modification time.
fn scan_cache(dir: &Path) -> Result<Cache> {
    let mut found = Vec::new();
    for top in ["objects", "walchunks"] {
        let Ok(shards) = std::fs::read_dir(dir.join(top)) else {
            continue;
        };
        for shard in shards.flatten() {
            let name = shard.file_name();
            let name = name.to_string_lossy();
            if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Ok(m) = f.metadata()
                    && m.is_file()
                {
                    let t = m.modified().unwrap_or(std::time::UNIX_EPOCH);
                    found.push((t, f.path(), m.len()));
                }
            }
        }
    }
    found.sort();
    let mut c = Cache::default();
    for (_, p, n) in found {
        c.sizes.insert(p.clone(), n);
        c.order.push_back(p);
        c.bytes += n;
    }
    Ok(c)
}

/// Write `bytes` to `path` through a temp file and a rename (no fsync: a
/// cache, checked when read).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(Error::io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("rename into", path))
}

//! Store statistics: objects by kind and bytes, refs and reflogs, temp
//! files, and how much of the store is reachable.
//!
//! Read-only and lock-free like fsck, but cheaper: each object's 56-byte
//! header is read (not its payload), and reachability is one mark (no
//! hashing). With a live writer in another process the numbers are a
//! snapshot that may be slightly off, hence "estimate".

use std::fs;
use std::io;
use std::ops::{Add, AddAssign};
use std::time::{Duration, SystemTime};

use sydra_objects::Kind;
use sydra_refs::RefStore;

use crate::error::{Error, Result};
use crate::horizon::Horizon;
use crate::leftovers;
use crate::mark::{self, MarkOptions, NoVisitor};
use crate::progress::Progress;
use crate::roots::{self, Roots};
use crate::session::{DEFAULT_REFLOG_EXPIRY, ns_len, ns_of};
use crate::sweep::shard_names;

/// A count of files and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Files.
    pub count: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

impl Tally {
    /// One file of `bytes`.
    pub fn record(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

impl Add for Tally {
    type Output = Tally;
    fn add(self, o: Tally) -> Tally {
        Tally {
            count: self.count + o.count,
            bytes: self.bytes + o.bytes,
        }
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        *self = *self + o;
    }
}

/// stats settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsOptions {
    /// Reflog entries younger than this are roots (as for GC).
    pub reflog_expiry: Duration,
    /// Mark from the roots to split reachable from unreachable.
    pub reachability: bool,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            reflog_expiry: DEFAULT_REFLOG_EXPIRY,
            reachability: true,
        }
    }
}

/// Counts for a data directory's objects and refs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Blobs.
    pub blobs: Tally,
    /// Trees.
    pub trees: Tally,
    /// Commits.
    pub commits: Tally,
    /// Object files whose header cannot be read (see fsck).
    pub unreadable: Tally,
    /// Loose objects (one file each).
    pub loose: Tally,
    /// Objects in packs (entries: an object in two packs counts twice)
    /// and the bytes of their entries.
    pub packed: Tally,
    /// Live packs and the bytes of their `.pack` files.
    pub packs: Tally,
    /// Bytes of the packs' `.idx` files.
    pub pack_index_bytes: u64,
    /// Refs (HEAD included).
    pub refs: u64,
    /// Reflogs (deleted refs' included).
    pub reflogs: u64,
    /// Temp files in `objects/tmp/`.
    pub temp_files: Tally,
    /// Boundary commits of the retention horizon (0: none set).
    pub horizon_boundaries: u64,
    /// Objects reachable from the roots (when asked).
    pub reachable: Option<Tally>,
    /// Objects not reachable: what a GC with no grace period would delete.
    pub unreachable: Option<Tally>,
    /// Missing or unreadable reachable objects the mark met (see fsck).
    pub damaged_reachable: u64,
}

impl Stats {
    /// Objects of every kind.
    pub fn objects(&self) -> Tally {
        self.blobs + self.trees + self.commits + self.unreadable
    }
}

/// Gather statistics for `refs`' data directory.
pub fn stats(refs: &RefStore, options: &StatsOptions, progress: &dyn Progress) -> Result<Stats> {
    let store = refs.objects();
    let mut s = Stats::default();
    let listed = refs.list("")?;
    s.refs = listed.len() as u64;
    s.reflogs = roots::reflog_names(refs)?.len() as u64;
    let horizon = Horizon::read(refs.dir())?;
    s.horizon_boundaries = horizon.boundaries().len() as u64;
    let mark = if options.reachability {
        let roots = Roots::from_refs(
            refs,
            &horizon,
            ns_of(SystemTime::now()),
            ns_len(options.reflog_expiry),
        )?;
        let m = mark::mark(
            store,
            &roots,
            &horizon,
            &MarkOptions::default(),
            &mut NoVisitor,
            progress,
        )?;
        s.damaged_reachable = m.problems.len() as u64;
        Some(m)
    } else {
        None
    };
    let mut reachable = Tally::default();
    let mut unreachable = Tally::default();
    let shards = shard_names(store)?;
    progress.phase("counting objects", "shards", Some(shards.len() as u64));
    for shard in shards {
        for id in store.list_shard(&shard)? {
            let len = match store.stat(&id) {
                Ok(st) => {
                    let t = match st.kind {
                        Kind::Blob => &mut s.blobs,
                        Kind::Tree => &mut s.trees,
                        Kind::Commit => &mut s.commits,
                    };
                    t.record(st.file_len);
                    s.loose.record(st.file_len);
                    st.file_len
                }
                Err(e) if e.is_not_found() => continue,
                Err(_) => {
                    let path = store.path_of(&id);
                    let len = match fs::symlink_metadata(&path) {
                        Ok(m) => m.len(),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(Error::io("stat", &path)(e)),
                    };
                    s.unreadable.record(len);
                    s.loose.record(len);
                    len
                }
            };
            if let Some(m) = &mark {
                if m.contains(&id) {
                    reachable.record(len);
                } else {
                    unreachable.record(len);
                }
            }
        }
        progress.advance(1);
    }
    progress.finish();
    for pack in store.packs().iter() {
        s.packs.record(pack.bytes().len() as u64);
        s.pack_index_bytes += pack.idx_bytes().len() as u64;
        let v = pack.index();
        for i in 0..v.len() {
            let Ok((e, _)) = sydra_objects::pack::entry_header(pack.bytes(), v.offset(i)) else {
                s.unreadable.record(0);
                continue;
            };
            let t = match e.kind {
                Kind::Blob => &mut s.blobs,
                Kind::Tree => &mut s.trees,
                Kind::Commit => &mut s.commits,
            };
            t.record(e.len);
            s.packed.record(e.len);
            if let Some(m) = &mark {
                if m.contains(&e.id) {
                    reachable.record(e.len);
                } else {
                    unreachable.record(e.len);
                }
            }
        }
    }
    if mark.is_some() {
        s.reachable = Some(reachable);
        s.unreachable = Some(unreachable);
    }
    for t in leftovers::object_temp_files(store.tmp_dir())? {
        s.temp_files.record(t.bytes);
    }
    Ok(s)
}

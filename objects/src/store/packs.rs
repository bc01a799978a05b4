//! The store's packs: the live set, lookups, repairs at open, and the
//! repacks that merge packs and fold loose objects into them.
//!
//! The live set is an `Arc<Vec<Arc<Pack>>>` replaced whole under a lock:
//! a reader clones the outer `Arc` and searches without any lock or system
//! call, and keeps every pack it found mapped for as long as it holds the
//! result, even if a repack unlinks the files meanwhile.
//!
//! Another process's new packs are found on a miss: when an id is in no
//! known pack and not loose, `pack/` is listed again if its mtime moved
//! (or is too recent to trust at the filesystem's timestamp granularity).
//!
//! Repacks are serialised across processes by an exclusive `flock` on the
//! `pack/` directory itself (no lock file to create on a full disk).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustix::fs::{FlockOperation, Mode, OFlags};

use super::header::{self, HEADER_LEN};
use super::{GcGuard, Store, TempFile};
use crate::error::{Error, Result};
use crate::fault;
use crate::pack::{self, Pack, PackWriter};
use crate::{Kind, ObjectId};

/// Batches that stage fewer objects than this are published loose.
pub const PACK_BATCH_MIN: usize = 2;

/// Counts over the live packs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackStats {
    /// Live packs.
    pub packs: u64,
    /// Entries in them (an object in two packs counts twice).
    pub objects: u64,
    /// Bytes of the `.pack` files.
    pub bytes: u64,
    /// Bytes of the `.idx` files.
    pub idx_bytes: u64,
}

/// What opening the store did to the pack directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PackRepair {
    /// A pack without an index (a crash between the two renames) whose
    /// entries and trailer verify was indexed again.
    Reindexed(PathBuf),
    /// A pack without an index that does not verify was removed: it was
    /// never live, so nothing referenced it.
    RemovedPack {
        /// The pack.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// An index whose pack is gone (a crash while a repack removed it).
    RemovedIndex(PathBuf),
    /// A pack that cannot be used (its index is damaged and the pack does
    /// not verify): left in place for fsck to name, and not read.
    Unusable {
        /// The pack or index.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// How a repack chooses its inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepackOptions {
    /// Merge every live pack into one (otherwise only the smallest, so
    /// that the sizes form a geometric progression with ratio 2).
    pub all: bool,
    /// Fold loose objects into the new pack and delete their files.
    pub loose: bool,
    /// Report what would be done; write and delete nothing.
    pub dry_run: bool,
    /// Wait for a repack running in another process instead of skipping.
    pub wait: bool,
}

/// What a repack (or a GC's pack phase) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepackReport {
    /// Live packs before.
    pub packs_before: u64,
    /// Live packs after.
    pub packs_after: u64,
    /// Packs whose objects were copied into the new pack and which were
    /// then deleted.
    pub packs_removed: u64,
    /// Loose objects copied into the new pack (and their files deleted).
    pub loose_packed: u64,
    /// Loose objects skipped because they failed verification (kept).
    pub loose_corrupt: u64,
    /// Objects written into the new pack.
    pub objects_written: u64,
    /// Bytes of the new pack.
    pub bytes_written: u64,
    /// Objects of rewritten packs left out (unreachable past the grace
    /// period; GC only).
    pub objects_dropped: u64,
    /// Bytes freed: removed packs and loose files, minus the new pack.
    pub bytes_freed: i64,
    /// Packs kept whole because they are younger than the grace period
    /// (GC only).
    pub packs_kept_recent: u64,
    /// Packs kept because an object they would drop was reused by a writer
    /// while the GC ran (GC only).
    pub packs_kept_protected: u64,
    /// The new pack.
    pub new_pack: Option<ObjectId>,
    /// Another process was repacking; nothing was done.
    pub busy: bool,
    /// The disk was full: no new pack could be written, so only packs
    /// holding nothing reachable were deleted (GC only).
    pub no_space: bool,
}

fn is_no_space(e: &Error) -> bool {
    e.io_error().is_some_and(|e| {
        matches!(
            e.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
    })
}

fn io_not_found(e: &Error) -> bool {
    e.io_error()
        .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
}

fn kind_rank(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 0,
        Kind::Tree => 1,
        _ => 2,
    }
}

impl Store {
    /// The live packs, largest (most objects) first.
    pub fn packs(&self) -> Arc<Vec<Arc<Pack>>> {
        self.inner.packs.read().clone()
    }

    /// The pack and entry offset of `id`, if a live pack holds it.
    pub(crate) fn find_packed(&self, id: &ObjectId) -> Option<(Arc<Pack>, u64)> {
        let packs = self.packs();
        let key = |p: &Pack| {
            let b = p.hash();
            let b = b.as_bytes();
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        };
        let hint = self
            .inner
            .last_pack
            .load(std::sync::atomic::Ordering::Relaxed);
        if packs.len() > 1
            && let Some(p) = packs.iter().find(|p| key(p) == hint)
            && let Some(off) = p.find(id)
        {
            return Some((p.clone(), off));
        }
        let (p, off) = packs
            .iter()
            .find_map(|p| p.find(id).map(|off| (p.clone(), off)))?;
        if packs.len() > 1 {
            self.inner
                .last_pack
                .store(key(&p), std::sync::atomic::Ordering::Relaxed);
        }
        Some((p, off))
    }

    /// Where each of `ids` lies in the live packs, in `ids`' order (`None`:
    /// in none of them). Many ids (a clone reads most of the store) are
    /// found by one pass over every pack's index, each entry looked up in a
    /// set of the ids: one search per id tries the packs in turn, and in
    /// a transfer's order (by directory, across every commit) the pack that
    /// answered last rarely answers next. Few ids are searched one by one.
    pub fn locate_packed(&self, ids: &[ObjectId]) -> Vec<Option<(Arc<Pack>, u64)>> {
        let packs = self.packs();
        let total: usize = packs.iter().map(|p| p.len()).sum();
        // A search per id costs about half the packs' binary searches; the
        // pass, one set lookup per packed object.
        if packs.len() <= 2 || ids.len().saturating_mul(packs.len()) < total {
            return ids.iter().map(|id| self.find_packed(id)).collect();
        }
        let mut first: ahash::AHashMap<ObjectId, usize> = ahash::AHashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            first.entry(*id).or_insert(i);
        }
        let mut out: Vec<Option<(Arc<Pack>, u64)>> = vec![None; ids.len()];
        for p in packs.iter() {
            let ix = p.index();
            for i in 0..ix.len() {
                if let Some(&k) = first.get(&ix.id(i))
                    && out[k].is_none()
                {
                    out[k] = Some((p.clone(), ix.offset(i)));
                }
            }
        }
        for (i, id) in ids.iter().enumerate() {
            let k = first.get(id).copied().unwrap_or(i);
            if k != i {
                out[i] = out[k].clone();
            }
        }
        out
    }

    /// Remove from `ids` those a live pack holds (index only: no system
    /// call). A pack not much larger than the set is scanned whole, each
    /// of its ids looked up in the set: the scan reads the index in order,
    /// where a search per id costs a few cache misses in a large index. A
    /// pack far larger than the set is searched per id.
    pub fn retain_unpacked(&self, ids: &mut PackIds) {
        for p in self.packs().iter() {
            if ids.is_empty() {
                return;
            }
            let ix = p.index();
            if ix.len() <= ids.len().saturating_mul(SCAN_RATIO) {
                for i in 0..ix.len() {
                    ids.remove(&ix.id(i));
                }
            } else {
                ids.retain(|id| ix.find(id).is_none());
            }
        }
    }

    /// Whether a live pack holds `id` (index only: no system call).
    pub fn contains_packed(&self, id: &ObjectId) -> bool {
        self.packs().iter().any(|p| p.find(id).is_some())
    }

    /// Counts over the live packs.
    pub fn pack_stats(&self) -> PackStats {
        let mut s = PackStats::default();
        for p in self.packs().iter() {
            s.packs += 1;
            s.objects += p.len() as u64;
            s.bytes += p.bytes().len() as u64;
            s.idx_bytes += p.idx_bytes().len() as u64;
        }
        s
    }

    pub(crate) fn add_pack(&self, p: Arc<Pack>) {
        let mut w = self.inner.packs.write();
        let mut v: Vec<Arc<Pack>> = Vec::with_capacity(w.len() + 1);
        v.extend(w.iter().filter(|q| q.hash() != p.hash()).cloned());
        v.push(p);
        // Largest first: most lookups end in the pack holding most objects.
        v.sort_by_key(|q| std::cmp::Reverse(q.len()));
        *w = Arc::new(v);
    }

    fn drop_packs(&self, gone: &HashSet<ObjectId>) {
        let mut w = self.inner.packs.write();
        let v: Vec<Arc<Pack>> = w
            .iter()
            .filter(|p| !gone.contains(&p.hash()))
            .cloned()
            .collect();
        *w = Arc::new(v);
    }

    fn pack_dir_mtime(&self) -> Result<Option<SystemTime>> {
        match fs::metadata(self.pack_dir()) {
            Ok(m) => Ok(m.modified().ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", self.pack_dir())(e)),
        }
    }

    /// List `pack/` again if another process may have changed it since
    /// the last listing; returns whether the set was re-read.
    pub(crate) fn refresh_packs(&self) -> Result<bool> {
        let now = self.pack_dir_mtime()?;
        let last = *self.inner.pack_scan.lock();
        let trusted = match last {
            // A listing made less than two seconds after the directory's
            // last change may have missed a second change within the same
            // timestamp tick: list again until one was made after that.
            Some((mtime, scanned)) => {
                mtime == now
                    && now.is_none_or(|m| {
                        scanned
                            .duration_since(m)
                            .is_ok_and(|d| d >= Duration::from_secs(2))
                    })
            }
            None => false,
        };
        if trusted {
            return Ok(false);
        }
        self.rescan_packs()?;
        Ok(true)
    }

    /// List `pack/` and open every live pack; repair what a crash left
    /// (a pack without its index is indexed again if it verifies, else
    /// removed; an index without its pack is removed). Returns the
    /// repairs.
    pub fn rescan_packs(&self) -> Result<Vec<PackRepair>> {
        let dir = self.pack_dir().to_path_buf();
        let mtime = self.pack_dir_mtime()?;
        let scanned = SystemTime::now();
        let mut repairs = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                *self.inner.packs.write() = Arc::new(Vec::new());
                *self.inner.pack_scan.lock() = Some((mtime, SystemTime::now()));
                return Ok(repairs);
            }
            Err(e) => return Err(Error::io("list", &dir)(e)),
        };
        let mut packs = HashSet::new();
        let mut idxs = HashSet::new();
        for entry in rd {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let name = entry.file_name();
            let Some((hash, ext)) = name.to_str().and_then(pack::parse_file_name) else {
                continue;
            };
            match ext {
                "pack" => packs.insert(hash),
                "idx" => idxs.insert(hash),
                _ => false,
            };
        }
        let known = self.packs();
        let mut live: Vec<(SystemTime, Arc<Pack>)> = Vec::new();
        for hash in &packs {
            if let Some(p) = known.iter().find(|p| p.hash() == *hash) {
                live.push((p.modified().unwrap_or(SystemTime::UNIX_EPOCH), p.clone()));
                continue;
            }
            // A listing is not atomic: an index renamed in after the
            // listing passed its name may exist by now.
            let has_idx = idxs.contains(hash) || dir.join(pack::file_name(hash, "idx")).exists();
            let opened = if has_idx {
                match Pack::open(&dir, *hash) {
                    Ok(p) => Ok(p),
                    // Gone meanwhile (a repack in another process).
                    Err(e) if io_not_found(&e) => continue,
                    // A damaged index is not rebuilt behind the operator's
                    // back: the pack is left unread and fsck names it.
                    Err(e) => Err(e),
                }
            } else {
                self.reindex(*hash, false, &mut repairs)
            };
            match opened {
                Ok(p) => live.push((p.modified().unwrap_or(SystemTime::UNIX_EPOCH), Arc::new(p))),
                Err(e) if io_not_found(&e) => {}
                // Damage: the pack is not read, fsck names it. An I/O
                // error is not damage and is not hidden as a missing pack.
                Err(e @ Error::BadPack { .. }) => {
                    if has_idx {
                        repairs.push(PackRepair::Unusable {
                            path: dir.join(pack::file_name(hash, "pack")),
                            reason: e.to_string(),
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        for hash in idxs.difference(&packs) {
            // A pack is renamed in before its index: a listing that saw the
            // index but not the pack passed the pack's name before its
            // rename. Only an index whose pack is still absent is an orphan.
            if dir.join(pack::file_name(hash, "pack")).exists() {
                continue;
            }
            let path = dir.join(pack::file_name(hash, "idx"));
            match crate::fault::point("pack.idx.unlink").and_then(|()| fs::remove_file(&path)) {
                Ok(()) => repairs.push(PackRepair::RemovedIndex(path)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("delete", &path)(e)),
            }
        }
        // Largest first: most lookups end in the pack holding most objects.
        live.sort_by_key(|(_, p)| std::cmp::Reverse(p.len()));
        *self.inner.packs.write() = Arc::new(live.into_iter().map(|(_, p)| p).collect());
        *self.inner.pack_scan.lock() = Some((mtime, scanned));
        Ok(repairs)
    }

    /// Index pack `hash` again from its own bytes. A pack that had no
    /// index and does not verify is removed (`had_index` false); one whose
    /// index was damaged is kept for fsck.
    fn reindex(
        &self,
        hash: ObjectId,
        had_index: bool,
        repairs: &mut Vec<PackRepair>,
    ) -> Result<Pack> {
        let dir = self.pack_dir();
        let path = dir.join(pack::file_name(&hash, "pack"));
        let file = crate::fs::open_regular(&path).map_err(Error::io("open", &path))?;
        let map = crate::map::map_file(&file).map_err(Error::io("map", &path))?;
        let mut entries = Vec::new();
        let scanned = pack::scan(&map, false, |e| {
            entries.push((e.id, e.offset));
            Ok(())
        })
        .and_then(|h| {
            if h == hash {
                Ok(())
            } else {
                Err(format!("trailer {h} does not match the file name"))
            }
        });
        if let Err(reason) = scanned {
            if !had_index {
                match crate::fault::point("pack.unlink").and_then(|()| fs::remove_file(&path)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("delete", &path)(e)),
                }
                repairs.push(PackRepair::RemovedPack {
                    path: path.clone(),
                    reason: reason.clone(),
                });
            }
            return Err(Error::BadPack { path, reason });
        }
        let mut tmp = pack::write_index(self, &hash, &mut entries, true, &path)?;
        let dst = dir.join(pack::file_name(&hash, "idx"));
        pack::rename(&mut tmp, &dst, "pack.idx.rename")?;
        crate::fs::sync_dir(dir, pack::fault_dir_sync)?;
        repairs.push(PackRepair::Reindexed(path));
        Pack::open(dir, hash)
    }

    /// Take the cross-process repack lock (`flock` on `pack/`); `None`
    /// when another process holds it and `wait` is false.
    fn lock_packs(&self, wait: bool) -> Result<Option<OwnedFd>> {
        let dir = self.pack_dir().to_path_buf();
        pack::ensure_dir(self, &dir, true)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(&dir, flags, Mode::empty())
            .map_err(|e| Error::io("open directory", &dir)(e.into()))?;
        let op = if wait {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::NonBlockingLockExclusive
        };
        match rustix::fs::flock(&fd, op) {
            Ok(()) => Ok(Some(fd)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(Error::io("lock", &dir)(e.into())),
        }
    }

    /// Merge packs and (with `loose`) fold loose objects into one new
    /// pack, then delete what it replaced. Keeps every object: nothing
    /// about reachability is decided here (that is the GC's pack phase).
    pub fn repack(&self, options: &RepackOptions) -> Result<RepackReport> {
        let mut report = RepackReport::default();
        let Some(_lock) = self.lock_packs(options.wait)? else {
            report.busy = true;
            return Ok(report);
        };
        self.rescan_packs()?;
        let packs = self.packs();
        report.packs_before = packs.len() as u64;
        let chosen: Vec<usize> = if options.all {
            (0..packs.len()).collect()
        } else {
            geometric(&packs)
        };
        let any_loose = options.loose && self.has_loose()?;
        // One pack and nothing loose: rewriting it would give the same pack.
        if chosen.len() < 2 && !any_loose {
            report.packs_after = report.packs_before;
            return Ok(report);
        }
        let keep_all = |_: usize, _: &ObjectId| true;
        let all_loose = |_: &ObjectId| true;
        let loose: Option<&dyn Fn(&ObjectId) -> bool> = options.loose.then_some(&all_loose);
        self.write_new_pack(
            &packs,
            &chosen,
            loose,
            &keep_all,
            options.dry_run,
            &mut report,
        )?;
        if options.dry_run {
            report.packs_removed = chosen.len() as u64;
            report.packs_after = report.packs_before - chosen.len() as u64 + 1;
            return Ok(report);
        }
        let chosen = not_new(&packs, &chosen, &report);
        self.drop_packs(&chosen.iter().map(|&i| packs[i].hash()).collect());
        self.retire(&packs, &chosen, &mut report)?;
        Ok(report)
    }

    /// Whether any loose object file exists.
    fn has_loose(&self) -> Result<bool> {
        Ok(self.iter()?.next().is_some())
    }

    /// Write one pack holding the objects of `chosen` packs that `keep`
    /// (given the pack's position and the id) accepts, and the loose
    /// objects `loose` accepts (none when `None`), and publish it (live on
    /// return). The caller holds the repack lock, then drops the chosen
    /// packs from the live set and calls [`Store::retire`].
    ///
    /// Memory: 16 bytes per packed object to copy, plus the new index's 40
    /// bytes per object; loose objects are listed one shard at a time.
    fn write_new_pack(
        &self,
        packs: &[Arc<Pack>],
        chosen: &[usize],
        loose: Option<&dyn Fn(&ObjectId) -> bool>,
        keep: &dyn Fn(usize, &ObjectId) -> bool,
        dry_run: bool,
        report: &mut RepackReport,
    ) -> Result<()> {
        // (pack, offset) of each packed object to copy, once per id: a
        // copy in an earlier chosen pack wins.
        let mut sources: Vec<(u32, u64)> = Vec::new();
        for (ci, &pi) in chosen.iter().enumerate() {
            let v = packs[pi].index();
            for i in 0..v.len() {
                let id = v.id(i);
                if !keep(pi, &id) {
                    report.objects_dropped += 1;
                    continue;
                }
                if chosen[..ci].iter().any(|&q| packs[q].find(&id).is_some()) {
                    continue;
                }
                sources.push((pi as u32, v.offset(i)));
            }
        }
        // Reading order: commits, then trees, then blobs; each pack's
        // entries in their old order (sequential copies).
        let rank = |&(pack, offset): &(u32, u64)| {
            let kind = packs[pack as usize]
                .bytes()
                .get(offset as usize + 5)
                .and_then(|&k| Kind::from_code(k))
                .unwrap_or(Kind::Blob);
            (kind_rank(kind), pack, offset)
        };
        sources.sort_by_key(rank);
        // A loose object whose id a chosen pack holds is copied from the
        // pack; its file goes with the others after publishing.
        let in_chosen = |id: &ObjectId| chosen.iter().any(|&q| packs[q].find(id).is_some());
        if dry_run {
            let mut loose_n = 0u64;
            if let Some(filter) = loose {
                for shard in 0..=255u8 {
                    for id in self.list_shard(&format!("{shard:02x}"))? {
                        if filter(&id) && !in_chosen(&id) {
                            loose_n += 1;
                        }
                    }
                }
            }
            report.objects_written = sources.len() as u64 + loose_n;
            report.loose_packed = loose_n;
            return Ok(());
        }
        let mut w = PackWriter::new(self, sources.len())?;
        for &(pack, offset) in &sources {
            let p = &packs[pack as usize];
            let (e, _) =
                pack::entry_header(p.bytes(), offset).map_err(|reason| Error::BadPack {
                    path: p.path().to_path_buf(),
                    reason,
                })?;
            let (_, _) = p.entry(&e.id, offset, false)?;
            let start = offset as usize;
            w.add(e.id, &p.bytes()[start..start + e.len as usize])?;
        }
        drop(sources);
        if let Some(filter) = loose {
            let mut buf = Vec::new();
            for shard in 0..=255u8 {
                for id in self.list_shard(&format!("{shard:02x}"))? {
                    if !filter(&id) || in_chosen(&id) {
                        continue;
                    }
                    match self.read_loose_file(&id, &mut buf) {
                        Ok(()) => {
                            w.add(id, &buf)?;
                            report.loose_packed += 1;
                        }
                        // Swept by a GC meanwhile, or damaged: not packed, kept.
                        Err(e) if e.is_not_found() => {}
                        Err(Error::Corrupt { .. }) => report.loose_corrupt += 1,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if w.len() > 0 {
            let p = w.finish(true)?;
            report.objects_written = p.len() as u64;
            report.bytes_written = p.bytes().len() as u64;
            report.bytes_freed -= (p.bytes().len() + p.idx_bytes().len()) as i64;
            report.new_pack = Some(p.hash());
            self.add_pack(p);
        }
        Ok(())
    }

    /// Delete the files of packs already dropped from the live set, then
    /// every loose file whose object the new pack holds (it is durable and
    /// live), and the shard directories that leaves empty.
    fn retire(&self, packs: &[Arc<Pack>], gone: &[usize], report: &mut RepackReport) -> Result<()> {
        for &i in gone {
            let p = &packs[i];
            pack::remove_files(p)?;
            report.bytes_freed += (p.bytes().len() + p.idx_bytes().len()) as i64;
            report.packs_removed += 1;
        }
        let new_pack = report
            .new_pack
            .and_then(|h| self.packs().iter().find(|p| p.hash() == h).cloned());
        if let Some(new_pack) = new_pack {
            for shard in 0..=255u8 {
                let name = format!("{shard:02x}");
                let ids = self.list_shard(&name)?;
                if ids.is_empty() {
                    continue;
                }
                let mut all = true;
                for id in ids {
                    if new_pack.find(&id).is_none() {
                        all = false;
                        continue;
                    }
                    let len = fs::symlink_metadata(self.path_of(&id)).map_or(0, |m| m.len());
                    if self.delete(&id)? {
                        report.bytes_freed += len as i64;
                    }
                }
                if all {
                    // Best effort: a shard still holding a file stays
                    // (ENOTEMPTY); a writer renaming into a removed shard
                    // creates it again.
                    let _ = crate::fault::point("objects.shard.rmdir")
                        .and_then(|()| fs::remove_dir(self.dir().join(&name)));
                }
            }
        }
        report.packs_after = self.packs().len() as u64;
        Ok(())
    }

    /// Read and check (framing, CRC) a loose object's whole file.
    fn read_loose_file(&self, id: &ObjectId, buf: &mut Vec<u8>) -> Result<()> {
        let path = self.path_of(id);
        let mut f = match crate::fs::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound(*id)),
            Err(e) if crate::fs::is_symlink_error(&e) || crate::fs::is_not_regular_error(&e) => {
                return Err(self.corrupt(id, e.to_string()));
            }
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        buf.clear();
        io::Read::read_to_end(&mut f, buf).map_err(Error::io("read", &path))?;
        header::parse_file(buf, Some(id)).map_err(|r| self.corrupt(id, r))?;
        let _ = HEADER_LEN;
        Ok(())
    }
}

/// `chosen` without the pack just written: a rewrite that changed nothing
/// produces a pack with the same name as its input, which must stay.
fn not_new(packs: &[Arc<Pack>], chosen: &[usize], report: &RepackReport) -> Vec<usize> {
    chosen
        .iter()
        .copied()
        .filter(|&i| Some(packs[i].hash()) != report.new_pack)
        .collect()
}

/// The packs to merge so the rest form a geometric progression (each
/// pack at least twice the size of the next smaller). Walking down from
/// the largest, the packs that already form one stay; the first that does
/// not (smaller than twice the next one down) marks the split, and it and
/// every smaller pack are merged. The merged pack then takes in the next
/// larger ones while it would be at least half their size, so the result
/// is again a progression. Packs already in progression: none.
///
/// (Walking up from the smallest instead stops at once when the smallest
/// is tiny beside the next: one 47 KB pack below 93 packs of 2–17 MB kept
/// them all from ever merging, and every lookup then searched 94 indexes.)
fn geometric(packs: &[Arc<Pack>]) -> Vec<usize> {
    let sizes: Vec<usize> = packs.iter().map(|p| p.bytes().len()).collect();
    geometric_split(&sizes)
}

/// [`geometric`] on the packs' sizes.
fn geometric_split(sizes: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let size = |k: usize| sizes[order[k]];
    let mut top = order.len();
    while top > 1 && size(top - 1) >= size(top - 2).saturating_mul(2) {
        top -= 1;
    }
    if top <= 1 {
        return Vec::new();
    }
    // order[..top] are merged.
    let mut total: usize = (0..top).map(size).sum();
    while top < order.len() && size(top) < total.saturating_mul(2) {
        total += size(top);
        top += 1;
    }
    order.truncate(top);
    order
}

/// How the GC's pack phase judges packs.
#[derive(Debug, Clone, Copy)]
pub struct PackSweep {
    /// Packs modified at or after this are kept whole (the grace period).
    pub cutoff: SystemTime,
    /// Report only.
    pub dry_run: bool,
}

impl GcGuard {
    /// The GC's pack phase, after the mark: every pack older than the
    /// cutoff that holds an object `reachable` rejects (and no writer of
    /// this process has reused since the GC began) is rewritten without
    /// those objects; reachable loose objects are folded in; the smallest
    /// remaining packs are merged geometrically. Then, under every shard
    /// lock, each rewritten pack whose dropped objects are still unused
    /// leaves the live set and is deleted; one a writer reused meanwhile
    /// is kept for the next GC.
    pub fn repack(
        &self,
        reachable: &dyn Fn(&ObjectId) -> bool,
        options: &PackSweep,
    ) -> Result<RepackReport> {
        let store = &self.store;
        let mut report = RepackReport::default();
        let Some(_lock) = store.lock_packs(true)? else {
            report.busy = true;
            return Ok(report);
        };
        store.rescan_packs()?;
        let packs = store.packs();
        report.packs_before = packs.len() as u64;
        let keep = |id: &ObjectId| reachable(id) || self.is_protected(id);
        // Old packs holding garbage are rewritten without it ("dirty");
        // the smallest of the others are merged whole (young ones too:
        // merging keeps every object, so their grace is untouched).
        let mut dirty = Vec::new();
        let mut rest = Vec::new();
        // Judged once per pack: a writer may freshen a pack meanwhile.
        let mut young = vec![false; packs.len()];
        for (i, p) in packs.iter().enumerate() {
            young[i] = p.modified().map_or(true, |m| m >= options.cutoff);
            let v = p.index();
            if young[i] {
                rest.push(i);
            } else if (0..v.len()).any(|j| !keep(&v.id(j))) {
                dirty.push(i);
            } else {
                rest.push(i);
            }
        }
        let rest_packs: Vec<Arc<Pack>> = rest.iter().map(|&i| packs[i].clone()).collect();
        let merged: Vec<usize> = geometric(&rest_packs)
            .into_iter()
            .map(|j| rest[j])
            .collect();
        report.packs_kept_recent = (0..packs.len())
            .filter(|i| young[*i] && !merged.contains(i))
            .count() as u64;
        let reachable_loose = |id: &ObjectId| reachable(id);
        let any_loose = store.iter()?.any(|id| id.is_ok_and(|id| reachable(&id)));
        if dirty.is_empty() && merged.is_empty() && !any_loose {
            report.packs_after = report.packs_before;
            return Ok(report);
        }
        let loose: Option<&dyn Fn(&ObjectId) -> bool> = Some(&reachable_loose);
        let keep_in = |i: usize, id: &ObjectId| !dirty.contains(&i) || keep(id);
        if options.dry_run {
            let all: Vec<usize> = dirty.iter().chain(&merged).copied().collect();
            store.write_new_pack(&packs, &all, loose, &keep_in, true, &mut report)?;
            report.packs_removed = all.len() as u64;
            return Ok(report);
        }
        // Dirty packs holding nothing to keep go first: that needs no
        // space, and on a full disk it may be all a GC can do.
        let (dead, dirty): (Vec<usize>, Vec<usize>) = dirty.into_iter().partition(|&i| {
            let v = packs[i].index();
            !(0..v.len()).any(|j| keep(&v.id(j)))
        });
        let gone_dead = self.retire_unused(&packs, &dead, reachable, None);
        report.packs_kept_protected += (dead.len() - gone_dead.len()) as u64;
        for &i in &gone_dead {
            report.objects_dropped += packs[i].len() as u64;
        }
        store.retire(&packs, &gone_dead, &mut report)?;
        let keep_in = |i: usize, id: &ObjectId| !dirty.contains(&i) || keep(id);
        let chosen: Vec<usize> = dirty.iter().chain(&merged).copied().collect();
        match store.write_new_pack(&packs, &chosen, loose, &keep_in, false, &mut report) {
            Ok(()) => {}
            // Nothing was published; the old packs and loose files stay.
            Err(e) if is_no_space(&e) => {
                report.no_space = true;
                report.packs_after = store.packs().len() as u64;
                return Ok(report);
            }
            Err(e) => return Err(e),
        }
        let new_pack = report
            .new_pack
            .and_then(|h| store.packs().iter().find(|p| p.hash() == h).cloned());
        let dirty = not_new(&packs, &dirty, &report);
        let mut gone = self.retire_unused(&packs, &dirty, reachable, new_pack.as_deref());
        report.packs_kept_protected += (dirty.len() - gone.len()) as u64;
        // Merged packs were copied whole: nothing of theirs can be lost.
        let merged = not_new(&packs, &merged, &report);
        store.drop_packs(&merged.iter().map(|&i| packs[i].hash()).collect());
        gone.extend(merged);
        store.retire(&packs, &gone, &mut report)?;
        Ok(report)
    }

    /// Of `chosen`, the packs that may leave the live set, which they do
    /// before this returns. Decided under every shard lock, where writers
    /// register dedup hits (pins.rs): a pack holding an unreachable object
    /// a writer has reused since the GC began, and that did not make it
    /// into `copied_to`, stays live (for the next GC); the others leave
    /// the set before any writer can look again.
    fn retire_unused(
        &self,
        packs: &[Arc<Pack>],
        chosen: &[usize],
        reachable: &dyn Fn(&ObjectId) -> bool,
        copied_to: Option<&Pack>,
    ) -> Vec<usize> {
        let store = &self.store;
        let _all = store.inner.pins.lock_all_shards();
        let gone: Vec<usize> = chosen
            .iter()
            .copied()
            .filter(|&i| {
                let v = packs[i].index();
                !(0..v.len()).any(|j| {
                    let id = v.id(j);
                    !reachable(&id)
                        && self.is_protected(&id)
                        && copied_to.is_none_or(|p| p.find(&id).is_none())
                })
            })
            .collect();
        store.drop_packs(&gone.iter().map(|&i| packs[i].hash()).collect());
        gone
    }
}

/// The ids of a received pack: a set with a randomly keyed fast hash
/// (ahash): a connectivity check looks every tree entry up in it.
pub type PackIds = ahash::AHashSet<ObjectId>;

/// [`Store::retain_unpacked`] scans a pack's index whole when it holds at
/// most this many entries per id sought (a set lookup per entry costs
/// about an eighth of a search through a large index).
const SCAN_RATIO: usize = 8;

/// A check of one received tree or commit, as soon as it has arrived and
/// verified: the entry, its payload, and the ids of the pack's entries so
/// far (later entries may be what it references).
pub type IngestCheck<'a> = pack::OnEntry<'a>;

/// A pack arriving from elsewhere (a fetch or a push), written straight
/// into a temp file in `objects/tmp/` as its bytes come
/// ([`Store::receive_pack`]) and hashed on the way; [`PackSink::finish`]
/// then verifies it and stages it. The bytes are written once: the temp
/// file becomes the live pack.
#[derive(Debug)]
pub struct PackSink {
    store: Store,
    tmp: TempFile,
    /// Writes the bytes and hashes all but the trailer, on a thread of its
    /// own.
    out: crate::fs::WriteBehind<blake3::Hasher>,
    len: u64,
    at: u64,
    trailer: Vec<u8>,
    scanner: pack::EntryScanner,
    /// The first error the scanner found: the rest is not scanned.
    failed: Option<String>,
}

/// A received pack, verified, with its index written beside it, both
/// durable in `objects/tmp/`; nothing is visible until
/// [`StagedPack::publish`]. Dropped unpublished, both files are removed.
#[derive(Debug)]
pub struct StagedPack {
    store: Store,
    pack: TempFile,
    idx: TempFile,
    hash: ObjectId,
    map: crate::map::Mmap,
    /// Id and entry offset, sorted by id.
    entries: Vec<(ObjectId, u64)>,
    payload_bytes: u64,
}

impl PackSink {
    fn bad(&self, reason: String) -> Error {
        Error::BadPack {
            path: self.store.pack_dir().join("(received)"),
            reason,
        }
    }

    /// Append the next bytes of the pack; `check` sees each tree and
    /// commit among them as soon as it is whole and verified. After the
    /// first failure nothing more is scanned ([`PackSink::check_so_far`]).
    /// The bytes are written where they are (a download's chunk is not
    /// copied).
    pub fn write(&mut self, b: bytes::Bytes, check: &mut IngestCheck<'_>) -> Result<()> {
        if b.len() as u64 > self.len - self.at {
            return Err(self.bad(format!("more bytes arrive than the {} declared", self.len)));
        }
        let body = self.len - pack::TRAILER as u64;
        let hashed = (body.saturating_sub(self.at) as usize).min(b.len());
        if self.failed.is_none()
            && let Err(e) = self.scanner.feed(&b[..hashed], check)
        {
            self.failed = Some(e);
        }
        self.trailer.extend_from_slice(&b[hashed..]);
        let n = b.len() as u64;
        self.out
            .write_shared(b)
            .map_err(Error::io("write", &self.tmp.path))?;
        self.at += n;
        Ok(())
    }

    /// Whether the entries seen so far are sound (a caller may stop
    /// reading a stream that has already failed).
    pub fn check_so_far(&self) -> Result<()> {
        match &self.failed {
            Some(reason) => Err(self.bad(reason.clone())),
            None => Ok(()),
        }
    }

    /// All bytes written: every entry was checked as it passed (framing,
    /// CRC, BLAKE3 recomputed, no id twice, the declared count, each tree
    /// and commit by the caller's check); now the trailer, then the file
    /// and its index are synced. Nothing is read back. Returns `None` for
    /// a pack of no objects. Errors name the entry's offset.
    pub fn finish(self) -> Result<Option<StagedPack>> {
        self.check_so_far()?;
        if self.at != self.len {
            return Err(self.bad(format!(
                "the pack ends after {} of its {} bytes",
                self.at, self.len
            )));
        }
        let PackSink {
            store,
            mut tmp,
            out,
            trailer,
            scanner,
            ..
        } = self;
        let (file, hasher) = out.finish().map_err(Error::io("write", &tmp.path))?;
        let bad = |reason: String| Error::BadPack {
            path: store.pack_dir().join("(received)"),
            reason,
        };
        let (all, _) = scanner.finish().map_err(bad)?;
        let hash = ObjectId::from_bytes(*hasher.finalize().as_bytes());
        if trailer[..] != hash.as_bytes()[..] {
            return Err(bad("pack trailer does not match its content".into()));
        }
        let map = crate::map::map_file(&file).map_err(Error::io("map", &tmp.path))?;
        let payload_bytes = all
            .iter()
            .map(|e| e.len - header::MIN_FILE_LEN as u64)
            .sum();
        let mut entries: Vec<(ObjectId, u64)> = all.iter().map(|e| (e.id, e.offset)).collect();
        drop(all);
        if entries.is_empty() {
            return Ok(None);
        }
        fault::point("pack.sync")
            .and_then(|()| file.sync_data())
            .map_err(Error::sync(&tmp.path))?;
        drop(file);
        tmp.file = None;
        let idx = pack::write_index(&store, &hash, &mut entries, true, &tmp.path)?;
        Ok(Some(StagedPack {
            store,
            pack: tmp,
            idx,
            hash,
            map,
            entries,
            payload_bytes,
        }))
    }
}

impl StagedPack {
    /// The pack's hash (its name once published).
    pub fn hash(&self) -> ObjectId {
        self.hash
    }

    /// Objects in it.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no object (never: an empty pack is not staged).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of its objects' payloads.
    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// Whether it holds `id`.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.position(id).is_some()
    }

    /// Where `id` is in `entries` (sorted by id).
    fn position(&self, id: &ObjectId) -> Option<usize> {
        self.entries.binary_search_by(|(x, _)| x.cmp(id)).ok()
    }

    /// Its object ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.entries.iter().map(|(id, _)| *id)
    }

    /// The kind and payload of `id`, if the pack holds it (verified when
    /// it was staged).
    pub fn get(&self, id: &ObjectId) -> Option<(Kind, &[u8])> {
        let i = self.position(id)?;
        let (e, range) = pack::entry_at(&self.map, self.entries[i].1, Some(id), false).ok()?;
        Some((e.kind, &self.map[range]))
    }

    /// Make it live: rename the pack, then its index, into `objects/pack/`
    /// and sync the directory.
    pub fn publish(mut self) -> Result<Arc<Pack>> {
        let p = pack::publish(&self.store, &mut self.pack, &mut self.idx, &self.hash, true)?;
        self.store.add_pack(p.clone());
        Ok(p)
    }
}

impl Store {
    /// Start receiving a pack of `len` bytes from elsewhere (see
    /// [`PackSink`]).
    pub fn receive_pack(&self, len: u64) -> Result<PackSink> {
        let min = (pack::HEADER + pack::TRAILER) as u64;
        if len < min {
            return Err(Error::BadPack {
                path: self.pack_dir().join("(received)"),
                reason: format!("a pack of {len} bytes is shorter than the {min}-byte minimum"),
            });
        }
        let mut tmp = self.new_temp()?;
        let file = tmp
            .file
            .take()
            .ok_or_else(|| Error::io("write", &tmp.path)(io::ErrorKind::Other.into()))?;
        // Everything but the 32-byte trailer is hashed: the trailer is the
        // hash, and names the pack.
        let body = len - pack::TRAILER as u64;
        let digest: crate::fs::BlockDigest<blake3::Hasher> = Box::new(move |h, at, b| {
            let n = (body.saturating_sub(at) as usize).min(b.len());
            h.update(&b[..n]);
        });
        let out = crate::fs::WriteBehind::new(file, blake3::Hasher::new(), digest, "pack.write")
            .map_err(Error::io("start writing", &tmp.path))?;
        Ok(PackSink {
            store: self.clone(),
            tmp,
            out,
            len,
            at: 0,
            trailer: Vec::with_capacity(pack::TRAILER),
            scanner: pack::EntryScanner::new(len),
            failed: None,
        })
    }
}

#[cfg(test)]
mod geometric_tests {
    use super::geometric_split;

    fn merged(sizes: &[usize]) -> Vec<usize> {
        let mut v: Vec<usize> = geometric_split(sizes).iter().map(|&i| sizes[i]).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn packs_in_progression_stay_and_the_rest_merge() {
        assert!(merged(&[1, 2, 4, 8]).is_empty());
        assert!(merged(&[100, 1]).is_empty());
        assert!(merged(&[5]).is_empty());
        assert!(merged(&[]).is_empty());
        assert_eq!(merged(&[1, 1]), vec![1, 1]);
        assert_eq!(merged(&[1, 1, 100]), vec![1, 1]);
        // A tiny pack below many of about the same size: all merge.
        let mut many = vec![47];
        many.extend((0..93).map(|i| 16_000 + i));
        assert_eq!(merged(&many).len(), 94);
        // The merged small ones reach the next: it joins them.
        assert_eq!(merged(&[3, 3, 5, 100]), vec![3, 3, 5]);
        assert_eq!(merged(&[2, 3, 9, 40]), vec![2, 3, 9]);
    }
}

//! The retention horizon: commits GC treats as parentless, recorded
//! durably in `<dir>/shallow` so it survives reopen.
//!
//! ```text
//! since <i64 decimal, ns since the Unix epoch>\n
//! <64 lowercase hex>\n        one per boundary commit, strictly ascending
//! ```
//!
//! Semantics (docs/OPERATIONS.md, "Retention"):
//! - A *boundary* commit is kept with its tree, but GC does not follow its
//!   parents, so everything only older history reached becomes garbage.
//! - Reflog entries written before `since` are no longer GC roots: a
//!   retention horizon is a deliberate "forget history before this", and a
//!   reflog entry would otherwise resurrect the history it cut. Every GC
//!   also moves `since` forward to its own reflog cutoff (now minus the
//!   reflog expiry) before it sweeps, so an entry that stopped protecting
//!   objects once never counts as a root again: fsck and later GCs agree
//!   with what was collected. `since` never moves back.
//! - Boundaries only accumulate while their commit exists: a later
//!   [`Horizon::compute`] keeps every earlier boundary that is still in the
//!   store, so no walk can ever step past a boundary into history a GC has
//!   already deleted.
//!
//! The file is replaced atomically: written to `shallow.tmp`, fsynced,
//! renamed over `shallow`, and the directory fsynced. A crash leaves the old
//! or the new horizon (and perhaps a stale `shallow.tmp`, which the next
//! write truncates).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sydra_objects::{Kind, ObjectId, Store};
use sydra_refs::RefStore;

use crate::duration::Keep;
use crate::error::{Error, Result};
use crate::roots;

/// The retention file's name in the data directory.
pub const HORIZON_FILE: &str = "shallow";
/// Its temp file during a rewrite.
pub const HORIZON_TEMP_FILE: &str = "shallow.tmp";

/// A retention horizon. The default is none: every parent is followed and
/// every reflog entry younger than the expiry is a root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Horizon {
    since_ns: Option<i64>,
    boundaries: Vec<ObjectId>,
}

impl Horizon {
    /// No horizon.
    pub fn none() -> Horizon {
        Horizon::default()
    }

    /// A horizon from its parts (boundaries are sorted and deduplicated).
    pub fn new(since_ns: i64, mut boundaries: Vec<ObjectId>) -> Horizon {
        boundaries.sort_unstable();
        boundaries.dedup();
        Horizon {
            since_ns: Some(since_ns),
            boundaries,
        }
    }

    /// Whether a horizon is set.
    pub fn is_set(&self) -> bool {
        self.since_ns.is_some()
    }

    /// Reflog entries older than this (ns since the epoch) are not roots.
    pub fn since_ns(&self) -> Option<i64> {
        self.since_ns
    }

    /// The boundary commits, ascending.
    pub fn boundaries(&self) -> &[ObjectId] {
        &self.boundaries
    }

    /// Move `since` forward to `t` (never back); returns whether it moved.
    /// Every GC does this with its reflog cutoff before it sweeps: reflog
    /// entries older than the cutoff may name objects it deletes, so they
    /// must never count as roots again (for fsck, or a later GC with a
    /// longer expiry).
    pub fn advance_since(&mut self, t: i64) -> bool {
        match self.since_ns {
            Some(s) if s >= t => false,
            _ => {
                self.since_ns = Some(t);
                true
            }
        }
    }

    /// Whether GC treats `id` as parentless.
    pub fn is_boundary(&self, id: &ObjectId) -> bool {
        self.boundaries.binary_search(id).is_ok()
    }

    /// The retention file of the data directory `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(HORIZON_FILE)
    }

    /// Read the horizon of `dir`; no file means no horizon.
    pub fn read(dir: &Path) -> Result<Horizon> {
        let path = Horizon::path(dir);
        // Never blocks: a FIFO or device named `shallow` is refused.
        let mut file = match sydra_objects::fs::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Horizon::none()),
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(Error::io("read", &path))?;
        Horizon::parse(&bytes, &path)
    }

    /// Parse the file format (strict: canonical decimal, lowercase hex,
    /// strictly ascending ids, every line terminated).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Horizon> {
        let bad = |line: usize, reason: String| Error::CorruptHorizon {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| {
            bad(
                1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count(),
                "not UTF-8".into(),
            )
        })?;
        let Some(body) = text.strip_suffix('\n') else {
            return Err(bad(1, "the file does not end with a newline".into()));
        };
        let mut lines = body.split('\n');
        let first = lines.next().unwrap_or("");
        let since = first
            .strip_prefix("since ")
            .ok_or_else(|| bad(1, format!("expected \"since <ns>\", found {first:?}")))?;
        let since_ns: i64 = since
            .parse()
            .ok()
            .filter(|v: &i64| v.to_string() == since)
            .ok_or_else(|| bad(1, format!("{since:?} is not a canonical decimal i64")))?;
        let mut boundaries: Vec<ObjectId> = Vec::new();
        for (i, line) in lines.enumerate() {
            let n = i + 2;
            let lower = line.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            let id: ObjectId = line
                .parse()
                .ok()
                .filter(|_| lower)
                .ok_or_else(|| bad(n, format!("{line:?} is not 64 lowercase hex digits")))?;
            if boundaries.last().is_some_and(|p| *p >= id) {
                return Err(bad(n, format!("{id} is not after the previous id")));
            }
            boundaries.push(id);
        }
        Ok(Horizon {
            since_ns: Some(since_ns),
            boundaries,
        })
    }

    /// The file content (empty when no horizon is set).
    pub fn encode(&self) -> Vec<u8> {
        let Some(since) = self.since_ns else {
            return Vec::new();
        };
        let mut out = format!("since {since}\n").into_bytes();
        for id in &self.boundaries {
            out.extend_from_slice(&id.hex_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Replace the retention file of `dir` durably (temp, fsync, rename,
    /// directory fsync). Writing an unset horizon is a no-op.
    pub fn write(&self, dir: &Path) -> Result<()> {
        if !self.is_set() {
            return Ok(());
        }
        let tmp = dir.join(HORIZON_TEMP_FILE);
        let dst = Horizon::path(dir);
        let written = (|| {
            let mut f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
            sydra_objects::fault::point("gc.horizon.write")
                .and_then(|()| f.write_all(&self.encode()))
                .map_err(Error::io("write", &tmp))?;
            sydra_objects::fault::point("gc.horizon.sync")
                .and_then(|()| f.sync_all())
                .map_err(Error::sync(&tmp))?;
            drop(f);
            sydra_objects::fault::point("gc.horizon.rename")
                .and_then(|()| fs::rename(&tmp, &dst))
                .map_err(Error::io("rename into", &dst))
        })();
        if let Err(e) = written {
            // Nothing refers to the temp file; on a full disk its pages are
            // wanted back. Best effort: a leftover is truncated by the next
            // write and reported by `leftovers`.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sydra_objects::fs::sync_dir(dir, || sydra_objects::fault::point("gc.horizon.dir.sync"))
            .map_err(|e| Error::Objects(e.into()))
    }

    /// Compute the horizon that keeps `keep` on every ref's first-parent
    /// chain as of `now_ns`, without writing it.
    ///
    /// Starting points are every ref that points at a commit and, for a
    /// duration, every reflog entry that stays a root (younger than both
    /// the duration and `reflog_expiry_ns`); so a recently deleted branch is
    /// cut at the same depth as a live one. A commit is *kept* when some
    /// walk reaches it; a kept commit whose first parent is not kept is a
    /// boundary. Boundaries of `previous` that still exist stay boundaries.
    pub fn compute(
        refs: &RefStore,
        keep: Keep,
        now_ns: i64,
        reflog_expiry_ns: i64,
        previous: &Horizon,
    ) -> Result<Horizon> {
        let store = refs.objects();
        let (since, cutoff_ts) = match keep {
            Keep::Commits(_) => (now_ns, None),
            Keep::Within(d) => {
                let c = now_ns.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
                (c, Some(c))
            }
        };
        // `since` never moves back.
        let since = previous.since_ns.map_or(since, |p| p.max(since));
        let mut ref_tips: Vec<ObjectId> = refs
            .list("")?
            .into_iter()
            .filter_map(|(_, t)| t.object())
            .collect();
        ref_tips.sort_unstable();
        ref_tips.dedup();
        let mut log_tips: Vec<ObjectId> = Vec::new();
        if cutoff_ts.is_some() {
            let from = since.max(now_ns.saturating_sub(reflog_expiry_ns));
            for name in roots::reflog_names(refs)? {
                for e in refs.reflog(&name)? {
                    if e.timestamp_ns >= from {
                        log_tips.extend(e.old);
                        log_tips.extend(e.new);
                    }
                }
            }
        }
        log_tips.sort_unstable();
        log_tips.dedup();
        log_tips.retain(|id| ref_tips.binary_search(id).is_err());
        // Kept commits with their first parent, and the most first parents
        // any walk still allowed below each (so a walk stops where an
        // earlier one already went at least as deep).
        let mut kept: HashMap<ObjectId, Option<ObjectId>> = HashMap::new();
        let mut budget: HashMap<ObjectId, u64> = HashMap::new();
        let tips = ref_tips
            .iter()
            .map(|id| (*id, true))
            .chain(log_tips.iter().map(|id| (*id, false)));
        for (tip, is_ref) in tips {
            match store.stat(&tip) {
                Ok(st) if st.kind == Kind::Commit => {}
                Ok(_) => continue,
                // A reflog entry may name an object collected long ago.
                Err(e) if e.is_not_found() && !is_ref => continue,
                Err(e) => return Err(e.into()),
            }
            let mut left = match keep {
                Keep::Commits(n) => n.get() - 1,
                Keep::Within(_) => u64::MAX,
            };
            let mut cur = tip;
            let mut is_tip = true;
            loop {
                if budget.get(&cur).is_some_and(|&b| b >= left) {
                    break;
                }
                let (first_parent, ts) = read_commit(store, &cur)?;
                if !is_tip && cutoff_ts.is_some_and(|c| ts < c) {
                    break;
                }
                budget.insert(cur, left);
                kept.insert(cur, first_parent);
                if previous.is_boundary(&cur) || left == 0 {
                    break;
                }
                let Some(p) = first_parent else { break };
                if keep_is_count(keep) {
                    left -= 1;
                }
                cur = p;
                is_tip = false;
            }
        }
        let mut boundaries: Vec<ObjectId> = kept
            .iter()
            .filter(|(_, fp)| fp.is_some_and(|p| !kept.contains_key(&p)))
            .map(|(id, _)| *id)
            .collect();
        for b in previous.boundaries() {
            if store.contains(b)? {
                boundaries.push(*b);
            }
        }
        Ok(Horizon::new(since, boundaries))
    }
}

fn keep_is_count(keep: Keep) -> bool {
    matches!(keep, Keep::Commits(_))
}

/// First parent (if any) and timestamp of a commit.
fn read_commit(store: &Store, id: &ObjectId) -> Result<(Option<ObjectId>, i64)> {
    let obj = store.get(id)?;
    let c = obj.commit()?;
    Ok((c.first_parent(), c.timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trips_and_is_strict() {
        let a = ObjectId::compute(Kind::Blob, b"a");
        let b = ObjectId::compute(Kind::Blob, b"b");
        let h = Horizon::new(-5, vec![b, a, b]);
        assert_eq!(h.boundaries().len(), 2);
        let bytes = h.encode();
        let p = Path::new("shallow");
        assert_eq!(Horizon::parse(&bytes, p).unwrap(), h);
        let text = String::from_utf8(bytes.clone()).unwrap();
        for bad in [
            text.trim_end().to_owned(),
            text.replace("since -5", "since 05"),
            text.replace("since -5", "since"),
            text.to_uppercase(),
            {
                let mut lines: Vec<&str> = text.lines().collect();
                lines.swap(1, 2);
                lines.join("\n") + "\n"
            },
            format!("{text}{}\n", a),
        ] {
            assert!(Horizon::parse(bad.as_bytes(), p).is_err(), "{bad:?}");
        }
        assert!(
            Horizon::parse(b"since 0\n", p)
                .unwrap()
                .boundaries()
                .is_empty()
        );
        assert!(Horizon::none().encode().is_empty());
    }
}

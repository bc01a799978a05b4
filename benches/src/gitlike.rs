//! A history shaped like a git repository, built twice: as a Sydra data
//! directory and, through `git fast-import`, as a git repository with the
//! same commits, trees and blobs. Used by the `gc/mark` bench and by the
//! `mark_rss` binary.
//!
//! Shape ([`Shape::for_objects`]): a snapshot of files at
//! `aNN/bNN/cNN/fNNNN` (three directory levels of `fanout` entries, about
//! 100 files per leaf directory), committed once; then a first-parent chain
//! of commits that each change one file. A change writes a new blob and new
//! trees along its path (leaf, two directories, root) and a commit: six new
//! objects, every unchanged subtree shared with the parent, as in git.
//! About half of the objects are the snapshot's blobs and half the
//! history's. Every blob's content names its path and version, so no two
//! objects are equal and both stores hold exactly the same number.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use sydra_engine::gc::{
    DEFAULT_REFLOG_EXPIRY, Horizon, Mark, MarkOptions, NoProgress, NoVisitor, Roots, mark,
};
use sydra_engine::objects::{Commit, Durability, Entry, Kind, ObjectId, Options, Store, Tree};
use sydra_engine::refs::{PreviousValue, RefName, RefStore};

/// Commit timestamps start here (seconds since the epoch) and step by one
/// minute.
const T0_S: i64 = 1_700_000_000;

/// Objects staged per batch while building (each batch holds its temp
/// files until commit).
const BATCH: usize = 1000;

/// The dimensions of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Entries per directory at each of the three directory levels.
    pub fanout: usize,
    /// Files per leaf directory.
    pub files_per_leaf: usize,
    /// Commits after the snapshot commit, each changing one file.
    pub changes: usize,
}

impl Shape {
    /// A shape of about `n` objects: half snapshot blobs, half history.
    pub fn for_objects(n: usize) -> Shape {
        let n = n.max(1000);
        let leaves_wanted = (n / 200).max(8) as f64;
        let fanout = (leaves_wanted.cbrt().round() as usize).max(2);
        let leaves = fanout * fanout * fanout;
        Shape {
            fanout,
            files_per_leaf: (n / 2 / leaves).max(1),
            changes: n / 12,
        }
    }

    /// Leaf directories.
    pub fn leaves(&self) -> usize {
        self.fanout * self.fanout * self.fanout
    }

    /// Blobs in the whole history.
    pub fn blobs(&self) -> usize {
        self.leaves() * self.files_per_leaf + self.changes
    }

    /// Trees in the whole history: the snapshot's, and four per change.
    pub fn trees(&self) -> usize {
        let f = self.fanout;
        1 + f + f * f + f * f * f + 4 * self.changes
    }

    /// Commits: the snapshot's and one per change.
    pub fn commits(&self) -> usize {
        self.changes + 1
    }

    /// Tree entries in the whole history plus the tree and parent ids of
    /// every commit: the ids a mark looks up in its visited set.
    pub fn id_lookups(&self) -> usize {
        let f = self.fanout;
        let snapshot = self.leaves() * self.files_per_leaf + f + f * f + f * f * f;
        snapshot + self.changes * (self.files_per_leaf + 3 * f) + 1 + 2 * self.changes
    }

    /// Objects in the whole history (all reachable from the tip).
    pub fn objects(&self) -> usize {
        self.blobs() + self.trees() + self.commits()
    }

    /// The shape as a JSON object (for the report).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"objects\": {}, \"blobs\": {}, \"trees\": {}, \"commits\": {}, \
             \"fanout\": {}, \"files_per_leaf\": {}, \"id_lookups\": {}}}",
            self.objects(),
            self.blobs(),
            self.trees(),
            self.commits(),
            self.fanout,
            self.files_per_leaf,
            self.id_lookups()
        )
    }

    /// The file commit `i` (1-based) changes: (leaf, file).
    fn change(&self, i: usize) -> (usize, usize) {
        let x = mix(i as u64);
        (
            (x % self.leaves() as u64) as usize,
            ((x >> 32) % self.files_per_leaf as u64) as usize,
        )
    }

    fn dir_names(&self, leaf: usize) -> [String; 3] {
        let f = self.fanout;
        [
            format!("a{:02}", leaf / (f * f)),
            format!("b{:02}", leaf / f % f),
            format!("c{:02}", leaf % f),
        ]
    }

    fn path(&self, leaf: usize, file: usize) -> String {
        let [a, b, c] = self.dir_names(leaf);
        format!("{a}/{b}/{c}/{}", file_name(file))
    }

    fn content(&self, leaf: usize, file: usize, version: usize) -> Vec<u8> {
        format!("{} version {version}\n", self.path(leaf, file)).into_bytes()
    }
}

fn file_name(file: usize) -> String {
    format!("f{file:04}")
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A Sydra data directory (object store and refs) holding the history,
/// `refs/heads/main` at its tip.
#[derive(Debug)]
pub struct SydraHistory {
    /// The refs (and, through them, the store).
    pub refs: RefStore,
    /// The tip commit.
    pub tip: ObjectId,
    /// Every object written, with its kind, in writing order.
    pub objects: Vec<(ObjectId, Kind)>,
}

struct Writer<'a> {
    store: &'a Store,
    batch: Option<sydra_engine::objects::Batch>,
    staged: usize,
    objects: Vec<(ObjectId, Kind)>,
}

impl Writer<'_> {
    fn put(&mut self, kind: Kind, payload: &[u8]) -> ObjectId {
        let batch = self
            .batch
            .get_or_insert_with(|| self.store.batch(Durability::None));
        let id = batch.put(kind, payload).unwrap();
        self.objects.push((id, kind));
        self.staged += 1;
        if self.staged >= BATCH {
            self.flush();
        }
        id
    }

    fn put_tree(&mut self, entries: &[Entry]) -> ObjectId {
        self.put(
            Kind::Tree,
            &Tree::from_entries(entries.to_vec()).unwrap().encode(),
        )
    }

    fn flush(&mut self) {
        if let Some(b) = self.batch.take() {
            // Dropping the pins at once: nothing here is in flight for GC.
            drop(b.commit().unwrap());
        }
        self.staged = 0;
    }
}

fn entry(kind: Kind, name: String, id: ObjectId) -> Entry {
    Entry { kind, name, id }
}

/// Write the history into a new data directory `dir` (created).
pub fn build_sydra(dir: &Path, shape: Shape) -> SydraHistory {
    std::fs::create_dir_all(dir).unwrap();
    let store = crate::unsynced_store(&dir.join("objects"));
    crate::precreate_shards(store.dir());
    let refs = RefStore::create(dir, store.clone()).unwrap();
    let f = shape.fanout;
    let mut w = Writer {
        store: &store,
        batch: None,
        staged: 0,
        objects: Vec::with_capacity(shape.objects()),
    };
    // The snapshot, bottom up; the in-memory copy of every tree is kept so
    // a change rewrites only its path.
    let mut leaves: Vec<Vec<Entry>> = Vec::with_capacity(shape.leaves());
    for leaf in 0..shape.leaves() {
        let files = (0..shape.files_per_leaf)
            .map(|file| {
                let id = w.put(Kind::Blob, &shape.content(leaf, file, 0));
                entry(Kind::Blob, file_name(file), id)
            })
            .collect();
        leaves.push(files);
    }
    let mut level2: Vec<Vec<Entry>> = (0..f * f)
        .map(|b| {
            (0..f)
                .map(|c| {
                    let id = w.put_tree(&leaves[b * f + c]);
                    entry(Kind::Tree, format!("c{c:02}"), id)
                })
                .collect()
        })
        .collect();
    let mut level1: Vec<Vec<Entry>> = (0..f)
        .map(|a| {
            (0..f)
                .map(|b| {
                    let id = w.put_tree(&level2[a * f + b]);
                    entry(Kind::Tree, format!("b{b:02}"), id)
                })
                .collect()
        })
        .collect();
    let mut root: Vec<Entry> = (0..f)
        .map(|a| {
            let id = w.put_tree(&level1[a]);
            entry(Kind::Tree, format!("a{a:02}"), id)
        })
        .collect();
    let commit = |tree: ObjectId, parent: Option<ObjectId>, i: usize| Commit {
        tree,
        parents: parent.into_iter().collect(),
        timestamp: (T0_S + 60 * i as i64) * 1_000_000_000,
        author: "bench".into(),
        message: format!("change {i}"),
        ..Commit::default()
    };
    let tree = w.put_tree(&root);
    let mut tip = w.put(Kind::Commit, &commit(tree, None, 0).encode().unwrap());
    for i in 1..=shape.changes {
        let (leaf, file) = shape.change(i);
        let (a, b, c) = (leaf / (f * f), leaf / f % f, leaf % f);
        leaves[leaf][file].id = w.put(Kind::Blob, &shape.content(leaf, file, i));
        level2[a * f + b][c].id = w.put_tree(&leaves[leaf]);
        level1[a][b].id = w.put_tree(&level2[a * f + b]);
        root[a].id = w.put_tree(&level1[a]);
        let tree = w.put_tree(&root);
        tip = w.put(Kind::Commit, &commit(tree, Some(tip), i).encode().unwrap());
    }
    w.flush();
    let objects = w.objects;
    refs.update(&RefName::main_branch(), tip, PreviousValue::Any, "bench")
        .unwrap();
    SydraHistory { refs, tip, objects }
}

/// Open the data directory written by [`build_sydra`].
pub fn open_sydra(dir: &Path) -> RefStore {
    let store = Store::open(dir.join("objects"), Options::default()).unwrap();
    RefStore::create(dir, store).unwrap()
}

/// Where the histories of one run are kept for reuse:
/// `$SYDRA_BENCH_FIXTURES/history-<shape>` when that is set (run.sh sets
/// it to a tmpfs directory it removes at the end), so the `gc/mark` bench
/// and `mark_rss` build a million objects once per run, not twice.
pub fn shared_dir(shape: Shape) -> Option<std::path::PathBuf> {
    let root = std::env::var_os("SYDRA_BENCH_FIXTURES")?;
    Some(Path::new(&root).join(format!(
        "history-{}-{}-{}",
        shape.fanout, shape.files_per_leaf, shape.changes
    )))
}

/// Whether `dir` holds a complete build (its marker file exists).
pub fn is_built(dir: &Path) -> bool {
    dir.with_extension("done").is_file()
}

/// Build the Sydra history in `dir` unless [`is_built`]; then mark it
/// built. Returns whether it was built now.
pub fn ensure_sydra(dir: &Path, shape: Shape) -> bool {
    if is_built(dir) {
        return false;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    build_sydra(dir, shape);
    std::fs::write(dir.with_extension("done"), format!("{shape:?}\n")).unwrap();
    true
}

/// Build the git repository in `git_dir` unless [`is_built`]; then mark it
/// built. Returns whether it was built now.
pub fn ensure_git(git_dir: &Path, shape: Shape) -> bool {
    if is_built(git_dir) {
        return false;
    }
    if git_dir.exists() {
        std::fs::remove_dir_all(git_dir).unwrap();
    }
    build_git(git_dir, shape);
    std::fs::write(git_dir.with_extension("done"), format!("{shape:?}\n")).unwrap();
    true
}

fn data(out: &mut Vec<u8>, bytes: &[u8]) {
    writeln!(out, "data {}", bytes.len()).unwrap();
    out.extend_from_slice(bytes);
    out.push(b'\n');
}

/// The history as a `git fast-import` stream onto `refs/heads/main`.
pub fn fast_import_stream(shape: Shape) -> Vec<u8> {
    let mut s = Vec::with_capacity(shape.objects() * 64);
    let header = |s: &mut Vec<u8>, i: usize| {
        writeln!(s, "commit refs/heads/main").unwrap();
        writeln!(
            s,
            "committer bench <bench@example.invalid> {} +0000",
            T0_S + 60 * i as i64
        )
        .unwrap();
        data(s, format!("change {i}").as_bytes());
    };
    header(&mut s, 0);
    for leaf in 0..shape.leaves() {
        for file in 0..shape.files_per_leaf {
            writeln!(s, "M 100644 inline {}", shape.path(leaf, file)).unwrap();
            data(&mut s, &shape.content(leaf, file, 0));
        }
    }
    s.push(b'\n');
    for i in 1..=shape.changes {
        header(&mut s, i);
        let (leaf, file) = shape.change(i);
        writeln!(s, "M 100644 inline {}", shape.path(leaf, file)).unwrap();
        data(&mut s, &shape.content(leaf, file, i));
        s.push(b'\n');
    }
    s
}

/// Run `git` with `args` in the repository `git_dir`; panics on failure.
pub fn git(git_dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut cmd = Command::new("git");
    cmd.arg(format!("--git-dir={}", git_dir.display()))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("cannot run git");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    out.stdout
}

/// Whether a `git` command is on `PATH`.
pub fn git_available() -> bool {
    Command::new("git")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Create a bare repository at `git_dir` and import the history into it
/// with `git fast-import` (one pack, trees and blobs delta-compressed
/// against their previous versions), then write the commit-graph, as
/// `git gc` does by default.
pub fn build_git(git_dir: &Path, shape: Shape) {
    let st = Command::new("git")
        .args(["init", "--bare", "-q", "--initial-branch=main"])
        .arg(git_dir)
        .status()
        .unwrap();
    assert!(st.success(), "git init failed");
    git(
        git_dir,
        &["fast-import", "--quiet"],
        Some(&fast_import_stream(shape)),
    );
    git(git_dir, &["commit-graph", "write", "--reachable"], None);
}

/// What a GC marks: roots from refs and reflogs (default reflog expiry, no
/// retention horizon), then the mark with GC's default options.
pub fn gc_mark(refs: &RefStore) -> Mark {
    let expiry = i64::try_from(DEFAULT_REFLOG_EXPIRY.as_nanos()).unwrap_or(i64::MAX);
    let roots = Roots::from_refs(refs, &Horizon::none(), sydra_engine::now_ns(), expiry).unwrap();
    mark(
        refs.objects(),
        &roots,
        &Horizon::none(),
        &MarkOptions::default(),
        &mut NoVisitor,
        &NoProgress,
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_of_a_million_objects_is_about_a_million() {
        let s = Shape::for_objects(1_000_000);
        assert!((900_000..1_100_000).contains(&s.objects()), "{s:?}");
        let s = Shape::for_objects(100_000);
        assert!((90_000..110_000).contains(&s.objects()), "{s:?}");
    }

    #[test]
    fn small_history_has_the_predicted_objects() {
        let dir = tempfile::tempdir().unwrap();
        let shape = Shape {
            fanout: 2,
            files_per_leaf: 3,
            changes: 5,
        };
        let h = build_sydra(dir.path(), shape);
        assert_eq!(h.objects.len(), shape.objects());
        // Batches publish packs: count packed and loose objects alike.
        assert_eq!(h.refs.objects().all_ids().unwrap().len(), shape.objects());
        if git_available() {
            let git_dir = dir.path().join("git");
            build_git(&git_dir, shape);
            let listed = git(&git_dir, &["rev-list", "--objects", "--all"], None);
            assert_eq!(
                listed
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count(),
                shape.objects()
            );
        }
    }
}

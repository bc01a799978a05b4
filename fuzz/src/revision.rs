//! The revision parser (`sydra_engine::revision::resolve`) against a model,
//! over a fixed small repository.
//!
//! Shared by the fuzz target and by `engine/tests/fuzz_regressions.rs`
//! (included there with `#[path]`, with `scratch.rs`).
//!
//! The repository is built by hand with fixed timestamps, so its ids are
//! the same in every run and seeds may name them. The model follows the
//! rules in the module doc of `revision.rs`. Revisions using syntax the
//! parser is going to grow (`~N`, `^`, `@{time}`, `:path`) are only checked
//! for "no panic, and an id it returns exists", so that the target keeps
//! working when that syntax lands.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use sydra_engine::Repository;
use sydra_engine::objects::{Commit, Entry, Kind, ObjectId, Prefix, Tree};
use sydra_engine::refs::{PreviousValue, RefName, Target};
use sydra_engine::revision::{SHORT_NAME_PREFIXES, resolve};

/// The fixed repository and what it holds.
#[derive(Debug)]
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// The repository.
    pub repo: Repository,
    /// Every ref (HEAD included) and its target.
    pub refs: BTreeMap<String, Target>,
    /// Every object id.
    pub objects: Vec<ObjectId>,
}

fn commit(tree: ObjectId, parents: Vec<ObjectId>, ts: i64, msg: &str, branch: &str) -> Commit {
    Commit {
        tree,
        parents,
        timestamp: ts,
        author: "fuzz".into(),
        message: msg.into(),
        branch: branch.into(),
        ..Commit::default()
    }
}

/// The repository, built once per process.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(build)
}

fn build() -> Fixture {
    let dir = super::scratch::tempdir("revision");
    let (repo, _) = Repository::init(dir.path()).unwrap_or_else(|e| panic!("init: {e}"));
    let store = repo.objects();
    let put = |kind: Kind, bytes: &[u8]| {
        store
            .put(kind, bytes)
            .unwrap_or_else(|e| panic!("put: {e}"))
    };
    let b1 = put(Kind::Blob, b"hello\n");
    let b2 = put(Kind::Blob, b"world\n");
    let tree = Tree::from_entries(vec![
        Entry {
            kind: Kind::Blob,
            name: "a".into(),
            id: b1,
        },
        Entry {
            kind: Kind::Blob,
            name: "b".into(),
            id: b2,
        },
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let t1 = put(Kind::Tree, &tree.encode());
    let encode = |c: Commit| c.encode().unwrap_or_else(|e| panic!("{e}"));
    let ts = 1_767_225_600_000_000_000;
    let c1 = put(Kind::Commit, &encode(commit(t1, vec![], ts, "one", "main")));
    let c2 = put(
        Kind::Commit,
        &encode(commit(t1, vec![c1], ts + 1, "two", "main")),
    );
    let c3 = put(
        Kind::Commit,
        &encode(commit(t1, vec![c1], ts + 2, "three", "dev")),
    );
    // Two blobs whose ids share their first four hex digits: an ambiguous
    // prefix.
    let mut seen: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0u32.. {
        let payload = format!("ambiguous {i}").into_bytes();
        let hex = ObjectId::compute(Kind::Blob, &payload).to_hex();
        if let Some(other) = seen.insert(hex[..4].to_owned(), payload.clone()) {
            put(Kind::Blob, &other);
            put(Kind::Blob, &payload);
            break;
        }
    }
    let refs = repo.refs();
    let set = |name: &str, id: ObjectId| {
        let name = RefName::new(name).unwrap_or_else(|e| panic!("{e}"));
        refs.update(&name, id, PreviousValue::Any, "fixture")
            .unwrap_or_else(|e| panic!("update {name}: {e}"));
    };
    set("refs/heads/main", c2);
    set("refs/heads/dev", c3);
    set("refs/snapshots/snap1", c1);
    set("refs/snapshots/dev", c1);
    set("refs/tags/v1", b1);
    set("refs/sections/sec", t1);
    // A ref whose short name is also a prefix of another object's id: the
    // ref wins.
    set(&format!("refs/{}", &c1.to_hex()[..6]), b2);
    let sym = |name: &str, target: &str| {
        let name = RefName::new(name).unwrap_or_else(|e| panic!("{e}"));
        let target = RefName::new(target).unwrap_or_else(|e| panic!("{e}"));
        refs.set_symbolic(&name, &target, "fixture")
            .unwrap_or_else(|e| panic!("symbolic {name}: {e}"));
    };
    sym("refs/heads/alias", "refs/heads/dev");
    sym("refs/heads/unborn", "refs/heads/nowhere");
    let mut all = BTreeMap::new();
    for (name, target) in refs.list("refs/").unwrap_or_else(|e| panic!("{e}")) {
        all.insert(name.as_str().to_owned(), target);
    }
    if let Some(t) = refs
        .read(&RefName::head())
        .unwrap_or_else(|e| panic!("{e}"))
    {
        all.insert("HEAD".to_owned(), t);
    }
    let objects: Vec<ObjectId> = store
        .iter()
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    Fixture {
        _dir: dir,
        repo,
        refs: all,
        objects,
    }
}

impl Fixture {
    fn follow(&self, target: &Target) -> Option<ObjectId> {
        let mut t = target.clone();
        for _ in 0..8 {
            match t {
                Target::Object(id) => return Some(id),
                Target::Symbolic(n) => t = self.refs.get(n.as_str())?.clone(),
            }
        }
        None
    }

    /// What `resolve` must return (`None`: an error).
    pub fn model(&self, rev: &str) -> Option<ObjectId> {
        if rev.len() == ObjectId::HEX_LEN
            && let Ok(id) = rev.parse::<ObjectId>()
        {
            return self.objects.contains(&id).then_some(id);
        }
        let candidates: Vec<String> = if rev == "HEAD" || rev.starts_with("refs/") {
            vec![rev.to_owned()]
        } else {
            SHORT_NAME_PREFIXES
                .iter()
                .map(|p| format!("{p}{rev}"))
                .collect()
        };
        for c in candidates {
            if RefName::new(&c).is_err() {
                continue;
            }
            if let Some(t) = self.refs.get(&c) {
                return self.follow(t);
            }
        }
        let prefix = rev.parse::<Prefix>().ok()?;
        let mut matches = self.objects.iter().filter(|id| prefix.matches(id));
        let first = matches.next()?;
        matches.next().is_none().then_some(*first)
    }
}

/// Syntax the parser is about to grow; checked for safety only.
fn future_syntax(rev: &str) -> bool {
    rev.contains(['~', '^', ':']) || rev.contains("@{")
}

/// Resolve arbitrary text: never a panic; an id returned exists; and
/// outside the syntax still to come, exactly the model's answer.
pub fn revision(data: &[u8]) {
    let Ok(rev) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let got = resolve(&f.repo, rev);
    if let Ok(id) = &got {
        assert!(
            f.objects.contains(id),
            "{rev:?} resolved to {id}, not in the store"
        );
    }
    if let Err(e) = &got {
        let _ = e.to_string();
    }
    if future_syntax(rev) {
        return;
    }
    let want = f.model(rev);
    assert_eq!(
        got.as_ref().ok(),
        want.as_ref(),
        "resolve({rev:?}): got {got:?}"
    );
}

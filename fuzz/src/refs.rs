//! Properties of the `sydra-refs` parsers, checked on arbitrary bytes.
//!
//! Shared by the fuzz targets and by `refs/tests/fuzz_regressions.rs`
//! (included there with `#[path]`, with `scratch.rs`). Only `std`, `sydra_objects`,
//! `sydra_refs` and `tempfile` may be used here.

use std::cell::RefCell;
use std::path::{Component, Path};

use sydra_objects::{Durability, Options, Store};
use sydra_refs::{MAX_REF_FILE_LEN, RefName, RefStore, ReflogEntry, Target, parse_ref_file};

/// The rules of docs/FORMAT.md §7, written independently of `name.rs`.
fn name_is_valid(s: &str) -> bool {
    let chars_ok = s
        .bytes()
        .all(|b| !(b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b)));
    if s.is_empty() || s.len() > RefName::MAX_LEN || !chars_ok {
        return false;
    }
    if s == "HEAD" {
        return true;
    }
    s.starts_with("refs/")
        && !s.contains("..")
        && !s.contains("@{")
        && !s.ends_with('.')
        && s.split('/')
            .all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"))
}

/// A ref name: accepted iff the documented rules say so; an accepted name
/// is kept verbatim, becomes a path strictly below the data directory, and
/// round-trips through a symbolic ref file.
pub fn ref_name(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match RefName::new(s) {
        Ok(n) => {
            assert!(name_is_valid(s), "accepted {s:?}");
            assert_eq!(n.as_str(), s);
            assert_eq!(n.to_string(), s);
            assert_eq!(s.parse::<RefName>().ok().as_ref(), Some(&n));
            // No traversal: every component is a plain name.
            assert!(
                Path::new(s)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{s:?} is not a plain relative path"
            );
            if !n.is_head() {
                let content = Target::Symbolic(n.clone()).to_file_content();
                assert_eq!(parse_ref_file(&content), Ok(Target::Symbolic(n)));
            }
        }
        Err(e) => {
            assert!(!name_is_valid(s), "refused {s:?}: {e}");
            let shown = e.name().len();
            assert!(
                shown <= RefName::MAX_LEN.max(64 + 3),
                "error keeps {shown} bytes"
            );
            let _ = e.to_string();
        }
    }
}

/// A ref file: `parse_ref_file(b)` ok => `to_file_content() == b`.
pub fn ref_file(data: &[u8]) {
    match parse_ref_file(data) {
        Ok(t) => {
            assert!(data.len() <= MAX_REF_FILE_LEN);
            assert_eq!(t.to_file_content(), data, "ref file round trip");
            assert_eq!(format!("{t}\n").as_bytes(), data, "Display differs");
            match &t {
                Target::Object(id) => assert_eq!(t.object(), Some(*id)),
                Target::Symbolic(n) => assert!(!n.is_head() && t.symbolic() == Some(n)),
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

thread_local! {
    static REFS: RefCell<Option<(tempfile::TempDir, RefStore)>> = const { RefCell::new(None) };
}

fn with_refs<R>(f: impl FnOnce(&RefStore) -> R) -> R {
    REFS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (_, refs) = slot.get_or_insert_with(|| {
            let dir = super::scratch::tempdir("refs");
            let options = Options {
                durability: Durability::None,
                ..Options::default()
            };
            let objects = Store::create(dir.path().join("objects"), options)
                .unwrap_or_else(|e| panic!("scratch store: {e}"));
            let refs =
                RefStore::create(dir.path(), objects).unwrap_or_else(|e| panic!("ref store: {e}"));
            (dir, refs)
        });
        f(refs)
    })
}

/// A reflog line: `ReflogEntry::parse(l)` ok => `to_string()` is `l`
/// without its LF. The same bytes as a whole reflog file: the store
/// returns exactly the parse of every LF-terminated line (a last line
/// without LF is a torn append and ignored), or an error if one of them
/// does not parse.
pub fn reflog_line(data: &[u8]) {
    if let Ok(line) = std::str::from_utf8(data) {
        match ReflogEntry::parse(line) {
            Ok(entry) => {
                let body = line.strip_suffix('\n').unwrap_or(line);
                assert_eq!(entry.to_string(), body, "reflog line round trip");
                assert_eq!(ReflogEntry::parse(body).as_ref(), Ok(&entry));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    let expected: Option<Vec<ReflogEntry>> = match data.iter().rposition(|&b| b == b'\n') {
        None => Some(Vec::new()),
        Some(end) => data[..end]
            .split(|&b| b == b'\n')
            .map(|l| {
                std::str::from_utf8(l)
                    .ok()
                    .and_then(|l| ReflogEntry::parse(l).ok())
            })
            .collect(),
    };
    with_refs(|refs| {
        let name = RefName::main_branch();
        let path = refs.reflog_path_of(&name);
        let dir = path.parent().unwrap_or_else(|| panic!("no reflog dir"));
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("{e}"));
        match (refs.reflog(&name), expected) {
            (Ok(got), Some(want)) => assert_eq!(got, want),
            (Err(e), None) => {
                let _ = e.to_string();
            }
            (got, want) => panic!("reflog file: store {got:?}, line by line {want:?}"),
        }
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
    });
}

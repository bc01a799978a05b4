//! A length taken from input is never an allocation size: a sparse file
//! of 100 GiB (no disk used) given to `hash-object` as a tree or commit,
//! by path or on standard input, is a prompt error in bounded memory, not
//! an abort trying to allocate 100 GiB.

use std::process::Stdio;

use super::{run_measured, sydra_cmd};

const CLAIMED: u64 = 100 << 30;
/// Peak RSS allowed; the old code tried to allocate the whole 100 GiB.
const MAX_RSS_BYTES: u64 = 100 << 20;

fn sparse(dir: &std::path::Path, fill: Option<u8>) -> std::path::PathBuf {
    let path = dir.join("huge");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(CLAIMED).unwrap();
    if let Some(b) = fill {
        // A first block of `b` (0xff: a tree claiming u32::MAX entries).
        std::os::unix::fs::FileExt::write_all_at(&f, &[b; 4096], 0).unwrap();
    }
    path
}

#[test]
fn hash_object_of_a_huge_sparse_tree_or_commit_is_refused_in_bounded_memory() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d");
    sydra_engine::Repository::init(&data).unwrap();
    let huge = sparse(d.path(), None);
    let h = huge.to_str().unwrap();
    for args in [
        &["hash-object", "-t", "tree", h][..],
        &["hash-object", "-t", "commit", h],
        &["hash-object", "-w", "-t", "tree", h],
        &["hash-object", "-w", "-t", "commit", h],
    ] {
        let (out, rss) = run_measured(sydra_cmd(&data, args), Stdio::null());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(h) && err.contains("at most"),
            "{args:?}: {err}"
        );
        assert!(rss < MAX_RSS_BYTES, "{args:?} peaked at {} MiB", rss >> 20);
    }
}

#[test]
fn hash_object_of_a_huge_tree_or_commit_on_stdin_stops_at_its_structure() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d");
    sydra_engine::Repository::init(&data).unwrap();
    for (fill, kind) in [
        (None, "tree"),
        (None, "commit"),
        (Some(0xff), "tree"),
        (Some(0xff), "commit"),
    ] {
        let e = tempfile::tempdir().unwrap();
        let huge = sparse(e.path(), fill);
        let stdin = Stdio::from(std::fs::File::open(&huge).unwrap());
        let args = ["hash-object", "-t", kind, "--stdin"];
        let (out, rss) = run_measured(sydra_cmd(&data, &args), stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{fill:?} {kind}: {err}");
        assert!(
            err.contains("standard input") && err.contains(&format!("not a valid {kind}")),
            "{fill:?} {kind}: {err}"
        );
        assert!(
            rss < MAX_RSS_BYTES,
            "{fill:?} {kind} peaked at {} MiB",
            rss >> 20
        );
    }
}

#[test]
fn hash_object_of_a_large_blob_on_stdin_streams_it() {
    // The id needs the length before the first byte is hashed, so a blob of
    // unknown length is spooled to a temp file, not held in memory.
    const LEN: usize = 48 << 20;
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d");
    let repo = sydra_engine::Repository::init(&data).unwrap().0;
    // Written and hashed piece by piece, so the test itself stays small
    // (`run_measured` measures the command alone in any case).
    let input = d.path().join("blob");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    let mut h = sydra_engine::objects::IdHasher::new(sydra_engine::objects::Kind::Blob, LEN as u64);
    let mut piece = vec![0u8; 1 << 16];
    for start in (0..LEN).step_by(piece.len()) {
        for (j, b) in piece.iter_mut().enumerate() {
            let i = start + j;
            *b = (i * 7 + i / 4096) as u8;
        }
        h.update(&piece);
        std::io::Write::write_all(&mut file, &piece).unwrap();
    }
    drop(file);
    let want = h.finalize();
    for args in [
        &["hash-object", "--stdin"][..],
        &["hash-object", "-w", "--stdin"],
    ] {
        let stdin = Stdio::from(std::fs::File::open(&input).unwrap());
        let (out, rss) = run_measured(sydra_cmd(&data, args), stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want.to_hex());
        eprintln!("{args:?}: peak RSS {} MiB", rss >> 20);
        assert!(
            rss < (LEN as u64) / 2,
            "{args:?} peaked at {} MiB",
            rss >> 20
        );
    }
    assert_eq!(repo.objects().get_verified(&want).unwrap().data.len(), LEN);
}

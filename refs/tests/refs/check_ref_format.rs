//! Compare `RefName::new` with `git check-ref-format` (no options: full
//! names, no normalization, no refspec patterns, at least two components).
//!
//! Only names starting with `refs/` are compared: git accepts any
//! multi-level name (`heads/main`), while Sydra requires `refs/` or `HEAD`
//! (checked separately below). Deliberate differences, excluded from the
//! comparison and checked on their own:
//! - names longer than `RefName::MAX_LEN` bytes (git has no limit);
//! - NUL, which cannot be passed to git as an argument (Sydra rejects it).

use std::process::{Command, Stdio};

use sydra_refs::RefName;

/// Valid names of varied shape, including non-ASCII ones git accepts.
const BASES: &[&str] = &[
    "refs/heads/main",
    "refs/tags/v1.0",
    "refs/snapshots/2024-01-01T00-00-00Z",
    "refs/heads/feature/deep/x",
    "refs/a",
    "refs/heads/a.b.c",
    "refs/heads/a@b",
    "refs/heads/@",
    "refs/heads/x.LOCK",
    "refs/heads/lock",
    "refs/heads/-dash_+=,;!#%&'\"$|<>{}",
    "refs/heads/ü/mañana",
    "refs/heads/日本語/ブランチ",
    "refs/heads/crab-\u{1F980}",
    "refs/heads/nbsp\u{a0}sep\u{2028}",
    "refs/heads/ä.lockx",
];

/// Fragments inserted into the bases: each rule-breaking feature, and
/// near misses that are valid.
const FEATURES: &[&str] = &[
    "~",
    "^",
    ":",
    "?",
    "*",
    "[",
    "\\",
    " ",
    "\t",
    "\n",
    "\r",
    "\x01",
    "\x1f",
    "\x7f",
    "..",
    "@{",
    "//",
    "/.",
    "/.x",
    ".lock/",
    ".lock",
    "@",
    "{",
    "}",
    ".",
    "/",
    "é",
    "\u{1F980}",
    "@}",
    "{@",
    ".lo",
    "lock",
    "a.",
    ".a",
    "]",
    "@@{",
    "-",
    "\u{feff}",
    "\u{0085}",
];

/// A tiny deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn corpus() -> Vec<String> {
    let mut rng = Lcg(0x5eed);
    let mut out: Vec<String> = BASES.iter().map(|s| s.to_string()).collect();
    for base in BASES {
        let boundaries: Vec<usize> = (5..=base.len())
            .filter(|&i| base.is_char_boundary(i))
            .collect();
        for feature in FEATURES {
            // Insert at a generated position after "refs/", and append.
            let at = boundaries[rng.below(boundaries.len())];
            out.push(format!("{}{}{}", &base[..at], feature, &base[at..]));
            out.push(format!("{base}{feature}"));
        }
    }
    // Whole-name edge cases.
    for s in [
        "refs/",
        "refs//",
        "refs/.",
        "refs/..",
        "refs/./x",
        "refs/x/.",
        "refs/x/..",
        "refs/.lock",
        "refs/x.lock",
        "refs/@",
        "refs/@{",
        "refs/{",
        "refs/x/.lock/y",
        "refs/heads/..x",
        "refs/heads/x..",
        "refs/heads/.x.lock",
        "refs/heads/x.lock.lock",
        "refs/heads/x.lock.",
        "refs/heads/a/",
        "refs/heads//a",
        "refs/a@{b}/c",
    ] {
        out.push(s.to_owned());
    }
    out.sort();
    out.dedup();
    out
}

fn git_accepts(name: &str, cwd: &std::path::Path) -> bool {
    let status = Command::new("git")
        .args(["check-ref-format", name])
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    // 0 = valid, 1 = invalid; anything else is a broken invocation.
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "git check-ref-format {name:?}: {status}"
    );
    status.success()
}

#[test]
fn agrees_with_git_check_ref_format() {
    if !crate::capability::runs(
        "agrees_with_git_check_ref_format",
        crate::capability::tools(
            &["git"],
            "the git package; it is the reference compared against",
        )
        .and_then(|()| crate::capability::works("git", &["--version"])),
    ) {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let corpus = corpus();
    let mut compared = 0;
    let (mut valid, mut invalid) = (0, 0);
    let mut disagreements = Vec::new();
    for name in &corpus {
        if !name.starts_with("refs/") || name.len() > RefName::MAX_LEN || name.contains('\0') {
            continue;
        }
        let ours = RefName::new(name).is_ok();
        let git = git_accepts(name, cwd.path());
        compared += 1;
        if git {
            valid += 1
        } else {
            invalid += 1
        }
        if ours != git {
            disagreements.push(format!("{name:?}: sydra {ours}, git {git}"));
        }
    }
    eprintln!("compared {compared} names with git: {valid} valid, {invalid} invalid");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    // The corpus must exercise both outcomes in quantity, or the comparison
    // proves little.
    assert!(compared >= 300, "only {compared} names compared");
    assert!(
        valid >= 50 && invalid >= 150,
        "valid {valid}, invalid {invalid}"
    );
}

#[test]
fn deliberate_differences_from_git() {
    // Sydra requires full names: git accepts these multi-level names.
    for s in ["heads/main", "foo/bar", "HEAD/x", "@/x"] {
        assert!(RefName::new(s).is_err(), "{s}");
    }
    // HEAD is the one name outside refs/.
    assert!(RefName::new("HEAD").is_ok());
    assert!(RefName::new("@").is_err());
    assert!(RefName::new("refs/a\0b").is_err());
    // Length limit (git has none).
    let ok = format!("refs/{}", "x".repeat(RefName::MAX_LEN - 5));
    assert!(RefName::new(&ok).is_ok());
    assert!(RefName::new(&format!("{ok}y")).is_err());
}

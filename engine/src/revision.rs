//! Revisions: the one way commands and the API name objects.
//!
//! ```text
//! REV   := BASE STEP* [":" PATH]
//! BASE  := <64 hex>             a full id
//!        | <4..63 hex>          a unique id prefix (ambiguity lists the candidates)
//!        | HEAD | refs/...      a full ref name
//!        | <name>               a short ref name, tried as refs/<name>, refs/heads/<name>,
//!                               refs/snapshots/<name>, refs/sections/<name>, in that order
//! STEP  := "~" [N]              the N-th first-parent ancestor (default 1)
//!        | "@{" TIME "}"        the newest commit on the first-parent chain with
//!                               timestamp <= TIME (RFC 3339 or Unix seconds); a time
//!                               before the first commit is "no such revision"
//! PATH  :=                      the object at this path in the commit's (or tree's) tree;
//!                               empty = the root tree
//! ```
//! A ref that exists wins over a hex prefix that happens to look like it.
//! Ref names cannot contain `~`, `:` or `@{`, so the grammar is unambiguous.
//! `REF@{TIME}` uses the ref's history index (O(log R)); other bases walk.
//!
//! Every walk of the first-parent chain (here, `history`, `diff`, `log`,
//! `ls-tree -r`) reads commits and trees with BLAKE3 verified. The graph is
//! acyclic only if ids are honest: a loose file stored as X whose payload
//! names X as parent (or as a subtree) has a valid CRC and header, and only
//! the hash shows it is not X. Verifying stops such a walk at the forged
//! object with an error naming it, in constant memory; a visited set would
//! cost memory linear in the history and still need a rule for what to
//! report.

use sydra_objects::{Kind, ObjectId, Prefix};
use sydra_refs::RefName;

use crate::error::{Error, Result};
use crate::history;
use crate::repo::Repository;
use crate::time::parse_time;

/// Where short names are looked up, in order.
pub const SHORT_NAME_PREFIXES: [&str; 4] =
    ["refs/", "refs/heads/", "refs/snapshots/", "refs/sections/"];

/// One step after the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `~N`.
    Ancestor(u64),
    /// `@{TIME}`, in ns since the epoch.
    At(i64),
}

/// A parsed revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision<'a> {
    /// The base text (id, prefix or ref name).
    pub base: &'a str,
    /// Steps applied in order.
    pub steps: Vec<Step>,
    /// `:PATH`, if given (empty for the root tree).
    pub path: Option<&'a str>,
}

/// Parse without resolving.
pub fn parse(rev: &str) -> Result<Revision<'_>> {
    let (head, path) = match path_separator(rev) {
        Some(i) => (&rev[..i], Some(&rev[i + 1..])),
        None => (rev, None),
    };
    let cut = [head.find('~'), head.find("@{")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(head.len());
    let base = &head[..cut];
    if base.is_empty() {
        return Err(Error::revision(
            rev,
            "missing a ref or object id before the first step",
        ));
    }
    if base.contains('^') {
        return Err(Error::revision(
            rev,
            "\"^\" is not supported; use ~N for the N-th first parent",
        ));
    }
    let mut steps = Vec::new();
    let mut rest = &head[cut..];
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('~') {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let n = if digits == 0 {
                1
            } else {
                after[..digits]
                    .parse::<u64>()
                    .map_err(|_| Error::revision(rev, "ancestor count is too large"))?
            };
            steps.push(Step::Ancestor(n));
            rest = &after[digits..];
        } else if let Some(after) = rest.strip_prefix("@{") {
            let Some(end) = after.find('}') else {
                return Err(Error::revision(rev, "\"@{\" without a closing \"}\""));
            };
            let text = &after[..end];
            let t = parse_time(text).map_err(|e| Error::revision(rev, e.to_string()))?;
            steps.push(Step::At(t));
            rest = &after[end + 1..];
        } else {
            return Err(Error::revision(
                rev,
                format!("unexpected {rest:?} after the base (expected ~N or @{{TIME}})"),
            ));
        }
    }
    Ok(Revision { base, steps, path })
}

/// The first `:` that is not inside an `@{...}` step (times contain colons).
fn path_separator(rev: &str) -> Option<usize> {
    let b = rev.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'@' && b.get(i + 1) == Some(&b'{') {
            match rev[i..].find('}') {
                Some(end) => i += end + 1,
                None => return None,
            }
            continue;
        }
        if b[i] == b':' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The full name of an existing ref called `name` (full or short).
pub fn find_ref(repo: &Repository, name: &str) -> Result<Option<RefName>> {
    let candidates: Vec<String> = if name == "HEAD" || name.starts_with("refs/") {
        vec![name.to_owned()]
    } else {
        SHORT_NAME_PREFIXES
            .iter()
            .map(|p| format!("{p}{name}"))
            .collect()
    };
    for c in candidates {
        let Ok(full) = RefName::new(&c) else { continue };
        if repo.refs().read(&full)?.is_some() {
            return Ok(Some(full));
        }
    }
    Ok(None)
}

/// Resolve the base: returns the id and, when it named a ref, the ref whose
/// history index `@{TIME}` may use (HEAD is followed to its branch).
fn resolve_base(repo: &Repository, rev: &str, base: &str) -> Result<(ObjectId, Option<RefName>)> {
    if base.len() == ObjectId::HEX_LEN
        && let Ok(id) = base.parse::<ObjectId>()
    {
        if repo.objects().contains(&id)? {
            return Ok((id, None));
        }
        return Err(Error::revision(rev, "no such object"));
    }
    if let Some(name) = find_ref(repo, base)? {
        let direct = match repo.refs().read(&name)? {
            Some(sydra_refs::Target::Symbolic(to)) => to,
            _ => name.clone(),
        };
        return match repo.refs().resolve(&name)? {
            Some(id) => Ok((id, Some(direct))),
            None => Err(Error::revision(
                rev,
                format!("{name} does not point at an object yet"),
            )),
        };
    }
    if let Ok(prefix) = base.parse::<Prefix>() {
        return match repo.objects().resolve_prefix(&prefix) {
            Ok(id) => Ok((id, None)),
            Err(sydra_objects::Error::PrefixNotFound(_)) => {
                Err(Error::revision(rev, "no ref or object id matches"))
            }
            Err(e) => Err(e.into()),
        };
    }
    Err(Error::revision(rev, "no ref or object id matches"))
}

fn commit_of(repo: &Repository, rev: &str, id: ObjectId) -> Result<ObjectId> {
    let st = repo.objects().stat(&id)?;
    if st.kind != Kind::Commit {
        return Err(Error::revision(
            rev,
            format!("{id} is a {}, and ~ and @{{}} need a commit", st.kind),
        ));
    }
    Ok(id)
}

/// Resolve `rev` to an object id.
pub fn resolve(repo: &Repository, rev: &str) -> Result<ObjectId> {
    resolve_parsed(repo, rev, parse(rev)?)
}

/// Resolve `rev` followed by the step `@{t}` (`t` in ns since the epoch),
/// for a time given apart from the revision (`replay --at`). `rev` must
/// name a commit, so it cannot end in `:PATH`.
pub fn resolve_at(repo: &Repository, rev: &str, t: i64) -> Result<ObjectId> {
    let mut parsed = parse(rev)?;
    if parsed.path.is_some() {
        return Err(Error::revision(
            rev,
            "a time applies to a commit, not to a path in its tree",
        ));
    }
    parsed.steps.push(Step::At(t));
    resolve_parsed(repo, rev, parsed)
}

/// Resolve an already parsed revision; `rev` is its text, for errors.
fn resolve_parsed(repo: &Repository, rev: &str, parsed: Revision<'_>) -> Result<ObjectId> {
    let (mut id, mut via_ref) = resolve_base(repo, rev, parsed.base)?;
    for step in &parsed.steps {
        id = commit_of(repo, rev, id)?;
        match *step {
            Step::Ancestor(n) => {
                for i in 0..n {
                    // Verified: a forged self-parent would make a large N
                    // loop for as long as N says (module docs).
                    let obj = repo.objects().get_verified(&id)?;
                    id = obj.commit()?.first_parent().ok_or_else(|| {
                        Error::revision(
                            rev,
                            format!("the first-parent history has only {i} ancestor(s)"),
                        )
                    })?;
                }
            }
            Step::At(t) => {
                let found = match &via_ref {
                    Some(name) => history::at(repo, name, t)?,
                    None => history::at_by_walk(repo, id, t)?,
                };
                id = found.ok_or_else(|| {
                    Error::revision(
                        rev,
                        format!("no commit at or before {}", crate::time::format_rfc3339(t)),
                    )
                })?;
            }
        }
        via_ref = None;
    }
    if let Some(path) = parsed.path {
        id = repo.peel_to_tree(id)?;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            let obj = repo.objects().get(&id)?;
            let tree = obj.tree().map_err(|_| {
                Error::revision(rev, format!("{path:?}: a component is not a tree"))
            })?;
            id = match tree.find(comp) {
                Some(e) => e.id,
                None => {
                    return Err(Error::revision(
                        rev,
                        format!("path {path:?} does not exist"),
                    ));
                }
            };
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let r = parse("main~2@{1700000000}:series/a").unwrap();
        assert_eq!(r.base, "main");
        assert_eq!(
            r.steps,
            vec![Step::Ancestor(2), Step::At(1_700_000_000_000_000_000)]
        );
        assert_eq!(r.path, Some("series/a"));
        assert_eq!(parse("abcd~").unwrap().steps, vec![Step::Ancestor(1)]);
        assert_eq!(parse("HEAD:").unwrap().path, Some(""));
        let r = parse("main@{2026-11-21T10:30:00Z}:a/b").unwrap();
        assert_eq!(
            r.steps,
            vec![Step::At(
                crate::time::parse_time("2026-11-21T10:30:00Z").unwrap()
            )]
        );
        assert_eq!(r.path, Some("a/b"));
        for bad in [
            "",
            "~1",
            "@{1}",
            "main@{",
            "main@{yesterday}",
            "main@{2026-02-31T00:00:00Z}",
            "main@{2026-11-21T10:30:00+99:99}",
            "main@{9999-01-01T00:00:00Z}",
            "main~x",
            "main^",
            "main~99999999999999999999999",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

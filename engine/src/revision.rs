//! Revisions: how commands and the API name objects.
//!
//! ```text
//! <64 hex>            a full id
//! <4..63 hex>         a unique id prefix (ambiguity lists the candidates)
//! HEAD | refs/...     a full ref name
//! <name>              a short ref name, tried as refs/<name>, refs/heads/<name>,
//!                     refs/snapshots/<name>, refs/sections/<name>, in that order
//! ```
//! A ref that exists wins over a hex prefix that happens to look like it.

use sydra_objects::{ObjectId, Prefix};
use sydra_refs::RefName;

use crate::error::{Error, Result};
use crate::repo::Repository;

/// Where short names are looked up, in order.
pub const SHORT_NAME_PREFIXES: [&str; 4] =
    ["refs/", "refs/heads/", "refs/snapshots/", "refs/sections/"];

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

/// Resolve `rev` to an object id.
pub fn resolve(repo: &Repository, rev: &str) -> Result<ObjectId> {
    if rev.len() == ObjectId::HEX_LEN
        && let Ok(id) = rev.parse::<ObjectId>()
    {
        if repo.objects().contains(&id)? {
            return Ok(id);
        }
        return Err(Error::revision(rev, "no such object"));
    }
    if let Some(name) = find_ref(repo, rev)? {
        return match repo.refs().resolve(&name)? {
            Some(id) => Ok(id),
            None => Err(Error::revision(
                rev,
                format!("{name} does not point at an object"),
            )),
        };
    }
    if let Ok(prefix) = rev.parse::<Prefix>() {
        return match repo.objects().resolve_prefix(&prefix) {
            Ok(id) => Ok(id),
            Err(sydra_objects::Error::PrefixNotFound(_)) => {
                Err(Error::revision(rev, "no ref or object id matches"))
            }
            Err(e) => Err(e.into()),
        };
    }
    Err(Error::revision(rev, "no ref or object id matches"))
}

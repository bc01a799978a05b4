//! `--name value` arguments of the bench binaries (after their mode word),
//! driven by the shell scripts; a missing or malformed one panics naming
//! it, which is what a bench run should do.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `--name value` pairs.
#[derive(Debug, Clone, Default)]
pub struct Args(BTreeMap<String, String>);

impl Args {
    /// Parse `--name value` pairs.
    pub fn parse(rest: &[String]) -> Args {
        let mut m = BTreeMap::new();
        let mut it = rest.iter();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .unwrap_or_else(|| panic!("expected --NAME VALUE, got {k:?}"));
            let v = it.next().unwrap_or_else(|| panic!("--{key} needs a value"));
            m.insert(key.to_owned(), v.clone());
        }
        Args(m)
    }

    /// `--name`, parsed, or `default`.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.0.get(name) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("--{name}: cannot parse {v:?}")),
            None => default,
        }
    }

    /// `--name`, if given.
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `--name`, required.
    pub fn req(&self, name: &str) -> &str {
        self.opt(name)
            .unwrap_or_else(|| panic!("--{name} is required"))
    }

    /// `--name` as a path, required.
    pub fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(self.req(name))
    }

    /// `--name` as HOST:PORT, required.
    pub fn addr(&self, name: &str) -> SocketAddr {
        let s = self.req(name);
        s.parse()
            .unwrap_or_else(|e| panic!("--{name} {s:?}: not HOST:PORT ({e})"))
    }
}

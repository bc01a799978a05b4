//! The S3 transport: a remote in an S3-compatible bucket
//! (`s3://BUCKET/PREFIX`), through the `object_store` crate (DESIGN.md
//! §11; the layout is docs/FORMAT.md §22).
//!
//! ```text
//! PREFIX/manifest                    refs, live packs, a generation (JSON)
//! PREFIX/packs/pack-<blake3>.sytx    one transfer file per push (immutable)
//! PREFIX/packs/pack-<blake3>.syti    its index, for read replicas (immutable)
//! ```
//!
//! A push uploads one transfer file (the same format every transport
//! uses: a pack, the WAL ranges its commits replay, shallow boundaries, a
//! trailer), named by its BLAKE3, written with `PutMode::Create` (or a
//! multipart upload when large: a retry rewrites the same bytes under the
//! same name, so no condition is needed), and only then replaces the
//! manifest with `PutMode::Update(etag)`: a manifest never names a pack
//! that is not there, and of two concurrent pushes one wins the manifest
//! and the other re-reads it and retries while it is still a
//! fast-forward. A push costs four requests (GET manifest, PUT pack, PUT
//! its index, PUT manifest) plus multipart parts, whatever its size.
//!
//! A fetch reads the manifest and downloads, in the manifest's order, the
//! packs whose tips the receiver lacks: after one new push, that push's
//! pack only. Each is verified whole before anything is published, as from
//! any other remote.
//!
//! A store that does not honour conditional writes would let concurrent
//! pushes lose refs, so a remote is probed before its first use (create
//! the same key twice: the second must fail; update with a stale ETag: it
//! must fail) and refused with a clear error if it does not pass. A named
//! remote remembers a passed probe (`remotes/<name>.probed`). Only pushes
//! and `gc --remote` probe: a fetch or clone writes nothing to the bucket,
//! so read-only credentials can clone.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as Key;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart,
};
use serde_json::{Value, json};
use sydra_objects::{ObjectId, Pinned, Store};
use sydra_refs::RefName;

use super::{
    Outcome, Transfer, TransferFile, judge, remote_err, remote_has, send_beyond, tmp_path,
};
use crate::error::{Error, Result};
use crate::repo::Repository;

/// The manifest's format line.
pub const MANIFEST_FORMAT: &str = "sydra-s3 1";
/// Transfers larger than this are uploaded in parts (the environment
/// variable `SYDRA_S3_MULTIPART_OVER` lowers it, for tests).
const MULTIPART_OVER: u64 = 64 << 20;

fn multipart_over() -> u64 {
    std::env::var("SYDRA_S3_MULTIPART_OVER")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(MULTIPART_OVER)
}
/// The size of one part.
const PART_BYTES: usize = 16 << 20;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// The largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Times a push re-reads the manifest after losing a race.
const MANIFEST_RETRIES: u32 = 20;
/// Ranged GETs a read replica keeps in flight at once.
pub(crate) const RANGES_IN_FLIGHT: usize = 8;

/// How long before a pack is expected to have arrived a fetch of several
/// packs sends the next one's GET (DECISIONS 75).
const GET_AHEAD: std::time::Duration = std::time::Duration::from_secs(2);

/// A spawned request, cancelled when dropped: a fetch that stops early
/// leaves no GET running on the remote's runtime.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One pack the manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEntry {
    /// Its file name under `PREFIX/packs/`.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The commits its push sent: a store that has all of them (and so
    /// their history) needs nothing from it.
    pub tips: Vec<ObjectId>,
}

impl PackEntry {
    /// The transfer's trailer its name carries (`pack-<hex>.sytx`).
    pub fn trailer(&self) -> Option<ObjectId> {
        self.name
            .strip_prefix("pack-")
            .and_then(|r| r.strip_suffix(".sytx"))
            .and_then(|h| h.parse::<ObjectId>().ok())
    }

    /// The largest index this pack can have: 48 bytes an entry, and every
    /// entry of the pack is longer than 40, so under twice the pack.
    pub(crate) fn max_index_bytes(&self) -> u64 {
        self.bytes.saturating_mul(2).saturating_add(4096)
    }
}

/// The remote's state: refs and live packs, replaced as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Incremented by every write.
    pub generation: u64,
    /// Ref name → commit.
    pub refs: BTreeMap<String, ObjectId>,
    /// In push order: a pack's objects reference only objects in it or in
    /// the packs before it.
    pub packs: Vec<PackEntry>,
}

impl Manifest {
    /// The JSON form (docs/FORMAT.md §22).
    pub fn to_json(&self) -> Vec<u8> {
        let refs: serde_json::Map<String, Value> = self
            .refs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_hex())))
            .collect();
        let packs: Vec<Value> = self
            .packs
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "bytes": p.bytes,
                    "tips": p.tips.iter().map(|t| t.to_hex()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut out = serde_json::to_vec_pretty(&json!({
            "format": MANIFEST_FORMAT,
            "generation": self.generation,
            "refs": refs,
            "packs": packs,
        }))
        .unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parse and check a manifest (strict: a wrong format, a bad id or a
    /// pack name outside the layout is refused).
    pub fn parse(b: &[u8]) -> std::result::Result<Manifest, String> {
        let v: Value = serde_json::from_slice(b).map_err(|e| format!("not JSON: {e}"))?;
        if v.get("format").and_then(Value::as_str) != Some(MANIFEST_FORMAT) {
            return Err(format!(
                "its format is {}, not {MANIFEST_FORMAT:?}",
                v.get("format").unwrap_or(&Value::Null)
            ));
        }
        let id = |x: &Value, what: &str| -> std::result::Result<ObjectId, String> {
            x.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{what} holds {x}, not an object id"))
        };
        let generation = v
            .get("generation")
            .and_then(Value::as_u64)
            .ok_or("no generation")?;
        let mut refs = BTreeMap::new();
        for (k, x) in v.get("refs").and_then(Value::as_object).ok_or("no refs")? {
            RefName::new(k).map_err(|e| format!("ref {k:?}: {e}"))?;
            refs.insert(k.clone(), id(x, k)?);
        }
        let mut packs = Vec::new();
        for p in v.get("packs").and_then(Value::as_array).ok_or("no packs")? {
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| valid_pack_name(n))
                .ok_or_else(|| format!("a pack entry has no valid name: {p}"))?;
            let bytes = p
                .get("bytes")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("pack {name} has no size"))?;
            let tips = p
                .get("tips")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("pack {name} has no tips"))?
                .iter()
                .map(|t| id(t, name))
                .collect::<std::result::Result<_, _>>()?;
            packs.push(PackEntry {
                name: name.to_owned(),
                bytes,
                tips,
            });
        }
        Ok(Manifest {
            generation,
            refs,
            packs,
        })
    }
}

/// `pack-<64 hex>.sytx`.
fn valid_pack_name(n: &str) -> bool {
    n.strip_prefix("pack-")
        .and_then(|r| r.strip_suffix(".sytx"))
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A connection to one S3 remote.
pub(crate) struct S3Remote {
    url: String,
    prefix: String,
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    requests: AtomicU64,
    /// The manifest last read, and the version a write must replace.
    cached: parking_lot::Mutex<Option<(Manifest, Option<UpdateVersion>)>>,
}

impl std::fmt::Debug for S3Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Remote")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn store_err(url: &str, what: &str, e: impl std::fmt::Display) -> Error {
    remote_err(url, format!("{what}: {e}"))
}

impl S3Remote {
    /// Connect to `s3://BUCKET/PREFIX` with the settings of the `AWS_*`
    /// variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, …). Makes no request.
    pub(crate) fn connect(url: &str) -> Result<S3Remote> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| remote_err(url, "not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(remote_err(url, "no bucket (s3://BUCKET/PREFIX)"));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if prefix.split('/').any(|p| p == "." || p == "..")
            || prefix.contains("//")
            || Key::parse(&prefix).is_err()
        {
            return Err(remote_err(
                url,
                format!("the prefix {prefix:?} is not a valid key prefix"),
            ));
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            b = b.with_region("us-east-1");
        }
        // object_store's default of 30 s bounds a whole request, the upload
        // of its body included: a 16 MiB part over a link slower than about
        // 0.6 MB/s would never get through. A transfer's requests are few
        // and large, so allow each 30 minutes unless AWS_TIMEOUT says.
        if std::env::var_os("AWS_TIMEOUT").is_none() {
            b = b.with_config(
                object_store::aws::AmazonS3ConfigKey::Client(
                    object_store::ClientConfigKey::Timeout,
                ),
                "1800s",
            );
        }
        let store = b
            .build()
            .map_err(|e| store_err(url, "cannot configure the S3 client", e))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| store_err(url, "cannot start the I/O runtime", e))?;
        Ok(S3Remote {
            url: url.to_owned(),
            prefix,
            store: Arc::new(store),
            rt,
            requests: AtomicU64::new(0),
            cached: parking_lot::Mutex::new(None),
        })
    }

    /// Requests made so far (parts of multipart uploads included).
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self, n: u64) {
        self.requests.fetch_add(n, Ordering::Relaxed);
    }

    fn key(&self, rest: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rest)
        } else {
            Key::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> Error {
        store_err(&self.url, what, e)
    }

    /// Refuse a store that does not honour conditional writes.
    pub(crate) fn probe(&self) -> Result<()> {
        let key = self.key(&format!("probe/{}-{}", std::process::id(), crate::now_ns()));
        let create = || PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let refuse = |why: String| {
            remote_err(
                &self.url,
                format!(
                    "the server does not honour conditional writes ({why}); Sydra refuses to \
                     use it, since concurrent pushes could then lose refs (S3, MinIO and moto \
                     5.x honour If-None-Match and If-Match)"
                ),
            )
        };
        self.count(4);
        self.rt.block_on(async {
            self.store
                .put_opts(&key, PutPayload::from_static(b"1"), create())
                .await
                .map_err(|e| self.err(&format!("cannot write the probe {key}"), e))?;
            let second = self
                .store
                .put_opts(&key, PutPayload::from_static(b"2"), create())
                .await;
            let stale = UpdateVersion {
                e_tag: Some("\"0000000000000000\"".into()),
                version: None,
            };
            let third = self
                .store
                .put_opts(
                    &key,
                    PutPayload::from_static(b"3"),
                    PutOptions {
                        mode: PutMode::Update(stale),
                        ..PutOptions::default()
                    },
                )
                .await;
            let _ = self.store.delete(&key).await;
            match second {
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Ok(_) => return Err(refuse(format!("a second create of {key} succeeded"))),
                Err(e) => return Err(self.err("the probe's second create failed", e)),
            }
            match third {
                Err(object_store::Error::Precondition { .. }) => {}
                Ok(_) => {
                    return Err(refuse(format!(
                        "an update of {key} with a stale ETag succeeded"
                    )));
                }
                Err(e) => return Err(self.err("the probe's conditional update failed", e)),
            }
            Ok(())
        })
    }

    /// Read the manifest (an empty one when there is none yet).
    pub(crate) fn manifest(&self) -> Result<Manifest> {
        let key = self.key("manifest");
        self.count(1);
        let got = self.rt.block_on(async {
            match self.store.get(&key).await {
                Ok(r) => {
                    let version = UpdateVersion {
                        e_tag: r.meta.e_tag.clone(),
                        version: r.meta.version.clone(),
                    };
                    // A manifest is a few KiB per thousand refs and packs;
                    // a bucket's object is not trusted to size an allocation.
                    if r.meta.size > MAX_MANIFEST_BYTES {
                        return Err(object_store::Error::Generic {
                            store: "sydra",
                            source: format!(
                                "it is {} bytes; a manifest is at most {MAX_MANIFEST_BYTES}",
                                r.meta.size
                            )
                            .into(),
                        });
                    }
                    let bytes = r.bytes().await?;
                    Ok(Some((bytes, version)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let (m, v) = match got.map_err(|e| self.err(&format!("cannot read {key}"), e))? {
            Some((bytes, v)) => (
                Manifest::parse(&bytes)
                    .map_err(|e| self.err(&format!("{key} is not a Sydra manifest"), e))?,
                Some(v),
            ),
            None => (Manifest::default(), None),
        };
        *self.cached.lock() = Some((m.clone(), v));
        Ok(m)
    }

    /// A fresh read of the manifest, with the version a conditional write
    /// of it must name.
    fn fresh_manifest(&self) -> Result<(Manifest, Option<UpdateVersion>)> {
        let m = self.manifest()?;
        let version = self.cached.lock().clone().and_then(|(_, v)| v);
        Ok((m, version))
    }

    /// The manifest last read, or a fresh read.
    fn current(&self) -> Result<(Manifest, Option<UpdateVersion>)> {
        if let Some(c) = self.cached.lock().clone() {
            return Ok(c);
        }
        self.manifest()?;
        self.cached
            .lock()
            .clone()
            .ok_or_else(|| self.err("the manifest", "vanished"))
    }

    /// Replace the manifest if it is still `version` (create it if
    /// `None`); `false` when another writer got there first.
    fn replace_manifest(&self, m: &Manifest, version: Option<UpdateVersion>) -> Result<bool> {
        let key = self.key("manifest");
        let mode = match version {
            Some(v) => PutMode::Update(v),
            None => PutMode::Create,
        };
        self.count(1);
        let r = self.rt.block_on(self.store.put_opts(
            &key,
            PutPayload::from(m.to_json()),
            PutOptions {
                mode,
                ..PutOptions::default()
            },
        ));
        match r {
            Ok(_) => {
                *self.cached.lock() = None;
                Ok(true)
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                *self.cached.lock() = None;
                Ok(false)
            }
            Err(e) => Err(self.err(&format!("cannot write {key}"), e)),
        }
    }

    /// The refs the remote offers.
    pub(crate) fn refs(&self) -> Result<Vec<(RefName, ObjectId)>> {
        let (m, _) = self.current()?;
        m.refs
            .iter()
            .map(|(k, v)| {
                RefName::new(k)
                    .map(|n| (n, *v))
                    .map_err(|e| self.err("the manifest", e))
            })
            .collect()
    }

    /// Upload a transfer file as `packs/pack-<blake3>.sytx`.
    fn upload(&self, file: &TransferFile) -> Result<PackEntry> {
        let path = &file.path;
        let mut f = std::fs::File::open(path).map_err(Error::io("open", path))?;
        let bytes = f.metadata().map_err(Error::io("stat", path))?.len();
        if bytes < 32 {
            return Err(self.err("the transfer", "is shorter than its trailer"));
        }
        // The trailer (docs/FORMAT.md §21) fixes the content: the name.
        let mut trailer = [0u8; 32];
        {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::End(-32))
                .map_err(Error::io("read", path))?;
            f.read_exact(&mut trailer)
                .map_err(Error::io("read", path))?;
            f.seek(SeekFrom::Start(0))
                .map_err(Error::io("read", path))?;
        }
        let hex: String = trailer.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("pack-{hex}.sytx");
        let key = self.key(&format!("packs/{name}"));
        if bytes <= multipart_over() {
            let mut data = Vec::with_capacity(bytes as usize);
            f.read_to_end(&mut data).map_err(Error::io("read", path))?;
            self.put_named_by_content(&key, data)?;
        } else {
            let parts = bytes.div_ceil(PART_BYTES as u64);
            self.count(parts + 2);
            self.rt
                .block_on(async {
                    let upload = self.store.put_multipart(&key).await?;
                    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = f.read(&mut buf).map_err(|e| object_store::Error::Generic {
                            store: "file",
                            source: Box::new(e),
                        })?;
                        if n == 0 {
                            break;
                        }
                        w.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                        w.write(&buf[..n]);
                    }
                    w.finish().await
                })
                .map_err(|e| self.err(&format!("cannot upload {key}"), e))?;
        }
        self.upload_index(path, &name)?;
        Ok(PackEntry {
            name,
            bytes,
            tips: Vec::new(),
        })
    }

    /// Upload the index of the transfer file at `path`, uploaded as
    /// `packs/<name>`, as `packs/<stem>.syti` (what a read replica reads).
    fn upload_index(&self, path: &Path, name: &str) -> Result<()> {
        let f = sydra_objects::fs::open_regular(path).map_err(Error::io("open", path))?;
        let map = sydra_objects::map::map_file(&f).map_err(Error::io("map", path))?;
        let index = super::tindex::TransferIndex::build(&map)
            .map_err(|e| self.err("cannot index the transfer", e))?
            .encode();
        let key = self.key(&format!("packs/{}", index_name(name)));
        self.put_named_by_content(&key, index)
    }

    /// Put `data` under `key` with `PutMode::Create`. The key fixes the
    /// content (a transfer's BLAKE3, or the index derived from that
    /// transfer), so an object already there (an earlier, interrupted push
    /// of the same transfer) holds these bytes: that is success.
    fn put_named_by_content(&self, key: &Key, data: Vec<u8>) -> Result<()> {
        self.count(1);
        let payload = PutPayload::from(data);
        let again = payload.clone();
        let r = self.rt.block_on(self.store.put_opts(
            key,
            payload,
            PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            },
        ));
        match r {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // The same bytes, uploaded before and perhaps unlisted
                // since: put them again so the object's time is now, or a
                // `gc --remote` could take it for an old unlisted pack
                // just as this push or repack lists it.
                self.count(1);
                self.rt
                    .block_on(self.store.put(key, again))
                    .map(|_| ())
                    .map_err(|e| self.err(&format!("cannot upload {key}"), e))
            }
            Err(e) => Err(self.err(&format!("cannot upload {key}"), e)),
        }
    }

    /// The index of the listed pack `name`, `None` when there is none (a
    /// pack pushed before indexes were uploaded). One larger than `max`
    /// bytes is refused before its body is read.
    pub(crate) fn get_index(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let key = self.key(&format!("packs/{}", index_name(name)));
        self.count(1);
        let r = self.rt.block_on(async {
            let r = self.store.get(&key).await?;
            if r.meta.size > max {
                return Ok(Err(r.meta.size));
            }
            r.bytes().await.map(Ok)
        });
        match r {
            Ok(Ok(b)) => Ok(Some(b.to_vec())),
            Ok(Err(size)) => Err(self.err(
                &format!("{key}"),
                format!("is {size} bytes, more than an index of its pack can be ({max})"),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&format!("cannot read {key}"), e)),
        }
    }

    /// Bytes `[offset, offset + len)` of `packs/<name>`: one ranged GET.
    pub(crate) fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let key = self.key(&format!("packs/{name}"));
        self.count(1);
        let b = self
            .rt
            .block_on(self.store.get_range(&key, offset..offset + len))
            .map_err(|e| self.err(&format!("cannot read {key} at {offset}+{len}"), e))?;
        if b.len() as u64 != len {
            return Err(self.err(
                &format!("{key} at {offset}+{len}"),
                format!("the server sent {} bytes", b.len()),
            ));
        }
        Ok(b.to_vec())
    }

    /// Several byte ranges of listed packs, `(name, start..end)` each,
    /// fetched at most [`RANGES_IN_FLIGHT`] at a time; the bodies in the
    /// order asked.
    pub(crate) fn get_many(&self, wanted: &[(&str, std::ops::Range<u64>)]) -> Result<Vec<Vec<u8>>> {
        use futures::TryStreamExt;
        self.count(wanted.len() as u64);
        let bodies: Vec<Vec<u8>> = self.rt.block_on(
            futures::stream::iter(wanted.iter().map(|(name, r)| {
                let key = self.key(&format!("packs/{name}"));
                let r = r.clone();
                async move {
                    let b = self.store.get_range(&key, r.clone()).await.map_err(|e| {
                        self.err(&format!("cannot read {key} at {}..{}", r.start, r.end), e)
                    })?;
                    if b.len() as u64 != r.end - r.start {
                        return Err(self.err(
                            &format!("{key} at {}..{}", r.start, r.end),
                            format!("the server sent {} bytes", b.len()),
                        ));
                    }
                    Ok::<Vec<u8>, Error>(b.to_vec())
                }
            }))
            .buffered(RANGES_IN_FLIGHT)
            .try_collect(),
        )?;
        Ok(bodies)
    }

    /// Download a whole listed pack to a temp file (for a pack without an
    /// index, which a replica then indexes itself).
    pub(crate) fn get_pack(&self, entry: &PackEntry, scratch: &Store) -> Result<TransferFile> {
        self.download(entry, scratch)
    }

    /// Download `packs/<name>` into a temp file of `scratch`.
    fn download(&self, entry: &PackEntry, scratch: &Store) -> Result<TransferFile> {
        let key = self.key(&format!("packs/{}", entry.name));
        let path = tmp_path(scratch, "s3");
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        let file = TransferFile {
            path: path.clone(),
            counts: Transfer::default(),
        };
        self.count(1);
        let written = self
            .rt
            .block_on(async {
                let r = self.store.get(&key).await?;
                let mut stream = r.into_stream();
                let mut n = 0u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    n += chunk.len() as u64;
                    if n > entry.bytes {
                        break;
                    }
                    out.write_all(&chunk)
                        .map_err(|e| object_store::Error::Generic {
                            store: "file",
                            source: Box::new(e),
                        })?;
                }
                Ok::<u64, object_store::Error>(n)
            })
            .map_err(|e| self.err(&format!("cannot download {key}"), e))?;
        if written != entry.bytes {
            return Err(self.err(
                &format!("{key}"),
                format!("holds {written} bytes; the manifest says {}", entry.bytes),
            ));
        }
        out.flush().map_err(Error::io("write", &path))?;
        Ok(file)
    }

    /// Stream the listed packs `wanted` into `dst`, in order (see
    /// [`super::receive_from`]): a thread downloads, the receiver verifies
    /// and writes as the bytes come, so each byte is written once and
    /// nothing is spooled. The next pack's GET is sent about
    /// [`GET_AHEAD`] before the one before it is expected to end (at
    /// once, on a fast link), so the server prepares it meanwhile (moto
    /// reads a whole object before its first byte: 0.12 s for 250 MB) and
    /// its first byte is waiting when the receiver gets to it; on a slow
    /// link its request timeout does not start long before its bytes.
    fn receive_packs(
        &self,
        wanted: &[&PackEntry],
        dst: &Repository,
        remote: &str,
    ) -> Result<(Transfer, Vec<Pinned>)> {
        if wanted.is_empty() {
            return Ok((Transfer::default(), Vec::new()));
        }
        let keys: Vec<Key> = wanted
            .iter()
            .map(|p| self.key(&format!("packs/{}", p.name)))
            .collect();
        let (writers, readers): (Vec<_>, Vec<_>) =
            (0..wanted.len()).map(|_| super::receive::pipe()).unzip();
        std::thread::scope(|scope| {
            // Each pack's byte count in turn, or the first download error
            // with its pack's position; a pack whose receiver stopped
            // reading first (its error says why) ends the list.
            let download = scope.spawn(|| {
                self.rt.block_on(async {
                    let get = |key: &Key| {
                        self.count(1);
                        let (store, key) = (self.store.clone(), key.clone());
                        AbortOnDrop(tokio::spawn(async move { store.get(&key).await }))
                    };
                    let mut counts = Vec::new();
                    let mut next = Some(get(&keys[0]));
                    for (i, mut w) in writers.into_iter().enumerate() {
                        let fail = |e: object_store::Error| (i, e);
                        let Some(mut h) = next.take() else { break };
                        let got = (&mut h.0)
                            .await
                            .map_err(|e| object_store::Error::Generic {
                                store: "S3",
                                source: Box::new(e),
                            })
                            .and_then(|r| r)
                            .map_err(fail)?;
                        let started = std::time::Instant::now();
                        let mut stream = got.into_stream();
                        let mut n = 0u64;
                        let mut stopped = false;
                        while let Some(chunk) = stream.next().await {
                            let chunk = chunk.map_err(fail)?;
                            n += chunk.len() as u64;
                            if n > wanted[i].bytes {
                                break;
                            }
                            // Bytes left at the rate so far, once there is
                            // a rate to trust (not the socket's first burst).
                            let took = started.elapsed().as_secs_f64();
                            if next.is_none()
                                && took >= 0.1
                                && let Some(key) = keys.get(i + 1)
                            {
                                let left = (wanted[i].bytes - n) as f64;
                                if left <= n as f64 / took * GET_AHEAD.as_secs_f64() {
                                    next = Some(get(key));
                                }
                            }
                            if w.send_owned(chunk).is_err() {
                                stopped = true;
                                break;
                            }
                        }
                        if stopped || w.flush().is_err() {
                            break;
                        }
                        counts.push(n);
                        if next.is_none() {
                            next = keys.get(i + 1).map(get);
                        }
                    }
                    Ok::<_, (usize, object_store::Error)>(counts)
                })
            });
            let mut total = Transfer::default();
            let mut pins = Vec::new();
            let mut failed = None;
            for (i, mut r) in readers.into_iter().enumerate() {
                match super::receive::receive_blocks(dst, &mut r, wanted[i].bytes, remote) {
                    Ok((t, pin)) => {
                        total.commits += t.commits;
                        total.objects += t.objects;
                        total.bytes += t.bytes;
                        total.ranges += t.ranges;
                        total.range_bytes += t.range_bytes;
                        total.pack = t.pack.or(total.pack);
                        total.shallow.extend(t.shallow);
                        pins.extend(pin);
                    }
                    Err(e) => {
                        failed = Some((i, e));
                        break;
                    }
                }
            }
            // Readers left unread are dropped here: the download stops.
            let downloaded = download
                .join()
                .map_err(|_| self.err("the packs", "the download thread panicked"))?;
            let key_err = |i: usize, e: object_store::Error| {
                self.err(&format!("cannot download {}", keys[i]), e)
            };
            match (failed, downloaded) {
                // The download's own error explains a receiver's at or
                // after its pack.
                (Some((at, _)), Err((i, e))) if i <= at => Err(key_err(i, e)),
                (None, Err((i, e))) => Err(key_err(i, e)),
                // Which of the packs was refused.
                (Some((i, Error::Remote { remote, reason })), _) => Err(Error::Remote {
                    remote,
                    reason: format!("{}: {reason}", keys[i]),
                }),
                (Some((_, e)), _) => Err(e),
                (None, Ok(counts)) => {
                    for (i, p) in wanted.iter().enumerate() {
                        let n = counts.get(i).copied().unwrap_or(0);
                        if n != p.bytes {
                            return Err(self.err(
                                keys[i].as_ref(),
                                format!("holds {n} bytes; the manifest says {}", p.bytes),
                            ));
                        }
                    }
                    Ok((total, pins))
                }
            }
        })
    }

    /// Bring into `dst` every listed pack whose tips it lacks, oldest
    /// first; each verified whole before it is published.
    pub(crate) fn fetch_into(
        &self,
        dst: &Repository,
        remote: &str,
    ) -> Result<(Transfer, Vec<Pinned>)> {
        let (m, _) = self.current()?;
        let mut wanted = Vec::new();
        for p in &m.packs {
            let mut have_all = true;
            for t in &p.tips {
                if !dst.objects().contains(t)? {
                    have_all = false;
                    break;
                }
            }
            if !have_all {
                wanted.push(p);
            }
        }
        self.receive_packs(&wanted, dst, remote)
    }

    /// Push: upload what the remote lacks for `sent`'s new values, then
    /// move its refs by replacing the manifest conditionally; a lost race
    /// re-reads the manifest and judges again.
    pub(crate) fn push(
        &self,
        repo: &Repository,
        sent: &[(String, Option<ObjectId>, ObjectId)],
        force: bool,
    ) -> Result<(Transfer, Vec<(String, Outcome)>)> {
        let (mut m, mut version) = self.current()?;
        let have = remote_has(repo, m.refs.values().copied())?;
        let tips: Vec<ObjectId> = sent.iter().map(|(_, _, new)| *new).collect();
        let mut counts = Transfer::default();
        let mut entry = None;
        if !tips.iter().all(|t| have.contains(t)) {
            let file = send_beyond(repo, &tips, &have)?;
            counts = file.counts.clone();
            let mut e = self.upload(&file)?;
            e.tips = tips
                .iter()
                .copied()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            e.tips.sort();
            entry = Some(e);
        }
        let mut tries = 0;
        loop {
            let mut results = Vec::new();
            let mut next = m.clone();
            let mut changed = false;
            for (name, _, new) in sent {
                let cur = m.refs.get(name).copied();
                let o = judge(repo, cur, *new, force)?;
                if matches!(o, Outcome::Created | Outcome::FastForward | Outcome::Forced) {
                    next.refs.insert(name.clone(), *new);
                    changed = true;
                }
                results.push((name.clone(), o));
            }
            if !changed {
                return Ok((counts, results));
            }
            if let Some(e) = &entry
                && !next.packs.iter().any(|p| p.name == e.name)
            {
                next.packs.push(e.clone());
            }
            next.generation = m.generation + 1;
            if self.replace_manifest(&next, version.clone())? {
                return Ok((counts, results));
            }
            tries += 1;
            if tries > MANIFEST_RETRIES {
                return Err(self.err(
                    "the manifest",
                    format!("kept changing under {tries} attempts to update it; push again"),
                ));
            }
            (m, version) = self.fresh_manifest()?;
        }
    }

    /// The index of the listed pack `p`, parsed and checked against its
    /// name and size; `None` when it has none (pushed before indexes).
    fn index_of(&self, p: &PackEntry) -> Result<Option<super::tindex::TransferIndex>> {
        let trailer = p.trailer().ok_or_else(|| {
            self.err(
                "the manifest",
                format!("pack name {} is not pack-<hex>.sytx", p.name),
            )
        })?;
        let Some(b) = self.get_index(&p.name, p.max_index_bytes())? else {
            return Ok(None);
        };
        super::tindex::TransferIndex::parse(&b, &trailer, p.bytes)
            .map(Some)
            .map_err(|e| self.err(&index_name(&p.name), e))
    }

    /// Write (or rewrite, which moves its time) each pack's retirement
    /// marker.
    fn retire(&self, packs: &[PackEntry]) -> Result<()> {
        for p in packs {
            self.count(1);
            let key = self.key(&format!("retired/{}", p.name));
            self.rt
                .block_on(self.store.put(&key, PutPayload::from(Vec::new())))
                .map_err(|e| self.err(&format!("cannot write {key}"), e))?;
        }
        Ok(())
    }

    /// Merge the newest packs into one, as `sydra gc --remote` does before
    /// it deletes: the run [`repack_run`] picks is sent again from `repo`
    /// as one transfer (what a push of the run's tips onto the packs
    /// before it sends), checked to hold every object and WAL range of the
    /// run that the packs before it do not, uploaded, and listed in the
    /// run's place by a conditional manifest write. The run's packs are
    /// marked retired first (`retired/<name>`), so `gc` keeps them for the
    /// grace period after they leave the manifest, for readers that read
    /// the manifest before.
    pub(crate) fn repack(&self, repo: &Repository) -> Result<Repack> {
        let (mut m, mut version) = self.fresh_manifest()?;
        let sizes: Vec<u64> = m.packs.iter().map(|p| p.bytes).collect();
        let Some(start) = repack_run(&sizes) else {
            return Ok(Repack::Nothing);
        };
        let run: Vec<PackEntry> = m.packs[start..].to_vec();
        let mut tips: Vec<ObjectId> = run.iter().flat_map(|p| p.tips.iter().copied()).collect();
        tips.sort();
        tips.dedup();
        for p in &run {
            for t in &p.tips {
                if !repo.objects().contains(t)? {
                    return Ok(Repack::Skipped(format!(
                        "{} brought commit {t}, which this store lacks: fetch from the remote \
                         here first (or run gc from the store that pushes)",
                        p.name
                    )));
                }
            }
        }
        // The run's indexes first: a run that cannot be checked is not sent.
        let mut run_indexes = Vec::with_capacity(run.len());
        for p in &run {
            let Some(ix) = self.index_of(p)? else {
                return Ok(Repack::Skipped(format!(
                    "{} has no index (pushed by an older Sydra); it is left as it is",
                    p.name
                )));
            };
            run_indexes.push(ix);
        }
        let before: Vec<ObjectId> = m.packs[..start]
            .iter()
            .flat_map(|p| p.tips.iter().copied())
            .collect();
        let have = super::remote_has(repo, before)?;
        let file = super::send_beyond(repo, &tips, &have)?;

        // The check: what a fetcher got from the run, it gets from the new
        // transfer or already has from the packs before the run.
        let new_index = {
            let f = sydra_objects::fs::open_regular(&file.path)
                .map_err(Error::io("open", &file.path))?;
            let map = sydra_objects::map::map_file(&f).map_err(Error::io("map", &file.path))?;
            super::tindex::TransferIndex::build(&map)
                .map_err(|e| self.err("cannot index the merged transfer", e))?
        };
        let new_objects: HashSet<ObjectId> = new_index.objects.iter().map(|(id, _)| *id).collect();
        let new_ranges: HashSet<ObjectId> = new_index.ranges.iter().map(|(id, _)| *id).collect();
        let mut missing_objects: HashSet<ObjectId> = HashSet::new();
        let mut missing_ranges: HashSet<ObjectId> = HashSet::new();
        for ix in &run_indexes {
            missing_objects.extend(
                ix.objects
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|id| !new_objects.contains(id)),
            );
            missing_ranges.extend(
                ix.ranges
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|id| !new_ranges.contains(id)),
            );
        }
        for p in &m.packs[..start] {
            if missing_objects.is_empty() && missing_ranges.is_empty() {
                break;
            }
            let Some(ix) = self.index_of(p)? else {
                break;
            };
            for (id, _) in &ix.objects {
                missing_objects.remove(id);
            }
            for (id, _) in &ix.ranges {
                missing_ranges.remove(id);
            }
        }
        if !missing_objects.is_empty() || !missing_ranges.is_empty() {
            // This store's history is shorter than the remote's (a
            // retention cut here, or packs pushed by another store).
            return Ok(Repack::Skipped(format!(
                "sent again from this store, the packs would lack {} object(s) and {} WAL \
                 range(s) they hold (object {} first; history cut here by retention, or \
                 pushed from another store); nothing was changed",
                missing_objects.len(),
                missing_ranges.len(),
                missing_objects
                    .iter()
                    .chain(&missing_ranges)
                    .next()
                    .map(ObjectId::to_hex)
                    .unwrap_or_default()
            )));
        }

        let mut entry = self.upload(&file)?;
        entry.tips = tips;
        if run.iter().any(|p| p.name == entry.name) {
            return Ok(Repack::Nothing);
        }
        self.retire(&run)?;
        let names: Vec<&str> = run.iter().map(|p| p.name.as_str()).collect();
        let mut tries = 0;
        loop {
            let Some(at) = m
                .packs
                .windows(names.len())
                .position(|w| w.iter().map(|p| p.name.as_str()).eq(names.iter().copied()))
            else {
                return Ok(Repack::Skipped(
                    "the manifest's packs changed while the merged pack was made; it is \
                     left unlisted (gc removes it after the grace period)"
                        .into(),
                ));
            };
            let mut next = m.clone();
            next.packs.splice(at..at + names.len(), [entry.clone()]);
            next.generation = m.generation + 1;
            if self.replace_manifest(&next, version.clone())? {
                // Again, now that they left the manifest: their grace runs
                // from here even if the update took long.
                self.retire(&run)?;
                return Ok(Repack::Merged {
                    packs: run.len(),
                    bytes_before: run.iter().map(|p| p.bytes).sum(),
                    bytes_after: entry.bytes,
                    name: entry.name,
                });
            }
            tries += 1;
            if tries > MANIFEST_RETRIES {
                return Err(self.err(
                    "the manifest",
                    format!("kept changing under {tries} attempts to update it; gc again"),
                ));
            }
            (m, version) = self.fresh_manifest()?;
        }
    }

    /// `sydra gc --remote`: delete the packs the manifest does not list
    /// that are older than `grace` (a push uploads its pack before it
    /// lists it), and leftover probe keys. Returns (listed, deleted,
    /// kept because young).
    pub(crate) fn gc(&self, grace: std::time::Duration) -> Result<(u64, u64, u64)> {
        use std::time::SystemTime;
        let m = self.manifest()?;
        let live: HashSet<&str> = m.packs.iter().map(|p| p.name.as_str()).collect();
        let now = SystemTime::now();
        // Packs a repack retired: their grace runs from the retiring, not
        // from their upload.
        let mut retired: std::collections::HashMap<String, (object_store::path::Path, SystemTime)> =
            std::collections::HashMap::new();
        for meta in self.list("retired")? {
            let name = meta.location.filename().unwrap_or_default().to_owned();
            retired.insert(name, (meta.location, SystemTime::from(meta.last_modified)));
        }
        let mut listed = 0u64;
        let mut doomed = Vec::new();
        let mut young = 0u64;
        // Packs with a file that stays (listed, or unlisted but young).
        let mut kept: HashSet<String> = HashSet::new();
        for dir in ["packs", "probe"] {
            for meta in self.list(dir)? {
                let name = meta.location.filename().unwrap_or_default().to_owned();
                let mut since = SystemTime::from(meta.last_modified);
                let mut pack = None;
                if dir == "packs" {
                    listed += u64::from(name.ends_with(".sytx"));
                    let p = name
                        .strip_suffix(".syti")
                        .map(|stem| format!("{stem}.sytx"))
                        .unwrap_or_else(|| name.clone());
                    if live.contains(p.as_str()) {
                        kept.insert(p);
                        continue;
                    }
                    if let Some((_, at)) = retired.get(&p) {
                        since = since.max(*at);
                    }
                    pack = Some(p);
                }
                if now.duration_since(since).unwrap_or_default() < grace {
                    young += 1;
                    kept.extend(pack);
                } else {
                    doomed.push(meta.location);
                }
            }
        }
        // A marker goes after its pack's files (a gc stopped between the
        // two leaves a marker for the next one).
        for (name, (key, _)) in retired {
            if !kept.contains(&name) {
                doomed.push(key);
            }
        }
        // A push or repack may have listed a pack since the manifest was
        // read: read it again and spare what it lists now.
        if !doomed.is_empty() {
            let now_listed = self.manifest()?;
            let listed_now: HashSet<&str> =
                now_listed.packs.iter().map(|p| p.name.as_str()).collect();
            doomed.retain(|key| {
                let name = key.filename().unwrap_or_default();
                let pack = name
                    .strip_suffix(".syti")
                    .map(|stem| format!("{stem}.sytx"))
                    .unwrap_or_else(|| name.to_owned());
                !listed_now.contains(pack.as_str())
            });
        }
        for key in &doomed {
            self.count(1);
            self.rt
                .block_on(self.store.delete(key))
                .map_err(|e| self.err(&format!("cannot delete {key}"), e))?;
        }
        Ok((listed, doomed.len() as u64, young))
    }

    /// Every key under `PREFIX/dir/` (one LIST request per page).
    fn list(&self, dir: &str) -> Result<Vec<object_store::ObjectMeta>> {
        let prefix = self.key(dir);
        self.count(1);
        self.rt
            .block_on(async {
                let mut out = Vec::new();
                let mut s = self.store.list(Some(&prefix));
                while let Some(x) = s.next().await {
                    out.push(x?);
                }
                Ok::<_, object_store::Error>(out)
            })
            .map_err(|e| self.err(&format!("cannot list {prefix}"), e))
    }
}

/// What [`S3Remote::repack`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repack {
    /// The packs are already in a geometric progression.
    Nothing,
    /// Merged the newest `packs` packs into the new pack `name`.
    Merged {
        /// Packs merged.
        packs: usize,
        /// Their bytes.
        bytes_before: u64,
        /// The merged pack's bytes.
        bytes_after: u64,
        /// The merged pack.
        name: String,
    },
    /// Not done, and why (nothing changed, or a new pack left unlisted).
    Skipped(String),
}

/// The start of the run of newest packs a repack merges, given the packs'
/// sizes in manifest order: walking back from the newest, a pack joins
/// while it is less than twice the run so far. `None` unless that takes
/// two packs or more. Packs that already shrink geometrically towards the
/// newest stay as they are, so each byte is merged O(log n) times.
pub(crate) fn repack_run(sizes: &[u64]) -> Option<usize> {
    let mut total = 0u64;
    let mut start = sizes.len();
    while start > 0 {
        let s = sizes[start - 1];
        if total > 0 && s >= total.saturating_mul(2) {
            break;
        }
        total = total.saturating_add(s);
        start -= 1;
    }
    (sizes.len() - start >= 2).then_some(start)
}

/// The name of a pack's transfer index: `pack-<hex>.sytx` → `pack-<hex>.syti`.
pub(crate) fn index_name(pack: &str) -> String {
    format!("{}.syti", pack.strip_suffix(".sytx").unwrap_or(pack))
}

/// The marker of a named remote whose store passed the probe.
pub(crate) fn probed_marker(repo: &Repository, name: &str) -> std::path::PathBuf {
    super::remotes_dir(repo).join(format!("{name}.probed"))
}

/// Connect and, when the operation `writes` and `marker` records no passed
/// probe for this URL, probe. Reads (fetch, clone) never probe: they write
/// nothing, so they work with read-only credentials.
pub(crate) fn open(url: &str, marker: Option<&Path>, writes: bool) -> Result<S3Remote> {
    let r = S3Remote::connect(url)?;
    if !writes {
        return Ok(r);
    }
    let known = marker
        .and_then(|m| std::fs::read_to_string(m).ok())
        .is_some_and(|s| s.trim() == url);
    if !known {
        r.probe()?;
        if let Some(m) = marker {
            // Best effort: without it the next use probes again.
            let _ = std::fs::write(m, format!("{url}\n"));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_slice(&[n; 32]).unwrap()
    }

    #[test]
    fn a_manifest_reads_back_and_bad_ones_are_refused_naming_what() {
        let m = Manifest {
            generation: 3,
            refs: [("refs/heads/main".to_owned(), id(1))]
                .into_iter()
                .collect(),
            packs: vec![PackEntry {
                name: format!("pack-{}.sytx", "ab".repeat(32)),
                bytes: 42,
                tips: vec![id(1), id(2)],
            }],
        };
        assert_eq!(Manifest::parse(&m.to_json()).unwrap(), m);
        let text = String::from_utf8(m.to_json()).unwrap();
        let bad = [
            (text.replace("sydra-s3 1", "sydra-s3 2"), "format"),
            (text.replace("refs/heads/main", "refs/heads/../x"), "ref"),
            (
                text.replace("\"generation\": 3", "\"generation\": -1"),
                "generation",
            ),
            (text.replace(".sytx", ".pack"), "name"),
            (text.replace("\"bytes\": 42", "\"bytes\": \"42\""), "size"),
            (text.replace(&"01".repeat(32), "zz"), "object id"),
            ("[]".to_owned(), "format"),
            ("{".to_owned(), "JSON"),
        ];
        for (b, says) in bad {
            let e = Manifest::parse(b.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{e:?} should name {says}");
        }
        assert!(!valid_pack_name("pack-../../x.sytx"));
        assert!(!valid_pack_name(&format!("pack-{}.sytx", "g".repeat(64))));
    }
}

#[cfg(test)]
mod repack_tests {
    use super::repack_run;

    #[test]
    fn the_run_is_the_newest_packs_that_do_not_shrink_geometrically() {
        assert_eq!(repack_run(&[]), None);
        assert_eq!(repack_run(&[100]), None);
        // A large pack and small ones after it: the small ones merge.
        assert_eq!(repack_run(&[1000, 10, 10, 10, 10]), Some(1));
        // Already a progression towards the newest: nothing.
        assert_eq!(repack_run(&[1000, 400, 100, 40]), None);
        assert_eq!(repack_run(&[1000, 40, 10]), None);
        // Two equal packs merge; so does a newer pack as large as the rest.
        assert_eq!(repack_run(&[1000, 40, 10, 10]), Some(2));
        assert_eq!(repack_run(&[100, 60]), Some(0));
        assert_eq!(repack_run(&[5, 1000]), Some(0));
        // Merging what a run gives keeps the rule quiet the next time.
        let mut sizes = vec![1 << 20];
        for _ in 0..200 {
            sizes.push(1000);
            if let Some(start) = repack_run(&sizes) {
                let merged: u64 = sizes[start..].iter().sum();
                sizes.truncate(start);
                sizes.push(merged);
            }
            assert_eq!(repack_run(&sizes), None);
            assert!(sizes.len() <= 12, "{sizes:?}");
        }
    }
}

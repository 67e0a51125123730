//! [`S3Storage`]: a repository in a bucket of an S3-compatible object store (AWS S3, Garage,
//! MinIO, Ceph RGW), behind the same [`Storage`] seam as a local directory.
//!
//! How the [`Storage`] contract maps to objects:
//! - a file is an object under `PREFIX/path`; directories do not exist (creating one is a
//!   no-op, listing one lists the keys under `PREFIX/dir/`, one level deep);
//! - [`Storage::write`] is one PUT, atomic by the protocol: an object is visible whole or not
//!   at all. It sends `If-None-Match: *` so a server that honours it keeps an existing object
//!   (names are hashes of contents, so one that ignores it, like Garage, overwrites the same
//!   bytes); [`Storage::replace`] is a plain PUT;
//! - a PUT is durable when the server answers 200 (replicated as the server is configured);
//! - reads are bounded: a whole-object GET checks `Content-Length` against the caller's limit
//!   before reading and never reads more than one byte past it; a ranged GET reads exactly the
//!   range asked for.
//!
//! What object storage lacks (rename, exclusive create, flock) the repository never needed:
//! files are written once under content-derived names, and locks are lock objects written
//! and then listed (see `repo::lock`). Retries, backoff and error causes live in
//! [`client::Client`].

pub mod client;
pub mod config;
pub mod upload;

use std::io::{self, Read};
use std::sync::Arc;

pub use config::{S3Location, Settings};

use crate::error::Result;
use crate::storage::{NewFile, Storage, Traffic, too_large};

use rusty_s3::actions::{DeleteObjectsResponse, ObjectIdentifier};

use self::client::{Client, Kind, refusal};
use self::upload::{Put, Uploads};

/// A repository in a bucket.
pub struct S3Storage {
    client: Arc<Client>,
    uploads: Uploads,
    put: Put,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// Whether `path` is a pack (uploaded in the background, ahead of what depends on it).
fn is_pack(path: &str) -> bool {
    path.starts_with("data/")
}

/// Whether `path` is a lock (written at once, never waiting for uploads).
fn is_lock(path: &str) -> bool {
    path.starts_with("locks/")
}

/// The most keys one LIST page may return; S3 caps it at 1000.
const LIST_PAGE: usize = 1000;

impl S3Storage {
    /// The objects directly under `dir`, with their `LastModified` as the server gave it.
    fn list_objects(&self, dir: &str) -> io::Result<Vec<(String, Option<String>)>> {
        if dir.starts_with("data") {
            // A listing of packs (check, prune) includes every pack this process wrote.
            self.uploads.barrier()?;
        }
        let prefix = format!("{}/", self.key(dir));
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let url = self
                .client
                .list_url(&prefix, token.as_deref(), Some(LIST_PAGE));
            let page = self.client.execute(
                Kind::List,
                &prefix,
                &[],
                |agent| agent.get(&url).call(),
                |_, resp| read_list_page(&self.client, resp),
            )?;
            for object in page.contents {
                if let Some(name) = object.key.strip_prefix(&prefix)
                    && !name.is_empty()
                    && !name.contains('/')
                {
                    names.push((name.to_string(), object.last_modified));
                }
            }
            match page.next_continuation_token {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                _ => break,
            }
        }
        names.sort();
        Ok(names)
    }

    /// Storage for `location`, with settings from the environment.
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for missing credentials or a bad endpoint.
    pub fn open(location: &S3Location) -> Result<S3Storage> {
        let settings = Settings::from_env(location)?;
        let client = Arc::new(Client::new(location, &settings)?);
        let uploader = Arc::clone(&client);
        let put: Put =
            Arc::new(move |path: &str, data: &[u8]| put_object(&uploader, path, data, true));
        Ok(S3Storage {
            uploads: Uploads::new((settings.connections / 2).max(1), Arc::clone(&put)),
            client,
            put,
        })
    }

    fn key(&self, path: &str) -> String {
        self.client.location().key(path)
    }

    /// Whether the repository's prefix holds no object at all (so `init` may use it).
    ///
    /// # Errors
    /// As a LIST fails (missing bucket, denied access…).
    pub fn is_empty(&self) -> io::Result<bool> {
        let prefix = match self.key("") {
            p if p.is_empty() => p,
            p => format!("{p}/"),
        };
        let url = self.client.list_url(&prefix, None, Some(1));
        self.client.execute(
            Kind::List,
            &prefix,
            &[],
            |agent| agent.get(&url).call(),
            |_, resp| {
                let page = read_list_page(&self.client, resp)?;
                Ok(page.contents.is_empty() && page.common_prefixes.is_empty())
            },
        )
    }

    /// One ranged GET of up to `buf.len()` bytes at `offset`; fewer where the object ends.
    fn get_range(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let key = self.key(path);
        let url = self.client.object_url(Kind::Get, &key);
        let last = offset + buf.len() as u64 - 1;
        let range = format!("bytes={offset}-{last}");
        self.client.execute(
            Kind::Get,
            &key,
            // 416: the range starts at or past the end.
            &[416],
            |agent| agent.get(&url).header("Range", &range).call(),
            |status, resp| {
                if status == 416 {
                    return Err(refusal(
                        io::ErrorKind::UnexpectedEof,
                        format!("{path}: read at {offset}, past its end"),
                    ));
                }
                if status != 200 && content_length(resp).is_some_and(|n| n > buf.len() as u64) {
                    return Err(refusal(
                        io::ErrorKind::InvalidData,
                        format!("range {range} of {path} answered with more bytes"),
                    ));
                }
                let mut reader = resp.body_mut().as_reader();
                if status == 200 {
                    // The server ignored the range and sent the whole object: skip to it.
                    io::copy(&mut (&mut reader).take(offset), &mut io::sink())?;
                }
                let mut got = 0;
                while got < buf.len() {
                    match reader.read(&mut buf[got..])? {
                        0 => break,
                        n => got += n,
                    }
                }
                self.client.count_down(got as u64);
                if got == 0 {
                    return Err(refusal(
                        io::ErrorKind::UnexpectedEof,
                        format!("{path}: read at {offset}, past its end"),
                    ));
                }
                Ok(got)
            },
        )
    }
}

/// One PUT of `data` as `path` (with `If-None-Match: *` when `if_absent`).
fn put_object(client: &Client, path: &str, data: &[u8], if_absent: bool) -> io::Result<()> {
    let key = client.location().key(path);
    let md5 = client::content_md5(data);
    let url = client.put_url(&key, &md5);
    client.execute(
        Kind::Put,
        &key,
        // 412: the object exists and the server kept it, as asked.
        &[412],
        |agent| {
            let mut req = agent.put(&url).header(client::CONTENT_MD5, &md5);
            if if_absent {
                req = req.header("If-None-Match", "*");
            }
            req.send(data)
        },
        |status, _| {
            if status != 412 {
                client.count_up(data.len() as u64);
            }
            Ok(())
        },
    )
}

/// Keys one DeleteObjects request may name (the protocol's limit).
const DELETES_PER_REQUEST: usize = 1000;

/// One DeleteObjects request for `keys` (quiet: the server answers with the keys it could not
/// delete, and a key that does not exist counts as deleted). The body's MD5 is sent and signed,
/// as the protocol requires.
fn delete_objects(client: &Client, keys: &[String]) -> io::Result<()> {
    let Some(first) = keys.first() else {
        return Ok(());
    };
    let objects: Vec<ObjectIdentifier> = keys.iter().cloned().map(ObjectIdentifier::new).collect();
    let (url, body, md5) = client.delete_objects_request(&objects);
    client.execute(
        Kind::Delete,
        first,
        &[],
        |agent| {
            agent
                .post(&url)
                .header(client::CONTENT_MD5, &md5)
                .send(body.as_bytes())
        },
        |_, resp| {
            let text = resp
                .body_mut()
                .with_config()
                .limit(16 << 20)
                .read_to_string()
                .map_err(io::Error::other)?;
            client.count_down(text.len() as u64);
            let answer = DeleteObjectsResponse::parse(&text).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a DeleteObjects answer that is not one: {e}"),
                )
            })?;
            match answer.errors.first() {
                None => Ok(()),
                Some(e) => Err(io::Error::other(format!(
                    "DeleteObjects could not delete {} of {} objects, the first {}: {} ({})",
                    answer.errors.len(),
                    keys.len(),
                    e.key,
                    e.code,
                    e.message
                ))),
            }
        },
    )
}

/// A pack being written: collected in memory, queued for upload at commit.
struct S3NewFile<'a> {
    storage: &'a S3Storage,
    data: Vec<u8>,
}

impl NewFile for S3NewFile<'_> {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn commit(self: Box<Self>, path: &str) -> io::Result<()> {
        let storage = self.storage;
        storage.uploads.submit(path, self.data, &storage.put)
    }
}

/// Reads and parses one ListObjectsV2 page (bounded: a page of 1000 keys is well under 1 MiB).
fn read_list_page(
    client: &Client,
    resp: &mut client::Response,
) -> io::Result<rusty_s3::actions::ListObjectsV2Response> {
    const MAX_PAGE: u64 = 8 << 20;
    let mut body = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(MAX_PAGE + 1)
        .read_to_end(&mut body)?;
    client.count_down(body.len() as u64);
    if body.len() as u64 > MAX_PAGE {
        return Err(refusal(
            io::ErrorKind::InvalidData,
            format!("a LIST page of more than {MAX_PAGE} bytes"),
        ));
    }
    let text = String::from_utf8_lossy(&body);
    rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| {
        refusal(
            io::ErrorKind::InvalidData,
            format!("unreadable LIST response: {e}"),
        )
    })
}

/// The `Content-Length` of a response, if given.
fn content_length(resp: &client::Response) -> Option<u64> {
    resp.headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl Storage for S3Storage {
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        self.uploads.wait_for(path);
        let key = self.key(path);
        let url = self.client.object_url(Kind::Get, &key);
        self.client.execute(
            Kind::Get,
            &key,
            &[],
            |agent| agent.get(&url).call(),
            |_, resp| {
                if let Some(len) = content_length(resp)
                    && len > limit
                {
                    return Err(refusal(
                        io::ErrorKind::FileTooLarge,
                        format!("{}", too_large(len, limit)),
                    ));
                }
                let mut buf = Vec::new();
                resp.body_mut()
                    .as_reader()
                    .take(limit.saturating_add(1))
                    .read_to_end(&mut buf)?;
                self.client.count_down(buf.len() as u64);
                if buf.len() as u64 > limit {
                    return Err(refusal(
                        io::ErrorKind::FileTooLarge,
                        format!("{}", too_large(buf.len() as u64, limit)),
                    ));
                }
                Ok(buf)
            },
        )
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.uploads.wait_for(path);
        let n = self.get_range(path, offset, buf)?;
        if n < buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path} ends before byte {}", offset + buf.len() as u64),
            ));
        }
        Ok(())
    }

    fn read_up_to(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.uploads.wait_for(path);
        self.get_range(path, offset, buf)
    }

    fn len(&self, path: &str) -> io::Result<u64> {
        self.uploads.wait_for(path);
        let key = self.key(path);
        let url = self.client.object_url(Kind::Head, &key);
        self.client.execute(
            Kind::Head,
            &key,
            &[],
            |agent| agent.head(&url).call(),
            |_, resp| {
                content_length(resp).ok_or_else(|| {
                    refusal(
                        io::ErrorKind::InvalidData,
                        format!("no Content-Length for {key}"),
                    )
                })
            },
        )
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        if !is_pack(path) && !is_lock(path) {
            self.uploads.barrier()?;
        }
        put_object(&self.client, path, data, true)
    }

    fn replace(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.uploads.barrier()?;
        put_object(&self.client, path, data, false)
    }

    fn create_new<'a>(&'a self, _dir: &str) -> io::Result<Box<dyn NewFile + 'a>> {
        Ok(Box::new(S3NewFile {
            storage: self,
            data: Vec::new(),
        }))
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        Ok(self
            .list_objects(dir)?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    fn list_times(&self, dir: &str) -> io::Result<Vec<(String, i64)>> {
        self.list_objects(dir)?
            .into_iter()
            .map(|(name, modified)| {
                let t = modified
                    .as_deref()
                    .and_then(|m| m.parse::<jiff::Timestamp>().ok())
                    .ok_or_else(|| {
                        refusal(
                            io::ErrorKind::InvalidData,
                            format!("the LIST answer gives no usable LastModified for {name}"),
                        )
                    })?;
                Ok((name, i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)))
            })
            .collect()
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        if !is_lock(path) {
            self.uploads.barrier()?;
        }
        let key = self.key(path);
        let url = self.client.object_url(Kind::Delete, &key);
        self.client.execute(
            Kind::Delete,
            &key,
            &[],
            |agent| agent.delete(&url).call(),
            |_, _| Ok(()),
        )
    }

    fn remove_all(&self, paths: &[String]) -> io::Result<()> {
        if paths.iter().any(|p| !is_lock(p)) {
            self.uploads.barrier()?;
        }
        let keys: Vec<String> = paths.iter().map(|p| self.key(p)).collect();
        keys.chunks(DELETES_PER_REQUEST)
            .try_for_each(|batch| delete_objects(&self.client, batch))
    }

    fn create_dir(&self, _dir: &str) -> io::Result<()> {
        Ok(())
    }

    fn traffic(&self) -> Option<Traffic> {
        Some(self.client.traffic())
    }
}

//! One S3 request at a time, done right: signed by `rusty-s3` (presigned URLs, so no request
//! signing is written here), sent by `ureq` over a pool of keep-alive connections, retried with
//! exponential backoff and full jitter on what a network or a busy server does (resets,
//! timeouts, stalls, 5xx, `SlowDown`, 429), and turned into an `io::Error` that names the cause
//! on what retrying cannot fix (403, a missing bucket, a wrong region, a bad endpoint).
//!
//! Every request is counted in [`Traffic`], so a command can report what it cost.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// The header that carries the MD5 of a PUT's body (the name as signed: lowercase).
pub const CONTENT_MD5: &str = "content-md5";

/// The `Content-MD5` value of `body`: its MD5, base64.
#[must_use]
pub fn content_md5(body: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

use crate::error::{Error, Result, StorageUnavailable};
use crate::storage::Traffic;

use super::config::{Addressing, S3Location, Settings};

/// How long a presigned URL stays valid (a request is sent right after signing).
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// First backoff; doubled per attempt up to [`MAX_BACKOFF`], with full jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest single wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The most of an error response body read to explain it.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// The kinds of request, as counted.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// PUT.
    Put,
    /// LIST (a GET on the bucket).
    List,
    /// DELETE.
    Delete,
}

impl Kind {
    /// The HTTP method, for messages.
    fn verb(self) -> &'static str {
        match self {
            Kind::Get => "GET",
            Kind::Head => "HEAD",
            Kind::Put => "PUT",
            Kind::List => "LIST",
            Kind::Delete => "DELETE",
        }
    }
}

/// Counters behind [`Traffic`].
#[derive(Debug, Default)]
struct Counters {
    by_kind: [AtomicU64; 5],
    retries: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
}

/// What became of one attempt.
enum Attempt<T> {
    Done(T),
    /// Worth another try.
    Transient(io::Error),
}

/// A connection to one bucket.
pub struct Client {
    agent: ureq::Agent,
    bucket: Bucket,
    credentials: Credentials,
    location: S3Location,
    region: String,
    retries: u32,
    counters: Counters,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A response to hand to the caller's handler.
pub type Response = ureq::http::Response<ureq::Body>;

impl Client {
    /// A client for `location` with `settings`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the endpoint cannot be used.
    pub fn new(location: &S3Location, settings: &Settings) -> Result<Client> {
        let endpoint = location.endpoint.parse().map_err(|e| {
            Error::InvalidInput(format!("bad S3 endpoint {}: {e}", location.endpoint))
        })?;
        let style = match settings.addressing {
            Addressing::Path => UrlStyle::Path,
            Addressing::VirtualHost => UrlStyle::VirtualHost,
        };
        let bucket = Bucket::new(
            endpoint,
            style,
            location.bucket.clone(),
            settings.region.clone(),
        )
        .map_err(|e| Error::InvalidInput(format!("bad S3 location s3:{location}: {e}")))?;
        let credentials = match &settings.secrets.token {
            Some(t) => Credentials::new_with_token(
                settings.secrets.key.clone(),
                settings.secrets.secret.as_str(),
                t.clone(),
            ),
            None => Credentials::new(
                settings.secrets.key.clone(),
                settings.secrets.secret.as_str(),
            ),
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(settings.connections)
            .max_idle_connections_per_host(settings.connections)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_read(Some(settings.stall_timeout))
            .timeout_per_write(Some(settings.stall_timeout))
            .user_agent(concat!("chronofs/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            bucket,
            credentials,
            location: location.clone(),
            region: settings.region.clone(),
            retries: settings.retries,
            counters: Counters::default(),
        })
    }

    /// The location served.
    #[must_use]
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// What was sent so far.
    pub fn traffic(&self) -> Traffic {
        let c = &self.counters;
        let n = |i: usize| c.by_kind[i].load(Ordering::Relaxed);
        Traffic {
            get: n(0),
            head: n(1),
            put: n(2),
            list: n(3),
            delete: n(4),
            retries: c.retries.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
        }
    }

    /// Counts bytes received (by the handlers that read bodies).
    pub fn count_down(&self, n: u64) {
        self.counters.bytes_down.fetch_add(n, Ordering::Relaxed);
    }

    /// A signed URL for an object request.
    pub fn object_url(&self, kind: Kind, key: &str) -> String {
        let creds = Some(&self.credentials);
        match kind {
            Kind::Get => self.bucket.get_object(creds, key).sign(SIGNATURE_LIFETIME),
            Kind::Head => self.bucket.head_object(creds, key).sign(SIGNATURE_LIFETIME),
            Kind::Put => self.bucket.put_object(creds, key).sign(SIGNATURE_LIFETIME),
            Kind::Delete => self
                .bucket
                .delete_object(creds, key)
                .sign(SIGNATURE_LIFETIME),
            Kind::List => return self.list_url(key, None, None),
        }
        .to_string()
    }

    /// A signed URL for a PUT of `key` whose body has the MD5 `content_md5` (base64). The
    /// header is signed too: the request must carry it, and the server refuses a body that
    /// does not match it (`BadDigest`), so a body altered on the way is never stored.
    pub fn put_url(&self, key: &str, content_md5: &str) -> String {
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        action
            .headers_mut()
            .insert(CONTENT_MD5, content_md5.to_string());
        action.sign(SIGNATURE_LIFETIME).to_string()
    }

    /// A signed DeleteObjects request (quiet) for `objects`: its URL, its body and the body's
    /// MD5 (base64), which the signature covers.
    pub fn delete_objects_request(
        &self,
        objects: &[rusty_s3::actions::ObjectIdentifier],
    ) -> (String, String, String) {
        let creds = Some(&self.credentials);
        let mut unsigned = self.bucket.delete_objects(creds, objects.iter());
        unsigned.set_quiet(true);
        let (body, md5) = unsigned.body_with_md5();
        let mut action = self.bucket.delete_objects(creds, objects.iter());
        action.set_quiet(true);
        action.headers_mut().insert(CONTENT_MD5, md5.clone());
        (action.sign(SIGNATURE_LIFETIME).to_string(), body, md5)
    }

    /// A signed ListObjectsV2 URL for keys under `prefix`, grouped at `/` when `delimited`.
    pub fn list_url(&self, prefix: &str, token: Option<&str>, max_keys: Option<usize>) -> String {
        let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
        action.with_prefix(prefix);
        action.with_delimiter("/");
        if let Some(t) = token {
            action.with_continuation_token(t);
        }
        if let Some(m) = max_keys {
            action.with_max_keys(m);
        }
        action.sign(SIGNATURE_LIFETIME).to_string()
    }

    /// Sends a request until it succeeds, fails for good, or runs out of retries.
    ///
    /// `send` makes one attempt (signing afresh each time); `accept` says which statuses
    /// besides 2xx go to `handle`; `handle` reads the response (an I/O error while it reads
    /// the body counts as transient: the connection broke).
    ///
    /// # Errors
    /// An `io::Error` naming the request, the key and the cause.
    pub fn execute<T>(
        &self,
        kind: Kind,
        key: &str,
        accept: &[u16],
        mut send: impl FnMut(&ureq::Agent) -> std::result::Result<Response, ureq::Error>,
        mut handle: impl FnMut(u16, &mut Response) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut attempt = 0u32;
        loop {
            self.counters.by_kind[kind as usize].fetch_add(1, Ordering::Relaxed);
            let outcome = match send(&self.agent) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if (200..300).contains(&status) || accept.contains(&status) {
                        match handle(status, &mut resp) {
                            Ok(v) => Attempt::Done(v),
                            Err(e) if transient_io(&e) => Attempt::Transient(e),
                            Err(e) => return Err(e),
                        }
                    } else {
                        self.failed_status(kind, key, status, &mut resp)?
                    }
                }
                Err(e) => self.failed_transport(e)?,
            };
            match outcome {
                Attempt::Done(v) => return Ok(v),
                Attempt::Transient(_) if attempt < self.retries => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                Attempt::Transient(e) => {
                    return Err(unavailable(
                        e.kind(),
                        format!(
                            "{} {} failed {} times, last: {e}",
                            kind.verb(),
                            self.describe(key),
                            attempt + 1
                        ),
                    ));
                }
            }
        }
    }

    /// "s3:http://host/bucket/prefix/key".
    fn describe(&self, key: &str) -> String {
        format!(
            "s3:{}/{}/{key}",
            self.location.endpoint, self.location.bucket
        )
    }

    /// Classifies an HTTP error status: transient ones are retried, the rest explained.
    fn failed_status<T>(
        &self,
        kind: Kind,
        key: &str,
        status: u16,
        resp: &mut Response,
    ) -> io::Result<Attempt<T>> {
        let mut body = Vec::new();
        // Bounded: a hostile or broken server cannot make us read without end.
        let _ = resp
            .body_mut()
            .as_reader()
            .take(MAX_ERROR_BODY)
            .read_to_end(&mut body);
        let body = String::from_utf8_lossy(&body);
        let code = xml_field(&body, "Code").unwrap_or_default();
        let message = xml_field(&body, "Message").unwrap_or_default();
        let detail = match (code.is_empty(), message.is_empty()) {
            (true, _) => format!("HTTP {status}"),
            (false, true) => format!("HTTP {status} {code}"),
            (false, false) => format!("HTTP {status} {code}: {message}"),
        };
        // A body that does not match its Content-MD5 was altered on the way: send it again.
        if matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
            || matches!(code.as_str(), "SlowDown" | "BadDigest" | "InvalidDigest")
        {
            return Ok(Attempt::Transient(io::Error::other(detail)));
        }
        let loc = &self.location;
        let (errkind, text) = match (status, code.as_str()) {
            (404, "NoSuchBucket") => (
                io::ErrorKind::Other,
                format!(
                    "bucket {} does not exist on {} (create it first)",
                    loc.bucket, loc.endpoint
                ),
            ),
            (404, _) if matches!(kind, Kind::List) => (
                io::ErrorKind::Other,
                format!(
                    "listing bucket {} on {}: {detail}",
                    loc.bucket, loc.endpoint
                ),
            ),
            (404, _) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: not found", self.describe(key)),
                ));
            }
            (403, _) => (
                io::ErrorKind::PermissionDenied,
                format!(
                    "access denied to bucket {} on {} ({detail}); check AWS_ACCESS_KEY_ID, \
                     AWS_SECRET_ACCESS_KEY and the key's permissions on the bucket",
                    loc.bucket, loc.endpoint
                ),
            ),
            (400 | 301, "AuthorizationHeaderMalformed" | "InvalidRegion" | "PermanentRedirect")
            | (301, _) => (
                io::ErrorKind::InvalidInput,
                format!(
                    "bucket {} on {} is not in region {} ({detail}); set AWS_DEFAULT_REGION",
                    loc.bucket, loc.endpoint, self.region
                ),
            ),
            (416, _) => (
                io::ErrorKind::UnexpectedEof,
                format!("{}: read past the end ({detail})", self.describe(key)),
            ),
            _ => (
                io::ErrorKind::Other,
                format!("{} {}: {detail}", kind.verb(), self.describe(key)),
            ),
        };
        Err(unavailable(errkind, text))
    }

    /// Classifies a transport failure: connection problems are retried; a URL or protocol
    /// error is not.
    fn failed_transport<T>(&self, e: ureq::Error) -> io::Result<Attempt<T>> {
        let endpoint = &self.location.endpoint;
        match e {
            ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
                Err(unavailable(
                    io::ErrorKind::InvalidInput,
                    format!("S3 endpoint {endpoint}: {e}"),
                ))
            }
            ureq::Error::HostNotFound => Ok(Attempt::Transient(io::Error::new(
                io::ErrorKind::NotFound,
                format!("cannot resolve the S3 endpoint {endpoint}"),
            ))),
            ureq::Error::ConnectionFailed => Ok(Attempt::Transient(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("cannot connect to the S3 endpoint {endpoint}"),
            ))),
            ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
                Ok(Attempt::Transient(io::Error::new(
                    io.kind(),
                    format!("cannot connect to the S3 endpoint {endpoint}: {io}"),
                )))
            }
            ureq::Error::Io(io) => Ok(Attempt::Transient(io::Error::new(
                io.kind(),
                format!("connection to {endpoint}: {io}"),
            ))),
            other => Ok(Attempt::Transient(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("talking to {endpoint}: {other}"),
            ))),
        }
    }

    /// Counts bytes sent.
    pub fn count_up(&self, n: u64) {
        self.counters.bytes_up.fetch_add(n, Ordering::Relaxed);
    }
}

/// A failure of the store that retrying did not or cannot fix.
fn unavailable(kind: io::ErrorKind, message: String) -> io::Error {
    io::Error::new(kind, StorageUnavailable(message))
}

/// Whether an I/O error while reading a response body means the connection broke (worth a
/// retry) rather than a refusal of the data.
fn transient_io(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::TimedOut
            | K::UnexpectedEof
            | K::Interrupted
            | K::WouldBlock
            | K::Other
    ) && !e.get_ref().is_some_and(|inner| inner.is::<Refusal>())
}

/// A handler's verdict on a response that retrying cannot change (a size check failed, say).
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// An error for a handler to return that is not retried.
pub fn refusal(kind: io::ErrorKind, message: impl Into<String>) -> io::Error {
    io::Error::new(kind, Refusal(message.into()))
}

/// The wait before attempt `attempt + 1`: exponential with full jitter.
fn backoff(attempt: u32) -> Duration {
    let cap = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    let mut r = [0u8; 8];
    let _ = getrandom::fill(&mut r);
    let frac = f64::from(u32::from_le_bytes([r[0], r[1], r[2], r[3]])) / f64::from(u32::MAX);
    cap.mul_f64(0.5 + frac / 2.0)
}

/// The text of the first `<name>…</name>` in an XML document (S3 error bodies).
#[must_use]
pub fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(xml[start..start + len].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= FIRST_BACKOFF);
        assert!(backoff(0) >= FIRST_BACKOFF / 2);
        assert!(backoff(20) <= MAX_BACKOFF);
        assert!(backoff(20) >= MAX_BACKOFF / 2);
    }

    #[test]
    fn reads_error_codes() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>";
        assert_eq!(xml_field(body, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(xml_field(body, "Message").as_deref(), Some("gone"));
        assert_eq!(xml_field(body, "Nope"), None);
        assert_eq!(xml_field("<Code>unclosed", "Code"), None);
    }

    #[test]
    fn content_md5_is_the_base64_of_the_md5() {
        // RFC 1321's test vectors, base64.
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(content_md5(b"abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }

    #[test]
    fn a_put_url_signs_its_content_md5() {
        use crate::storage::s3::config::{Addressing, S3Location, Secrets, Settings};
        let location = S3Location::parse("http://127.0.0.1:9/b/p").unwrap();
        let settings = Settings {
            secrets: Secrets {
                key: "k".into(),
                secret: zeroize::Zeroizing::new("s".into()),
                token: None,
            },
            region: "garage".into(),
            addressing: Addressing::Path,
            connections: 1,
            retries: 0,
            stall_timeout: Duration::from_secs(1),
        };
        let client = Client::new(&location, &settings).unwrap();
        let url = client.put_url("p/k", &content_md5(b"abc"));
        assert!(
            url.contains("X-Amz-SignedHeaders=content-md5%3Bhost")
                || url.contains("X-Amz-SignedHeaders=content-md5;host"),
            "{url}"
        );
    }
}

//! What an S3 location names and how to reach it: the endpoint, bucket and prefix parsed from
//! `http[s]://HOST[:PORT]/BUCKET[/PREFIX]`, and the settings read from the environment
//! (credentials, region, addressing style, connections, retries, timeouts).
//!
//! Credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with
//! `AWS_SESSION_TOKEN` if set), else from the profile `AWS_PROFILE` (default `default`) of the
//! shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`). The
//! region comes from `AWS_DEFAULT_REGION` or `AWS_REGION`, else the profile's `region` in
//! `~/.aws/config` (`AWS_CONFIG_FILE`), else `us-east-1`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// A bucket and prefix on an S3-compatible endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// `http://host:port` or `https://host`.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// Key prefix of every repository object, without slashes at either end (may be empty).
    pub prefix: String,
}

impl S3Location {
    /// Parses `http[s]://HOST[:PORT]/BUCKET[/PREFIX]`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming what is wrong.
    pub fn parse(text: &str) -> Result<S3Location> {
        let bad = |why: &str| {
            Error::InvalidInput(format!(
                "bad repository location s3:{text}: {why} (expected s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX])"
            ))
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("no http:// or https://"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let (host, path) = rest.split_once('/').ok_or_else(|| bad("no bucket"))?;
        if host.is_empty() || host.contains(['@', '?', '#', ' ']) {
            return Err(bad("bad host"));
        }
        let path = path.trim_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let bucket_ok = !bucket.is_empty()
            && bucket.len() <= 63
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(bad(
                "the bucket name must be 1 to 63 lowercase letters, digits, '-' or '.'",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..")
            || prefix.contains("//")
            || prefix.contains(['?', '#'])
        {
            return Err(bad("bad prefix"));
        }
        Ok(S3Location {
            endpoint: format!("{scheme}://{host}"),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The object key of a repository path.
    #[must_use]
    pub fn key(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_string()
        } else if path.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}/{path}", self.prefix)
        }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.endpoint, self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// Path-style (`http://host/bucket/key`) or virtual-host (`http://bucket.host/key`) requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// The bucket in the path: what self-hosted servers (Garage, MinIO, Ceph) answer.
    Path,
    /// The bucket in the host name: what AWS prefers.
    VirtualHost,
}

/// Access key, secret and optional session token.
pub struct Secrets {
    /// Access key id.
    pub key: String,
    /// Secret access key.
    pub secret: zeroize::Zeroizing<String>,
    /// Session token (temporary credentials).
    pub token: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// How to talk to the server.
#[derive(Debug)]
pub struct Settings {
    /// Credentials.
    pub secrets: Secrets,
    /// Region used in signatures.
    pub region: String,
    /// Addressing style.
    pub addressing: Addressing,
    /// Connections kept open (`CHRONOFS_S3_CONNECTIONS`, default 8); half of them upload
    /// packs in parallel.
    pub connections: usize,
    /// Retries of a failed request (`CHRONOFS_S3_RETRIES`, default 8).
    pub retries: u32,
    /// A connection idle this long mid-request is abandoned and retried
    /// (`CHRONOFS_S3_TIMEOUT` in seconds, default 60).
    pub stall_timeout: Duration,
}

/// Reads an environment variable, empty counting as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads a numeric setting from the environment.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match env(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| Error::InvalidInput(format!("{name}={v} is not a valid number"))),
    }
}

impl Settings {
    /// Settings for `location` from the environment and the AWS profile files.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when no credentials are found or a setting is malformed.
    pub fn from_env(location: &S3Location) -> Result<Settings> {
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let home = env("HOME").map(PathBuf::from);
        let file = |var: &str, default: &str| {
            env(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(default)))
        };
        let secrets = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => Secrets {
                key,
                secret: zeroize::Zeroizing::new(secret),
                token: env("AWS_SESSION_TOKEN"),
            },
            _ => {
                let path = file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
                let section = path
                    .as_ref()
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .map(|text| ini_section(&text, &profile))
                    .unwrap_or_default();
                let get = |k: &str| {
                    section
                        .iter()
                        .find(|(name, _)| name == k)
                        .map(|(_, v)| v.clone())
                };
                match (get("aws_access_key_id"), get("aws_secret_access_key")) {
                    (Some(key), Some(secret)) => Secrets {
                        key,
                        secret: zeroize::Zeroizing::new(secret),
                        token: get("aws_session_token"),
                    },
                    _ => {
                        return Err(Error::InvalidInput(format!(
                            "no S3 credentials for s3:{location}: set AWS_ACCESS_KEY_ID and \
                             AWS_SECRET_ACCESS_KEY, or add profile [{profile}] to {}",
                            path.map_or_else(
                                || "~/.aws/credentials".into(),
                                |p| p.display().to_string()
                            )
                        )));
                    }
                }
            }
        };
        let region = env("AWS_DEFAULT_REGION")
            .or_else(|| env("AWS_REGION"))
            .or_else(|| {
                let text = std::fs::read_to_string(file("AWS_CONFIG_FILE", ".aws/config")?).ok()?;
                let name = if profile == "default" {
                    profile.clone()
                } else {
                    format!("profile {profile}")
                };
                ini_section(&text, &name)
                    .into_iter()
                    .find(|(k, _)| k == "region")
                    .map(|(_, v)| v)
            })
            .unwrap_or_else(|| "us-east-1".into());
        let addressing = match env("CHRONOFS_S3_ADDRESSING").as_deref() {
            Some("path") => Addressing::Path,
            Some("virtual") | Some("virtual-host") => Addressing::VirtualHost,
            Some(other) => {
                return Err(Error::InvalidInput(format!(
                    "CHRONOFS_S3_ADDRESSING={other}: expected path or virtual"
                )));
            }
            // AWS wants virtual-host requests; self-hosted servers answer path-style ones.
            None if location.endpoint.ends_with(".amazonaws.com") => Addressing::VirtualHost,
            None => Addressing::Path,
        };
        let connections = env_number("CHRONOFS_S3_CONNECTIONS", 8usize)?.clamp(1, 64);
        let retries = env_number("CHRONOFS_S3_RETRIES", 8u32)?.min(30);
        let stall_timeout = Duration::from_secs(env_number("CHRONOFS_S3_TIMEOUT", 60u64)?.max(1));
        Ok(Settings {
            secrets,
            region,
            addressing,
            connections,
            retries,
            stall_timeout,
        })
    }
}

/// The `key = value` pairs of section `[name]` of an INI file (the AWS profile format).
fn ini_section(text: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut pairs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == name;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            pairs.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let l = S3Location::parse("https://s3.example.com:9000/bkt/a/b/").unwrap();
        assert_eq!(l.endpoint, "https://s3.example.com:9000");
        assert_eq!(l.bucket, "bkt");
        assert_eq!(l.prefix, "a/b");
        assert_eq!(l.key("config"), "a/b/config");
        assert_eq!(l.to_string(), "https://s3.example.com:9000/bkt/a/b");
        let bare = S3Location::parse("http://h/b").unwrap();
        assert_eq!(bare.key("index/x"), "index/x");
        for bad in [
            "h/b",
            "ftp://h/b",
            "http:///b",
            "http://h/",
            "http://h/B",
            "http://h/b/../x",
            "http://u@h/b",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_profile_sections() {
        let text =
            "[default]\naws_access_key_id = A\n# c\n[other]\naws_access_key_id=B\nregion = r\n";
        assert_eq!(
            ini_section(text, "default"),
            vec![("aws_access_key_id".into(), "A".into())]
        );
        assert_eq!(ini_section(text, "other").len(), 2);
        assert!(ini_section(text, "none").is_empty());
    }
}

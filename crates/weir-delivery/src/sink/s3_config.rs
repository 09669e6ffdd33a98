//! `[deliveries.s3]`: where an S3 sink writes and how long it retries, with Firehose's ranges.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::ConfigError;

/// Firehose's default S3 retry duration.
pub const DEFAULT_RETRY_DURATION: Duration = Duration::from_secs(300);
/// Firehose's longest S3 retry duration (the shortest is 0: no retries inside a put).
pub const MAX_RETRY_DURATION: Duration = Duration::from_secs(7200);
/// S3 keys are at most 1,024 bytes; Firehose's evaluated prefixes at most 512.
const MAX_PREFIX_BYTES: usize = 512;

/// An S3 (or S3-compatible) destination, as written in `weir.toml`:
///
/// ```toml
/// [deliveries.s3]
/// bucket = "my-bucket"
/// prefix = "weir"                      # objects land under s3://my-bucket/weir/<key>
/// region = "eu-west-1"                 # default: AWS_REGION, AWS_DEFAULT_REGION, the profile, us-east-1
/// endpoint = "http://127.0.0.1:9000"   # S3-compatible stores; default: AWS
/// path_style = true                    # http://host/bucket/key instead of http://bucket.host/key
/// retry_duration = "300s"              # Firehose's range: 0s to 7200s
/// ```
///
/// Credentials come from the standard AWS chain (environment, `AWS_PROFILE` in the shared files,
/// web identity, ECS, IMDS); `profile` or static keys here override it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket, as `/`-separated segments; object keys go below it.
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub region: Option<String>,
    /// Base URL of an S3-compatible store (`http://127.0.0.1:9000`); AWS when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Address objects as `endpoint/bucket/key` (most S3-compatible stores) instead of virtual hosts.
    #[serde(default)]
    pub path_style: bool,
    /// Allow an `http://` endpoint beyond loopback (loopback endpoints may always use http).
    #[serde(default)]
    pub allow_http: bool,
    /// How long one put retries transient failures (5xx, SlowDown, timeouts, refused connections)
    /// before it fails back to delivery, which keeps the records in the stream and tries again.
    #[serde(default = "default_retry_duration", deserialize_with = "humantime_duration")]
    pub retry_duration: Duration,
    /// A profile of the shared AWS files, instead of `AWS_PROFILE`.
    #[serde(default)]
    pub profile: Option<String>,
    /// Static keys, for local S3-compatible stores; prefer the AWS chain for real accounts.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
}

fn default_retry_duration() -> Duration {
    DEFAULT_RETRY_DURATION
}

/// Durations written as `300s`, `2h`, `250ms`, as everywhere in `weir.toml`.
fn humantime_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
}

impl S3Config {
    /// A config for `bucket` with every other field at its default.
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: String::new(),
            region: None,
            endpoint: None,
            path_style: false,
            allow_http: false,
            retry_duration: DEFAULT_RETRY_DURATION,
            profile: None,
            access_key_id: None,
            secret_access_key: None,
        }
    }

    /// `s3://bucket/prefix`, for people.
    pub fn location(&self) -> String {
        match self.prefix.trim_end_matches('/') {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        }
    }

    /// Checks every value, naming the key and the allowed range on error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, message: String| Err(ConfigError { key, message });
        if !valid_bucket(&self.bucket) {
            return err(
                "bucket",
                format!(
                    "{:?}: use 3 to 63 of a-z 0-9 . -, starting and ending with a letter or digit",
                    self.bucket
                ),
            );
        }
        if let Err(why) = check_prefix(&self.prefix) {
            return err("prefix", format!("{:?}: {why}", self.prefix));
        }
        if let Some(region) = &self.region {
            let ok = !region.is_empty() && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return err("region", format!("{region:?}: use a region name such as `us-east-1`"));
            }
        }
        if let Some(endpoint) = &self.endpoint
            && let Err(why) = self.check_endpoint(endpoint)
        {
            return err("endpoint", format!("{endpoint:?}: {why}"));
        }
        if self.retry_duration > MAX_RETRY_DURATION {
            return err(
                "retry_duration",
                format!(
                    "{} is outside 0s..=7200s",
                    humantime::format_duration(self.retry_duration)
                ),
            );
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), None) => return err("secret_access_key", "required with `access_key_id`".into()),
            (None, Some(_)) => return err("access_key_id", "required with `secret_access_key`".into()),
            (Some(_), Some(_)) if self.profile.is_some() => {
                return err("profile", "set either `profile` or static keys, not both".into());
            }
            _ => {}
        }
        if self.profile.as_deref().is_some_and(str::is_empty) {
            return err("profile", "must not be empty".into());
        }
        Ok(())
    }

    fn check_endpoint(&self, endpoint: &str) -> Result<(), String> {
        let (scheme, rest) = endpoint
            .split_once("://")
            .ok_or("use a URL such as `https://s3.example.com` or `http://127.0.0.1:9000`")?;
        let authority = rest.split('/').next().unwrap_or_default();
        let host = host_of(authority);
        if host.is_empty() {
            return Err("names no host".into());
        }
        match scheme {
            "https" => {}
            "http" if self.allow_http || is_loopback(host) => {}
            "http" => return Err("plain http beyond loopback needs `allow_http = true`".into()),
            _ => return Err(format!("scheme {scheme:?}: use http or https")),
        }
        if !self.path_style && !host.starts_with(&format!("{}.", self.bucket)) {
            return Err(format!(
                "set `path_style = true`, or name the bucket's virtual host (`{scheme}://{}.{authority}`)",
                self.bucket
            ));
        }
        Ok(())
    }
}

/// Keeps the secret out of logs and error messages.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allow_http)
            .field("retry_duration", &self.retry_duration)
            .field("profile", &self.profile)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// AWS's rules for new general-purpose buckets.
fn valid_bucket(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && !name.contains("..")
}

/// A prefix is whole key segments: no empty, `.` or `..` segment, no control characters. One
/// trailing `/` is allowed (`weir/` and `weir` are the same prefix).
pub(super) fn check_prefix(prefix: &str) -> Result<(), &'static str> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        return if prefix.is_empty() {
            Ok(())
        } else {
            Err("use segments such as `weir/raw`")
        };
    }
    if trimmed.len() > MAX_PREFIX_BYTES {
        return Err("longer than 512 bytes");
    }
    check_segments(trimmed)
}

/// The segments of a key or prefix: non-empty, not `.` or `..`, no control characters (the rules of
/// `object_store::path::Path`, which would otherwise silently drop a leading or trailing `/`).
pub(super) fn check_segments(key: &str) -> Result<(), &'static str> {
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err("has an empty segment (a leading, trailing or doubled `/`)");
        }
        if segment == "." || segment == ".." {
            return Err("has a `.` or `..` segment");
        }
        if segment.chars().any(|c| c.is_ascii_control()) {
            return Err("has a control character");
        }
    }
    Ok(())
}

/// The host of `host[:port]` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<S3Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_documented_example_parses_and_validates() {
        let config = parse(
            r#"
            bucket = "my-bucket"
            prefix = "weir"
            region = "eu-west-1"
            endpoint = "http://127.0.0.1:9000"
            path_style = true
            retry_duration = "300s"
            "#,
        )
        .expect("parses");
        config.validate().expect("valid");
        assert_eq!(config.retry_duration, Duration::from_secs(300));
        assert_eq!(config.location(), "s3://my-bucket/weir");
    }

    #[test]
    fn only_the_bucket_is_required() {
        let config = parse(r#"bucket = "b-1""#).expect("parses");
        assert_eq!(config, S3Config::new("b-1"));
        config.validate().expect("valid");
        assert_eq!(config.location(), "s3://b-1");
        assert!(parse("").expect_err("no bucket").contains("bucket"));
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_rejected_at_parse() {
        let e = parse("bucket = \"b-1\"\npath_styel = true").expect_err("typo");
        assert!(e.contains("path_styel"), "{e}");
        let e = parse("bucket = \"b-1\"\nretry_duration = \"5 fortnights\"").expect_err("unit");
        assert!(e.contains("fortnights"), "{e}");
    }

    #[test]
    fn invalid_values_name_the_key_and_range() {
        let base = S3Config::new("bucket");
        for (config, key, needle) in [
            (S3Config::new("Bucket_1"), "bucket", "3 to 63"),
            (S3Config::new("ab"), "bucket", "3 to 63"),
            (
                S3Config {
                    prefix: "a//b".into(),
                    ..base.clone()
                },
                "prefix",
                "empty segment",
            ),
            (
                S3Config {
                    prefix: "/abs".into(),
                    ..base.clone()
                },
                "prefix",
                "empty segment",
            ),
            (
                S3Config {
                    prefix: "a/../b".into(),
                    ..base.clone()
                },
                "prefix",
                "..",
            ),
            (
                S3Config {
                    retry_duration: Duration::from_secs(7201),
                    ..base.clone()
                },
                "retry_duration",
                "0s..=7200s",
            ),
            (
                S3Config {
                    region: Some("us east".into()),
                    ..base.clone()
                },
                "region",
                "us-east-1",
            ),
            (
                S3Config {
                    endpoint: Some("http://minio.internal:9000".into()),
                    path_style: true,
                    ..base.clone()
                },
                "endpoint",
                "allow_http",
            ),
            (
                S3Config {
                    endpoint: Some("https://s3.example.com".into()),
                    ..base.clone()
                },
                "endpoint",
                "path_style",
            ),
            (
                S3Config {
                    endpoint: Some("127.0.0.1:9000".into()),
                    path_style: true,
                    ..base.clone()
                },
                "endpoint",
                "URL",
            ),
            (
                S3Config {
                    access_key_id: Some("AKIA".into()),
                    ..base.clone()
                },
                "secret_access_key",
                "access_key_id",
            ),
        ] {
            let e = config.validate().expect_err(key);
            assert_eq!(e.key, key, "{config:?}");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn endpoints_that_are_allowed() {
        for (endpoint, path_style, allow_http) in [
            ("http://127.0.0.1:9000", true, false),
            ("http://localhost:9000/", true, false),
            ("http://[::1]:9000", true, false),
            ("http://minio.internal:9000", true, true),
            ("https://s3.example.com", true, false),
            ("https://bucket.s3.example.com", false, false),
        ] {
            let config = S3Config {
                endpoint: Some(endpoint.into()),
                path_style,
                allow_http,
                ..S3Config::new("bucket")
            };
            config.validate().unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        }
    }

    #[test]
    fn the_retry_duration_takes_firehose_s_whole_range() {
        for seconds in [0, 300, 7200] {
            let config = parse(&format!("bucket = \"b-1\"\nretry_duration = \"{seconds}s\"")).expect("parses");
            config.validate().expect("valid");
            assert_eq!(config.retry_duration, Duration::from_secs(seconds));
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let config = S3Config {
            access_key_id: Some("AKIAEXAMPLE".into()),
            secret_access_key: Some("very-secret".into()),
            ..S3Config::new("bucket")
        };
        let shown = format!("{config:?}");
        assert!(
            shown.contains("AKIAEXAMPLE") && !shown.contains("very-secret"),
            "{shown}"
        );
    }
}

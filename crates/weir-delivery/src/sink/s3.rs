//! The S3 sink: objects in any S3-compatible store, through `object_store`.
//!
//! Two retry layers, so that a store outage never loses or duplicates records:
//! - inside a put, `object_store` retries 5xx (SlowDown and 503 included), 429, timeouts and refused
//!   or dropped connections with jittered exponential backoff, for at most `retry_duration`;
//! - after that the put fails back to delivery, which keeps the batch (its records stay in the
//!   stream, unacknowledged) and replays it later under the same key, forever.
//!
//! A replayed request keeps its first signature, so after an outage longer than S3's 15-minute
//! signature window (or a session token's lifetime) the store refuses it; that error goes back to
//! delivery too, whose next attempt signs afresh.
//!
//! A put is atomic in S3 (a single PUT, or a multipart upload that becomes visible only when
//! completed), so the key holds either the old object or the whole new one.

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsCredential};
use object_store::path::Path;
use object_store::{
    BackoffConfig, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig, StaticCredentialProvider,
    WriteMultipart,
};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tracing::{info, warn};

use super::Sink;
use super::aws_profile::{ProfileError, SharedFiles, StaticKeys};
use super::s3_config::{S3Config, check_segments};
use crate::config::ConfigError;

/// Objects at least this large go up as multipart uploads (Firehose objects reach 128 MiB).
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
/// Size of each part but the last (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts uploaded at once; bounds the connections one put opens.
const PARTS_IN_FLIGHT: usize = 4;
/// The longest pause between two attempts inside a put.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// Reads and listings (previews, redrive) give up sooner than puts: a person or a loop is waiting.
const READ_RETRY_DURATION: Duration = Duration::from_secs(10);

/// Building an S3 sink failed.
#[derive(Debug, thiserror::Error)]
pub enum S3SinkError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("S3 credentials: {0}")]
    Profile(#[from] ProfileError),
    #[error("S3 client for {location}: {source}")]
    Client {
        location: String,
        source: object_store::Error,
    },
    #[error("the S3 sink must be created inside a tokio runtime")]
    NoRuntime,
}

/// Objects under `s3://bucket/prefix/<key>`.
///
/// The `Sink` methods block on the runtime captured at construction: call them from blocking
/// threads (`spawn_blocking`, or threads outside the runtime), never from async tasks, and use a
/// multi-thread runtime.
#[derive(Clone)]
pub struct S3Sink {
    /// For puts: retries for `retry_duration`.
    store: Arc<AmazonS3>,
    /// For reads and listings: retries for at most [`READ_RETRY_DURATION`].
    reader: Arc<AmazonS3>,
    /// The bucket's key prefix (possibly the root); object keys are appended as segments.
    prefix: Path,
    location: String,
    runtime: Handle,
}

impl S3Sink {
    /// Validates `config`, resolves credentials and the region, and builds the client. Must be
    /// called inside a tokio runtime; no request is sent yet.
    pub fn new(config: S3Config) -> Result<S3Sink, S3SinkError> {
        config.validate()?;
        let runtime = Handle::try_current().map_err(|_| S3SinkError::NoRuntime)?;
        let location = config.location();
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (builder, source) =
            with_credentials_and_region(AmazonS3Builder::from_env(), &config, &env, &SharedFiles::locate(env))?;
        let mut builder = builder
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(!config.path_style);
        if let Some(endpoint) = &config.endpoint {
            // Validation allowed http only for loopback or with `allow_http`.
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let build = |retry_duration| {
            builder
                .clone()
                .with_retry(retry_config(retry_duration))
                .build()
                .map_err(|source| S3SinkError::Client {
                    location: location.clone(),
                    source,
                })
        };
        let store = build(config.retry_duration)?;
        let reader = build(config.retry_duration.min(READ_RETRY_DURATION))?;
        let prefix = Path::parse(&config.prefix).map_err(|e| ConfigError {
            key: "prefix",
            message: e.to_string(),
        })?;
        info!(location = %location, endpoint = config.endpoint.as_deref().unwrap_or("AWS"), credentials = source,
            retry_duration = %humantime::format_duration(config.retry_duration), "S3 sink ready.");
        Ok(S3Sink {
            store: Arc::new(store),
            reader: Arc::new(reader),
            prefix,
            location,
            runtime,
        })
    }

    /// A client for listing and reading what the sink wrote (keys include the prefix).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.reader.clone()
    }

    /// The key prefix inside the bucket (the root when none is configured).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    fn path_of(&self, key: &str) -> io::Result<Path> {
        check_segments(key)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, format!("object key {key:?} {why}")))?;
        let full = match self.prefix.as_ref() {
            "" => key.to_owned(),
            prefix => format!("{prefix}/{key}"),
        };
        Path::parse(&full).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
    }

    async fn upload(&self, path: &Path, body: Bytes) -> object_store::Result<()> {
        if body.len() < MULTIPART_THRESHOLD {
            self.store.put(path, body.into()).await?;
            return Ok(());
        }
        let mut upload = WriteMultipart::new_with_chunk_size(self.store.put_multipart(path).await?, PART_BYTES);
        for start in (0..body.len()).step_by(PART_BYTES) {
            if let Err(e) = upload.wait_for_capacity(PARTS_IN_FLIGHT).await {
                abort(upload, path).await;
                return Err(e);
            }
            upload.put(body.slice(start..body.len().min(start + PART_BYTES)));
        }
        // Completes the upload, or aborts it and returns the error.
        upload.finish().await?;
        Ok(())
    }

    async fn head(&self, path: &Path, max_bytes: usize) -> object_store::Result<Vec<u8>> {
        if max_bytes == 0 {
            self.reader.head(path).await?;
            return Ok(Vec::new());
        }
        let options = GetOptions::default().with_range(Some(GetRange::Bounded(0..max_bytes as u64)));
        match self.reader.get_opts(path, options).await {
            Ok(got) => Ok(got.bytes().await?.to_vec()),
            Err(e @ object_store::Error::NotFound { .. }) => Err(e),
            // S3 refuses every range of an empty object (416).
            Err(e) => match self.reader.head(path).await {
                Ok(meta) if meta.size == 0 => Ok(Vec::new()),
                _ => Err(e),
            },
        }
    }
}

/// The location only: the client's own dump is long (and redacts secrets itself).
impl std::fmt::Debug for S3Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Sink")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Sink for S3Sink {
    fn put(&self, key: &str, body: &[u8]) -> io::Result<()> {
        let path = self.path_of(key)?;
        self.runtime
            .block_on(self.upload(&path, Bytes::copy_from_slice(body)))
            .map_err(io_error)
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn read_head(&self, key: &str, max_bytes: usize) -> io::Result<Vec<u8>> {
        let path = self.path_of(key)?;
        self.runtime.block_on(self.head(&path, max_bytes)).map_err(io_error)
    }

    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        let path = self.path_of(key)?;
        let fetch = async { self.reader.get(&path).await?.bytes().await };
        self.runtime.block_on(fetch).map(|b| b.to_vec()).map_err(io_error)
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        use futures::TryStreamExt as _;
        // object_store lists by whole segments: list the directory part, then filter by the rest.
        let dir = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let under = match (self.prefix.as_ref(), dir) {
            ("", dir) => dir.to_owned(),
            (root, "") => root.to_owned(),
            (root, dir) => format!("{root}/{dir}"),
        };
        let under = Path::parse(&under).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let metas: Vec<_> = self
            .runtime
            .block_on(self.reader.list(Some(&under)).try_collect())
            .map_err(io_error)?;
        let strip = match self.prefix.as_ref() {
            "" => String::new(),
            root => format!("{root}/"),
        };
        let mut keys: Vec<String> = metas
            .into_iter()
            .filter_map(|m| m.location.as_ref().strip_prefix(&strip).map(str::to_owned))
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// Gives up a multipart upload whose part failed. Parts of an upload that cannot be aborted (the
/// store is down) stay until the bucket's lifecycle rule for incomplete uploads removes them.
async fn abort(upload: WriteMultipart, path: &Path) {
    if let Err(e) = upload.abort().await {
        warn!(%path, error = %e, "Aborting a failed multipart upload failed; its parts stay until the bucket's lifecycle rule removes them.");
    }
}

/// Jittered exponential backoff, bounded by time rather than by a count.
fn retry_config(retry_duration: Duration) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            // A short retry duration gets short pauses, so a put does not overrun it by much.
            max_backoff: MAX_BACKOFF.min((retry_duration / 4).max(Duration::from_millis(100))),
            base: 2.0,
        },
        max_retries: if retry_duration.is_zero() { 0 } else { usize::MAX },
        retry_timeout: retry_duration,
    }
}

/// Where a builder's credentials come from, for the start-up log line.
type CredentialSource = &'static str;

/// The standard AWS chain, in the SDKs' order, with the config's explicit choices first:
/// 1. `access_key_id`/`secret_access_key` in the config;
/// 2. `profile` in the config (must exist and hold static keys);
/// 3. `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (read by `AmazonS3Builder::from_env`);
/// 4. the static keys of `AWS_PROFILE` (which must exist) or of `default` in the shared files;
/// 5. `object_store`'s own chain: web identity, ECS/EKS container credentials, IMDS.
///
/// The region: the config's, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else the profile's, else
/// `us-east-1` (object_store's default).
fn with_credentials_and_region(
    mut builder: AmazonS3Builder,
    config: &S3Config,
    env: &dyn Fn(&str) -> Option<String>,
    files: &SharedFiles,
) -> Result<(AmazonS3Builder, CredentialSource), ProfileError> {
    let env_keys = env("AWS_ACCESS_KEY_ID").is_some() && env("AWS_SECRET_ACCESS_KEY").is_some();
    let env_region = env("AWS_REGION").is_some() || env("AWS_DEFAULT_REGION").is_some();
    let explicit_keys = config.access_key_id.as_ref().zip(config.secret_access_key.as_ref());
    let chosen_profile = config.profile.clone().or_else(|| env("AWS_PROFILE"));
    let needs_profile_keys = explicit_keys.is_none() && (config.profile.is_some() || !env_keys);
    let needs_profile_region = config.region.is_none() && !env_region;
    let profile = if needs_profile_keys || needs_profile_region {
        match &chosen_profile {
            Some(name) => Some(files.required_profile(name)?),
            None => files.profile("default")?,
        }
    } else {
        None
    };
    let mut source = "the AWS chain (environment, web identity, container or instance credentials)";
    if let Some((id, secret)) = explicit_keys {
        builder = builder.with_credentials(static_provider(StaticKeys {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: None,
        }));
        source = "static keys in the config";
    } else if needs_profile_keys {
        let keys = match &profile {
            Some(profile) => profile.static_keys()?,
            None => None,
        };
        if let Some(keys) = keys {
            builder = builder.with_credentials(static_provider(keys));
            source = "the shared AWS files";
        } else if config.profile.is_some() {
            return Err(ProfileError::NoKeys {
                profile: config.profile.clone().unwrap_or_default(),
            });
        }
    }
    if let Some(region) = &config.region {
        builder = builder.with_region(region);
    } else if let Some(region) = profile
        .as_ref()
        .and_then(|p| p.region())
        .filter(|_| needs_profile_region)
    {
        builder = builder.with_region(region);
    }
    Ok((builder, source))
}

fn static_provider(keys: StaticKeys) -> Arc<StaticCredentialProvider<AwsCredential>> {
    Arc::new(StaticCredentialProvider::new(AwsCredential {
        key_id: keys.access_key_id,
        secret_key: keys.secret_access_key,
        token: keys.session_token,
    }))
}

fn io_error(e: object_store::Error) -> io::Error {
    let kind = match &e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            io::ErrorKind::PermissionDenied
        }
        object_store::Error::InvalidPath { .. } => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::aws::AmazonS3ConfigKey;

    fn files(dir: &std::path::Path) -> SharedFiles {
        std::fs::write(
            dir.join("credentials"),
            "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\
             [dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s\n",
        )
        .expect("write");
        std::fs::write(
            dir.join("config"),
            "[default]\nregion = eu-west-1\n[profile dev]\nregion = us-west-2\n\
             [profile sso]\nsso_session = corp\n",
        )
        .expect("write");
        SharedFiles {
            credentials: dir.join("credentials"),
            config: dir.join("config"),
        }
    }

    fn resolve(config: &S3Config, vars: &[(&str, &str)]) -> Result<(Option<String>, CredentialSource), ProfileError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        let (builder, source) = with_credentials_and_region(AmazonS3Builder::new(), config, &env, &files(dir.path()))?;
        Ok((builder.get_config_value(&AmazonS3ConfigKey::Region), source))
    }

    #[test]
    fn explicit_keys_and_region_win_and_read_no_files() {
        let config = S3Config {
            region: Some("ca-central-1".into()),
            access_key_id: Some("K".into()),
            secret_access_key: Some("S".into()),
            ..S3Config::new("bucket")
        };
        let (region, source) = resolve(&config, &[("AWS_PROFILE", "missing")]).expect("resolves");
        assert_eq!(region.as_deref(), Some("ca-central-1"));
        assert_eq!(source, "static keys in the config");
    }

    #[test]
    fn the_default_profile_gives_keys_and_region_when_the_environment_has_none() {
        let (region, source) = resolve(&S3Config::new("bucket"), &[]).expect("resolves");
        assert_eq!(region.as_deref(), Some("eu-west-1"));
        assert_eq!(source, "the shared AWS files");
    }

    #[test]
    fn aws_profile_selects_the_profile_and_environment_keys_come_before_it() {
        let (region, source) = resolve(&S3Config::new("bucket"), &[("AWS_PROFILE", "dev")]).expect("resolves");
        assert_eq!((region.as_deref(), source), (Some("us-west-2"), "the shared AWS files"));
        let vars = [
            ("AWS_PROFILE", "dev"),
            ("AWS_ACCESS_KEY_ID", "K"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
            ("AWS_REGION", "sa-east-1"),
        ];
        let (region, source) = resolve(&S3Config::new("bucket"), &vars).expect("resolves");
        assert_eq!(region, None, "left to from_env, which reads AWS_REGION");
        assert!(source.starts_with("the AWS chain"), "{source}");
    }

    #[test]
    fn a_missing_or_unusable_chosen_profile_is_an_error() {
        let e = resolve(&S3Config::new("bucket"), &[("AWS_PROFILE", "nope")]).expect_err("missing");
        assert!(matches!(e, ProfileError::Missing { .. }), "{e}");
        let config = S3Config {
            profile: Some("sso".into()),
            ..S3Config::new("bucket")
        };
        let e = resolve(&config, &[("AWS_ACCESS_KEY_ID", "K"), ("AWS_SECRET_ACCESS_KEY", "S")]).expect_err("sso");
        assert!(e.to_string().contains("sso_session"), "{e}");
    }

    #[test]
    fn retries_are_bounded_by_time() {
        let retry = retry_config(Duration::from_secs(300));
        assert_eq!(retry.retry_timeout, Duration::from_secs(300));
        assert_eq!(retry.backoff.max_backoff, MAX_BACKOFF);
        let retry = retry_config(Duration::from_secs(2));
        assert_eq!(retry.backoff.max_backoff, Duration::from_millis(500));
        assert_eq!(retry_config(Duration::ZERO).max_retries, 0);
    }
}

//! Static keys and the region of a profile in the shared AWS files (`~/.aws/credentials`,
//! `~/.aws/config`), the one link of the standard credential chain that `object_store` lacks.
//!
//! Why a small reader rather than `aws-config`: the sink needs static keys and a region from these
//! files; the SDK's chain would add ~100 s of build and a second HTTP/TLS stack beside
//! `object_store`'s for that. Profiles that get credentials another way (`role_arn`, `sso_*`,
//! `credential_process`, …) are refused with a message saying so, never silently skipped: a
//! fall-through to instance credentials would sign as a different identity.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Keys that make the SDKs get credentials some other way than static keys.
const UNSUPPORTED_SOURCES: &[&str] = &[
    "role_arn",
    "credential_process",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
    "login_session",
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("AWS profile {profile:?} is in neither {credentials} nor {config}")]
    Missing {
        profile: String,
        credentials: String,
        config: String,
    },
    #[error(
        "AWS profile {profile:?} gets credentials through `{key}`, which weir does not resolve: \
         export static keys (`aws configure export-credentials --profile {profile} --format env`) or \
         use the environment, web identity, ECS or instance credentials"
    )]
    Unsupported { profile: String, key: &'static str },
    #[error("AWS profile {profile:?} sets only one of aws_access_key_id and aws_secret_access_key")]
    Incomplete { profile: String },
    #[error("AWS profile {profile:?} has no aws_access_key_id and aws_secret_access_key")]
    NoKeys { profile: String },
}

/// An access key pair, maybe with a session token.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// One profile's settings, the credentials file's values over the config file's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    values: BTreeMap<String, String>,
}

impl Profile {
    pub fn region(&self) -> Option<&str> {
        self.values.get("region").map(String::as_str)
    }

    /// The profile's static keys; `Ok(None)` when it names no credentials at all.
    pub fn static_keys(&self) -> Result<Option<StaticKeys>, ProfileError> {
        let get = |key: &str| self.values.get(key).cloned();
        match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Some(StaticKeys {
                access_key_id,
                secret_access_key,
                session_token: get("aws_session_token"),
            })),
            (None, None) => match UNSUPPORTED_SOURCES.iter().find(|k| self.values.contains_key(**k)) {
                Some(key) => Err(ProfileError::Unsupported {
                    profile: self.name.clone(),
                    key,
                }),
                None => Ok(None),
            },
            _ => Err(ProfileError::Incomplete {
                profile: self.name.clone(),
            }),
        }
    }
}

/// Where the shared files are, found as the AWS CLI and SDKs find them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFiles {
    pub credentials: PathBuf,
    pub config: PathBuf,
}

impl SharedFiles {
    /// `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE`, else `~/.aws/credentials` and
    /// `~/.aws/config`. `env` looks up an environment variable (a parameter so tests need not
    /// change the process environment).
    pub fn locate(env: impl Fn(&str) -> Option<String>) -> SharedFiles {
        let home = env("HOME")
            .or_else(|| env("USERPROFILE"))
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        let file = |var: &str, default: &str| match env(var).filter(|v| !v.is_empty()) {
            Some(path) => match path.strip_prefix("~/") {
                Some(rest) => home.join(rest),
                None => PathBuf::from(path),
            },
            None => home.join(".aws").join(default),
        };
        SharedFiles {
            credentials: file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            config: file("AWS_CONFIG_FILE", "config"),
        }
    }

    /// The named profile; `Ok(None)` when neither file defines it (a missing file defines nothing).
    pub fn profile(&self, name: &str) -> Result<Option<Profile>, ProfileError> {
        let read = |path: &PathBuf| match std::fs::read_to_string(path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(ProfileError::Read {
                path: path.clone(),
                source,
            }),
        };
        Ok(parse(&read(&self.credentials)?, &read(&self.config)?, name))
    }

    /// Like [`SharedFiles::profile`], but a profile that is in neither file is an error.
    pub fn required_profile(&self, name: &str) -> Result<Profile, ProfileError> {
        self.profile(name)?.ok_or_else(|| ProfileError::Missing {
            profile: name.to_owned(),
            credentials: self.credentials.display().to_string(),
            config: self.config.display().to_string(),
        })
    }
}

/// The profile `name` from the two files' text: the credentials file names sections `[name]`, the
/// config file `[profile name]` (and `[default]`). `None` if neither has the section.
pub fn parse(credentials: &str, config: &str, name: &str) -> Option<Profile> {
    let from_config = section(config, |header| match header.strip_prefix("profile ") {
        Some(profile) => profile.trim() == name,
        None => name == "default" && header == "default",
    });
    let from_credentials = section(credentials, |header| header == name);
    if from_config.is_none() && from_credentials.is_none() {
        return None;
    }
    let mut values = from_config.unwrap_or_default();
    values.extend(from_credentials.unwrap_or_default());
    Some(Profile {
        name: name.to_owned(),
        values,
    })
}

/// The `key = value` pairs of the sections whose header matches, merged in file order. Keys are
/// lowercased; comment lines and indented sub-properties (`s3 =` blocks) are skipped.
fn section(text: &str, matches: impl Fn(&str) -> bool) -> Option<BTreeMap<String, String>> {
    let mut found: Option<BTreeMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let indented = line.starts_with([' ', '\t']);
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = matches(header.trim());
            if inside {
                found.get_or_insert_with(BTreeMap::new);
            }
            continue;
        }
        if !inside || indented {
            continue;
        }
        if let (Some(values), Some((key, value))) = (found.as_mut(), line.split_once('=')) {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "\
# comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = secret/default+key

[dev]
AWS_ACCESS_KEY_ID=AKIADEV
aws_secret_access_key=dev-secret
aws_session_token = dev-token
";

    const CONFIG: &str = "\
[default]
region = eu-west-1
s3 =
  max_concurrent_requests = 20
  region = ignored

[profile dev]
region = us-west-2
; another comment
[profile assumed]
role_arn = arn:aws:iam::123456789012:role/weir
source_profile = default

[profile regional]
region = ap-south-1

[profile half]
aws_access_key_id = AKIAHALF

[sso-session corp]
sso_region = us-east-1
";

    fn keys(id: &str, secret: &str, token: Option<&str>) -> StaticKeys {
        StaticKeys {
            access_key_id: id.into(),
            secret_access_key: secret.into(),
            session_token: token.map(str::to_owned),
        }
    }

    #[test]
    fn the_default_profile_combines_both_files() {
        let profile = parse(CREDENTIALS, CONFIG, "default").expect("defined");
        assert_eq!(profile.region(), Some("eu-west-1"), "sub-properties do not override");
        assert_eq!(
            profile.static_keys().expect("valid"),
            Some(keys("AKIADEFAULT", "secret/default+key", None))
        );
    }

    #[test]
    fn a_named_profile_reads_profile_sections_and_lowercases_keys() {
        let profile = parse(CREDENTIALS, CONFIG, "dev").expect("defined");
        assert_eq!(profile.region(), Some("us-west-2"));
        assert_eq!(
            profile.static_keys().expect("valid"),
            Some(keys("AKIADEV", "dev-secret", Some("dev-token")))
        );
    }

    #[test]
    fn a_profile_with_only_a_region_has_no_keys() {
        let profile = parse(CREDENTIALS, CONFIG, "regional").expect("defined");
        assert_eq!(profile.region(), Some("ap-south-1"));
        assert_eq!(profile.static_keys().expect("valid"), None);
    }

    #[test]
    fn other_credential_sources_are_refused_by_name() {
        let profile = parse(CREDENTIALS, CONFIG, "assumed").expect("defined");
        let e = profile.static_keys().expect_err("role_arn");
        assert!(e.to_string().contains("role_arn"), "{e}");
        let e = parse(CREDENTIALS, CONFIG, "half")
            .expect("defined")
            .static_keys()
            .expect_err("half");
        assert!(matches!(e, ProfileError::Incomplete { .. }), "{e}");
    }

    #[test]
    fn unknown_profiles_and_other_section_kinds_are_not_profiles() {
        assert_eq!(parse(CREDENTIALS, CONFIG, "nope"), None);
        assert_eq!(
            parse(CREDENTIALS, CONFIG, "corp"),
            None,
            "an sso-session is not a profile"
        );
        assert_eq!(parse("", "", "default"), None);
        // The config file names profiles `[profile x]`; a bare `[x]` there is not profile x.
        assert_eq!(parse("", "[dev]\nregion = x\n", "dev"), None);
    }

    #[test]
    fn files_are_found_from_the_environment_or_home() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        let files = SharedFiles::locate(env(&[("HOME", "/home/me")]));
        assert_eq!(files.credentials, PathBuf::from("/home/me/.aws/credentials"));
        assert_eq!(files.config, PathBuf::from("/home/me/.aws/config"));
        let files = SharedFiles::locate(env(&[
            ("HOME", "/home/me"),
            ("AWS_SHARED_CREDENTIALS_FILE", "~/creds"),
            ("AWS_CONFIG_FILE", "/etc/aws.conf"),
        ]));
        assert_eq!(files.credentials, PathBuf::from("/home/me/creds"));
        assert_eq!(files.config, PathBuf::from("/etc/aws.conf"));
    }

    #[test]
    fn missing_files_define_nothing_and_a_required_profile_says_where_it_looked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = SharedFiles {
            credentials: dir.path().join("credentials"),
            config: dir.path().join("config"),
        };
        assert_eq!(files.profile("default").expect("no files is fine"), None);
        let e = files.required_profile("dev").expect_err("missing");
        assert!(e.to_string().contains("credentials"), "{e}");
        std::fs::write(&files.credentials, CREDENTIALS).expect("write");
        let profile = files.required_profile("dev").expect("found");
        assert_eq!(
            profile.static_keys().expect("valid").map(|k| k.access_key_id),
            Some("AKIADEV".into())
        );
    }
}

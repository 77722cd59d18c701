//! Configuration: profiles in `settings.toml`, secrets over them, environment variables last.
//!
//! ```text
//! settings.toml      [default] + one table per profile ([demo], [evn], …)
//! .secrets.toml      same shape, merged over it (keys, passwords)
//! SMART_METER_A__B   environment variables, `__` between levels, merged last
//! ```
//! The selected profile is `[default]` deep-merged with `[NAME]`. Validation is pure (no port is
//! opened, no server contacted) and collects every problem with its key path and the file that
//! set it, so `check` can print them all at once.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;
use smart_meter_sinks::SinkConfig;
use smart_meter_sources::{RawSource, SourceConfig};

/// Prefix of environment variables that override settings.
pub const ENV_PREFIX: &str = "SMART_METER_";

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path inside the profile (`sources.meter.key`); empty for file-level errors.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Where the offending value came from (a file, or the environment), when known.
    pub origin: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let Some(o) = &self.origin {
            write!(f, " (in {o})")?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
            origin: None,
        }
    }
}

/// The status endpoint settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// Address to listen on, e.g. `127.0.0.1:9100`.
    pub listen: String,
    /// A running source without a reading for this long makes `/health` unhealthy.
    #[serde(default, with = "humantime_serde")]
    pub stale_after: Option<Duration>,
}

/// `[<profile>.bus]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// Readings held for a lagging sink before it loses the oldest.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            capacity: default_capacity(),
        }
    }
}

fn default_capacity() -> usize {
    1024
}

/// The profile as written, before per-component validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    sources: BTreeMap<String, Value>,
    #[serde(default)]
    sinks: BTreeMap<String, Value>,
    #[serde(default)]
    bus: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    shutdown_grace: Option<Value>,
    #[serde(default)]
    log: Option<Value>,
}

/// A loaded, validated profile.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The profile's name.
    pub profile: String,
    /// The config folder.
    pub dir: PathBuf,
    /// Sources, by name.
    pub sources: Vec<SourceConfig>,
    /// Sinks, by name.
    pub sinks: Vec<(String, SinkConfig)>,
    /// Bus settings.
    pub bus: BusConfig,
    /// How long sinks may take to drain at shutdown.
    pub shutdown_grace: Duration,
    /// The status endpoint, if enabled.
    pub status: Option<StatusConfig>,
    /// Default log filter (`RUST_LOG` wins).
    pub log: Option<String>,
}

/// The profile names in `settings.toml`, in file order, without `default`.
///
/// # Errors
/// The file cannot be read or is not valid TOML.
pub fn profiles(dir: &Path) -> Result<Vec<String>, ConfigError> {
    let table = read_table(&dir.join("settings.toml"))?;
    Ok(table
        .iter()
        .filter(|(k, v)| k.as_str() != "default" && k.as_str() != "global" && v.is_table())
        .map(|(k, _)| k.clone())
        .collect())
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
    text.parse::<toml::Table>().map_err(|e| {
        let msg = e.to_string();
        let msg = msg.trim_end().replace('\n', " ");
        ConfigError::new("", format!("{} is not valid TOML: {msg}", path.display()))
    })
}

/// Loads and validates profile `profile` from `dir`.
///
/// # Errors
/// Every problem found.
pub fn load(dir: &Path, profile: &str) -> Result<Settings, Vec<ConfigError>> {
    let settings_path = dir.join("settings.toml");
    let secrets_path = dir.join(".secrets.toml");
    let settings = read_table(&settings_path).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    for (k, v) in &settings {
        if !v.is_table() {
            errors.push(ConfigError {
                path: k.clone(),
                message: "every top-level entry must be a profile table like [demo]".into(),
                origin: Some(settings_path.display().to_string()),
            });
        }
    }
    let names = profiles(dir).map_err(|e| vec![e])?;
    if !names.iter().any(|n| n == profile) {
        errors.push(ConfigError::new(
            "",
            format!(
                "unknown profile {profile:?}; the profiles in {} are: {}",
                settings_path.display(),
                names.join(", ")
            ),
        ));
        return Err(errors);
    }
    let mut figment = Figment::new().merge(Toml::file_exact(&settings_path).nested());
    if secrets_path.exists() {
        let secrets = read_table(&secrets_path).map_err(|e| vec![e])?;
        for k in secrets.keys() {
            if k != "default" && !names.contains(k) {
                errors.push(ConfigError {
                    path: k.clone(),
                    message: "profile not defined in settings.toml".into(),
                    origin: Some(secrets_path.display().to_string()),
                });
            }
        }
        figment = figment.merge(Toml::file_exact(&secrets_path).nested());
    }
    let figment = figment
        .merge(EnvOverlay {
            profile: profile.to_string(),
        })
        .select(profile);

    let raw: RawProfile = match figment.extract() {
        Ok(r) => r,
        Err(e) => {
            for err in e {
                let path = err.path.join(".");
                let path = strip_profile(&path, profile);
                errors.push(ConfigError {
                    origin: origin_of(&figment, &path)
                        .or_else(|| err.metadata.as_ref().map(describe_metadata)),
                    message: kind_message(&err.kind),
                    path,
                });
            }
            return Err(errors);
        }
    };

    let mut sources = Vec::new();
    for (name, value) in &raw.sources {
        let base = format!("sources.{name}");
        match serde_path_to_error::deserialize::<_, RawSource>(value) {
            Ok(r) => match SourceConfig::from_raw(name, r, dir) {
                Ok(s) => sources.push(s),
                Err(list) => {
                    for (k, m) in list {
                        errors.push(located(&figment, join(&base, &k), m));
                    }
                }
            },
            Err(e) => {
                let p = e.path().to_string();
                let msg = e.into_inner().to_string();
                errors.push(located(&figment, join(&base, &clean_path(&p)), msg));
            }
        }
    }
    let mut sinks = Vec::new();
    for (name, value) in &raw.sinks {
        let base = format!("sinks.{name}");
        match serde_path_to_error::deserialize::<_, SinkConfig>(value) {
            Ok(s) => {
                let problems = s.validate();
                if problems.is_empty() {
                    sinks.push((name.clone(), s));
                }
                for (k, m) in problems {
                    errors.push(located(&figment, join(&base, &k), m));
                }
            }
            Err(e) => {
                let p = e.path().to_string();
                let msg = e.into_inner().to_string();
                errors.push(located(&figment, join(&base, &clean_path(&p)), msg));
            }
        }
    }
    let bus = match &raw.bus {
        None => BusConfig::default(),
        Some(v) => match serde_path_to_error::deserialize::<_, BusConfig>(v) {
            Ok(b) => {
                if b.capacity == 0 {
                    errors.push(located(
                        &figment,
                        "bus.capacity".into(),
                        "must be at least 1".into(),
                    ));
                }
                b
            }
            Err(e) => {
                let p = e.path().to_string();
                errors.push(located(
                    &figment,
                    join("bus", &clean_path(&p)),
                    e.into_inner().to_string(),
                ));
                BusConfig::default()
            }
        },
    };
    let shutdown_grace = match &raw.shutdown_grace {
        None => Duration::from_secs(10),
        Some(v) => match v.as_str().map(humantime::parse_duration) {
            Some(Ok(d)) => d,
            _ => {
                errors.push(located(
                    &figment,
                    "shutdown_grace".into(),
                    "expected a duration such as \"10s\"".into(),
                ));
                Duration::from_secs(10)
            }
        },
    };
    let status = match &raw.status {
        None => None,
        Some(v) => match serde_path_to_error::deserialize::<_, StatusConfig>(v) {
            Ok(s) => {
                if s.listen.parse::<std::net::SocketAddr>().is_err() {
                    errors.push(located(
                        &figment,
                        "status.listen".into(),
                        format!(
                            "expected ip:port such as \"127.0.0.1:9100\", got {:?}",
                            s.listen
                        ),
                    ));
                }
                Some(s)
            }
            Err(e) => {
                let p = e.path().to_string();
                errors.push(located(
                    &figment,
                    join("status", &clean_path(&p)),
                    e.into_inner().to_string(),
                ));
                None
            }
        },
    };
    let log = match &raw.log {
        None => None,
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                errors.push(located(
                    &figment,
                    "log".into(),
                    "expected a filter such as \"info\"".into(),
                ));
                None
            }
        },
    };
    if sources.is_empty() && raw.sources.is_empty() {
        errors.push(ConfigError::new("sources", "the profile has no sources"));
    }
    if sinks.is_empty() && raw.sinks.is_empty() {
        errors.push(ConfigError::new("sinks", "the profile has no sinks"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Settings {
        profile: profile.to_string(),
        dir: dir.to_path_buf(),
        sources,
        sinks,
        bus,
        shutdown_grace,
        status,
        log,
    })
}

/// Loads `profile` and returns one source's protocol settings (for `decode --source`).
pub fn find_source(settings: &Settings, name: &str) -> Option<SourceConfig> {
    settings.sources.iter().find(|s| s.name == name).cloned()
}

fn join(base: &str, key: &str) -> String {
    if key.is_empty() {
        base.to_string()
    } else {
        format!("{base}.{key}")
    }
}

fn clean_path(p: &str) -> String {
    if p == "." || p == "?" {
        String::new()
    } else {
        p.to_string()
    }
}

fn strip_profile(path: &str, profile: &str) -> String {
    path.strip_prefix(&format!("{profile}."))
        .or_else(|| path.strip_prefix("default."))
        .unwrap_or(path)
        .to_string()
}

fn located(figment: &Figment, path: String, message: String) -> ConfigError {
    let message = if message.starts_with("required") && is_secret(&path) {
        format!(
            "{message}; put it in .secrets.toml or set {ENV_PREFIX}{}",
            path.to_uppercase().replace('.', "__")
        )
    } else {
        message
    };
    ConfigError {
        origin: origin_of(figment, &path),
        path,
        message,
    }
}

fn is_secret(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    matches!(last, "key" | "auth_key" | "password" | "token")
}

/// Which provider set the value at `path` (or its closest parent).
fn origin_of(figment: &Figment, path: &str) -> Option<String> {
    let mut p = path.to_string();
    loop {
        if p.is_empty() {
            return None;
        }
        if let Ok(v) = figment.find_value(&p) {
            return figment.get_metadata(v.tag()).map(describe_metadata);
        }
        match p.rfind('.') {
            Some(i) => p.truncate(i),
            None => return None,
        }
    }
}

fn describe_metadata(m: &Metadata) -> String {
    match &m.source {
        Some(figment::Source::File(p)) => p.display().to_string(),
        _ => m.name.to_string(),
    }
}

fn kind_message(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::UnknownField(f, expected) => format!(
            "unknown key `{f}`; expected one of: {}",
            expected.join(", ")
        ),
        other => other.to_string(),
    }
}

/// `SMART_METER_<PATH>` variables as a provider for the selected profile. Values that parse as
/// booleans or numbers become those, except under keys that are always text (keys, passwords,
/// tokens, ids, topics), so an all-digit hex key stays a string.
struct EnvOverlay {
    profile: String,
}

const TEXT_KEYS: &[&str] = &[
    "key",
    "auth_key",
    "password",
    "token",
    "username",
    "user",
    "client_id",
    "topic",
    "meter",
    "url",
    "org",
    "bucket",
    "db",
    "port",
    "path",
    "base_topic",
    "tcp",
    "file",
    "listen",
];

fn env_value(key: &str, raw: &str) -> Value {
    if TEXT_KEYS.contains(&key) {
        return Value::from(raw.to_string());
    }
    match raw {
        "true" => return Value::from(true),
        "false" => return Value::from(false),
        _ => {}
    }
    if let Ok(i) = raw.parse::<i64>() {
        return Value::from(i);
    }
    if raw.contains('.') {
        if let Ok(f) = raw.parse::<f64>() {
            return Value::from(f);
        }
    }
    Value::from(raw.to_string())
}

impl Provider for EnvOverlay {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variables SMART_METER_*")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (name, value) in std::env::vars() {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if matches!(rest, "ENV" | "CONFIG" | "LOG") || rest.is_empty() {
                continue;
            }
            let parts: Vec<String> = rest.split("__").map(|p| p.to_lowercase()).collect();
            if parts.iter().any(|p| p.is_empty()) {
                continue;
            }
            insert(&mut root, &parts, &value);
        }
        let mut map = Map::new();
        map.insert(Profile::new(&self.profile), root);
        Ok(map)
    }
}

fn insert(dict: &mut Dict, parts: &[String], raw: &str) {
    match parts {
        [] => {}
        [last] => {
            dict.insert(last.clone(), env_value(last, raw));
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, raw);
            } else {
                let mut inner = Dict::new();
                insert(&mut inner, rest, raw);
                *entry = Value::from(inner);
            }
        }
    }
}

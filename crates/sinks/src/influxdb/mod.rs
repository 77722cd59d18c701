//! `influxdb`: readings as InfluxDB points, written with our own line-protocol writer to
//! InfluxDB 1.x (`/write`) or 2.x (`/api/v2/write`).
//!
//! # Configuration
//!
//! ```toml
//! [default.sinks.influx]
//! type = "influxdb"
//! url = "http://127.0.0.1:8086"   # default; a path prefix (reverse proxy) is kept
//! # InfluxDB 1.x: db (+ rp, username, password)
//! db = "SmartMeter"
//! # rp = "autogen"
//! # username = "gateway"
//! # password = "…"                 # better in .secrets.toml
//! # InfluxDB 2.x instead: org + bucket + token
//! # org = "home"
//! # bucket = "meters"
//! # token = "…"
//! ```
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `url` | `http://127.0.0.1:8086` | server root; `https://` needs the `tls` feature |
//! | `db`, `rp`, `username`, `password` | — | InfluxDB 1.x database, retention policy, Basic auth |
//! | `org`, `bucket`, `token` | — | InfluxDB 2.x, all three required |
//! | `preset` | `default` | point layout: `default`, `strom`, `kaifareader`, `smartmeter-v1` (see below) |
//! | `measurement` | per preset | `smart_meter` (`default`), `strom`, `smartmeter` (`kaifareader`); fixed names for `smartmeter-v1` |
//! | `field_names` | `obis` | `default` preset only: `obis` (field key = `1.0.1.8.0.255`) or `names` (`active_energy_import`) |
//! | `tags` | true for `default`, false for the other presets | add the tags `meter` and `protocol` |
//! | `precision` | `ms` | timestamp precision: `ns`, `us`, `ms`, `s` |
//! | `batch_size` | 500 | readings per write at most |
//! | `flush_interval` | `1s` | longest wait before a partial batch is written |
//! | `gzip` | true | compress request bodies |
//! | `timeout` | `10s` | per request |
//! | `retry_initial`, `retry_max` | `1s`, `60s` | backoff between failed writes: doubling from `retry_initial`, capped at `retry_max` |
//! | `queue_size` | 10000 | readings held in memory while InfluxDB is slow or down |
//! | `spool_dir` | none | folder for readings beyond `queue_size` and at shutdown (sent at the next start) |
//! | `spool_max_bytes` | 100000000 | size bound of the spool; beyond it the oldest spooled readings are dropped |
//!
//! Exactly one of the two families (`db`… for 1.x, `org`/`bucket`/`token` for 2.x) must be set.
//!
//! # Points
//!
//! `default`: one point per reading in `measurement`, tags `meter` and `protocol`, every sample
//! as a field, time = [`Reading::timestamp`] (the meter's clock when it carries a UTC offset,
//! else the receive time). **Every number is a float field** (`f64` from the exact decimal at this
//! edge): InfluxDB refuses a field whose type changes, and a register that is integral in one
//! telegram can be fractional in the next, so one type per field forever is only guaranteed by
//! using floats throughout. Texts (meter number) and dates (meter clock) are string fields.
//!
//! The presets reproduce the predecessors' layouts (see [`schema::Preset`]), including their
//! integer fields (written with the `i` suffix, values rounded to whole units), so existing
//! databases and dashboards keep working; each writes one timestamped point per measurement
//! per reading.
//!
//! # Delivery
//!
//! The receive loop encodes each reading and puts it in a bounded queue ([`queue`]) and never
//! waits for the network; one writer task sends batches (by size or `flush_interval`), one
//! write in flight. Failed writes are retried with capped exponential backoff; refused points
//! (HTTP 400/413/422) are isolated by splitting the batch and dropped alone (see [`http`]).
//! When the bus closes, what is queued is written; if InfluxDB is down then, the rest goes to
//! the spool (with `spool_dir`), or after three more attempts one second apart is counted as
//! dropped.
//!
//! Stats: `delivered`, `dropped`, `queued` count readings; `retries` counts failed writes;
//! `connected` is whether the last write reached InfluxDB.

pub mod http;
pub mod line_protocol;
pub mod queue;
pub mod schema;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::{Reading, Subscription};
use tracing::{error, info, warn};

use self::http::{Api, Outcome, Writer};
pub use self::line_protocol::Precision;
use self::queue::{Batch, Queue, SpoolConfig};
pub use self::schema::{FieldNames, Preset, Schema};

/// Settings of an `influxdb` sink (see the module documentation).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server root URL.
    #[serde(default = "default_url")]
    pub url: String,
    /// 1.x database.
    pub db: Option<String>,
    /// 1.x retention policy.
    pub rp: Option<String>,
    /// 1.x user name.
    pub username: Option<String>,
    /// 1.x password.
    pub password: Option<String>,
    /// 2.x organisation.
    pub org: Option<String>,
    /// 2.x bucket.
    pub bucket: Option<String>,
    /// 2.x API token.
    pub token: Option<String>,
    /// Measurement name (default per preset).
    pub measurement: Option<String>,
    /// Point layout.
    #[serde(default)]
    pub preset: Preset,
    /// Field keys of the `default` layout.
    pub field_names: Option<FieldNames>,
    /// Whether to add the `meter` and `protocol` tags (default: only for the `default` layout).
    pub tags: Option<bool>,
    /// Timestamp precision.
    #[serde(default)]
    pub precision: Precision,
    /// Readings per write at most.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest wait before a partial batch is written.
    #[serde(default = "default_flush_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Compress request bodies.
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// Per-request timeout.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// First backoff after a failed write.
    #[serde(default = "default_retry_initial", with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest backoff.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
    /// Readings held in memory.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Spool folder.
    pub spool_dir: Option<PathBuf>,
    /// Spool size bound in bytes.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
}

fn default_url() -> String {
    "http://127.0.0.1:8086".into()
}
fn default_batch_size() -> usize {
    500
}
fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_retry_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}
fn default_queue_size() -> usize {
    10_000
}
fn default_spool_max_bytes() -> u64 {
    100_000_000
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("db", &self.db)
            .field("rp", &self.rp)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &redact(&self.token))
            .field("measurement", &self.measurement)
            .field("preset", &self.preset)
            .field("field_names", &self.field_names)
            .field("tags", &self.tags)
            .field("precision", &self.precision)
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .field("queue_size", &self.queue_size)
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_bytes", &self.spool_max_bytes)
            .finish()
    }
}

impl Config {
    /// A 1.x config for `db` with every other key at its default.
    pub fn v1(db: &str) -> Self {
        Config {
            db: Some(db.into()),
            ..Config::empty()
        }
    }

    /// A 2.x config with every other key at its default.
    pub fn v2(org: &str, bucket: &str, token: &str) -> Self {
        Config {
            org: Some(org.into()),
            bucket: Some(bucket.into()),
            token: Some(token.into()),
            ..Config::empty()
        }
    }

    fn empty() -> Self {
        Config {
            url: default_url(),
            db: None,
            rp: None,
            username: None,
            password: None,
            org: None,
            bucket: None,
            token: None,
            measurement: None,
            preset: Preset::Default,
            field_names: None,
            tags: None,
            precision: Precision::default(),
            batch_size: default_batch_size(),
            flush_interval: default_flush_interval(),
            gzip: true,
            timeout: default_timeout(),
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
            queue_size: default_queue_size(),
            spool_dir: None,
            spool_max_bytes: default_spool_max_bytes(),
        }
    }

    /// Semantic problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs: Vec<(String, String)> = Vec::new();
        let mut err = |k: &str, m: String| errs.push((k.to_string(), m));
        match reqwest::Url::parse(&self.url) {
            Ok(u) if u.scheme() == "http" => {}
            Ok(u) if u.scheme() == "https" => {
                if !cfg!(feature = "tls") {
                    err(
                        "url",
                        "https needs smart-meter built with the `tls` feature".into(),
                    );
                }
            }
            Ok(u) => err(
                "url",
                format!("scheme must be http or https, not {:?}", u.scheme()),
            ),
            Err(e) => err("url", format!("not a URL: {e}")),
        }
        let v1_keys = [
            ("db", &self.db),
            ("rp", &self.rp),
            ("username", &self.username),
            ("password", &self.password),
        ];
        let v2_keys = [
            ("org", &self.org),
            ("bucket", &self.bucket),
            ("token", &self.token),
        ];
        let set = |keys: &[(&str, &Option<String>)]| -> Vec<String> {
            keys.iter()
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| (*k).to_string())
                .collect()
        };
        let v1 = set(&v1_keys);
        let v2 = set(&v2_keys);
        match (v1.is_empty(), v2.is_empty()) {
            (true, true) => err(
                "db",
                "set either `db` (with optional `rp`, `username`, `password`) for InfluxDB 1.x \
                 or `org`, `bucket` and `token` for InfluxDB 2.x"
                    .into(),
            ),
            (false, false) => err(
                &v2[0],
                format!(
                    "{} belong to InfluxDB 1.x and {} to 2.x: set only one family",
                    v1.join(", "),
                    v2.join(", ")
                ),
            ),
            (false, true) => {
                if self.db.is_none() {
                    err("db", "InfluxDB 1.x needs `db`".into());
                }
                if self.password.is_some() && self.username.is_none() {
                    err("password", "needs `username`".into());
                }
            }
            (true, false) => {
                for (k, v) in v2_keys {
                    if v.is_none() {
                        err(
                            k,
                            format!(
                                "InfluxDB 2.x needs `org`, `bucket` and `token`; `{k}` is missing"
                            ),
                        );
                    }
                }
            }
        }
        for (k, v) in v1_keys.iter().chain(v2_keys.iter()) {
            if v.as_deref() == Some("") {
                err(k, "must not be empty".into());
            }
        }
        if let Some(t) = &self.token {
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                err("token", "must be printable ASCII without spaces".into());
            }
        }
        match (&self.measurement, self.preset) {
            (Some(_), Preset::SmartmeterV1) => err(
                "measurement",
                "preset \"smartmeter-v1\" writes fixed measurement names; remove `measurement`"
                    .into(),
            ),
            (Some(m), _) if m.trim_end_matches('\\').is_empty() => {
                err("measurement", "must not be empty".into())
            }
            _ => {}
        }
        if self.field_names.is_some() && self.preset != Preset::Default {
            err(
                "field_names",
                format!(
                    "applies only to preset \"default\"; preset {:?} has fixed field names",
                    self.preset.as_str()
                ),
            );
        }
        if self.batch_size == 0 {
            err("batch_size", "must be at least 1".into());
        }
        if self.queue_size == 0 {
            err("queue_size", "must be at least 1".into());
        }
        if self.timeout.is_zero() {
            err("timeout", "must be longer than 0s".into());
        }
        if self.retry_initial.is_zero() {
            err("retry_initial", "must be longer than 0s".into());
        }
        if self.retry_max < self.retry_initial {
            err(
                "retry_max",
                "must not be shorter than `retry_initial`".into(),
            );
        }
        if let Some(d) = &self.spool_dir {
            if d.as_os_str().is_empty() {
                err("spool_dir", "must be a folder path".into());
            }
        }
        errs
    }

    /// The point layout this config describes.
    pub fn schema(&self) -> Schema {
        Schema {
            preset: self.preset,
            measurement: self
                .measurement
                .clone()
                .or_else(|| self.preset.default_measurement().map(str::to_string))
                .unwrap_or_default(),
            field_names: self.field_names.unwrap_or_default(),
            tags: self.tags.unwrap_or(self.preset == Preset::Default),
        }
    }

    fn api(&self) -> anyhow::Result<Api> {
        match (&self.db, &self.org, &self.bucket, &self.token) {
            (Some(db), None, None, None) => Ok(Api::V1 {
                db: db.clone(),
                rp: self.rp.clone(),
                credentials: self.username.clone().map(|u| (u, self.password.clone())),
            }),
            (None, Some(org), Some(bucket), Some(token)) => Ok(Api::V2 {
                org: org.clone(),
                bucket: bucket.clone(),
                token: token.clone(),
            }),
            _ => anyhow::bail!(
                "set either `db` for InfluxDB 1.x or `org`, `bucket` and `token` for 2.x"
            ),
        }
    }
}

/// The line protocol for one reading under `schema` (lines joined by `\n`; empty when the
/// reading has nothing this layout writes).
pub fn encode(schema: &Schema, reading: &Reading, precision: Precision) -> String {
    line_protocol::encode_points(&schema.points(reading), precision)
}

/// After the bus closed, attempts made before giving up without a spool.
const ATTEMPTS_AFTER_CLOSE: u32 = 3;
/// Longest pause between those attempts.
const PAUSE_AFTER_CLOSE: Duration = Duration::from_secs(1);

/// Writes every reading until the bus closes, then delivers (or spools) what it holds.
///
/// # Errors
/// When the config is unusable (URL, client) or the spool folder cannot be created.
pub async fn run(
    config: Config,
    mut sub: Subscription,
    stats: Arc<SinkStats>,
) -> anyhow::Result<()> {
    let name = sub.name().to_string();
    let schema = config.schema();
    let writer = Writer::new(&config.url, config.api()?, config.gzip, config.timeout)?;
    let spool = config.spool_dir.clone().map(|dir| SpoolConfig {
        dir,
        max_bytes: config.spool_max_bytes,
    });
    let queue = Arc::new(
        Queue::open(
            &name,
            config.queue_size,
            config.batch_size,
            config.precision,
            spool,
            stats.clone(),
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot use spool folder {}: {e}",
                config
                    .spool_dir
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display()
            )
        })?,
    );
    if !queue.is_empty() {
        info!(sink = %name, readings = queue.len(), "Sending readings spooled by an earlier run.");
    }
    let task = tokio::spawn(write_loop(
        queue.clone(),
        writer,
        Backoff {
            initial: config.retry_initial,
            max: config.retry_max,
        },
        config.flush_interval,
        stats.clone(),
        name.clone(),
        config.spool_dir.is_some(),
    ));
    while let Some(r) = sub.next().await {
        let entry = encode(&schema, &r, config.precision);
        if entry.is_empty() {
            continue;
        }
        queue.push(entry).await;
    }
    queue.close();
    task.await
        .map_err(|e| anyhow::anyhow!("InfluxDB writer task failed: {e}"))?;
    Ok(())
}

#[derive(Clone, Copy)]
struct Backoff {
    initial: Duration,
    max: Duration,
}

async fn write_loop(
    queue: Arc<Queue>,
    writer: Writer,
    backoff: Backoff,
    flush_interval: Duration,
    stats: Arc<SinkStats>,
    name: String,
    spooling: bool,
) {
    let mut failing = false;
    while let Some(batch) = queue.next_batch(flush_interval).await {
        match deliver(
            &queue,
            &writer,
            &batch,
            backoff,
            &stats,
            &name,
            spooling,
            &mut failing,
        )
        .await
        {
            None => queue.settle(batch).await,
            Some(rest) => {
                let (saved, dropped) = queue.give_up(batch, rest).await;
                if saved > 0 {
                    warn!(sink = %name, spooled = saved,
                        "InfluxDB unreachable at shutdown; readings were spooled for the next start.");
                }
                if dropped > 0 {
                    error!(sink = %name, dropped,
                        "InfluxDB unreachable at shutdown; undelivered readings were dropped.");
                }
                return;
            }
        }
    }
}

/// Sends one batch, splitting it around refused points. `None` when every entry is settled;
/// `Some(undelivered)` when giving up after the input ended.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    queue: &Queue,
    writer: &Writer,
    batch: &Batch,
    backoff: Backoff,
    stats: &SinkStats,
    name: &str,
    spooling: bool,
    failing: &mut bool,
) -> Option<Vec<String>> {
    // Parts still to send; the last one is sent first, so halves are pushed in reverse.
    let mut parts: Vec<&[String]> = vec![&batch.entries[..]];
    let mut delay = backoff.initial;
    let mut attempts_after_close = 0u32;
    while let Some(part) = parts.pop() {
        let mut body = String::with_capacity(part.iter().map(|e| e.len() + 1).sum());
        for e in part {
            body.push_str(e);
            body.push('\n');
        }
        loop {
            match writer.send(&body, batch.precision).await {
                Outcome::Delivered => {
                    stats
                        .delivered
                        .fetch_add(part.len() as u64, Ordering::Relaxed);
                    stats.connected.store(true, Ordering::Relaxed);
                    if *failing {
                        *failing = false;
                        stats.set_last_error(None);
                        info!(sink = %name, "InfluxDB accepts writes again.");
                    }
                    delay = backoff.initial;
                    break;
                }
                Outcome::Refused(e) => {
                    stats.connected.store(true, Ordering::Relaxed);
                    if part.len() > 1 {
                        let (a, b) = part.split_at(part.len() / 2);
                        parts.push(b);
                        parts.push(a);
                    } else {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        stats.set_last_error(Some(e.clone()));
                        error!(sink = %name, error = %e, line = %body.trim_end(),
                            "InfluxDB refused a reading; it is dropped.");
                    }
                    break;
                }
                Outcome::Retry { error: e, after } => {
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    stats.connected.store(false, Ordering::Relaxed);
                    stats.set_last_error(Some(e.clone()));
                    *failing = true;
                    let mut wait = after.unwrap_or(delay).min(backoff.max);
                    if queue.is_closed() {
                        attempts_after_close += 1;
                        if spooling || attempts_after_close >= ATTEMPTS_AFTER_CLOSE {
                            let mut rest: Vec<String> = part.to_vec();
                            for p in parts.iter().rev() {
                                rest.extend(p.iter().cloned());
                            }
                            warn!(sink = %name, error = %e, "InfluxDB write failed after the input ended.");
                            return Some(rest);
                        }
                        wait = wait.min(PAUSE_AFTER_CLOSE);
                    }
                    warn!(sink = %name, error = %e, retry_in = ?wait,
                        "InfluxDB write failed; retrying.");
                    if queue.is_closed() {
                        tokio::time::sleep(wait).await;
                    } else {
                        queue.sleep_unless_closed(wait).await;
                    }
                    delay = delay.saturating_mul(2).min(backoff.max);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Config, String> {
        let v: serde_json::Value = toml_like(toml_text);
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    /// Tiny `key = value` reader for the tests (strings, numbers, booleans), so the crate does
    /// not need a TOML dependency for them.
    fn toml_like(text: &str) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once('=').unwrap();
            let v = v.trim();
            let val = if let Some(s) = v.strip_prefix('"') {
                serde_json::Value::String(s.trim_end_matches('"').to_string())
            } else {
                serde_json::from_str(v).unwrap()
            };
            m.insert(k.trim().to_string(), val);
        }
        serde_json::Value::Object(m)
    }

    fn keys(c: &Config) -> Vec<String> {
        c.validate().into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_v1_config_with_defaults_is_valid() {
        let c = parse("db = \"SmartMeter\"").unwrap();
        assert_eq!(c.validate(), vec![]);
        assert_eq!(c.url, "http://127.0.0.1:8086");
        assert!(c.gzip);
        assert_eq!(c.precision, Precision::Ms);
        assert_eq!(c.flush_interval, Duration::from_secs(1));
        let s = c.schema();
        assert_eq!(s.measurement, "smart_meter");
        assert!(s.tags);
        assert_eq!(s.field_names, FieldNames::Obis);
    }

    #[test]
    fn a_v2_config_needs_org_bucket_and_token() {
        let c = parse("org = \"home\"\nbucket = \"m\"\ntoken = \"t\"").unwrap();
        assert_eq!(c.validate(), vec![]);
        let c = parse("org = \"home\"\nbucket = \"m\"").unwrap();
        let errs = c.validate();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "token");
        assert!(
            errs[0].1.contains("`org`, `bucket` and `token`"),
            "{errs:?}"
        );
    }

    #[test]
    fn exactly_one_family_of_keys_is_allowed() {
        let c = parse("db = \"x\"\ntoken = \"t\"").unwrap();
        let errs = c.validate();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "token");
        assert!(
            errs[0]
                .1
                .contains("db belong to InfluxDB 1.x and token to 2.x"),
            "{errs:?}"
        );
        let c = parse("measurement = \"m\"").unwrap();
        let errs = c.validate();
        assert_eq!(errs[0].0, "db");
        assert!(errs[0].1.contains("`org`, `bucket` and `token`"));
        let c = parse("rp = \"autogen\"").unwrap();
        assert_eq!(keys(&c), ["db"]);
        let c = parse("db = \"x\"\npassword = \"p\"").unwrap();
        assert_eq!(keys(&c), ["password"]);
        let c = parse("db = \"\"").unwrap();
        assert_eq!(keys(&c), ["db"]);
        let c = parse("org = \"o\"\nbucket = \"b\"\ntoken = \"a b\"").unwrap();
        assert_eq!(keys(&c), ["token"]);
    }

    #[test]
    fn unknown_keys_and_values_are_rejected() {
        assert!(parse("db = \"x\"\ndatabase = \"y\"").is_err());
        assert!(parse("db = \"x\"\npreset = \"grafana\"").is_err());
        assert!(parse("db = \"x\"\nprecision = \"m\"").is_err());
        let c = parse("db = \"x\"\npreset = \"smartmeter-v1\"\nprecision = \"ns\"").unwrap();
        assert_eq!(c.preset, Preset::SmartmeterV1);
        assert_eq!(c.precision, Precision::Ns);
    }

    #[test]
    fn preset_specific_keys_are_checked() {
        let c = parse("db = \"x\"\npreset = \"smartmeter-v1\"\nmeasurement = \"m\"").unwrap();
        assert_eq!(keys(&c), ["measurement"]);
        let c = parse("db = \"x\"\npreset = \"strom\"\nfield_names = \"names\"").unwrap();
        assert_eq!(keys(&c), ["field_names"]);
        let c = parse("db = \"x\"\npreset = \"strom\"").unwrap();
        let s = c.schema();
        assert_eq!(s.measurement, "strom");
        assert!(!s.tags);
        let c =
            parse("db = \"x\"\npreset = \"kaifareader\"\nmeasurement = \"zaehler\"\ntags = true")
                .unwrap();
        let s = c.schema();
        assert_eq!(s.measurement, "zaehler");
        assert!(s.tags);
    }

    #[test]
    fn numbers_and_urls_are_checked() {
        let c = parse(
            "db = \"x\"\nbatch_size = 0\nqueue_size = 0\ntimeout = \"0s\"\nretry_initial = \"5s\"\nretry_max = \"1s\"",
        )
        .unwrap();
        assert_eq!(
            keys(&c),
            ["batch_size", "queue_size", "timeout", "retry_max"]
        );
        let c = parse("db = \"x\"\nurl = \"udp://h:8089\"").unwrap();
        assert_eq!(keys(&c), ["url"]);
        let c = parse("db = \"x\"\nurl = \"https://h:8086\"").unwrap();
        assert_eq!(keys(&c).is_empty(), cfg!(feature = "tls"));
    }

    #[test]
    fn debug_output_redacts_password_and_token() {
        let mut c = parse("db = \"x\"\nusername = \"u\"\npassword = \"hunter2\"").unwrap();
        c.token = Some("tok-secret".into());
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(!d.contains("tok-secret"), "{d}");
        assert!(d.contains("<redacted>"));
    }
}

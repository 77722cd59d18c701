//! `sql`: every reading into a history table, plus one aggregate row per meter, key and
//! epoch-aligned interval, in SQLite (embedded, the default), MariaDB/MySQL or PostgreSQL.
//!
//! ```toml
//! [default.sinks.db]
//! type = "sql"
//! url = "sqlite://data/readings.db"   # or mysql://user:pass@host/db, postgres://user:pass@host/db
//! interval = "5m"                      # aggregate bucket, aligned to the Unix epoch
//! aggregate = "first"                  # first | last | mean | min | max
//! spool_dir = "spool"                  # optional: keep the queue on disk too (survives restarts)
//! ```
//!
//! # Keys
//! | key | default | meaning |
//! |---|---|---|
//! | `url` | `sqlite://data/readings.db` | `sqlite://PATH` (folder and file are created; `mode=rwc` is added unless the URL has a `mode`), `mysql://` / `mariadb://`, `postgres://` / `postgresql://`. The password never appears in logs or `Debug`. |
//! | `layout` | `normalized` | `normalized` (below) or `evn-decrypter`, the exact tables of EVNSmartmeterDecrypter |
//! | `history_table` | `history` | table of every reading |
//! | `aggregate_table` | `history_aggregate`; `historyDebounced` with `layout = "evn-decrypter"` | table of the per-interval aggregates |
//! | `interval` | `5m` | bucket length, whole seconds; buckets start at multiples of it since the epoch |
//! | `aggregate` | `first` | `first` (the predecessor's rule), `last`, `mean`, `min`, `max` |
//! | `meters` | all | store only these meter ids |
//! | `queue_size` | 10000 | readings held in memory while the database is unreachable; beyond it the oldest are dropped and counted (with `spool_dir`: the rest waits on disk) |
//! | `spool_dir` | none | folder of the on-disk queue `<spool_dir>/<sink name>.spool`: queued readings survive a restart or crash and are stored at the next start |
//! | `spool_max_mb` | 64 | bound of the spool file in MiB; beyond it the oldest readings are dropped and counted |
//! | `batch_size` | 100 | readings per transaction |
//! | `retry_max` | `60s` | cap of the reconnect backoff (it starts at 0.5 s and doubles) |
//! | `timeout` | `30s` | limit for connecting and for one transaction |
//! | `drain_timeout` | `30s` | after the bus closes (shutdown), how long an unreachable database is retried before the rest is dropped; with `spool_dir` the rest stays in the spool instead, and a database that fails after the bus closed is not retried |
//!
//! # Layout `normalized`
//! `history` holds one row per sample: `meter`, `ts` (the reading's time: the meter clock
//! when it has a UTC offset, else the receive time), `code` (the key of the reading JSON:
//! `1.0.1.8.0.255`, `kmp.60`), `value` (numbers), `value_text` (text, octet strings and times
//! as ISO 8601), `unit` (the symbol or NULL). The primary key is (`meter`, `code`, `ts`); a row
//! already there is left alone, so a retried or replayed batch is not stored twice.
//!
//! The reading's `protocol`, `received_at` (when the meter clock was used) and
//! `authenticated` flag are not stored; the `jsonl` sink keeps them.
//!
//! The aggregate table holds numbers only: `meter`, `ts` (bucket start), `code`, `value`,
//! `unit`, `samples` (how many samples went in); primary key (`meter`, `code`, `ts`).
//!
//! Numbers are exact: `NUMERIC` in PostgreSQL, `DECIMAL(38,9)` in MariaDB/MySQL (fractions
//! rounded to 9 digits; a number beyond 29 integer digits goes to `value_text`), `TEXT` in
//! SQLite holding the decimal string (`CAST(value AS REAL)` in queries). Times: `TIMESTAMPTZ(3)`
//! in PostgreSQL, `DATETIME(3)` in UTC in MariaDB/MySQL, RFC 3339 text
//! (`2021-09-27T07:47:15.000Z`, sorts chronologically) in SQLite.
//!
//! # Layout `evn-decrypter`
//! The tables of EVNSmartmeterDecrypter's `SaveToDB.py`: `id`, `timestamp` (Unix seconds),
//! `WIn`, `WOut` (Wh, integers), `PIn`, `POut`, `U1`–`U3`, `I1`–`I3`, `PF` (doubles); on
//! MariaDB/MySQL with its DDL verbatim, so existing dashboards and an existing table keep
//! working. As there, a row needs all eleven values (1.8.0, 2.8.0, 1.7.0, 2.7.0, 32/52/72.7.0,
//! 31/51/71.7.0, 13.7.0); other readings are counted as dropped. The timestamp is true UTC
//! (its bug C3 is not reproduced). One table serves one meter: use `meters` when several feed
//! the gateway. The aggregate row of a bucket carries the chosen sample's timestamp for
//! `first`/`last`, the bucket start for the others.
//!
//! # Aggregation
//! In memory, per meter and key (see [`aggregate`]): a bucket is written when it closes (a
//! reading of the next bucket arrives, the meter is silent for one interval, or shutdown).
//! `first` stores exactly the sample the predecessor stored in `historyDebounced` — the first
//! sample of each epoch-aligned bucket — without skipping the first bucket after start. After
//! a restart within a bucket, the stored row is merged with the rest (`first` keeps the stored
//! sample, `mean` weights by `samples`), so restarts do not lose the earlier part.
//!
//! # Schema and migrations
//! The sink connects at start (before the first reading). On every (re)connect the sink runs `CREATE TABLE IF NOT EXISTS` and records each table in
//! `smart_meter_schema` (`table_name`, `layout`, `version`). A table recorded with another
//! layout, a newer version, or an existing table without the expected columns stops the sink
//! with an error naming the table; later versions add migration steps keyed on `version`.
//!
//! On MariaDB/MySQL the session adds `STRICT_TRANS_TABLES` to `sql_mode`, so a value a column
//! cannot hold is refused instead of silently clamped.
//!
//! # Outages
//! The bus is drained into a bounded queue (`queue_size` readings) that a writer task empties
//! in batches, one transaction each. When the database is unreachable (or locked, or read-only)
//! the writer reconnects with capped exponential backoff (0.5 s doubling to `retry_max`) while
//! readings queue; none is lost within the bound, and overflow drops the oldest readings
//! (aggregates are kept) and counts them in `dropped`. A batch the database rejects (a value out
//! of range, SQLSTATE classes 22/23) is retried row by row; only the rejected readings are
//! dropped, with an error log. `delivered` counts readings stored; `queued` counts queued items
//! (readings and closed buckets). While the database is unreachable the writer gives its batch
//! back to the queue, so an overflow meanwhile drops the oldest readings, not newer ones.
//!
//! # Never losing a reading: `spool_dir`
//! The queue holds every item (reading or closed bucket) as a compact binary record (see
//! [`record`]) in the sink's [`Queue`](crate::queue). With `spool_dir`, each record is also
//! appended to `<spool_dir>/<sink name>.spool` before it is queued (the same file format as the
//! MQTT sink's spool): at most `queue_size` records stay in memory, the rest are read back from
//! the file as the queue drains, and the file is bounded by `spool_max_mb` (beyond it the
//! oldest readings are dropped and counted; closed buckets are moved to the end instead while
//! readings can go). At shutdown, what the database did not take stays in the spool (logged,
//! not counted as dropped, still counted in `queued`), and the next start stores it before
//! anything new ("Found readings spooled by an earlier run"). A crash loses nothing written to
//! the file; items stored just before a crash may be written again after it (at least once, as
//! with the MQTT spool): harmless for `history` rows (their key ignores the repeat), while a
//! predecessor-layout row may then appear twice and a bucket merged with its stored row count
//! its samples twice. A spooled record that cannot be decoded (damaged, or written
//! by an incompatible version) is skipped with a warning and counted as dropped.

pub mod aggregate;
pub mod db;
pub mod dialect;
pub mod encode;
pub mod record;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::{MeterId, Reading, Subscription};
use sqlx::AnyConnection;
use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::queue::{Queue, SpoolConfig, Taken};
use aggregate::Aggregator;
pub use aggregate::Mode;
use db::{DbError, Item, Target};
use dialect::{Dialect, SCHEMA_TABLE};

/// First reconnect delay.
const INITIAL_RETRY: Duration = Duration::from_millis(500);
/// Minimum time between two "reading skipped" or "queue full" warnings.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Table layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One row per sample; aggregates per key.
    #[default]
    Normalized,
    /// The exact tables of EVNSmartmeterDecrypter (`history`, `historyDebounced`).
    EvnDecrypter,
}

/// Settings of an `sql` sink. See the module documentation for every key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Connection URL.
    #[serde(default = "default_url")]
    pub url: String,
    /// Table layout.
    #[serde(default)]
    pub layout: Layout,
    /// History table name (default `history`).
    #[serde(default)]
    pub history_table: Option<String>,
    /// Aggregate table name (default by layout).
    #[serde(default)]
    pub aggregate_table: Option<String>,
    /// Aggregation bucket length.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Aggregation mode.
    #[serde(default)]
    pub aggregate: Mode,
    /// Meter ids to store; empty: all.
    #[serde(default)]
    pub meters: Vec<String>,
    /// Readings held while the database is unreachable.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Readings per transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Cap of the reconnect backoff.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
    /// Limit for connecting and for one transaction.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// How long an unreachable database is retried after shutdown began.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Folder for the on-disk queue.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Bound of the spool file in MiB.
    #[serde(default = "default_spool_max_mb")]
    pub spool_max_mb: u64,
}

fn default_url() -> String {
    "sqlite://data/readings.db".into()
}
fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_queue_size() -> usize {
    10_000
}
fn default_batch_size() -> usize {
    100
}
fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_spool_max_mb() -> u64 {
    64
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: default_url(),
            layout: Layout::default(),
            history_table: None,
            aggregate_table: None,
            interval: default_interval(),
            aggregate: Mode::default(),
            meters: Vec::new(),
            queue_size: default_queue_size(),
            batch_size: default_batch_size(),
            retry_max: default_retry_max(),
            timeout: default_timeout(),
            drain_timeout: default_timeout(),
            spool_dir: None,
            spool_max_mb: default_spool_max_mb(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("layout", &self.layout)
            .field("history_table", &self.history_table())
            .field("aggregate_table", &self.aggregate_table())
            .field("interval", &self.interval)
            .field("aggregate", &self.aggregate)
            .field("meters", &self.meters)
            .field("queue_size", &self.queue_size)
            .field("batch_size", &self.batch_size)
            .field("retry_max", &self.retry_max)
            .field("timeout", &self.timeout)
            .field("drain_timeout", &self.drain_timeout)
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_mb", &self.spool_max_mb)
            .finish()
    }
}

impl Config {
    /// The history table name.
    pub fn history_table(&self) -> &str {
        self.history_table.as_deref().unwrap_or("history")
    }

    /// The aggregate table name.
    pub fn aggregate_table(&self) -> &str {
        match (&self.aggregate_table, self.layout) {
            (Some(t), _) => t,
            (None, Layout::Normalized) => "history_aggregate",
            (None, Layout::EvnDecrypter) => "historyDebounced",
        }
    }

    /// The backend, from the URL scheme.
    pub fn dialect(&self) -> Option<Dialect> {
        Dialect::from_url(&self.url)
    }

    /// Semantic problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |k: &str, m: String| out.push((k.to_string(), m));
        if self.dialect().is_none() {
            bad(
                "url",
                format!(
                    "{:?} must start with sqlite://, mysql://, mariadb://, postgres:// or postgresql://",
                    redact_url(&self.url)
                ),
            );
        }
        for (key, name) in [
            ("history_table", self.history_table()),
            ("aggregate_table", self.aggregate_table()),
        ] {
            if let Err(m) = check_table_name(name) {
                bad(key, m);
            }
        }
        if self
            .history_table()
            .eq_ignore_ascii_case(self.aggregate_table())
        {
            bad(
                "aggregate_table",
                "must differ from history_table".to_string(),
            );
        }
        if self.interval < Duration::from_secs(1) || self.interval.subsec_nanos() != 0 {
            bad(
                "interval",
                "must be a whole number of seconds, at least 1s".to_string(),
            );
        }
        for m in &self.meters {
            if let Err(e) = MeterId::new(m) {
                bad("meters", e);
            }
        }
        if self.queue_size == 0 {
            bad("queue_size", "must be at least 1".to_string());
        }
        if self.batch_size == 0 {
            bad("batch_size", "must be at least 1".to_string());
        }
        for (k, d) in [("retry_max", self.retry_max), ("timeout", self.timeout)] {
            if d.is_zero() {
                bad(k, "must be longer than 0s".to_string());
            }
        }
        if self
            .spool_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            bad("spool_dir", "must be a folder path".to_string());
        }
        if self.spool_max_mb == 0 {
            bad("spool_max_mb", "must be at least 1".to_string());
        }
        out
    }
}

fn check_table_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "{name:?} must be 1 to 64 characters of A-Z, a-z, 0-9 and _, not starting with a digit"
        ));
    }
    if name.eq_ignore_ascii_case(SCHEMA_TABLE) {
        return Err(format!("{name:?} is the gateway's schema table"));
    }
    Ok(())
}

/// The URL with its password (user info and `password=` query parameters) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{host}"),
                    None => authority.to_string(),
                },
                None => authority.to_string(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_string(),
    };
    if let Some(q) = query {
        out.push('?');
        let parts: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

/// The secrets of a URL (password in the user info or a `password=` parameter), to scrub
/// from error texts.
fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    if let Some((_, rest)) = head.split_once("://") {
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, pw)) = userinfo.split_once(':') {
                out.push(pw.to_string());
            }
        }
    }
    for p in query.into_iter().flat_map(|q| q.split('&')) {
        if let Some((k, v)) = p.split_once('=') {
            if k.to_ascii_lowercase().contains("password") {
                out.push(v.to_string());
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Removes secrets from error texts.
struct Scrubber(Vec<String>);

impl Scrubber {
    fn scrub(&self, e: &dyn fmt::Display) -> String {
        let mut s = e.to_string();
        for secret in &self.0 {
            s = s.replace(secret.as_str(), "***");
        }
        s
    }
}

/// The queue between the bus reader and the database writer: every item as a [`record`], in
/// memory or spooled.
struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    notify: Notify,
    /// Wakes a writer backing off when the bus closes.
    closing: Notify,
    closed: AtomicBool,
    spool_error_logged: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item`; when full, drops the oldest reading (closed buckets are kept). Returns
    /// whether something was dropped.
    fn push(&self, item: &Item, stats: &SinkStats, name: &str) -> bool {
        let data = record::encode(item);
        let (dropped, error) = {
            let mut q = self.lock();
            let r = q.push(data);
            stats.queued.store(q.len() as i64, Ordering::Relaxed);
            r
        };
        if dropped > 0 {
            stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        if let Some(e) = error {
            if !self.spool_error_logged.swap(true, Ordering::Relaxed) {
                error!(sink = %name, error = %e,
                    "Cannot write the spool; keeping readings in memory only.");
            }
            stats.set_last_error(Some(format!("spool: {e}")));
        }
        self.notify.notify_one();
        dropped > 0
    }

    /// Up to `n` records, oldest first.
    fn take(&self, n: usize) -> Vec<Taken> {
        let mut q = self.lock();
        std::iter::from_fn(|| q.take()).take(n).collect()
    }

    /// Removes stored (or given up) records.
    fn ack(&self, seqs: &[u64], stats: &SinkStats) {
        let mut q = self.lock();
        if let Err(e) = q.ack_all(seqs) {
            stats.set_last_error(Some(format!("spool: {e}")));
        }
        stats.queued.store(q.len() as i64, Ordering::Relaxed);
    }

    /// Gives the records of an abandoned batch back to the queue.
    fn release(&self) {
        self.lock().release();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.notify.notify_one();
        self.closing.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// The items the writer is storing, with their queue records.
#[derive(Default)]
struct Batch {
    seqs: Vec<u64>,
    items: Vec<Item>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn clear(&mut self) {
        self.seqs.clear();
        self.items.clear();
    }
}

/// The next batch of up to `n` items. Records that do not decode are skipped, counted as
/// dropped and removed.
fn next_batch(shared: &Shared, n: usize, stats: &SinkStats, name: &str) -> Batch {
    let mut batch = Batch::default();
    loop {
        let taken = shared.take(n);
        if taken.is_empty() {
            return batch;
        }
        let mut damaged = Vec::new();
        for t in taken {
            match record::decode(&t.data) {
                Some(item) => {
                    batch.seqs.push(t.seq);
                    batch.items.push(item);
                }
                None => damaged.push(t.seq),
            }
        }
        if !damaged.is_empty() {
            stats
                .dropped
                .fetch_add(damaged.len() as u64, Ordering::Relaxed);
            warn!(sink = %name, records = damaged.len(), "Dropped damaged spooled readings.");
            shared.ack(&damaged, stats);
        }
        if !batch.is_empty() {
            return batch;
        }
    }
}

/// Stores every reading until the bus closes, then writes the open buckets and what is queued.
///
/// # Errors
/// An invalid configuration, a spool folder that cannot be used, or a database whose tables
/// cannot be used (another layout, a newer schema). An unreachable database is retried, not
/// an error.
pub async fn run(
    config: Config,
    mut sub: Subscription,
    stats: Arc<SinkStats>,
) -> anyhow::Result<()> {
    let problems = config.validate();
    if let Some((k, m)) = problems.first() {
        anyhow::bail!("sql sink: {k}: {m}");
    }
    let dialect = config
        .dialect()
        .ok_or_else(|| anyhow::anyhow!("sql sink: unsupported url"))?;
    let name: Arc<str> = sub.name().into();
    let target = Target {
        dialect,
        layout: config.layout,
        history: config.history_table().to_string(),
        aggregate: config.aggregate_table().to_string(),
        mode: config.aggregate,
    };
    let queue = match &config.spool_dir {
        Some(dir) => Queue::open(
            config.queue_size,
            &SpoolConfig {
                dir: dir.clone(),
                name: name.to_string(),
                max_bytes: config.spool_max_mb.saturating_mul(1024 * 1024),
            },
        )
        .map_err(|e| anyhow::anyhow!("sql sink: cannot use spool_dir {}: {e}", dir.display()))?,
        None => Queue::memory(config.queue_size),
    }
    .keeping(record::is_aggregate);
    if !queue.is_empty() {
        info!(sink = %name, queued = queue.len(),
            "Found readings spooled by an earlier run; storing them first.");
    }
    stats.queued.store(queue.len() as i64, Ordering::Relaxed);
    let shared = Arc::new(Shared {
        queue: Mutex::new(queue),
        capacity: config.queue_size,
        notify: Notify::new(),
        closing: Notify::new(),
        closed: AtomicBool::new(false),
        spool_error_logged: AtomicBool::new(false),
    });
    let mut writer = tokio::spawn(write_loop(
        config.clone(),
        target,
        shared.clone(),
        stats.clone(),
        name.clone(),
    ));

    let mut agg = Aggregator::new(config.aggregate, config.interval);
    let mut tick = tokio::time::interval(config.interval.min(Duration::from_secs(60)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned: Option<Instant> = None;
    let mut warn_due = move || {
        let now = Instant::now();
        let due = warned.is_none_or(|t| now.duration_since(t) >= WARN_EVERY);
        if due {
            warned = Some(now);
        }
        due
    };
    loop {
        tokio::select! {
            r = sub.next() => {
                let Some(r) = r else { break };
                if !config.meters.is_empty() && !config.meters.iter().any(|m| m == r.meter.as_str()) {
                    continue;
                }
                match accept(&r, config.layout, &mut agg, &shared, &stats, &name) {
                    Err(e) => {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        if warn_due() {
                            warn!(sink = %name, meter = %r.meter, error = %e,
                                "Reading lacks the values of the evn-decrypter layout; not stored.");
                        }
                    }
                    Ok(true) if warn_due() => {
                        warn!(sink = %name, queue_size = shared.capacity,
                            "SQL queue full; the oldest readings are being dropped.");
                    }
                    Ok(_) => {}
                }
            }
            _ = tick.tick() => {
                for b in agg.close_idle(Instant::now(), config.interval) {
                    shared.push(&Item::Aggregate(b), &stats, &name);
                }
            }
            res = &mut writer => {
                // The writer only ends early on a fatal error.
                finish(&shared, &stats, &name);
                return match res {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(anyhow::anyhow!("sql sink writer failed: {e}")),
                };
            }
        }
    }
    for b in agg.flush() {
        shared.push(&Item::Aggregate(b), &stats, &name);
    }
    shared.close();
    let res = writer.await;
    finish(&shared, &stats, &name);
    match res {
        Ok(r) => r,
        Err(e) => Err(anyhow::anyhow!("sql sink writer failed: {e}")),
    }
}

/// Saves the spool; says what it keeps for the next start.
fn finish(shared: &Shared, stats: &SinkStats, name: &str) {
    let mut q = shared.lock();
    if let Err(e) = q.close() {
        error!(sink = %name, error = %e, "Cannot save the spool.");
    }
    let left = q.len();
    stats.queued.store(left as i64, Ordering::Relaxed);
    if left > 0 && q.is_spooled() {
        info!(sink = %name, queued = left,
            "Kept undelivered readings in the spool for the next start.");
    }
}

/// Queues one reading and feeds the aggregator. `Ok(true)`: the queue was full and an older
/// reading was dropped.
fn accept(
    r: &Reading,
    layout: Layout,
    agg: &mut Aggregator,
    shared: &Shared,
    stats: &SinkStats,
    name: &str,
) -> Result<bool, encode::CompatError> {
    let ts = encode::reading_millis(r);
    let meter = r.meter.as_str();
    let mut dropped = false;
    let closed = match layout {
        Layout::Normalized => {
            let rows = encode::history_rows(r);
            if rows.is_empty() {
                return Ok(false);
            }
            let samples = encode::numeric_samples(&rows);
            dropped |= shared.push(&Item::History(rows), stats, name);
            if samples.is_empty() {
                None
            } else {
                agg.push(meter, ts, samples, Instant::now())
            }
        }
        Layout::EvnDecrypter => {
            let row = encode::compat_row(r)?;
            let samples = row.samples();
            dropped |= shared.push(&Item::CompatHistory(Box::new(row)), stats, name);
            agg.push(meter, ts, samples, Instant::now())
        }
    };
    if let Some(b) = closed {
        dropped |= shared.push(&Item::Aggregate(b), stats, name);
    }
    Ok(dropped)
}

/// Connects, writes batches, reconnects with backoff.
async fn write_loop(
    config: Config,
    target: Target,
    shared: Arc<Shared>,
    stats: Arc<SinkStats>,
    name: Arc<str>,
) -> anyhow::Result<()> {
    let scrubber = Scrubber(url_secrets(&config.url));
    let scrub = |e: &dyn fmt::Display| scrubber.scrub(e);
    let url = redact_url(&config.url);
    let spooled = config.spool_dir.is_some();
    let retry_max = config.retry_max.max(Duration::from_millis(1));
    let mut delay = INITIAL_RETRY.min(retry_max);
    let mut conn: Option<AnyConnection> = None;
    let mut batch = Batch::default();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut ever_connected = false;
    loop {
        if batch.is_empty() {
            batch = next_batch(&shared, config.batch_size, &stats, &name);
            if batch.is_empty() {
                if shared.is_closed() {
                    break;
                }
                // Connect at start even before the first reading, so the schema exists and a
                // misconfiguration shows at once.
                if ever_connected {
                    shared.notify.notified().await;
                    continue;
                }
            }
        }
        if shared.is_closed() && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + config.drain_timeout);
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            give_up(&shared, &mut batch, &stats, &name, spooled);
            return Ok(());
        }

        let failure: String;
        if let Some(c) = conn.as_mut() {
            match tokio::time::timeout(config.timeout, db::write(c, &target, &batch.items)).await {
                Ok(Ok(())) => {
                    done(&shared, &stats, &batch.seqs, &batch.items);
                    batch.clear();
                    delay = INITIAL_RETRY.min(retry_max);
                    continue;
                }
                Ok(Err(DbError::Rejected(e))) => {
                    warn!(sink = %name, error = %scrub(&e),
                        "Database rejected a batch; writing its readings one by one.");
                    match write_one_by_one(
                        c, &target, &mut batch, &shared, &stats, &name, &scrubber,
                    )
                    .await
                    {
                        Ok(()) => continue,
                        Err(e) => failure = scrub(&e),
                    }
                }
                Ok(Err(DbError::Fatal(m))) => return Err(anyhow::anyhow!("sql sink: {m}")),
                Ok(Err(DbError::Transient(e))) => failure = scrub(&e),
                Err(_) => failure = format!("no answer within {:?}", config.timeout),
            }
        } else {
            let attempt = async {
                let mut c = db::connect(&config.url, target.dialect).await?;
                db::migrate(&mut c, &target).await?;
                Ok::<_, DbError>(c)
            };
            match tokio::time::timeout(config.timeout, attempt).await {
                Ok(Ok(c)) => {
                    conn = Some(c);
                    stats.connected.store(true, Ordering::Relaxed);
                    stats.set_last_error(None);
                    if ever_connected {
                        info!(sink = %name, url = %url, "Reconnected to the database.");
                    } else {
                        info!(sink = %name, url = %url, "Connected to the database.");
                    }
                    ever_connected = true;
                    continue;
                }
                Ok(Err(DbError::Fatal(m))) => {
                    let m = scrub(&m);
                    stats.set_last_error(Some(m.clone()));
                    error!(sink = %name, error = %m, "Database schema is unusable; the sink stops.");
                    return Err(anyhow::anyhow!("sql sink: {m}"));
                }
                Ok(Err(e)) => failure = scrub(&e),
                Err(_) => failure = format!("no connection within {:?}", config.timeout),
            }
        }

        // Transient failure: drop the connection (rolls back) and give the batch back to the
        // queue (an overflow meanwhile then drops the oldest readings); back off and retry.
        conn = None;
        shared.release();
        batch.clear();
        stats.connected.store(false, Ordering::Relaxed);
        stats.retries.fetch_add(1, Ordering::Relaxed);
        stats.set_last_error(Some(failure.clone()));
        warn!(sink = %name, url = %url, error = %failure, retry_in = ?delay,
            queued = stats.queued.load(Ordering::Relaxed),
            "Database unreachable; retrying.");
        if spooled && shared.is_closed() {
            // Shutting down with a spool: what is left waits there for the next start.
            return Ok(());
        }
        let wake = tokio::time::Instant::now() + delay;
        let wake = deadline.map_or(wake, |d| wake.min(d));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            // Shutdown began: try once more at once instead of sleeping out the backoff.
            _ = shared.closing.notified(), if deadline.is_none() => {}
        }
        delay = delay.saturating_mul(2).min(retry_max);
    }
    Ok(())
}

/// `drain_timeout` is over: without a spool the rest is dropped and counted; with one it stays
/// there for the next start.
fn give_up(shared: &Shared, batch: &mut Batch, stats: &SinkStats, name: &str, spooled: bool) {
    if spooled {
        shared.release();
        batch.clear();
        return;
    }
    let mut seqs = std::mem::take(&mut batch.seqs);
    batch.clear();
    seqs.extend(shared.take(usize::MAX).into_iter().map(|t| t.seq));
    let lost = seqs.len() as u64;
    stats.dropped.fetch_add(lost, Ordering::Relaxed);
    shared.ack(&seqs, stats);
    error!(sink = %name, dropped = lost,
        "Database still unreachable at shutdown; queued readings were dropped.");
}

/// Counts stored items and removes them from the queue.
fn done(shared: &Shared, stats: &SinkStats, seqs: &[u64], items: &[Item]) {
    let readings: u64 = items.iter().map(Item::readings).sum();
    stats.delivered.fetch_add(readings, Ordering::Relaxed);
    shared.ack(seqs, stats);
}

/// After a rejected batch: each item in its own transaction, dropping those rejected. Stops
/// at a transient error, leaving the unwritten items in `batch`.
async fn write_one_by_one(
    conn: &mut AnyConnection,
    target: &Target,
    batch: &mut Batch,
    shared: &Shared,
    stats: &SinkStats,
    name: &str,
    scrubber: &Scrubber,
) -> Result<(), DbError> {
    let scrub = |e: &dyn fmt::Display| scrubber.scrub(e);
    while let (Some(&seq), Some(item)) = (batch.seqs.first(), batch.items.first()) {
        match db::write(conn, target, std::slice::from_ref(item)).await {
            Ok(()) => done(shared, stats, &[seq], std::slice::from_ref(item)),
            Err(DbError::Rejected(e)) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                shared.ack(&[seq], stats);
                stats.set_last_error(Some(scrub(&e)));
                error!(sink = %name, error = %scrub(&e), "Database rejected a reading; dropped.");
            }
            Err(e) => return Err(e),
        }
        batch.seqs.remove(0);
        batch.items.remove(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(json: &str) -> Result<Config, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_to_an_embedded_sqlite_file_and_five_minute_first_samples() {
        let c = parse("{}").unwrap();
        assert_eq!(c.url, "sqlite://data/readings.db");
        assert_eq!(c.dialect(), Some(Dialect::Sqlite));
        assert_eq!(c.history_table(), "history");
        assert_eq!(c.aggregate_table(), "history_aggregate");
        assert_eq!(c.interval, Duration::from_secs(300));
        assert_eq!(c.aggregate, Mode::First);
        assert_eq!((c.queue_size, c.batch_size), (10_000, 100));
        assert_eq!((c.spool_dir.as_deref(), c.spool_max_mb), (None, 64));
        assert!(c.validate().is_empty());
    }

    #[test]
    fn the_predecessor_layout_defaults_to_its_table_names() {
        let c = parse(r#"{"layout": "evn-decrypter", "url": "mysql://u:p@h/smartmeter"}"#).unwrap();
        assert_eq!(c.layout, Layout::EvnDecrypter);
        assert_eq!(
            (c.history_table(), c.aggregate_table()),
            ("history", "historyDebounced")
        );
    }

    #[test]
    fn reads_every_key() {
        let c = parse(
            r#"{"url": "postgres://u@h/db", "history_table": "h", "aggregate_table": "a",
                "interval": "15m", "aggregate": "mean", "meters": ["evn"], "queue_size": 5,
                "batch_size": 2, "retry_max": "5s", "timeout": "3s", "drain_timeout": "1s",
                "spool_dir": "spool", "spool_max_mb": 8}"#,
        )
        .unwrap();
        assert_eq!(c.interval, Duration::from_secs(900));
        assert_eq!(c.spool_dir.as_deref(), Some(std::path::Path::new("spool")));
        assert_eq!(c.spool_max_mb, 8);
        assert_eq!(c.aggregate, Mode::Mean);
        assert_eq!(c.drain_timeout, Duration::from_secs(1));
        assert!(c.validate().is_empty());
        assert!(parse(r#"{"aggregate": "median"}"#).is_err());
        assert!(parse(r#"{"tabel": "x"}"#).is_err());
    }

    #[test]
    fn rejects_unusable_settings_with_their_keys() {
        let c = parse(
            r#"{"url": "oracle://h", "history_table": "x; DROP TABLE y", "aggregate_table": "smart_meter_schema",
                "interval": "1500ms", "meters": ["Bad Name"], "queue_size": 0, "batch_size": 0,
                "timeout": "0s", "spool_dir": "", "spool_max_mb": 0}"#,
        )
        .unwrap();
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "url",
                "history_table",
                "aggregate_table",
                "interval",
                "meters",
                "queue_size",
                "batch_size",
                "timeout",
                "spool_dir",
                "spool_max_mb"
            ]
        );
        let same = parse(r#"{"history_table": "t", "aggregate_table": "T"}"#).unwrap();
        assert_eq!(same.validate()[0].0, "aggregate_table");
    }

    #[test]
    fn never_shows_the_password() {
        let c = parse(r#"{"url": "mysql://smart:s3cr%21t@db.lan:3306/smartmeter?password=other"}"#)
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("mysql://smart:***@db.lan:3306/smartmeter?password=***"),
            "{dbg}"
        );
        assert!(!dbg.contains("s3cr") && !dbg.contains("other"));
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("sqlite://data/r.db?mode=rwc"),
            "sqlite://data/r.db?mode=rwc"
        );
        assert_eq!(url_secrets(&c.url), ["s3cr%21t", "other"]);
        let bad = parse(r#"{"url": "ftp://u:hunter2@h"}"#).unwrap();
        assert!(!format!("{:?}", bad.validate()).contains("hunter2"));
    }
}

//! `jsonl`: the reading JSON of SPEC.md, one object per line, appended to a file or written to
//! stdout (`path = "-"`). Lines are flushed whenever the bus has nothing more buffered, so a
//! burst is written in one go and a quiet meter's reading is on disk at once. The lines of a
//! burst are written into one reused buffer and handed to the file in writes of up to
//! [`BATCH_BYTES`].

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::Subscription;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A burst of lines is written to the file once this many bytes are buffered (and at its end).
pub const BATCH_BYTES: usize = 256 * 1024;

/// Settings of a `jsonl` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// File to append to, or `-` for stdout. Parent folders are created.
    #[serde(default = "default_path")]
    pub path: PathBuf,
}

fn default_path() -> PathBuf {
    PathBuf::from("-")
}

impl Config {
    /// The path must not be empty.
    pub fn validate(&self) -> Vec<(String, String)> {
        if self.path.as_os_str().is_empty() {
            return vec![(
                "path".into(),
                "must be a file path or \"-\" for stdout".into(),
            )];
        }
        Vec::new()
    }
}

/// Writes every reading until the bus closes, then flushes.
pub async fn run(config: Config, sub: Subscription, stats: Arc<SinkStats>) -> anyhow::Result<()> {
    if config.path.as_os_str() == "-" {
        return write_all(tokio::io::stdout(), sub, stats).await;
    }
    if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot create folder {} for jsonl output: {e}",
                dir.display()
            )
        })?;
    }
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.path)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open {} for jsonl output: {e}",
                config.path.display()
            )
        })?;
    write_all(file, sub, stats).await
}

async fn write_all<W: AsyncWrite + Unpin>(
    mut out: W,
    mut sub: Subscription,
    stats: Arc<SinkStats>,
) -> anyhow::Result<()> {
    stats.connected.store(true, Ordering::Relaxed);
    let mut buf: Vec<u8> = Vec::with_capacity(BATCH_BYTES + 4096);
    while let Some(r) = sub.next().await {
        r.write_json(&mut buf);
        buf.push(b'\n');
        drop(r);
        let mut pending = 1u64;
        // Drain whatever is already buffered before paying for a write and a flush.
        while let Ok(Some(r)) = sub.try_next() {
            r.write_json(&mut buf);
            buf.push(b'\n');
            pending += 1;
            if buf.len() >= BATCH_BYTES {
                out.write_all(&buf).await?;
                buf.clear();
            }
        }
        out.write_all(&buf).await?;
        buf.clear();
        out.flush().await?;
        stats.delivered.fetch_add(pending, Ordering::Relaxed);
    }
    out.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smart_meter_core::{Bus, Decimal, Key, MeterId, Obis, Reading, Sample, Unit};

    #[tokio::test]
    async fn appends_one_json_object_per_line_and_flushes_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.jsonl");
        let bus = Bus::new(16);
        let sub = bus.subscribe("j");
        let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
        let p = bus.publisher();
        drop(bus);
        let task = tokio::spawn(run(Config { path: path.clone() }, sub, stats.clone()));
        for i in 0..3 {
            let mut r = Reading::new(MeterId::new("m").unwrap(), "test");
            r.samples.push(Sample::number(
                Key::Obis(Obis::ENERGY_IMPORT),
                Decimal::new(i, 0),
                Some(Unit::WH),
            ));
            p.publish(r);
        }
        drop(p);
        task.await.unwrap().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        for (i, l) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["values"]["1.0.1.8.0.255"]["value"], i as i64);
            assert_eq!(v["values"]["1.0.1.8.0.255"]["unit"], "Wh");
        }
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_burst_larger_than_one_batch_is_written_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let bus = Bus::new(1024);
        let sub = bus.subscribe("j");
        let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
        let p = bus.publisher();
        drop(bus);
        let mut expected = String::new();
        for i in 0..600 {
            let mut r = Reading::new(MeterId::new("m").unwrap(), "test");
            for c in 0..40 {
                r.samples.push(Sample::number(
                    Key::Obis(Obis::new(1, 0, c, 8, 0, 255)),
                    Decimal::new(i * 1000 + i128::from(c), -3),
                    Some(Unit::WH),
                ));
            }
            expected.push_str(&r.to_json());
            expected.push('\n');
            p.publish(r);
        }
        drop(p);
        assert!(expected.len() > 2 * BATCH_BYTES);
        run(Config { path: path.clone() }, sub, stats.clone())
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 600);
    }
}

//! `jsonl`: the reading JSON of SPEC.md, one object per line, appended to a file or written to
//! stdout (`path = "-"`). Lines are flushed whenever the bus has nothing more buffered, so a
//! burst is written in one go and a quiet meter's reading is on disk at once.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::Subscription;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

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
        return write_all(BufWriter::new(tokio::io::stdout()), sub, stats).await;
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
    write_all(BufWriter::with_capacity(64 * 1024, file), sub, stats).await
}

async fn write_all<W: AsyncWrite + Unpin>(
    mut out: W,
    mut sub: Subscription,
    stats: Arc<SinkStats>,
) -> anyhow::Result<()> {
    stats.connected.store(true, Ordering::Relaxed);
    let mut pending = 0u64;
    while let Some(r) = sub.next().await {
        let mut line = r.to_json();
        line.push('\n');
        out.write_all(line.as_bytes()).await?;
        pending += 1;
        // Drain whatever is already buffered before paying for a flush.
        while let Ok(Some(r)) = sub.try_next() {
            let mut line = r.to_json();
            line.push('\n');
            out.write_all(line.as_bytes()).await?;
            pending += 1;
        }
        out.flush().await?;
        stats.delivered.fetch_add(pending, Ordering::Relaxed);
        pending = 0;
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
}

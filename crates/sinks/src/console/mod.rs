//! `console`: a readable block per reading on stdout, like the predecessors' console output,
//! with names, values and units.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::{describe_obis, Key, Reading, Subscription};
use tokio::io::AsyncWriteExt;

/// Settings of a `console` sink.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Show only these keys (OBIS codes as `1.0.1.8.0.255`, or `kmp.60`); empty = all.
    #[serde(default)]
    pub only: Vec<String>,
}

impl Config {
    /// Nothing to check beyond types.
    pub fn validate(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Formats one reading as a block of aligned lines.
pub fn format(reading: &Reading, only: &[String]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "── {} ({}) received {}",
        reading.meter,
        reading.protocol,
        smart_meter_core::time::format_utc(reading.received_at)
    );
    if let Some(t) = &reading.meter_time {
        let _ = write!(out, ", meter time {t}");
    }
    if reading.authenticated == Some(false) {
        out.push_str(", not authenticated");
    }
    out.push('\n');
    for s in &reading.samples {
        let key = s.key.to_string();
        if !only.is_empty() && !only.contains(&key) {
            continue;
        }
        let name = match &s.key {
            Key::Obis(o) => describe_obis(*o).unwrap_or(""),
            _ => "",
        };
        let unit = s.unit.as_ref().and_then(|u| u.symbol()).unwrap_or("");
        let _ = writeln!(
            out,
            "   {key:<16} {name:<30} {:>16} {unit}",
            s.value.to_string()
        );
    }
    out
}

/// Prints every reading until the bus closes.
pub async fn run(
    config: Config,
    mut sub: Subscription,
    stats: Arc<SinkStats>,
) -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    stats.connected.store(true, Ordering::Relaxed);
    while let Some(r) = sub.next().await {
        let text = format(&r, &config.only);
        stdout.write_all(text.as_bytes()).await?;
        stdout.flush().await?;
        stats.delivered.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smart_meter_core::{Decimal, MeterId, Obis, Sample, Unit};

    #[test]
    fn prints_names_values_and_units() {
        let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
        r.samples.push(Sample::number(
            Key::Obis(Obis::new(1, 0, 32, 7, 0, 255)),
            Decimal::new(2337, -1),
            Some(Unit::V),
        ));
        r.samples
            .push(Sample::number(Key::Kmp(60), Decimal::new(5, 0), None));
        let text = format(&r, &[]);
        let line = text.lines().nth(1).unwrap();
        assert!(line.contains("1.0.32.7.0.255"), "{line}");
        assert!(line.contains("Voltage L1"), "{line}");
        assert!(line.trim_end().ends_with("233.7 V"), "{line}");
        assert!(text.lines().nth(2).unwrap().contains("kmp.60"));
        let only = format(&r, &["kmp.60".to_string()]);
        assert_eq!(only.lines().count(), 2);
    }
}

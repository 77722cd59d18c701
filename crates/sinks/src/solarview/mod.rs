//! `solarview`: the export file of kaifareader that Solarview reads, rewritten for every reading.
//!
//! # Configuration
//!
//! ```toml
//! [default.sinks.solarview]
//! type = "solarview"
//! path = "/var/lib/smart-meter/export.txt"
//! format = "classic"      # or "full"
//! # meter = "evn"         # only readings of this meter (default: every reading)
//! # values = ["1.0.1.8.0.255", "1.0.2.8.0.255"]   # full format: which values, in this order
//! ```
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `path` | required | the file; its folder is created |
//! | `format` | `classic` | `classic` or `full` (below) |
//! | `meter` | every meter | only readings of this meter id |
//! | `values` | kaifareader's list | `full` only: OBIS codes written, in order |
//!
//! # Formats
//!
//! Both frame the values like an IEC 62056-21 readout: a line `/?!`, a line `/KAIFA`, one line
//! per value, a line `!`; every line ends with `\n`. A value line is
//! `<C.D.E of the OBIS code>(<value as printf %010.3F>*<unit>)`.
//!
//! - `classic` (tirolerstefan/kaifa before 2023, what Solarview installations were set up
//!   against): only `1.8.0` and `2.8.0`, in kWh, unit `kWh`:
//!   `1.8.0(005305.034*kWh)`.
//! - `full` (kaifareader since 2023): every value of `values` that the reading has, in the
//!   meter's own unit (`Wh`, `W`, `V`, `A`; empty for the power factor), e.g.
//!   `32.7.0(000233.700*V)`. The default list is kaifareader's order: voltages L1–L3, currents
//!   L1–L3, power import/export, energy import/export, reactive energy import/export, power
//!   factor. Reactive energy carries its real unit (`varh`; kaifareader wrote `W`).
//!
//! Values that are missing or not numbers (the meter number, the clock) are left out, never
//! fatal (kaifareader crashed on them). Values are rounded to three decimals half away from
//! zero; numbers wider than the field simply widen it (`1.8.0(3744082.000*Wh)`), as printf does.
//! A reading with no value to write leaves the previous file in place.
//!
//! The file is replaced atomically: written to a temporary file in the same folder, synced, and
//! renamed over the old one, so Solarview never sees a half-written file. When readings arrive
//! faster than the file is written, only the newest is written.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::{Decimal, Obis, Reading, Subscription};
use tracing::{debug, info, warn};

/// The file layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `1.8.0` and `2.8.0` in kWh.
    #[default]
    Classic,
    /// Every configured value in the meter's unit.
    Full,
}

/// Settings of a `solarview` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The export file.
    pub path: PathBuf,
    /// `classic` or `full`.
    #[serde(default)]
    pub format: Format,
    /// Only readings of this meter.
    pub meter: Option<String>,
    /// `full` only: the OBIS codes to write, in order.
    pub values: Option<Vec<String>>,
}

/// kaifareader's `file_export_values` in its order, as OBIS codes (the three text values it
/// also listed, clock, meter number and device name, are not numbers and never written).
pub const FULL_VALUES: [Obis; 13] = [
    Obis::new(1, 0, 32, 7, 0, 255),
    Obis::new(1, 0, 52, 7, 0, 255),
    Obis::new(1, 0, 72, 7, 0, 255),
    Obis::new(1, 0, 31, 7, 0, 255),
    Obis::new(1, 0, 51, 7, 0, 255),
    Obis::new(1, 0, 71, 7, 0, 255),
    Obis::new(1, 0, 1, 7, 0, 255),
    Obis::new(1, 0, 2, 7, 0, 255),
    Obis::new(1, 0, 1, 8, 0, 255),
    Obis::new(1, 0, 2, 8, 0, 255),
    Obis::new(1, 0, 3, 8, 0, 255),
    Obis::new(1, 0, 4, 8, 0, 255),
    Obis::new(1, 0, 13, 7, 0, 255),
];

impl Config {
    /// Semantic problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if self.path.as_os_str().is_empty() || self.path.file_name().is_none() {
            errs.push(("path".into(), "must be a file path".into()));
        }
        if let Some(m) = &self.meter {
            if let Err(e) = smart_meter_core::MeterId::new(m) {
                errs.push(("meter".into(), e));
            }
        }
        if let Some(values) = &self.values {
            if self.format == Format::Classic {
                errs.push((
                    "values".into(),
                    "applies only to format \"full\"; \"classic\" always writes 1.8.0 and 2.8.0"
                        .into(),
                ));
            }
            if values.is_empty() {
                errs.push(("values".into(), "must list at least one OBIS code".into()));
            }
            for v in values {
                if let Err(e) = v.parse::<Obis>() {
                    errs.push(("values".into(), e.to_string()));
                }
            }
        }
        errs
    }

    /// The OBIS codes of the `full` format.
    fn value_list(&self) -> Vec<Obis> {
        match &self.values {
            Some(v) => v.iter().filter_map(|s| s.parse().ok()).collect(),
            None => FULL_VALUES.to_vec(),
        }
    }
}

/// The position kaifareader writes for an OBIS code: groups C.D.E.
pub fn position(obis: Obis) -> String {
    let [_, _, c, d, e, _] = obis.groups();
    format!("{c}.{d}.{e}")
}

/// `value` as C's `printf("%010.3F")`: three decimals, zero-padded after the sign to a width
/// of 10, wider when needed. Rounds half away from zero on the exact decimal.
pub fn printf_010_3f(value: Decimal) -> String {
    let r = value.round_dp(3);
    let m = r.mantissa();
    // round_dp(3) leaves the exponent at -3 unless it was already coarser.
    let scale = i32::from(r.exponent()) + 3;
    let digits = if scale > 0 {
        let mut s = m.unsigned_abs().to_string();
        for _ in 0..scale {
            s.push('0');
        }
        s
    } else {
        m.unsigned_abs().to_string()
    };
    let digits = format!("{digits:0>4}");
    let (int, frac) = digits.split_at(digits.len().saturating_sub(3));
    let body = format!("{int}.{frac}");
    if m < 0 {
        format!("-{body:0>9}")
    } else {
        format!("{body:0>10}")
    }
}

/// Converts an energy value to kWh from its unit; `None` for units that are not energy.
fn to_kwh(value: Decimal, unit: Option<&str>) -> Option<Decimal> {
    Some(match unit {
        None | Some("Wh") => value.scaled(-3),
        Some("kWh") => value,
        Some("MWh") => value.scaled(3),
        Some(_) => return None,
    })
}

/// The file contents for one reading; `None` when it has no value this format writes.
pub fn encode(reading: &Reading, format: Format, values: &[Obis]) -> Option<String> {
    let mut lines = String::new();
    match format {
        Format::Classic => {
            for obis in [Obis::ENERGY_IMPORT, Obis::ENERGY_EXPORT] {
                let Some(s) = reading.obis(obis) else {
                    continue;
                };
                let Some(n) = s.value.as_number() else {
                    continue;
                };
                let Some(kwh) = to_kwh(n, s.unit.as_ref().and_then(|u| u.symbol())) else {
                    continue;
                };
                let _ = writeln!(lines, "{}({}*kWh)", position(obis), printf_010_3f(kwh));
            }
        }
        Format::Full => {
            for &obis in values {
                let Some(s) = reading.obis(obis) else {
                    continue;
                };
                let Some(n) = s.value.as_number() else {
                    continue;
                };
                let unit = s.unit.as_ref().and_then(|u| u.symbol()).unwrap_or("");
                let _ = writeln!(lines, "{}({}*{unit})", position(obis), printf_010_3f(n));
            }
        }
    }
    if lines.is_empty() {
        return None;
    }
    Some(format!("/?!\n/KAIFA\n{lines}!\n"))
}

/// Replaces `path` with `contents` atomically (temporary file in the same folder, fsync,
/// rename).
///
/// # Errors
/// When the temporary file cannot be written or renamed; the old file is then unchanged.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "solarview".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes the file for every reading until the bus closes.
///
/// # Errors
/// When the folder of `path` cannot be created. Failed writes later are logged and retried
/// with the next reading.
pub async fn run(
    config: Config,
    mut sub: Subscription,
    stats: Arc<SinkStats>,
) -> anyhow::Result<()> {
    let name = sub.name().to_string();
    if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot create folder {} for the Solarview file: {e}",
                dir.display()
            )
        })?;
    }
    let values = config.value_list();
    stats.connected.store(true, Ordering::Relaxed);
    let mut failing = false;
    while let Some(first) = sub.next().await {
        // Only the newest reading matters: take whatever else is already buffered.
        let mut latest = None;
        let mut next = Some(first);
        while let Some(r) = next {
            if config
                .meter
                .as_deref()
                .is_none_or(|m| m == r.meter.as_str())
            {
                match encode(&r, config.format, &values) {
                    Some(text) => latest = Some(text),
                    None => debug!(sink = %name, meter = %r.meter,
                        "Reading has no value for the Solarview file; file left as is."),
                }
            }
            next = sub.try_next().ok().flatten();
        }
        let Some(text) = latest else { continue };
        let path = config.path.clone();
        let written =
            tokio::task::spawn_blocking(move || write_atomic(&path, text.as_bytes())).await;
        match written {
            Ok(Ok(())) => {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                if failing {
                    failing = false;
                    stats.connected.store(true, Ordering::Relaxed);
                    stats.set_last_error(None);
                    info!(sink = %name, path = %config.path.display(), "Solarview file written again.");
                }
            }
            Ok(Err(e)) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                stats.set_last_error(Some(e.to_string()));
                if !failing {
                    warn!(sink = %name, path = %config.path.display(), error = %e,
                        "Cannot write the Solarview file; trying again with the next reading.");
                }
                failing = true;
                stats.connected.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                warn!(sink = %name, error = %e, "Solarview writer failed.");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smart_meter_core::{Key, MeterId, Sample, Unit};

    fn d(m: i128, e: i8) -> Decimal {
        Decimal::new(m, e)
    }

    #[test]
    fn formats_like_printf_010_3f() {
        assert_eq!(printf_010_3f(d(2337, -1)), "000233.700");
        assert_eq!(printf_010_3f(d(12937, 0)), "012937.000");
        assert_eq!(printf_010_3f(d(0, 0)), "000000.000");
        assert_eq!(printf_010_3f(d(1, 0)), "000001.000");
        assert_eq!(printf_010_3f(d(5305034, -3)), "005305.034");
        assert_eq!(printf_010_3f(d(-819, -3)), "-00000.819");
        assert_eq!(printf_010_3f(d(-12345, -1)), "-01234.500");
        assert_eq!(printf_010_3f(d(3744082, 0)), "3744082.000");
        assert_eq!(printf_010_3f(d(-1234567, 0)), "-1234567.000");
        assert_eq!(printf_010_3f(d(12345, -4)), "000001.235");
        assert_eq!(printf_010_3f(d(5, 3)), "005000.000");
        assert_eq!(printf_010_3f(d(7, -3)), "000000.007");
    }

    #[test]
    fn positions_are_groups_c_d_e() {
        assert_eq!(position(Obis::ENERGY_IMPORT), "1.8.0");
        assert_eq!(position(Obis::new(1, 0, 32, 7, 0, 255)), "32.7.0");
    }

    #[test]
    fn unit_conversion_to_kwh() {
        assert_eq!(to_kwh(d(5305034, 0), Some("Wh")), Some(d(5305034, -3)));
        assert_eq!(to_kwh(d(5305034, 0), None), Some(d(5305034, -3)));
        assert_eq!(to_kwh(d(5, 0), Some("kWh")), Some(d(5, 0)));
        assert_eq!(to_kwh(d(5, 0), Some("MWh")), Some(d(5000, 0)));
        assert_eq!(to_kwh(d(5, 0), Some("GJ")), None);
    }

    #[test]
    fn validate_names_the_offending_keys() {
        let c = Config {
            path: PathBuf::from("x.txt"),
            format: Format::Classic,
            meter: Some("Bad Meter".into()),
            values: Some(vec!["1.8.0".into()]),
        };
        let keys: Vec<String> = c.validate().into_iter().map(|e| e.0).collect();
        assert_eq!(keys, ["meter", "values", "values"]);
        let ok = Config {
            path: PathBuf::from("x.txt"),
            format: Format::Full,
            meter: Some("evn".into()),
            values: Some(vec!["1-0:1.8.0".into()]),
        };
        assert!(ok.validate().is_empty());
        assert_eq!(ok.value_list(), vec![Obis::ENERGY_IMPORT]);
        let no_path = Config {
            path: PathBuf::new(),
            format: Format::Full,
            meter: None,
            values: None,
        };
        assert_eq!(no_path.validate()[0].0, "path");
    }

    #[test]
    fn a_reading_without_energy_writes_no_classic_file() {
        let mut r = Reading::new(MeterId::new("heat").unwrap(), "kamstrup");
        r.samples.push(Sample::number(
            Key::Kmp(60),
            d(1234, 0),
            Unit::from_symbol("kWh"),
        ));
        assert_eq!(encode(&r, Format::Classic, &FULL_VALUES), None);
        assert_eq!(encode(&r, Format::Full, &FULL_VALUES), None);
        r.samples.push(Sample::number(
            Key::Obis(Obis::ENERGY_IMPORT),
            d(12, 0),
            Some(Unit::VARH),
        ));
        assert_eq!(encode(&r, Format::Classic, &FULL_VALUES), None);
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("export.txt");
        write_atomic(&p, b"one\n").unwrap();
        write_atomic(&p, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("no/such/dir/export.txt");
        assert!(write_atomic(&missing, b"x").is_err());
    }
}

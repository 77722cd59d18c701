//! Per-interval aggregation, in memory, per meter and key.
//!
//! Buckets are aligned to the Unix epoch: a reading at `t` belongs to the bucket starting at
//! `floor(t / interval) × interval` (with the default 5 minutes: `floor(t / 300)`, the
//! predecessor's rule). A meter has one open bucket. It closes when a reading of that meter
//! falls into another bucket, when the meter has been silent for a whole interval, and at
//! shutdown; a closed bucket becomes one row per key (or one predecessor-layout row).
//!
//! `first` keeps the first sample of the bucket: exactly the row the predecessor stored in
//! `historyDebounced` ("the first message whose bucket differs from the previous message's"),
//! except that the first bucket after start is not skipped (its bug C4).
//!
//! A bucket that may already have a row in the database — the first bucket of a meter after
//! start (the gateway restarted within it) or a bucket that time went back to — is marked
//! [`Bucket::may_exist`]; the writer reads the stored row and merges it with
//! [`Bucket::merge_existing`] before writing, so a restart does not replace the earlier part.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use smart_meter_core::Decimal;

use super::encode::NumericSample;

/// Fractional digits of a mean (beyond those of the samples).
pub const MEAN_DIGITS: u8 = 9;

/// How the samples of a bucket become one value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The first sample (the predecessor's `historyDebounced` rule).
    #[default]
    First,
    /// The last sample.
    Last,
    /// The arithmetic mean, exact to 9 decimal places.
    Mean,
    /// The smallest sample.
    Min,
    /// The largest sample.
    Max,
}

impl Mode {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::First => "first",
            Mode::Last => "last",
            Mode::Mean => "mean",
            Mode::Min => "min",
            Mode::Max => "max",
        }
    }
}

/// One key's aggregate in a closed bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct AggValue {
    /// Sample key or predecessor column.
    pub code: String,
    /// The aggregate.
    pub value: Decimal,
    /// How many samples went into it.
    pub samples: u64,
    /// The unit symbol.
    pub unit: Option<String>,
    /// For `mean`: the exact sum (so merging does not compound rounding).
    sum: Option<Decimal>,
}

impl AggValue {
    /// A value as stored in (and read back from) the aggregate table.
    pub fn stored(code: String, value: Decimal, samples: u64, unit: Option<String>) -> Self {
        AggValue {
            code,
            value,
            samples,
            unit,
            sum: None,
        }
    }

    /// A value with the exact sum behind a mean (as [`AggValue::exact_sum`] gave it).
    pub fn with_sum(
        code: String,
        value: Decimal,
        samples: u64,
        unit: Option<String>,
        sum: Option<Decimal>,
    ) -> Self {
        AggValue {
            code,
            value,
            samples,
            unit,
            sum,
        }
    }

    /// For `mean` buckets of this process: the exact sum of the samples.
    pub fn exact_sum(&self) -> Option<Decimal> {
        self.sum
    }

    fn sum(&self) -> Option<Decimal> {
        self.sum.or_else(|| mul_int(self.value, self.samples))
    }
}

/// A closed bucket of one meter.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// The meter id.
    pub meter: String,
    /// Start of the bucket, milliseconds since the epoch.
    pub start_ms: i64,
    /// Its length in milliseconds.
    pub interval_ms: i64,
    /// Time of the first sample in the bucket.
    pub first_ms: i64,
    /// Time of the last sample in the bucket.
    pub last_ms: i64,
    /// The database may already hold a row for this bucket (see the module docs).
    pub may_exist: bool,
    /// One aggregate per key, in the order the keys first appeared.
    pub values: Vec<AggValue>,
}

impl Bucket {
    /// Merges with the row(s) already stored for this bucket (`existing`, written before a
    /// restart). Stored values count as earlier than this bucket's samples.
    pub fn merge_existing(&self, mode: Mode, existing: &[AggValue]) -> Bucket {
        let mut out = self.clone();
        let mut merged: Vec<AggValue> = Vec::with_capacity(existing.len() + self.values.len());
        for old in existing {
            match out.values.iter().position(|v| v.code == old.code) {
                None => merged.push(old.clone()),
                Some(i) => {
                    let new = out.values.remove(i);
                    merged.push(merge_one(mode, old, new));
                }
            }
        }
        merged.extend(out.values);
        out.values = merged;
        out
    }
}

fn merge_one(mode: Mode, old: &AggValue, new: AggValue) -> AggValue {
    let samples = old.samples.saturating_add(new.samples);
    let pick_old = match mode {
        Mode::First => true,
        Mode::Last => false,
        Mode::Min => old.value < new.value,
        Mode::Max => old.value > new.value,
        Mode::Mean => {
            let sum = old.sum().zip(new.sum()).and_then(|(a, b)| a.checked_add(b));
            return match sum.and_then(|s| mean(s, samples).map(|m| (s, m))) {
                Some((s, m)) => AggValue {
                    code: new.code,
                    value: m,
                    samples,
                    unit: new.unit,
                    sum: Some(s),
                },
                // Overflow: keep what this process saw.
                None => new,
            };
        }
    };
    let base = if pick_old { old.clone() } else { new };
    AggValue { samples, ..base }
}

/// `d × n` exactly, `None` on overflow.
fn mul_int(d: Decimal, n: u64) -> Option<Decimal> {
    Some(Decimal::new(
        d.mantissa().checked_mul(i128::from(n))?,
        d.exponent(),
    ))
}

/// `sum / n`, rounded half away from zero to at least [`MEAN_DIGITS`] fractional digits
/// (more when the sum itself has more). `None` for `n = 0` or overflow.
pub fn mean(sum: Decimal, n: u64) -> Option<Decimal> {
    if n == 0 {
        return None;
    }
    let target = sum.exponent().min(-(MEAN_DIGITS as i8));
    let shift = u32::try_from(i16::from(sum.exponent()) - i16::from(target)).ok()?;
    let m = sum.mantissa().checked_mul(10i128.checked_pow(shift)?)?;
    let n = i128::from(n);
    let q = m.checked_div(n)?;
    let r = m.checked_rem(n)?;
    let q = if r.checked_abs()?.checked_mul(2)? >= n {
        q.checked_add(m.signum())?
    } else {
        q
    };
    Some(Decimal::new(q, target).normalized())
}

/// The start of the epoch-aligned bucket holding `ts_ms`.
pub fn bucket_start(ts_ms: i64, interval_ms: i64) -> i64 {
    if interval_ms <= 0 {
        return ts_ms;
    }
    ts_ms.div_euclid(interval_ms).saturating_mul(interval_ms)
}

#[derive(Debug)]
struct Acc {
    code: String,
    /// first/last/min/max: the value; mean: the running sum.
    value: Decimal,
    samples: u64,
    unit: Option<String>,
    /// The sum overflowed (mean only); the key is left out of the bucket.
    overflow: bool,
}

#[derive(Debug)]
struct Open {
    start_ms: i64,
    first_ms: i64,
    last_ms: i64,
    may_exist: bool,
    accs: Vec<Acc>,
    touched: Instant,
}

#[derive(Debug, Default)]
struct MeterState {
    open: Option<Open>,
    last_closed: Option<i64>,
}

/// The aggregation state of a sink: one open bucket per meter.
#[derive(Debug)]
pub struct Aggregator {
    mode: Mode,
    interval_ms: i64,
    meters: HashMap<String, MeterState>,
}

impl Aggregator {
    /// An aggregator over buckets of `interval` (at least 1 ms).
    pub fn new(mode: Mode, interval: Duration) -> Self {
        let interval_ms = i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        Aggregator {
            mode,
            interval_ms,
            meters: HashMap::new(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Adds the samples of one reading of `meter` taken at `ts_ms`. Returns the meter's
    /// previous bucket when this reading starts a new one.
    pub fn push(
        &mut self,
        meter: &str,
        ts_ms: i64,
        samples: Vec<NumericSample>,
        now: Instant,
    ) -> Option<Bucket> {
        let start = bucket_start(ts_ms, self.interval_ms);
        let mode = self.mode;
        let interval_ms = self.interval_ms;
        let state = self.meters.entry(meter.to_string()).or_default();
        let mut closed = None;
        if state.open.as_ref().is_some_and(|o| o.start_ms != start) {
            closed = close(meter, mode, interval_ms, state);
        }
        let open = state.open.get_or_insert_with(|| Open {
            start_ms: start,
            first_ms: ts_ms,
            last_ms: ts_ms,
            may_exist: state.last_closed.is_none_or(|c| start <= c),
            accs: Vec::new(),
            touched: now,
        });
        open.first_ms = open.first_ms.min(ts_ms);
        open.last_ms = open.last_ms.max(ts_ms);
        open.touched = now;
        for s in samples {
            match open.accs.iter_mut().find(|a| a.code == s.code) {
                None => open.accs.push(Acc {
                    code: s.code,
                    value: s.value,
                    samples: 1,
                    unit: s.unit,
                    overflow: false,
                }),
                Some(acc) => {
                    // A unit change within a bucket (a reconfigured meter) would mix
                    // incomparable numbers; the bucket keeps its first unit.
                    if acc.unit != s.unit {
                        continue;
                    }
                    acc.samples = acc.samples.saturating_add(1);
                    match mode {
                        Mode::First => {}
                        Mode::Last => acc.value = s.value,
                        Mode::Min => acc.value = acc.value.min(s.value),
                        Mode::Max => acc.value = acc.value.max(s.value),
                        Mode::Mean => match acc.value.checked_add(s.value) {
                            Some(v) => acc.value = v,
                            None => acc.overflow = true,
                        },
                    }
                }
            }
        }
        closed
    }

    /// Closes the buckets of meters that sent nothing for `idle`.
    pub fn close_idle(&mut self, now: Instant, idle: Duration) -> Vec<Bucket> {
        let (mode, interval_ms) = (self.mode, self.interval_ms);
        let mut out = Vec::new();
        for (meter, state) in &mut self.meters {
            if state
                .open
                .as_ref()
                .is_some_and(|o| now.saturating_duration_since(o.touched) >= idle)
            {
                out.extend(close(meter, mode, interval_ms, state));
            }
        }
        out.sort_by(|a, b| (a.start_ms, &a.meter).cmp(&(b.start_ms, &b.meter)));
        out
    }

    /// Closes every open bucket (shutdown).
    pub fn flush(&mut self) -> Vec<Bucket> {
        self.close_idle(Instant::now(), Duration::ZERO)
    }

    /// Closes the buckets into rows with this aggregator's mode.
    fn finish(mode: Mode, acc: Acc) -> Option<AggValue> {
        if acc.overflow {
            return None;
        }
        let (value, sum) = match mode {
            Mode::Mean => (mean(acc.value, acc.samples)?, Some(acc.value)),
            _ => (acc.value, None),
        };
        Some(AggValue {
            code: acc.code,
            value,
            samples: acc.samples,
            unit: acc.unit,
            sum,
        })
    }
}

fn close(meter: &str, mode: Mode, interval_ms: i64, state: &mut MeterState) -> Option<Bucket> {
    let open = state.open.take()?;
    state.last_closed = Some(
        state
            .last_closed
            .map_or(open.start_ms, |c| c.max(open.start_ms)),
    );
    Some(Bucket {
        meter: meter.to_string(),
        start_ms: open.start_ms,
        interval_ms,
        first_ms: open.first_ms,
        last_ms: open.last_ms,
        may_exist: open.may_exist,
        values: open
            .accs
            .into_iter()
            .filter_map(|a| Aggregator::finish(mode, a))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(code: &str, v: Decimal) -> NumericSample {
        NumericSample {
            code: code.into(),
            value: v,
            unit: Some("W".into()),
        }
    }

    fn run(mode: Mode, points: &[(i64, i64)]) -> Vec<Bucket> {
        let mut a = Aggregator::new(mode, Duration::from_secs(300));
        let now = Instant::now();
        let mut out = Vec::new();
        for &(ts, v) in points {
            out.extend(a.push("m", ts, vec![s("p", Decimal::from(v))], now));
        }
        out.extend(a.flush());
        out
    }

    #[test]
    fn aligns_buckets_to_the_epoch() {
        assert_eq!(bucket_start(1_632_728_835_000, 300_000), 1_632_728_700_000);
        assert_eq!(bucket_start(300_000, 300_000), 300_000);
        assert_eq!(bucket_start(299_999, 300_000), 0);
        assert_eq!(bucket_start(-1, 300_000), -300_000);
    }

    #[test]
    fn first_reproduces_the_predecessors_debounce_rule() {
        // Readings every 5 s with jitter, a 35-minute gap, then every 4 s.
        let mut ts: Vec<i64> = (0..400)
            .map(|i| 1_700_000_001_000 + i * 5_000 + (i % 3) * 700)
            .collect();
        ts.extend((0..150).map(|i| 1_700_004_100_000 + i * 4_000));
        let points: Vec<(i64, i64)> = ts.iter().enumerate().map(|(i, &t)| (t, i as i64)).collect();
        // ProcessSmartmeter.py: store the current message when its bucket differs from the
        // previous message's; nothing for the first message after start.
        let mut predecessor = Vec::new();
        let mut last_bucket = None;
        for &(t, v) in &points {
            let bucket = t.div_euclid(1000) / 300;
            if last_bucket.is_some_and(|b| b != bucket) {
                predecessor.push((bucket * 300_000, v));
            }
            last_bucket = Some(bucket);
        }
        let ours: Vec<(i64, i64)> = run(Mode::First, &points)
            .iter()
            .map(|b| (b.start_ms, b.values[0].value.to_i64().unwrap()))
            .collect();
        // The same rows, plus the first bucket that the predecessor skipped (bug C4).
        assert_eq!(ours[0], (bucket_start(points[0].0, 300_000), 0));
        assert_eq!(&ours[1..], &predecessor[..]);
        assert!(predecessor.len() > 5);
    }

    #[test]
    fn each_mode_aggregates_a_bucket() {
        let pts = [(0, 5), (1_000, -3), (2_000, 10), (3_000, 4), (300_000, 7)];
        let value = |m| run(m, &pts)[0].values[0].value;
        assert_eq!(value(Mode::First), Decimal::from(5i64));
        assert_eq!(value(Mode::Last), Decimal::from(4i64));
        assert_eq!(value(Mode::Min), Decimal::from(-3i64));
        assert_eq!(value(Mode::Max), Decimal::from(10i64));
        assert_eq!(value(Mode::Mean), Decimal::from(4i64));
        let b = run(Mode::Mean, &pts);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].values[0].samples, 4);
        assert_eq!((b[0].first_ms, b[0].last_ms), (0, 3_000));
        assert_eq!(b[1].values[0].value, Decimal::from(7i64));
    }

    #[test]
    fn means_are_exact_decimals_rounded_to_nine_places() {
        assert_eq!(
            mean(Decimal::new(7013, -1), 3),
            Some(Decimal::new(233_766_666_667, -9))
        );
        assert_eq!(
            mean(Decimal::new(-2, 0), 3),
            Some(Decimal::new(-666_666_667, -9))
        );
        assert_eq!(
            mean(Decimal::new(4675, -1), 2),
            Some(Decimal::new(23375, -2))
        );
        assert_eq!(mean(Decimal::new(1, -12), 1), Some(Decimal::new(1, -12)));
        assert_eq!(mean(Decimal::from(1i64), 0), None);
    }

    #[test]
    fn a_silent_meter_closes_its_bucket_after_an_interval() {
        let mut a = Aggregator::new(Mode::Last, Duration::from_secs(300));
        let t0 = Instant::now();
        assert!(a
            .push("m", 0, vec![s("p", Decimal::from(1i64))], t0)
            .is_none());
        assert!(a
            .close_idle(t0 + Duration::from_secs(299), Duration::from_secs(300))
            .is_empty());
        let closed = a.close_idle(t0 + Duration::from_secs(300), Duration::from_secs(300));
        assert_eq!(closed.len(), 1);
        assert!(a.flush().is_empty());
    }

    #[test]
    fn meters_have_separate_buckets() {
        let mut a = Aggregator::new(Mode::First, Duration::from_secs(60));
        let now = Instant::now();
        assert!(a
            .push("a", 0, vec![s("p", Decimal::from(1i64))], now)
            .is_none());
        assert!(a
            .push("b", 61_000, vec![s("p", Decimal::from(2i64))], now)
            .is_none());
        let closed = a
            .push("a", 60_000, vec![s("p", Decimal::from(3i64))], now)
            .unwrap();
        assert_eq!((closed.meter.as_str(), closed.start_ms), ("a", 0));
        let rest = a.flush();
        assert_eq!(rest.len(), 2);
    }

    #[test]
    fn only_buckets_that_may_be_stored_already_are_marked_for_merging() {
        let mut a = Aggregator::new(Mode::First, Duration::from_secs(60));
        let now = Instant::now();
        let v = || vec![s("p", Decimal::from(1i64))];
        a.push("m", 30_000, v(), now);
        let first = a.push("m", 60_000, v(), now).unwrap();
        assert!(first.may_exist, "the first bucket after start");
        let second = a.push("m", 30_000, v(), now).unwrap();
        assert!(
            !second.may_exist,
            "a bucket that opened after the previous one closed"
        );
        let back = a.push("m", 120_000, v(), now).unwrap();
        assert!(back.may_exist, "time went back to a bucket already written");
    }

    #[test]
    fn a_unit_change_within_a_bucket_is_not_mixed_in() {
        let mut a = Aggregator::new(Mode::Max, Duration::from_secs(60));
        let now = Instant::now();
        a.push("m", 0, vec![s("p", Decimal::from(5i64))], now);
        let kw = NumericSample {
            code: "p".into(),
            value: Decimal::from(9i64),
            unit: Some("kW".into()),
        };
        a.push("m", 1, vec![kw], now);
        let b = a.flush();
        assert_eq!(b[0].values[0].value, Decimal::from(5i64));
        assert_eq!(b[0].values[0].samples, 1);
    }

    #[test]
    fn merging_with_a_stored_row_follows_the_mode() {
        let bucket = |mode, v: i64, n| {
            let mut a = Aggregator::new(mode, Duration::from_secs(60));
            let now = Instant::now();
            for _ in 0..n {
                a.push("m", 0, vec![s("p", Decimal::from(v))], now);
            }
            a.push("m", 0, vec![s("q", Decimal::from(1i64))], now);
            a.flush().remove(0)
        };
        let old = [
            AggValue::stored("p".into(), Decimal::from(2i64), 2, Some("W".into())),
            AggValue::stored("old".into(), Decimal::from(9i64), 1, None),
        ];
        let merged = |mode| bucket(mode, 5, 3).merge_existing(mode, &old);
        let m = merged(Mode::First);
        assert_eq!(
            m.values.iter().map(|v| v.code.as_str()).collect::<Vec<_>>(),
            ["p", "old", "q"]
        );
        assert_eq!(
            (m.values[0].value, m.values[0].samples),
            (Decimal::from(2i64), 5)
        );
        assert_eq!(merged(Mode::Last).values[0].value, Decimal::from(5i64));
        assert_eq!(merged(Mode::Min).values[0].value, Decimal::from(2i64));
        assert_eq!(merged(Mode::Max).values[0].value, Decimal::from(5i64));
        // (2 × 2 + 5 × 3) / 5
        assert_eq!(merged(Mode::Mean).values[0].value, Decimal::new(38, -1));
    }
}

//! Queue items as bytes: the records of the sink's queue and spool file.
//!
//! A compact binary encoding that round-trips every [`Item`] exactly (decimals as mantissa and
//! exponent, texts byte for byte, times in milliseconds, aggregate buckets with their exact
//! sums). Layout, all integers as LEB128 varints (signed ones zigzag-encoded) unless noted:
//!
//! ```text
//! record    = FORMAT (1 byte) kind (1 byte) body
//! History   = kind 1, shared (1 byte: 1 = every row has the first row's meter and time)
//!             count, then per row: [meter ts] code opt-decimal opt-text opt-unit
//!             (meter and ts once before the rows when shared)
//! Compat    = kind 2, ts, 11 decimals
//! Aggregate = kind 3, meter start interval first last may_exist (1 byte) count,
//!             then per key: code decimal samples opt-unit opt-sum
//! decimal   = mantissa (i128), exponent (1 byte, i8)
//! text      = length, UTF-8 bytes
//! opt-x     = 0 | 1 x
//! ```
//!
//! [`decode`] checks everything and returns `None` for a damaged or foreign record (never
//! panics); a record must be consumed exactly.

use smart_meter_core::Decimal;

use super::aggregate::{AggValue, Bucket};
use super::db::Item;
use super::encode::{CompatRow, HistoryRow};

/// Version of the layout, the first byte of every record.
pub const FORMAT: u8 = 1;

const HISTORY: u8 = 1;
const COMPAT: u8 = 2;
const AGGREGATE: u8 = 3;

/// The record of `item`.
pub fn encode(item: &Item) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(128));
    w.byte(FORMAT);
    match item {
        Item::History(rows) => {
            w.byte(HISTORY);
            let shared = rows.first().filter(|f| {
                rows.iter()
                    .all(|r| r.meter == f.meter && r.ts_ms == f.ts_ms)
            });
            w.byte(u8::from(shared.is_some()));
            w.uint(rows.len() as u128);
            if let Some(f) = shared {
                w.text(&f.meter);
                w.int(f.ts_ms.into());
            }
            for r in rows {
                if shared.is_none() {
                    w.text(&r.meter);
                    w.int(r.ts_ms.into());
                }
                w.text(&r.code);
                w.opt(r.value.as_ref(), Writer::decimal);
                w.opt(r.text.as_deref(), Writer::text);
                w.opt(r.unit.as_deref(), Writer::text);
            }
        }
        Item::CompatHistory(row) => {
            w.byte(COMPAT);
            w.int(row.ts_ms.into());
            for v in &row.values {
                w.decimal(v);
            }
        }
        Item::Aggregate(b) => {
            w.byte(AGGREGATE);
            w.text(&b.meter);
            for t in [b.start_ms, b.interval_ms, b.first_ms, b.last_ms] {
                w.int(t.into());
            }
            w.byte(u8::from(b.may_exist));
            w.uint(b.values.len() as u128);
            for v in &b.values {
                w.text(&v.code);
                w.decimal(&v.value);
                w.uint(v.samples.into());
                w.opt(v.unit.as_deref(), Writer::text);
                w.opt(v.exact_sum().as_ref(), Writer::decimal);
            }
        }
    }
    w.0
}

/// The item of a record; `None` when the record is damaged or not of this format.
pub fn decode(data: &[u8]) -> Option<Item> {
    let mut r = Reader(data);
    if r.byte()? != FORMAT {
        return None;
    }
    let item = match r.byte()? {
        HISTORY => {
            let shared = match r.byte()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            let count = r.count()?;
            let common = if shared {
                Some((r.text()?, r.i64()?))
            } else {
                None
            };
            let mut rows = Vec::with_capacity(count);
            for _ in 0..count {
                let (meter, ts_ms) = match &common {
                    Some((m, t)) => (m.clone(), *t),
                    None => (r.text()?, r.i64()?),
                };
                rows.push(HistoryRow {
                    meter,
                    ts_ms,
                    code: r.text()?,
                    value: r.opt(Reader::decimal)?,
                    text: r.opt(Reader::text)?,
                    unit: r.opt(Reader::text)?,
                });
            }
            Item::History(rows)
        }
        COMPAT => {
            let ts_ms = r.i64()?;
            let mut values = [Decimal::ZERO; 11];
            for v in &mut values {
                *v = r.decimal()?;
            }
            Item::CompatHistory(Box::new(CompatRow { ts_ms, values }))
        }
        AGGREGATE => {
            let meter = r.text()?;
            let (start_ms, interval_ms, first_ms, last_ms) =
                (r.i64()?, r.i64()?, r.i64()?, r.i64()?);
            let may_exist = match r.byte()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            let count = r.count()?;
            let mut values = Vec::with_capacity(count);
            for _ in 0..count {
                let code = r.text()?;
                let value = r.decimal()?;
                let samples = u64::try_from(r.uint()?).ok()?;
                let unit = r.opt(Reader::text)?;
                let sum = r.opt(Reader::decimal)?;
                values.push(AggValue::with_sum(code, value, samples, unit, sum));
            }
            Item::Aggregate(Bucket {
                meter,
                start_ms,
                interval_ms,
                first_ms,
                last_ms,
                may_exist,
                values,
            })
        }
        _ => return None,
    };
    r.0.is_empty().then_some(item)
}

/// Whether a record holds a closed aggregate bucket (kept when the queue overflows).
pub fn is_aggregate(data: &[u8]) -> bool {
    matches!(data, [FORMAT, AGGREGATE, ..])
}

struct Writer(Vec<u8>);

impl Writer {
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    fn uint(&mut self, mut v: u128) {
        loop {
            let low = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(low);
                return;
            }
            self.0.push(low | 0x80);
        }
    }

    fn int(&mut self, v: i128) {
        // Zigzag: small magnitudes of either sign stay short.
        self.uint(((v << 1) ^ (v >> 127)) as u128);
    }

    fn text(&mut self, s: &str) {
        self.uint(s.len() as u128);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn decimal(&mut self, d: &Decimal) {
        self.int(d.mantissa());
        self.0.push(d.exponent().to_le_bytes()[0]);
    }

    fn opt<T: ?Sized>(&mut self, v: Option<&T>, f: fn(&mut Writer, &T)) {
        match v {
            None => self.byte(0),
            Some(v) => {
                self.byte(1);
                f(self, v);
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn uint(&mut self) -> Option<u128> {
        let mut v: u128 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            let part = u128::from(b & 0x7f);
            if shift >= 128 || (shift > 121 && part >> (128 - shift) != 0) {
                return None;
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
    }

    fn int(&mut self) -> Option<i128> {
        let u = self.uint()?;
        Some(((u >> 1) as i128) ^ -((u & 1) as i128))
    }

    fn i64(&mut self) -> Option<i64> {
        i64::try_from(self.int()?).ok()
    }

    /// A length or count: never more than the bytes left (every element takes at least one).
    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.uint()?)
            .ok()
            .filter(|n| *n <= self.0.len())
    }

    fn text(&mut self) -> Option<String> {
        let n = self.count()?;
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        String::from_utf8(head.to_vec()).ok()
    }

    fn decimal(&mut self) -> Option<Decimal> {
        let m = self.int()?;
        let e = i8::from_le_bytes([self.byte()?]);
        Some(Decimal::new(m, e))
    }

    fn opt<T>(&mut self, f: fn(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.byte()? {
            0 => Some(None),
            1 => f(self).map(Some),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dec(m: i128, e: i8) -> Decimal {
        Decimal::new(m, e)
    }

    /// Decimal equality that also compares the representation (`233.70` is not `233.7` here).
    fn same(a: &Item, b: &Item) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    fn items() -> Vec<Item> {
        let row =
            |meter: &str, ts_ms, code: &str, value, text: Option<&str>, unit: Option<&str>| {
                HistoryRow {
                    meter: meter.into(),
                    ts_ms,
                    code: code.into(),
                    value,
                    text: text.map(Into::into),
                    unit: unit.map(Into::into),
                }
            };
        let mut mixed = vec![
            row(
                "evn",
                1_632_728_835_000,
                "1.0.1.8.0.255",
                Some(dec(12_937, 0)),
                None,
                Some("Wh"),
            ),
            row(
                "evn",
                1_632_728_835_000,
                "1.0.32.7.0.255",
                Some(dec(2337, -1)),
                None,
                Some("V"),
            ),
            row(
                "evn",
                1_632_728_835_000,
                "1.0.13.7.0.255",
                Some(dec(-819, -3)),
                None,
                None,
            ),
            // The representation is kept: 2 × 10^3 stays that, and 233.70 keeps its zero.
            row(
                "evn",
                1_632_728_835_000,
                "1.0.2.8.0.255",
                Some(dec(2, 3)),
                None,
                Some("kWh"),
            ),
            row(
                "evn",
                1_632_728_835_000,
                "1.0.52.7.0.255",
                Some(dec(23_370, -2)),
                None,
                Some("V"),
            ),
            row(
                "evn",
                1_632_728_835_000,
                "0.0.1.0.0.255",
                None,
                Some("2021-09-27T09:47:15+02:00"),
                None,
            ),
            row(
                "evn",
                1_632_728_835_000,
                "0.0.96.1.0.255",
                None,
                Some("181220000009"),
                None,
            ),
            row(
                "evn",
                1_632_728_835_000,
                "kmp.60",
                Some(dec(i128::MAX, 127)),
                None,
                Some("m³"),
            ),
            row(
                "evn",
                1_632_728_835_000,
                "x",
                Some(dec(i128::MIN, -128)),
                Some(""),
                Some("°C"),
            ),
            row(
                "evn",
                1_632_728_835_000,
                "text",
                None,
                Some("é \u{0} ✓ \"q\" \n"),
                None,
            ),
        ];
        let shared = Item::History(mixed.clone());
        mixed[3].meter = "other-meter_2".into();
        mixed[4].ts_ms = -1;
        mixed[5].ts_ms = i64::MIN;
        mixed[6].ts_ms = i64::MAX;
        let per_row = Item::History(mixed);
        let compat = Item::CompatHistory(Box::new(CompatRow {
            ts_ms: 1_795_298_400_123,
            values: [
                dec(12_937, 0),
                dec(0, 0),
                dec(250, 0),
                dec(0, 5),
                dec(2337, -1),
                dec(2301, -1),
                dec(-2299, -1),
                dec(112, -2),
                dec(0, -2),
                dec(5, -2),
                dec(-819, -3),
            ],
        }));
        let bucket = Bucket {
            meter: "evn".into(),
            start_ms: 1_795_298_400_000,
            interval_ms: 300_000,
            first_ms: 1_795_298_400_123,
            last_ms: 1_795_298_699_999,
            may_exist: true,
            values: vec![
                AggValue::stored("1.0.1.8.0.255".into(), dec(12_937, 0), 3, Some("Wh".into())),
                AggValue::with_sum(
                    "1.0.32.7.0.255".into(),
                    dec(233_333_333_333, -9),
                    3,
                    Some("V".into()),
                    Some(dec(7000, -1)),
                ),
                AggValue::stored("PF".into(), dec(-1, 0), u64::MAX, None),
            ],
        };
        let empty_bucket = Bucket {
            meter: "m".into(),
            start_ms: 0,
            interval_ms: 1,
            first_ms: 0,
            last_ms: 0,
            may_exist: false,
            values: Vec::new(),
        };
        vec![
            shared,
            per_row,
            Item::History(Vec::new()),
            compat,
            Item::Aggregate(bucket),
            Item::Aggregate(empty_bucket),
        ]
    }

    #[test]
    fn every_item_round_trips_exactly() {
        for item in items() {
            let data = encode(&item);
            let back = decode(&data).unwrap();
            assert!(same(&item, &back), "{item:?}\n{back:?}");
            assert_eq!(is_aggregate(&data), matches!(item, Item::Aggregate(_)));
        }
    }

    #[test]
    fn damaged_records_are_refused_without_panicking() {
        for item in items() {
            let data = encode(&item);
            // Every truncation and every extension.
            for n in 0..data.len() {
                assert!(decode(&data[..n]).is_none(), "{item:?} cut to {n}");
            }
            let mut longer = data.clone();
            longer.push(0);
            assert!(decode(&longer).is_none());
            // Every single-byte change either fails or decodes to something (no panic).
            for i in 0..data.len() {
                for x in [0x01, 0x80, 0xff] {
                    let mut bad = data.clone();
                    bad[i] ^= x;
                    let _ = decode(&bad);
                }
            }
        }
        assert!(decode(&[]).is_none());
        assert!(
            decode(&[FORMAT + 1, HISTORY, 0, 0]).is_none(),
            "another format"
        );
        assert!(decode(&[FORMAT, 9]).is_none(), "unknown kind");
        // A count far beyond the record, and a varint longer than 128 bits.
        assert!(decode(&[FORMAT, HISTORY, 0, 0xff, 0xff, 0xff, 0x0f]).is_none());
        let mut long = vec![FORMAT, COMPAT];
        long.extend([0xff; 20]);
        assert!(decode(&long).is_none());
        assert!(decode(b"not a record at all").is_none());
    }
}

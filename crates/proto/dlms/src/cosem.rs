//! From a notification body to a flat list of [`Entry`]s (OBIS code, value, scaler, unit).
//!
//! Push meters lay their bodies out in a handful of ways; [`entries`] recognises all that
//! appear in the captured vectors:
//!
//! 1. **Capture-object list first** (L+G E450/E570, Iskraemeco AM550 CH, L+G E360): the
//!    first element is the push setup's object list, an array of
//!    `{class_id uint16, logical_name octet-string(6), attribute int8, data_index uint16}`
//!    (Blue Book, "Push setup" class 40, attribute 2 `push_object_list`); the following elements are the values in
//!    the same order. Entries carry class and attribute; the object list itself (class 40,
//!    attribute 2) is not repeated as an entry.
//! 2. **Positional** pushes without OBIS codes, selected by a [`Layout`] (given, or found by
//!    [`Layout::detect`]): Wiener Netze, Netz Burgenland, the SHRDZM IM350/AM550 captures.
//!    The OBIS codes, scalers and units per position are the ones the DSOs document.
//! 3. **Self-describing lists** (everything else), walked element by element:
//!    * a structure `{OBIS, value}` or `{OBIS, value, {scaler, unit}}` (KSM-West Kaifa,
//!      Aidon) is one entry;
//!    * an OBIS octet-string followed by a value, optionally followed by a `{scaler, unit}`
//!      structure, is one entry (EVN/Netz NÖ flat list, L+G E450 without object list,
//!      Kamstrup HAN);
//!    * a bare date-time octet-string in first position is the clock `0.0.1.0.0.255`, a bare
//!      string in last position is the meter number `0.0.96.1.0.255` (EVN/Netz NÖ); SPEC:
//!      "the meter clock and meter number also appear in `values` ... also where the meter
//!      sends them without an OBIS code";
//!    * anything else becomes an entry without OBIS code.
//!
//! Values stay as sent; [`Entry::number`] applies the scaler exactly (integer mantissa and
//! decimal exponent, no floating point).

use core::fmt;
use core::str::FromStr;

use crate::axdr::Data;
use crate::datetime::DateTime;
use crate::error::Error;

/// OBIS code of the clock (class 8), used for the bare date-time of flat lists.
pub const OBIS_CLOCK: [u8; 6] = [0, 0, 1, 0, 0, 255];
/// OBIS code of the device id 1 (meter number), used for the bare trailing string.
pub const OBIS_METER_NUMBER: [u8; 6] = [0, 0, 96, 1, 0, 255];
/// COSEM class id of push setup.
pub const CLASS_PUSH_SETUP: u16 = 40;

/// DLMS unit codes used by the positional layouts (Blue Book §4.3.2, table "Enumerated
/// values for physical units").
pub mod unit {
    /// W, active power.
    pub const W: u8 = 27;
    /// var, reactive power.
    pub const VAR: u8 = 29;
    /// Wh, active energy.
    pub const WH: u8 = 30;
    /// varh, reactive energy.
    pub const VARH: u8 = 32;
    /// A, current.
    pub const A: u8 = 33;
    /// V, voltage.
    pub const V: u8 = 35;
    /// No unit / count.
    pub const NONE: u8 = 255;
}

/// A value with its decimal exponent: `mantissa × 10^exponent`, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    /// The integer the meter sent.
    pub mantissa: i128,
    /// The scaler the meter (or the layout) gives.
    pub exponent: i8,
}

impl fmt::Display for Number {
    /// Plain decimal notation: `(2337, -1)` is `233.7`, `(1095, 1)` is `10950`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if neg { "-" } else { "" };
        if self.exponent >= 0 {
            let zeros = "0".repeat(usize::from(self.exponent.unsigned_abs()));
            if self.mantissa == 0 {
                return f.write_str("0");
            }
            return write!(f, "{sign}{digits}{zeros}");
        }
        let frac = usize::from(self.exponent.unsigned_abs());
        let padded = if digits.len() <= frac {
            format!(
                "{}{digits}",
                "0".repeat(frac.saturating_add(1).saturating_sub(digits.len()))
            )
        } else {
            digits
        };
        let (int, dec) = padded.split_at(padded.len().saturating_sub(frac));
        write!(f, "{sign}{int}.{dec}")
    }
}

/// One value of a push, with what the frame (or the layout) says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// OBIS code (logical name), when the frame or the layout gives one.
    pub obis: Option<[u8; 6]>,
    /// COSEM class id, when the push carries its capture-object list.
    pub class_id: Option<u16>,
    /// Attribute index, when the push carries its capture-object list (2 is the value).
    pub attribute: Option<i8>,
    /// The value as sent.
    pub value: Data,
    /// Decimal scaler (0 when the frame has none).
    pub scaler: i8,
    /// DLMS unit code (`255` = no unit), `None` when neither frame nor layout gives one.
    pub unit: Option<u8>,
}

/// A leaf value, converted for output.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer with the scaler applied exactly.
    Number(Number),
    /// A float32/float64 as sent (scaler not applied).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An enum code.
    Enum(u8),
    /// A printable string (octet-strings of printable ASCII, visible and UTF-8 strings).
    Text(String),
    /// Other octet strings and bit strings.
    Bytes(Vec<u8>),
    /// A date-time (type date-time/date/time, or a 12-byte octet-string at the clock OBIS).
    DateTime(DateTime),
    /// null-data.
    Null,
    /// An array or structure (see [`Entry::value`] for the raw data).
    Compound,
}

fn printable(b: &[u8]) -> bool {
    b.iter().all(|c| (0x20..=0x7E).contains(c))
}

impl Entry {
    fn new(obis: Option<[u8; 6]>, value: Data) -> Entry {
        Entry {
            obis,
            class_id: None,
            attribute: None,
            value,
            scaler: 0,
            unit: None,
        }
    }

    fn with(obis: Option<[u8; 6]>, value: Data, scaler: i8, unit: Option<u8>) -> Entry {
        Entry {
            obis,
            class_id: None,
            attribute: None,
            value,
            scaler,
            unit,
        }
    }

    /// The value as `mantissa × 10^scaler` for integer data (int8..uint64).
    pub fn number(&self) -> Option<Number> {
        self.value.as_integer().map(|mantissa| Number {
            mantissa,
            exponent: self.scaler,
        })
    }

    /// The OBIS code as `A.B.C.D.E.F`.
    pub fn obis_string(&self) -> Option<String> {
        self.obis.map(|o| obis_to_string(&o))
    }

    /// Whether this entry is the clock value (OBIS `0.0.1.0.0.255`, value attribute).
    pub fn is_clock(&self) -> bool {
        self.obis == Some(OBIS_CLOCK) && self.attribute.is_none_or(|a| a == 2)
    }

    /// The leaf value for output: integers with their scaler, strings as text when
    /// printable, the clock as [`DateTime`].
    pub fn leaf(&self) -> Value {
        if let Some(n) = self.number() {
            return Value::Number(n);
        }
        match &self.value {
            Data::Null => Value::Null,
            Data::Array(_) | Data::Structure(_) => Value::Compound,
            Data::Bool(b) => Value::Bool(*b),
            Data::BitString { bytes, .. } => Value::Bytes(bytes.clone()),
            Data::OctetString(b) => {
                if self.is_clock() {
                    if let Some(dt) = DateTime::from_octet_string(b) {
                        return Value::DateTime(dt);
                    }
                }
                if printable(b) {
                    Value::Text(b.iter().map(|&c| char::from(c)).collect())
                } else {
                    Value::Bytes(b.clone())
                }
            }
            Data::VisibleString(b) if printable(b) => {
                Value::Text(b.iter().map(|&c| char::from(c)).collect())
            }
            Data::VisibleString(b) => Value::Bytes(b.clone()),
            Data::Utf8String(b) => match core::str::from_utf8(b) {
                Ok(s) => Value::Text(s.to_owned()),
                Err(_) => Value::Bytes(b.clone()),
            },
            Data::Bcd(b) => match (b >> 4, b & 0x0F) {
                (hi @ 0..=9, lo @ 0..=9) => Value::Number(Number {
                    mantissa: i128::from(hi.saturating_mul(10).saturating_add(lo)),
                    exponent: self.scaler,
                }),
                _ => Value::Bytes(vec![*b]),
            },
            Data::Enum(b) => Value::Enum(*b),
            Data::Float32(v) => Value::Float(f64::from(*v)),
            Data::Float64(v) => Value::Float(*v),
            Data::DateTime(dt) | Data::Date(dt) | Data::Time(dt) => Value::DateTime(*dt),
            // Integers were handled by `number()` above.
            _ => Value::Compound,
        }
    }
}

/// Formats an OBIS code as `A.B.C.D.E.F`.
pub fn obis_to_string(o: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = *o;
    format!("{a}.{b}.{c}.{d}.{e}.{f}")
}

/// Positional push layouts (no OBIS codes in the frame).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Wiener Netze optical (IR) push, Iskraemeco AM550 / L+G E450: clock, then eight
    /// uint32 counters +A, −A, +R, −R (Wh, varh) and +P, −P, +Q, −Q (W, var). The Siemens
    /// IM350 variant sends its meter number in front (10 elements). Source: Wiener Netze
    /// customer-interface description as used by rddl-network/EnergyAgent.
    WienerNetze,
    /// Netz Burgenland L+G E450: U1–U3 (V), I1–I3 (A, ×0.01), +P, −P (W), +A, −A (Wh),
    /// three undocumented uint16, meter number (14 elements). The currents carry no scaler
    /// in the frame; the layout gives −2 (the raw values are hundredths of an ampere, which
    /// is what makes them agree with the active power in the same frame).
    NetzBurgenland,
    /// The 12-element IM350/AM550 push as captured by SHRDZM (same as described for Kärnten
    /// Netz): push id, meter number, time, date, +A, −A, +R, −R, +P, −P, two customer
    /// information strings. Time and date are joined into the clock entry.
    Shrdzm12,
    /// The 10-element variant of [`Layout::Shrdzm12`] without the customer information
    /// (eww Wels).
    Shrdzm10,
}

/// What one position of a positional layout expects and means.
#[derive(Debug, Clone, Copy)]
struct Slot {
    kind: Kind,
    obis: Option<[u8; 6]>,
    scaler: i8,
    unit: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Any integer type.
    Integer,
    /// Octet/visible string.
    Text,
    /// Octet-string of exactly this many bytes.
    Octets(usize),
    /// A 12-byte date-time (octet-string or date-time type).
    Clock,
    /// 4-byte time octet-string, joined with the following date.
    Time,
    /// 5-byte date octet-string.
    Date,
}

impl Kind {
    fn matches(self, d: &Data) -> bool {
        match self {
            Kind::Integer => d.as_integer().is_some(),
            Kind::Text => matches!(d, Data::OctetString(_) | Data::VisibleString(_)),
            Kind::Octets(n) => matches!(d, Data::OctetString(b) if b.len() == n),
            Kind::Clock => match d {
                Data::DateTime(_) => true,
                Data::OctetString(b) => DateTime::from_octet_string(b).is_some(),
                _ => false,
            },
            Kind::Time => {
                matches!(d, Data::OctetString(b) if b.len() == 4) || matches!(d, Data::Time(_))
            }
            Kind::Date => {
                matches!(d, Data::OctetString(b) if b.len() == 5) || matches!(d, Data::Date(_))
            }
        }
    }
}

const fn obis(c: u8, d: u8) -> Option<[u8; 6]> {
    Some([1, 0, c, d, 0, 255])
}

const fn slot(kind: Kind, obis: Option<[u8; 6]>, scaler: i8, unit: Option<u8>) -> Slot {
    Slot {
        kind,
        obis,
        scaler,
        unit,
    }
}

const fn counter(c: u8, d: u8, u: u8) -> Slot {
    slot(Kind::Integer, obis(c, d), 0, Some(u))
}

const CLOCK: Slot = slot(Kind::Clock, Some(OBIS_CLOCK), 0, None);
const METER_NUMBER: Slot = slot(Kind::Text, Some(OBIS_METER_NUMBER), 0, None);
const UNLABELED_INT: Slot = slot(Kind::Integer, None, 0, None);
const UNLABELED_TEXT: Slot = slot(Kind::Text, None, 0, None);
const PUSH_ID: Slot = slot(Kind::Octets(6), None, 0, None);
const TIME: Slot = slot(Kind::Time, None, 0, None);
const DATE: Slot = slot(Kind::Date, Some(OBIS_CLOCK), 0, None);

const PLUS_A: Slot = counter(1, 8, unit::WH);
const MINUS_A: Slot = counter(2, 8, unit::WH);
const PLUS_R: Slot = counter(3, 8, unit::VARH);
const MINUS_R: Slot = counter(4, 8, unit::VARH);
const PLUS_P: Slot = counter(1, 7, unit::W);
const MINUS_P: Slot = counter(2, 7, unit::W);
const PLUS_Q: Slot = counter(3, 7, unit::VAR);
const MINUS_Q: Slot = counter(4, 7, unit::VAR);

/// Wiener Netze: clock, +A, −A, +R, −R, +P, −P, +Q, −Q.
const WIENER: [Slot; 9] = [
    CLOCK, PLUS_A, MINUS_A, PLUS_R, MINUS_R, PLUS_P, MINUS_P, PLUS_Q, MINUS_Q,
];

/// Wiener Netze, Siemens IM350: meter number in front.
const WIENER_IM350: [Slot; 10] = [
    METER_NUMBER,
    CLOCK,
    PLUS_A,
    MINUS_A,
    PLUS_R,
    MINUS_R,
    PLUS_P,
    MINUS_P,
    PLUS_Q,
    MINUS_Q,
];

const BURGENLAND: [Slot; 14] = [
    slot(Kind::Integer, obis(32, 7), 0, Some(unit::V)),
    slot(Kind::Integer, obis(52, 7), 0, Some(unit::V)),
    slot(Kind::Integer, obis(72, 7), 0, Some(unit::V)),
    slot(Kind::Integer, obis(31, 7), -2, Some(unit::A)),
    slot(Kind::Integer, obis(51, 7), -2, Some(unit::A)),
    slot(Kind::Integer, obis(71, 7), -2, Some(unit::A)),
    PLUS_P,
    MINUS_P,
    PLUS_A,
    MINUS_A,
    UNLABELED_INT,
    UNLABELED_INT,
    UNLABELED_INT,
    METER_NUMBER,
];

const SHRDZM_10: [Slot; 10] = [
    PUSH_ID,
    METER_NUMBER,
    TIME,
    DATE,
    PLUS_A,
    MINUS_A,
    PLUS_R,
    MINUS_R,
    PLUS_P,
    MINUS_P,
];

const SHRDZM_12: [Slot; 12] = [
    PUSH_ID,
    METER_NUMBER,
    TIME,
    DATE,
    PLUS_A,
    MINUS_A,
    PLUS_R,
    MINUS_R,
    PLUS_P,
    MINUS_P,
    UNLABELED_TEXT,
    UNLABELED_TEXT,
];

impl Layout {
    /// Every layout, for configuration checks and help texts.
    pub const ALL: [Layout; 4] = [
        Layout::WienerNetze,
        Layout::NetzBurgenland,
        Layout::Shrdzm12,
        Layout::Shrdzm10,
    ];

    /// The configuration name (`wiener-netze`, `netz-burgenland`, `shrdzm-12`, `shrdzm-10`).
    pub fn name(self) -> &'static str {
        match self {
            Layout::WienerNetze => "wiener-netze",
            Layout::NetzBurgenland => "netz-burgenland",
            Layout::Shrdzm12 => "shrdzm-12",
            Layout::Shrdzm10 => "shrdzm-10",
        }
    }

    /// The layout with this configuration name.
    pub fn from_name(name: &str) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The slot tables this layout accepts (several for variants).
    fn variants(self) -> &'static [&'static [Slot]] {
        match self {
            Layout::WienerNetze => &[&WIENER, &WIENER_IM350],
            Layout::NetzBurgenland => &[&BURGENLAND],
            Layout::Shrdzm12 => &[&SHRDZM_12],
            Layout::Shrdzm10 => &[&SHRDZM_10],
        }
    }

    /// Recognises a positional push from the number and types of its elements.
    pub fn detect(body: &Data) -> Option<Layout> {
        let items = body.elements()?;
        Layout::ALL
            .into_iter()
            .find(|l| l.variants().iter().any(|v| fits(v, items).is_ok()))
    }

    /// Maps a body of this layout to entries.
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] naming the first element that does not fit.
    pub fn entries(self, body: &Data) -> Result<Vec<Entry>, Error> {
        let items = body.elements().ok_or(Error::LayoutMismatch {
            position: 0,
            elements: 0,
        })?;
        let mut first_error = None;
        for slots in self.variants() {
            match fits(slots, items) {
                Ok(()) => return Ok(positional(slots, items)),
                // Report against the variant with the body's element count, if any.
                Err(e) if slots.len() == items.len() => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(Error::LayoutMismatch {
            position: 0,
            elements: items.len(),
        }))
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = Error;

    /// Parses a configuration name; an unknown name is `LayoutMismatch { 0, 0 }`.
    fn from_str(s: &str) -> Result<Layout, Error> {
        Layout::from_name(s).ok_or(Error::LayoutMismatch {
            position: 0,
            elements: 0,
        })
    }
}

fn fits(slots: &[Slot], items: &[Data]) -> Result<(), Error> {
    let elements = items.len();
    for (position, (slot, item)) in slots.iter().zip(items).enumerate() {
        if !slot.kind.matches(item) {
            return Err(Error::LayoutMismatch { position, elements });
        }
    }
    if slots.len() != elements {
        return Err(Error::LayoutMismatch {
            position: slots.len().min(elements),
            elements,
        });
    }
    Ok(())
}

fn positional(slots: &[Slot], items: &[Data]) -> Vec<Entry> {
    let mut out = Vec::with_capacity(items.len());
    let mut time: Option<DateTime> = None;
    for (slot, item) in slots.iter().zip(items) {
        let value = match (slot.kind, item) {
            (Kind::Time, Data::OctetString(b)) => {
                time = <[u8; 4]>::try_from(b.as_slice())
                    .ok()
                    .map(|t| DateTime::from_time_bytes(&t));
                continue;
            }
            (Kind::Time, Data::Time(t)) => {
                time = Some(*t);
                continue;
            }
            (Kind::Date, date) => {
                let date = match date {
                    Data::OctetString(b) => <[u8; 5]>::try_from(b.as_slice())
                        .ok()
                        .map(|d| DateTime::from_date_bytes(&d)),
                    Data::Date(d) => Some(*d),
                    _ => None,
                };
                match (date, time.take()) {
                    (Some(d), Some(t)) => Data::DateTime(DateTime::from_date_and_time(&d, &t)),
                    _ => item.clone(),
                }
            }
            _ => item.clone(),
        };
        out.push(Entry::with(slot.obis, value, slot.scaler, slot.unit));
    }
    out
}

/// A capture object of a push setup's object list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureObject {
    /// COSEM class id.
    pub class_id: u16,
    /// Logical name (OBIS code).
    pub obis: [u8; 6],
    /// Attribute index.
    pub attribute: i8,
    /// Data index (0 = the whole attribute).
    pub data_index: u16,
}

impl CaptureObject {
    fn from_data(d: &Data) -> Option<CaptureObject> {
        match d.elements()? {
            [Data::Uint16(class_id), name, Data::Int8(attribute), Data::Uint16(data_index)] => {
                Some(CaptureObject {
                    class_id: *class_id,
                    obis: name.as_obis()?,
                    attribute: *attribute,
                    data_index: *data_index,
                })
            }
            _ => None,
        }
    }
}

/// The capture-object list at the start of a body, if the body has one.
pub fn capture_objects(body: &Data) -> Option<Vec<CaptureObject>> {
    let first = body.elements()?.first()?;
    let Data::Array(list) = first else {
        return None;
    };
    if list.is_empty() {
        return None;
    }
    list.iter().map(CaptureObject::from_data).collect()
}

fn from_capture_list(list: &[CaptureObject], items: &[Data]) -> Vec<Entry> {
    // The list normally describes every element including itself; tolerate a list that
    // leaves itself out.
    let skip = usize::from(list.len().saturating_add(1) == items.len());
    let values = items.get(skip..).unwrap_or(&[]);
    let mut out = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        match list.get(i) {
            Some(co) if co.class_id == CLASS_PUSH_SETUP && co.attribute == 2 => {}
            Some(co) => out.push(Entry {
                obis: Some(co.obis),
                class_id: Some(co.class_id),
                attribute: Some(co.attribute),
                value: value.clone(),
                scaler: 0,
                unit: None,
            }),
            None => out.push(Entry::new(None, value.clone())),
        }
    }
    out
}

fn scaler_unit(d: &Data) -> Option<(i8, u8)> {
    match d {
        Data::Structure(v) => match v.as_slice() {
            [Data::Int8(s), Data::Enum(u)] => Some((*s, *u)),
            _ => None,
        },
        _ => None,
    }
}

/// `{OBIS, value}` or `{OBIS, value, {scaler, unit}}`.
fn nested(d: &Data) -> Option<Entry> {
    match d.elements()? {
        [name, value] => Some(Entry::new(Some(name.as_obis()?), value.clone())),
        [name, value, su] => {
            let (s, u) = scaler_unit(su)?;
            Some(Entry::with(
                Some(name.as_obis()?),
                value.clone(),
                s,
                Some(u),
            ))
        }
        _ => None,
    }
}

fn walk(items: &[Data]) -> Vec<Entry> {
    let mut out = Vec::with_capacity(items.len());
    let last = items.len().saturating_sub(1);
    let mut i = 0;
    while let Some(item) = items.get(i) {
        if let Some(e) = nested(item) {
            out.push(e);
            i = i.saturating_add(1);
            continue;
        }
        if let (Some(name), Some(value)) = (item.as_obis(), items.get(i.saturating_add(1))) {
            let next = i.saturating_add(2);
            match items.get(next).and_then(scaler_unit) {
                Some((s, u)) => {
                    out.push(Entry::with(Some(name), value.clone(), s, Some(u)));
                    i = next.saturating_add(1);
                }
                None => {
                    out.push(Entry::new(Some(name), value.clone()));
                    i = next;
                }
            }
            continue;
        }
        let is_date_time = match item {
            Data::DateTime(_) => true,
            Data::OctetString(b) => DateTime::from_octet_string(b).is_some(),
            _ => false,
        };
        let is_text = matches!(item, Data::OctetString(_) | Data::VisibleString(_));
        let obis = if i == 0 && is_date_time {
            Some(OBIS_CLOCK)
        } else if i == last && i > 0 && is_text {
            Some(OBIS_METER_NUMBER)
        } else {
            None
        };
        out.push(Entry::new(obis, item.clone()));
        i = i.saturating_add(1);
    }
    out
}

/// Turns a notification body into entries.
///
/// With `layout = None` the shape is recognised automatically: a capture-object list
/// first, then the positional layouts ([`Layout::detect`]), else the self-describing walk
/// (see the module documentation). With a layout the body must have that layout.
///
/// # Errors
/// [`Error::LayoutMismatch`] when an explicit layout does not fit; automatic recognition
/// never fails (unrecognised elements become entries without OBIS code).
pub fn entries(body: &Data, layout: Option<Layout>) -> Result<Vec<Entry>, Error> {
    if let Some(layout) = layout {
        return layout.entries(body);
    }
    let Some(items) = body.elements() else {
        return Ok(vec![Entry::new(None, body.clone())]);
    };
    if let Some(list) = capture_objects(body) {
        return Ok(from_capture_list(&list, items));
    }
    if let Some(layout) = Layout::detect(body) {
        return layout.entries(body);
    }
    Ok(walk(items))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::panic
    )]
    use super::*;

    fn os(b: &[u8]) -> Data {
        Data::OctetString(b.to_vec())
    }

    fn su(s: i8, u: u8) -> Data {
        Data::Structure(vec![Data::Int8(s), Data::Enum(u)])
    }

    const DT: [u8; 12] = [
        0x07, 0xE5, 0x09, 0x1B, 0x01, 0x09, 0x2F, 0x0F, 0x00, 0xFF, 0x88, 0x80,
    ];

    #[test]
    fn numbers_print_as_exact_decimals() {
        let n = |m: i128, e: i8| {
            Number {
                mantissa: m,
                exponent: e,
            }
            .to_string()
        };
        assert_eq!(n(2337, -1), "233.7");
        assert_eq!(n(383, -2), "3.83");
        assert_eq!(n(5, -2), "0.05");
        assert_eq!(n(-819, -3), "-0.819");
        assert_eq!(n(0, -1), "0.0");
        assert_eq!(n(10955225, 1), "109552250");
        assert_eq!(n(0, 3), "0");
        assert_eq!(n(-7, 0), "-7");
        assert_eq!(
            n(i128::MIN, -2),
            "-1701411834604692317316873037158841057.28"
        );
    }

    #[test]
    fn flat_list_maps_bare_clock_triples_and_trailing_meter_number() {
        let body = Data::Structure(vec![
            os(&DT),
            os(&[1, 0, 1, 8, 0, 255]),
            Data::Uint32(12937),
            su(0, unit::WH),
            os(&[1, 0, 32, 7, 0, 255]),
            Data::Uint16(2337),
            su(-1, unit::V),
            os(&[1, 0, 13, 7, 0, 255]),
            Data::Int16(-819),
            su(-3, unit::NONE),
            os(b"181220000009"),
        ]);
        let e = entries(&body, None).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].obis, Some(OBIS_CLOCK));
        assert!(
            matches!(e[0].leaf(), Value::DateTime(dt) if dt.offset_minutes_east() == Some(120))
        );
        assert_eq!(e[1].number().unwrap().to_string(), "12937");
        assert_eq!(e[1].unit, Some(unit::WH));
        assert_eq!(e[2].number().unwrap().to_string(), "233.7");
        assert_eq!(e[3].number().unwrap().to_string(), "-0.819");
        assert_eq!(e[4].obis, Some(OBIS_METER_NUMBER));
        assert_eq!(e[4].leaf(), Value::Text("181220000009".into()));
    }

    #[test]
    fn nested_structures_map_to_entries() {
        let body = Data::Structure(vec![
            os(&OBIS_CLOCK),
            os(&DT),
            Data::Structure(vec![os(&OBIS_METER_NUMBER), os(b"1KFM0100000035")]),
            Data::Structure(vec![
                os(&[1, 0, 31, 7, 0, 255]),
                Data::Uint16(1241),
                su(-2, unit::A),
            ]),
        ]);
        let e = entries(&body, None).unwrap();
        assert_eq!(e.len(), 3);
        assert!(e[0].is_clock());
        assert!(matches!(e[0].leaf(), Value::DateTime(_)));
        assert_eq!(e[1].leaf(), Value::Text("1KFM0100000035".into()));
        assert_eq!(e[2].number().unwrap().to_string(), "12.41");
        assert_eq!(e[2].obis_string().unwrap(), "1.0.31.7.0.255");
    }

    #[test]
    fn capture_object_lists_label_the_values() {
        let co = |class: u16, o: [u8; 6], attr: i8| {
            Data::Structure(vec![
                Data::Uint16(class),
                os(&o),
                Data::Int8(attr),
                Data::Uint16(0),
            ])
        };
        let list = Data::Array(vec![
            co(40, [0, 0, 25, 9, 0, 255], 2),
            co(40, [0, 0, 25, 9, 0, 255], 1),
            co(8, OBIS_CLOCK, 2),
            co(3, [1, 0, 1, 8, 0, 255], 2),
        ]);
        let body = Data::Structure(vec![
            list.clone(),
            os(&[0, 0, 25, 9, 0, 255]),
            os(&DT),
            Data::Uint32(5),
        ]);
        let e = entries(&body, None).unwrap();
        assert_eq!(e.len(), 3, "the object list itself is not an entry");
        assert_eq!((e[0].class_id, e[0].attribute), (Some(40), Some(1)));
        assert_eq!(e[0].leaf(), Value::Bytes(vec![0, 0, 25, 9, 0, 255]));
        assert!(matches!(e[1].leaf(), Value::DateTime(_)));
        assert_eq!(
            e[2].number(),
            Some(Number {
                mantissa: 5,
                exponent: 0
            })
        );
        assert_eq!(capture_objects(&body).unwrap().len(), 4);
    }

    #[test]
    fn wiener_netze_positions_and_variant_are_recognised() {
        let mut items = vec![os(&DT)];
        items.extend((1..=8).map(Data::Uint32));
        let body = Data::Structure(items.clone());
        assert_eq!(Layout::detect(&body), Some(Layout::WienerNetze));
        let e = entries(&body, None).unwrap();
        assert_eq!(e[0].obis, Some(OBIS_CLOCK));
        assert_eq!(e[1].obis_string().unwrap(), "1.0.1.8.0.255");
        assert_eq!(e[8].obis_string().unwrap(), "1.0.4.7.0.255");
        assert_eq!(e[8].unit, Some(unit::VAR));
        items.insert(0, os(b"SMS1030788000020"));
        let body = Data::Structure(items);
        assert_eq!(Layout::detect(&body), Some(Layout::WienerNetze));
        let e = Layout::WienerNetze.entries(&body).unwrap();
        assert_eq!(e[0].obis, Some(OBIS_METER_NUMBER));
        assert_eq!(e[1].obis, Some(OBIS_CLOCK));
    }

    #[test]
    fn shrdzm_time_and_date_become_the_clock() {
        let mut items = vec![
            os(&[0, 6, 25, 9, 0, 255]),
            os(b"1121273201353"),
            os(&[0x13, 0x01, 0x0E, 0x00]),
            os(&[0x07, 0xE5, 0x03, 0x19, 0x04]),
        ];
        items.extend((1..=6).map(Data::Uint32));
        let short = Data::Structure(items.clone());
        items.extend([os(b""), os(b"")]);
        let long = Data::Structure(items);
        assert_eq!(Layout::detect(&short), Some(Layout::Shrdzm10));
        assert_eq!(Layout::detect(&long), Some(Layout::Shrdzm12));
        let e = entries(&long, None).unwrap();
        assert_eq!(e.len(), 11);
        assert_eq!(e[0].obis, None);
        assert_eq!(e[1].obis, Some(OBIS_METER_NUMBER));
        let Value::DateTime(dt) = e[2].leaf() else {
            panic!("{:?}", e[2])
        };
        assert_eq!(
            (dt.year, dt.day, dt.hour, dt.second),
            (Some(2021), Some(25), Some(19), Some(14))
        );
        assert_eq!(e[3].obis_string().unwrap(), "1.0.1.8.0.255");
        assert_eq!(e[8].obis_string().unwrap(), "1.0.2.7.0.255");
    }

    #[test]
    fn explicit_layout_mismatch_names_the_position() {
        let mut items = vec![os(&DT)];
        items.extend((1..=7).map(Data::Uint32));
        items.push(os(b"x"));
        let body = Data::Structure(items);
        assert_eq!(
            entries(&body, Some(Layout::WienerNetze)),
            Err(Error::LayoutMismatch {
                position: 8,
                elements: 9
            })
        );
        assert_eq!(
            Layout::NetzBurgenland.entries(&Data::Uint8(1)),
            Err(Error::LayoutMismatch {
                position: 0,
                elements: 0
            })
        );
        assert_eq!(Layout::detect(&body), None);
    }

    #[test]
    fn layout_names_round_trip() {
        for l in Layout::ALL {
            assert_eq!(l.name().parse::<Layout>(), Ok(l));
            assert_eq!(l.to_string(), l.name());
        }
        assert!("vienna".parse::<Layout>().is_err());
    }

    #[test]
    fn unrecognised_shapes_degrade_to_unlabeled_entries() {
        assert_eq!(
            entries(&Data::Uint8(3), None).unwrap(),
            vec![Entry::new(None, Data::Uint8(3))]
        );
        let body = Data::Array(vec![Data::Bool(true), Data::Null, Data::Float32(1.5)]);
        let e = entries(&body, None).unwrap();
        assert_eq!(e.len(), 3);
        assert!(e.iter().all(|e| e.obis.is_none()));
        assert_eq!(e[0].leaf(), Value::Bool(true));
        assert_eq!(e[1].leaf(), Value::Null);
        assert_eq!(e[2].leaf(), Value::Float(1.5));
        // An OBIS octet-string at the very end has no value to pair with.
        let e = entries(
            &Data::Structure(vec![Data::Uint8(1), os(&[1, 0, 1, 8, 0, 255])]),
            None,
        )
        .unwrap();
        assert_eq!(e[1].obis, Some(OBIS_METER_NUMBER));
    }
}

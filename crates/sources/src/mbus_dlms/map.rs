//! From a decoded DLMS push ([`proto_dlms::Push`] and its [`Entry`] list) to a [`Reading`].
//! Pure; shared by the `mbus-dlms` and `hdlc-dlms` adapters, which differ only in the link
//! layer.
//!
//! - `meter_time`: the data-notification's date-time, else the clock entry
//!   (`0.0.1.0.0.255`), when it is a complete calendar date; the UTC offset is the negated
//!   COSEM deviation (`FF88` = −120 → `+02:00`), absent when the meter leaves it unspecified.
//! - `authenticated`: for ciphered APDUs, whether the GCM tag was verified; `None` for
//!   plaintext pushes.
//! - samples, in the meter's order, keyed by OBIS code:
//!   - integers with the scaler applied exactly ([`Decimal`]), with the DLMS unit when the
//!     frame (or the positional layout) gives one other than "count" (255);
//!   - booleans and enums as numbers, floats as their shortest decimal with the scaler applied;
//!   - strings as text when printable ASCII, else upper-case hex;
//!   - date-times as [`Value::Time`];
//!   - entries without an OBIS code (undocumented elements of a push) are kept as
//!     `dlms.<index>` (index in the entry list) rather than dropped;
//!   - arrays, structures and null values are left out.
//! - The clock `0.0.1.0.0.255` is always present when the push carries a time: pushes that
//!   only have the notification's date-time (Netz Burgenland) get it from there.

use smart_meter_core::reading::octets_to_text;
use smart_meter_core::{Decimal, FrameError, Key, MeterId, MeterTime, Obis, Reading, Sample};
use smart_meter_core::{Stage, Unit, Value};

use proto_dlms::cosem::{Entry, Value as Leaf};
use proto_dlms::{decode_apdu, entries, Data, DateTime, Keys, Layout, Push, Scratch};

use crate::key::AesKey;

/// The reading for one decoded push.
pub fn reading(meter: &MeterId, protocol: &'static str, push: &Push, entries: &[Entry]) -> Reading {
    let mut r = Reading::new(meter.clone(), protocol);
    r.authenticated = push.security.map(|s| s.authenticated);
    r.samples.reserve(entries.len().saturating_add(1));
    let mut clock = None;
    for (index, e) in entries.iter().enumerate() {
        let key = match e.obis {
            Some(o) => Key::Obis(Obis(o)),
            None => Key::Named(format!("dlms.{index}").into()),
        };
        if let Some(sample) = sample(key, e) {
            if let (None, true, Value::Time(t)) = (clock, e.is_clock(), &sample.value) {
                clock = Some(*t);
            }
            r.samples.push(sample);
        }
    }
    r.meter_time = push
        .notification
        .date_time
        .as_ref()
        .and_then(meter_time)
        .or(clock);
    if let (Some(t), None) = (r.meter_time, clock) {
        if r.obis(Obis::CLOCK).is_none() {
            r.samples.push(Sample {
                key: Key::Obis(Obis::CLOCK),
                value: Value::Time(t),
                unit: None,
            });
        }
    }
    r
}

fn sample(key: Key, e: &Entry) -> Option<Sample> {
    let unit = e.unit.and_then(Unit::from_dlms);
    // Fast paths for what pushes are made of: integers and octet strings.
    if let Some(mantissa) = e.value.as_integer() {
        return Some(Sample {
            key,
            value: Value::Number(Decimal::new(mantissa, e.scaler)),
            unit,
        });
    }
    if let Data::OctetString(b) = &e.value {
        if !e.is_clock() {
            return Some(Sample::text(key, text(b)));
        }
    }
    let number = |d: Decimal| {
        Some(Sample {
            key: key.clone(),
            value: Value::Number(d),
            unit: unit.clone(),
        })
    };
    match e.leaf() {
        Leaf::Number(n) => number(Decimal::new(n.mantissa, n.exponent)),
        Leaf::Float(f) => match format!("{f}").parse::<Decimal>() {
            Ok(d) => number(d.scaled(e.scaler)),
            Err(_) => Some(Sample::text(key, format!("{f}"))),
        },
        Leaf::Bool(b) => number(Decimal::from_int(i128::from(b))),
        Leaf::Enum(v) => number(Decimal::from_int(i128::from(v))),
        Leaf::Text(s) => Some(Sample::text(key, s)),
        Leaf::Bytes(b) => Some(Sample::text(key, octets_to_text(&b))),
        Leaf::DateTime(dt) => Some(match meter_time(&dt) {
            Some(t) => Sample {
                key,
                value: Value::Time(t),
                unit: None,
            },
            None => Sample::text(key, octets_to_text(&dt.to_bytes())),
        }),
        Leaf::Null | Leaf::Compound => None,
    }
}

/// An octet string as text: ASCII when every byte is printable, else upper-case hex (the
/// rule of [`octets_to_text`], without going through `char`s).
fn text(b: &[u8]) -> String {
    match core::str::from_utf8(b) {
        Ok(s) if !b.is_empty() && b.iter().all(|c| (0x20..0x7F).contains(c)) => s.to_owned(),
        _ => octets_to_text(b),
    }
}

/// Decodes one complete APDU (plain data-notification or general-glo-ciphering) into a
/// reading: decryption with `key`/`auth_key`, the notification, its entries (with `layout`, or
/// recognised automatically), then [`reading`]. `offset` is the stream offset of the frame the
/// APDU started in, for error details. `scratch` receives the decrypted APDU and the decoded
/// values; the adapters keep one per meter so that decoding a frame does not allocate them.
///
/// # Errors
/// One [`FrameError`] with the DLMS stage that failed (see [`dlms_error`]).
pub fn decode(
    meter: &MeterId,
    protocol: &'static str,
    keys: (Option<&AesKey>, Option<&AesKey>),
    layout: Option<Layout>,
    apdu: &[u8],
    offset: u64,
    scratch: &mut Scratch,
) -> Result<Reading, FrameError> {
    let (key, auth_key) = keys;
    let keys = key.map(|k| Keys {
        encryption: k.bytes(),
        authentication: auth_key.map(AesKey::bytes),
    });
    let push =
        decode_apdu(apdu, keys.as_ref(), scratch).map_err(|e| dlms_error(&e, apdu, offset))?;
    let entries =
        entries(&push.notification.body, layout).map_err(|e| dlms_error(&e, apdu, offset))?;
    Ok(reading(meter, protocol, &push, &entries))
}

/// A COSEM date-time as a meter clock reading, when its date and time are complete.
pub fn meter_time(dt: &DateTime) -> Option<MeterTime> {
    // Whole seconds (hundredths 0, or not specified) print without a fraction.
    let millis = dt
        .hundredths
        .filter(|h| (1..100).contains(h))
        .map(|h| u16::from(h).saturating_mul(10));
    MeterTime::new(
        dt.year?,
        dt.month?,
        dt.day?,
        dt.hour?,
        dt.minute?,
        dt.second?,
        millis,
        dt.offset_minutes_east(),
    )
}

/// The stage of a link-layer error. M-Bus and HDLC errors share their kinds
/// (`proto_stream::ErrorKind`, re-exported by both link-layer crates).
pub fn link_stage(kind: proto_mbus::ErrorKind) -> Stage {
    match kind {
        proto_mbus::ErrorKind::Framing => Stage::Framing,
        proto_mbus::ErrorKind::Checksum => Stage::Checksum,
        proto_mbus::ErrorKind::Reassembly => Stage::Reassembly,
    }
}

/// The stage of a DLMS-layer error.
pub fn stage(e: &proto_dlms::Error) -> Stage {
    match e.stage_name() {
        "framing" => Stage::Framing,
        "reassembly" => Stage::Reassembly,
        "decryption" => Stage::Decryption,
        "authentication" => Stage::Authentication,
        "data" => Stage::Data,
        _ => Stage::Apdu,
    }
}

/// A DLMS-layer error of the APDU that started at stream offset `offset`. For a wrong key on
/// a frame without tag the detail names the system title and frame counter (never the key).
pub fn dlms_error(e: &proto_dlms::Error, apdu: &[u8], offset: u64) -> FrameError {
    let mut detail = format!("APDU at offset {offset}: {e}");
    if let (proto_dlms::Error::ImplausiblePlaintext, Some(title)) = (e, apdu.get(2..10)) {
        detail.push_str(&format!(" (system title {})", octets_to_text(title)));
    }
    FrameError::new(stage(e), detail)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        hex::decode(s).unwrap()
    }

    const DT: &str = "07E5091B01092F0F00FF8880";

    fn flat_push() -> Vec<u8> {
        // data-notification, invoke id, date-time, then the EVN-style flat body: bare clock,
        // OBIS/value/{scaler, unit} triples, bare meter number.
        unhex(&format!(
            "0F80000001 0C{DT} 0208 090C{DT}
             0906 0100010800FF 0600003289 02020F00161E
             0906 01000D0700FF 10FCCD 02020FFD16FF
             090C 313831323230303030303039"
        ))
    }

    #[test]
    fn maps_a_flat_push_with_scalers_units_clock_and_meter_number() {
        let apdu = flat_push();
        let mut scratch = Scratch::new();
        let push = decode_apdu(&apdu, None, &mut scratch).unwrap();
        let e = entries(&push.notification.body, None).unwrap();
        let r = reading(&MeterId::new("evn").unwrap(), "mbus-dlms", &push, &e);
        assert_eq!(r.protocol, "mbus-dlms");
        assert_eq!(r.authenticated, None);
        assert_eq!(
            r.meter_time.unwrap().to_string(),
            "2021-09-27T09:47:15+02:00"
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let v = &json["values"];
        assert_eq!(v["1.0.1.8.0.255"]["value"], 12937);
        assert_eq!(v["1.0.1.8.0.255"]["unit"], "Wh");
        assert_eq!(v["1.0.13.7.0.255"]["value"], -0.819);
        assert_eq!(v["1.0.13.7.0.255"]["unit"], serde_json::Value::Null);
        assert_eq!(v["0.0.96.1.0.255"]["value"], "181220000009");
        assert_eq!(v["0.0.1.0.0.255"]["value"], "2021-09-27T09:47:15+02:00");
        assert_eq!(r.samples.len(), 4);
    }

    #[test]
    fn a_push_without_clock_element_gets_the_notification_time_as_clock() {
        // Same notification with a body of one {OBIS, value} structure.
        let apdu = unhex(&format!("0F80000001 0C{DT} 0202 0906 0100200700FF 12092A"));
        let mut scratch = Scratch::new();
        let push = decode_apdu(&apdu, None, &mut scratch).unwrap();
        let e = entries(&push.notification.body, None).unwrap();
        let r = reading(&MeterId::new("m").unwrap(), "hdlc-dlms", &push, &e);
        assert_eq!(
            r.number(Obis::new(1, 0, 32, 7, 0, 255)),
            Some(Decimal::from_int(2346))
        );
        assert!(matches!(
            r.obis(Obis::CLOCK).unwrap().value,
            Value::Time(t) if t.to_string() == "2021-09-27T09:47:15+02:00"
        ));
    }

    #[test]
    fn encrypted_pushes_say_whether_they_were_authenticated() {
        let key = [7u8; 16];
        let keys = Keys {
            encryption: &key,
            authentication: None,
        };
        let title = [0x4B, 0x46, 0x4D, 0x67, 0x50, 0, 0, 0x09];
        let ciphered = proto_dlms::encrypt_glo(&flat_push(), &title, 35, 0x20, &keys).unwrap();
        let mut scratch = Scratch::new();
        let push = decode_apdu(&ciphered, Some(&keys), &mut scratch).unwrap();
        let e = entries(&push.notification.body, None).unwrap();
        let r = reading(&MeterId::new("evn").unwrap(), "mbus-dlms", &push, &e);
        assert_eq!(r.authenticated, Some(false));
    }

    #[test]
    fn octet_strings_are_ascii_text_or_hex() {
        assert_eq!(text(b"1KFM0100000035"), "1KFM0100000035");
        assert_eq!(text(&[0x00, 0x08, 0x19, 0x09, 0x00, 0xFF]), "0008190900FF");
        assert_eq!(text(&[]), "");
    }

    #[test]
    fn converts_cosem_date_times_with_their_offset() {
        let dt = DateTime::from_bytes(&[
            0x07, 0xE5, 0x09, 0x1B, 0x01, 0x09, 0x2F, 0x0F, 0x00, 0xFF, 0x88, 0x80,
        ]);
        let t = meter_time(&dt).unwrap();
        assert_eq!(t.to_string(), "2021-09-27T09:47:15+02:00");
        // Hundredths and deviation "not specified".
        let dt = DateTime::from_bytes(&[
            0x07, 0xE7, 0x03, 0x1C, 0x02, 0x13, 0x0B, 0x14, 0xFF, 0x80, 0x00, 0x00,
        ]);
        assert_eq!(meter_time(&dt).unwrap().to_string(), "2023-03-28T19:11:20");
        // Month "DST begin" is no calendar date.
        let dt = DateTime::from_bytes(&[
            0x07, 0xE7, 0xFE, 0x1C, 0x02, 0x13, 0x0B, 0x14, 0xFF, 0x80, 0x00, 0x00,
        ]);
        assert!(meter_time(&dt).is_none());
    }

    #[test]
    fn error_stages_follow_the_dlms_layer() {
        use proto_dlms::Error as E;
        assert_eq!(stage(&E::ImplausiblePlaintext), Stage::Decryption);
        assert_eq!(stage(&E::MissingKey), Stage::Decryption);
        assert_eq!(stage(&E::AuthenticationFailed), Stage::Authentication);
        assert_eq!(stage(&E::UnknownApdu { tag: 1 }), Stage::Apdu);
        assert_eq!(stage(&E::TooDeep { offset: 0 }), Stage::Data);
        assert_eq!(
            stage(&E::BlockOutOfOrder {
                expected: 2,
                actual: 3
            }),
            Stage::Reassembly
        );
        let apdu = [0xDB, 0x08, b'K', b'F', b'M', 0x67, 0x50, 0, 0, 0x09];
        let e = dlms_error(&E::ImplausiblePlaintext, &apdu, 282);
        assert_eq!(e.stage, Stage::Decryption);
        assert!(e.detail.contains("key is probably wrong"), "{}", e.detail);
        assert!(e.detail.contains("offset 282"));
        assert!(e.detail.contains("4B464D6750000009"), "{}", e.detail);
    }
}

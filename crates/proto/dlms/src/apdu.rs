//! The data-notification APDU (`0x0F`) that push meters send, and [`decode_apdu`], which
//! takes any supported APDU (plain or general-glo-ciphered) to a [`Push`].
//!
//! IEC 62056-5-3 (`Data-Notification-Request` APDU) / Green Book ed. 9, "DataNotification
//! service":
//!
//! ```text
//! 0F | long-invoke-id-and-priority (4, BE) | date-time (00, or 0C + 12 bytes) | notification-body (Data)
//! ```
//!
//! The date-time is an A-XDR `OCTET STRING` of length 0 (absent, as Aidon sends it) or 12.
//! Encoders that put the A-XDR tag of the string (`09 0C`) or of the date-time type (`19`) in
//! front are accepted as well. The notification body is one [`Data`] value that must use up
//! the rest of the APDU.

use crate::axdr::{self, Data};
use crate::datetime::DateTime;
use crate::error::Error;
use crate::security::{self, Keys, TAG_GENERAL_GLO_CIPHERING};

/// APDU tag of data-notification (IEC 62056-5-3 COSEMpdu, `[15]`).
pub const TAG_DATA_NOTIFICATION: u8 = 0x0F;
/// APDU tag of general-block-transfer (`[224]`), see [`crate::gbt`].
pub const TAG_GENERAL_BLOCK_TRANSFER: u8 = 0xE0;

/// Offsets of the fixed header fields.
mod field {
    pub const INVOKE_ID: core::ops::Range<usize> = 1..5;
    pub const DATE_TIME: usize = 5;
}

/// A decoded data-notification.
#[derive(Debug, Clone, PartialEq)]
pub struct DataNotification {
    /// long-invoke-id-and-priority: bits 0..=23 invoke id, bit 28 self-descriptive, bit 29
    /// processing option, bit 30 service class (confirmed), bit 31 priority (high).
    pub long_invoke_id_and_priority: u32,
    /// The notification time, when the meter sends one.
    pub date_time: Option<DateTime>,
    /// The notification body (usually a structure or array of values).
    pub body: Data,
}

impl DataNotification {
    /// The 24-bit invoke id.
    pub fn invoke_id(&self) -> u32 {
        self.long_invoke_id_and_priority & 0x00FF_FFFF
    }

    /// Whether the priority bit (bit 31) is set.
    pub fn high_priority(&self) -> bool {
        self.long_invoke_id_and_priority & 0x8000_0000 != 0
    }
}

/// Parses a complete data-notification APDU.
///
/// # Errors
/// * [`Error::UnknownApdu`] when `apdu` does not start with `0x0F`;
/// * [`Error::ApduTruncated`] when the header is cut short;
/// * [`Error::BadLength`] for a date-time length other than 0 or 12;
/// * the A-XDR errors of the body (stage data);
/// * [`Error::TrailingBytes`] when bytes follow the body.
pub fn parse_notification(apdu: &[u8]) -> Result<DataNotification, Error> {
    match apdu.first() {
        Some(&TAG_DATA_NOTIFICATION) => {}
        Some(&tag) => return Err(Error::UnknownApdu { tag }),
        None => {
            return Err(Error::ApduTruncated {
                offset: 0,
                needed: 1,
                available: 0,
            })
        }
    }
    let truncated = |offset: usize, needed: usize| Error::ApduTruncated {
        offset,
        needed,
        available: apdu.len().saturating_sub(offset),
    };
    let id: [u8; 4] = apdu
        .get(field::INVOKE_ID)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| truncated(field::INVOKE_ID.start, 4))?;
    let long_invoke_id_and_priority = u32::from_be_bytes(id);

    let mut pos = field::DATE_TIME;
    let first = *apdu.get(pos).ok_or_else(|| truncated(pos, 1))?;
    let date_time = match (first, apdu.get(pos.saturating_add(1))) {
        (0x00, _) => {
            pos = pos.saturating_add(1);
            None
        }
        (0x0C | axdr::tag::DATE_TIME, _) => {
            pos = pos.saturating_add(1);
            Some(date_time_at(apdu, &mut pos)?)
        }
        (axdr::tag::OCTET_STRING, Some(0x0C)) => {
            pos = pos.saturating_add(2);
            Some(date_time_at(apdu, &mut pos)?)
        }
        (other, _) => {
            return Err(Error::BadLength {
                offset: field::DATE_TIME,
                declared: usize::from(other),
                min: 0,
                max: 12,
            })
        }
    };
    if pos >= apdu.len() {
        return Err(truncated(pos, 1));
    }
    let (body, end) = axdr::parse_at(apdu, pos)?;
    if end < apdu.len() {
        return Err(Error::TrailingBytes {
            offset: end,
            count: apdu.len().saturating_sub(end),
        });
    }
    Ok(DataNotification {
        long_invoke_id_and_priority,
        date_time,
        body,
    })
}

fn date_time_at(apdu: &[u8], pos: &mut usize) -> Result<DateTime, Error> {
    let end = pos.saturating_add(12);
    let bytes: &[u8; 12] =
        apdu.get(*pos..end)
            .and_then(|b| b.try_into().ok())
            .ok_or(Error::ApduTruncated {
                offset: *pos,
                needed: 12,
                available: apdu.len().saturating_sub(*pos),
            })?;
    *pos = end;
    Ok(DateTime::from_bytes(bytes))
}

/// Whether `plaintext` is a complete, parseable data-notification.
///
/// Frames without a GCM tag cannot be checked cryptographically: decrypting one with the
/// wrong key yields random bytes. A random plaintext starts with `0x0F` once in 256 times
/// and then almost never parses completely, so this is the test for "the key is probably
/// wrong" (predecessor tools checked only the first byte).
pub fn looks_like_plaintext(plaintext: &[u8]) -> bool {
    parse_notification(plaintext).is_ok()
}

/// What the security layer reported for an encrypted push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Security {
    /// System title of the sender.
    pub system_title: [u8; 8],
    /// Frame counter (invocation counter).
    pub frame_counter: u32,
    /// Security control byte.
    pub security_control: u8,
    /// True only when the GCM tag was verified with the authentication key.
    pub authenticated: bool,
}

/// A decoded push: the notification and, for encrypted frames, the security information.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// The data-notification.
    pub notification: DataNotification,
    /// `None` for plaintext APDUs.
    pub security: Option<Security>,
}

/// Decodes one complete APDU (link framing and general-block-transfer already removed):
/// a data-notification, or a general-glo-ciphering APDU wrapping one.
///
/// # Errors
/// * [`Error::MissingKey`] for an encrypted APDU when `keys` is `None`;
/// * everything [`security::decrypt_glo`] and [`parse_notification`] return;
/// * [`Error::ImplausiblePlaintext`] when an unauthenticated decryption does not yield a
///   data-notification (the key is probably wrong);
/// * [`Error::TrailingBytes`] when bytes follow the ciphered APDU;
/// * [`Error::UnknownApdu`] for other APDUs (general-block-transfer must be reassembled with
///   [`crate::gbt::Reassembler`] first).
pub fn decode_apdu(apdu: &[u8], keys: Option<&Keys>) -> Result<Push, Error> {
    match apdu.first() {
        Some(&TAG_GENERAL_GLO_CIPHERING) => {
            let keys = keys.ok_or(Error::MissingKey)?;
            let (d, used) = security::decrypt_glo(apdu, keys).map_err(|e| match e {
                // The caller hands a complete APDU: a short one is a length problem.
                Error::Incomplete { needed } => Error::ApduTruncated {
                    offset: apdu.len(),
                    needed: needed.unwrap_or(1),
                    available: 0,
                },
                other => other,
            })?;
            if used < apdu.len() {
                return Err(Error::TrailingBytes {
                    offset: used,
                    count: apdu.len().saturating_sub(used),
                });
            }
            let notification = match parse_notification(&d.plaintext) {
                Ok(n) => n,
                Err(_) if !d.authenticated => return Err(Error::ImplausiblePlaintext),
                Err(e) => return Err(e),
            };
            Ok(Push {
                notification,
                security: Some(Security {
                    system_title: d.system_title,
                    frame_counter: d.frame_counter,
                    security_control: d.security_control,
                    authenticated: d.authenticated,
                }),
            })
        }
        _ => Ok(Push {
            notification: parse_notification(apdu)?,
            security: None,
        }),
    }
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
    use crate::security::encrypt_glo;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Netz Burgenland plaintext (vectors/hdlc-dlms/netzburgenland-lg-e450-1).
    const BURGENLAND_PLAIN: &str = "0F002180FC0C07E7031C02130B14FF800000020E1200EC1200ED1200EC\
        12000012000412001A060000001D06000000000601DE7E8E0600001DC312019012003512012709083330\
        313337313831";

    #[test]
    fn parses_header_date_time_and_body() {
        let n = parse_notification(&unhex(BURGENLAND_PLAIN)).unwrap();
        assert_eq!(n.long_invoke_id_and_priority, 0x0021_80FC);
        assert_eq!(n.invoke_id(), 0x2180FC);
        assert!(!n.high_priority());
        let dt = n.date_time.unwrap();
        assert_eq!(
            (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second),
            (Some(2023), Some(3), Some(28), Some(19), Some(11), Some(20))
        );
        assert_eq!(dt.deviation, None);
        assert_eq!(n.body.elements().unwrap().len(), 14);
        assert_eq!(n.body.elements().unwrap()[0], Data::Uint16(236));
    }

    #[test]
    fn accepts_an_absent_date_time() {
        let n = parse_notification(&[0x0F, 0x40, 0, 0, 0, 0x00, 0x01, 0x00]).unwrap();
        assert_eq!(n.date_time, None);
        assert!(!n.high_priority());
        assert_eq!(n.body, Data::Array(vec![]));
    }

    #[test]
    fn accepts_tagged_date_time_forms() {
        let dt = [
            0x07, 0xE5, 0x09, 0x1B, 0x01, 0x09, 0x2F, 0x0F, 0x00, 0xFF, 0x88, 0x80,
        ];
        for prefix in [&[0x0C][..], &[0x09, 0x0C], &[0x19]] {
            let mut apdu = vec![0x0F, 0x80, 0, 0, 1];
            apdu.extend_from_slice(prefix);
            apdu.extend_from_slice(&dt);
            apdu.extend_from_slice(&[0x11, 0x05]);
            let n = parse_notification(&apdu).unwrap();
            assert_eq!(n.date_time.unwrap().offset_minutes_east(), Some(120));
            assert!(n.high_priority());
            assert_eq!(n.body, Data::Uint8(5));
        }
    }

    #[test]
    fn rejects_wrong_tags_lengths_and_trailing_bytes() {
        assert_eq!(
            parse_notification(&[0xDB]),
            Err(Error::UnknownApdu { tag: 0xDB })
        );
        assert!(matches!(
            parse_notification(&[]),
            Err(Error::ApduTruncated { .. })
        ));
        assert!(matches!(
            parse_notification(&[0x0F, 0, 0, 0, 1, 0x05, 1, 2, 3, 4, 5, 0x00]),
            Err(Error::BadLength {
                offset: 5,
                declared: 5,
                ..
            })
        ));
        assert_eq!(
            parse_notification(&[0x0F, 0, 0, 0, 1, 0x00, 0x11, 0x05, 0xAA]),
            Err(Error::TrailingBytes {
                offset: 8,
                count: 1
            })
        );
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let apdu = unhex(BURGENLAND_PLAIN);
        for n in 0..apdu.len() {
            let e = parse_notification(&apdu[..n]).unwrap_err();
            assert!(["apdu", "data"].contains(&e.stage_name()), "{n}: {e:?}");
        }
    }

    #[test]
    fn plaintext_check_accepts_notifications_only() {
        assert!(looks_like_plaintext(&unhex(BURGENLAND_PLAIN)));
        let mut wrong = unhex(BURGENLAND_PLAIN);
        wrong[29] = 0x07; // an unknown data tag inside the body
        assert!(!looks_like_plaintext(&wrong));
        assert!(!looks_like_plaintext(b"/KFM5KAIFA-METER"));
        assert!(!looks_like_plaintext(&[]));
    }

    #[test]
    fn decode_apdu_decrypts_and_flags_a_probably_wrong_key() {
        let plain = unhex(BURGENLAND_PLAIN);
        let ek = [0x42u8; 16];
        let keys = Keys {
            encryption: &ek,
            authentication: None,
        };
        let apdu = encrypt_glo(&plain, b"SAGY\x05\xE9\x90\xF3", 9, 0x20, &keys).unwrap();
        let push = decode_apdu(&apdu, Some(&keys)).unwrap();
        assert_eq!(push.notification, parse_notification(&plain).unwrap());
        let sec = push.security.unwrap();
        assert_eq!(
            (sec.frame_counter, sec.security_control, sec.authenticated),
            (9, 0x20, false)
        );

        let wrong = [0x43u8; 16];
        let wrong_keys = Keys {
            encryption: &wrong,
            authentication: None,
        };
        assert_eq!(
            decode_apdu(&apdu, Some(&wrong_keys)),
            Err(Error::ImplausiblePlaintext)
        );
        assert_eq!(decode_apdu(&apdu, None), Err(Error::MissingKey));
        assert!(matches!(
            decode_apdu(&apdu[..apdu.len() - 1], Some(&keys)),
            Err(Error::ApduTruncated { .. })
        ));
        let mut long = apdu.clone();
        long.push(0);
        assert!(matches!(
            decode_apdu(&long, Some(&keys)),
            Err(Error::TrailingBytes { .. })
        ));
    }

    #[test]
    fn an_authenticated_frame_with_a_bad_body_reports_the_body_error() {
        let (ek, ak) = ([1u8; 16], [2u8; 16]);
        let keys = Keys {
            encryption: &ek,
            authentication: Some(&ak),
        };
        let bad = [0x0F, 0, 0, 0, 1, 0x00, 0x07];
        let apdu = encrypt_glo(&bad, &[0; 8], 1, 0x30, &keys).unwrap();
        assert_eq!(
            decode_apdu(&apdu, Some(&keys)),
            Err(Error::UnknownDataType {
                tag: 0x07,
                offset: 6
            })
        );
    }

    #[test]
    fn decode_apdu_passes_plaintext_through() {
        let push = decode_apdu(&unhex(BURGENLAND_PLAIN), None).unwrap();
        assert_eq!(push.security, None);
        assert_eq!(
            decode_apdu(&[0xE0, 0x40], None),
            Err(Error::UnknownApdu { tag: 0xE0 })
        );
    }
}

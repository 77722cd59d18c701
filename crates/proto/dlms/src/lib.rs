//! Sans-IO decoding of DLMS/COSEM pushes from electricity meters' customer interfaces.
//!
//! The crate takes APDU bytes (the link layer, M-Bus or HDLC, already removed by its own
//! crate) and turns them into a flat list of OBIS-keyed values. It does no IO, has no
//! async runtime, and knows nothing about the gateway's reading model.
//!
//! # Layers
//!
//! | module | what | specification |
//! |---|---|---|
//! | [`gbt`] | general-block-transfer (`0xE0`) reassembly | Green Book "General block transfer", IEC 62056-5-3 |
//! | [`security`] | general-glo-ciphering (`0xDB`): AES-128-GCM, 12-byte tag, unauthenticated CTR path | Green Book "Cryptographic protection", NIST SP 800-38D |
//! | [`apdu`] | data-notification (`0x0F`); [`decode_apdu`] for plain or ciphered APDUs | IEC 62056-5-3, Green Book "DataNotification service" |
//! | [`axdr`] | A-XDR `Data` values | Blue Book §4.1.5, IEC 61334-6 |
//! | [`datetime`] | COSEM date-time (deviation sign, "not specified" fields) | Blue Book §4.1.6.1 |
//! | [`cosem`] | body → [`Entry`] list: capture-object lists, positional [`Layout`]s, OBIS/value lists | Blue Book "Push setup" (class 40) |
//!
//! "Blue Book" is DLMS UA 1000-1 (COSEM interface classes and OBIS), "Green Book" DLMS UA
//! 1000-2 (architecture and protocols).
//!
//! # Typical use
//!
//! ```
//! use proto_dlms::{cosem, decode_apdu, Keys, Value};
//!
//! # fn main() -> Result<(), proto_dlms::Error> {
//! // A plain data-notification: invoke id, no date-time, body {OBIS 1.0.1.8.0.255, 12937, {0, Wh}}.
//! let apdu = [
//!     0x0F, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x03, 0x09, 0x06, 1, 0, 1, 8, 0, 255, 0x06, 0x00,
//!     0x00, 0x32, 0x89, 0x02, 0x02, 0x0F, 0x00, 0x16, 0x1E,
//! ];
//! let key = [0u8; 16];
//! let keys = Keys { encryption: &key, authentication: None };
//! let push = decode_apdu(&apdu, Some(&keys))?;
//! let entries = cosem::entries(&push.notification.body, None)?;
//! assert_eq!(entries[0].obis_string().as_deref(), Some("1.0.1.8.0.255"));
//! assert!(matches!(entries[0].leaf(), Value::Number(n) if n.to_string() == "12937"));
//! assert_eq!(entries[0].unit, Some(cosem::unit::WH));
//! # Ok(()) }
//! ```
//!
//! A transport that receives general-block-transfer APDUs feeds them to a
//! [`gbt::Reassembler`] first and hands the completed APDU to [`decode_apdu`].
//!
//! # Security
//! [`decrypt_glo`] verifies the GCM tag whenever the security control byte announces one
//! and an authentication key is given; [`Decrypted::authenticated`] and
//! [`apdu::Security::authenticated`] say whether that happened. Frames without a tag (the
//! Austrian M-Bus pushes, SC `0x20`/`0x21`) cannot be authenticated; a wrong key there shows
//! up as a plaintext that is not a data-notification ([`looks_like_plaintext`],
//! [`Error::ImplausiblePlaintext`]). Keys never appear in `Debug` output or errors.
//!
//! # Panic contract
//! No function of this crate panics on any input: all indexing is checked, all arithmetic
//! on lengths saturates or is checked, lengths are validated against the input before
//! allocating, recursion is bounded ([`axdr::MAX_DEPTH`]). The crate denies the clippy
//! lints `indexing_slicing`, `arithmetic_side_effects`, `unwrap_used`, `expect_used` and
//! `panic` outside tests, and the fuzz targets `dlms_apdu` and `dlms_decrypt` exercise it.
//! `Error::Incomplete` only means "more bytes needed" and is only returned by the `check_*`
//! functions (and the functions built on them).
//!
//! # Fuzzing
//! Built with `--cfg fuzzing`, the GCM tag comparison (and only that) is skipped, so a
//! fuzzer can reach the APDU parser through authenticated frames.

#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apdu;
pub mod axdr;
mod ber;
pub mod cosem;
pub mod datetime;
pub mod error;
pub mod gbt;
pub mod security;

pub use apdu::{decode_apdu, looks_like_plaintext, parse_notification, DataNotification, Push};
pub use axdr::Data;
pub use cosem::{entries, Entry, Layout, Number, Value};
pub use datetime::DateTime;
pub use error::Error;
pub use security::{check_glo, decrypt_glo, encrypt_glo, Decrypted, Keys};

//! The `dsmr` protocol: DSMR P1 telegrams, plain or encrypted.
//!
//! # Serial line
//! [`LINE`] is 115200 8N1 (DSMR 4 and 5, e-MUCS, Smarty, the Nordic and Austrian P1 ports).
//! DSMR 2.2 and 3 meters send at **9600 baud, 7E1**: configure
//! `serial = { port = "…", baud = 9600, data_bits = 7, parity = "even" }`.
//!
//! # Config keys
//! - no `key`: plain telegrams (`/` … `!CRC`), CRC-16 checked; DSMR 2.2/3 telegrams without a
//!   CRC are accepted unchecked.
//! - `key` (32 hex digits): encrypted P1 (Energienetze Steiermark T210-D-r, Luxembourg Smarty):
//!   each telegram is wrapped in a DLMS general-glo-ciphering APDU. With `auth_key` the GCM tag
//!   is verified (a bad tag is an `authentication` error) and readings say
//!   `authenticated: true`; without it the frame is decrypted unverified, only the telegram's
//!   CRC guards it, and readings say `authenticated: false`.
//!
//! # Errors, one per bad frame
//! `framing` (cut or overlong telegram, bad checksum line, input ended inside a frame),
//! `checksum` (CRC-16 mismatch, also inside a decrypted frame), `decryption` (the plaintext is
//! not a telegram: the key is probably wrong), `authentication` (the tag does not verify).
//! Line noise between frames is skipped silently.
//!
//! # Misconfiguration
//! Without `key`, encrypted P1 frames on the line are reported once each as `decryption`
//! errors saying to set `key` (framing errors from their ciphertext are then suppressed). With
//! `key`, plain telegrams with a valid CRC are reported as `decryption` errors saying to remove
//! `key`; they are never decoded, so a key also means no unauthenticated plain input.
//!
//! The mapping to readings is described in [`map`].

pub mod map;
#[cfg(test)]
mod tests;

use proto_dsmr::encrypted::{Frame, Keys};
use proto_dsmr::{EncryptedError, EncryptedFramer, Framer, Telegram};
use serde::Deserialize;
use smart_meter_core::{FrameError, MeterId, Reading, Stage};

use crate::key::AesKey;
use crate::protocol::{MeterProtocol, Output};
use crate::serial_settings::LineDefaults;

/// The protocol name in config and readings.
pub const NAME: &str = "dsmr";

/// Serial defaults: 115200 8N1 (DSMR 4/5). DSMR 2.2/3 meters need 9600 7E1, see the module
/// docs.
pub const LINE: LineDefaults = LineDefaults::n81(115_200);

/// The `dsmr`-specific keys of a source table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Encryption key (GUEK) of encrypted P1; absent for plain telegrams.
    #[serde(default)]
    pub key: Option<AesKey>,
    /// Authentication key (GAK): verifies the GCM tag of encrypted P1.
    #[serde(default)]
    pub auth_key: Option<AesKey>,
}

impl Config {
    /// Semantic problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.auth_key.is_some() && self.key.is_none() {
            problems.push((
                "auth_key".to_string(),
                "is used only with `key` (encrypted P1): set `key` too, or remove `auth_key` \
                 for plain telegrams"
                    .to_string(),
            ));
        }
        problems
    }

    /// The protocol instance for `meter`.
    pub fn build(&self, meter: MeterId) -> Box<dyn MeterProtocol> {
        Box::new(Dsmr::new(meter, self))
    }
}

/// The `dsmr` protocol: a framer (plain or encrypted) and the mapping to readings.
#[derive(Debug)]
pub struct Dsmr {
    meter: MeterId,
    mode: Mode,
    /// Samples of the last reading: room reserved for the next one.
    hint: usize,
}

#[derive(Debug)]
enum Mode {
    Plain {
        framer: Framer,
        /// Watches for encrypted P1 frames, to tell the user that `key` is missing.
        sniffer: EncryptedFramer,
        /// An encrypted frame was seen: framing errors from ciphertext are noise.
        encrypted_seen: bool,
    },
    Encrypted {
        framer: EncryptedFramer,
        key: AesKey,
        auth_key: Option<AesKey>,
        /// Watches for plain telegrams, to tell the user that `key` is set for a plain meter.
        sniffer: Framer,
    },
}

/// The sniffer's key in plain mode: any key tells an encrypted frame by its structure.
const NO_KEY: [u8; 16] = [0; 16];

impl Dsmr {
    /// A protocol instance for `meter` configured by `config`.
    pub fn new(meter: MeterId, config: &Config) -> Self {
        let mode = match &config.key {
            None => Mode::Plain {
                framer: Framer::new(),
                sniffer: EncryptedFramer::new(),
                encrypted_seen: false,
            },
            Some(key) => Mode::Encrypted {
                framer: EncryptedFramer::new(),
                key: key.clone(),
                auth_key: config.auth_key.clone(),
                sniffer: Framer::new(),
            },
        };
        Dsmr {
            meter,
            mode,
            hint: 0,
        }
    }
}

impl MeterProtocol for Dsmr {
    fn name(&self) -> &'static str {
        NAME
    }

    fn on_bytes(&mut self, bytes: &[u8], out: &mut Output) {
        let Dsmr { meter, mode, hint } = self;
        match mode {
            Mode::Plain {
                framer,
                sniffer,
                encrypted_seen,
            } => {
                let keys = Keys {
                    encryption: &NO_KEY,
                    authentication: None,
                };
                sniffer.feed(bytes, &keys, |at, frame| {
                    if let Some(e) = missing_key(at, &frame) {
                        *encrypted_seen = true;
                        out.push(Err(e));
                    }
                });
                framer.feed(bytes, |at, frame| {
                    push_plain(out, *encrypted_seen, plain(meter, hint, at, frame));
                });
            }
            Mode::Encrypted {
                framer,
                key,
                auth_key,
                sniffer,
            } => {
                let keys = Keys {
                    encryption: key.bytes(),
                    authentication: auth_key.as_ref().map(AesKey::bytes),
                };
                framer.feed(bytes, &keys, |at, frame| {
                    out.push(encrypted(meter, hint, at, frame));
                });
                sniffer.feed(bytes, |at, frame| {
                    if let Some(e) = unexpected_plain(at, frame) {
                        out.push(Err(e));
                    }
                });
            }
        }
    }

    fn finish(&mut self, out: &mut Output) {
        let Dsmr { meter, mode, hint } = self;
        match mode {
            Mode::Plain {
                framer,
                sniffer,
                encrypted_seen,
            } => {
                let keys = Keys {
                    encryption: &NO_KEY,
                    authentication: None,
                };
                while let Some(frame) = sniffer.finish(&keys) {
                    if let Some(e) = missing_key(sniffer.last_offset(), &frame) {
                        *encrypted_seen = true;
                        out.push(Err(e));
                    }
                }
                while let Some(frame) = framer.finish() {
                    // Once per input: copy the last frame so the framer can be asked its offset.
                    let frame = frame.map(<[u8]>::to_vec);
                    let at = framer.last_offset();
                    let result = plain(meter, hint, at, frame.as_deref().map_err(|e| *e));
                    push_plain(out, *encrypted_seen, result);
                }
            }
            Mode::Encrypted {
                framer,
                key,
                auth_key,
                sniffer,
            } => {
                let keys = Keys {
                    encryption: key.bytes(),
                    authentication: auth_key.as_ref().map(AesKey::bytes),
                };
                while let Some(frame) = framer.finish(&keys) {
                    out.push(encrypted(meter, hint, framer.last_offset(), frame));
                }
                while let Some(frame) = sniffer.finish() {
                    let frame = frame.map(<[u8]>::to_vec);
                    let at = sniffer.last_offset();
                    if let Some(e) = unexpected_plain(at, frame.as_deref().map_err(|e| *e)) {
                        out.push(Err(e));
                    }
                }
            }
        }
    }

    fn reset(&mut self) {
        match &mut self.mode {
            Mode::Plain {
                framer, sniffer, ..
            } => {
                framer.reset();
                sniffer.reset();
            }
            Mode::Encrypted {
                framer, sniffer, ..
            } => {
                framer.reset();
                sniffer.reset();
            }
        }
    }
}

/// A plain frame (or framing error) starting at stream offset `at` → reading or error.
/// `hint`: the sample count of the previous reading, updated.
fn plain(
    meter: &MeterId,
    hint: &mut usize,
    at: u64,
    frame: Result<&[u8], proto_dsmr::Error>,
) -> Result<Reading, FrameError> {
    let parsed = frame.and_then(Telegram::parse);
    let telegram = parsed.map_err(|e| at_offset(at, telegram_error(e)))?;
    let reading = map::map_with_capacity(&telegram, meter, None, *hint);
    *hint = reading.samples.len();
    Ok(reading)
}

/// A decrypted frame (or failed one) starting at stream offset `at` → reading or error.
fn encrypted(
    meter: &MeterId,
    hint: &mut usize,
    at: u64,
    frame: Result<Frame, EncryptedError>,
) -> Result<Reading, FrameError> {
    let frame = frame.map_err(|e| at_offset(at, encrypted_error(e)))?;
    let telegram = frame
        .telegram()
        .map_err(|e| at_offset(at, telegram_error(e)))?;
    let authenticated = Some(frame.decrypted.authenticated);
    let reading = map::map_with_capacity(&telegram, meter, authenticated, *hint);
    *hint = reading.samples.len();
    Ok(reading)
}

/// In plain mode, once encrypted frames were seen, framing errors are ciphertext noise.
fn push_plain(out: &mut Output, encrypted_seen: bool, result: Result<Reading, FrameError>) {
    match result {
        Err(e) if encrypted_seen && e.stage == Stage::Framing => {}
        other => out.push(other),
    }
}

/// Plain mode: an encrypted P1 frame on the line means `key` is missing.
fn missing_key(at: u64, frame: &Result<Frame, EncryptedError>) -> Option<FrameError> {
    let title = match frame {
        Ok(f) => Some(f.decrypted.system_title),
        Err(
            EncryptedError::Decryption { .. }
            | EncryptedError::Authentication { .. }
            | EncryptedError::Checksum { .. }
            | EncryptedError::Truncated { .. },
        ) => None,
        // A header-like byte sequence in line noise; not worth a message.
        Err(_) => return None,
    };
    let title = title
        .map(|t| format!(" from system title {}", system_title_text(&t)))
        .unwrap_or_default();
    Some(at_offset(
        at,
        FrameError::new(
            Stage::Decryption,
            format!(
                "encrypted P1 frame (DLMS general-glo-ciphering){title}, but no `key` is \
                 configured: set `key` (and `auth_key`) for this meter"
            ),
        ),
    ))
}

/// Encrypted mode: a plain telegram with a valid CRC means `key` is set for a plain meter.
/// Such telegrams are never decoded (they carry no authentication).
fn unexpected_plain(at: u64, frame: Result<&[u8], proto_dsmr::Error>) -> Option<FrameError> {
    let telegram = Telegram::parse(frame.ok()?).ok()?;
    if !matches!(telegram.checksum(), proto_dsmr::Checksum::Verified(_)) {
        return None;
    }
    Some(at_offset(
        at,
        FrameError::new(
            Stage::Decryption,
            "plain (unencrypted) telegram received, but `key` is configured: this meter does \
             not encrypt, remove `key` (plain telegrams are not accepted while a key is set)",
        ),
    ))
}

/// A system title as text: three letters of manufacturer and the serial in hex.
fn system_title_text(title: &[u8; 8]) -> String {
    title
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("{b:02X}")
            }
        })
        .collect()
}

/// Names where in the input the frame started (bytes received since the protocol was built).
fn at_offset(at: u64, mut e: FrameError) -> FrameError {
    e.detail = format!("frame at byte {at}: {}", e.detail);
    e
}

fn telegram_error(e: proto_dsmr::Error) -> FrameError {
    let stage = match e {
        proto_dsmr::Error::BadChecksum { .. } => Stage::Checksum,
        _ => Stage::Framing,
    };
    FrameError::new(stage, e.to_string())
}

fn encrypted_error(e: EncryptedError) -> FrameError {
    let stage = match e {
        EncryptedError::Authentication { .. } => Stage::Authentication,
        EncryptedError::Decryption { .. } => Stage::Decryption,
        EncryptedError::Checksum { .. } => Stage::Checksum,
        EncryptedError::Truncated { .. } => Stage::Framing,
        EncryptedError::Dlms(d) => match d.stage_name() {
            "authentication" => Stage::Authentication,
            "decryption" => Stage::Decryption,
            "apdu" => Stage::Apdu,
            "data" => Stage::Data,
            "reassembly" => Stage::Reassembly,
            _ => Stage::Framing,
        },
        _ => Stage::Framing,
    };
    FrameError::new(stage, e.to_string())
}

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
}

#[derive(Debug)]
enum Mode {
    Plain(Framer),
    Encrypted {
        framer: EncryptedFramer,
        key: AesKey,
        auth_key: Option<AesKey>,
    },
}

impl Dsmr {
    /// A protocol instance for `meter` configured by `config`.
    pub fn new(meter: MeterId, config: &Config) -> Self {
        let mode = match &config.key {
            None => Mode::Plain(Framer::new()),
            Some(key) => Mode::Encrypted {
                framer: EncryptedFramer::new(),
                key: key.clone(),
                auth_key: config.auth_key.clone(),
            },
        };
        Dsmr { meter, mode }
    }
}

impl MeterProtocol for Dsmr {
    fn name(&self) -> &'static str {
        NAME
    }

    fn on_bytes(&mut self, bytes: &[u8], out: &mut Output) {
        let Dsmr { meter, mode } = self;
        match mode {
            Mode::Plain(framer) => framer.feed(bytes, |frame| out.push(plain(meter, frame))),
            Mode::Encrypted {
                framer,
                key,
                auth_key,
            } => {
                let keys = Keys {
                    encryption: key.bytes(),
                    authentication: auth_key.as_ref().map(AesKey::bytes),
                };
                framer.feed(bytes, &keys, |frame| out.push(encrypted(meter, frame)));
            }
        }
    }

    fn finish(&mut self, out: &mut Output) {
        let Dsmr { meter, mode } = self;
        match mode {
            Mode::Plain(framer) => {
                while let Some(frame) = framer.finish() {
                    out.push(plain(meter, frame));
                }
            }
            Mode::Encrypted {
                framer,
                key,
                auth_key,
            } => {
                let keys = Keys {
                    encryption: key.bytes(),
                    authentication: auth_key.as_ref().map(AesKey::bytes),
                };
                while let Some(frame) = framer.finish(&keys) {
                    out.push(encrypted(meter, frame));
                }
            }
        }
    }

    fn reset(&mut self) {
        match &mut self.mode {
            Mode::Plain(framer) => framer.reset(),
            Mode::Encrypted { framer, .. } => framer.reset(),
        }
    }
}

/// A plain frame (or framing error) → reading or error.
fn plain(meter: &MeterId, frame: Result<&[u8], proto_dsmr::Error>) -> Result<Reading, FrameError> {
    let telegram = Telegram::parse(frame.map_err(telegram_error)?).map_err(telegram_error)?;
    Ok(map::map(&telegram, meter, None))
}

/// A decrypted frame (or failed one) → reading or error.
fn encrypted(meter: &MeterId, frame: Result<Frame, EncryptedError>) -> Result<Reading, FrameError> {
    let frame = frame.map_err(encrypted_error)?;
    let telegram = frame.telegram().map_err(telegram_error)?;
    Ok(map::map(
        &telegram,
        meter,
        Some(frame.decrypted.authenticated),
    ))
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

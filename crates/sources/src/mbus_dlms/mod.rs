//! The `mbus-dlms` protocol: DLMS/COSEM pushes over the wired M-Bus customer interface
//! (Netz Niederösterreich/EVN, TINETZ, Vorarlberg Netz, Salzburg Netz, IKB: Kaifa MA309,
//! Sagemcom T210-D).
//!
//! Pipeline: [`proto_mbus::Decoder`] (EN 13757-2 long frames, checksum, the DLMS transport
//! segments joined, `STSAP DTSAP` removed) → [`proto_dlms::decode_apdu`] (general-glo-ciphering
//! with `key`/`auth_key`, data-notification) → [`proto_dlms::entries`] → [`map::reading`].
//!
//! # Serial line
//! [`LINE`] is 2400 baud 8E1, as EN 13757-2 specifies and as TINETZ/Salzburg and the
//! Sagemcom T210-D need. EVN's Kaifa MA309 also works at 8N1 (the setting the older EVN tools
//! use); override with `serial = { port = "…", parity = "none" }` if needed.
//!
//! # Config keys
//! - `key` (required, 32 hex digits): the global unicast encryption key from the grid
//!   operator.
//! - `auth_key` (optional): the authentication key. The Austrian M-Bus pushes use security
//!   control 0x20/0x21 without a tag, so it is not needed there; for frames with a tag (SC
//!   0x30) it makes the gateway verify the tag, and readings say `authenticated: true`.
//!   Without it such frames are decrypted unverified (`authenticated: false`).
//! - `keys` (optional): keys per meter, by system title (`{ "<16 hex digits>" = "<32 hex
//!   digits>" }`), for sources that receive frames of several meters (raw frames over MQTT);
//!   `key` is then only the fallback and may be left out.
//! - `meters` (optional): meter ids per system title (`{ "<16 hex digits>" = "<meter id>" }`);
//!   other meters' readings carry the source's meter id. See [`titles`].
//!
//! # Errors, one per bad frame or message
//! - `framing`: bytes that are no valid frame (reported once per run with offset and count),
//!   input that ends inside a frame;
//! - `checksum`: a frame whose checksum does not match (the whole telegram is lost);
//! - `reassembly`: a segment out of order or missing (e.g. the second frame of a telegram
//!   whose first was damaged), a frame that is not a DLMS segment;
//! - `decryption`: no key, unsupported security, or a frame without tag whose plaintext is not
//!   a data-notification: **the key is probably wrong**;
//! - `authentication`: the tag does not verify with `auth_key`;
//! - `apdu`, `data`: malformed APDU or values.
//!
//! Decoding resumes with the next frame after every error. The quirks handled on the way
//! (Sagemcom's `68 01 01 68` frames carrying 257 bytes, `81`/`82` BER lengths, flat and nested
//! bodies, signed power factor) are described in the proto crates.

pub mod map;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
pub mod titles;

use std::collections::BTreeMap;

use serde::Deserialize;
use smart_meter_core::{FrameError, MeterId};

use crate::key::AesKey;
use crate::protocol::{MeterProtocol, Output};
use crate::serial_settings::LineDefaults;
use titles::{SystemTitle, Titles};

/// The protocol name in config and readings.
pub const NAME: &str = "mbus-dlms";

/// Serial defaults: 2400 baud 8E1 (EN 13757-2). EVN Kaifa meters also work at 8N1.
pub const LINE: LineDefaults = LineDefaults::e81(2400);

/// The `mbus-dlms`-specific keys of a source table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Global unicast encryption key (GUEK), from the grid operator.
    #[serde(default)]
    pub key: Option<AesKey>,
    /// Authentication key (GAK): verifies the GCM tag of frames that carry one.
    #[serde(default)]
    pub auth_key: Option<AesKey>,
    /// Encryption keys per system title (several meters on one source).
    #[serde(default)]
    pub keys: BTreeMap<SystemTitle, AesKey>,
    /// Meter ids per system title.
    #[serde(default)]
    pub meters: BTreeMap<SystemTitle, String>,
}

impl Config {
    /// Semantic problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.key.is_none() && self.keys.is_empty() {
            problems.push((
                "key".to_string(),
                "required: M-Bus meters encrypt their frames (32 hex digits from the grid operator)"
                    .to_string(),
            ));
        }
        problems.extend(titles::validate_meters(&self.meters));
        problems
    }

    /// The protocol instance for `meter`.
    pub fn build(&self, meter: MeterId) -> Box<dyn MeterProtocol> {
        Box::new(MbusDlms::new(meter, self))
    }
}

/// The `mbus-dlms` protocol: M-Bus link layer, DLMS decryption and decoding.
#[derive(Debug)]
pub struct MbusDlms {
    meter: MeterId,
    key: Option<AesKey>,
    auth_key: Option<AesKey>,
    titles: Titles,
    link: proto_mbus::Decoder,
    /// The decrypted APDU and the decoded values, kept across frames.
    scratch: proto_dlms::Scratch,
}

impl MbusDlms {
    /// A protocol instance for `meter` configured by `config`.
    pub fn new(meter: MeterId, config: &Config) -> Self {
        MbusDlms {
            meter,
            key: config.key.clone(),
            auth_key: config.auth_key.clone(),
            titles: Titles::new(&config.keys, &config.meters),
            link: proto_mbus::Decoder::new(),
            scratch: proto_dlms::Scratch::new(),
        }
    }

    fn drain(&mut self, out: &mut Output) {
        let MbusDlms {
            meter,
            key,
            auth_key,
            titles,
            link,
            scratch,
        } = self;
        while let Some(result) = link.pop() {
            out.push(match result {
                Ok(apdu) => {
                    let (key, meter) = titles.select(apdu.bytes, key.as_ref(), meter);
                    map::decode(
                        meter,
                        NAME,
                        (key, auth_key.as_ref()),
                        None,
                        apdu.bytes,
                        apdu.offset,
                        scratch,
                    )
                }
                Err(e) => Err(link_error(&e)),
            });
        }
    }
}

/// A link-layer error as a frame error.
pub fn link_error(e: &proto_mbus::Error) -> FrameError {
    FrameError::new(map::link_stage(e.kind()), e.to_string())
}

impl MeterProtocol for MbusDlms {
    fn name(&self) -> &'static str {
        NAME
    }

    fn on_bytes(&mut self, bytes: &[u8], out: &mut Output) {
        self.link.push(bytes);
        self.drain(out);
    }

    fn finish(&mut self, out: &mut Output) {
        self.link.finish();
        self.drain(out);
    }

    fn reset(&mut self) {
        self.link.reset();
    }
}

//! The `hdlc-dlms` protocol: DLMS/COSEM pushes in HDLC frames (IEC 62056-46): the optical
//! (IR) interface of Wiener Netze meters, Netz Burgenland's and Kärnten Netz's ports, the
//! Swiss, Danish and Norwegian P1/HAN ports.
//!
//! Pipeline: [`proto_hdlc::Decoder`] (frames, HCS/FCS, HDLC segmentation, LLC removed) →
//! [`proto_dlms::gbt::Reassembler`] for General-Block-Transfer blocks (`E0 …`, L+G E450/E570)
//! → [`proto_dlms::decode_apdu`] (decryption if ciphered; plaintext pushes `0F …` are common
//! in CH/NO/DK) → [`proto_dlms::entries`] with the `layout` → [`map::reading`].
//!
//! # Serial line
//! [`LINE`] is 9600 baud 8N1, the optical head of the Wiener Netze meters. P1 ports (Kärnten
//! Netz, Swiss meters, SHRDZM-style readers) run at **115200 8N1**; Norwegian/Danish HAN ports
//! and Netz Burgenland at **2400** (8E1 / 8N1): set `serial = { port = "…", baud = 115200 }`
//! etc.
//!
//! # Config keys
//! - `key` (optional, 32 hex digits): needed for encrypted pushes; plaintext meters need none.
//! - `auth_key` (optional): verifies the GCM tag of frames that carry one (SC 0x30, Netz
//!   Burgenland: the published default `C0C1…CF`); readings then say `authenticated: true`.
//!   Without it such frames are decrypted unverified (`authenticated: false`).
//! - `layout` (optional): how to read positional pushes that carry no OBIS codes:
//!   `"wiener-netze"`, `"netz-burgenland"`, `"shrdzm-12"`, `"shrdzm-10"`, or `"auto"` (the
//!   default: pushes with their own object list or OBIS codes are self-describing, positional
//!   ones are recognised by their element count and types).
//! - `keys`, `meters` (optional): keys and meter ids per system title, for one source that
//!   receives several meters' frames; see [`crate::mbus_dlms::titles`].
//!
//! # Errors, one per bad frame or message
//! `framing` (garbage, junk appended after frames, truncated input), `checksum` (FCS),
//! `reassembly` (a segmented message or block sequence with a gap), `decryption` (no key, or
//! a frame without tag whose plaintext is no data-notification: the key is probably wrong),
//! `authentication` (the tag does not verify), `apdu`, `data` (malformed values, a body that
//! does not fit the configured `layout`). Decoding resumes with the next frame.

pub mod map;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use proto_dlms::gbt;
use proto_dlms::Layout;
use serde::Deserialize;
use smart_meter_core::{FrameError, MeterId, Stage};

use crate::key::AesKey;
use crate::mbus_dlms::titles::{self, SystemTitle, Titles};
use crate::protocol::{MeterProtocol, Output};
use crate::serial_settings::LineDefaults;

/// The protocol name in config and readings.
pub const NAME: &str = "hdlc-dlms";

/// Serial defaults: 9600 baud 8N1 (optical head). P1 ports use 115200 8N1.
pub const LINE: LineDefaults = LineDefaults::n81(9600);

/// The `hdlc-dlms`-specific keys of a source table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Global unicast encryption key (GUEK), for encrypted pushes.
    #[serde(default)]
    pub key: Option<AesKey>,
    /// Authentication key (GAK): verifies the GCM tag of frames that carry one.
    #[serde(default)]
    pub auth_key: Option<AesKey>,
    /// Positional layout name, or `"auto"` (the default).
    #[serde(default)]
    pub layout: Option<String>,
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
        if self.auth_key.is_some() && self.key.is_none() && self.keys.is_empty() {
            problems.push((
                "auth_key".to_string(),
                "is used only with `key` (encrypted pushes): set `key` too, or remove `auth_key`"
                    .to_string(),
            ));
        }
        if let Err(e) = map::layout(self.layout.as_deref()) {
            problems.push(("layout".to_string(), e));
        }
        problems.extend(titles::validate_meters(&self.meters));
        problems
    }

    /// The protocol instance for `meter`. An unknown `layout` (which [`validate`] reports)
    /// falls back to automatic recognition.
    ///
    /// [`validate`]: Config::validate
    pub fn build(&self, meter: MeterId) -> Box<dyn MeterProtocol> {
        Box::new(HdlcDlms::new(meter, self))
    }
}

/// The `hdlc-dlms` protocol: HDLC link layer, block transfer, DLMS decryption and decoding.
#[derive(Debug)]
pub struct HdlcDlms {
    meter: MeterId,
    key: Option<AesKey>,
    auth_key: Option<AesKey>,
    layout: Option<Layout>,
    titles: Titles,
    link: proto_hdlc::Decoder,
    blocks: gbt::Reassembler,
    /// Stream offset of the first block of the block-transfer message in progress.
    blocks_offset: u64,
}

impl HdlcDlms {
    /// A protocol instance for `meter` configured by `config`.
    pub fn new(meter: MeterId, config: &Config) -> Self {
        HdlcDlms {
            meter,
            key: config.key.clone(),
            auth_key: config.auth_key.clone(),
            layout: map::layout(config.layout.as_deref()).unwrap_or(None),
            titles: Titles::new(&config.keys, &config.meters),
            link: proto_hdlc::Decoder::new(),
            blocks: gbt::Reassembler::new(),
            blocks_offset: 0,
        }
    }

    fn drain(&mut self, out: &mut Output) {
        let HdlcDlms {
            meter,
            key,
            auth_key,
            layout,
            titles,
            link,
            blocks,
            blocks_offset,
        } = self;
        while let Some(result) = link.pop() {
            let apdu = match result {
                Ok(apdu) => apdu,
                Err(e) => {
                    out.push(Err(map::link_error(&e)));
                    continue;
                }
            };
            let decode = |bytes: &[u8], offset: u64| {
                let (key, meter) = titles.select(bytes, key.as_ref(), meter);
                map::decode(
                    meter,
                    NAME,
                    (key, auth_key.as_ref()),
                    *layout,
                    bytes,
                    offset,
                )
            };
            if apdu.bytes.first() != Some(&gbt::TAG) {
                out.push(decode(apdu.bytes, apdu.offset));
                continue;
            }
            // General-Block-Transfer: one block per HDLC message.
            let (abandoned, skipped) = (blocks.abandoned(), blocks.skipped());
            let first = !blocks.in_progress();
            let result = blocks.push(apdu.bytes);
            if blocks.abandoned() > abandoned {
                out.push(Err(FrameError::new(
                    Stage::Reassembly,
                    format!(
                        "block-transfer message starting at offset {blocks_offset} dropped: \
                         a new first block arrived at offset {} before its last block",
                        apdu.offset
                    ),
                )));
            }
            if blocks.skipped() > skipped {
                out.push(Err(FrameError::new(
                    Stage::Reassembly,
                    format!(
                        "block-transfer block at offset {} skipped: its message's first block \
                         was not received",
                        apdu.offset
                    ),
                )));
            }
            if first || blocks.abandoned() > abandoned {
                *blocks_offset = apdu.offset;
            }
            match result {
                Ok(Some(message)) => out.push(decode(&message, *blocks_offset)),
                Ok(None) => {}
                Err(e) => out.push(Err(map::dlms_error(&e, apdu.bytes, apdu.offset))),
            }
        }
    }
}

impl MeterProtocol for HdlcDlms {
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
        if self.blocks.in_progress() {
            out.push(Err(FrameError::new(
                Stage::Reassembly,
                format!(
                    "input ended inside the block-transfer message starting at offset {}",
                    self.blocks_offset
                ),
            )));
        }
        self.blocks.reset();
    }

    fn reset(&mut self) {
        self.link.reset();
        self.blocks.reset();
    }
}

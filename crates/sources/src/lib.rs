//! Sources of readings: transports that move bytes and protocol adapters that turn them into
//! readings.
//!
//! # Layout
//! - [`protocol`]: the [`MeterProtocol`](protocol::MeterProtocol) seam every adapter
//!   implements.
//! - [`key`]: [`AesKey`](key::AesKey), keys from config with redacted `Debug`.
//! - [`serial_settings`]: line settings and per-protocol defaults.
//!
//! # Adding a protocol
//! 1. A pure parser crate under `crates/proto/`.
//! 2. A folder `src/<name>/` here with `Config` (serde, `deny_unknown_fields`: the
//!    protocol-specific keys of a source table such as `key`, `auth_key`, `layout`,
//!    `registers`, `interval`), `Config::validate`, `Config::build(meter) -> Box<dyn
//!    MeterProtocol>`, `LINE` (the serial defaults) and a `map.rs` from proto types to
//!    [`Reading`](smart_meter_core::Reading).
//! 3. One variant in [`ProtocolConfig`] and one arm in each of its matches.

pub mod hdlc_dlms;
pub mod key;
pub mod mbus_dlms;
pub mod protocol;
pub mod serial_settings;

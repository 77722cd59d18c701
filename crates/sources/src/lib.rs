//! Sources of readings: transports that move bytes and protocol adapters that turn them into
//! readings.
//!
//! # Layout
//! - [`protocol`]: the [`MeterProtocol`](protocol::MeterProtocol) seam every adapter
//!   implements.

pub mod protocol;

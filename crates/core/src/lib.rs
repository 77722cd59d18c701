//! The reading model and the reading bus shared by every source and sink.
//!
//! # Layout
//! - [`decimal`]: [`Decimal`], exact fixed-point numbers (a DLMS scaler, DSMR's fixed digits).
//! - [`obis`]: [`Obis`], the six-group OBIS code.
//! - [`unit`]: [`Unit`], DLMS unit codes and their symbols.
//! - [`time`]: [`MeterTime`], a meter's own clock reading, and UTC formatting helpers.
//! - [`reading`]: [`Reading`], [`Key`], [`Value`], [`Sample`]; the reading JSON of SPEC.md.
//! - [`meter_id`]: [`MeterId`], a validated meter name that is safe in MQTT topics.
//! - [`stage`]: [`Stage`] and [`FrameError`], where a frame failed to decode.
//! - [`stats`]: live counters of sources and sinks for status and metrics.
//! - [`bus`]: [`Bus`], the lossy fan-out of readings from sources to sinks.
#![warn(missing_docs)]

pub mod bus;
pub mod decimal;
pub mod meter_id;
pub mod obis;
pub mod reading;
pub mod stage;
pub mod stats;
mod text;
pub mod time;
pub mod unit;

pub use bus::{Bus, BusStats, Publisher, Subscription};
pub use decimal::Decimal;
pub use meter_id::MeterId;
pub use obis::{describe as describe_obis, Obis};
pub use reading::{Key, Reading, Sample, Value};
pub use stage::{FrameError, Stage};
pub use time::MeterTime;
pub use unit::Unit;

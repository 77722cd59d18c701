//! `homie`: every meter as a Homie 4.0.0 device.

pub mod conformance;
pub mod naming;
pub mod topics;

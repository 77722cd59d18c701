//! `homie`: every meter as a Homie 4.0.0 device.

pub mod naming;
pub mod topics;

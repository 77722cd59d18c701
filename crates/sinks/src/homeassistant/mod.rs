//! `homeassistant`: Home Assistant MQTT discovery for every value of every meter.

pub mod topics;

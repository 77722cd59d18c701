//! `protocol = "kamstrup"`: Kamstrup heat meters (Multical 30x/40x/60x/80x) polled with KMP
//! GetRegister through an optical IR head.
//!
//! Keys of a source table:
//! - `registers`: register ids to read (default: the predecessor's eight, 60 80 86 87 89 74 68
//!   1004: heat energy, power, flow and return temperature, temperature difference, flow,
//!   volume, hour counter), asked up to eight per request;
//! - `interval`: time between the starts of two polls (default `"60s"`; battery-powered meters
//!   last longer with `"1h"`);
//! - `timeout`: how long to wait for each response (default `"2s"`);
//! - `retries`: how often a request is repeated after a timeout or a garbled response
//!   (default 2).
//!
//! A completed poll is one reading; a register that could not be read is missing from it and
//! reported as a frame error naming it and the reason (see [`map`]). Bytes that arrive before
//! anything was sent (a replayed capture, `decode`) are decoded passively: each response
//! frame becomes a reading of its own.

pub mod map;

use std::time::{Duration, Instant, SystemTime};

use proto_kmp::{registers, Event, Session};
use serde::Deserialize;
use smart_meter_core::MeterId;

use crate::protocol::{MeterProtocol, Output};
use crate::serial_settings::{LineDefaults, Parity};

/// The protocol name in config and readings.
pub const NAME: &str = "kamstrup";

/// KMP over the optical eye: 1200 baud, 8 data bits, no parity, 2 stop bits, as Kamstrup's
/// document and PyKMP use. The older Python readers (PyKamstrup, kamstrup_403) open the port
/// with pyserial's default of 1 stop bit, which most meters tolerate but is not the spec.
pub const LINE: LineDefaults = LineDefaults {
    baud: 1200,
    parity: Parity::None,
    data_bits: 8,
    stop_bits: 2,
};

/// Most retries `validate` accepts.
const MAX_RETRIES: u8 = 10;

/// The protocol-specific keys of a `kamstrup` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Register ids to read, in output order.
    #[serde(default = "default_registers")]
    pub registers: Vec<u16>,
    /// Time between the starts of two polls.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How long to wait for each response.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// How often a request is repeated after a timeout or a garbled response.
    #[serde(default = "default_retries")]
    pub retries: u8,
}

fn default_registers() -> Vec<u16> {
    registers::DEFAULT.to_vec()
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(2)
}

fn default_retries() -> u8 {
    2
}

impl Default for Config {
    fn default() -> Self {
        Config {
            registers: default_registers(),
            interval: default_interval(),
            timeout: default_timeout(),
            retries: default_retries(),
        }
    }
}

impl Config {
    /// Semantic problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.registers.is_empty() {
            problems.push((
                "registers".to_string(),
                "must list at least one register id, e.g. [60, 68]".to_string(),
            ));
        }
        for (i, r) in self.registers.iter().enumerate() {
            if self
                .registers
                .get(..i)
                .is_some_and(|before| before.contains(r))
            {
                problems.push((
                    "registers".to_string(),
                    format!("register {r} is listed twice"),
                ));
            }
        }
        if self.interval.is_zero() {
            problems.push(("interval".to_string(), "must be longer than 0s".to_string()));
        }
        if self.timeout.is_zero() {
            problems.push(("timeout".to_string(), "must be longer than 0s".to_string()));
        } else if !self.interval.is_zero() && self.timeout >= self.interval {
            problems.push((
                "timeout".to_string(),
                format!(
                    "must be shorter than interval ({})",
                    humantime::format_duration(self.interval)
                ),
            ));
        }
        if self.retries > MAX_RETRIES {
            problems.push((
                "retries".to_string(),
                format!("must be at most {MAX_RETRIES}, got {}", self.retries),
            ));
        }
        problems
    }

    /// A fresh poller for `meter`; its first poll is due at once.
    pub fn build(&self, meter: MeterId) -> Box<dyn MeterProtocol> {
        Box::new(Poller::new(self, meter, Instant::now()))
    }

    fn session_config(&self) -> proto_kmp::Config {
        proto_kmp::Config {
            registers: self.registers.clone(),
            interval: self.interval,
            timeout: self.timeout,
            retries: self.retries,
            ..proto_kmp::Config::new(Vec::new())
        }
    }
}

/// The `kamstrup` protocol: a [`proto_kmp::Session`] behind the [`MeterProtocol`] seam.
#[derive(Debug)]
pub struct Poller {
    meter: MeterId,
    session: Session,
    timeout: Duration,
    /// The latest `now` the transport passed to [`MeterProtocol::poll`]. `on_bytes` has no
    /// clock; received bytes are taken to arrive at this instant, which only moves the next
    /// request earlier, never later.
    now: Instant,
}

impl Poller {
    /// A poller whose first poll is due at `now`.
    pub fn new(config: &Config, meter: MeterId, now: Instant) -> Self {
        Poller {
            meter,
            session: Session::new(config.session_config(), now),
            timeout: config.timeout,
            now,
        }
    }

    fn drain(&mut self, out: &mut Output) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Poll(poll) => {
                    let (reading, errors) =
                        map::reading(&self.meter, &poll.registers, SystemTime::now());
                    out.extend(reading.map(Ok));
                    out.extend(errors.into_iter().map(Err));
                    out.extend(
                        map::failures(&poll.failures, self.timeout)
                            .into_iter()
                            .map(Err),
                    );
                }
                Event::Response(response) => {
                    let (reading, errors) =
                        map::reading(&self.meter, &response.registers, SystemTime::now());
                    out.extend(reading.map(Ok));
                    out.extend(errors.into_iter().map(Err));
                }
                Event::BadFrame(e) => out.push(Err(map::frame_error(&e))),
            }
        }
    }
}

impl MeterProtocol for Poller {
    fn name(&self) -> &'static str {
        NAME
    }

    fn on_bytes(&mut self, bytes: &[u8], out: &mut Output) {
        self.session.handle_bytes(bytes, self.now);
        self.drain(out);
    }

    fn finish(&mut self, out: &mut Output) {
        self.session.finish();
        self.drain(out);
    }

    fn reset(&mut self) {
        self.session.reset();
    }

    fn poll(&mut self, now: Instant, out: &mut Output) -> Option<Vec<u8>> {
        self.now = self.now.max(now);
        let bytes = self.session.poll_transmit(now);
        self.drain(out);
        bytes
    }

    fn next_wakeup(&self) -> Option<Instant> {
        self.session.next_timeout()
    }
}

#[cfg(test)]
mod tests;

//! The seam between transports and protocols.
//!
//! A protocol adapter is sans-IO: a transport (serial port, TCP bridge, replayed file, MQTT
//! payloads) feeds it bytes exactly as they arrived, in any chunking, and collects readings and
//! per-frame errors. Request/response meters (KMP) also say what to send and when they next
//! need the clock.

use std::time::Instant;

use smart_meter_core::{FrameError, Reading};

/// What a protocol hands back: one entry per frame, decoded or not.
pub type Output = Vec<Result<Reading, FrameError>>;

/// A meter protocol with no IO.
pub trait MeterProtocol: Send + 'static {
    /// The protocol name as written in config and in readings (`mbus-dlms`, `dsmr`, …).
    fn name(&self) -> &'static str;

    /// Consumes received bytes; pushes each complete reading or per-frame error to `out`.
    /// Partial frames stay buffered inside the protocol until more bytes come.
    fn on_bytes(&mut self, bytes: &[u8], out: &mut Output);

    /// The input has ended (end of a replayed file, `decode`): report what is left over, e.g. a
    /// truncated frame as a `framing` error.
    fn finish(&mut self, _out: &mut Output) {}

    /// The link was reopened (USB unplug, TCP reconnect): drop partial frames and pending
    /// requests.
    fn reset(&mut self) {}

    /// Polled meters: bytes to write now, if any. Also reports timeouts and completed polls
    /// through `out`. Push meters keep the default.
    fn poll(&mut self, _now: Instant, _out: &mut Output) -> Option<Vec<u8>> {
        None
    }

    /// When [`poll`](Self::poll) next has work (poll interval, response timeout).
    fn next_wakeup(&self) -> Option<Instant> {
        None
    }
}

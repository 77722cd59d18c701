//! `serial = { port, baud, parity, data_bits, stop_bits }`: a local serial port (M-Bus slave
//! adapter, P1 cable, optical IR head). An unplugged USB adapter shows as EOF or an error; the
//! port is then reopened with backoff until it comes back.

use serde::Deserialize;
use tokio_serial::{DataBits, SerialPortBuilderExt, StopBits};
use tokio_util::sync::CancellationToken;

use super::{run_reconnecting, Sink};
use crate::protocol::MeterProtocol;
use crate::serial_settings::{LineDefaults, Parity};

/// The `serial` table of a source. Unset fields come from the protocol's defaults.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SerialConfig {
    /// Device path; prefer `/dev/serial/by-id/…`, which survives re-plugging.
    pub port: String,
    /// Baud rate.
    pub baud: Option<u32>,
    /// `none`, `even` or `odd`.
    pub parity: Option<Parity>,
    /// 5 to 8.
    pub data_bits: Option<u8>,
    /// 1 or 2.
    pub stop_bits: Option<u8>,
}

impl SerialConfig {
    /// The effective line settings.
    pub fn line(&self, defaults: LineDefaults) -> LineDefaults {
        LineDefaults {
            baud: self.baud.unwrap_or(defaults.baud),
            parity: self.parity.unwrap_or(defaults.parity),
            data_bits: self.data_bits.unwrap_or(defaults.data_bits),
            stop_bits: self.stop_bits.unwrap_or(defaults.stop_bits),
        }
    }

    /// Problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut e = Vec::new();
        if self.port.trim().is_empty() {
            e.push((
                "serial.port".into(),
                "must name a device, e.g. /dev/ttyUSB0".into(),
            ));
        }
        if self.baud == Some(0) {
            e.push(("serial.baud".into(), "must be positive".into()));
        }
        if let Some(d) = self.data_bits {
            if !(5..=8).contains(&d) {
                e.push((
                    "serial.data_bits".into(),
                    format!("must be 5 to 8, got {d}"),
                ));
            }
        }
        if let Some(s) = self.stop_bits {
            if !(1..=2).contains(&s) {
                e.push((
                    "serial.stop_bits".into(),
                    format!("must be 1 or 2, got {s}"),
                ));
            }
        }
        e
    }
}

/// Opens the port with `line` settings.
pub fn open(port: &str, line: LineDefaults) -> std::io::Result<tokio_serial::SerialStream> {
    let parity = match line.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let data_bits = match line.data_bits {
        5 => DataBits::Five,
        6 => DataBits::Six,
        7 => DataBits::Seven,
        _ => DataBits::Eight,
    };
    let stop_bits = if line.stop_bits == 2 {
        StopBits::Two
    } else {
        StopBits::One
    };
    tokio_serial::new(port, line.baud)
        .parity(parity)
        .data_bits(data_bits)
        .stop_bits(stop_bits)
        .open_native_async()
        .map_err(|e| std::io::Error::other(format!("{port}: {e}")))
}

/// Opens the port (reopening with backoff) and pumps bytes until cancelled.
pub async fn run(
    config: &SerialConfig,
    defaults: LineDefaults,
    proto: &mut dyn MeterProtocol,
    sink: &mut Sink,
    cancel: &CancellationToken,
) {
    let line = config.line(defaults);
    let what = format!("serial {}", config.port);
    let port = config.port.clone();
    run_reconnecting(&what, || async { open(&port, line) }, proto, sink, cancel).await;
}

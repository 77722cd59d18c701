//! `tcp = "host:port"`: a serial-to-TCP bridge (ser2net, ESP-Link, a Moxa box).

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{run_reconnecting, Sink};
use crate::protocol::MeterProtocol;

/// Connects to `addr` (reconnecting with backoff) and pumps bytes until cancelled.
pub async fn run(
    addr: &str,
    proto: &mut dyn MeterProtocol,
    sink: &mut Sink,
    cancel: &CancellationToken,
) {
    let what = format!("tcp {addr}");
    run_reconnecting(
        &what,
        || async {
            let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                })??;
            s.set_nodelay(true)?;
            Ok(s)
        },
        proto,
        sink,
        cancel,
    )
    .await;
}

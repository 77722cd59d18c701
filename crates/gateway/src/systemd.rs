//! systemd integration without a library: `sd_notify` datagrams to `$NOTIFY_SOCKET`.
//!
//! With `Type=notify` the unit becomes active when the gateway sends `READY=1` (after every sink
//! is subscribed and every source started). With `WatchdogSec=` systemd passes
//! `WATCHDOG_USEC`; the gateway's main loop then sends `WATCHDOG=1` at half that period, so a
//! hung runtime stops pinging and systemd restarts it.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::Duration;

use smart_meter_core::stats::Registry;

use crate::run::Lifecycle;

/// Talks to systemd when started by it; does nothing otherwise.
pub struct Systemd {
    socket: Option<(UnixDatagram, String)>,
    watchdog: Option<Duration>,
}

impl Systemd {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Self {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .and_then(|path| UnixDatagram::unbound().ok().map(|s| (s, path)));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|us| *us > 0)
            .map(|us| Duration::from_micros(us / 2));
        Systemd { socket, watchdog }
    }

    /// Sends one notification; errors are ignored (systemd may not be listening).
    pub fn notify(&self, state: &str) {
        let Some((sock, path)) = &self.socket else {
            return;
        };
        if let Some(name) = path.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(name) {
                    let _ = sock.send_to_addr(state.as_bytes(), &addr);
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = name;
        } else {
            let _ = sock.send_to(state.as_bytes(), path);
        }
    }
}

impl Lifecycle for Systemd {
    fn ready(&self, registry: &Arc<Registry>) {
        self.notify(&format!(
            "READY=1\nSTATUS=Reading {} source(s) into {} sink(s)",
            registry.sources.len(),
            registry.sinks.len()
        ));
    }

    fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    fn ping(&self) {
        self.notify("WATCHDOG=1");
    }

    fn stopping(&self) {
        self.notify("STOPPING=1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_ready_and_watchdog_to_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let sd = Systemd {
            socket: Some((UnixDatagram::unbound().unwrap(), path.display().to_string())),
            watchdog: Some(Duration::from_secs(5)),
        };
        sd.ready(&Arc::new(Registry::default()));
        sd.ping();
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(msg.starts_with("READY=1\n"), "{msg}");
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }
}

//! A serial line without hardware: `socat` links two pseudo-terminals, one the gateway opens as
//! its serial port, one the test writes meter bytes into. Stopping socat makes the port vanish
//! as an unplugged USB adapter does (reads fail, the device path is gone); starting it again
//! recreates both paths, as re-plugging does.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::wait;

/// A socat-linked pty pair.
pub struct PtyPair {
    /// The device path the gateway opens (`serial = { port = … }`).
    pub port: PathBuf,
    /// The meter's end: what is written here arrives on `port`.
    pub meter: PathBuf,
    child: Option<Child>,
}

impl PtyPair {
    /// Links `dir/ttyUSB0` (the gateway's port) to `dir/meter` and waits until both exist.
    pub fn new(dir: &Path) -> PtyPair {
        assert!(
            crate::have("socat"),
            "socat is needed (apt-get install -y socat; scripts/test does)"
        );
        let mut p = PtyPair {
            port: dir.join("ttyUSB0"),
            meter: dir.join("meter"),
            child: None,
        };
        p.plug();
        p
    }

    /// Creates the pair (again).
    pub fn plug(&mut self) {
        assert!(self.child.is_none(), "already plugged");
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", self.meter.display()))
            .arg(format!("pty,raw,echo=0,link={}", self.port.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat starts");
        self.child = Some(child);
        wait::until_blocking("socat creates both pty links", wait::LIMIT, || {
            self.meter.exists() && self.port.exists()
        });
    }

    /// Removes the pair: socat ends (SIGTERM), its ptys close, the links disappear.
    pub fn unplug(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
        // socat removes its links on SIGTERM; make sure, so a stale link never points at a
        // pty number that another process got since.
        let _ = std::fs::remove_file(&self.port);
        let _ = std::fs::remove_file(&self.meter);
    }

    /// The meter's end, opened for writing.
    pub fn open_meter(&self) -> File {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.meter)
            .expect("the meter end of the pty opens")
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        self.unplug();
    }
}

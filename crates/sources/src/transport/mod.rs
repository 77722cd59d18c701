//! Transports: move bytes between a meter and its protocol adapter.
//!
//! Every transport ends up in [`pump`], the one loop that feeds received bytes to the
//! protocol, writes what the protocol wants sent (polled meters) and publishes what comes out.
//! Serial ports and TCP bridges are reopened with capped, jittered backoff whenever they fail or
//! close; only cancellation (shutdown) or the end of a replayed file ends a source.

pub mod file;
pub mod serial;
pub mod tcp;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smart_meter_core::stats::{SourceState, SourceStats};
use smart_meter_core::{FrameError, Publisher, Stage};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::protocol::{MeterProtocol, Output};

/// Where a source's readings and errors go: the bus, the counters and the (rate-limited) log.
pub struct Sink {
    /// The source's name, for logs.
    pub name: String,
    /// The bus.
    pub publisher: Publisher,
    /// The source's counters.
    pub stats: Arc<SourceStats>,
    limiter: LogLimiter,
}

impl Sink {
    /// A new outlet for the source `name`.
    pub fn new(name: String, publisher: Publisher, stats: Arc<SourceStats>) -> Self {
        Sink {
            name,
            publisher,
            stats,
            limiter: LogLimiter::default(),
        }
    }

    /// Publishes readings and counts and logs errors; empties `out`.
    pub fn emit(&mut self, out: &mut Output) {
        for item in out.drain(..) {
            match item {
                Ok(reading) => {
                    self.stats.record_reading();
                    self.publisher.publish(reading);
                }
                Err(e) => {
                    self.stats.record_error(e.stage);
                    self.limiter.log(&self.name, &e);
                }
            }
        }
    }
}

/// Logs frame errors at most once per stage every 60 s, saying how many were suppressed. The
/// first decryption error is logged at `error` level: a wrong key needs a human.
#[derive(Default)]
struct LogLimiter {
    last: HashMap<Stage, (Instant, u64)>,
    seen_decryption: bool,
}

impl LogLimiter {
    fn log(&mut self, source: &str, e: &FrameError) {
        let now = Instant::now();
        if e.stage == Stage::Decryption && !self.seen_decryption {
            self.seen_decryption = true;
            error!(source, stage = %e.stage, error = %e.detail, "Cannot decrypt frames; check the key.");
            self.last.insert(e.stage, (now, 0));
            return;
        }
        match self.last.get_mut(&e.stage) {
            Some((t, suppressed)) if now.duration_since(*t) < Duration::from_secs(60) => {
                *suppressed += 1;
            }
            Some((t, suppressed)) => {
                warn!(source, stage = %e.stage, error = %e.detail, suppressed = *suppressed,
                    "Dropped a frame that did not decode.");
                *t = now;
                *suppressed = 0;
            }
            None => {
                warn!(source, stage = %e.stage, error = %e.detail, "Dropped a frame that did not decode.");
                self.last.insert(e.stage, (now, 0));
            }
        }
    }
}

/// Why [`pump`] returned.
#[derive(Debug)]
pub enum PumpEnd {
    /// Shutdown was requested.
    Cancelled,
    /// The other side closed (EOF).
    Closed,
    /// Reading or writing failed.
    Failed(io::Error),
}

/// Feeds bytes from `io` to `proto` until cancelled, closed or failed. Writes whatever the
/// protocol asks to transmit (polled meters), waking up at its `next_wakeup`.
pub async fn pump<S>(
    io: &mut S,
    proto: &mut dyn MeterProtocol,
    sink: &mut Sink,
    cancel: &CancellationToken,
) -> PumpEnd
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; 4096];
    let mut out: Output = Vec::new();
    loop {
        if let Some(bytes) = proto.poll(Instant::now(), &mut out) {
            sink.emit(&mut out);
            if let Err(e) = io.write_all(&bytes).await {
                return PumpEnd::Failed(e);
            }
            if let Err(e) = io.flush().await {
                return PumpEnd::Failed(e);
            }
        }
        sink.emit(&mut out);
        let wake = proto.next_wakeup();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return PumpEnd::Cancelled,
            r = io.read(&mut buf) => match r {
                Ok(0) => return PumpEnd::Closed,
                Ok(n) => {
                    sink.stats.bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    proto.on_bytes(buf.get(..n).unwrap_or_default(), &mut out);
                    sink.emit(&mut out);
                }
                Err(e) => return PumpEnd::Failed(e),
            },
            _ = sleep => {}
        }
    }
}

/// Capped exponential backoff with jitter: 1 s, 2 s, 4 s … up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at 1 s, capped at `max`.
    pub fn new(max: Duration) -> Self {
        Backoff {
            next: Duration::from_secs(1),
            max,
        }
    }

    /// The next delay (with up to 20 % jitter so many gateways don't retry in lockstep).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = base.mul_f64(f64::from(nanos % 200) / 1000.0);
        base + jitter
    }

    /// After a successful connection.
    pub fn reset(&mut self) {
        self.next = Duration::from_secs(1);
    }
}

/// Runs a reconnecting link: `open` makes a fresh connection; each connection is pumped until
/// it fails or closes, then the protocol is reset and the link reopened after a backoff.
pub async fn run_reconnecting<F, Fut, S>(
    what: &str,
    mut open: F,
    proto: &mut dyn MeterProtocol,
    sink: &mut Sink,
    cancel: &CancellationToken,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = io::Result<S>>,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut backoff = Backoff::new(Duration::from_secs(60));
    let mut logged_failure = false;
    loop {
        sink.stats.set_state(SourceState::Connecting);
        let opened = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = open() => r,
        };
        match opened {
            Ok(mut io) => {
                sink.stats
                    .connects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                sink.stats.set_state(SourceState::Running);
                sink.stats.set_last_error(None);
                info!(source = %sink.name, link = what, "Link open; reading.");
                logged_failure = false;
                backoff.reset();
                let end = pump(&mut io, proto, sink, cancel).await;
                if !matches!(end, PumpEnd::Cancelled) {
                    // The link's input has ended: a frame cut short by it (an unplugged
                    // adapter) is reported and counted like any other bad frame.
                    let mut out: Output = Vec::new();
                    proto.finish(&mut out);
                    sink.emit(&mut out);
                }
                proto.reset();
                match end {
                    PumpEnd::Cancelled => break,
                    PumpEnd::Closed => {
                        warn!(source = %sink.name, link = what, "Link closed; reopening.");
                        sink.stats.set_last_error(Some("closed".into()));
                    }
                    PumpEnd::Failed(e) => {
                        warn!(source = %sink.name, link = what, error = %e, "Link failed; reopening.");
                        sink.stats.set_last_error(Some(e.to_string()));
                    }
                }
            }
            Err(e) => {
                sink.stats.set_last_error(Some(e.to_string()));
                let delay = backoff.next_delay();
                if !logged_failure {
                    warn!(source = %sink.name, link = what, error = %e, retry_in = ?delay,
                        "Cannot open link; retrying with backoff.");
                    logged_failure = true;
                }
                sink.stats.set_state(SourceState::Backoff);
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                continue;
            }
        }
        let delay = backoff.next_delay();
        sink.stats.set_state(SourceState::Backoff);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    sink.stats.set_state(SourceState::Ended);
}

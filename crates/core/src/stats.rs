//! Live counters of sources and sinks, read by the status endpoint and the logs.
//!
//! Plain atomics: sources and sinks update them on their hot paths without locks; readers take a
//! consistent-enough snapshot.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Stage;

/// What a source is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SourceState {
    /// Opening the port or connecting.
    Connecting = 0,
    /// Receiving.
    Running = 1,
    /// Waiting before the next attempt to open or connect.
    Backoff = 2,
    /// Finished (a replayed file ended, or shutdown).
    Ended = 3,
}

impl SourceState {
    /// Lowercase name for status output.
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceState::Connecting => "connecting",
            SourceState::Running => "running",
            SourceState::Backoff => "backoff",
            SourceState::Ended => "ended",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => SourceState::Running,
            2 => SourceState::Backoff,
            3 => SourceState::Ended,
            _ => SourceState::Connecting,
        }
    }
}

/// Counters of one source.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Readings published.
    pub readings: AtomicU64,
    /// Frames rejected, per [`Stage`] (index = position in [`Stage::ALL`]).
    pub errors: [AtomicU64; 7],
    /// Bytes received.
    pub bytes: AtomicU64,
    /// Times the port or connection was (re)opened.
    pub connects: AtomicU64,
    /// Milliseconds since the epoch of the last reading, 0 if none.
    pub last_reading_ms: AtomicU64,
    state: AtomicU8,
    /// The last transport error, for the status endpoint.
    pub last_error: Mutex<Option<String>>,
}

impl SourceStats {
    /// Counts a published reading.
    pub fn record_reading(&self) {
        self.readings.fetch_add(1, Ordering::Relaxed);
        self.last_reading_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Counts a rejected frame.
    pub fn record_error(&self, stage: Stage) {
        let i = Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0);
        if let Some(c) = self.errors.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Rejected frames at `stage`.
    pub fn errors_at(&self, stage: Stage) -> u64 {
        let i = Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0);
        self.errors.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Sets the state.
    pub fn set_state(&self, s: SourceState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    /// The state.
    pub fn state(&self) -> SourceState {
        SourceState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Remembers the last transport error.
    pub fn set_last_error(&self, e: Option<String>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = e;
        }
    }
}

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Readings (or points/messages) handed to the destination and accepted.
    pub delivered: AtomicU64,
    /// Failed attempts that will be retried.
    pub retries: AtomicU64,
    /// Readings given up on (queue overflow, permanent rejection).
    pub dropped: AtomicU64,
    /// Readings waiting in the sink's own queue or spool.
    pub queued: AtomicI64,
    /// Whether the destination is reachable right now (always true for local files).
    pub connected: AtomicBool,
    /// Readings lost on the bus because this sink lagged (shared with its subscription).
    pub lagged: Arc<AtomicU64>,
    /// The last error, for the status endpoint.
    pub last_error: Mutex<Option<String>>,
}

impl SinkStats {
    /// Fresh counters sharing the subscription's lag counter.
    pub fn new(lagged: Arc<AtomicU64>) -> Self {
        SinkStats {
            lagged,
            ..SinkStats::default()
        }
    }

    /// Remembers the last error.
    pub fn set_last_error(&self, e: Option<String>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = e;
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Every source's and sink's counters, for the status endpoint and metrics.
#[derive(Debug, Default)]
pub struct Registry {
    /// (source name, protocol, counters).
    pub sources: Vec<(String, &'static str, Arc<SourceStats>)>,
    /// (sink name, sink type, counters).
    pub sinks: Vec<(String, &'static str, Arc<SinkStats>)>,
    /// The bus counters.
    pub bus: Arc<crate::BusStats>,
    /// Milliseconds since the epoch when the gateway started.
    pub started_ms: u64,
}

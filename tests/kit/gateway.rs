//! The gateway in-process: `smart_meter::config::load` on a real config folder, then
//! `smart_meter::run::run` on the test's runtime, exactly as `smart-meter run` does, with a
//! lifecycle hook that hands the test the live counters of every source and sink.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smart_meter::run::{run, Lifecycle};
use smart_meter_core::stats::{Registry, SinkStats, SourceState, SourceStats};
use smart_meter_core::Stage;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::wait;

struct Ready(Mutex<Option<oneshot::Sender<Arc<Registry>>>>);

impl Lifecycle for Ready {
    fn ready(&self, registry: &Arc<Registry>) {
        if let Some(tx) = self.0.lock().unwrap().take() {
            let _ = tx.send(registry.clone());
        }
    }
}

/// A running gateway.
pub struct Gateway {
    registry: Arc<Registry>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    /// Loads `profile` from `dir` (panicking with every config problem) and starts it; returns
    /// once sources and sinks are running.
    pub async fn start(dir: &Path, profile: &str) -> Gateway {
        let settings = smart_meter::config::load(dir, profile).unwrap_or_else(|errors| {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("config {}: {}", dir.display(), list.join("; "))
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, registry) = oneshot::channel();
        let task = tokio::spawn(run(
            settings,
            async {
                let _ = stopped.await;
            },
            Ready(Mutex::new(Some(ready))),
        ));
        let registry = tokio::time::timeout(wait::LIMIT, registry)
            .await
            .expect("the gateway comes up")
            .expect("the gateway reports ready");
        Gateway {
            registry,
            stop: Some(stop),
            task,
        }
    }

    /// The counters of source `name`.
    pub fn source(&self, name: &str) -> Arc<SourceStats> {
        self.registry
            .sources
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, s)| s.clone())
            .unwrap_or_else(|| panic!("no source {name}"))
    }

    /// The counters of sink `name`.
    pub fn sink(&self, name: &str) -> Arc<SinkStats> {
        self.registry
            .sinks
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, s)| s.clone())
            .unwrap_or_else(|| panic!("no sink {name}"))
    }

    /// Readings published on the bus so far.
    pub fn published(&self) -> u64 {
        self.registry.bus.published.load(Ordering::Relaxed)
    }

    /// Whether `run` is still going (it ends only on shutdown, or when every source ended).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Waits until sink `name` has delivered at least `n` readings.
    pub async fn wait_delivered(&self, name: &str, n: u64) {
        let s = self.sink(name);
        wait::until(&format!("sink {name} delivered {n}"), wait::LIMIT, || {
            s.delivered.load(Ordering::Relaxed) >= n
        })
        .await;
    }

    /// Waits until source `name` has published at least `n` readings.
    pub async fn wait_readings(&self, name: &str, n: u64) {
        let s = self.source(name);
        wait::until(&format!("source {name} read {n}"), wait::LIMIT, || {
            s.readings.load(Ordering::Relaxed) >= n
        })
        .await;
    }

    /// Waits until source `name` has opened its link `n` times and is reading.
    pub async fn wait_connected(&self, name: &str, n: u64) {
        let s = self.source(name);
        wait::until(
            &format!("source {name} connected {n} times"),
            wait::LIMIT,
            || s.connects.load(Ordering::Relaxed) >= n && s.state() == SourceState::Running,
        )
        .await;
    }

    /// Shuts down as SIGTERM does (sources stop, sinks drain) and returns `run`'s result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        assert!(self.is_running(), "the gateway ended before it was stopped");
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join().await
    }

    /// Waits for `run` to end by itself (every source finite) and returns its result.
    pub async fn join(self) -> anyhow::Result<()> {
        tokio::time::timeout(Duration::from_secs(120), self.task)
            .await
            .expect("the gateway ends within two minutes")
            .expect("the gateway task does not panic")
    }
}

/// Frames a source rejected at `stage`.
pub fn errors(s: &SourceStats, stage: Stage) -> u64 {
    s.errors_at(stage)
}

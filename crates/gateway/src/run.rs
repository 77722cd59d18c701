//! Wiring and lifecycle: sinks subscribe, sources start, and on shutdown sources stop first
//! while sinks drain the bus and flush.

use std::future::Future;
use std::sync::Arc;

use smart_meter_core::stats::{now_ms, Registry, SinkStats, SourceStats};
use smart_meter_core::Bus;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Settings;

/// Hooks the service manager integration uses: called once everything is up, and regularly
/// while the bus loop is alive.
pub trait Lifecycle: Send + 'static {
    /// Sources and sinks are running.
    fn ready(&self, _registry: &Arc<Registry>) {}
    /// How often [`ping`](Self::ping) must be called, if at all.
    fn watchdog_interval(&self) -> Option<std::time::Duration> {
        None
    }
    /// The main loop is alive.
    fn ping(&self) {}
    /// Shutdown has begun.
    fn stopping(&self) {}
}

/// No service manager.
pub struct Plain;

impl Lifecycle for Plain {}

/// Runs the gateway until every source has ended (finite replays) or `shutdown` completes,
/// then drains the sinks within the grace period.
///
/// # Errors
/// A sink that failed to start or run (e.g. an output file that cannot be created).
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()>,
    lifecycle: impl Lifecycle,
) -> anyhow::Result<()> {
    let status_listener = match &settings.status {
        Some(st) => Some(
            tokio::net::TcpListener::bind(&st.listen)
                .await
                .map_err(|e| anyhow::anyhow!("status.listen {}: {e}", st.listen))?,
        ),
        None => None,
    };
    let bus = Bus::new(settings.bus.capacity);
    let stop_sources = CancellationToken::new();
    let mut registry = Registry {
        bus: bus.stats(),
        started_ms: now_ms(),
        ..Registry::default()
    };

    let mut sinks = JoinSet::new();
    for (name, sink) in settings.sinks {
        let sub = bus.subscribe(&name);
        let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
        registry
            .sinks
            .push((name.clone(), sink.kind(), stats.clone()));
        info!(sink = %name, kind = sink.kind(), "Starting sink.");
        let n = name.clone();
        sinks.spawn(async move { (n.clone(), sink.run(n, sub, stats).await) });
    }

    let mut sources = JoinSet::new();
    for source in settings.sources {
        let stats = Arc::new(SourceStats::default());
        registry
            .sources
            .push((source.name.clone(), source.protocol.name(), stats.clone()));
        info!(source = %source.name, meter = %source.meter, protocol = source.protocol.name(),
            transport = %source.transport.describe(), "Starting source.");
        let publisher = bus.publisher();
        let cancel = stop_sources.child_token();
        sources.spawn(source.run(publisher, stats, cancel));
    }
    // From here on only the sources hold publishers: when they end, the sinks see the end.
    drop(bus);
    let registry = Arc::new(registry);
    let _status = status_listener.map(|l| {
        let stale = settings
            .status
            .as_ref()
            .and_then(|s| s.stale_after)
            .unwrap_or(crate::status::DEFAULT_STALE_AFTER);
        info!(listen = %settings.status.as_ref().map(|s| s.listen.as_str()).unwrap_or(""), "Status endpoint up.");
        AbortOnDrop(tokio::spawn(crate::status::serve(l, registry.clone(), stale)))
    });
    lifecycle.ready(&registry);

    tokio::pin!(shutdown);
    let mut shutdown_requested = false;
    let watchdog = lifecycle.watchdog_interval();
    let mut ticker =
        tokio::time::interval(watchdog.unwrap_or(std::time::Duration::from_secs(3600)));
    loop {
        tokio::select! {
            _ = &mut shutdown, if !shutdown_requested => {
                info!("Shutting down: stopping sources, draining sinks.");
                shutdown_requested = true;
                lifecycle.stopping();
                stop_sources.cancel();
            }
            _ = ticker.tick(), if watchdog.is_some() => lifecycle.ping(),
            done = sources.join_next() => match done {
                Some(Err(e)) if e.is_panic() => error!(error = %e, "A source task panicked."),
                Some(_) => {}
                None => break,
            },
        }
    }
    if !shutdown_requested {
        info!("All sources have ended; flushing sinks.");
    }

    let mut failed = None;
    let drain = async {
        while let Some(done) = sinks.join_next().await {
            match done {
                Ok((name, Err(e))) => {
                    error!(sink = %name, error = %e, "Sink failed.");
                    failed.get_or_insert(anyhow::anyhow!("sink {name}: {e}"));
                }
                Ok((_, Ok(()))) => {}
                Err(e) => {
                    error!(error = %e, "A sink task panicked.");
                    failed.get_or_insert(anyhow::anyhow!("a sink task panicked"));
                }
            }
        }
    };
    let drain = async {
        tokio::pin!(drain);
        loop {
            tokio::select! {
                _ = &mut drain => break,
                _ = ticker.tick(), if watchdog.is_some() => lifecycle.ping(),
            }
        }
    };
    if tokio::time::timeout(settings.shutdown_grace, drain)
        .await
        .is_err()
    {
        warn!(grace = ?settings.shutdown_grace, "Sinks still busy after the grace period; exiting.");
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

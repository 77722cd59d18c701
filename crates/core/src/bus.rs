//! The reading bus: a lossy broadcast from sources to sinks.
//!
//! A meter on a serial line cannot be paused, so publishing never waits. A sink that falls more
//! than the bus capacity behind loses the oldest readings; it learns how many through
//! [`Subscription::next`], which counts and logs them. Sinks that must not lose readings keep
//! their own queue (and disk spool) fed by their subscription.
//!
//! Order of wiring: subscribe every sink, hand out publishers, drop the [`Bus`]. Once every
//! publisher is gone, subscriptions drain what is buffered and then end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tracing::warn;

use crate::Reading;

/// Counters shared by the bus and its endpoints.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Readings published.
    pub published: AtomicU64,
    /// Readings published while no sink was subscribed.
    pub unrouted: AtomicU64,
}

/// The wiring handle. Dropping it (after subscribing sinks and creating publishers) lets the
/// subscriptions end once the sources end.
pub struct Bus {
    tx: broadcast::Sender<Arc<Reading>>,
    stats: Arc<BusStats>,
    capacity: usize,
}

impl Bus {
    /// A bus holding up to `capacity` readings per lagging sink (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Bus {
            tx,
            stats: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// A publisher for a source.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            tx: self.tx.clone(),
            stats: self.stats.clone(),
            capacity: self.capacity,
        }
    }

    /// A subscription for the sink `name`; it sees every reading published from now on.
    pub fn subscribe(&self, name: &str) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
            name: name.into(),
            dropped: Arc::default(),
            last_warn: None,
        }
    }

    /// The shared counters.
    pub fn stats(&self) -> Arc<BusStats> {
        self.stats.clone()
    }
}

/// A source's handle for publishing readings.
#[derive(Clone)]
pub struct Publisher {
    tx: broadcast::Sender<Arc<Reading>>,
    stats: Arc<BusStats>,
    capacity: usize,
}

impl Publisher {
    /// Publishes without waiting. With no sink subscribed the reading is counted as unrouted.
    pub fn publish(&self, reading: Reading) {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Arc::new(reading)).is_err() {
            self.stats.unrouted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Readings published that the slowest subscriber has not received yet (at most
    /// [`capacity`](Self::capacity)). Only sources that can wait (a replayed file) use it, to
    /// stay within the bus instead of making a slow sink lose readings.
    pub fn backlog(&self) -> usize {
        self.tx.len()
    }

    /// The bus capacity: readings held for the slowest subscriber.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A sink's view of the bus.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Reading>>,
    name: Box<str>,
    dropped: Arc<AtomicU64>,
    last_warn: Option<Instant>,
}

impl Subscription {
    /// The next reading; `None` once every publisher is gone and the backlog is drained.
    /// Readings lost because this sink lagged are counted and logged (at most every 10 s).
    pub async fn next(&mut self) -> Option<Arc<Reading>> {
        loop {
            match self.rx.recv().await {
                Ok(r) => return Some(r),
                Err(broadcast::error::RecvError::Lagged(n)) => self.record_lag(n),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Like [`next`](Self::next) without waiting: `Ok(None)` when nothing is buffered right
    /// now, `Err(())` when the bus has closed.
    #[allow(clippy::result_unit_err)]
    pub fn try_next(&mut self) -> Result<Option<Arc<Reading>>, ()> {
        loop {
            match self.rx.try_recv() {
                Ok(r) => return Ok(Some(r)),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.record_lag(n),
                Err(broadcast::error::TryRecvError::Empty) => return Ok(None),
                Err(broadcast::error::TryRecvError::Closed) => return Err(()),
            }
        }
    }

    fn record_lag(&mut self, n: u64) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        let now = Instant::now();
        if self
            .last_warn
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            self.last_warn = Some(now);
            warn!(sink = %self.name, dropped = n, dropped_total = total,
                "Sink fell behind the bus; readings were dropped.");
        }
    }

    /// Readings this sink lost by lagging, so far. The counter is shared, so it can be read
    /// from elsewhere (metrics) after the subscription moved into its task.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MeterId;

    fn reading(n: u8) -> Reading {
        let mut r = Reading::new(MeterId::new("m").unwrap(), "test");
        r.samples.push(crate::Sample::text(
            crate::Key::Named("n".into()),
            n.to_string(),
        ));
        r
    }

    #[tokio::test]
    async fn subscriptions_drain_then_end_after_publishers_drop() {
        let bus = Bus::new(8);
        let mut sub = bus.subscribe("a");
        let p = bus.publisher();
        drop(bus);
        p.publish(reading(1));
        p.publish(reading(2));
        drop(p);
        assert!(sub.next().await.is_some());
        assert!(sub.next().await.is_some());
        assert!(sub.next().await.is_none());
    }

    #[tokio::test]
    async fn lagging_sink_counts_dropped_readings() {
        let bus = Bus::new(2);
        let mut slow = bus.subscribe("slow");
        let p = bus.publisher();
        drop(bus);
        for i in 0..5 {
            p.publish(reading(i));
        }
        drop(p);
        let mut got = 0;
        while slow.next().await.is_some() {
            got += 1;
        }
        assert_eq!(got, 2);
        assert_eq!(slow.dropped_counter().load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn backlog_counts_readings_the_slowest_subscriber_has_not_received() {
        let bus = Bus::new(4);
        let mut fast = bus.subscribe("fast");
        let _slow = bus.subscribe("slow");
        let p = bus.publisher();
        assert_eq!((p.backlog(), p.capacity()), (0, 4));
        p.publish(reading(1));
        p.publish(reading(2));
        fast.next().await.unwrap();
        fast.next().await.unwrap();
        assert_eq!(p.backlog(), 2, "the slow subscriber has seen neither");
        for i in 3..10 {
            p.publish(reading(i));
        }
        assert_eq!(p.backlog(), 4, "never more than the capacity");
    }

    #[tokio::test]
    async fn publishing_without_sinks_is_counted_not_an_error() {
        let bus = Bus::new(2);
        let stats = bus.stats();
        bus.publisher().publish(reading(1));
        assert_eq!(stats.unrouted.load(Ordering::Relaxed), 1);
    }
}

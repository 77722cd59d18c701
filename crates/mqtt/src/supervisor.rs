//! The connection task: drives the rumqttc event loop without pause, backs off after errors,
//! re-subscribes on every CONNACK, and tracks every publish until the broker has it.
//!
//! # Delivery tracking
//! A publish moves through four places, oldest first in each:
//! `waiting` (not yet handed to rumqttc) → `channel` (in rumqttc's request channel, no packet
//! id yet) → `inflight` (written with a packet id, awaiting PUBACK/PUBREC) → delivered.
//! rumqttc reports requests taken from its channel as `Outgoing::Publish(pkid)` in channel
//! order, which is how a packet id is matched to our message.
//!
//! Requests are handed to rumqttc only while connected, and only from this task while the
//! poll future is known to be pending (the `select!` is biased towards it), so when a poll
//! fails every handed-over request is either `inflight` or was moved by rumqttc into its
//! replay list. The supervisor drops that list ([`Driver::discard_after_error`]) and puts all
//! undelivered messages back at the front of `waiting`, in their original order, to be sent
//! again after the next CONNACK whether or not the broker kept the session. Nothing is lost;
//! a message that was in flight at the failure may arrive twice (QoS 1 allows that).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::driver::{Client, Driver, Ev, FIRST_RETRY};
use super::{Event, Message, MessageId, QoS, Shared};

/// Requests from [`Connection`](super::Connection) handles.
pub(super) enum Command {
    Publish(MessageId, Message),
    Close {
        drain: Duration,
        done: oneshot::Sender<usize>,
    },
}

type PollFuture = Pin<Box<dyn Future<Output = (Driver, Result<Ev, String>)> + Send>>;

/// Settings the task needs besides the event loop.
pub(super) struct Task {
    pub name: String,
    pub subscriptions: Vec<(String, QoS)>,
    pub window: usize,
    pub max_packet_size: usize,
    pub backoff_max: Duration,
    pub client: Client,
    pub shared: Arc<Shared>,
    pub events: mpsc::UnboundedSender<Event>,
}

#[derive(Default)]
struct Tracker {
    waiting: VecDeque<(MessageId, Message)>,
    channel: VecDeque<(MessageId, Message)>,
    inflight: HashMap<u16, (MessageId, Message)>,
    collided: Vec<(u16, MessageId, Message)>,
}

impl Tracker {
    fn handed_over(&self) -> usize {
        self.channel.len() + self.inflight.len() + self.collided.len()
    }

    fn total(&self) -> usize {
        self.waiting.len() + self.handed_over()
    }

    /// Everything handed over goes back to the front of `waiting`, oldest first.
    fn requeue(&mut self) {
        let mut back: Vec<(MessageId, Message)> = self.channel.drain(..).collect();
        back.extend(self.inflight.drain().map(|(_, v)| v));
        back.extend(self.collided.drain(..).map(|(_, id, m)| (id, m)));
        back.sort_by_key(|(id, _)| *id);
        for item in back.into_iter().rev() {
            self.waiting.push_front(item);
        }
    }
}

struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        // Up to 20 % jitter so a fleet of gateways does not reconnect in lockstep.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.subsec_nanos())
            .unwrap_or(0);
        d + d.mul_f64(f64::from(nanos % 200) / 1000.0)
    }

    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

struct Closing {
    deadline: Instant,
    reply: Option<oneshot::Sender<usize>>,
    disconnect_sent: Option<Instant>,
}

pub(super) async fn run(task: Task, driver: Driver, mut cmds: mpsc::UnboundedReceiver<Command>) {
    let Task {
        name,
        subscriptions,
        window,
        max_packet_size,
        backoff_max,
        client,
        shared,
        events,
    } = task;
    let emit = |e: Event| {
        let _ = events.send(e);
    };
    let mut idle: Option<Driver> = None;
    let mut polling: Option<PollFuture> = Some(Box::pin(driver.poll()));
    let mut retry_at: Option<Instant> = None;
    let mut connected = false;
    let mut failures_logged = false;
    let mut backoff = Backoff {
        next: FIRST_RETRY,
        max: backoff_max.max(FIRST_RETRY),
    };
    let mut t = Tracker::default();
    let mut closing: Option<Closing> = None;
    let mut cmds_open = true;

    loop {
        if polling.is_none() && retry_at.is_none() {
            if let Some(d) = idle.take() {
                polling = Some(Box::pin(d.poll()));
            }
        }
        let close_at = closing.as_ref().map(|c| match c.disconnect_sent {
            // After DISCONNECT, give the loop a moment to write it.
            Some(at) => at + Duration::from_secs(2),
            None => c.deadline,
        });
        tokio::select! {
            biased;
            (d, result) = async { match polling.as_mut() {
                Some(f) => f.await,
                None => std::future::pending().await,
            } } => {
                polling = None;
                let mut d = d;
                match result {
                    Ok(Ev::ConnAck { session_present }) => {
                        connected = true;
                        shared.connected.store(true, Ordering::Relaxed);
                        backoff.reset();
                        failures_logged = false;
                        info!(connection = %name, session_present, "Connected to the broker.");
                        if !subscriptions.is_empty() && !client.try_subscribe(&subscriptions) {
                            error!(connection = %name, "Could not queue the subscription.");
                        }
                        emit(Event::Connected { session_present });
                    }
                    Ok(Ev::OutPublish(0)) => {
                        if let Some((id, _)) = t.channel.pop_front() {
                            delivered(&shared, &emit, id);
                        }
                    }
                    Ok(Ev::OutPublish(pkid)) => {
                        if let Some(pos) = t.collided.iter().position(|c| c.0 == pkid) {
                            if !t.inflight.contains_key(&pkid) {
                                let (_, id, m) = t.collided.remove(pos);
                                t.inflight.insert(pkid, (id, m));
                            }
                        } else if !t.inflight.contains_key(&pkid) {
                            if let Some(entry) = t.channel.pop_front() {
                                t.inflight.insert(pkid, entry);
                            }
                        }
                    }
                    Ok(Ev::AwaitAck(pkid)) => {
                        if let Some((id, m)) = t.channel.pop_front() {
                            t.collided.push((pkid, id, m));
                        }
                    }
                    Ok(Ev::PubAck(pkid)) => {
                        if t.inflight.get(&pkid).is_some_and(|(_, m)| m.qos == QoS::AtLeastOnce) {
                            if let Some((id, _)) = t.inflight.remove(&pkid) {
                                delivered(&shared, &emit, id);
                            }
                        }
                    }
                    Ok(Ev::PubRec(pkid)) => {
                        if t.inflight.get(&pkid).is_some_and(|(_, m)| m.qos == QoS::ExactlyOnce) {
                            if let Some((id, _)) = t.inflight.remove(&pkid) {
                                delivered(&shared, &emit, id);
                            }
                        }
                    }
                    Ok(Ev::SubAck { ok }) => {
                        if !ok {
                            error!(connection = %name, "The broker refused a subscription.");
                        }
                        emit(Event::Subscribed { ok });
                    }
                    Ok(Ev::Publish(m)) => emit(Event::Message(m)),
                    Ok(Ev::OutDisconnect) => {
                        if closing.is_some() {
                            finish(&shared, &mut closing, &t);
                            return;
                        }
                    }
                    Ok(Ev::Other) => {}
                    Err(e) => {
                        if closing.as_ref().is_some_and(|c| c.disconnect_sent.is_some()) {
                            finish(&shared, &mut closing, &t);
                            return;
                        }
                        let delay = backoff.next_delay();
                        if connected {
                            d.discard_after_error();
                            t.requeue();
                            connected = false;
                            shared.connected.store(false, Ordering::Relaxed);
                            warn!(connection = %name, error = %e, retry_in = ?delay,
                                "Lost the broker connection; reconnecting.");
                            emit(Event::ConnectionLost { error: e });
                        } else {
                            if failures_logged {
                                debug!(connection = %name, error = %e, retry_in = ?delay,
                                    "Broker still unreachable.");
                            } else {
                                warn!(connection = %name, error = %e, retry_in = ?delay,
                                    "Broker unreachable; retrying.");
                                failures_logged = true;
                            }
                            emit(Event::ConnectFailed { error: e });
                        }
                        retry_at = Some(Instant::now() + delay);
                    }
                }
                idle = Some(d);
            }
            _ = async { match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            } } => {
                retry_at = None;
            }
            cmd = cmds.recv(), if cmds_open => match cmd {
                Some(Command::Publish(id, m)) => t.waiting.push_back((id, m)),
                Some(Command::Close { drain, done }) => {
                    closing = Some(Closing {
                        deadline: Instant::now() + drain,
                        reply: Some(done),
                        disconnect_sent: None,
                    });
                }
                None => {
                    cmds_open = false;
                    if closing.is_none() {
                        closing = Some(Closing {
                            deadline: Instant::now(),
                            reply: None,
                            disconnect_sent: None,
                        });
                    }
                }
            },
            _ = async { match close_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            } } => {
                if let Some(c) = &mut closing {
                    if c.disconnect_sent.is_some() || !connected {
                        finish(&shared, &mut closing, &t);
                        return;
                    }
                    // Drain time is up while connected: say goodbye now.
                    c.deadline = Instant::now();
                }
            }
        }

        // Hand waiting messages to rumqttc, but only while connected and only up to the
        // window (rumqttc's inflight limit), so its channel never fills.
        if connected && closing.as_ref().is_none_or(|c| c.disconnect_sent.is_none()) {
            while t.handed_over() < window {
                let Some((id, m)) = t.waiting.pop_front() else {
                    break;
                };
                if let Some(reason) = unsendable(&m, max_packet_size) {
                    // The broker would drop the connection over it, again and again; it must not
                    // block the messages behind it.
                    error!(connection = %name, topic = %m.topic, error = %reason,
                        "Dropped a message that cannot be sent.");
                    delivered(&shared, &emit, id);
                    continue;
                }
                if client.try_publish(&m) {
                    t.channel.push_back((id, m));
                } else {
                    t.waiting.push_front((id, m));
                    break;
                }
            }
        }

        if let Some(c) = &mut closing {
            let drained = t.total() == 0;
            let due = Instant::now() >= c.deadline;
            if c.disconnect_sent.is_none() && (drained || due) {
                if connected && client.try_disconnect() {
                    c.disconnect_sent = Some(Instant::now());
                } else if !connected {
                    finish(&shared, &mut closing, &t);
                    return;
                }
            }
        }
    }
}

/// Why `m` can never be published, if so: MQTT topics are non-empty, without wildcards or NUL,
/// and the packet must fit the size limit.
fn unsendable(m: &Message, max_packet_size: usize) -> Option<String> {
    if m.topic.is_empty() {
        return Some("empty topic".into());
    }
    if m.topic.contains(['+', '#', '\0']) {
        return Some("wildcard or NUL in the topic".into());
    }
    // Fixed header, topic length, packet id and MQTT 5 properties: well under 16 bytes.
    let size = m.topic.len() + m.payload.len() + 16;
    if size > max_packet_size {
        return Some(format!(
            "{size} bytes exceed the packet size limit of {max_packet_size}"
        ));
    }
    None
}

fn delivered(shared: &Shared, emit: &impl Fn(Event), id: MessageId) {
    let _ = shared
        .outstanding
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    emit(Event::Delivered(id));
}

fn finish(shared: &Shared, closing: &mut Option<Closing>, t: &Tracker) {
    shared.connected.store(false, Ordering::Relaxed);
    if let Some(reply) = closing.as_mut().and_then(|c| c.reply.take()) {
        let _ = reply.send(t.total());
    }
}

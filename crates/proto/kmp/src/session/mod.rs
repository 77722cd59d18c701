//! A sans-IO poll session: which GetRegister request to send when, and what the answers mean.
//!
//! Shaped like rumqttc's `MqttState` and smoltcp's sockets: no IO and no clock of its own. The
//! caller passes `now` into every call and
//! - writes whatever [`Session::poll_transmit`] returns to the line,
//! - feeds whatever the line delivers to [`Session::handle_bytes`],
//! - wakes up at [`Session::next_timeout`] to call `poll_transmit` again,
//! - takes the results from [`Session::poll_event`].
//!
//! A poll asks for the configured registers in requests of up to
//! [`MAX_REGISTERS`], one after the other. Each request waits
//! `timeout` for its response and is sent again, up to `retries` more times, when none comes
//! or a garbled one comes. Bytes before a response's start byte (an optical head's echo of the
//! request) are skipped. A completed poll yields the registers read and, for every register
//! that was not, the reason. The next poll starts `interval` after the previous one started
//! (at once if the previous one took longer).
//!
//! Before the first request is sent the session is passive: every response frame that arrives
//! is reported on its own ([`Event::Response`]), which is how captured exchanges (a replayed
//! file, frames forwarded by another poller) are decoded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::frame::{Direction, Register, Request, Response, HEAT_METER, MAX_REGISTERS};
use crate::framer::Framer;
use crate::Error;

/// What a session polls and how patiently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Destination address ([`HEAT_METER`], `3F`).
    pub address: u8,
    /// Register ids in the order they are wanted. Duplicates are asked once.
    pub registers: Vec<u16>,
    /// Time from the start of one poll to the start of the next.
    pub interval: Duration,
    /// How long to wait for the response to one request.
    pub timeout: Duration,
    /// How many times a request is sent again after a timeout or a bad response.
    pub retries: u8,
}

impl Config {
    /// `registers` at the heat-meter address, every 60 s, 2 s timeout, 2 retries.
    pub fn new(registers: Vec<u16>) -> Config {
        Config {
            address: HEAT_METER,
            registers,
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(2),
            retries: 2,
        }
    }
}

/// Something the session has to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A poll has completed.
    Poll(Poll),
    /// Passive mode (nothing sent yet): a response frame arrived.
    Response(Response),
    /// Passive mode (nothing sent yet): bytes between a start and a stop byte that are not a
    /// valid response.
    BadFrame(Error),
}

/// The outcome of one poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poll {
    /// When the first request was due.
    pub started: Instant,
    /// When the last response arrived or the last request gave up.
    pub finished: Instant,
    /// The registers read, in configured order.
    pub registers: Vec<Register>,
    /// The registers not read, in configured order, with the reason.
    pub failures: Vec<Failure>,
    /// Requests sent, retries included.
    pub requests: u32,
}

/// A register a poll could not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The register id.
    pub register: u16,
    /// Why.
    pub reason: Reason,
}

/// Why a register could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No response came within the timeout, for every attempt.
    NoResponse {
        /// Requests sent.
        attempts: u8,
    },
    /// The last attempt got a response that could not be decoded (earlier attempts got a bad
    /// response or none).
    BadResponse {
        /// What was wrong with the last one.
        error: Error,
        /// Requests sent.
        attempts: u8,
    },
    /// The meter answered but left this register out: it does not know it.
    NotInResponse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between polls.
    Idle { next_poll: Instant },
    /// A request (the next group, or a retry) is to be sent at `at`.
    Due { at: Instant },
    /// A request was sent; its response is awaited until `deadline`.
    Waiting { deadline: Instant },
}

#[derive(Clone, Debug)]
struct InProgress {
    started: Instant,
    group: usize,
    attempts: u8,
    last_error: Option<Error>,
    registers: Vec<Register>,
    failures: Vec<Failure>,
    requests: u32,
}

/// A KMP poll session. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Session {
    config: Config,
    groups: Vec<Vec<u16>>,
    framer: Framer,
    state: State,
    poll: Option<InProgress>,
    events: VecDeque<Event>,
    active: bool,
    stale: u64,
}

impl Session {
    /// A session whose first poll is due at `now`.
    pub fn new(config: Config, now: Instant) -> Session {
        let mut unique: Vec<u16> = Vec::with_capacity(config.registers.len());
        for &r in &config.registers {
            if !unique.contains(&r) {
                unique.push(r);
            }
        }
        let groups = unique.chunks(MAX_REGISTERS).map(<[u16]>::to_vec).collect();
        Session {
            config,
            groups,
            framer: Framer::new(Direction::FromMeter),
            state: State::Idle { next_poll: now },
            poll: None,
            events: VecDeque::new(),
            active: false,
            stale: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes to write to the meter now, if any. Also advances timeouts and retries; a poll
    /// that completes by giving up is reported through [`poll_event`](Self::poll_event).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.groups.is_empty() {
            return None;
        }
        // Every pass either returns or moves on to a state nearer to a transmission, so this
        // loop ends after at most a few passes per group.
        loop {
            match self.state {
                State::Idle { next_poll } => {
                    if now < next_poll {
                        return None;
                    }
                    self.poll = Some(InProgress {
                        started: next_poll,
                        group: 0,
                        attempts: 0,
                        last_error: None,
                        registers: Vec::new(),
                        failures: Vec::new(),
                        requests: 0,
                    });
                    self.state = State::Due { at: now };
                }
                State::Due { at } => {
                    if now < at {
                        return None;
                    }
                    return self.transmit(now);
                }
                State::Waiting { deadline } => {
                    if now < deadline {
                        return None;
                    }
                    self.on_timeout(now);
                }
            }
        }
    }

    /// Feeds bytes received from the meter at `now`.
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) {
        self.framer.push(bytes);
        while let Some(frame) = self.framer.next_frame() {
            let response = frame.and_then(|f| {
                if self.active && f.address != self.config.address {
                    return Err(Error::UnexpectedAddress {
                        expected: self.config.address,
                        found: f.address,
                    });
                }
                Response::parse(&f)
            });
            match self.state {
                State::Waiting { .. } => self.on_response(response, now),
                _ if self.active => {
                    // A late answer to a request already given up on, or a duplicate.
                    self.stale = self.stale.saturating_add(1);
                }
                _ => self.events.push_back(match response {
                    Ok(r) => Event::Response(r),
                    Err(e) => Event::BadFrame(e),
                }),
            }
        }
    }

    /// The input has ended (a replayed capture): a partial frame left in the buffer is
    /// reported as [`Event::BadFrame`] with [`Error::Unterminated`].
    pub fn finish(&mut self) {
        if let Some(e) = self.framer.finish() {
            self.events.push_back(Event::BadFrame(e));
        }
    }

    /// The link was reopened: drops buffered bytes and the poll in progress. A new poll starts
    /// at the next [`poll_transmit`](Self::poll_transmit).
    pub fn reset(&mut self) {
        self.framer.clear();
        if let Some(p) = self.poll.take() {
            self.state = State::Idle {
                next_poll: p.started,
            };
        }
    }

    /// When [`poll_transmit`](Self::poll_transmit) next has something to do: the next poll,
    /// the next request, or a response deadline. `None` when no register is configured.
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.groups.is_empty() {
            return None;
        }
        Some(match self.state {
            State::Idle { next_poll } => next_poll,
            State::Due { at } => at,
            State::Waiting { deadline } => deadline,
        })
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// True while a request's response is awaited.
    pub fn is_waiting(&self) -> bool {
        matches!(self.state, State::Waiting { .. })
    }

    /// Response frames that arrived when none was awaited (late answers), so far.
    pub fn stale_responses(&self) -> u64 {
        self.stale
    }

    /// Bytes skipped outside response frames (echoes, noise), so far.
    pub fn skipped_bytes(&self) -> u64 {
        self.framer.skipped()
    }

    fn transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let poll = self.poll.as_mut()?;
        let group = self.groups.get(poll.group)?;
        let bytes = Request::new(self.config.address, group).ok()?.emit();
        poll.attempts = poll.attempts.saturating_add(1);
        poll.requests = poll.requests.saturating_add(1);
        self.active = true;
        // Whatever is buffered belongs to an earlier exchange.
        self.framer.clear();
        self.state = State::Waiting {
            deadline: now.checked_add(self.config.timeout).unwrap_or(now),
        };
        Some(bytes)
    }

    fn on_timeout(&mut self, now: Instant) {
        let Some(poll) = self.poll.as_mut() else {
            self.state = State::Idle { next_poll: now };
            return;
        };
        if poll.attempts <= self.config.retries {
            self.state = State::Due { at: now };
            return;
        }
        let reason = match poll.last_error {
            Some(error) => Reason::BadResponse {
                error,
                attempts: poll.attempts,
            },
            None => Reason::NoResponse {
                attempts: poll.attempts,
            },
        };
        self.fail_group(reason);
        self.next_group(now);
    }

    fn on_response(&mut self, response: Result<Response, Error>, now: Instant) {
        let Some(poll) = self.poll.as_mut() else {
            return;
        };
        let Some(group) = self.groups.get(poll.group) else {
            return;
        };
        match response {
            Ok(response) => {
                let asked = |r: &&Register| group.contains(&r.id);
                if !response.registers.is_empty() && !response.registers.iter().any(|r| asked(&r)) {
                    // The answer to another request (a late one, after a retry went out).
                    self.stale = self.stale.saturating_add(1);
                    return;
                }
                for &id in group {
                    match response.registers.iter().find(|r| r.id == id) {
                        Some(r) => poll.registers.push(r.clone()),
                        None => poll.failures.push(Failure {
                            register: id,
                            reason: Reason::NotInResponse,
                        }),
                    }
                }
                self.next_group(now);
            }
            Err(error) => {
                poll.last_error = Some(error);
                if poll.attempts <= self.config.retries {
                    // The meter has finished talking (the stop byte came): ask again at once.
                    self.state = State::Due { at: now };
                } else {
                    let attempts = poll.attempts;
                    self.fail_group(Reason::BadResponse { error, attempts });
                    self.next_group(now);
                }
            }
        }
    }

    fn fail_group(&mut self, reason: Reason) {
        let Some(poll) = self.poll.as_mut() else {
            return;
        };
        if let Some(group) = self.groups.get(poll.group) {
            poll.failures
                .extend(group.iter().map(|&register| Failure { register, reason }));
        }
    }

    fn next_group(&mut self, now: Instant) {
        let Some(poll) = self.poll.as_mut() else {
            return;
        };
        poll.group = poll.group.saturating_add(1);
        poll.attempts = 0;
        poll.last_error = None;
        if poll.group < self.groups.len() {
            self.state = State::Due { at: now };
            return;
        }
        let Some(poll) = self.poll.take() else {
            return;
        };
        let next = poll
            .started
            .checked_add(self.config.interval)
            .unwrap_or(now)
            .max(now);
        self.state = State::Idle { next_poll: next };
        self.events.push_back(Event::Poll(Poll {
            started: poll.started,
            finished: now,
            registers: poll.registers,
            failures: poll.failures,
            requests: poll.requests,
        }));
    }
}

#[cfg(test)]
mod tests;

//! The state both segment reassemblers keep: the joined bytes of one message and whether it is
//! idle, collecting or complete. What a segment is, and when a message starts or ends, are the
//! link layer's rules.

/// One message being joined from segments, described by `M` (its stream offset, segment
/// count and whatever else the link layer records).
#[derive(Debug, Clone)]
pub struct Assembly<M> {
    buf: Vec<u8>,
    state: State<M>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State<M> {
    Idle,
    Collecting(M),
    Complete(M),
}

impl<M> Default for Assembly<M> {
    fn default() -> Self {
        Assembly {
            buf: Vec::new(),
            state: State::Idle,
        }
    }
}

impl<M: Copy> Assembly<M> {
    /// Forgets the message completed by the previous segment, if any: call first for every
    /// segment.
    pub fn next_segment(&mut self) {
        if let State::Complete(_) = self.state {
            self.state = State::Idle;
            self.buf.clear();
        }
    }

    /// The message waiting for further segments.
    pub fn collecting(&self) -> Option<M> {
        match self.state {
            State::Collecting(m) => Some(m),
            _ => None,
        }
    }

    /// Bytes joined so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no bytes are joined.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends a segment's part of the message.
    pub fn extend(&mut self, part: &[u8]) {
        self.buf.extend_from_slice(part);
    }

    /// Drops the bytes joined so far, keeping the state until the next
    /// [`update`](Self::update) (a new message cuts short the one in progress).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Records the message after a segment: complete when it was the `last`, else waiting for
    /// more.
    pub fn update(&mut self, message: M, last: bool) {
        self.state = if last {
            State::Complete(message)
        } else {
            State::Collecting(message)
        };
    }

    /// The message completed by the last segment, with its bytes.
    pub fn complete(&self) -> Option<(&[u8], M)> {
        match self.state {
            State::Complete(m) => Some((&self.buf, m)),
            _ => None,
        }
    }

    /// True while a message waits for further segments.
    pub fn in_progress(&self) -> bool {
        matches!(self.state, State::Collecting(_))
    }

    /// Drops everything; returns the message that was waiting for further segments, if any.
    pub fn abandon(&mut self) -> Option<M> {
        let unfinished = self.collecting();
        self.state = State::Idle;
        self.buf.clear();
        unfinished
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_collected_completed_and_forgotten_at_the_next_segment() {
        let mut a = Assembly::<u8>::default();
        a.next_segment();
        a.extend(&[1, 2]);
        a.update(1, false);
        assert_eq!(
            (a.collecting(), a.in_progress(), a.len()),
            (Some(1), true, 2)
        );
        assert!(a.complete().is_none());
        a.next_segment();
        a.extend(&[3]);
        a.update(2, true);
        assert_eq!(a.complete(), Some((&[1, 2, 3][..], 2)));
        assert!(!a.in_progress() && a.collecting().is_none());
        a.next_segment();
        assert!(a.complete().is_none() && a.is_empty());
    }

    #[test]
    fn clearing_and_abandoning_drop_the_bytes_and_abandon_names_the_unfinished_message() {
        let mut a = Assembly::<u8>::default();
        a.extend(&[1, 2]);
        a.update(7, false);
        a.clear();
        assert_eq!((a.collecting(), a.len()), (Some(7), 0));
        a.extend(&[9]);
        a.update(8, false);
        assert_eq!(a.abandon(), Some(8));
        assert!(a.is_empty() && !a.in_progress());
        a.extend(&[4]);
        a.update(9, true);
        assert_eq!(a.abandon(), None, "a complete message is not unfinished");
        assert!(a.complete().is_none());
    }
}

//! The sink's own bounded queue, between the bus (which must never wait) and the one write in
//! flight, with an optional disk spool.
//!
//! An entry is the line protocol of one reading (one or more lines joined by `\n`). The memory
//! queue holds at most `capacity` entries:
//!
//! - without a spool, an entry pushed into a full queue evicts the oldest one, which is counted
//!   in `SinkStats::dropped`;
//! - with a spool, the oldest chunk (up to one batch) is written to a file in the spool folder
//!   instead. Files are written to a temporary name and renamed, so a crash never leaves half a
//!   file under a spool name. The writer sends spool files, oldest first, before the memory
//!   queue; a file is deleted only once all its entries are settled (delivered or rejected).
//!   The spool is bounded by `max_bytes`: beyond it the oldest files are deleted and their
//!   entries counted as dropped.
//!
//! At shutdown, what could not be delivered is spooled (and sent at the next start), or counted
//! as dropped without a spool. Files left by a previous run are picked up when the queue opens.
//!
//! Spool files are plain line protocol, one reading's lines per paragraph (readings separated by
//! an empty line, which InfluxDB skips), named `<sequence:20>-<readings>-<precision>.lp`; the
//! precision in the name is the one the timestamps were written with, so changing `precision`
//! between runs does not corrupt spooled points.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use smart_meter_core::stats::SinkStats;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{error, warn};

use super::line_protocol::Precision;

/// Where and how much to spool.
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// The folder (created if missing).
    pub dir: PathBuf,
    /// Upper bound of the spool's total size in bytes.
    pub max_bytes: u64,
}

/// A spool file waiting to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolFile {
    /// Its path.
    pub path: PathBuf,
    seq: u64,
    entries: usize,
    bytes: u64,
    precision: Precision,
}

/// Entries taken for one write.
#[derive(Debug)]
pub struct Batch {
    /// One reading's line protocol each.
    pub entries: Vec<String>,
    /// The precision their timestamps are written in.
    pub precision: Precision,
    /// The spool file they came from, deleted once the batch is settled.
    pub file: Option<SpoolFile>,
}

#[derive(Default)]
struct State {
    mem: VecDeque<String>,
    /// When the oldest entry in `mem` arrived (approximately: kept across partial takes).
    since: Option<Instant>,
    files: VecDeque<SpoolFile>,
    spool_bytes: u64,
    next_seq: u64,
    /// Entries taken by the writer, or on their way to a spool file.
    in_flight: usize,
    closed: bool,
}

impl State {
    fn queued(&self) -> usize {
        self.mem.len() + self.files.iter().map(|f| f.entries).sum::<usize>() + self.in_flight
    }
}

/// The bounded queue. Shared by the receive loop (push) and the writer (next_batch, settle).
pub struct Queue {
    state: Mutex<State>,
    ready: Notify,
    closed: Notify,
    capacity: usize,
    batch_size: usize,
    precision: Precision,
    spool: Option<SpoolConfig>,
    stats: Arc<SinkStats>,
    name: String,
}

impl Queue {
    /// A queue of at most `capacity` entries in memory (at least 1), handing out batches of at
    /// most `batch_size`. With a spool, the folder is created and files left in it are queued
    /// first.
    ///
    /// # Errors
    /// When the spool folder cannot be created or listed.
    pub fn open(
        name: &str,
        capacity: usize,
        batch_size: usize,
        precision: Precision,
        spool: Option<SpoolConfig>,
        stats: Arc<SinkStats>,
    ) -> std::io::Result<Self> {
        let mut state = State::default();
        if let Some(sp) = &spool {
            std::fs::create_dir_all(&sp.dir)?;
            let files = scan_spool(&sp.dir)?;
            state.next_seq = files.last().map_or(0, |f| f.seq.saturating_add(1));
            state.spool_bytes = files.iter().map(|f| f.bytes).sum();
            state.files = files.into();
        }
        let q = Queue {
            state: Mutex::new(state),
            ready: Notify::new(),
            closed: Notify::new(),
            capacity: capacity.max(1),
            batch_size: batch_size.max(1),
            precision,
            spool,
            stats,
            name: name.to_string(),
        };
        q.publish(&q.lock());
        Ok(q)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue inconsistent in a way that
        // matters more than losing the sink, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, st: &State) {
        let q = i64::try_from(st.queued()).unwrap_or(i64::MAX);
        self.stats.queued.store(q, Ordering::Relaxed);
    }

    fn drop_entries(&self, n: usize) {
        self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Entries waiting in memory, in spool files or in flight.
    pub fn len(&self) -> usize {
        self.lock().queued()
    }

    /// True when nothing waits anywhere.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one reading's lines. Never waits for the destination; with a spool it may write a
    /// file.
    pub async fn push(&self, entry: String) {
        let overflow = {
            let mut st = self.lock();
            if st.mem.is_empty() {
                st.since = Some(Instant::now());
            }
            st.mem.push_back(entry);
            let mut overflow = None;
            if st.mem.len() > self.capacity {
                if self.spool.is_some() {
                    let n = self.batch_size.min(self.capacity);
                    let chunk: Vec<String> = st.mem.drain(..n).collect();
                    st.in_flight += chunk.len();
                    overflow = Some(chunk);
                } else {
                    st.mem.pop_front();
                    self.drop_entries(1);
                }
            }
            self.publish(&st);
            overflow
        };
        if let Some(chunk) = overflow {
            let n = chunk.len();
            self.spool_chunk(chunk, self.precision).await;
            let mut st = self.lock();
            st.in_flight = st.in_flight.saturating_sub(n);
            self.publish(&st);
        }
        self.ready.notify_one();
    }

    /// Marks the input as ended: the writer drains and then gets `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
        self.closed.notify_waiters();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Sleeps for `d`, or less when the queue closes meanwhile.
    pub async fn sleep_unless_closed(&self, d: Duration) {
        let closed = self.closed.notified();
        if self.is_closed() {
            return;
        }
        tokio::select! {
            _ = closed => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    /// The next batch: a spool file if any, else up to `batch_size` entries from memory once
    /// there are `batch_size` of them, the oldest has waited `flush_interval`, or the input has
    /// ended. `None` once the input ended and nothing is left.
    pub async fn next_batch(&self, flush_interval: Duration) -> Option<Batch> {
        enum Step {
            File(SpoolFile),
            Take(Batch),
            End,
            Wait(Option<Instant>),
        }
        loop {
            let step = {
                let mut st = self.lock();
                if let Some(file) = st.files.pop_front() {
                    st.in_flight += file.entries;
                    Step::File(file)
                } else if st.mem.is_empty() {
                    if st.closed {
                        Step::End
                    } else {
                        Step::Wait(None)
                    }
                } else {
                    let due = st.since.map(|s| s + flush_interval);
                    let now = Instant::now();
                    if st.mem.len() >= self.batch_size || st.closed || due.is_none_or(|d| d <= now)
                    {
                        let n = self.batch_size.min(st.mem.len());
                        let entries: Vec<String> = st.mem.drain(..n).collect();
                        st.in_flight += entries.len();
                        if st.mem.is_empty() {
                            st.since = None;
                        }
                        self.publish(&st);
                        Step::Take(Batch {
                            entries,
                            precision: self.precision,
                            file: None,
                        })
                    } else {
                        Step::Wait(due)
                    }
                }
            };
            match step {
                Step::File(file) => {
                    if let Some(batch) = self.read_file(file).await {
                        return Some(batch);
                    }
                }
                Step::Take(batch) => return Some(batch),
                Step::End => return None,
                Step::Wait(Some(d)) => {
                    tokio::select! {
                        _ = self.ready.notified() => {}
                        _ = tokio::time::sleep_until(d) => {}
                    }
                }
                Step::Wait(None) => self.ready.notified().await,
            }
        }
    }

    async fn read_file(&self, file: SpoolFile) -> Option<Batch> {
        let path = file.path.clone();
        let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(path)).await;
        let text = match read {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                error!(sink = %self.name, file = %file.path.display(), error = %e,
                    "Cannot read a spool file; its readings are lost.");
                self.settle_file(&file, file.entries, 0).await;
                self.drop_entries(file.entries);
                return None;
            }
            Err(e) => {
                error!(sink = %self.name, error = %e, "Spool reader failed.");
                self.settle_file(&file, file.entries, 0).await;
                self.drop_entries(file.entries);
                return None;
            }
        };
        let entries = split_entries(&text);
        {
            let mut st = self.lock();
            st.in_flight = st.in_flight.saturating_sub(file.entries) + entries.len();
            self.publish(&st);
        }
        if entries.is_empty() {
            self.settle_file(&file, 0, 0).await;
            return None;
        }
        Some(Batch {
            entries,
            precision: file.precision,
            file: Some(file),
        })
    }

    /// The writer is done with `batch` (every entry delivered or rejected): forget it and delete
    /// its spool file.
    pub async fn settle(&self, batch: Batch) {
        match &batch.file {
            Some(f) => self.settle_file(f, batch.entries.len(), f.bytes).await,
            None => {
                let mut st = self.lock();
                st.in_flight = st.in_flight.saturating_sub(batch.entries.len());
                self.publish(&st);
            }
        }
    }

    async fn settle_file(&self, file: &SpoolFile, entries: usize, bytes: u64) {
        let path = file.path.clone();
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
        if let Ok(Err(e)) = removed {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(sink = %self.name, file = %file.path.display(), error = %e,
                    "Cannot delete a sent spool file; its readings may be sent twice.");
            }
        }
        let mut st = self.lock();
        st.in_flight = st.in_flight.saturating_sub(entries);
        st.spool_bytes = st.spool_bytes.saturating_sub(bytes.max(file.bytes));
        self.publish(&st);
    }

    /// The writer gives up at shutdown: `rest` (undelivered entries of `batch`) and everything
    /// still in memory go to the spool, or are counted as dropped without one. Returns how many
    /// entries were saved to the spool and how many were dropped.
    pub async fn give_up(&self, batch: Batch, rest: Vec<String>) -> (usize, usize) {
        let taken = batch.entries.len();
        let mem: Vec<String> = {
            let mut st = self.lock();
            let mem: Vec<String> = st.mem.drain(..).collect();
            st.since = None;
            st.in_flight += mem.len();
            mem
        };
        let mem_len = mem.len();
        // A spool file batch stays on disk as it is and is sent again at the next start.
        let (kept, rest) = match &batch.file {
            Some(f) if self.spool.is_some() => (f.entries, Vec::new()),
            _ => (0, rest),
        };
        let pending = rest.len() + mem_len;
        let mut saved = 0;
        if self.spool.is_some() {
            saved += self.spool_chunk(rest, batch.precision).await;
            for chunk in mem.chunks(self.batch_size) {
                saved += self.spool_chunk(chunk.to_vec(), self.precision).await;
            }
        } else {
            self.drop_entries(pending);
        }
        let mut st = self.lock();
        st.in_flight = st.in_flight.saturating_sub(taken + mem_len);
        self.publish(&st);
        // spool_chunk counts its own failures as dropped.
        (kept + saved, pending.saturating_sub(saved))
    }

    /// Writes entries to a new spool file; returns how many were saved. Failures are counted as
    /// dropped.
    async fn spool_chunk(&self, entries: Vec<String>, precision: Precision) -> usize {
        let Some(sp) = &self.spool else {
            self.drop_entries(entries.len());
            return 0;
        };
        let n = entries.len();
        if n == 0 {
            return 0;
        }
        let seq = {
            let mut st = self.lock();
            let s = st.next_seq;
            st.next_seq = s.saturating_add(1);
            s
        };
        let dir = sp.dir.clone();
        let written =
            tokio::task::spawn_blocking(move || write_spool_file(&dir, seq, precision, &entries))
                .await;
        let file = match written {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                error!(sink = %self.name, dir = %sp.dir.display(), error = %e,
                    "Cannot write to the spool; readings are dropped.");
                self.stats.set_last_error(Some(format!("spool: {e}")));
                self.drop_entries(n);
                return 0;
            }
            Err(e) => {
                error!(sink = %self.name, error = %e, "Spool writer failed.");
                self.drop_entries(n);
                return 0;
            }
        };
        let mut evicted = Vec::new();
        {
            let mut st = self.lock();
            st.spool_bytes = st.spool_bytes.saturating_add(file.bytes);
            let at = st.files.iter().position(|f| f.seq > file.seq);
            match at {
                Some(i) => st.files.insert(i, file),
                None => st.files.push_back(file),
            }
            while st.spool_bytes > sp.max_bytes {
                let Some(old) = st.files.pop_front() else {
                    break;
                };
                st.spool_bytes = st.spool_bytes.saturating_sub(old.bytes);
                evicted.push(old);
            }
            self.publish(&st);
        }
        let mut lost = 0;
        for old in evicted {
            lost += old.entries;
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(old.path)).await;
        }
        if lost > 0 {
            self.drop_entries(lost);
            warn!(sink = %self.name, dropped = lost, max_bytes = sp.max_bytes,
                "Spool is full; the oldest spooled readings were dropped.");
        }
        n
    }
}

/// Splits a spool file into entries (paragraphs).
pub fn split_entries(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(|e| e.trim_matches('\n'))
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

fn file_name(seq: u64, entries: usize, precision: Precision) -> String {
    format!("{seq:020}-{entries}-{}.lp", precision.as_str())
}

fn parse_name(name: &str) -> Option<(u64, usize, Precision)> {
    let stem = name.strip_suffix(".lp")?;
    let mut parts = stem.splitn(3, '-');
    let seq = parts.next()?;
    let entries = parts.next()?;
    let precision = Precision::parse(parts.next()?)?;
    if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((seq.parse().ok()?, entries.parse().ok()?, precision))
}

fn write_spool_file(
    dir: &Path,
    seq: u64,
    precision: Precision,
    entries: &[String],
) -> std::io::Result<SpoolFile> {
    let name = file_name(seq, entries.len(), precision);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut body = entries.join("\n\n");
    body.push('\n');
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(SpoolFile {
        path,
        seq,
        entries: entries.len(),
        bytes: body.len() as u64,
        precision,
    })
}

/// Spool files in `dir`, oldest first; leftover temporary files are removed.
fn scan_spool(dir: &Path) -> std::io::Result<Vec<SpoolFile>> {
    let mut files = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') && name.ends_with(".lp.tmp") {
            let _ = std::fs::remove_file(item.path());
            continue;
        }
        let Some((seq, entries, precision)) = parse_name(name) else {
            continue;
        };
        let bytes = item.metadata().map(|m| m.len()).unwrap_or(0);
        files.push(SpoolFile {
            path: item.path(),
            seq,
            entries,
            bytes,
            precision,
        });
    }
    files.sort_by_key(|f| f.seq);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn stats() -> Arc<SinkStats> {
        Arc::new(SinkStats::new(Arc::new(AtomicU64::new(0))))
    }

    fn queue(cap: usize, batch: usize, spool: Option<&Path>, stats: &Arc<SinkStats>) -> Queue {
        Queue::open(
            "test",
            cap,
            batch,
            Precision::Ms,
            spool.map(|d| SpoolConfig {
                dir: d.to_path_buf(),
                max_bytes: 1 << 20,
            }),
            stats.clone(),
        )
        .unwrap()
    }

    fn dropped(s: &SinkStats) -> u64 {
        s.dropped.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn a_full_queue_without_spool_drops_the_oldest_and_counts_it() {
        let s = stats();
        let q = queue(3, 10, None, &s);
        for i in 0..5 {
            q.push(format!("m x={i}i")).await;
        }
        assert_eq!(dropped(&s), 2);
        assert_eq!(s.queued.load(Ordering::Relaxed), 3);
        q.close();
        let b = q.next_batch(Duration::from_secs(60)).await.unwrap();
        assert_eq!(b.entries, ["m x=2i", "m x=3i", "m x=4i"]);
        q.settle(b).await;
        assert!(q.next_batch(Duration::ZERO).await.is_none());
        assert_eq!(s.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn batches_wait_for_size_or_the_flush_interval() {
        let s = stats();
        let q = queue(100, 2, None, &s);
        q.push("a x=1i".into()).await;
        let early = tokio::time::timeout(
            Duration::from_millis(50),
            q.next_batch(Duration::from_secs(60)),
        )
        .await;
        assert!(early.is_err(), "one entry must wait for the interval");
        q.push("a x=2i".into()).await;
        q.push("a x=3i".into()).await;
        let b = q.next_batch(Duration::from_secs(60)).await.unwrap();
        assert_eq!(b.entries.len(), 2);
        q.settle(b).await;
        let t0 = std::time::Instant::now();
        let b = q.next_batch(Duration::from_millis(80)).await.unwrap();
        assert_eq!(b.entries, ["a x=3i"]);
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn overflow_goes_to_the_spool_and_comes_back_first_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = stats();
        let q = queue(4, 2, Some(dir.path()), &s);
        for i in 0..9 {
            q.push(format!("m x={i}i\nn y={i}i")).await;
        }
        assert_eq!(dropped(&s), 0);
        assert_eq!(q.len(), 9);
        let names: Vec<String> = {
            let mut v: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names,
            [
                "00000000000000000000-2-ms.lp",
                "00000000000000000001-2-ms.lp",
                "00000000000000000002-2-ms.lp"
            ]
        );
        let text = std::fs::read_to_string(dir.path().join(&names[0])).unwrap();
        assert_eq!(text, "m x=0i\nn y=0i\n\nm x=1i\nn y=1i\n");
        q.close();
        let mut got = Vec::new();
        while let Some(b) = q.next_batch(Duration::ZERO).await {
            got.extend(b.entries.iter().cloned());
            q.settle(b).await;
        }
        let want: Vec<String> = (0..9).map(|i| format!("m x={i}i\nn y={i}i")).collect();
        assert_eq!(got, want);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(s.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn spool_files_survive_a_restart_and_keep_their_precision() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("00000000000000000007-2-s.lp"),
            "m x=1i 1\n\nm x=2i 2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".00000000000000000008-1-s.lp.tmp"), "m x=").unwrap();
        std::fs::write(dir.path().join("unrelated.txt"), "keep").unwrap();
        let s = stats();
        let q = queue(10, 10, Some(dir.path()), &s);
        assert_eq!(s.queued.load(Ordering::Relaxed), 2);
        assert!(!dir.path().join(".00000000000000000008-1-s.lp.tmp").exists());
        q.push("m x=3i 3000".into()).await;
        q.close();
        let b = q.next_batch(Duration::ZERO).await.unwrap();
        assert_eq!(b.precision, Precision::S);
        assert_eq!(b.entries, ["m x=1i 1", "m x=2i 2"]);
        q.settle(b).await;
        let b = q.next_batch(Duration::ZERO).await.unwrap();
        assert_eq!(b.precision, Precision::Ms);
        q.settle(b).await;
        assert!(q.next_batch(Duration::ZERO).await.is_none());
        assert!(dir.path().join("unrelated.txt").exists());
    }

    #[tokio::test]
    async fn giving_up_at_shutdown_spools_everything_left() {
        let dir = tempfile::tempdir().unwrap();
        let s = stats();
        let q = queue(100, 2, Some(dir.path()), &s);
        for i in 0..5 {
            q.push(format!("m x={i}i")).await;
        }
        q.close();
        let b = q.next_batch(Duration::ZERO).await.unwrap();
        let rest = b.entries[1..].to_vec();
        let (saved, dropped) = q.give_up(b, rest).await;
        assert_eq!((saved, dropped), (4, 0));
        // Spooled readings still count as queued: they wait for the next start.
        assert_eq!(s.queued.load(Ordering::Relaxed), 4);
        drop(q);
        let q = queue(100, 10, Some(dir.path()), &s);
        q.close();
        let mut got = Vec::new();
        while let Some(b) = q.next_batch(Duration::ZERO).await {
            got.extend(b.entries.iter().cloned());
            q.settle(b).await;
        }
        assert_eq!(got, ["m x=1i", "m x=2i", "m x=3i", "m x=4i"]);
    }

    #[tokio::test]
    async fn giving_up_without_a_spool_counts_the_loss() {
        let s = stats();
        let q = queue(100, 2, None, &s);
        for i in 0..5 {
            q.push(format!("m x={i}i")).await;
        }
        q.close();
        let b = q.next_batch(Duration::ZERO).await.unwrap();
        let rest = b.entries.clone();
        assert_eq!(q.give_up(b, rest).await, (0, 5));
        assert_eq!(dropped(&s), 5);
        assert_eq!(s.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn the_spool_is_bounded_by_size_dropping_the_oldest_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = stats();
        let q = Queue::open(
            "test",
            1,
            1,
            Precision::Ms,
            Some(SpoolConfig {
                dir: dir.path().to_path_buf(),
                max_bytes: 20,
            }),
            s.clone(),
        )
        .unwrap();
        for i in 0..6 {
            q.push(format!("m x={i}i")).await; // 7 bytes per file
        }
        // 5 entries overflowed to the spool; only 2 files (14 bytes) fit in 20 bytes.
        assert_eq!(dropped(&s), 3);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        q.close();
        let mut got = Vec::new();
        while let Some(b) = q.next_batch(Duration::ZERO).await {
            got.extend(b.entries.iter().cloned());
            q.settle(b).await;
        }
        assert_eq!(got, ["m x=3i", "m x=4i", "m x=5i"]);
    }

    #[test]
    fn spool_names_round_trip() {
        assert_eq!(
            parse_name(&file_name(42, 7, Precision::Us)),
            Some((42, 7, Precision::Us))
        );
        assert_eq!(parse_name("42-7-us.lp"), None);
        assert_eq!(parse_name("00000000000000000042-7-xx.lp"), None);
        assert_eq!(split_entries("a 1\nb 2\n\nc 3\n\n\n"), ["a 1\nb 2", "c 3"]);
    }
}

//! A bounded FIFO of byte records that a sink holds while its destination is unreachable,
//! optionally backed by an append-only file (`spool_dir`) so a restart or crash loses nothing.
//!
//! Records are handed out with [`Queue::take`] and removed with [`Queue::ack`] once the
//! destination confirmed them; acknowledgements may come in any order, the queue advances over
//! the acknowledged prefix. Any sink can use it: records are opaque bytes (the MQTT sink stores
//! one encoded reading per record).
//!
//! # Bounds
//! - Without a spool, at most `capacity` records are held; a push beyond that drops the oldest
//!   record (counted in the return value) — recent readings are worth more than old ones.
//! - With a spool, every record is appended to `<spool_dir>/<name>.spool` before it is queued;
//!   at most `capacity` records are also kept in memory, the rest are read back from the file as
//!   the queue drains. The file is bounded by `max_bytes`: beyond it the oldest records are
//!   dropped.
//!
//! # File format and crash safety
//! `<name>.spool` is a sequence of records `len: u32 LE | crc32(data): u32 LE | data`.
//! `<name>.pos` holds, as decimal text, the byte offset of the oldest unacknowledged record; it
//! is replaced atomically (write + rename) whenever that offset advances. Records are written
//! with one `write` each, so they survive a crash of the process (not necessarily a power
//! loss; [`Queue::close`] syncs to disk). On open, a torn last record (bad length or CRC) is cut
//! off. After a crash, records acknowledged since the last `.pos` update are delivered again —
//! at-least-once, like QoS 1. The file is truncated whenever the queue runs empty, and
//! compacted when the acknowledged prefix grows large.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Longest record accepted from a spool file (a larger length field means corruption).
const MAX_RECORD: u32 = 64 * 1024 * 1024;

/// Compact the spool file when this many bytes at its start are acknowledged.
const COMPACT_AFTER: u64 = 16 * 1024 * 1024;

/// Where and how big the spool is.
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// Folder for the files (created if missing).
    pub dir: PathBuf,
    /// File name stem, unique per sink (the sink's name).
    pub name: String,
    /// Largest size of the unacknowledged part of the file.
    pub max_bytes: u64,
}

struct Entry {
    seq: u64,
    data: Vec<u8>,
    /// Offset of this record in the spool file; `None` when it is only in memory (no spool, or
    /// writing it failed).
    start: Option<u64>,
    taken: bool,
    acked: bool,
}

struct Spool {
    file: File,
    pos_path: PathBuf,
    /// Offset of the oldest unacknowledged record.
    head: u64,
    /// End of the last complete record.
    tail: u64,
    /// Offset of the first record not loaded into memory (== tail when all are loaded).
    unloaded_from: u64,
    /// Records in the file after `unloaded_from`.
    unloaded: usize,
    max_bytes: u64,
}

/// The queue. See the module docs.
pub struct Queue {
    mem: VecDeque<Entry>,
    /// Records in `mem` not acknowledged yet (acknowledged ones behind an unacknowledged
    /// record stay as empty placeholders until the prefix clears).
    live: usize,
    /// Index in `mem` of the first record not yet taken.
    cursor: usize,
    next_seq: u64,
    capacity: usize,
    spool: Option<Spool>,
}

/// A record handed out by [`Queue::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Pass this to [`Queue::ack`].
    pub seq: u64,
    /// The record.
    pub data: Vec<u8>,
}

impl Queue {
    /// An in-memory queue of at most `capacity` records (at least 1).
    pub fn memory(capacity: usize) -> Queue {
        Queue {
            mem: VecDeque::new(),
            live: 0,
            cursor: 0,
            next_seq: 0,
            capacity: capacity.max(1),
            spool: None,
        }
    }

    /// A queue backed by a spool file; records left there by a previous run are queued first.
    ///
    /// # Errors
    /// When the folder or files cannot be created, read or written.
    pub fn open(capacity: usize, spool: &SpoolConfig) -> io::Result<Queue> {
        fs::create_dir_all(&spool.dir)?;
        let data_path = spool.dir.join(format!("{}.spool", spool.name));
        let pos_path = spool.dir.join(format!("{}.pos", spool.name));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data_path)?;
        let len = file.metadata()?.len();
        let head = match fs::read_to_string(&pos_path) {
            Ok(t) => t.trim().parse::<u64>().unwrap_or(0).min(len),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        // Find the complete records after head; cut off a torn tail.
        let mut offsets = Vec::new();
        let mut at = head;
        file.seek(SeekFrom::Start(head))?;
        let mut reader = io::BufReader::new(&mut file);
        while let Some(size) = read_record_len(&mut reader, len - at)? {
            at += size;
            offsets.push(at);
        }
        drop(reader);
        if at < len {
            file.set_len(at)?;
        }
        let mut q = Queue {
            mem: VecDeque::new(),
            live: 0,
            cursor: 0,
            next_seq: 0,
            capacity: capacity.max(1),
            spool: Some(Spool {
                file,
                pos_path,
                head,
                tail: at,
                unloaded_from: head,
                unloaded: offsets.len(),
                max_bytes: spool.max_bytes.max(1),
            }),
        };
        let cap = q.capacity;
        q.refill(cap)?;
        Ok(q)
    }

    /// Records not yet acknowledged (in memory and on disk).
    pub fn len(&self) -> usize {
        self.live + self.spool.as_ref().map_or(0, |s| s.unloaded)
    }

    /// Whether every record has been acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a spool file backs the queue.
    pub fn is_spooled(&self) -> bool {
        self.spool.is_some()
    }

    /// Appends a record. Returns how many records were dropped to make room (or because they
    /// could not be kept), and the error when appending to the spool file failed: the record is
    /// then kept in memory only, or dropped and counted when memory is full.
    pub fn push(&mut self, data: Vec<u8>) -> (u64, Option<io::Error>) {
        let mut dropped = 0u64;
        let mut error = None;
        let seq = self.next_seq;
        match &mut self.spool {
            None => {
                if self.live >= self.capacity {
                    self.drop_oldest_waiting();
                    dropped += 1;
                }
                self.next_seq += 1;
                self.live += 1;
                self.mem.push_back(Entry {
                    seq,
                    data,
                    start: None,
                    taken: false,
                    acked: false,
                });
            }
            Some(spool) => {
                let written = append_record(spool, &data);
                let mem_full = self.live >= self.capacity;
                match written {
                    Ok(end) => {
                        if mem_full || spool.unloaded > 0 {
                            spool.unloaded += 1;
                        } else {
                            spool.unloaded_from = end;
                            self.next_seq += 1;
                            self.live += 1;
                            let start = end - record_size(data.len());
                            self.mem.push_back(Entry {
                                seq,
                                data,
                                start: Some(start),
                                taken: false,
                                acked: false,
                            });
                        }
                    }
                    Err(e) => {
                        if mem_full || spool.unloaded > 0 {
                            dropped += 1;
                        } else {
                            self.next_seq += 1;
                            self.live += 1;
                            self.mem.push_back(Entry {
                                seq,
                                data,
                                start: None,
                                taken: false,
                                acked: false,
                            });
                        }
                        error = Some(e);
                    }
                }
                // Bound the file: drop the oldest records beyond max_bytes.
                while let Some(s) = &self.spool {
                    if s.tail.saturating_sub(s.head) <= s.max_bytes || self.mem.is_empty() {
                        break;
                    }
                    self.drop_oldest();
                    dropped += 1;
                    if let Err(e) = self.advance_head() {
                        error.get_or_insert(e);
                    }
                }
            }
        }
        (dropped, error)
    }

    /// Hands out the oldest record not handed out yet.
    pub fn take(&mut self) -> Option<Taken> {
        let e = self.mem.get_mut(self.cursor)?;
        e.taken = true;
        self.cursor += 1;
        Some(Taken {
            seq: e.seq,
            data: e.data.clone(),
        })
    }

    /// Marks a handed-out record as delivered. Unknown sequence numbers (records dropped
    /// meanwhile) are ignored.
    ///
    /// # Errors
    /// When the spool position cannot be saved or the file not read or compacted.
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        let Some(front) = self.mem.front().map(|e| e.seq) else {
            return Ok(());
        };
        let Some(idx) = seq.checked_sub(front) else {
            return Ok(());
        };
        let Ok(idx) = usize::try_from(idx) else {
            return Ok(());
        };
        match self.mem.get_mut(idx) {
            Some(e) if e.taken && !e.acked => {
                e.acked = true;
                e.data = Vec::new();
                self.live -= 1;
            }
            _ => return Ok(()),
        }
        let mut advanced = false;
        while self.mem.front().is_some_and(|e| e.acked) {
            self.pop_front();
            advanced = true;
        }
        if advanced {
            self.advance_head()?;
        }
        Ok(())
    }

    /// Saves the position and syncs the spool file to disk.
    ///
    /// # Errors
    /// When writing fails.
    pub fn close(&mut self) -> io::Result<()> {
        if let Some(s) = &mut self.spool {
            save_pos(&s.pos_path, s.head)?;
            s.file.sync_data()?;
        }
        Ok(())
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.mem.pop_front() {
            self.cursor = self.cursor.saturating_sub(1);
            if !e.acked {
                self.live -= 1;
            }
        }
    }

    fn drop_oldest(&mut self) {
        self.pop_front();
    }

    /// Drops the oldest record not handed out yet: one in flight is being delivered and will
    /// be acknowledged, so dropping it would lose nothing and count a loss that did not happen.
    /// Only when every record is in flight, the oldest of those. (Memory-only queues: the
    /// records before `cursor` are the ones handed out.)
    fn drop_oldest_waiting(&mut self) {
        match self.mem.remove(self.cursor) {
            Some(e) => {
                if !e.acked {
                    self.live -= 1;
                }
            }
            None => self.pop_front(),
        }
    }

    /// Moves the spool head to the first record still queued, refills memory from the file,
    /// and truncates or compacts the file.
    fn advance_head(&mut self) -> io::Result<()> {
        let Some(s) = &mut self.spool else {
            return Ok(());
        };
        // Records only in memory (failed writes) have no place in the file.
        let new_head = self
            .mem
            .iter()
            .find_map(|e| e.start)
            .unwrap_or(s.unloaded_from);
        s.head = new_head.max(s.head);
        if self.mem.is_empty() && s.unloaded == 0 {
            // Empty: start the file over.
            s.file.set_len(0)?;
            s.head = 0;
            s.tail = 0;
            s.unloaded_from = 0;
            save_pos(&s.pos_path, 0)?;
            return Ok(());
        }
        save_pos(&s.pos_path, s.head)?;
        if s.head >= COMPACT_AFTER && s.head * 2 >= s.tail {
            self.compact()?;
        }
        let room = self.capacity.saturating_sub(self.live);
        self.refill(room)
    }

    /// Loads up to `n` records from the file into memory, numbering them on.
    fn refill(&mut self, n: usize) -> io::Result<()> {
        let Some(s) = &mut self.spool else {
            return Ok(());
        };
        let count = n.min(s.unloaded);
        if count == 0 {
            return Ok(());
        }
        s.file.seek(SeekFrom::Start(s.unloaded_from))?;
        let mut reader = io::BufReader::new(&mut s.file);
        let mut at = s.unloaded_from;
        let mut loaded = Vec::with_capacity(count);
        for _ in 0..count {
            let data = read_record(&mut reader)?;
            at += record_size(data.len());
            loaded.push((data, at));
        }
        drop(reader);
        s.file.seek(SeekFrom::End(0))?;
        s.unloaded_from = at;
        s.unloaded -= count;
        // Sequence numbers are given as records enter memory, so those in memory are always
        // consecutive (which `ack` relies on).
        for (data, end) in loaded {
            self.live += 1;
            let start = end - record_size(data.len());
            self.mem.push_back(Entry {
                seq: self.next_seq,
                data,
                start: Some(start),
                taken: false,
                acked: false,
            });
            self.next_seq += 1;
        }
        Ok(())
    }

    fn compact(&mut self) -> io::Result<()> {
        let Some(s) = &mut self.spool else {
            return Ok(());
        };
        let shift = s.head;
        let mut rest = Vec::new();
        s.file.seek(SeekFrom::Start(shift))?;
        s.file.read_to_end(&mut rest)?;
        s.file.seek(SeekFrom::Start(0))?;
        s.file.write_all(&rest)?;
        s.file.set_len(rest.len() as u64)?;
        s.file.seek(SeekFrom::End(0))?;
        s.head = 0;
        s.tail -= shift;
        s.unloaded_from -= shift;
        for e in &mut self.mem {
            if let Some(start) = &mut e.start {
                *start = start.saturating_sub(shift);
            }
        }
        save_pos(&s.pos_path, 0)
    }
}

fn record_size(len: usize) -> u64 {
    8 + len as u64
}

fn append_record(s: &mut Spool, data: &[u8]) -> io::Result<u64> {
    let len = u32::try_from(data.len())
        .ok()
        .filter(|l| *l <= MAX_RECORD)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
    let mut buf = Vec::with_capacity(data.len() + 8);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&CRC.checksum(data).to_le_bytes());
    buf.extend_from_slice(data);
    s.file.seek(SeekFrom::Start(s.tail))?;
    if let Err(e) = s.file.write_all(&buf) {
        // Do not leave half a record behind.
        let _ = s.file.set_len(s.tail);
        return Err(e);
    }
    s.tail += buf.len() as u64;
    Ok(s.tail)
}

/// Checks the next record; returns its size, or `None` at the end or at a torn record.
fn read_record_len(r: &mut impl Read, remaining: u64) -> io::Result<Option<u64>> {
    if remaining < 8 {
        return Ok(None);
    }
    let mut head = [0u8; 8];
    r.read_exact(&mut head)?;
    let [a, b, c, d, e, f, g, h] = head;
    let len = u32::from_le_bytes([a, b, c, d]);
    let crc = u32::from_le_bytes([e, f, g, h]);
    if len > MAX_RECORD || u64::from(len) > remaining - 8 {
        return Ok(None);
    }
    let mut data = vec![0u8; len as usize];
    r.read_exact(&mut data)?;
    if CRC.checksum(&data) != crc {
        return Ok(None);
    }
    Ok(Some(record_size(data.len())))
}

fn read_record(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 8];
    r.read_exact(&mut head)?;
    let [a, b, c, d, ..] = head;
    let len = u32::from_le_bytes([a, b, c, d]);
    if len > MAX_RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "spool record too large",
        ));
    }
    let mut data = vec![0u8; len as usize];
    r.read_exact(&mut data)?;
    Ok(data)
}

fn save_pos(path: &Path, pos: u64) -> io::Result<()> {
    let tmp = path.with_extension("pos.tmp");
    fs::write(&tmp, pos.to_string())?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &Path, max_bytes: u64) -> SpoolConfig {
        SpoolConfig {
            dir: dir.to_path_buf(),
            name: "s".into(),
            max_bytes,
        }
    }

    fn drain(q: &mut Queue) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = q.take() {
            q.ack(t.seq).unwrap();
            out.push(t.data);
        }
        out
    }

    #[test]
    fn memory_queue_drops_the_oldest_when_full() {
        let mut q = Queue::memory(3);
        for i in 0..5u8 {
            let (dropped, err) = q.push(vec![i]);
            assert!(err.is_none());
            assert_eq!(dropped, u64::from(i >= 3));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(drain(&mut q), [vec![2], vec![3], vec![4]]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_full_memory_queue_drops_the_oldest_waiting_record_not_one_in_flight() {
        let mut q = Queue::memory(3);
        for i in 0..3u8 {
            q.push(vec![i]);
        }
        // Record 0 is being sent when the queue overflows; it arrives after all.
        let in_flight = q.take().unwrap();
        let (dropped, _) = q.push(vec![3]);
        assert_eq!(dropped, 1);
        q.ack(in_flight.seq).unwrap();
        // So the record lost is 1, the oldest still waiting: dropped counts a real loss.
        assert_eq!(drain(&mut q), [vec![2], vec![3]]);
        assert!(q.is_empty());
    }

    #[test]
    fn acknowledgements_out_of_order_advance_over_the_acknowledged_prefix() {
        let mut q = Queue::memory(10);
        for i in 0..3u8 {
            q.push(vec![i]);
        }
        let a = q.take().unwrap();
        let b = q.take().unwrap();
        q.ack(b.seq).unwrap();
        assert_eq!(q.len(), 2);
        q.ack(a.seq).unwrap();
        assert_eq!(q.len(), 1);
        q.ack(12345).unwrap();
        assert_eq!(drain(&mut q), [vec![2]]);
    }

    #[test]
    fn spooled_records_survive_a_restart_and_acknowledged_ones_do_not_return() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut q = Queue::open(2, &spool(dir.path(), 1 << 20)).unwrap();
            for i in 0..6u8 {
                let (dropped, err) = q.push(vec![i; 10]);
                assert_eq!((dropped, err.is_none()), (0, true));
            }
            assert_eq!(q.len(), 6);
            let t = q.take().unwrap();
            q.ack(t.seq).unwrap();
            // Taken but not acknowledged: comes back after the restart.
            let _ = q.take().unwrap();
            q.close().unwrap();
        }
        let mut q = Queue::open(2, &spool(dir.path(), 1 << 20)).unwrap();
        assert_eq!(q.len(), 5);
        let got = drain(&mut q);
        assert_eq!(got, (1..6u8).map(|i| vec![i; 10]).collect::<Vec<_>>());
        assert!(q.is_empty());
        // Empty queue: the file is truncated.
        assert_eq!(fs::metadata(dir.path().join("s.spool")).unwrap().len(), 0);
        drop(q);
        let q = Queue::open(2, &spool(dir.path(), 1 << 20)).unwrap();
        assert!(q.is_empty());
    }

    #[test]
    fn a_torn_last_record_is_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut q = Queue::open(10, &spool(dir.path(), 1 << 20)).unwrap();
            q.push(b"one".to_vec());
            q.push(b"two".to_vec());
            q.close().unwrap();
        }
        let path = dir.path().join("s.spool");
        let mut bytes = fs::read(&path).unwrap();
        let full = bytes.len();
        bytes.truncate(full - 1);
        fs::write(&path, &bytes).unwrap();
        let mut q = Queue::open(10, &spool(dir.path(), 1 << 20)).unwrap();
        assert_eq!(drain(&mut q), [b"one".to_vec()]);
        // A corrupted record (bad CRC) ends the readable part as well.
        drop(q);
        let mut q = Queue::open(10, &spool(dir.path(), 1 << 20)).unwrap();
        q.push(b"abc".to_vec());
        q.push(b"def".to_vec());
        q.close().unwrap();
        drop(q);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        let mut q = Queue::open(10, &spool(dir.path(), 1 << 20)).unwrap();
        assert_eq!(drain(&mut q), [b"abc".to_vec()]);
    }

    #[test]
    fn the_spool_is_bounded_by_size_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        // Each record is 8 + 100 bytes; 350 bytes hold three.
        let mut q = Queue::open(2, &spool(dir.path(), 350)).unwrap();
        let mut dropped = 0;
        for i in 0..6u8 {
            dropped += q.push(vec![i; 100]).0;
        }
        assert_eq!(dropped, 3);
        assert_eq!(q.len(), 3);
        assert_eq!(
            drain(&mut q),
            (3..6u8).map(|i| vec![i; 100]).collect::<Vec<_>>()
        );
    }

    #[test]
    fn records_beyond_memory_are_read_back_from_the_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(3, &spool(dir.path(), 1 << 20)).unwrap();
        let mut expected = Vec::new();
        for i in 0..20u8 {
            q.push(vec![i, i]);
            expected.push(vec![i, i]);
            if i % 4 == 0 {
                // Interleave deliveries with pushes.
                if let Some(t) = q.take() {
                    q.ack(t.seq).unwrap();
                    assert_eq!(t.data, expected.remove(0));
                }
            }
        }
        assert_eq!(drain(&mut q), expected);
    }

    #[test]
    fn large_acknowledged_prefixes_are_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.spool");
        let mut q = Queue::open(4, &spool(dir.path(), u64::MAX)).unwrap();
        let big = vec![7u8; 1024 * 1024];
        // Always one record in flight, so the file never runs empty and is never truncated.
        q.push(big.clone());
        let mut prev = q.take().unwrap();
        for _ in 0..20 {
            q.push(big.clone());
            let t = q.take().unwrap();
            q.ack(prev.seq).unwrap();
            prev = t;
        }
        let len = fs::metadata(&path).unwrap().len();
        assert!(len < 8 * 1024 * 1024, "file not compacted: {len}");
        q.close().unwrap();
        drop(q);
        let mut q = Queue::open(4, &spool(dir.path(), u64::MAX)).unwrap();
        assert_eq!(drain(&mut q), [big]);
    }

    #[test]
    fn a_record_stuck_in_flight_does_not_block_the_records_behind_it() {
        let mut q = Queue::memory(2);
        q.push(b"stuck".to_vec());
        let _stuck = q.take().unwrap();
        for i in 0..10u8 {
            q.push(vec![i]);
            let t = q.take().unwrap();
            assert_eq!(t.data, vec![i]);
            q.ack(t.seq).unwrap();
        }
        assert_eq!(q.len(), 1);
    }
}

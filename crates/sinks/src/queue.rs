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
//!   record still waiting (counted in the return value) — recent readings are worth more than
//!   old ones. Records handed out and not acknowledged yet are never dropped: they are being
//!   delivered, so dropping them would count a loss that does not happen. When every record
//!   is in flight, the new one is kept beyond `capacity` (the consumer bounds what is in
//!   flight).
//! - With a spool, every record is appended to `<spool_dir>/<name>.spool` before it is queued;
//!   at most `capacity` records are also kept in memory, the rest are read back from the file as
//!   the queue drains. The file is bounded by `max_bytes` of records neither acknowledged nor
//!   dropped: beyond it the oldest waiting records are dropped (those in memory first, then the
//!   oldest on disk), again never one in flight.
//! - [`Queue::keeping`] names records to keep on overflow (the SQL sink's aggregate buckets):
//!   among the waiting records in memory, the oldest one it does not keep is dropped; only when
//!   it keeps all of them is the oldest waiting record dropped regardless.
//!
//! # File format and crash safety
//! `<name>.spool` is a sequence of records `len: u32 LE | crc32(data): u32 LE | data`.
//! `<name>.pos` holds, as decimal text, the byte offset of the oldest unacknowledged record; it
//! is replaced atomically (write + rename) whenever that offset advances. Records are written
//! with one `write` each, so they survive a crash of the process (not necessarily a power
//! loss; [`Queue::close`] syncs to disk). On open, a torn last record (bad length or CRC) is cut
//! off. After a crash, records acknowledged since the last `.pos` update are delivered again —
//! at-least-once, like QoS 1. The file is truncated whenever the queue runs empty, and
//! compacted when the acknowledged prefix grows large: the unacknowledged records are written
//! to `<name>.spool.tmp`, `.pos` is set to 0, and the new file is renamed over the old one, so
//! a crash at any point loses nothing (at worst acknowledged records are delivered again).

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
    /// The record; emptied once acknowledged.
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
    /// Bytes of the records in the file neither acknowledged nor dropped.
    pending: u64,
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
    /// Records to keep on overflow while others can be dropped.
    keep: fn(&[u8]) -> bool,
}

fn keep_none(_: &[u8]) -> bool {
    false
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
            keep: keep_none,
        }
    }

    /// The same queue, keeping the records for which `keep` is true on overflow as long as
    /// other waiting records can be dropped instead (see the module docs).
    #[must_use]
    pub fn keeping(mut self, keep: fn(&[u8]) -> bool) -> Queue {
        self.keep = keep;
        self
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
                pending: at - head,
                max_bytes: spool.max_bytes.max(1),
            }),
            keep: keep_none,
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
        if self.spool.is_none() {
            let mut dropped = 0u64;
            if self.live >= self.capacity && self.drop_oldest_waiting() {
                dropped += 1;
            }
            self.mem.push_back(Entry {
                seq: self.next_seq,
                data,
                start: None,
                taken: false,
                acked: false,
            });
            self.next_seq += 1;
            self.live += 1;
            return (dropped, None);
        }
        let (mut dropped, mut error) = match self.append(data) {
            Ok(()) => (0, None),
            Err((lost, e)) => (u64::from(lost), Some(e)),
        };
        // Bound the file: drop the oldest waiting records beyond max_bytes.
        let mut moves_left = self.mem.len().saturating_sub(self.cursor);
        while self.spool.as_ref().is_some_and(|s| s.pending > s.max_bytes) {
            match self.drop_for_room(&mut moves_left) {
                Ok(true) => dropped += 1,
                Ok(false) => break,
                Err((lost, e)) => {
                    dropped += u64::from(lost);
                    error.get_or_insert(e);
                    break;
                }
            }
            if let Err(e) = self.advance_head() {
                error.get_or_insert(e);
            }
        }
        (dropped, error)
    }

    /// Appends a record to the spool file and queues it (in memory when there is room and
    /// nothing waits on disk). When writing fails the record is kept in memory only, or lost
    /// (`true` in the error) when memory is full.
    fn append(&mut self, data: Vec<u8>) -> Result<(), (bool, io::Error)> {
        let Some(spool) = &mut self.spool else {
            return Ok(());
        };
        let written = append_record(spool, &data);
        let to_disk = self.live >= self.capacity || spool.unloaded > 0;
        let start = match written {
            Ok(end) => {
                let size = record_size(data.len());
                spool.pending += size;
                if to_disk {
                    spool.unloaded += 1;
                    return Ok(());
                }
                spool.unloaded_from = end;
                Some(end - size)
            }
            Err(e) if to_disk => return Err((true, e)),
            Err(e) => {
                self.push_mem(data, None);
                return Err((false, e));
            }
        };
        self.push_mem(data, start);
        Ok(())
    }

    fn push_mem(&mut self, data: Vec<u8>, start: Option<u64>) {
        self.mem.push_back(Entry {
            seq: self.next_seq,
            data,
            start,
            taken: false,
            acked: false,
        });
        self.next_seq += 1;
        self.live += 1;
    }

    /// Hands out the oldest record not handed out yet.
    pub fn take(&mut self) -> Option<Taken> {
        // Skip records acknowledged after a release (placeholders).
        while self.mem.get(self.cursor).is_some_and(|e| e.acked) {
            self.cursor += 1;
        }
        let e = self.mem.get_mut(self.cursor)?;
        e.taken = true;
        self.cursor += 1;
        Some(Taken {
            seq: e.seq,
            data: e.data.clone(),
        })
    }

    /// Gives back every record handed out and not acknowledged: they wait again, in their
    /// order, and [`Queue::take`] hands them out anew. For consumers that abandon a delivery
    /// (a destination that went away), so that an overflow meanwhile drops the oldest records
    /// rather than newer ones behind them.
    pub fn release(&mut self) {
        let first = self
            .mem
            .iter()
            .position(|e| !e.acked)
            .unwrap_or(self.mem.len());
        for e in self.mem.iter_mut().take(self.cursor) {
            if !e.acked {
                e.taken = false;
            }
        }
        self.cursor = self.cursor.min(first);
    }

    /// Marks a handed-out record as delivered. Unknown sequence numbers (records dropped
    /// meanwhile) are ignored.
    ///
    /// # Errors
    /// When the spool position cannot be saved or the file not read or compacted.
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        self.ack_all(&[seq])
    }

    /// [`Queue::ack`] for many records at once (the spool position is saved once).
    ///
    /// # Errors
    /// As [`Queue::ack`].
    pub fn ack_all(&mut self, seqs: &[u64]) -> io::Result<()> {
        for &seq in seqs {
            // Sequence numbers increase along `mem`, with gaps where records were dropped.
            let Ok(idx) = self.mem.binary_search_by_key(&seq, |e| e.seq) else {
                continue;
            };
            if let Some(e) = self.mem.get_mut(idx).filter(|e| e.taken && !e.acked) {
                e.acked = true;
                if let (Some(_), Some(s)) = (e.start, &mut self.spool) {
                    s.pending = s.pending.saturating_sub(record_size(e.data.len()));
                }
                e.data = Vec::new();
                self.live -= 1;
            }
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

    /// The index in `mem` of the record to drop for room: the oldest waiting one not kept,
    /// else the oldest waiting one. Records in flight (before `cursor`) are being delivered
    /// and will be acknowledged, so dropping one would count a loss that does not happen.
    fn victim(&self) -> Option<usize> {
        let mut waiting = self
            .mem
            .iter()
            .enumerate()
            .skip(self.cursor)
            .filter(|(_, e)| !e.acked);
        let oldest = waiting.clone().next().map(|(i, _)| i);
        waiting
            .find(|(_, e)| !(self.keep)(&e.data))
            .map(|(i, _)| i)
            .or(oldest)
    }

    /// Drops the record chosen by [`Queue::victim`]; `false` when every record is in flight.
    fn drop_oldest_waiting(&mut self) -> bool {
        let Some(i) = self.victim() else {
            return false;
        };
        if let Some(e) = self.mem.remove(i) {
            self.live -= 1;
            if let (Some(_), Some(s)) = (e.start, &mut self.spool) {
                s.pending = s.pending.saturating_sub(record_size(e.data.len()));
            }
        }
        true
    }

    /// Spool over its bound: drops the oldest waiting record in memory; a kept one is moved
    /// to the end of the queue instead (re-appended, so the file can shrink from its start),
    /// at most `moves_left` times, then dropped like the others. Without a waiting record in
    /// memory, the oldest record on disk not loaded yet goes. `Ok(false)` when every record
    /// is in flight; the error says whether a record being moved was lost.
    fn drop_for_room(&mut self, moves_left: &mut usize) -> Result<bool, (bool, io::Error)> {
        loop {
            while self.mem.get(self.cursor).is_some_and(|e| e.acked) {
                self.cursor += 1;
            }
            if self.cursor >= self.mem.len() {
                if self.spool.as_ref().is_some_and(|s| s.unloaded > 0) {
                    self.skip_unloaded().map_err(|e| (false, e))?;
                    return Ok(true);
                }
                return Ok(false);
            }
            let Some(e) = self.mem.remove(self.cursor) else {
                return Ok(false);
            };
            self.live -= 1;
            if let (Some(_), Some(s)) = (e.start, &mut self.spool) {
                s.pending = s.pending.saturating_sub(record_size(e.data.len()));
            }
            if *moves_left == 0 || !(self.keep)(&e.data) {
                return Ok(true);
            }
            *moves_left -= 1;
            self.append(e.data)?;
        }
    }

    /// Drops the first record on disk that is not in memory yet.
    fn skip_unloaded(&mut self) -> io::Result<()> {
        let Some(s) = &mut self.spool else {
            return Ok(());
        };
        s.file.seek(SeekFrom::Start(s.unloaded_from))?;
        let mut head = [0u8; 8];
        s.file.read_exact(&mut head)?;
        s.file.seek(SeekFrom::End(0))?;
        let [a, b, c, d, ..] = head;
        let size = record_size(u32::from_le_bytes([a, b, c, d]) as usize);
        s.unloaded_from += size;
        s.unloaded -= 1;
        s.pending = s.pending.saturating_sub(size);
        Ok(())
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
            s.pending = 0;
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
        // Crash-safe order: the unacknowledged records go to a new file first; then `.pos`
        // moves to 0 (a crash from here until the rename re-reads the old file from its start:
        // acknowledged records are delivered again, none is lost); then the new file replaces
        // the old one in one rename.
        let data_path = s.pos_path.with_extension("spool");
        let tmp_path = s.pos_path.with_extension("spool.tmp");
        let mut tmp = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)?;
        tmp.write_all(&rest)?;
        tmp.sync_data()?;
        save_pos(&s.pos_path, 0)?;
        fs::rename(&tmp_path, &data_path)?;
        tmp.seek(SeekFrom::End(0))?;
        s.file = tmp;
        s.head = 0;
        s.tail -= shift;
        s.unloaded_from -= shift;
        for e in &mut self.mem {
            if let Some(start) = &mut e.start {
                *start = start.saturating_sub(shift);
            }
        }
        Ok(())
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
        assert!(!dir.path().join("s.spool.tmp").exists());
    }

    #[test]
    fn a_crash_between_the_compaction_steps_repeats_records_but_loses_none() {
        // The state a crash leaves after `.pos` went to 0 and before the compacted file was
        // renamed into place: the old file, read from its start.
        let dir = tempfile::tempdir().unwrap();
        {
            let mut q = Queue::open(8, &spool(dir.path(), 1 << 20)).unwrap();
            for i in 0..4u8 {
                q.push(vec![i; 5]);
            }
            let t = q.take().unwrap();
            q.ack(t.seq).unwrap();
            // A half-written compacted file is left behind too.
            fs::write(dir.path().join("s.spool.tmp"), [1, 2, 3]).unwrap();
            drop(q);
        }
        fs::write(dir.path().join("s.pos"), "0").unwrap();
        let mut q = Queue::open(8, &spool(dir.path(), 1 << 20)).unwrap();
        assert_eq!(
            drain(&mut q),
            [vec![0; 5], vec![1; 5], vec![2; 5], vec![3; 5]]
        );
    }

    #[test]
    fn records_in_flight_are_never_dropped_and_acknowledge_after_a_drop_behind_them() {
        let mut q = Queue::memory(3);
        for i in 0..3u8 {
            q.push(vec![i]);
        }
        let a = q.take().unwrap();
        let b = q.take().unwrap();
        // Record 2 is the only one waiting: it goes, records 0 and 1 stay in flight.
        assert_eq!(q.push(vec![3]).0, 1);
        let c = q.take().unwrap();
        assert_eq!(c.data, vec![3]);
        // Every record in flight: the new one is kept beyond the capacity, nothing dropped.
        assert_eq!(q.push(vec![4]).0, 0);
        assert_eq!(q.len(), 4);
        // Acknowledgements find their records across the gap left by the drop.
        q.ack_all(&[c.seq, a.seq]).unwrap();
        q.ack(b.seq).unwrap();
        assert_eq!(drain(&mut q), [vec![4]]);
        assert!(q.is_empty());
    }

    fn is_kept(data: &[u8]) -> bool {
        data.first() == Some(&b'k')
    }

    #[test]
    fn kept_records_survive_overflow_while_others_can_go() {
        let mut q = Queue::memory(3).keeping(is_kept);
        q.push(b"k1".to_vec());
        q.push(b"r1".to_vec());
        q.push(b"k2".to_vec());
        assert_eq!(q.push(b"r2".to_vec()).0, 1);
        assert_eq!(q.push(b"r3".to_vec()).0, 1);
        assert_eq!(
            drain(&mut q),
            [b"k1".to_vec(), b"k2".to_vec(), b"r3".to_vec()]
        );
        // Only kept records waiting: the oldest of them goes.
        let mut q = Queue::memory(2).keeping(is_kept);
        for r in [b"k1", b"k2", b"k3"] {
            q.push(r.to_vec());
        }
        assert_eq!(drain(&mut q), [b"k2".to_vec(), b"k3".to_vec()]);
    }

    #[test]
    fn an_overfull_spool_drops_waiting_unkept_records_not_those_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        // 8 + 10 bytes per record; 60 bytes hold three.
        let mut q = Queue::open(10, &spool(dir.path(), 60))
            .unwrap()
            .keeping(is_kept);
        q.push(b"r000000000".to_vec());
        q.push(b"k000000000".to_vec());
        let in_flight = q.take().unwrap();
        q.push(b"r111111111".to_vec());
        // Over the bound: r0 is in flight and k0 kept (moved to the end), so r1 goes.
        assert_eq!(q.push(b"r222222222".to_vec()).0, 1);
        assert_eq!(q.len(), 3);
        q.ack(in_flight.seq).unwrap();
        q.close().unwrap();
        drop(q);
        // The dropped record does not come back after a restart.
        let mut q = Queue::open(10, &spool(dir.path(), 60)).unwrap();
        assert_eq!(
            drain(&mut q),
            [b"r222222222".to_vec(), b"k000000000".to_vec()]
        );
    }

    #[test]
    fn an_overfull_spool_drops_from_disk_when_memory_holds_only_records_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(1, &spool(dir.path(), 60)).unwrap();
        q.push(b"a000000000".to_vec());
        let in_flight = q.take().unwrap();
        q.push(b"b000000000".to_vec());
        q.push(b"c000000000".to_vec());
        // Memory holds only `a`, in flight; the oldest record on disk, `b`, goes.
        assert_eq!(q.push(b"d000000000".to_vec()).0, 1);
        assert_eq!(q.len(), 3);
        q.ack(in_flight.seq).unwrap();
        assert_eq!(
            drain(&mut q),
            [b"c000000000".to_vec(), b"d000000000".to_vec()]
        );
        assert_eq!(fs::metadata(dir.path().join("s.spool")).unwrap().len(), 0);
    }

    #[test]
    fn a_spool_holding_only_kept_records_still_keeps_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.spool");
        let mut q = Queue::open(10, &spool(dir.path(), 60))
            .unwrap()
            .keeping(is_kept);
        let mut dropped = 0;
        for i in 0..20u8 {
            dropped += q.push(vec![b'k', i, 0, 0, 0, 0, 0, 0, 0, 0]).0;
        }
        assert_eq!((dropped, q.len()), (17, 3));
        let got: Vec<u8> = drain(&mut q).iter().map(|r| r[1]).collect();
        assert_eq!(got, [17, 18, 19]);
        assert_eq!(fs::metadata(path).unwrap().len(), 0);
    }

    #[test]
    fn released_records_are_handed_out_again_and_overflow_drops_the_oldest_of_them() {
        let mut q = Queue::memory(3);
        for i in 0..3u8 {
            q.push(vec![i]);
        }
        let a = q.take().unwrap();
        let b = q.take().unwrap();
        q.release();
        // 0 and 1 wait again, so an overflow drops 0 rather than 2.
        assert_eq!(q.push(vec![3]).0, 1);
        assert_eq!(q.take().unwrap().data, vec![1]);
        // Stale sequence numbers of the dropped record are ignored.
        q.ack_all(&[a.seq, b.seq]).unwrap();
        assert_eq!(drain(&mut q), [vec![2], vec![3]]);
        assert!(q.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(2, &spool(dir.path(), 1 << 20)).unwrap();
        for i in 0..4u8 {
            q.push(vec![i]);
        }
        let t0 = q.take().unwrap();
        let _t1 = q.take().unwrap();
        q.ack(t0.seq).unwrap();
        q.release();
        assert_eq!(drain(&mut q), [vec![1], vec![2], vec![3]]);
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

//! A node's simulated disk: what it flushed survives a crash, what it only staged does not.
//!
//! Writes the replica asks for (`Effects::persist`) are staged first. Orders and staff actions
//! are flushed at once — they are acknowledged to a person — while sync data received from peers
//! waits for the periodic flush, like sled's background flush. A crash drops what is staged.
//! Books whose appended chunks outgrow their last snapshot are compacted, as the node does.

use lawmesh_sync::ids::{BookId, NodeKey};
use lawmesh_sync::replica::{ColdMarker, Persist};
use std::collections::BTreeMap;

/// One book on disk: a snapshot followed by appended chunks.
#[derive(Debug, Default, Clone)]
pub(crate) struct StoredBook {
    pub(crate) bytes: Vec<u8>,
    /// Bytes of the last snapshot (0 if none).
    snapshot_len: usize,
    /// Chunks appended since.
    chunks: u32,
}

/// A node's disk.
#[derive(Debug, Default)]
pub(crate) struct Storage {
    pub(crate) books: BTreeMap<BookId, StoredBook>,
    pub(crate) states: BTreeMap<(NodeKey, BookId), Vec<u8>>,
    /// Markers of settled books, saved beside them so a restart need not read them (as the
    /// node does). Valid for the stored bytes they were made from: any write to the book drops
    /// its marker first.
    pub(crate) markers: BTreeMap<BookId, ColdMarker>,
    staged: Vec<Persist>,
    /// A flush is scheduled.
    pub(crate) flush_due: bool,
    /// Bytes on disk now.
    pub(crate) bytes: u64,
    /// The most bytes on disk at any time.
    pub(crate) peak: u64,
    /// Writes lost in crashes.
    pub(crate) lost_writes: u64,
}

/// Compact a book when its chunks since the last snapshot pass this many and outweigh it.
const COMPACT_AFTER_CHUNKS: u32 = 256;

impl Storage {
    /// Stage writes; returns true if there is something to flush.
    pub(crate) fn stage(&mut self, persist: Vec<Persist>) -> bool {
        for p in &persist {
            if let Persist::BookChunk { book, .. } | Persist::BookSnapshot { book, .. } = p {
                self.markers.remove(book);
            }
        }
        self.staged.extend(persist);
        !self.staged.is_empty()
    }

    /// Flush everything staged; returns the books that should be compacted now.
    pub(crate) fn flush(&mut self) -> Vec<BookId> {
        let mut compact = Vec::new();
        for p in std::mem::take(&mut self.staged) {
            if let Some(book) = self.write(p) {
                compact.push(book);
            }
        }
        self.flush_due = false;
        compact.sort();
        compact.dedup();
        compact
    }

    /// Write one item to disk (a compaction snapshot is written this way, flushed at once).
    pub(crate) fn write(&mut self, p: Persist) -> Option<BookId> {
        if let Persist::BookChunk { book, .. } | Persist::BookSnapshot { book, .. } = &p {
            self.markers.remove(book);
        }
        match p {
            Persist::BookChunk { book, bytes } => {
                self.bytes += bytes.len() as u64;
                let b = self.books.entry(book.clone()).or_default();
                b.bytes.extend_from_slice(&bytes);
                b.chunks += 1;
                let grown = b.bytes.len() - b.snapshot_len;
                let due = b.chunks >= COMPACT_AFTER_CHUNKS && grown > b.snapshot_len;
                self.peak = self.peak.max(self.bytes);
                return due.then_some(book);
            }
            Persist::BookSnapshot { book, bytes } => {
                let b = self.books.entry(book).or_default();
                self.bytes = self.bytes - b.bytes.len() as u64 + bytes.len() as u64;
                b.snapshot_len = bytes.len();
                b.chunks = 0;
                b.bytes = bytes;
            }
            Persist::SyncState { peer, book, bytes } => {
                let old = self.states.insert((peer, book), bytes.clone());
                self.bytes = self.bytes - old.map_or(0, |o| o.len() as u64) + bytes.len() as u64;
            }
            Persist::Roster(_) => {}
        }
        self.peak = self.peak.max(self.bytes);
        None
    }

    /// The node lost power: staged writes are gone.
    pub(crate) fn crash(&mut self) {
        self.lost_writes += self.staged.len() as u64;
        self.staged.clear();
        self.flush_due = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lawmesh_sync::ids::Channel;

    fn book() -> BookId {
        BookId {
            area: "qiuchang".into(),
            channel: Channel::Consultation,
            period: "2027-03".into(),
        }
    }

    #[test]
    fn a_crash_loses_what_was_staged_and_keeps_what_was_flushed() {
        let mut s = Storage::default();
        s.stage(vec![Persist::BookChunk {
            book: book(),
            bytes: vec![1, 2, 3],
        }]);
        s.flush();
        s.stage(vec![Persist::BookChunk {
            book: book(),
            bytes: vec![4],
        }]);
        s.crash();
        assert_eq!(s.books[&book()].bytes, vec![1, 2, 3]);
        assert_eq!(s.lost_writes, 1);
        assert_eq!(s.bytes, 3);
    }

    #[test]
    fn a_write_to_a_book_drops_its_cold_marker_first() {
        let mut s = Storage::default();
        let marker = ColdMarker {
            heads: Vec::new(),
            hash: [7; 32],
            orders: Vec::new(),
            last_stamp: Default::default(),
        };
        s.markers.insert(book(), marker.clone());
        s.stage(vec![Persist::BookChunk {
            book: book(),
            bytes: vec![1],
        }]);
        assert!(s.markers.is_empty(), "staging a chunk must drop the marker");
        s.crash();
        assert!(s.markers.is_empty(), "a lost chunk does not bring it back");
        s.markers.insert(book(), marker);
        s.write(Persist::BookSnapshot {
            book: book(),
            bytes: vec![2],
        });
        assert!(s.markers.is_empty(), "a compaction snapshot drops it too");
    }
}

//! The node's durable store, on sled.
//!
//! Trees:
//! - `chunks`: `book id \0 seq(u64 BE)` → bytes. A book's stored form is its chunks in order:
//!   a snapshot (after compaction) followed by incremental automerge changes.
//! - `sync`: `peer key(32) book id` → encoded automerge sync state.
//! - `meta`: `roster` → the newest signed roster taken from a peer.
//! - `cold`: `book id` → the [`ColdMarker`] of a settled book, so a restart need not read it.
//!   Removed before any write to that book.
//! - `quarantine`: the chunks of books that no longer load, moved out of `chunks` under the
//!   same keys (kept for an operator; the node takes the book afresh from its peers).
//!
//! Writes become durable on [`Store::flush`]; the node flushes before it acknowledges anything.

use lawmesh_sync::ids::{BookId, NodeKey};
use lawmesh_sync::replica::{ColdMarker, Persist};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Fault injection, for tests of what a node does when its disk fails: the next writes or
/// flushes of the store fail as a full disk would. Shared by every clone of the store.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    writes: Arc<AtomicU32>,
    flushes: Arc<AtomicU32>,
}

impl Faults {
    /// Make the next `n` writes fail.
    pub fn fail_next(&self, n: u32) {
        self.writes.store(n, Ordering::SeqCst);
    }

    /// Make the next `n` flushes fail (the writes before them succeed).
    pub fn fail_next_flush(&self, n: u32) {
        self.flushes.store(n, Ordering::SeqCst);
    }

    /// Take one injected failure from `counter`, if any are left.
    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Why the store failed. Nothing was acknowledged.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled could not open, read or write (disk full, permissions, corruption, locked by a
    /// running node).
    #[error("store at {path}: {source}; nothing was acknowledged")]
    Sled {
        /// The store's directory.
        path: String,
        /// The underlying error.
        source: sled::Error,
    },
    /// A key in the store is not one this version writes.
    #[error("store at {path}: unreadable entry ({what}); the store may be from another program")]
    Corrupt {
        /// The store's directory.
        path: String,
        /// What was wrong.
        what: String,
    },
}

/// The sled store of one node.
#[derive(Clone, Debug)]
pub struct Store {
    path: String,
    db: sled::Db,
    chunks: sled::Tree,
    sync: sled::Tree,
    meta: sled::Tree,
    cold: sled::Tree,
    quarantine: sled::Tree,
    /// Next chunk number per book, learned on first write (saves a reverse scan per write).
    next_seq: Arc<Mutex<BTreeMap<BookId, u64>>>,
    faults: Faults,
}

/// Everything a node needs to restart.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Book → its stored bytes (snapshot + chunks), in order.
    pub books: BTreeMap<BookId, Vec<u8>>,
    /// Number of chunks per book.
    pub chunk_counts: BTreeMap<BookId, usize>,
    /// (peer, book) → sync state.
    pub sync_states: Vec<(NodeKey, BookId, Vec<u8>)>,
    /// Newest signed roster taken from a peer.
    pub roster: Option<Vec<u8>>,
    /// Markers of settled books.
    pub cold: BTreeMap<BookId, ColdMarker>,
}

impl Store {
    /// Open (or create) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.display().to_string();
        let err = |source| StoreError::Sled {
            path: path.clone(),
            source,
        };
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .cache_capacity(16 << 20)
            .open()
            .map_err(err)?;
        let chunks = db.open_tree("chunks").map_err(err)?;
        let sync = db.open_tree("sync").map_err(err)?;
        let meta = db.open_tree("meta").map_err(err)?;
        let cold = db.open_tree("cold").map_err(err)?;
        let quarantine = db.open_tree("quarantine").map_err(err)?;
        Ok(Store {
            path,
            db,
            chunks,
            sync,
            meta,
            cold,
            quarantine,
            next_seq: Arc::default(),
            faults: Faults::default(),
        })
    }

    /// The store's fault injector (see [`Faults`]).
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    fn injected(&self, counter: &AtomicU32) -> Result<(), StoreError> {
        if Faults::take(counter) {
            let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "injected: disk full");
            return Err(self.err(sled::Error::Io(full)));
        }
        Ok(())
    }

    fn err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    fn book_prefix(book: &BookId) -> Vec<u8> {
        let mut k = book.to_string().into_bytes();
        k.push(0);
        k
    }

    /// Write one effect (not yet durable: call [`Store::flush`]). Returns whether it touched a
    /// book (and so must be flushed before anything is acknowledged).
    pub fn write(&self, p: &Persist) -> Result<bool, StoreError> {
        self.injected(&self.faults.writes)?;
        match p {
            Persist::BookChunk { book, bytes } => {
                self.drop_cold_marker(book)?;
                let prefix = Self::book_prefix(book);
                let known = self.next_seq.lock().ok().and_then(|m| m.get(book).copied());
                let next = match known {
                    Some(n) => n,
                    None => match self.chunks.scan_prefix(&prefix).next_back() {
                        Some(Ok((k, _))) => seq_of(&k, prefix.len()).map_or(0, |s| s + 1),
                        Some(Err(e)) => return Err(self.err(e)),
                        None => 0,
                    },
                };
                let mut key = prefix;
                key.extend_from_slice(&next.to_be_bytes());
                self.chunks
                    .insert(key, bytes.as_slice())
                    .map_err(|e| self.err(e))?;
                if let Ok(mut m) = self.next_seq.lock() {
                    m.insert(book.clone(), next + 1);
                }
                Ok(true)
            }
            Persist::BookSnapshot { book, bytes } => {
                self.drop_cold_marker(book)?;
                let prefix = Self::book_prefix(book);
                let mut batch = sled::Batch::default();
                for kv in self.chunks.scan_prefix(&prefix) {
                    let (k, _) = kv.map_err(|e| self.err(e))?;
                    batch.remove(k);
                }
                let mut key = prefix;
                key.extend_from_slice(&0u64.to_be_bytes());
                batch.insert(key, bytes.as_slice());
                self.chunks.apply_batch(batch).map_err(|e| self.err(e))?;
                if let Ok(mut m) = self.next_seq.lock() {
                    m.insert(book.clone(), 1);
                }
                Ok(true)
            }
            Persist::SyncState { peer, book, bytes } => {
                let mut key = peer.0.to_vec();
                key.extend_from_slice(book.to_string().as_bytes());
                self.sync
                    .insert(key, bytes.as_slice())
                    .map_err(|e| self.err(e))?;
                Ok(false)
            }
            Persist::Roster(bytes) => {
                self.meta
                    .insert("roster", bytes.as_slice())
                    .map_err(|e| self.err(e))?;
                Ok(true)
            }
        }
    }

    /// Remove a book's cold marker before a write to it. Most books have none: looking first
    /// spares sled a logged removal on every chunk.
    fn drop_cold_marker(&self, book: &BookId) -> Result<(), StoreError> {
        let key = book.to_string();
        if self
            .cold
            .contains_key(key.as_bytes())
            .map_err(|e| self.err(e))?
        {
            self.cold.remove(key.as_bytes()).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Make every write so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.injected(&self.faults.flushes)?;
        self.db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Make every write so far durable, blocking.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    /// Read everything back.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut out = Loaded::default();
        for kv in self.chunks.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let Some(split) = k.iter().position(|b| *b == 0) else {
                return Err(self.corrupt("chunk key without separator"));
            };
            let book: BookId = std::str::from_utf8(&k[..split])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| self.corrupt("chunk key is not a book id"))?;
            *out.chunk_counts.entry(book.clone()).or_default() += 1;
            out.books.entry(book).or_default().extend_from_slice(&v);
        }
        for kv in self.sync.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            if k.len() <= 32 {
                return Err(self.corrupt("sync state key too short"));
            }
            let mut peer = [0u8; 32];
            peer.copy_from_slice(&k[..32]);
            let book: BookId = std::str::from_utf8(&k[32..])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| self.corrupt("sync state key is not a book id"))?;
            out.sync_states.push((NodeKey(peer), book, v.to_vec()));
        }
        out.roster = self
            .meta
            .get("roster")
            .map_err(|e| self.err(e))?
            .map(|v| v.to_vec());
        for kv in self.cold.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            // A marker that does not read is only a lost shortcut: the book is read in full.
            let book = std::str::from_utf8(&k)
                .ok()
                .and_then(|s| s.parse::<BookId>().ok());
            if let (Some(book), Some(marker)) = (book, decode_marker(&v)) {
                if out.books.contains_key(&book) {
                    out.cold.insert(book, marker);
                }
            }
        }
        Ok(out)
    }

    /// Save the marker of a settled book (durable at the next flush).
    pub fn put_cold_marker(&self, book: &BookId, marker: &ColdMarker) -> Result<(), StoreError> {
        self.cold
            .insert(book.to_string().as_bytes(), encode_marker(marker))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Is a marker saved for this book?
    pub fn has_cold_marker(&self, book: &BookId) -> bool {
        self.cold
            .contains_key(book.to_string().as_bytes())
            .unwrap_or(false)
    }

    /// Move a book that no longer loads out of the way: its chunks go to the `quarantine` tree
    /// (kept, not deleted), its cold marker and sync states are dropped, so the node can start
    /// and take the book afresh from peers that hold it. Durable at the next flush.
    pub fn quarantine(&self, book: &BookId) -> Result<(), StoreError> {
        let prefix = Self::book_prefix(book);
        // Each quarantine of a book is kept apart: its keys start with a round number one
        // above the highest in use, then the chunk's own key.
        let last = self.quarantine.last().map_err(|e| self.err(e))?;
        let round = last
            .and_then(|(k, _)| Some(u64::from_be_bytes(k.get(..8)?.try_into().ok()?)))
            .map_or(0, |n| n + 1);
        let mut moved = sled::Batch::default();
        for kv in self.chunks.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let mut key = round.to_be_bytes().to_vec();
            key.extend_from_slice(&k);
            self.quarantine.insert(key, v).map_err(|e| self.err(e))?;
            moved.remove(k);
        }
        self.chunks.apply_batch(moved).map_err(|e| self.err(e))?;
        let name = book.to_string();
        self.cold.remove(name.as_bytes()).map_err(|e| self.err(e))?;
        let mut states = sled::Batch::default();
        for kv in self.sync.iter() {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            if k.get(32..) == Some(name.as_bytes()) {
                states.remove(k);
            }
        }
        self.sync.apply_batch(states).map_err(|e| self.err(e))?;
        if let Ok(mut m) = self.next_seq.lock() {
            m.remove(book);
        }
        Ok(())
    }

    /// The books in quarantine.
    pub fn quarantined(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .quarantine
            .iter()
            .keys()
            .filter_map(Result::ok)
            .filter_map(|k| {
                let key = k.get(8..)?;
                let end = key.iter().position(|b| *b == 0)?;
                std::str::from_utf8(&key[..end]).ok().map(str::to_owned)
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Bytes on disk, as sled counts them.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what: what.to_owned(),
        }
    }
}

fn encode_marker(m: &ColdMarker) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + 32 * m.heads.len() + 16 * m.orders.len());
    out.extend_from_slice(&m.hash);
    out.extend_from_slice(&m.last_stamp.ms.to_be_bytes());
    out.extend_from_slice(&m.last_stamp.counter.to_be_bytes());
    out.extend_from_slice(&(m.heads.len() as u32).to_be_bytes());
    for h in &m.heads {
        out.extend_from_slice(&h.0);
    }
    for o in &m.orders {
        out.extend_from_slice(&o.0);
    }
    out
}

fn decode_marker(b: &[u8]) -> Option<ColdMarker> {
    let hash: [u8; 32] = b.get(..32)?.try_into().ok()?;
    let ms = u64::from_be_bytes(b.get(32..40)?.try_into().ok()?);
    let counter = u32::from_be_bytes(b.get(40..44)?.try_into().ok()?);
    let n = u32::from_be_bytes(b.get(44..48)?.try_into().ok()?) as usize;
    let heads_end = 48usize.checked_add(n.checked_mul(32)?)?;
    let mut heads = Vec::with_capacity(n);
    for c in b.get(48..heads_end)?.chunks_exact(32) {
        heads.push(automerge::ChangeHash(c.try_into().ok()?));
    }
    let rest = b.get(heads_end..)?;
    if rest.len() % 16 != 0 {
        return None;
    }
    let mut orders = Vec::with_capacity(rest.len() / 16);
    for c in rest.chunks_exact(16) {
        orders.push(lawmesh_sync::ids::OrderId(c.try_into().ok()?));
    }
    Some(ColdMarker {
        heads,
        hash,
        orders,
        last_stamp: lawmesh_sync::time::Stamp { ms, counter },
    })
}

fn seq_of(key: &[u8], prefix_len: usize) -> Option<u64> {
    let bytes: [u8; 8] = key.get(prefix_len..prefix_len + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lawmesh_sync::ids::Channel;

    fn tax_book() -> BookId {
        BookId {
            area: "qiuchang".into(),
            channel: Channel::Tax,
            period: "2026-12".into(),
        }
    }

    #[test]
    fn a_quarantine_keeps_every_round_and_clears_the_book() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let book = tax_book();
        let other = BookId {
            channel: Channel::Notary,
            ..book.clone()
        };
        let chunk = |b: &BookId, bytes: &[u8]| Persist::BookChunk {
            book: b.clone(),
            bytes: bytes.to_vec(),
        };
        let peer = NodeKey([9; 32]);
        for round in [b"first".as_slice(), b"second".as_slice()] {
            store.write(&chunk(&book, round)).unwrap();
            store
                .write(&Persist::SyncState {
                    peer,
                    book: book.clone(),
                    bytes: vec![1],
                })
                .unwrap();
            store.quarantine(&book).unwrap();
        }
        store.write(&chunk(&other, b"kept")).unwrap();
        let loaded = store.load().unwrap();
        assert!(!loaded.books.contains_key(&book), "the book starts afresh");
        assert_eq!(loaded.books[&other], b"kept");
        assert!(loaded.sync_states.is_empty(), "its sync states are gone");
        let kept: Vec<Vec<u8>> = store
            .quarantine
            .iter()
            .values()
            .map(|v| v.unwrap().to_vec())
            .collect();
        assert_eq!(kept, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(store.quarantined(), vec![book.to_string()]);
    }

    #[test]
    fn chunks_append_in_order_and_a_snapshot_replaces_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let book = tax_book();
        for b in [b"ab".to_vec(), b"cd".to_vec(), b"ef".to_vec()] {
            store
                .write(&Persist::BookChunk {
                    book: book.clone(),
                    bytes: b,
                })
                .unwrap();
        }
        store.flush_blocking().unwrap();
        assert_eq!(store.load().unwrap().books[&book], b"abcdef");
        store
            .write(&Persist::BookSnapshot {
                book: book.clone(),
                bytes: b"XYZ".to_vec(),
            })
            .unwrap();
        store
            .write(&Persist::BookChunk {
                book: book.clone(),
                bytes: b"g".to_vec(),
            })
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.books[&book], b"XYZg");
        assert_eq!(loaded.chunk_counts[&book], 2);
    }

    #[test]
    fn a_store_held_by_another_process_or_unwritable_gives_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = Store::open(&file.join("store")).unwrap_err();
        assert!(
            err.to_string().contains("nothing was acknowledged"),
            "{err}"
        );
    }
}

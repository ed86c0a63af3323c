//! Bringing a node's replica back from its directory and store. One place for the running node
//! and for direct mode (the CLI with no node running), so both take the newest roster, keep
//! settled books cold and skip the ones already marked.

use crate::dir::NodeDir;
use crate::node::NodeError;
use crate::store::Store;
use lawmesh_sync::ids::BookId;
use lawmesh_sync::replica::Replica;
use lawmesh_sync::roster::signed::SignedRoster;
use lawmesh_sync::time::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// A replica restored from disk.
#[derive(Debug)]
pub struct Restored {
    /// The replica, its books and sync states loaded.
    pub replica: Replica,
    /// Stored chunks per book (for compaction).
    pub chunk_counts: BTreeMap<BookId, usize>,
    /// Cold markers were written for books found settled, or damaged books quarantined: flush
    /// before relying on them.
    pub marked: bool,
}

/// Restore the replica of the node in `dir` from `store`, at time `now`.
pub fn restore(
    dir: &NodeDir,
    store: &Store,
    now: Millis,
    rng: &mut impl rand::RngCore,
) -> Result<Restored, NodeError> {
    let loaded = store.load()?;
    let mut roster = dir.roster()?;
    let mut signed = dir.signed.clone();
    if let Some(bytes) = &loaded.roster {
        if let Ok(s) = SignedRoster::decode(bytes) {
            if let Ok(newer) = s.open(&dir.authority, Some(roster.version())) {
                roster = newer;
                signed = s;
            }
        }
    }
    let mut replica = Replica::new(dir.secret.clone(), dir.authority, roster, Some(signed), rng)
        .map_err(|e| NodeError::Replica(e.to_string()))?;
    replica.set_cold_settled(true);
    // One book at a time: a settled book goes cold as soon as it is read, so memory stays
    // near the size of the open books rather than of the whole history.
    let mut markers = loaded.cold;
    let mut quarantined = BTreeSet::new();
    for (book, bytes) in loaded.books {
        if let Some(marker) = markers.remove(&book) {
            replica.load_cold_book(book, bytes, marker);
            continue;
        }
        if let Err(e) = replica.load_book(book.clone(), &bytes, now) {
            // One damaged book must not stop the node taking requests: set it aside (kept in
            // the store's quarantine), and take it afresh from the peers that hold it.
            tracing::error!(book = %book, error = %e, "stored book does not load: quarantined");
            store.quarantine(&book)?;
            quarantined.insert(book);
        }
    }
    for (peer, book, bytes) in &loaded.sync_states {
        if !quarantined.contains(book) {
            replica.load_sync_state(*peer, book.clone(), bytes);
        }
    }
    // Books found settled now are marked, so the next start skips reading them.
    let mut marked = false;
    for (book, _, _) in replica.book_hashes() {
        if let Some(marker) = replica.cold_marker(&book) {
            if !store.has_cold_marker(&book) {
                store.put_cold_marker(&book, marker)?;
                marked = true;
            }
        }
    }
    let mut chunk_counts = loaded.chunk_counts;
    chunk_counts.retain(|b, _| !quarantined.contains(b));
    Ok(Restored {
        replica,
        chunk_counts,
        marked: marked || !quarantined.is_empty(),
    })
}

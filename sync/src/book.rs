//! An order book: one Automerge document holding the signed events of the orders of one origin
//! area, channel and period.
//!
//! The document is a flat map at its root, event id → signed event bytes. Every key is written
//! once and never changed: there are no nested objects that two creators could make twice, and
//! an event written concurrently by two relays is the same bytes under the same key. Beside the
//! document the book keeps an index of decoded events per order, which the fold reads.
//!
//! Incoming changes pass [`Book::receive`], which refuses (and rolls back) any message that
//! deletes or rewrites an event, stores anything but a well-signed event under its own id, or
//! carries an event the caller's check rejects (e.g. one that belongs in another book).

use crate::event::{EventError, EventId, SignedEvent};
use crate::ids::{BookId, OrderId};
use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{
    ActorId, Automerge, ChangeHash, PatchAction, PatchLog, ReadDoc, ScalarValue, Value, ROOT,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use thiserror::Error;

/// A hash of a book's heads: equal hashes mean equal books.
pub type HeadsHash = [u8; 32];

/// Why a book could not be loaded, written or synced.
#[derive(Debug, Error)]
pub enum BookError {
    /// Automerge refused the bytes or the operation.
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// A stored or received event is malformed, forged or stored under the wrong key.
    #[error("event `{key}`: {source}")]
    Event {
        /// The key it was under.
        key: String,
        /// What is wrong.
        source: EventError,
    },
    /// An incoming change deletes or rewrites an existing entry, or writes something that is not
    /// an event: refused, the book is as it was before.
    #[error("refused change to book {book}: {why}")]
    Refused {
        /// The book.
        book: BookId,
        /// What the change tried to do.
        why: String,
    },
}

/// One order book.
#[derive(Debug)]
pub struct Book {
    id: BookId,
    doc: Automerge,
    actor: ActorId,
    orders: BTreeMap<OrderId, Vec<SignedEvent>>,
    event_count: usize,
    saved_heads: Vec<ChangeHash>,
}

impl Book {
    /// A new, empty book written as `actor`.
    pub fn new(id: BookId, actor: ActorId) -> Self {
        let doc = Automerge::new().with_actor(actor.clone());
        Book {
            id,
            doc,
            actor,
            orders: BTreeMap::new(),
            event_count: 0,
            saved_heads: Vec::new(),
        }
    }

    /// Load a book from its stored bytes (a snapshot followed by any incremental chunks), as
    /// `actor`. The events were checked when they arrived, so signatures are not verified again;
    /// each key is still checked against its event's id.
    pub fn load(id: BookId, actor: ActorId, bytes: &[u8]) -> Result<Self, BookError> {
        let doc = Automerge::load(bytes)?.with_actor(actor.clone());
        let mut book = Book {
            id,
            doc,
            actor,
            orders: BTreeMap::new(),
            event_count: 0,
            saved_heads: Vec::new(),
        };
        let mut found = Vec::new();
        for item in book.doc.map_range(ROOT, ..) {
            let automerge::ValueRef::Scalar(automerge::ScalarValueRef::Bytes(bytes)) = &item.value
            else {
                return Err(BookError::Refused {
                    book: book.id.clone(),
                    why: format!("stored key {} is not an event", item.key),
                });
            };
            let ev =
                SignedEvent::decode_stored(&item.key, bytes.as_ref(), false).map_err(|source| {
                    BookError::Event {
                        key: item.key.to_string(),
                        source,
                    }
                })?;
            found.push(ev);
        }
        for ev in found {
            book.index(ev);
        }
        for list in book.orders.values_mut() {
            list.shrink_to_fit();
        }
        book.saved_heads = book.doc.get_heads();
        Ok(book)
    }

    fn index(&mut self, ev: SignedEvent) -> bool {
        let list = self.orders.entry(ev.event.order).or_default();
        if list.iter().any(|e| e.id == ev.id) {
            return false;
        }
        let pos = list.partition_point(|e| {
            (e.event.stamp, e.event.signer, e.id) < (ev.event.stamp, ev.event.signer, ev.id)
        });
        list.insert(pos, ev);
        self.event_count += 1;
        true
    }

    /// The book's id.
    pub fn id(&self) -> &BookId {
        &self.id
    }

    /// Does the book hold this event?
    pub fn contains(&self, order: &OrderId, id: &EventId) -> bool {
        self.orders
            .get(order)
            .is_some_and(|l| l.iter().any(|e| &e.id == id))
    }

    /// Write a local event. Returns false if the book already had it.
    pub fn insert(&mut self, ev: SignedEvent) -> Result<bool, BookError> {
        if self.contains(&ev.event.order, &ev.id) {
            return Ok(false);
        }
        let mut tx = self.doc.transaction();
        tx.put(ROOT, ev.id.key(), ScalarValue::Bytes(ev.bytes().to_vec()))?;
        tx.commit();
        Ok(self.index(ev))
    }

    /// The orders in the book, with their events sorted by (stamp, signer, id).
    pub fn orders(&self) -> impl Iterator<Item = (&OrderId, &[SignedEvent])> {
        self.orders.iter().map(|(id, evs)| (id, evs.as_slice()))
    }

    /// The events of one order, sorted by (stamp, signer, id).
    pub fn events(&self, order: &OrderId) -> Option<&[SignedEvent]> {
        self.orders.get(order).map(Vec::as_slice)
    }

    /// Number of orders.
    pub fn order_count(&self) -> usize {
        self.orders.len()
    }

    /// Number of events.
    pub fn event_count(&self) -> usize {
        self.event_count
    }

    /// The document heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// A hash of the heads, for summaries: equal hashes mean equal books.
    pub fn heads_hash(&self) -> HeadsHash {
        heads_hash(&self.doc.get_heads())
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.saved_heads = self.doc.get_heads();
        self.doc.save()
    }

    /// The changes since the last save (full or incremental), to append to storage. Empty if none.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        let bytes = self.doc.save_after(&self.saved_heads);
        self.saved_heads = self.doc.get_heads();
        bytes
    }

    /// Has the book changed since it was last saved?
    pub fn dirty(&self) -> bool {
        self.saved_heads != self.doc.get_heads()
    }

    /// The next sync message for a peer, if any.
    pub fn generate_sync(&self, state: &mut sync::State) -> Option<sync::Message> {
        if self.nothing_to_send(state) {
            return None;
        }
        self.doc.generate_sync_message(state)
    }

    /// The cases in which automerge's `generate_sync_message` answers `None`, found without
    /// the bloom filter and change search it computes first: we already sent these heads and
    /// either await the answer or the peer has told us it is at the same heads. A peer whose
    /// last sync names changes we lack must get the reset message instead, so that case (and
    /// every other) is left to automerge.
    fn nothing_to_send(&self, state: &sync::State) -> bool {
        if !state.have_responded || state.read_only || state.needs_reset {
            return false;
        }
        let heads = self.doc.get_heads();
        if heads.is_empty() || state.last_sent_heads != heads {
            return false;
        }
        let reset = state
            .their_have
            .as_ref()
            .and_then(|h| h.first())
            .is_some_and(|h| !self.doc.get_missing_deps(&h.last_sync).is_empty());
        !reset && (state.in_flight || state.their_heads.as_ref() == Some(&heads))
    }

    /// Apply a peer's sync message, checking every entry it writes. `check` judges each new
    /// event in the context of this book (e.g. does it belong here). On any refusal nothing of
    /// the message stays in the book. Returns the newly added events.
    pub fn receive(
        &mut self,
        state: &mut sync::State,
        message: sync::Message,
        check: impl Fn(&SignedEvent) -> Result<(), String>,
    ) -> Result<Vec<SignedEvent>, BookError> {
        self.receive_with(state, message, check, None)
    }

    /// [`Book::receive`], skipping signature checks of events a shared cache has seen verified.
    pub fn receive_with(
        &mut self,
        state: &mut sync::State,
        message: sync::Message,
        check: impl Fn(&SignedEvent) -> Result<(), String>,
        verified: Option<&crate::event::SharedVerified>,
    ) -> Result<Vec<SignedEvent>, BookError> {
        let before = self.doc.get_heads();
        let mut log = PatchLog::active();
        self.doc
            .receive_sync_message_log_patches(state, message, &mut log)?;
        let patches = self.doc.make_patches(&mut log);
        match self.vet(patches, &check, verified) {
            Ok(new) => {
                let mut added = Vec::new();
                for ev in new {
                    if self.index(ev.clone()) {
                        added.push(ev);
                    }
                }
                Ok(added)
            }
            Err(why) => {
                self.doc = self.doc.fork_at(&before)?.with_actor(self.actor.clone());
                *state = sync::State::new();
                Err(BookError::Refused {
                    book: self.id.clone(),
                    why,
                })
            }
        }
    }

    fn vet(
        &self,
        patches: Vec<automerge::Patch>,
        check: &impl Fn(&SignedEvent) -> Result<(), String>,
        verified: Option<&crate::event::SharedVerified>,
    ) -> Result<Vec<SignedEvent>, String> {
        let mut new = Vec::new();
        for patch in patches {
            if patch.obj != ROOT {
                return Err("writes inside a nested object".into());
            }
            let (key, value, conflict) = match patch.action {
                PatchAction::PutMap {
                    key,
                    value,
                    conflict,
                } => (key, value.0, conflict),
                PatchAction::DeleteMap { key } => return Err(format!("deletes event {key}")),
                PatchAction::Conflict {
                    prop: automerge::Prop::Map(key),
                } => {
                    // Two writers put the same event under its key concurrently: harmless if
                    // every value is the same bytes.
                    let all = self
                        .doc
                        .get_all(ROOT, key.as_str())
                        .map_err(|e| e.to_string())?;
                    let first = all
                        .first()
                        .and_then(|(v, _)| v.as_bytes().map(<[u8]>::to_vec));
                    if first.is_none() || all.iter().any(|(v, _)| v.as_bytes() != first.as_deref())
                    {
                        return Err(format!("rewrites event {key}"));
                    }
                    continue;
                }
                other => return Err(format!("unexpected operation {other:?}")),
            };
            let Value::Scalar(scalar) = value else {
                return Err(format!("puts an object under {key}"));
            };
            let Some(bytes) = scalar.as_bytes() else {
                return Err(format!("puts a non-event value under {key}"));
            };
            if conflict {
                let all = self
                    .doc
                    .get_all(ROOT, key.as_str())
                    .map_err(|e| e.to_string())?;
                if all.iter().any(|(v, _)| v.as_bytes() != Some(bytes)) {
                    return Err(format!("rewrites event {key}"));
                }
            }
            let ev = match verified {
                Some(cache) => SignedEvent::decode_verified(&key, bytes, cache),
                None => SignedEvent::decode_stored(&key, bytes, true),
            }
            .map_err(|e| e.to_string())?;
            if self.contains(&ev.event.order, &ev.id) {
                continue;
            }
            check(&ev)?;
            new.push(ev);
        }
        Ok(new)
    }
}

/// Hash a set of heads (order-independent).
pub fn heads_hash(heads: &[ChangeHash]) -> HeadsHash {
    let mut sorted: Vec<&ChangeHash> = heads.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for head in sorted {
        h.update(head.0);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventKind};
    use crate::ids::Channel;
    use crate::keys::SecretKey;
    use crate::time::Stamp;

    fn book_id() -> BookId {
        BookId {
            area: "qiuchang".into(),
            channel: Channel::Consultation,
            period: "2026-12".into(),
        }
    }

    fn event(key: &SecretKey, n: u8) -> SignedEvent {
        Event {
            order: OrderId([n; 16]),
            stamp: Stamp {
                ms: 1_000 + u64::from(n),
                counter: 0,
            },
            signer: key.public(),
            kind: EventKind::Message {
                text: format!("message {n}"),
            },
        }
        .sign(key)
    }

    fn sync_into(from: &Book, to: &mut Book) -> Result<(), BookError> {
        let (mut a, mut b) = (sync::State::new(), sync::State::new());
        for _ in 0..10 {
            let m1 = from.generate_sync(&mut a);
            if let Some(m) = m1.clone() {
                to.receive(&mut b, m, |_| Ok(()))?;
            }
            let m2 = to.generate_sync(&mut b);
            if let Some(m) = m2.clone() {
                // `from` is the honest side in these tests; apply without vetting shortcuts.
                let mut from_doc = from.doc.fork();
                from_doc.receive_sync_message(&mut a, m)?;
            }
            if m1.is_none() && m2.is_none() {
                break;
            }
        }
        Ok(())
    }

    #[test]
    fn save_load_round_trip_keeps_every_event() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut book = Book::new(book_id(), ActorId::from(&[1u8; 16][..]));
        for n in 0..20 {
            assert!(book.insert(event(&key, n)).unwrap());
        }
        assert!(
            !book.insert(event(&key, 3)).unwrap(),
            "same event twice is one entry"
        );
        let mut bytes = book.save();
        book.insert(event(&key, 50)).unwrap();
        bytes.extend(book.save_incremental());
        let loaded = Book::load(book_id(), ActorId::from(&[2u8; 16][..]), &bytes).unwrap();
        assert_eq!(loaded.event_count(), 21);
        assert_eq!(loaded.heads_hash(), book.heads_hash());
    }

    #[test]
    fn a_change_that_deletes_or_rewrites_an_event_is_refused_and_rolled_back() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut honest = Book::new(book_id(), ActorId::from(&[1u8; 16][..]));
        honest.insert(event(&key, 1)).unwrap();
        let mut victim = Book::new(book_id(), ActorId::from(&[2u8; 16][..]));
        sync_into(&honest, &mut victim).unwrap();
        assert_eq!(victim.event_count(), 1);
        let good_heads = victim.heads_hash();

        // A malicious peer takes the shared history and deletes the event.
        let mut evil = honest.doc.fork().with_actor(ActorId::from(&[3u8; 16][..]));
        let k = event(&key, 1).id.key();
        let mut tx = evil.transaction();
        tx.delete(ROOT, k.as_str()).unwrap();
        tx.commit();
        let evil_book = Book {
            doc: evil,
            ..Book::new(book_id(), ActorId::from(&[3u8; 16][..]))
        };
        let err = sync_into(&evil_book, &mut victim).unwrap_err();
        assert!(err.to_string().contains("deletes event"), "{err}");
        assert_eq!(victim.heads_hash(), good_heads);
        assert_eq!(victim.event_count(), 1);

        // Or overwrites it with other (validly signed) bytes.
        let mut evil = honest.doc.fork().with_actor(ActorId::from(&[4u8; 16][..]));
        let mut tx = evil.transaction();
        tx.put(
            ROOT,
            k.as_str(),
            ScalarValue::Bytes(event(&key, 2).bytes().to_vec()),
        )
        .unwrap();
        tx.commit();
        let evil_book = Book {
            doc: evil,
            ..Book::new(book_id(), ActorId::from(&[4u8; 16][..]))
        };
        assert!(sync_into(&evil_book, &mut victim).is_err());
        assert_eq!(victim.heads_hash(), good_heads);
    }
}

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
    /// The change chunks of the last received message, exactly as sent, when they are all the
    /// book gained since it was last saved: the next incremental save is these bytes, with no
    /// need to collect the changes out of the document again. Valid while the heads are these.
    received: Option<(Vec<ChangeHash>, Vec<u8>)>,
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
            received: None,
        }
    }

    /// Load a book from its stored bytes (a snapshot followed by any incremental chunks), as
    /// `actor`. The events were checked when they arrived, so signatures are not verified again;
    /// each key is still checked against its event's id.
    pub fn load(id: BookId, actor: ActorId, bytes: &[u8]) -> Result<Self, BookError> {
        let mut book = Book {
            doc: Automerge::load(bytes)?.with_actor(actor.clone()),
            ..Book::new(id, actor)
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
        self.received = None;
        self.doc.save()
    }

    /// The changes since the last save (full or incremental), to append to storage. Empty if none.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        let heads = self.doc.get_heads();
        let received = self.received.take();
        if heads == self.saved_heads {
            return Vec::new();
        }
        let bytes = match received {
            Some((at, bytes)) if at == heads => bytes,
            _ => self.doc.save_after(&self.saved_heads),
        };
        self.saved_heads = heads;
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
        self.received = None;
        let message = match self.take_ack(state, message, &before) {
            Ok(()) => return Ok(Vec::new()),
            Err(message) => message,
        };
        // Keep the message's change chunks to store as they are, if nothing is unsaved or
        // waiting for dependencies now (so they will be all the book gains).
        let raw = (self.saved_heads == before && self.doc.get_missing_deps(&[]).is_empty())
            .then(|| {
                message
                    .changes
                    .iter()
                    .flatten()
                    .copied()
                    .collect::<Vec<u8>>()
            })
            .filter(|raw| !raw.is_empty());
        let mut log = PatchLog::active();
        self.doc
            .receive_sync_message_log_patches(state, message, &mut log)?;
        let patches = self.doc.make_patches(&mut log);
        match self.vet(patches, &check, verified) {
            Ok(new) => {
                // Stored as they are only if every byte is a whole change chunk the document
                // now holds (so the bytes are exactly those changes) and nothing is left
                // waiting: a load of the stored bytes then yields this document.
                if let Some(raw) = raw {
                    if change_chunk_hashes(&raw)
                        .is_some_and(|hashes| self.doc.get_missing_deps(&hashes).is_empty())
                    {
                        self.received = Some((self.doc.get_heads(), raw));
                    }
                }
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

    /// A peer's answer that it now has exactly our heads (no changes, nothing needed) is half
    /// of all sync traffic. Automerge handles it by walking the book's whole history to trim
    /// the hashes it sent; here the state is updated to the same result directly: every change
    /// the book holds is an ancestor of heads equal to ours. Anything else is given back.
    fn take_ack(
        &self,
        state: &mut sync::State,
        message: sync::Message,
        ours: &[ChangeHash],
    ) -> Result<(), sync::Message> {
        if !message.changes.is_empty()
            || !message.need.is_empty()
            || message.heads.is_empty()
            || message.heads != ours
            || state.read_only
            || !self.doc.get_missing_deps(&[]).is_empty()
        {
            return Err(message);
        }
        // As automerge's `receive_sync_message`, step by step, for this case.
        state.in_flight = false;
        if let Some(flags) = message.flags {
            let mut caps = vec![sync::Capability::MessageV2];
            if flags.contains(sync::MessageFlags::SUPPORTS_SYNC_RESET) {
                caps.push(sync::Capability::SyncReset);
            }
            state.their_capabilities = Some(caps);
            if flags.contains(sync::MessageFlags::SYNC_RESET) {
                state.sent_hashes.clear();
            }
            state.peer_read_only = flags.contains(sync::MessageFlags::READ_ONLY);
        }
        state
            .sent_hashes
            .retain(|h| !self.doc.get_missing_deps(&[*h]).is_empty());
        state.last_sent_heads.clone_from(&message.heads);
        state.shared_heads.clone_from(&message.heads);
        state.their_have = Some(message.have);
        state.their_heads = Some(message.heads);
        state.their_need = Some(message.need);
        Ok(())
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

/// The first bytes of every automerge chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The chunk type of a single uncompressed change.
const CHUNK_CHANGE: u8 = 1;

/// The hashes of the changes in `raw`, if it is nothing but whole, uncompressed change chunks
/// with valid checksums (magic, checksum, type, LEB128 length, data; the hash is SHA-256 of
/// type, length and data, and the checksum its first four bytes). `None` for anything else
/// (a document chunk, a compressed or bundled change, a truncated or corrupt chunk).
fn change_chunk_hashes(mut raw: &[u8]) -> Option<Vec<ChangeHash>> {
    let mut hashes = Vec::new();
    while !raw.is_empty() {
        let (magic, rest) = raw.split_first_chunk::<4>()?;
        let (checksum, rest) = rest.split_first_chunk::<4>()?;
        let (&kind, rest) = rest.split_first()?;
        if *magic != CHUNK_MAGIC || kind != CHUNK_CHANGE {
            return None;
        }
        let (len, used) = uleb128(rest)?;
        let end = used.checked_add(usize::try_from(len).ok()?)?;
        let data = rest.get(used..end)?;
        let mut h = Sha256::new();
        h.update([kind]);
        h.update(&rest[..used]);
        h.update(data);
        let hash: [u8; 32] = h.finalize().into();
        if hash[..4] != checksum[..] {
            return None;
        }
        hashes.push(ChangeHash(hash));
        raw = &rest[end..];
    }
    Some(hashes)
}

/// An unsigned LEB128 number at the start of `bytes`: (value, bytes used).
fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
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

    /// One round of sync from `from` into `to` (first message only), storing what `to` saves.
    fn one_message(
        from: &mut Book,
        to: &mut Book,
        a: &mut sync::State,
        b: &mut sync::State,
        stored: &mut Vec<u8>,
    ) -> Option<bool> {
        let m = from.generate_sync(a)?;
        to.receive(b, m, |_| Ok(())).unwrap();
        let as_sent = to.received.is_some();
        stored.extend(to.save_incremental());
        if let Some(reply) = to.generate_sync(b) {
            from.receive(a, reply, |_| Ok(())).unwrap();
        }
        Some(as_sent)
    }

    #[test]
    fn received_changes_stored_as_sent_load_back_to_the_same_book() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut writer = Book::new(book_id(), ActorId::from(&[1u8; 16][..]));
        let mut other = Book::new(book_id(), ActorId::from(&[3u8; 16][..]));
        let mut reader = Book::new(book_id(), ActorId::from(&[2u8; 16][..]));
        let mut stored = Vec::new();
        let (mut a, mut b) = (sync::State::new(), sync::State::new());
        let (mut c, mut d) = (sync::State::new(), sync::State::new());
        // A shared history first: automerge sends its whole document instead of changes when
        // the changes would be over a third of it.
        for n in 0..30 {
            writer.insert(event(&key, 200 + n)).unwrap();
        }
        while one_message(&mut writer, &mut other, &mut c, &mut d, &mut Vec::new()).is_some() {}
        while one_message(&mut writer, &mut reader, &mut a, &mut b, &mut stored).is_some() {}
        let mut verbatim = 0;
        for round in 0..12u8 {
            // Two writers, merged before they reach the reader, so messages carry changes of
            // several actors with dependencies between them.
            writer.insert(event(&key, 2 * round)).unwrap();
            other.insert(event(&key, 2 * round + 1)).unwrap();
            while one_message(&mut other, &mut writer, &mut d, &mut c, &mut Vec::new()).is_some() {}
            while let Some(as_sent) =
                one_message(&mut writer, &mut reader, &mut a, &mut b, &mut stored)
            {
                verbatim += usize::from(as_sent);
            }
            // The reader writes too, between receipts.
            reader.insert(event(&key, 100 + round)).unwrap();
            stored.extend(reader.save_incremental());
        }
        assert!(verbatim >= 6, "messages were stored as sent ({verbatim})");
        assert_eq!(reader.event_count(), 66);
        let loaded = Book::load(book_id(), ActorId::from(&[9u8; 16][..]), &stored).unwrap();
        assert_eq!(loaded.heads_hash(), reader.heads_hash());
        assert_eq!(loaded.event_count(), 66);
    }

    #[test]
    fn a_message_with_trailing_junk_is_not_stored_as_sent() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut writer = Book::new(book_id(), ActorId::from(&[1u8; 16][..]));
        let mut reader = Book::new(book_id(), ActorId::from(&[2u8; 16][..]));
        let (mut a, mut b) = (sync::State::new(), sync::State::new());
        let mut stored = Vec::new();
        // A shared history, so the writer sends changes rather than its whole document.
        for n in 10..20 {
            writer.insert(event(&key, n)).unwrap();
        }
        while one_message(&mut writer, &mut reader, &mut a, &mut b, &mut stored).is_some() {}
        writer.insert(event(&key, 1)).unwrap();
        let mut m = writer.generate_sync(&mut a).unwrap();
        let mut raw: Vec<u8> = m.changes.iter().flatten().copied().collect();
        assert!(change_chunk_hashes(&raw).is_some_and(|h| !h.is_empty()));
        raw.extend([0x85, 0x6f, 0x4a, 0x83, 1, 2, 3, 4, 1, 0]);
        assert_eq!(
            change_chunk_hashes(&raw),
            None,
            "junk chunk has a bad checksum"
        );
        m.changes = raw.into();
        reader.receive(&mut b, m, |_| Ok(())).unwrap();
        assert!(reader.received.is_none(), "junk must not reach the store");
        assert_eq!(reader.event_count(), 11, "the good change is taken");
        stored.extend(reader.save_incremental());
        let loaded = Book::load(book_id(), ActorId::from(&[9u8; 16][..]), &stored).unwrap();
        assert_eq!(loaded.event_count(), 11);
        assert_eq!(loaded.heads_hash(), reader.heads_hash());
    }

    #[test]
    fn an_ack_leaves_the_same_sync_state_as_automerge_would() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut writer = Book::new(book_id(), ActorId::from(&[1u8; 16][..]));
        let mut reader = Book::new(book_id(), ActorId::from(&[2u8; 16][..]));
        let (mut a, mut b) = (sync::State::new(), sync::State::new());
        let mut acks = 0;
        for n in 0..40u8 {
            writer.insert(event(&key, n)).unwrap();
            if n % 3 == 0 {
                reader.insert(event(&key, 100 + n)).unwrap();
            }
            for _ in 0..10 {
                let Some(m) = writer.generate_sync(&mut a) else {
                    break;
                };
                reader.receive(&mut b, m, |_| Ok(())).unwrap();
                let Some(reply) = reader.generate_sync(&mut b) else {
                    break;
                };
                // The writer takes the reply both ways; the states must agree.
                let mut by_automerge = a.clone();
                let mut doc = writer.doc.fork();
                doc.receive_sync_message(&mut by_automerge, reply.clone())
                    .unwrap();
                let taken = writer.take_ack(&mut a.clone(), reply.clone(), &writer.heads());
                if taken.is_ok() {
                    acks += 1;
                }
                writer.receive(&mut a, reply, |_| Ok(())).unwrap();
                assert_eq!(a, by_automerge, "after message {n}");
            }
        }
        assert!(acks >= 20, "the ack path was taken ({acks})");
        assert_eq!(writer.heads_hash(), reader.heads_hash());
    }

    #[test]
    fn nothing_to_send_only_where_automerge_sends_nothing() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut books = [
            Book::new(book_id(), ActorId::from(&[1u8; 16][..])),
            Book::new(book_id(), ActorId::from(&[2u8; 16][..])),
        ];
        let mut states = [sync::State::new(), sync::State::new()];
        let (mut skipped, mut sent) = (0, 0);
        // Both sides write at different paces; messages cross (both generate, then both
        // receive), and each side is asked for messages more often than needed, as the replica
        // does when it relays.
        for n in 0..80u8 {
            if n % 2 == 0 {
                books[0].insert(event(&key, n)).unwrap();
            }
            if n % 3 == 0 {
                books[1].insert(event(&key, 100 + n)).unwrap();
            }
            let mut out: [Vec<sync::Message>; 2] = [Vec::new(), Vec::new()];
            for side in [0, 1, 0, 1] {
                if books[side].nothing_to_send(&states[side]) {
                    skipped += 1;
                    assert!(
                        books[side]
                            .doc
                            .generate_sync_message(&mut states[side].clone())
                            .is_none(),
                        "automerge would have sent something (round {n}, side {side})"
                    );
                }
                if let Some(m) = books[side].generate_sync(&mut states[side]) {
                    sent += 1;
                    out[side].push(m);
                }
            }
            for side in [0, 1] {
                for m in std::mem::take(&mut out[1 - side]) {
                    books[side]
                        .receive(&mut states[side], m, |_| Ok(()))
                        .unwrap();
                }
            }
        }
        for _ in 0..10 {
            for side in [0, 1] {
                if let Some(m) = books[side].generate_sync(&mut states[side]) {
                    books[1 - side]
                        .receive(&mut states[1 - side], m, |_| Ok(()))
                        .unwrap();
                }
            }
        }
        assert!(
            skipped >= 50 && sent >= 50,
            "skipped {skipped}, sent {sent}"
        );
        assert_eq!(books[0].heads_hash(), books[1].heads_hash());
    }

    #[test]
    fn change_chunk_hashes_match_automerge_and_refuse_damage() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut book = Book::new(book_id(), ActorId::from(&[1u8; 16][..]));
        book.insert(event(&key, 1)).unwrap();
        book.save_incremental();
        book.insert(event(&key, 2)).unwrap();
        let chunk = book.save_incremental();
        assert_eq!(change_chunk_hashes(&chunk), Some(book.heads()));
        let mut bad = chunk.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            change_chunk_hashes(&bad),
            None,
            "a changed byte breaks the checksum"
        );
        assert_eq!(
            change_chunk_hashes(&chunk[..chunk.len() - 1]),
            None,
            "truncated"
        );
        assert_eq!(
            change_chunk_hashes(&book.save()),
            None,
            "a document is not a change"
        );
        assert_eq!(change_chunk_hashes(&[]), Some(Vec::new()));
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

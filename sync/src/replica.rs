//! The replica: a sans-IO state machine that holds the books its site is entitled to and syncs
//! them with peers.
//!
//! **Inputs** — every call takes `now` (wall milliseconds) and, where it needs one, an RNG:
//! - [`Replica::create_order`] and [`Replica::act`]: local commands from a kiosk or console;
//! - [`Replica::connected`] / [`Replica::disconnected`]: a peer's link came up or went down;
//! - [`Replica::receive`]: bytes from a peer;
//! - [`Replica::tick`]: the wake-up time asked for has come.
//!
//! **Outputs** — each returns [`Effects`]: bytes to persist, messages to send, orders whose state
//! changed, peers to drop for misbehaving, and the next wake-up. The caller must carry out
//! `persist` (and flush it) **before** `send` and before telling anyone a command succeeded:
//! that is what makes an acknowledged order durable.
//!
//! **Sync** — on connect each side sends a [`Message::Summary`] of the books both may hold
//! (book → hash of heads). Only books whose hashes differ run automerge's sync protocol, one
//! `sync::State` per (peer, book); those states are persisted so a reconnect resumes cheaply.
//! A change received for a book is relayed to every other connected peer entitled to it (store
//! and forward). No message for a book is ever produced for a peer that may not hold it, and an
//! incoming one for such a book is refused.

use crate::book::{Book, BookError};
use crate::codec::DecodeError;
use crate::event::{Event, EventKind, OrderHeader, SignedEvent, MAX_SHORT, MAX_TEXT};
use crate::fold::{fold_order, OrderState, Status};
use crate::ids::{BookId, CaseType, Channel, LawyerId, NodeKey, OrderId, SiteId};
use crate::keys::SecretKey;
use crate::roster::signed::SignedRoster;
use crate::roster::Roster;
use crate::time::{Hlc, Millis};
use crate::wire::Message;
use automerge::sync;
use automerge::ActorId;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// How long to wait for a peer's answer before asking again with a fresh summary.
pub const DEFAULT_RESYNC_AFTER_MS: Millis = 15_000;

/// Something to write to durable storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Append these bytes (automerge changes) to the book's stored chunks.
    BookChunk {
        /// The book.
        book: BookId,
        /// Bytes to append.
        bytes: Vec<u8>,
    },
    /// Replace the book's stored bytes with this compacted snapshot.
    BookSnapshot {
        /// The book.
        book: BookId,
        /// The whole document.
        bytes: Vec<u8>,
    },
    /// The sync state for (peer, book).
    SyncState {
        /// The peer.
        peer: NodeKey,
        /// The book.
        book: BookId,
        /// Encoded `automerge::sync::State`.
        bytes: Vec<u8>,
    },
    /// A newer signed roster.
    Roster(Vec<u8>),
}

/// A message for a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The peer.
    pub to: NodeKey,
    /// The encoded [`Message`].
    pub bytes: Vec<u8>,
}

/// A peer that sent something the replica refused; the caller should close its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The peer.
    pub peer: NodeKey,
    /// What was wrong.
    pub reason: String,
}

/// What the caller must do after an input.
#[derive(Debug, Default)]
#[must_use = "effects must be carried out: persist first, then send"]
pub struct Effects {
    /// Write (and flush) these, in order, before anything else.
    pub persist: Vec<Persist>,
    /// Then send these.
    pub send: Vec<Outgoing>,
    /// Orders whose state may have changed.
    pub changed: BTreeSet<(BookId, OrderId)>,
    /// Peers to disconnect.
    pub refused: Vec<Refusal>,
    /// A newer roster was taken.
    pub roster_updated: bool,
    /// Call [`Replica::tick`] at this time.
    pub wake_at: Option<Millis>,
}

/// A resident's request, as taken at a kiosk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Channel.
    pub channel: Channel,
    /// Case type.
    pub case_type: CaseType,
    /// Live (resident waiting) or queued.
    pub live: bool,
    /// Resident's name.
    pub name: String,
    /// Resident's phone.
    pub phone: String,
    /// The account of the matter.
    pub text: String,
}

/// What a site does to an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The origin sends the order out (发单).
    Offer,
    /// Take the order (接单).
    Accept,
    /// Pass it on to the next tier.
    Decline(String),
    /// Give back a taken order.
    Release(String),
    /// Assign a lawyer (派单).
    Dispatch(LawyerId),
    /// Write in the conversation.
    Message(String),
    /// A party joins the mediation.
    JoinParty(String),
    /// The mediation agreement is signed.
    SignAgreement(String),
    /// Close the case.
    Close(String),
    /// The resident confirms the service.
    Confirm,
    /// The resident withdraws.
    Cancel(String),
    /// Flag for the joint meeting.
    Flag(String),
}

/// Why a local command was refused. Nothing was written.
#[derive(Debug, Error)]
pub enum CommandError {
    /// This site cannot originate orders.
    #[error("site {0} cannot take requests: it has no area in the roster")]
    NoArea(SiteId),
    /// The roster has no such case type.
    #[error("unknown case type `{0}`; see the roster's specialties")]
    UnknownCaseType(CaseType),
    /// A field is too long.
    #[error("{what} is {len} bytes; the limit is {limit}")]
    TooLong {
        /// Field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// No such order here.
    #[error("no order {0} in this node's books")]
    UnknownOrder(OrderId),
    /// The rules do not allow this site that action now.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// The book refused the write.
    #[error(transparent)]
    Book(#[from] BookError),
}

/// A settled book kept as its stored bytes until something needs it (see
/// [`Replica::set_cold_settled`]).
#[derive(Debug)]
struct ColdBook {
    bytes: Vec<u8>,
    marker: ColdMarker,
}

/// What a replica needs to hold a settled book without reading it: saved beside the book by
/// the node, so a restart can skip loading settled history. Valid only for the exact stored
/// bytes it was made from; any write to the book must discard it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColdMarker {
    /// The book's heads.
    pub heads: Vec<automerge::ChangeHash>,
    /// Their hash.
    pub hash: crate::book::HeadsHash,
    /// The orders in the book.
    pub orders: Vec<OrderId>,
    /// The latest event stamp in the book (for the hybrid logical clock).
    pub last_stamp: crate::time::Stamp,
}

#[derive(Debug)]
struct Peer {
    site: SiteId,
    /// Books we sent a sync message for and await an answer, with when.
    awaiting: BTreeMap<BookId, Millis>,
}

/// One site's replica of the mesh.
#[derive(Debug)]
pub struct Replica {
    key: SecretKey,
    me: NodeKey,
    site: SiteId,
    authority: NodeKey,
    roster: Roster,
    signed_roster: Option<SignedRoster>,
    actor: ActorId,
    hlc: Hlc,
    books: BTreeMap<BookId, Book>,
    cold: BTreeMap<BookId, ColdBook>,
    cold_settled: bool,
    order_book: BTreeMap<OrderId, BookId>,
    peers: BTreeMap<NodeKey, Peer>,
    states: BTreeMap<(NodeKey, BookId), sync::State>,
    /// Per order, the next time its state changes by time alone.
    timers: BTreeSet<(Millis, BookId, OrderId)>,
    timer_of: BTreeMap<OrderId, Millis>,
    resync_after: Millis,
    verified: Option<crate::event::SharedVerified>,
}

impl Replica {
    /// A replica for the node with `key`, under `roster` (signed by `authority`). The RNG picks
    /// this session's automerge actor id, so a node that restarts after losing unflushed writes
    /// never reuses a sequence number.
    pub fn new(
        key: SecretKey,
        authority: NodeKey,
        roster: Roster,
        signed_roster: Option<SignedRoster>,
        rng: &mut impl rand_core::RngCore,
    ) -> Result<Replica, CommandError> {
        let me = key.public();
        let site = roster.site_of_key(&me).cloned().ok_or_else(|| {
            CommandError::NotAllowed(format!("node key {me} is not in the roster"))
        })?;
        let mut actor = [0u8; 16];
        rng.fill_bytes(&mut actor);
        Ok(Replica {
            key,
            me,
            site,
            authority,
            roster,
            signed_roster,
            actor: ActorId::from(&actor[..]),
            hlc: Hlc::new(),
            books: BTreeMap::new(),
            cold: BTreeMap::new(),
            cold_settled: false,
            order_book: BTreeMap::new(),
            peers: BTreeMap::new(),
            states: BTreeMap::new(),
            timers: BTreeSet::new(),
            timer_of: BTreeMap::new(),
            resync_after: DEFAULT_RESYNC_AFTER_MS,
            verified: None,
        })
    }

    /// Share a cache of verified event ids with other replicas in this process (see
    /// [`crate::event::VerifiedEvents`]); each event's signature is then checked once per
    /// process instead of once per replica.
    pub fn set_verified_cache(&mut self, cache: crate::event::SharedVerified) {
        self.verified = Some(cache);
    }

    /// Set how long to wait for a silent peer before resyncing.
    pub fn set_resync_after(&mut self, ms: Millis) {
        self.resync_after = ms.max(1);
    }

    /// Keep settled books cold: a book loaded with every order closed, confirmed or cancelled
    /// is kept as its stored bytes (about a fifth of its size in memory) and loaded again only
    /// when a peer's summary differs, a sync message for it arrives, or an order in it is acted
    /// on. Cold books are left out of [`Replica::books`] and [`Replica::orders`];
    /// [`Replica::order`] and [`Replica::book_hashes`] still see them. Off by default.
    pub fn set_cold_settled(&mut self, on: bool) {
        self.cold_settled = on;
    }

    /// Load a stored book (snapshot followed by chunks). Call before connecting peers.
    pub fn load_book(&mut self, id: BookId, bytes: &[u8], now: Millis) -> Result<(), BookError> {
        let book = Book::load(id, self.actor.clone(), bytes)?;
        self.adopt_book(book, bytes, now)
    }

    /// The automerge actor this session writes as; books loaded elsewhere (e.g. on several
    /// threads) for [`Replica::adopt_book`] must be loaded with it.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Take a book loaded (with [`Replica::actor`]) from `bytes`, its stored form.
    pub fn adopt_book(&mut self, book: Book, bytes: &[u8], now: Millis) -> Result<(), BookError> {
        let id = book.id().clone();
        for (order, events) in book.orders() {
            self.order_book.insert(*order, id.clone());
            for e in events {
                self.hlc.observe(e.event.stamp);
            }
        }
        if self.cold_settled {
            let states = crate::fold::fold_book(&book, &self.roster, now);
            let settled = states.len() == book.order_count()
                && states.iter().all(|s| {
                    matches!(
                        s.status,
                        Status::Closed | Status::Confirmed | Status::Cancelled
                    )
                });
            if settled {
                let marker = ColdMarker {
                    heads: book.heads(),
                    hash: book.heads_hash(),
                    orders: book.orders().map(|(o, _)| *o).collect(),
                    last_stamp: book
                        .orders()
                        .flat_map(|(_, evs)| evs.iter().map(|e| e.event.stamp))
                        .max()
                        .unwrap_or_default(),
                };
                self.cold.insert(
                    id,
                    ColdBook {
                        bytes: bytes.to_vec(),
                        marker,
                    },
                );
                return Ok(());
            }
        }
        let orders: Vec<OrderId> = book.orders().map(|(o, _)| *o).collect();
        self.books.insert(id.clone(), book);
        for o in orders {
            self.refresh_timer(&id, o, now);
        }
        Ok(())
    }

    /// Load a stored sync state. A state that does not decode is dropped (sync restarts).
    pub fn load_sync_state(&mut self, peer: NodeKey, book: BookId, bytes: &[u8]) {
        if let Ok(state) = sync::State::decode(bytes) {
            self.states.insert((peer, book), state);
        }
    }

    /// This node's key.
    pub fn key(&self) -> NodeKey {
        self.me
    }
    /// This node's site.
    pub fn site(&self) -> &SiteId {
        &self.site
    }
    /// The roster in force.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }
    /// The books held in memory (all of them unless settled books are kept cold).
    pub fn books(&self) -> impl Iterator<Item = &Book> {
        self.books.values()
    }

    /// Every book held, warm or cold: (id, heads hash, orders).
    pub fn book_hashes(&self) -> Vec<(BookId, crate::book::HeadsHash, usize)> {
        let mut out: Vec<_> = self
            .books
            .values()
            .map(|b| (b.id().clone(), b.heads_hash(), b.order_count()))
            .collect();
        out.extend(
            self.cold
                .iter()
                .map(|(id, c)| (id.clone(), c.marker.hash, c.marker.orders.len())),
        );
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The marker of a cold book, for the node to save beside it.
    pub fn cold_marker(&self, id: &BookId) -> Option<&ColdMarker> {
        self.cold.get(id).map(|c| &c.marker)
    }

    /// Hold a settled book from its stored bytes and saved marker, without reading it.
    pub fn load_cold_book(&mut self, id: BookId, bytes: Vec<u8>, marker: ColdMarker) {
        self.hlc.observe(marker.last_stamp);
        for o in &marker.orders {
            self.order_book.insert(*o, id.clone());
        }
        self.cold.insert(id, ColdBook { bytes, marker });
    }

    /// Bring a cold book back into memory.
    fn warm(&mut self, id: &BookId) -> Result<(), BookError> {
        if let Some(cold) = self.cold.remove(id) {
            let book = Book::load(id.clone(), self.actor.clone(), &cold.bytes)?;
            self.books.insert(id.clone(), book);
        }
        Ok(())
    }
    /// A cold book read from its stored bytes, leaving it cold (`None` if it is not cold).
    pub fn read_cold(&self, id: &BookId) -> Option<Result<Book, BookError>> {
        let cold = self.cold.get(id)?;
        Some(Book::load(id.clone(), self.actor.clone(), &cold.bytes))
    }

    /// One book held in memory (cold books are not: see [`Replica::read_cold`]).
    pub fn book(&self, id: &BookId) -> Option<&Book> {
        self.books.get(id)
    }
    /// Connected peers.
    pub fn peers(&self) -> impl Iterator<Item = (&NodeKey, &SiteId)> {
        self.peers.iter().map(|(k, p)| (k, &p.site))
    }
    /// Books with changes that no peer has acknowledged yet (no sync state with a peer shares
    /// the book's current heads).
    pub fn unacknowledged_books(&self) -> usize {
        let acked = |book: &BookId, heads: &[automerge::ChangeHash]| {
            self.states
                .iter()
                .any(|((_, id), st)| id == book && st.shared_heads == heads)
        };
        self.books
            .values()
            .filter(|b| !acked(b.id(), &b.heads()))
            .count()
            + self
                .cold
                .iter()
                .filter(|(id, c)| !acked(id, &c.marker.heads))
                .count()
    }

    /// The book an order is in.
    pub fn book_of(&self, order: &OrderId) -> Option<&BookId> {
        self.order_book.get(order)
    }

    /// An order's state at `now`.
    pub fn order(&self, id: &OrderId, now: Millis) -> Option<OrderState> {
        let book_id = self.order_book.get(id)?;
        match self.books.get(book_id) {
            Some(book) => fold_order(book_id, *id, book.events(id)?, &self.roster, now),
            None => {
                let book = self.read_cold(book_id)?.ok()?;
                fold_order(book_id, *id, book.events(id)?, &self.roster, now)
            }
        }
    }

    /// Every order's state at `now`.
    pub fn orders(&self, now: Millis) -> Vec<OrderState> {
        self.books
            .values()
            .flat_map(|b| crate::fold::fold_book(b, &self.roster, now))
            .collect()
    }

    // ----- local commands -------------------------------------------------------------------

    /// Take a resident's request. The order is durable once the returned `persist` effects are
    /// flushed; only then may the resident be told it is saved.
    pub fn create_order(
        &mut self,
        now: Millis,
        rng: &mut impl rand_core::RngCore,
        req: NewOrder,
    ) -> Result<(OrderId, Effects), CommandError> {
        if self.roster.specialty(&req.case_type).is_none() {
            return Err(CommandError::UnknownCaseType(req.case_type));
        }
        for (what, len, limit) in [
            ("name", req.name.len(), MAX_SHORT),
            ("phone", req.phone.len(), MAX_SHORT),
            ("case type", req.case_type.as_str().len(), MAX_SHORT),
            ("account", req.text.len(), MAX_TEXT),
        ] {
            if len > limit {
                return Err(CommandError::TooLong { what, len, limit });
            }
        }
        let stamp = self.hlc.tick(now);
        let book = self
            .roster
            .book_for(&self.site, req.channel, stamp.ms)
            .ok_or_else(|| CommandError::NoArea(self.site.clone()))?;
        let id = OrderId::random(rng);
        let header = OrderHeader {
            origin: self.site.clone(),
            channel: req.channel,
            case_type: req.case_type,
            live: req.live,
            name: req.name,
            phone: req.phone,
            text: req.text,
        };
        let ev = Event {
            order: id,
            stamp,
            signer: self.me,
            kind: EventKind::Created(Box::new(header)),
        }
        .sign(&self.key);
        let effects = self.write(now, &book, vec![ev])?;
        Ok((id, effects))
    }

    /// Do something to an order as this site. Refused if the rules would not count it.
    pub fn act(
        &mut self,
        now: Millis,
        order: OrderId,
        action: Action,
    ) -> Result<Effects, CommandError> {
        let state = self
            .order(&order, now)
            .ok_or(CommandError::UnknownOrder(order))?;
        self.check_action(&state, &action)?;
        let kind = match action {
            Action::Offer => EventKind::Offered,
            Action::Accept => EventKind::Accepted,
            Action::Decline(reason) => EventKind::Declined { reason },
            Action::Release(reason) => EventKind::Released { reason },
            Action::Dispatch(lawyer) => EventKind::Dispatched { lawyer },
            Action::Message(text) => EventKind::Message { text },
            Action::JoinParty(party) => EventKind::PartyJoined { party },
            Action::SignAgreement(summary) => EventKind::AgreementSigned { summary },
            Action::Close(outcome) => EventKind::Closed { outcome },
            Action::Confirm => EventKind::Confirmed,
            Action::Cancel(reason) => EventKind::Cancelled { reason },
            Action::Flag(reason) => EventKind::Flagged { reason },
        };
        let stamp = self.hlc.tick(now);
        let ev = Event {
            order,
            stamp,
            signer: self.me,
            kind,
        }
        .sign(&self.key);
        let book = state.book.clone();
        self.write(now, &book, vec![ev])
    }

    fn check_action(&self, s: &OrderState, action: &Action) -> Result<(), CommandError> {
        let me = &self.site;
        let origin = &s.header.origin == me;
        let in_chain = s.chain.contains(me);
        let winner = s.winner.as_ref().is_some_and(|w| &w.site == me);
        let no = |why: String| Err(CommandError::NotAllowed(why));
        let text_len = |t: &str, limit| {
            if t.len() > limit {
                Err(CommandError::TooLong {
                    what: "text",
                    len: t.len(),
                    limit,
                })
            } else {
                Ok(())
            }
        };
        match action {
            Action::Offer if !origin => no(format!(
                "only the origin {} offers this order",
                s.header.origin
            )),
            Action::Accept | Action::Decline(_) if !in_chain => {
                no(format!("{me} is not in this order's chain"))
            }
            Action::Accept | Action::Decline(_) if !s.status.is_open() => no(format!(
                "the order is {} (taken by {:?})",
                s.status.as_str(),
                s.winner.as_ref().map(|w| &w.site)
            )),
            Action::Accept
                if s.chain
                    .iter()
                    .position(|c| c == me)
                    .is_some_and(|k| k > 0 && s.on_call.as_ref().is_none_or(|c| c.tier < k)) =>
            {
                no(match &s.on_call {
                    Some(c) => format!(
                        "not {me}'s turn yet: {} is on call until {:?}",
                        c.site, c.until
                    ),
                    None => "the order has not been offered yet".into(),
                })
            }
            Action::Decline(_)
                if !(s.status == Status::Queued && s.chain.first() == Some(me))
                    && s.on_call.as_ref().is_none_or(|c| &c.site != me) =>
            {
                no(format!("{me} is not on call for this order"))
            }
            Action::Release(_)
            | Action::Dispatch(_)
            | Action::Close(_)
            | Action::JoinParty(_)
            | Action::SignAgreement(_)
                if !winner =>
            {
                no(format!(
                    "only the site that took the order may do that; {me} did not"
                ))
            }
            Action::Release(_) | Action::Dispatch(_) if s.closed_at.is_some() => {
                no("the order is closed".into())
            }
            Action::Dispatch(l) if !self.roster.may_dispatch(me, l) => {
                no(format!("{me} cannot dispatch lawyer {l}"))
            }
            Action::Close(_) if s.closed_at.is_some() => no("the order is already closed".into()),
            Action::Confirm if !origin || s.status != Status::Closed => {
                no("only the origin confirms, after the order is closed".into())
            }
            Action::Cancel(_)
                if !origin || s.closed_at.is_some() || s.status == Status::Cancelled =>
            {
                no("only the origin cancels an order that is not closed".into())
            }
            Action::Decline(t)
            | Action::Release(t)
            | Action::Message(t)
            | Action::SignAgreement(t)
            | Action::Close(t)
            | Action::Cancel(t)
            | Action::Flag(t) => text_len(t, MAX_TEXT),
            Action::JoinParty(t) => text_len(t, MAX_SHORT),
            _ => Ok(()),
        }
    }

    /// Write local events to a book, persist, notify and sync.
    fn write(
        &mut self,
        now: Millis,
        book_id: &BookId,
        events: Vec<SignedEvent>,
    ) -> Result<Effects, CommandError> {
        self.warm(book_id)?;
        let mut fx = Effects::default();
        let book = self
            .books
            .entry(book_id.clone())
            .or_insert_with(|| Book::new(book_id.clone(), self.actor.clone()));
        let mut orders = BTreeSet::new();
        for ev in events {
            orders.insert(ev.event.order);
            book.insert(ev)?;
        }
        let bytes = book.save_incremental();
        if !bytes.is_empty() {
            fx.persist.push(Persist::BookChunk {
                book: book_id.clone(),
                bytes,
            });
        }
        for o in orders {
            self.order_book.insert(o, book_id.clone());
            self.refresh_timer(book_id, o, now);
            fx.changed.insert((book_id.clone(), o));
        }
        self.sync_book_to_all(now, book_id, None, &mut fx);
        fx.wake_at = self.next_wake();
        Ok(fx)
    }

    // ----- peers ----------------------------------------------------------------------------

    /// A peer's link came up (after its transport authenticated `peer`). A key not in the roster
    /// is refused at once.
    pub fn connected(&mut self, now: Millis, peer: NodeKey) -> Effects {
        let mut fx = Effects::default();
        let Some(site) = self.roster.site_of_key(&peer).cloned() else {
            fx.refused.push(Refusal {
                peer,
                reason: format!("key {peer} is not in the roster"),
            });
            return fx;
        };
        if peer == self.me {
            fx.refused.push(Refusal {
                peer,
                reason: "a connection to ourselves".into(),
            });
            return fx;
        }
        self.peers.insert(
            peer,
            Peer {
                site,
                awaiting: BTreeMap::new(),
            },
        );
        // A fresh link: nothing we sent before is in flight any more.
        for ((p, _), state) in self.states.iter_mut() {
            if *p == peer {
                reset_in_flight(state);
            }
        }
        self.send_summary(now, peer, &mut fx);
        fx.wake_at = self.next_wake();
        fx
    }

    /// A peer's link went down. Sync states are kept for the next connection.
    pub fn disconnected(&mut self, _now: Millis, peer: NodeKey) -> Effects {
        self.peers.remove(&peer);
        Effects {
            wake_at: self.next_wake(),
            ..Effects::default()
        }
    }

    /// Bytes from a peer.
    pub fn receive(
        &mut self,
        now: Millis,
        rng: &mut impl rand_core::RngCore,
        from: NodeKey,
        bytes: &[u8],
    ) -> Effects {
        let _ = rng; // reserved: no decision on receive needs randomness today
        let mut fx = Effects::default();
        if !self.peers.contains_key(&from) {
            fx.refused.push(Refusal {
                peer: from,
                reason: "message from a peer that is not connected".into(),
            });
            return fx;
        }
        let result = match Message::decode(bytes) {
            Err(e) => Err(format!("malformed message: {e}")),
            Ok(Message::Summary {
                roster_version,
                books,
            }) => {
                self.on_summary(now, from, roster_version, books, &mut fx);
                Ok(())
            }
            Ok(Message::Sync { book, data }) => self.on_sync(now, from, book, &data, &mut fx),
            Ok(Message::Roster(bytes)) => self.on_roster(now, &bytes, &mut fx),
        };
        if let Err(reason) = result {
            fx.refused.push(Refusal { peer: from, reason });
            self.peers.remove(&from);
        }
        fx.wake_at = self.next_wake();
        fx
    }

    /// The wake-up time has come: resync with silent peers, and report orders whose state
    /// changed with time (a window ended).
    pub fn tick(&mut self, now: Millis) -> Effects {
        let mut fx = Effects::default();
        let due: Vec<(Millis, BookId, OrderId)> = self
            .timers
            .iter()
            .take_while(|(t, _, _)| *t <= now)
            .cloned()
            .collect();
        for (t, book, order) in due {
            self.timers.remove(&(t, book.clone(), order));
            self.timer_of.remove(&order);
            self.refresh_timer(&book, order, now);
            fx.changed.insert((book, order));
        }
        let stale: Vec<NodeKey> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.awaiting
                    .values()
                    .any(|t| now >= t.saturating_add(self.resync_after))
            })
            .map(|(k, _)| *k)
            .collect();
        for peer in stale {
            for ((p, _), state) in self.states.iter_mut() {
                if *p == peer {
                    reset_in_flight(state);
                }
            }
            if let Some(p) = self.peers.get_mut(&peer) {
                p.awaiting.clear();
            }
            self.send_summary(now, peer, &mut fx);
        }
        fx.wake_at = self.next_wake();
        fx
    }

    /// Compact a book: its whole document as one snapshot to replace its stored chunks.
    pub fn compact(&mut self, book: &BookId) -> Option<Persist> {
        let b = self.books.get_mut(book)?;
        Some(Persist::BookSnapshot {
            book: book.clone(),
            bytes: b.save(),
        })
    }

    fn send_summary(&mut self, _now: Millis, peer: NodeKey, fx: &mut Effects) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let books = self
            .book_hashes()
            .into_iter()
            .filter(|(id, _, _)| self.roster.entitled(&p.site, id))
            .map(|(id, hash, _)| (id, hash))
            .collect();
        let msg = Message::Summary {
            roster_version: self.roster.version(),
            books,
        };
        fx.send.push(Outgoing {
            to: peer,
            bytes: msg.encode(),
        });
    }

    fn on_summary(
        &mut self,
        now: Millis,
        from: NodeKey,
        roster_version: u64,
        theirs: Vec<(BookId, crate::book::HeadsHash)>,
        fx: &mut Effects,
    ) {
        let Some(peer_site) = self.peers.get(&from).map(|p| p.site.clone()) else {
            return;
        };
        if roster_version < self.roster.version() {
            if let Some(signed) = &self.signed_roster {
                fx.send.push(Outgoing {
                    to: from,
                    bytes: Message::Roster(signed.encode()).encode(),
                });
            }
        }
        let theirs: BTreeMap<BookId, crate::book::HeadsHash> = theirs.into_iter().collect();
        let mut to_sync: BTreeSet<BookId> = BTreeSet::new();
        for (book, hash) in &theirs {
            // Books they have that we may hold and that differ from ours (or we lack).
            if self.roster.entitled(&self.site, book) && self.roster.entitled(&peer_site, book) {
                let ours = match self.books.get(book) {
                    Some(b) => Some(b.heads_hash()),
                    None => self.cold.get(book).map(|c| c.marker.hash),
                };
                if ours.as_ref() != Some(hash) {
                    to_sync.insert(book.clone());
                }
            }
        }
        for (id, _, _) in self.book_hashes() {
            if self.roster.entitled(&peer_site, &id) && !theirs.contains_key(&id) {
                to_sync.insert(id);
            }
        }
        for book in to_sync {
            if self.warm(&book).is_err() {
                continue;
            }
            if !self.books.contains_key(&book) {
                self.books
                    .insert(book.clone(), Book::new(book.clone(), self.actor.clone()));
            }
            if let Some(state) = self.states.get_mut(&(from, book.clone())) {
                reset_in_flight(state);
            }
            self.sync_book_to(now, &book, from, fx);
        }
    }

    fn on_sync(
        &mut self,
        now: Millis,
        from: NodeKey,
        book_id: BookId,
        data: &[u8],
        fx: &mut Effects,
    ) -> Result<(), String> {
        let peer_site = self
            .peers
            .get(&from)
            .map(|p| p.site.clone())
            .ok_or("peer gone")?;
        if !self.roster.entitled(&self.site, &book_id)
            || !self.roster.entitled(&peer_site, &book_id)
        {
            return Err(format!(
                "sync for book {book_id}, which {peer_site} or {} may not hold",
                self.site
            ));
        }
        let message = sync::Message::decode(data)
            .map_err(|e| format!("bad automerge sync message for {book_id}: {e}"))?;
        if let Some(p) = self.peers.get_mut(&from) {
            p.awaiting.remove(&book_id);
        }
        self.warm(&book_id)
            .map_err(|e| format!("stored book {book_id} does not load: {e}"))?;
        let roster = &self.roster;
        let book = self
            .books
            .entry(book_id.clone())
            .or_insert_with(|| Book::new(book_id.clone(), self.actor.clone()));
        let state = self.states.entry((from, book_id.clone())).or_default();
        let check = |ev: &SignedEvent| match &ev.event.kind {
            EventKind::Created(h)
                if roster
                    .book_for(&h.origin, h.channel, ev.event.stamp.ms)
                    .as_ref()
                    != Some(&book_id) =>
            {
                Err(format!("order {} belongs in another book", ev.event.order))
            }
            _ => Ok(()),
        };
        let added = book
            .receive_with(state, message, check, self.verified.as_ref())
            .map_err(|e| e.to_string())?;
        // The book's new changes before the sync state that says we have them.
        let chunk = book.save_incremental();
        if !chunk.is_empty() {
            fx.persist.push(Persist::BookChunk {
                book: book_id.clone(),
                bytes: chunk,
            });
        }
        fx.persist.push(Persist::SyncState {
            peer: from,
            book: book_id.clone(),
            bytes: state.encode(),
        });
        let mut orders = BTreeSet::new();
        for ev in &added {
            self.hlc.observe(ev.event.stamp);
            orders.insert(ev.event.order);
        }
        for o in &orders {
            self.order_book.insert(*o, book_id.clone());
            self.refresh_timer(&book_id, *o, now);
            fx.changed.insert((book_id.clone(), *o));
        }
        // Received: the first site of the chain to get an order from a peer says so; that
        // starts the order's escalation clock.
        let receipts = self.receipts_due(&book_id, &orders, now);
        if !receipts.is_empty() {
            let book = self.books.get_mut(&book_id).ok_or("book vanished")?;
            for ev in receipts {
                book.insert(ev).map_err(|e| e.to_string())?;
            }
            let chunk = book.save_incremental();
            if !chunk.is_empty() {
                fx.persist.push(Persist::BookChunk {
                    book: book_id.clone(),
                    bytes: chunk,
                });
            }
            for o in &orders {
                self.refresh_timer(&book_id, *o, now);
            }
        }
        // Answer the sender, and relay anything new to everyone else entitled.
        self.sync_book_to(now, &book_id, from, fx);
        if !added.is_empty() {
            self.sync_book_to_all(now, &book_id, Some(from), fx);
        }
        Ok(())
    }

    fn receipts_due(
        &mut self,
        book_id: &BookId,
        orders: &BTreeSet<OrderId>,
        now: Millis,
    ) -> Vec<SignedEvent> {
        let Some(book) = self.books.get(book_id) else {
            return Vec::new();
        };
        if self
            .roster
            .tier_of(&book_id.area, book_id.channel, &self.site)
            .is_none()
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        for o in orders {
            let Some(events) = book.events(o) else {
                continue;
            };
            let mut created_elsewhere = false;
            let mut seen = false;
            for e in events {
                match &e.event.kind {
                    EventKind::Created(h) => created_elsewhere = h.origin != self.site,
                    EventKind::Offered | EventKind::Received => seen = true,
                    _ => {}
                }
            }
            if created_elsewhere && !seen {
                let stamp = self.hlc.tick(now);
                out.push(
                    Event {
                        order: *o,
                        stamp,
                        signer: self.me,
                        kind: EventKind::Received,
                    }
                    .sign(&self.key),
                );
            }
        }
        out
    }

    fn on_roster(&mut self, _now: Millis, bytes: &[u8], fx: &mut Effects) -> Result<(), String> {
        let signed = SignedRoster::decode(bytes)
            .map_err(|e: DecodeError| format!("bad roster message: {e}"))?;
        match signed.open(&self.authority, Some(self.roster.version())) {
            Ok(roster) => {
                if roster.site_of_key(&self.me) != Some(&self.site) {
                    return Err(
                        "a roster that no longer registers this node to its site; not taken".into(),
                    );
                }
                self.roster = roster;
                fx.persist.push(Persist::Roster(signed.encode()));
                self.signed_roster = Some(signed);
                fx.roster_updated = true;
                Ok(())
            }
            // An older or equal version crossing ours in flight is not misbehaviour.
            Err(crate::roster::RosterError::NotNewer { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn sync_book_to_all(
        &mut self,
        now: Millis,
        book: &BookId,
        except: Option<NodeKey>,
        fx: &mut Effects,
    ) {
        let peers: Vec<NodeKey> = self
            .peers
            .keys()
            .copied()
            .filter(|p| Some(*p) != except)
            .collect();
        for p in peers {
            self.sync_book_to(now, book, p, fx);
        }
    }

    /// The one place a book's sync message is produced: never for a peer not entitled to it.
    fn sync_book_to(&mut self, now: Millis, book_id: &BookId, to: NodeKey, fx: &mut Effects) {
        let Some(peer) = self.peers.get_mut(&to) else {
            return;
        };
        if !self.roster.entitled(&peer.site, book_id) {
            return;
        }
        let Some(book) = self.books.get(book_id) else {
            return;
        };
        let state = self.states.entry((to, book_id.clone())).or_default();
        if let Some(msg) = book.generate_sync(state) {
            // Only a message that carries changes or asks for some expects an answer; a bare
            // "here are my heads" to a peer already level gets none, and waiting for one would
            // send a needless resync summary later.
            let expects_answer =
                !msg.changes.is_empty() || !msg.need.is_empty() || state.their_heads.is_none();
            let data = msg.encode();
            let bytes = Message::Sync {
                book: book_id.clone(),
                data,
            }
            .encode();
            if expects_answer {
                peer.awaiting.entry(book_id.clone()).or_insert(now);
            }
            fx.send.push(Outgoing { to, bytes });
        }
    }

    fn refresh_timer(&mut self, book: &BookId, order: OrderId, now: Millis) {
        if let Some(t) = self.timer_of.remove(&order) {
            self.timers.remove(&(t, book.clone(), order));
        }
        if let Some(t) = self.order(&order, now).and_then(|s| s.next_change) {
            self.timers.insert((t, book.clone(), order));
            self.timer_of.insert(order, t);
        }
    }

    fn next_wake(&self) -> Option<Millis> {
        let timer = self.timers.first().map(|(t, _, _)| *t);
        let resync = self
            .peers
            .values()
            .flat_map(|p| p.awaiting.values())
            .min()
            .map(|t| t.saturating_add(self.resync_after));
        match (timer, resync) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Forget what was in flight on a sync state (its peer reconnected or went silent), keeping
/// what both sides are known to share.
fn reset_in_flight(state: &mut sync::State) {
    if let Ok(fresh) = sync::State::decode(&state.encode()) {
        *state = fresh;
    }
}

//! # lawmesh-sync: the replicated state of the lawmesh mesh and its rules
//!
//! Every kiosk, judicial office, firm and centre runs a node; every node runs this crate. It is
//! pure: no sockets, no disk, no clock, no OS randomness. Time and randomness come in as
//! arguments and everything the outside world must do comes back as data. `lawmesh-node` carries
//! those effects out on real sockets and a real disk; `lawmesh-sim` carries them out in a virtual
//! world — the same rules in both places.
//!
//! ## The state machine: [`replica::Replica`]
//!
//! | input | call |
//! |---|---|
//! | a resident's request at a kiosk | [`Replica::create_order`](replica::Replica::create_order)`(now, rng, NewOrder)` |
//! | a site acts on an order (accept, decline, dispatch, close, …) | [`Replica::act`](replica::Replica::act)`(now, order, Action)` |
//! | a peer's link came up / went down | [`connected`](replica::Replica::connected) / [`disconnected`](replica::Replica::disconnected)`(now, key)` |
//! | bytes from a peer | [`receive`](replica::Replica::receive)`(now, rng, key, bytes)` |
//! | the asked-for wake-up time came | [`tick`](replica::Replica::tick)`(now)` |
//!
//! Each returns [`Effects`](replica::Effects): `persist` (bytes to write and flush — **first**,
//! before anything is sent or acknowledged), `send` (messages per peer), `changed` (orders whose
//! state may have changed, for screens), `refused` (peers to disconnect for misbehaving) and
//! `wake_at` (when to call `tick`). A node restarts with
//! [`load_book`](replica::Replica::load_book) and
//! [`load_sync_state`](replica::Replica::load_sync_state) from what it persisted.
//!
//! ## Where each rule lives
//!
//! - [`roster`] — sites, areas, pairings, lawyers, duty days, policy; which chain serves a book
//!   ([`Roster::chain`](roster::Roster::chain)); who may hold a book
//!   ([`Roster::entitled`](roster::Roster::entitled)); which book an order belongs to
//!   ([`Roster::book_for`](roster::Roster::book_for)). [`roster::signed`]: the authority's
//!   signature and the "only newer versions" rule.
//! - [`event`] — the signed events an order is made of, their canonical encoding and signatures.
//! - [`book`] — one Automerge document per (origin area, channel, period); the ingest check that
//!   refuses changes deleting or rewriting events.
//! - [`fold`] — the escalation rules of DESIGN.md §4: on-call tiers and windows, the winner,
//!   overturned accepts, who may dispatch and close. A pure function of (events, roster, now).
//! - [`suggest`] — lawyer suggestions for a dispatch and the deterministic duty-lawyer pick.
//! - [`wire`] — the sync protocol's messages: a summary of heads hashes per shared book, then
//!   automerge sync messages only for books that differ. Versioned, bounded, never panics.
//! - [`replica`] — the state machine that ties them together, and the entitlement check on
//!   every message in and out.
//! - [`time`] — hybrid logical clocks and civil dates; [`ids`], [`keys`], [`codec`] — the
//!   vocabulary.

pub mod book;
pub mod codec;
pub mod event;
pub mod fold;
pub mod ids;
pub mod keys;
pub mod replica;
pub mod roster;
pub mod suggest;
pub mod time;
pub mod wire;

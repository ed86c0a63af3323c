//! The end check, after the mesh was healed and ran to quiescence (TigerBeetle's liveness
//! phase): every replica entitled to a book holds it, all copies are identical, no order the
//! mesh acknowledged is lost or appears twice, no order nobody made appears, every replica
//! computes the same single winner, and no order is left waiting for someone.

use crate::engine::{Ending, Engine};
use lawmesh_sync::book::{Book, HeadsHash};
use lawmesh_sync::event::SignedEvent;
use lawmesh_sync::fold::{fold_order, OrderState};
use lawmesh_sync::ids::{BookId, OrderId};
use lawmesh_sync::time::Millis;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One readable copy of a book: in memory at some replica, or read from a cold replica's
/// stored bytes (a settled book a restarted node holds without reading it, as the node does).
#[derive(Debug)]
enum BookCopy<'a> {
    Warm(&'a Book),
    Read(Box<Book>),
}

impl BookCopy<'_> {
    fn book(&self) -> &Book {
        match self {
            BookCopy::Warm(b) => b,
            BookCopy::Read(b) => b,
        }
    }
}

/// Every book held in the quiet mesh: who holds it at which heads, and one copy to read.
/// Copies with equal heads hashes are the same document, so one copy serves every holder
/// whose hash matches it; differing hashes are an end-check failure of their own.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    holders: BTreeMap<BookId, Vec<(usize, HeadsHash)>>,
    copies: BTreeMap<BookId, BookCopy<'a>>,
    unreadable: Vec<String>,
}

impl Held<'_> {
    /// The events of an order in a book, from the copy read.
    pub(crate) fn events(&self, book: &BookId, order: &OrderId) -> Option<&[SignedEvent]> {
        self.copies.get(book)?.book().events(order)
    }

    /// An order's state at `now` (a node's clock), folded from the copy read.
    pub(crate) fn order(
        &self,
        engine: &Engine,
        order: &OrderId,
        book: &BookId,
        now: Millis,
    ) -> Option<OrderState> {
        fold_order(book, *order, self.events(book, order)?, &engine.roster, now)
    }
}

impl Engine {
    /// Gather the books held across the mesh (warm and cold), reading one copy of each.
    pub(crate) fn held(&self) -> Held<'_> {
        let mut holders: BTreeMap<BookId, Vec<(usize, HeadsHash)>> = BTreeMap::new();
        let mut copies: BTreeMap<BookId, BookCopy<'_>> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(r) = &n.replica else { continue };
            for (book, hash, _) in r.book_hashes() {
                if let Some(b) = r.book(&book) {
                    copies.entry(book.clone()).or_insert(BookCopy::Warm(b));
                }
                holders.entry(book).or_default().push((i, hash));
            }
        }
        let mut unreadable = Vec::new();
        for (book, list) in &holders {
            if copies.contains_key(book) {
                continue;
            }
            let Some((i, _)) = list.first() else { continue };
            let n = &self.nodes[*i];
            match n.replica.as_ref().and_then(|r| r.read_cold(book)) {
                Some(Ok(b)) => {
                    copies.insert(book.clone(), BookCopy::Read(Box::new(b)));
                }
                Some(Err(e)) => unreadable.push(format!("{} cannot read book {book}: {e}", n.site)),
                None => unreadable.push(format!("{} lost book {book}", n.site)),
            }
        }
        Held {
            holders,
            copies,
            unreadable,
        }
    }
}

/// At most this many failures are listed (the count is always complete).
const MAX_LISTED: usize = 20;

/// The result of the end check.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndCheck {
    /// All invariants held.
    pub passed: bool,
    /// The healed mesh went quiet before the deadline.
    pub quiescent: bool,
    /// Minutes from healing to quiet.
    pub quiet_after_minutes: f64,
    /// Books compared.
    pub books_checked: usize,
    /// Book copies compared (one per entitled replica).
    pub copies_checked: usize,
    /// Orders checked.
    pub orders_checked: usize,
    /// How many invariant breaches were found.
    pub failure_count: usize,
    /// The first breaches, in words.
    pub failures: Vec<String>,
}

impl Engine {
    /// Run the end check on the healed, quiet mesh.
    pub(crate) fn end_check(&self, ending: &Ending, held: &Held<'_>) -> EndCheck {
        let mut failures: Vec<String> = Vec::new();
        if !ending.quiescent {
            failures.push(format!(
                "the healed mesh was still busy after {} days",
                self.sc.check.heal_max_days
            ));
        }
        for r in &self.truth.refusals {
            failures.push(format!("refusal: {r}"));
        }
        for n in &self.nodes {
            if n.replica.is_none() {
                failures.push(format!("{} is still down after healing", n.site));
            }
        }
        failures.extend(held.unreadable.iter().cloned());
        let holders = &held.holders;
        let mut copies = 0;
        for (book, list) in holders {
            copies += list.len();
            let held: BTreeSet<usize> = list.iter().map(|(i, _)| *i).collect();
            for (j, n) in self.nodes.iter().enumerate() {
                let entitled = self.roster.entitled(&n.site, book);
                if entitled && !held.contains(&j) {
                    failures.push(format!(
                        "{} is entitled to book {book} but lacks it",
                        n.site
                    ));
                }
                if !entitled && held.contains(&j) {
                    failures.push(format!(
                        "{} holds book {book}, which it may not hold",
                        n.site
                    ));
                }
            }
            let versions: BTreeSet<&HeadsHash> = list.iter().map(|(_, h)| h).collect();
            if versions.len() > 1 {
                failures.push(format!(
                    "book {book} differs between replicas: {} versions on {} replicas",
                    versions.len(),
                    list.len()
                ));
            }
        }
        // Orders: each acknowledged order in exactly one book, nothing else.
        let mut found: BTreeMap<OrderId, &BookId> = BTreeMap::new();
        for book in holders.keys() {
            let Some(copy) = held.copies.get(book) else {
                continue;
            };
            for (order, _) in copy.book().orders() {
                if let Some(other) = found.insert(*order, book) {
                    failures.push(format!("order {order} is in two books: {other} and {book}"));
                }
            }
        }
        for order in self.truth.orders.keys() {
            if !found.contains_key(order) {
                failures.push(format!("acknowledged order {order} is lost"));
            }
        }
        for order in found.keys() {
            if !self.truth.orders.contains_key(order) {
                failures.push(format!("order {order} appeared that no resident made"));
            }
        }
        // One winner, the same everywhere, and nobody left waiting: every holder folds the copy
        // on its own clock (a holder with other heads has already failed the identity check).
        let at = ending.quiet_at;
        for (order, book) in &found {
            let mut winners = BTreeSet::new();
            let mut open = false;
            let Some(events) = held.events(book, order) else {
                continue;
            };
            for (i, _) in holders.get(*book).into_iter().flatten() {
                let n = &self.nodes[*i];
                let Some(s) = fold_order(book, *order, events, &self.roster, n.local(at)) else {
                    failures.push(format!("{} cannot fold order {order}", n.site));
                    continue;
                };
                winners.insert(s.winner.map(|w| (w.site, w.tier, w.at, w.signer)));
                open |= s.status.is_open();
            }
            if winners.len() > 1 {
                failures.push(format!(
                    "order {order} has {} different winners across replicas",
                    winners.len()
                ));
            }
            if open {
                failures.push(format!("order {order} is still waiting after healing"));
            }
        }
        let failure_count = failures.len();
        failures.truncate(MAX_LISTED);
        EndCheck {
            passed: failure_count == 0,
            quiescent: ending.quiescent,
            quiet_after_minutes: round2(
                (ending.quiet_at.saturating_sub(ending.healed_at)) as f64 / 60_000.0,
            ),
            books_checked: holders.len(),
            copies_checked: copies,
            orders_checked: found.len(),
            failure_count,
            failures,
        }
    }
}

/// Round to two decimals (so JSON stays short and stable).
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

//! The end check, after the mesh was healed and ran to quiescence (TigerBeetle's liveness
//! phase): every replica entitled to a book holds it, all copies are identical, no order the
//! mesh acknowledged is lost or appears twice, no order nobody made appears, every replica
//! computes the same single winner, and no order is left waiting for someone.

use crate::engine::{Ending, Engine};
use lawmesh_sync::book::HeadsHash;
use lawmesh_sync::fold::fold_order;
use lawmesh_sync::ids::{BookId, OrderId};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

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
    pub(crate) fn end_check(&self, ending: &Ending) -> EndCheck {
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
        let mut holders: BTreeMap<&BookId, Vec<(usize, HeadsHash)>> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(r) = &n.replica else {
                failures.push(format!("{} is still down after healing", n.site));
                continue;
            };
            for b in r.books() {
                holders.entry(b.id()).or_default().push((i, b.heads_hash()));
            }
        }
        let mut copies = 0;
        for (book, list) in &holders {
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
        for (book, list) in &holders {
            let Some(b) = list
                .first()
                .and_then(|(i, _)| self.nodes[*i].replica.as_ref())
                .and_then(|r| r.book(book))
            else {
                continue;
            };
            for (order, _) in b.orders() {
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
        // One winner, the same everywhere, and nobody left waiting.
        let at = ending.quiet_at;
        for (order, book) in &found {
            let mut winners = BTreeSet::new();
            let mut open = false;
            for (i, _) in holders.get(book).into_iter().flatten() {
                let n = &self.nodes[*i];
                let Some(events) = n.replica.as_ref().and_then(|r| r.book(book)?.events(order))
                else {
                    continue;
                };
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

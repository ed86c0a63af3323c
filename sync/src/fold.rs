//! The fold: from an order's events and the roster to the order's state, by the escalation
//! rules of DESIGN.md §4. Pure and deterministic: two nodes holding the same events compute the
//! same state, whatever order the events arrived in.
//!
//! The rules, in the order the fold applies them:
//!
//! 1. **Who may do what.** An event counts only if its signer's key belongs to a site allowed
//!    that event: the origin creates, offers, confirms and cancels; sites of the chain receive,
//!    accept and decline; the winner's site releases, dispatches, closes and records mediation;
//!    any site entitled to the book writes messages and flags. Everything else is ignored.
//! 2. **Offered.** `offered_at` is the earliest Offered (by the origin) or Received (by another
//!    site of the chain) stamp. Before it the order is *queued*: nobody outside can see it, so it
//!    is not escalated. Tier 0 may still take it from creation.
//! 3. **On call.** Tier k is on call during `[start_k, end_k)`: `start_0 = offered_at`,
//!    `end_k = start_k + window_k` or earlier at tier k's first Decline, `start_{k+1} = end_k`.
//!    Tier 0 may decline (send on) before the order is offered: its window then ends at once.
//!    The last tier is the backstop and has no end; past its window the order is *overdue*.
//! 4. **Winner.** An Accept by a tier-k site at time `t ≥ start_k` is eligible; the winner is the
//!    eligible Accept with the least `(t, k, signer)`. Every other Accept in the round is
//!    overturned and its site can see who took the order.
//! 5. **Release.** A Release by the winner's site after its Accept puts the order back on call
//!    from the next tier at the release time (a new round); accepts before it no longer count.
//! 6. **After the winner.** Dispatch and Close count only from the winner's site and after its
//!    Accept; the latest Dispatch names the lawyer. Confirm counts from the origin after Close.
//!    Cancel by the origin ends the order unless it was already closed.

use crate::book::Book;
use crate::event::{EventKind, OrderHeader, SignedEvent};
use crate::ids::{BookId, LawyerId, NodeKey, OrderId, SiteId};
use crate::roster::{Roster, Tier};
use crate::time::{Millis, Stamp};
use serde::Serialize;

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Made where nobody outside has seen it yet; not escalated.
    Queued,
    /// On call at a tier, within its window.
    OnCall,
    /// On call at the backstop past its window: someone must act.
    Overdue,
    /// Taken by a site.
    Accepted,
    /// A lawyer is assigned.
    Dispatched,
    /// Served and closed by the winning site.
    Closed,
    /// Closed and confirmed by the resident.
    Confirmed,
    /// Withdrawn by the resident.
    Cancelled,
}

impl Status {
    /// The status's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::OnCall => "on_call",
            Status::Overdue => "overdue",
            Status::Accepted => "accepted",
            Status::Dispatched => "dispatched",
            Status::Closed => "closed",
            Status::Confirmed => "confirmed",
            Status::Cancelled => "cancelled",
        }
    }
    /// Is the order still waiting for a site to take it?
    pub fn is_open(self) -> bool {
        matches!(self, Status::Queued | Status::OnCall | Status::Overdue)
    }
}

/// An Accept as the fold sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Accept {
    /// The accepting site.
    pub site: SiteId,
    /// Its tier in the chain.
    pub tier: usize,
    /// When.
    pub at: Stamp,
    /// The signing node.
    pub signer: NodeKey,
}

/// The tier on call now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OnCall {
    /// Tier index in the chain.
    pub tier: usize,
    /// The site on call.
    pub site: SiteId,
    /// When its window started (ms).
    pub since: Millis,
    /// When its window ends (ms); `None` at the backstop.
    pub until: Option<Millis>,
}

/// An order's state, as every node computes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderState {
    /// The order.
    pub id: OrderId,
    /// Its book.
    pub book: BookId,
    /// The resident's request.
    pub header: OrderHeader,
    /// When it was created.
    pub created: Stamp,
    /// Where it stands.
    pub status: Status,
    /// The chain of sites, tier 0 first.
    pub chain: Vec<SiteId>,
    /// When it was first seen outside its origin.
    pub offered_at: Option<Millis>,
    /// The tier on call now (open orders only).
    pub on_call: Option<OnCall>,
    /// The winning accept.
    pub winner: Option<Accept>,
    /// Accepts that lost to the winner (or were made out of turn).
    pub overturned: Vec<Accept>,
    /// Releases by earlier winners.
    pub releases: usize,
    /// The assigned lawyer.
    pub lawyer: Option<LawyerId>,
    /// When the lawyer was assigned.
    pub dispatched_at: Option<Stamp>,
    /// The outcome, once closed.
    pub outcome: Option<String>,
    /// When it was closed.
    pub closed_at: Option<Stamp>,
    /// Messages in the conversation.
    pub messages: usize,
    /// Mediation parties who joined.
    pub parties: Vec<String>,
    /// Flagged for the joint meeting.
    pub flagged: bool,
    /// Events ignored because their signer was not allowed them.
    pub ignored: usize,
    /// The next time the state changes by time alone (a window ends), if any.
    pub next_change: Option<Millis>,
}

impl OrderState {
    /// Did `site` accept this order and lose it? Then the winner names who took it.
    pub fn lost_by(&self, site: &SiteId) -> Option<&Accept> {
        let winner = self.winner.as_ref()?;
        (winner.site != *site && self.overturned.iter().any(|a| &a.site == site)).then_some(winner)
    }
}

/// Fold every order of a book.
pub fn fold_book(book: &Book, roster: &Roster, now: Millis) -> Vec<OrderState> {
    book.orders()
        .filter_map(|(id, events)| fold_order(book.id(), *id, events, roster, now))
        .collect()
}

/// Fold one order's events (sorted or not) into its state at `now`. `None` if the order's
/// Created event is not (yet) present or not valid.
pub fn fold_order(
    book: &BookId,
    id: OrderId,
    events: &[SignedEvent],
    roster: &Roster,
    now: Millis,
) -> Option<OrderState> {
    let mut sorted: Vec<&SignedEvent> = events.iter().filter(|e| e.event.order == id).collect();
    sorted.sort_by(|a, b| {
        (a.event.stamp, a.event.signer, a.id).cmp(&(b.event.stamp, b.event.signer, b.id))
    });
    sorted.dedup_by(|a, b| a.id == b.id);
    let site_of = |e: &SignedEvent| roster.site_of_key(&e.event.signer).cloned();

    // 1. The order exists once its origin created it in the right book.
    let (created, header) = sorted.iter().find_map(|e| match &e.event.kind {
        EventKind::Created(h)
            if site_of(e).as_ref() == Some(&h.origin)
                && roster
                    .book_for(&h.origin, h.channel, e.event.stamp.ms)
                    .as_ref()
                    == Some(book) =>
        {
            Some((e.event.stamp, (**h).clone()))
        }
        _ => None,
    })?;
    let tiers: &[Tier] = roster.chain(&book.area, book.channel)?;
    let tier_of = |site: &SiteId| tiers.iter().position(|t| &t.site == site);
    let window = |k: usize| tiers[k].window_ms(header.live);
    let last = tiers.len() - 1;

    let mut ignored = 0usize;
    let mut offered_at: Option<Millis> = None;
    let mut accepts: Vec<Accept> = Vec::new();
    let mut declines: Vec<(usize, Stamp)> = Vec::new();
    let mut later: Vec<(&SignedEvent, SiteId)> = Vec::new();
    let mut cancelled = false;
    let mut messages = 0usize;
    let mut flagged = false;

    for e in &sorted {
        let Some(site) = site_of(e) else {
            ignored += 1;
            continue;
        };
        let at = e.event.stamp;
        let is_origin = site == header.origin;
        let entitled = roster.entitled(&site, book);
        let ok = match &e.event.kind {
            EventKind::Created(_) => is_origin,
            EventKind::Offered if is_origin => {
                offered_at = Some(offered_at.map_or(at.ms, |o| o.min(at.ms)));
                true
            }
            EventKind::Received if !is_origin && tier_of(&site).is_some() => {
                offered_at = Some(offered_at.map_or(at.ms, |o| o.min(at.ms)));
                true
            }
            EventKind::Accepted => match tier_of(&site) {
                Some(tier) => {
                    accepts.push(Accept {
                        site: site.clone(),
                        tier,
                        at,
                        signer: e.event.signer,
                    });
                    true
                }
                None => false,
            },
            EventKind::Declined { .. } => match tier_of(&site) {
                Some(tier) => {
                    declines.push((tier, at));
                    true
                }
                None => false,
            },
            EventKind::Cancelled { .. } if is_origin => {
                cancelled = true;
                true
            }
            EventKind::Message { .. } if entitled => {
                messages += 1;
                true
            }
            EventKind::Flagged { .. } if entitled && (is_origin || tier_of(&site).is_some()) => {
                flagged = true;
                true
            }
            EventKind::Released { .. }
            | EventKind::Dispatched { .. }
            | EventKind::Closed { .. }
            | EventKind::Confirmed
            | EventKind::PartyJoined { .. }
            | EventKind::AgreementSigned { .. } => {
                // Judged against the winner below.
                later.push((e, site.clone()));
                true
            }
            _ => false,
        };
        if !ok {
            ignored += 1;
        }
    }

    // 3–5. Rounds of on-call schedules, winners and releases.
    let mut round_tier = 0usize;
    let mut round_start: Option<Millis> = offered_at;
    let mut after: Option<Stamp> = None; // accepts must be later than the last release
    let mut winner: Option<Accept> = None;
    let mut overturned: Vec<Accept> = Vec::new();
    let mut releases = 0usize;
    let mut used_releases = Vec::new();
    let mut schedule: Vec<(usize, Millis, Option<Millis>)>;
    loop {
        schedule = Vec::new();
        if let Some(mut start) = round_start {
            for k in round_tier..tiers.len() {
                if k == last {
                    schedule.push((k, start, None));
                    break;
                }
                let mut end = start.saturating_add(window(k));
                // Tier 0 may pass an order on before anyone else has seen it (the office sends
                // what it cannot solve, 发单, even offline): its window then ends as it starts.
                let early_ok = k == 0 && round_tier == 0;
                if let Some((_, d)) = declines.iter().find(|(t, d)| {
                    *t == k
                        && (d.ms >= start || early_ok)
                        && d.ms < end
                        && after.is_none_or(|a| *d > a)
                }) {
                    end = d.ms.max(start);
                }
                schedule.push((k, start, Some(end)));
                start = end;
            }
        }
        let start_of = |k: usize| {
            schedule
                .iter()
                .find(|(t, _, _)| *t == k)
                .map(|(_, s, _)| *s)
        };
        let in_round: Vec<&Accept> = accepts
            .iter()
            .filter(|a| after.is_none_or(|r| a.at > r))
            .collect();
        let eligible = |a: &Accept| {
            a.tier >= round_tier
                && match start_of(a.tier) {
                    Some(s) => a.at.ms >= s || (a.tier == 0 && round_tier == 0),
                    None => a.tier == 0 && round_tier == 0,
                }
        };
        let best = in_round
            .iter()
            .filter(|a| eligible(a))
            .min_by(|a, b| (a.at, a.tier, a.signer).cmp(&(b.at, b.tier, b.signer)))
            .map(|a| (*a).clone());
        let Some(best) = best else {
            // No winner in this round: accepts in it were out of turn.
            overturned.extend(in_round.into_iter().cloned());
            break;
        };
        overturned.extend(in_round.into_iter().filter(|a| **a != best).cloned());
        let release = later.iter().find(|(e, site)| {
            matches!(e.event.kind, EventKind::Released { .. })
                && *site == best.site
                && e.event.stamp > best.at
        });
        match release {
            Some((e, _)) => {
                releases += 1;
                used_releases.push(e.id);
                round_tier = (best.tier + 1).min(last);
                round_start = Some(e.event.stamp.ms);
                after = Some(e.event.stamp);
            }
            None => {
                winner = Some(best);
                break;
            }
        }
    }
    overturned.retain(|a| winner.as_ref() != Some(a));
    overturned.sort_by_key(|a| (a.at, a.tier, a.signer));
    overturned.dedup();

    // 6. After the winner.
    let mut lawyer = None;
    let mut dispatched_at = None;
    let mut outcome = None;
    let mut closed_at = None;
    let mut confirmed = false;
    let mut parties = Vec::new();
    for (e, site) in &later {
        let by_winner = winner
            .as_ref()
            .is_some_and(|w| &w.site == site && e.event.stamp > w.at);
        let ok = match &e.event.kind {
            EventKind::Dispatched { lawyer: l }
                if by_winner && closed_at.is_none() && roster.may_dispatch(site, l) =>
            {
                lawyer = Some(l.clone());
                dispatched_at = Some(e.event.stamp);
                true
            }
            EventKind::Closed { outcome: o } if by_winner && closed_at.is_none() => {
                outcome = Some(o.clone());
                closed_at = Some(e.event.stamp);
                true
            }
            EventKind::Confirmed
                if *site == header.origin && closed_at.is_some_and(|c| e.event.stamp > c) =>
            {
                confirmed = true;
                true
            }
            EventKind::PartyJoined { party } if by_winner => {
                parties.push(party.clone());
                true
            }
            EventKind::AgreementSigned { .. } if by_winner => true,
            EventKind::Released { .. } => used_releases.contains(&e.id),
            _ => false,
        };
        if !ok {
            ignored += 1;
        }
    }

    let mut on_call = None;
    let mut next_change = None;
    let status = if confirmed {
        Status::Confirmed
    } else if closed_at.is_some() {
        Status::Closed
    } else if cancelled {
        Status::Cancelled
    } else if lawyer.is_some() {
        Status::Dispatched
    } else if winner.is_some() {
        Status::Accepted
    } else if schedule.is_empty() {
        Status::Queued
    } else {
        let (k, since, until) = schedule
            .iter()
            .copied()
            .find(|(_, s, e)| now >= *s && e.is_none_or(|e| now < e))
            .unwrap_or(schedule[0]);
        on_call = Some(OnCall {
            tier: k,
            site: tiers[k].site.clone(),
            since,
            until,
        });
        let overdue_at = since.saturating_add(window(k));
        if until.is_none() && now >= overdue_at {
            Status::Overdue
        } else {
            next_change = Some(if now < since {
                since
            } else {
                until.unwrap_or(overdue_at)
            });
            Status::OnCall
        }
    };

    Some(OrderState {
        id,
        book: book.clone(),
        header,
        created,
        status,
        chain: tiers.iter().map(|t| t.site.clone()).collect(),
        offered_at,
        on_call,
        winner,
        overturned,
        releases,
        lawyer,
        dispatched_at,
        outcome,
        closed_at,
        messages,
        parties,
        flagged,
        ignored,
        next_change,
    })
}

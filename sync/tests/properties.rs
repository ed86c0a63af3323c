//! Property tests of the rules in DESIGN.md §4: convergence, one winner, forward-only
//! escalation, unauthorised events ignored, and sync convergence of divergent replicas.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use automerge::sync::State;
use automerge::ActorId;
use common::*;
use lawmesh_sync::book::Book;
use lawmesh_sync::event::{Event, EventKind, OrderHeader, SignedEvent};
use lawmesh_sync::fold::{fold_book, fold_order, OrderState};
use lawmesh_sync::ids::{BookId, Channel, OrderId, SiteId};
use lawmesh_sync::keys::SecretKey;
use lawmesh_sync::replica::Action;
use lawmesh_sync::roster::Roster;
use lawmesh_sync::time::{Millis, Stamp};
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use std::sync::OnceLock;

/// Signers in the stories' cast: the origin, the chain, and three who may not act here.
const CAST: [&str; 8] = [
    "village-zhoutian",
    "office-qiuchang",
    "firm-hongtai",
    "centre-district",
    "centre-city",
    "firm-danyuan",    // a firm not paired with Qiuchang
    "village-xiajiao", // a kiosk of another area
    "stranger",        // a key not in the roster
];
const ORIGIN: usize = 0;

struct World {
    roster: Roster,
    keys: Vec<SecretKey>,
    book: BookId,
    order: OrderId,
    t0: Millis,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let net = Net::huiyang(&[], 11);
        let keys: Vec<SecretKey> = CAST
            .iter()
            .map(|s| {
                net.secrets
                    .get(&SiteId::from(*s))
                    .cloned()
                    .unwrap_or_else(|| SecretKey::from_bytes([0xee; 32]))
            })
            .collect();
        let t0 = MONDAY_8AM;
        let book = net
            .roster
            .book_for(&"village-zhoutian".into(), Channel::Consultation, t0)
            .unwrap();
        World {
            roster: net.roster,
            keys,
            book,
            order: OrderId([7; 16]),
            t0,
        }
    })
}

fn sign(who: usize, at: Millis, counter: u32, kind: EventKind) -> SignedEvent {
    let w = world();
    Event {
        order: w.order,
        stamp: Stamp { ms: at, counter },
        signer: w.keys[who].public(),
        kind,
    }
    .sign(&w.keys[who])
}

fn created(live: bool) -> SignedEvent {
    let header = OrderHeader {
        origin: "village-zhoutian".into(),
        channel: Channel::Consultation,
        case_type: "land".into(),
        live,
        name: "张三".into(),
        phone: "1".into(),
        text: "t".into(),
    };
    sign(ORIGIN, world().t0, 0, EventKind::Created(Box::new(header)))
}

/// A random event: kind, signer (index into CAST), minutes after t0, counter.
fn arb_event(
    kinds: &'static [u8],
    signers: &'static [usize],
) -> impl Strategy<Value = SignedEvent> {
    (
        prop::sample::select(kinds),
        prop::sample::select(signers),
        0u64..240,
        0u32..3,
    )
        .prop_map(|(k, who, min, c)| {
            let at = world().t0 + min * MINUTE + u64::from(c) * 7;
            let kind = match k {
                0 => EventKind::Received,
                1 => EventKind::Offered,
                2 => EventKind::Accepted,
                3 => EventKind::Declined {
                    reason: "忙".into(),
                },
                4 => EventKind::Released {
                    reason: "冲突".into(),
                },
                5 => EventKind::Dispatched {
                    lawyer: if c == 0 { "l011".into() } else { "l013".into() },
                },
                6 => EventKind::Closed {
                    outcome: "已解答".into(),
                },
                7 => EventKind::Confirmed,
                8 => EventKind::Cancelled {
                    reason: "撤回".into(),
                },
                _ => EventKind::Message {
                    text: "你好".into(),
                },
            };
            sign(who, at, c, kind)
        })
}

const ALL_KINDS: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const NO_ACCEPTS: &[u8] = &[0, 1, 3, 9];
const NO_RELEASE: &[u8] = &[0, 1, 2, 3, 5, 6, 9];
const ALLOWED: &[usize] = &[0, 1, 2, 3, 4];
const OUTSIDERS: &[usize] = &[5, 6, 7];

fn fold(events: &[SignedEvent], now: Millis) -> Option<OrderState> {
    let w = world();
    fold_order(&w.book, w.order, events, &w.roster, now)
}

fn tier(s: &Option<OrderState>) -> i64 {
    s.as_ref()
        .and_then(|s| s.on_call.as_ref())
        .map_or(-1, |c| c.tier as i64)
}

/// A straightforward model of the on-call schedule and the winner, for orders without release.
fn reference_winner(events: &[SignedEvent], live: bool) -> Option<(SiteId, Stamp)> {
    let w = world();
    let chain = w.roster.chain(&w.book.area, w.book.channel).unwrap();
    let site = |e: &SignedEvent| w.roster.site_of_key(&e.event.signer).cloned();
    let tier = |e: &SignedEvent| site(e).and_then(|s| chain.iter().position(|t| t.site == s));
    let offered = events
        .iter()
        .filter(|e| match e.event.kind {
            EventKind::Offered => site(e).as_ref().map(|s| s.as_str()) == Some("village-zhoutian"),
            EventKind::Received => tier(e).is_some(),
            _ => false,
        })
        .map(|e| e.event.stamp.ms)
        .min();
    let mut starts = vec![None; chain.len()];
    if let Some(mut start) = offered {
        for k in 0..chain.len() {
            starts[k] = Some(start);
            let window = chain[k].window_ms(live);
            let decline = events
                .iter()
                .filter(|e| {
                    matches!(e.event.kind, EventKind::Declined { .. }) && tier(e) == Some(k)
                })
                .map(|e| e.event.stamp.ms)
                .filter(|t| (*t >= start || k == 0) && *t < start + window)
                .min();
            start = decline.map_or(start + window, |d| d.max(start));
        }
    }
    events
        .iter()
        .filter(|e| matches!(e.event.kind, EventKind::Accepted))
        .filter_map(|e| tier(e).map(|k| (e, k)))
        .filter(|(e, k)| *k == 0 || starts[*k].is_some_and(|s| e.event.stamp.ms >= s))
        .min_by_key(|(e, k)| (e.event.stamp, *k, e.event.signer))
        .map(|(e, _)| (site(e).unwrap(), e.event.stamp))
}

fn sync_books(a: &mut Book, b: &mut Book) -> usize {
    let (mut sa, mut sb) = (State::new(), State::new());
    for round in 1..50 {
        let m1 = a.generate_sync(&mut sa);
        if let Some(m) = m1.clone() {
            b.receive(&mut sb, m, |_| Ok(())).unwrap();
        }
        let m2 = b.generate_sync(&mut sb);
        if let Some(m) = m2.clone() {
            a.receive(&mut sa, m, |_| Ok(())).unwrap();
        }
        if m1.is_none() && m2.is_none() {
            return round;
        }
    }
    panic!("books did not converge");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Two replicas that get overlapping parts of an order's events, each in its own order and
    /// with duplicates, compute the same state after syncing — the state of all the events.
    #[test]
    fn the_fold_converges_under_any_delivery_order_and_duplication(
        events in prop::collection::vec(arb_event(ALL_KINDS, ALLOWED), 0..14),
        live in any::<bool>(),
        split in prop::collection::vec(0u8..3, 14),
        seed in any::<u64>(),
        now_min in 0u64..600,
    ) {
        let w = world();
        let mut all = vec![created(live)];
        all.extend(events);
        let mut a = Book::new(w.book.clone(), ActorId::from(&[1u8; 16][..]));
        let mut b = Book::new(w.book.clone(), ActorId::from(&[2u8; 16][..]));
        let mut order: Vec<usize> = (0..all.len()).collect();
        let mut x = seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for (n, &i) in order.iter().enumerate() {
            let to = if i == 0 { 2 } else { split[(i - 1) % split.len()] };
            if to != 1 { a.insert(all[i].clone()).unwrap(); }
            if to != 0 { b.insert(all[i].clone()).unwrap(); }
            if n % 3 == 0 { b.insert(all[i].clone()).unwrap(); a.insert(all[order[0]].clone()).unwrap(); }
        }
        sync_books(&mut a, &mut b);
        let now = w.t0 + now_min * MINUTE;
        let expected = fold(&all, now);
        prop_assert_eq!(fold_book(&a, &w.roster, now).pop(), expected.clone());
        prop_assert_eq!(fold_book(&b, &w.roster, now).pop(), expected);
        prop_assert_eq!(a.heads_hash(), b.heads_hash());
    }

    /// The winner is the eligible accept with the least (t, tier, signer) — as an independent
    /// model computes it — and every other accepting site is told who took the order.
    #[test]
    fn there_is_never_more_than_one_winner(
        events in prop::collection::vec(arb_event(NO_RELEASE, ALLOWED), 0..16),
        live in any::<bool>(),
    ) {
        let mut all = vec![created(live)];
        all.extend(events);
        let state = fold(&all, world().t0 + 600 * MINUTE).unwrap();
        let model = reference_winner(&all, live);
        prop_assert_eq!(state.winner.as_ref().map(|w| (w.site.clone(), w.at)), model);
        if let Some(winner) = &state.winner {
            for a in &state.overturned {
                prop_assert!(a.site == winner.site || state.lost_by(&a.site) == Some(winner));
            }
        }
    }

    /// With no accepts, the tier on call never moves back: not as time passes, and not as more
    /// events arrive.
    #[test]
    fn without_accepts_the_tier_on_call_only_moves_forward(
        events in prop::collection::vec(arb_event(NO_ACCEPTS, ALLOWED), 0..16),
        keep in prop::collection::vec(any::<bool>(), 16),
        live in any::<bool>(),
        mut times in prop::collection::vec(0u64..1_000, 1..12),
    ) {
        let mut all = vec![created(live)];
        all.extend(events.iter().cloned());
        times.sort_unstable();
        let mut last = -1;
        for t in &times {
            let k = tier(&fold(&all, world().t0 + t * MINUTE));
            prop_assert!(k >= last, "tier went back from {} to {} at +{}min", last, k, t);
            last = k;
        }
        let mut subset = vec![created(live)];
        subset.extend(events.iter().zip(&keep).filter(|(_, k)| **k).map(|(e, _)| e.clone()));
        for t in &times {
            let now = world().t0 + t * MINUTE;
            prop_assert!(tier(&fold(&subset, now)) <= tier(&fold(&all, now)));
        }
    }

    /// Events signed by keys not allowed them — a firm not paired with the area, a kiosk of
    /// another area, a key not in the roster — change nothing but the ignored count.
    #[test]
    fn unauthorised_events_change_nothing(
        events in prop::collection::vec(arb_event(ALL_KINDS, ALLOWED), 0..12),
        junk in prop::collection::vec(arb_event(ALL_KINDS, OUTSIDERS), 1..8),
        live in any::<bool>(),
        now_min in 0u64..600,
    ) {
        let mut honest = vec![created(live)];
        honest.extend(events);
        let mut with_junk = honest.clone();
        with_junk.extend(junk.iter().cloned());
        let now = world().t0 + now_min * MINUTE;
        let clean = fold(&honest, now).unwrap();
        let mut dirty = fold(&with_junk, now).unwrap();
        prop_assert_eq!(dirty.ignored, clean.ignored + junk.len());
        dirty.ignored = clean.ignored;
        prop_assert_eq!(dirty, clean);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Replicas that worked apart — orders and actions at the kiosk, office, firm and district —
    /// reach equal books within a bounded number of delivery rounds once linked.
    #[test]
    fn divergent_replicas_sync_to_equal_heads_in_bounded_rounds(
        counts in prop::collection::vec(0usize..12, 4),
        accepts in prop::collection::vec(any::<bool>(), 12),
        seed in any::<u64>(),
    ) {
        let sites = ["village-zhoutian", "office-qiuchang", "firm-hongtai", "centre-district"];
        let mut net = Net::huiyang(&sites, seed);
        // Phase 1: share a few orders so later actions have something to act on.
        net.connect(sites[0], sites[1]);
        net.connect(sites[1], sites[2]);
        net.connect(sites[2], sites[3]);
        let shared: Vec<OrderId> = (0..3).map(|_| net.new_order(sites[0], Channel::Consultation, "land", false)).collect();
        net.run_until_quiet();
        // Phase 2: everyone offline; each works on its own.
        net.disconnect(sites[0], sites[1]);
        net.disconnect(sites[1], sites[2]);
        net.disconnect(sites[2], sites[3]);
        for (i, s) in sites.iter().enumerate() {
            let origin = if i == 3 { "centre-district" } else if i == 0 { "village-zhoutian" } else { "office-qiuchang" };
            if *s == origin {
                for _ in 0..counts[i] {
                    net.new_order(s, Channel::Consultation, "family", accepts[i]);
                    net.advance(MINUTE);
                }
            }
            if accepts[i + 4] && i > 0 {
                let _ = net.try_act(s, shared[i % 3], Action::Accept);
            }
            if accepts[i + 8] {
                let _ = net.try_act(s, shared[(i + 1) % 3], Action::Message("在吗".into()));
            }
        }
        // Phase 3: links back, in a line; sync must settle in bounded rounds.
        net.connect(sites[0], sites[1]);
        net.connect(sites[1], sites[2]);
        net.connect(sites[2], sites[3]);
        let rounds = net.run_until_quiet();
        prop_assert!(rounds <= 16, "took {} rounds", rounds);
        let reference = net.heads(sites[1]);
        for s in &sites[2..] {
            let theirs = net.heads(s);
            for (book, hash) in &reference {
                prop_assert_eq!(theirs.get(book), Some(hash), "{} differs on {}", s, book);
            }
        }
        let village = net.heads(sites[0]);
        for (book, hash) in &village {
            prop_assert_eq!(reference.get(book), Some(hash));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A connected peer that sends garbage — random bytes, or a well-framed sync message for a
    /// book it may hold whose automerge payload is random — is refused; nothing panics and the
    /// books are as they were.
    #[test]
    fn garbage_from_a_peer_is_refused_without_panic_or_damage(
        junk in prop::collection::vec(any::<u8>(), 0..300),
        framed in any::<bool>(),
    ) {
        let mut net = Net::huiyang(&["office-qiuchang", "firm-hongtai"], 5);
        net.connect("office-qiuchang", "firm-hongtai");
        net.new_order("office-qiuchang", Channel::Consultation, "land", true);
        net.run_until_quiet();
        let before = net.heads("office-qiuchang");
        let book = before.keys().next().unwrap().clone();
        let bytes = if framed {
            let mut data = vec![0x42];
            data.extend(&junk);
            lawmesh_sync::wire::Message::Sync { book, data }.encode()
        } else {
            junk
        };
        let from = net.keys[&SiteId::from("firm-hongtai")];
        let now = net.now;
        let fx = net.node_mut("office-qiuchang").receive(now, &mut rand_chacha::ChaCha8Rng::from_seed([1; 32]), from, &bytes);
        prop_assert!(!fx.refused.is_empty() || fx.send.is_empty());
        prop_assert_eq!(net.heads("office-qiuchang"), before);
    }
}

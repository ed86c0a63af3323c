//! Benchmarks of the sync core (run with `cargo bench -p lawmesh-sync`). Results and conditions
//! are recorded in BENCHMARKS.md. Plain timing harness: each measurement is repeated and the
//! median reported, in release mode.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use lawmesh_sync::book::Book;
use lawmesh_sync::event::{Event, EventKind, OrderHeader};
use lawmesh_sync::fold::fold_book;
use lawmesh_sync::ids::{Channel, OrderId, SiteId};
use lawmesh_sync::replica::Action;
use lawmesh_sync::time::Stamp;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let out = f();
        times.push(t.elapsed());
        last = Some(out);
    }
    (median(times), last.expect("at least one run"))
}

/// A 5,000-order book as a busy month leaves it: every order created at a kiosk, received by the
/// office, accepted by the firm and dispatched to a lawyer.
fn big_book(net: &Net, orders: usize) -> Book {
    let book_id = net
        .roster
        .book_for(
            &"village-zhoutian".into(),
            Channel::Consultation,
            MONDAY_8AM,
        )
        .unwrap();
    let mut book = Book::new(book_id, automerge::ActorId::from(&[1u8; 16][..]));
    let key = |s: &str| net.secrets[&SiteId::from(s)].clone();
    let (kiosk, office, firm) = (
        key("village-zhoutian"),
        key("office-qiuchang"),
        key("firm-hongtai"),
    );
    for i in 0..orders {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let order = OrderId(id);
        let t = MONDAY_8AM + i as u64 * 300;
        let ev = |k: &lawmesh_sync::keys::SecretKey, dt: u64, kind| {
            Event {
                order,
                stamp: Stamp {
                    ms: t + dt,
                    counter: 0,
                },
                signer: k.public(),
                kind,
            }
            .sign(k)
        };
        let header = OrderHeader {
            origin: "village-zhoutian".into(),
            channel: Channel::Consultation,
            case_type: "land".into(),
            live: i % 3 == 0,
            name: "王建华".into(),
            phone: "13900000000".into(),
            text: "土地承包合同到期后村委会不续签，想咨询如何维权。".into(),
        };
        book.insert(ev(&kiosk, 0, EventKind::Created(Box::new(header))))
            .unwrap();
        book.insert(ev(&office, 1_000, EventKind::Received))
            .unwrap();
        book.insert(ev(&firm, 60_000, EventKind::Accepted)).unwrap();
        book.insert(ev(
            &firm,
            90_000,
            EventKind::Dispatched {
                lawyer: "l011".into(),
            },
        ))
        .unwrap();
    }
    book
}

fn bench_fold_and_load() {
    let net = Net::huiyang(&[], 1);
    let mut book = big_book(&net, 5_000);
    let now = MONDAY_8AM + 30 * 86_400_000;
    let (t, states) = time(10, || fold_book(&book, &net.roster, now));
    assert_eq!(states.len(), 5_000);
    println!(
        "fold of a 5,000-order book (20,000 events): median {:.1} ms",
        t.as_secs_f64() * 1e3
    );

    let bytes = book.save();
    let (t, _) = time(3, || automerge::Automerge::load(&bytes).unwrap());
    println!(
        "  (automerge::Automerge::load alone: {:.1} ms)",
        t.as_secs_f64() * 1e3
    );
    let doc = automerge::Automerge::load(&bytes).unwrap();
    let (t, n) = time(3, || {
        use automerge::ReadDoc;
        doc.map_range(automerge::ROOT, ..).count()
    });
    println!(
        "  (map_range over {n} entries: {:.1} ms)",
        t.as_secs_f64() * 1e3
    );
    let (t, loaded) = time(5, || {
        Book::load(
            book.id().clone(),
            automerge::ActorId::from(&[2u8; 16][..]),
            &bytes,
        )
        .unwrap()
    });
    assert_eq!(loaded.order_count(), 5_000);
    println!(
        "load of a 5,000-order book: median {:.1} ms; stored {} bytes ({:.0} B/order)",
        t.as_secs_f64() * 1e3,
        bytes.len(),
        bytes.len() as f64 / 5_000.0
    );
}

fn bench_divergence(k: usize) {
    let sites = ["office-qiuchang", "firm-hongtai"];
    let mut net = Net::huiyang(&sites, 2);
    net.connect(sites[0], sites[1]);
    // A shared history of 1,000 orders.
    let base: Vec<OrderId> = (0..1_000)
        .map(|_| net.new_order(sites[0], Channel::Consultation, "land", false))
        .collect();
    // The office has triaged them all and sent them on (发单): the firm is on call.
    for o in &base {
        net.act(sites[0], *o, Action::Decline("发单".into()));
    }
    net.run_until_quiet();
    net.disconnect(sites[0], sites[1]);
    // Apart: the office takes k new requests; the firm accepts k of the shared orders.
    let persisted_before: usize = net
        .nodes
        .values()
        .map(|n| n.stored.values().map(Vec::len).sum::<usize>())
        .sum();
    for _ in 0..k {
        net.new_order(sites[0], Channel::Consultation, "family", false);
    }
    for o in base.iter().take(k) {
        net.act(sites[1], *o, Action::Accept);
    }
    let persisted_after: usize = net
        .nodes
        .values()
        .map(|n| n.stored.values().map(Vec::len).sum::<usize>())
        .sum();
    let own_changes = persisted_after - persisted_before;
    net.traffic.clear();
    let t = Instant::now();
    net.connect(sites[0], sites[1]);
    let rounds = net.run_until_quiet();
    let elapsed = t.elapsed();
    assert_eq!(net.heads(sites[0]), net.heads(sites[1]));
    let (a_to_b, b_to_a) = net.bytes_between(sites[0], sites[1]);
    println!(
        "sync after divergence k={k:>5} (+{k} orders at the office, {k} accepts at the firm, on 1,000 shared): \
         {:.1} ms, {rounds} rounds, office→firm {a_to_b} B, firm→office {b_to_a} B; \
         {:.0} B on the wire per event moved ({} events: the orders, the accepts, and the firm's receipts) \
         vs {:.0} B of automerge change per event written alone",
        elapsed.as_secs_f64() * 1e3,
        (a_to_b + b_to_a) as f64 / (3 * k) as f64,
        3 * k,
        own_changes as f64 / (2 * k) as f64,
    );
}

fn bench_resync_unchanged() {
    let sites = ["office-qiuchang", "centre-district"];
    let mut net = Net::huiyang(&sites, 3);
    net.connect(sites[0], sites[1]);
    // 100 books: 5 channels × 20 months, one order each.
    for _month in 0..20 {
        for ch in Channel::ALL {
            net.new_order(sites[0], ch, "land", false);
        }
        net.advance(31 * 86_400_000);
    }
    net.run_until_quiet();
    assert_eq!(net.node(sites[0]).books().count(), 100);
    net.disconnect(sites[0], sites[1]);
    net.traffic.clear();
    let t = Instant::now();
    net.connect(sites[0], sites[1]);
    let rounds = net.run_until_quiet();
    let elapsed = t.elapsed();
    let msgs: u64 = net.traffic.values().map(|t| t.messages).sum();
    let (a, b) = net.bytes_between(sites[0], sites[1]);
    println!(
        "resync of 100 unchanged books: {:.2} ms, {rounds} round(s), {msgs} messages, {a} B + {b} B",
        elapsed.as_secs_f64() * 1e3
    );
}

fn main() {
    println!("lawmesh-sync benchmarks (release build)");
    bench_fold_and_load();
    for k in [10, 100, 1_000] {
        bench_divergence(k);
    }
    bench_resync_unchanged();
}

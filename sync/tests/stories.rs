//! Stories of the people in MISSION.md, told over an in-memory network of real replicas.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use lawmesh_sync::fold::Status;
use lawmesh_sync::ids::{Channel, SiteId};
use lawmesh_sync::keys::SecretKey;
use lawmesh_sync::replica::Action;
use lawmesh_sync::roster::signed::SignedRoster;
use lawmesh_sync::roster::NodeEntry;
use lawmesh_sync::wire::Message;
use rand_chacha::rand_core::SeedableRng;

const QIUCHANG_MESH: [&str; 5] = [
    "village-zhoutian",
    "office-qiuchang",
    "firm-hongtai",
    "centre-district",
    "centre-city",
];

/// The office's LAN and the WAN: office ↔ firm, office ↔ district, firm ↔ district, district ↔ city.
fn wire_wan(net: &mut Net, firm: &str) {
    net.connect("office-qiuchang", firm);
    net.connect("office-qiuchang", "centre-district");
    net.connect(firm, "centre-district");
    net.connect("centre-district", "centre-city");
    net.run_until_quiet();
}

#[test]
fn a_village_kiosk_offline_all_morning_still_reaches_its_paired_firm_first() {
    let mut net = Net::huiyang(&QIUCHANG_MESH, 1);
    let firm = net.paired_firm("office-qiuchang");
    assert_eq!(firm, "firm-hongtai");
    wire_wan(&mut net, &firm);

    // 08:00–12:00: 周田's kiosk has no uplink. The liaison officer helps three residents.
    let mut orders = Vec::new();
    for case in ["land", "family", "labour"] {
        orders.push(net.new_order("village-zhoutian", Channel::Consultation, case, false));
        net.advance(HOUR);
    }
    net.advance(HOUR);
    for o in &orders {
        let s = net
            .state("village-zhoutian", *o)
            .expect("kept at the kiosk");
        assert_eq!(
            s.status,
            Status::Queued,
            "nobody outside has seen it, so it does not escalate"
        );
        assert!(net.state(&firm, *o).is_none());
        assert!(net.state("centre-district", *o).is_none());
    }

    // 12:00: the link to the office comes back.
    let noon = net.now;
    net.connect("village-zhoutian", "office-qiuchang");
    net.run_until_quiet();
    for o in &orders {
        let at_firm = net
            .state(&firm, *o)
            .expect("relayed by the office to the paired firm");
        assert_eq!(
            at_firm.offered_at,
            Some(noon),
            "the escalation clock starts when the office receives it"
        );
        let on_call = at_firm.on_call.expect("open");
        assert_eq!(on_call.tier, 0);
        assert_eq!(
            on_call.site.as_str(),
            "office-qiuchang",
            "four hours offline did not skip the office"
        );
        assert!(
            net.state("centre-city", *o).is_some(),
            "the centres hold every book of the district"
        );
    }

    // The office cannot solve the land case and sends it on (发单): the firm is on call at once.
    net.act(
        "office-qiuchang",
        orders[0],
        Action::Decline("需要律师专业意见".into()),
    );
    net.run_until_quiet();
    let s = net.state(&firm, orders[0]).expect("order");
    assert_eq!(
        s.on_call.as_ref().map(|c| c.site.to_string()),
        Some(firm.clone())
    );
    net.act(&firm, orders[0], Action::Accept);
    net.run_until_quiet();
    let lawyer = {
        let s = net.state(&firm, orders[0]).expect("order");
        let today = lawmesh_sync::time::Date::at(net.now, 480);
        let load = lawmesh_sync::suggest::lawyer_load(&net.node(&firm).orders(net.now));
        let list = lawmesh_sync::suggest::suggest_lawyers(
            &net.roster,
            &SiteId::from(firm.as_str()),
            &s.header.case_type,
            today,
            &load,
        );
        assert!(
            list[0].specialty_match,
            "a land lawyer of the firm comes first"
        );
        list[0].lawyer.clone()
    };
    net.act(&firm, orders[0], Action::Dispatch(lawyer.clone()));
    net.run_until_quiet();
    for s in QIUCHANG_MESH {
        let st = net.state(s, orders[0]).expect("everyone holds it");
        assert_eq!(st.status, Status::Dispatched, "{s}");
        assert_eq!(st.lawyer.as_ref(), Some(&lawyer));
        assert_eq!(
            st.winner.as_ref().map(|w| w.site.to_string()),
            Some(firm.clone())
        );
    }
}

#[test]
fn a_firm_that_misses_a_live_call_hands_it_to_the_district_then_the_city() {
    let mut net = Net::huiyang(&QIUCHANG_MESH, 2);
    let firm = net.paired_firm("office-qiuchang");
    wire_wan(&mut net, &firm);
    net.connect("village-zhoutian", "office-qiuchang");

    // A resident waits at the Qiuchang office's kiosk; the office needs a lawyer now.
    let order = net.new_order("office-qiuchang", Channel::Consultation, "labour", true);
    net.run_until_quiet();
    let start = net
        .state(&firm, order)
        .and_then(|s| s.offered_at)
        .expect("offered when the firm received it");
    let tier_at = |net: &Net, site: &str| {
        net.state(site, order)
            .and_then(|s| s.on_call)
            .map(|c| c.site.to_string())
    };

    assert_eq!(
        tier_at(&net, "centre-city").as_deref(),
        Some("office-qiuchang")
    );
    net.advance(start + 5 * MINUTE - net.now); // the office's 5 live minutes pass
    assert_eq!(tier_at(&net, "centre-city"), Some(firm.clone()));
    net.advance(10 * MINUTE); // the firm's 10 minutes pass: nobody picked up
    assert_eq!(
        tier_at(&net, "centre-city").as_deref(),
        Some("centre-district")
    );
    net.advance(10 * MINUTE); // the district centre's line is busy too
    for s in QIUCHANG_MESH {
        assert_eq!(
            tier_at(&net, s).as_deref(),
            Some("centre-city"),
            "{s} agrees the city is on call"
        );
    }
    // The city duty lawyer, picked deterministically from today's duty list, takes it.
    net.act("centre-city", order, Action::Accept);
    net.run_until_quiet();
    let today = lawmesh_sync::time::Date::at(net.now, 480);
    let duty = net.roster.duty_lawyers(&SiteId::from("centre-city"), today);
    let pick = lawmesh_sync::suggest::duty_pick(&net.roster, &order, &"labour".into(), &duty)
        .expect("duty lawyer");
    net.act("centre-city", order, Action::Dispatch(pick.clone()));
    net.run_until_quiet();
    for s in QIUCHANG_MESH {
        let st = net.state(s, order).expect("order");
        assert_eq!(
            st.winner.as_ref().map(|w| (w.site.as_str(), w.tier)),
            Some(("centre-city", 3))
        );
        assert_eq!(st.lawyer.as_ref(), Some(&pick));
    }

    // A second live order nobody answers at all: the backstop's window passes and it is overdue.
    let lost = net.new_order("office-qiuchang", Channel::Consultation, "family", true);
    net.run_until_quiet();
    net.advance(56 * MINUTE);
    assert_eq!(
        net.state("centre-city", lost).map(|s| s.status),
        Some(Status::Overdue)
    );
}

#[test]
fn two_accepts_across_a_partition_settle_on_one_winner_everywhere() {
    let mut net = Net::huiyang(&QIUCHANG_MESH, 3);
    let firm = net.paired_firm("office-qiuchang");
    wire_wan(&mut net, &firm);
    net.connect("village-zhoutian", "office-qiuchang");
    let order = net.new_order("office-qiuchang", Channel::Consultation, "contract", true);
    net.run_until_quiet();
    net.advance(16 * MINUTE); // past the firm's window: the district centre is on call

    // The firm's uplink drops. It sees the order late and accepts it anyway, offline.
    net.disconnect(&firm, "office-qiuchang");
    net.disconnect(&firm, "centre-district");
    net.act(&firm, order, Action::Accept);
    net.advance(MINUTE);
    // A minute later the district centre, on call and unaware, accepts too.
    net.act("centre-district", order, Action::Accept);
    net.run_until_quiet();
    assert_eq!(
        net.state("centre-district", order)
            .and_then(|s| s.winner)
            .map(|w| w.site.to_string())
            .as_deref(),
        Some("centre-district"),
        "before healing, the district believes it has the order"
    );

    // The link heals. The firm's earlier accept wins; the district's screen says who took it.
    net.connect(&firm, "centre-district");
    net.connect(&firm, "office-qiuchang");
    net.run_until_quiet();
    for s in QIUCHANG_MESH {
        let st = net.state(s, order).expect("order");
        assert_eq!(
            st.winner.as_ref().map(|w| w.site.to_string()),
            Some(firm.clone()),
            "{s}"
        );
        let taken_by = st
            .lost_by(&SiteId::from("centre-district"))
            .expect("district lost it");
        assert_eq!(taken_by.site.to_string(), firm);
    }
    let heads: Vec<_> = QIUCHANG_MESH.iter().map(|s| net.heads(s)).collect();
    assert!(
        heads.windows(2).all(|w| w[0] == w[1]),
        "every replica holds the same books"
    );

    // The overturned district cannot dispatch; the firm can.
    assert!(net
        .try_act("centre-district", order, Action::Dispatch("l001".into()))
        .is_err());
}

#[test]
fn a_firm_not_paired_with_an_area_never_receives_its_book() {
    let outsider = "firm-danyuan";
    let mut sites = QIUCHANG_MESH.to_vec();
    sites.push(outsider);
    let mut net = Net::huiyang(&sites, 4);
    let firm = net.paired_firm("office-qiuchang");
    assert!(net
        .roster
        .doc()
        .pairings
        .iter()
        .all(|p| p.firm.as_str() != outsider));
    wire_wan(&mut net, &firm);
    net.connect(outsider, "office-qiuchang");
    net.connect(outsider, "centre-district");
    net.connect(outsider, "village-zhoutian");
    net.connect("village-zhoutian", "office-qiuchang");
    for case in ["land", "family"] {
        net.new_order("village-zhoutian", Channel::Consultation, case, false);
        net.new_order("office-qiuchang", Channel::Mediation, case, true);
    }
    net.run_until_quiet();
    net.advance(3 * HOUR);
    assert_eq!(
        net.node(outsider).books().count(),
        0,
        "the unpaired firm holds no Qiuchang book"
    );
    assert!(net.node(&firm).books().count() >= 2);

    // If it asks anyway with a forged sync message, the office refuses and drops it.
    let book = net
        .node("office-qiuchang")
        .books()
        .next()
        .expect("a book")
        .id()
        .clone();
    let bogus = Message::Sync {
        book,
        data: vec![0x42, 0, 0, 0, 0],
    }
    .encode();
    let key = net.keys[&SiteId::from(outsider)];
    let now = net.now;
    let fx = net.node_mut("office-qiuchang").receive(
        now,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(9),
        key,
        &bogus,
    );
    assert_eq!(fx.refused.len(), 1);
    assert!(
        fx.refused[0].reason.contains("may not hold"),
        "{}",
        fx.refused[0].reason
    );
    assert!(fx.send.is_empty());
}

#[test]
fn a_key_outside_the_roster_is_refused_and_garbage_never_breaks_a_book() {
    let mut net = Net::huiyang(&QIUCHANG_MESH, 5);
    let firm = net.paired_firm("office-qiuchang");
    wire_wan(&mut net, &firm);
    let order = net.new_order("office-qiuchang", Channel::Consultation, "land", true);
    net.run_until_quiet();

    let stranger = SecretKey::from_bytes([77; 32]).public();
    let now = net.now;
    let fx = net.node_mut("office-qiuchang").connected(now, stranger);
    assert!(
        fx.send.is_empty(),
        "no summary, let alone a book, for a stranger"
    );
    assert_eq!(fx.refused.len(), 1);

    // A connected peer that sends garbage is dropped; the book is untouched.
    let before = net.heads("office-qiuchang");
    let district = net.keys[&SiteId::from("centre-district")];
    for junk in [vec![], vec![1u8], vec![1, 1, 0xff, 0xff, 0xff], vec![9; 40]] {
        let fx = net.node_mut("office-qiuchang").receive(
            now,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(1),
            district,
            &junk,
        );
        assert!(!fx.refused.is_empty());
        let _ = net.node_mut("office-qiuchang").connected(now, district);
    }
    assert_eq!(net.heads("office-qiuchang"), before);
    assert!(net.state("office-qiuchang", order).is_some());
}

#[test]
fn a_newer_roster_signed_by_the_authority_spreads_and_a_forged_one_does_not() {
    let mut net = Net::huiyang(&QIUCHANG_MESH, 6);
    let firm = net.paired_firm("office-qiuchang");
    // The bureau registers a replacement kiosk key for 周田 in roster version 3; the district
    // centre is restarted with it.
    let mut nodes = net.roster.doc().nodes.clone();
    nodes.push(NodeEntry {
        key: SecretKey::from_bytes([42; 32]).public(),
        site: "village-zhoutian".into(),
    });
    let v3 = net.roster.with_nodes(nodes, 3).expect("roster v3");
    let signed = SignedRoster::sign(&v3, &net.authority).expect("sign");
    net.restart("centre-district", v3.clone(), signed);

    wire_wan(&mut net, &firm);
    for s in QIUCHANG_MESH.iter().filter(|s| **s != "village-zhoutian") {
        assert_eq!(
            net.node(s).roster().version(),
            3,
            "{s} took the newer roster"
        );
    }
    net.connect("village-zhoutian", "office-qiuchang");
    net.run_until_quiet();
    assert_eq!(
        net.node("village-zhoutian").roster().version(),
        3,
        "relayed onwards by the office"
    );

    // A roster "v4" signed by someone else is refused and its sender dropped.
    let forged = SignedRoster::sign(
        &v3.with_nodes(v3.doc().nodes.clone(), 4).expect("v4"),
        &SecretKey::from_bytes([66; 32]),
    )
    .expect("sign");
    let now = net.now;
    let from = net.keys[&SiteId::from("centre-district")];
    let fx = net.node_mut(&firm).receive(
        now,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
        from,
        &Message::Roster(forged.encode()).encode(),
    );
    assert!(
        fx.refused[0].reason.contains("signature"),
        "{}",
        fx.refused[0].reason
    );
    assert_eq!(net.node(&firm).roster().version(), 3);
}

#[test]
fn a_restarted_node_reloads_what_it_persisted_and_carries_on() {
    let mut net = Net::huiyang(&QIUCHANG_MESH, 7);
    let firm = net.paired_firm("office-qiuchang");
    wire_wan(&mut net, &firm);
    let orders: Vec<_> = (0..5)
        .map(|_| {
            net.new_order(
                "village-zhoutian",
                Channel::Consultation,
                "neighbour",
                false,
            )
        })
        .collect();
    net.connect("village-zhoutian", "office-qiuchang");
    net.run_until_quiet();
    assert!(
        net.try_act(&firm, orders[1], Action::Accept).is_err(),
        "the firm cannot take an order while the office is still on call"
    );
    net.act(
        "office-qiuchang",
        orders[1],
        Action::Decline("转律所".into()),
    );
    net.run_until_quiet();
    net.act(&firm, orders[1], Action::Accept);
    net.run_until_quiet();
    let expected = net.node("office-qiuchang").orders(net.now);
    assert_eq!(expected.len(), 5);

    let (roster, signed) = (net.roster.clone(), net.signed.clone());
    net.restart("office-qiuchang", roster, signed);
    assert_eq!(
        net.node("office-qiuchang").orders(net.now),
        expected,
        "everything persisted came back"
    );

    // It writes again after the restart (a fresh actor, no sequence clash) and syncs.
    net.act(
        "office-qiuchang",
        orders[2],
        Action::Decline("转律所".into()),
    );
    net.connect("office-qiuchang", &firm);
    net.connect("office-qiuchang", "village-zhoutian");
    net.run_until_quiet();
    let s = net.state(&firm, orders[2]).expect("order");
    assert_eq!(s.on_call.map(|c| c.site.to_string()), Some(firm.clone()));
}

#[test]
fn a_settled_book_stays_cold_after_a_restart_until_someone_writes_to_it() {
    let mut net = Net::huiyang(&QIUCHANG_MESH[..3], 8);
    let firm = net.paired_firm("office-qiuchang");
    net.connect("village-zhoutian", "office-qiuchang");
    net.connect("office-qiuchang", &firm);
    let order = net.new_order("village-zhoutian", Channel::Consultation, "family", true);
    net.run_until_quiet();
    net.act("office-qiuchang", order, Action::Decline("发单".into()));
    net.run_until_quiet();
    net.act(&firm, order, Action::Accept);
    net.act(&firm, order, Action::Dispatch("l013".into()));
    net.act(&firm, order, Action::Close("已调解".into()));
    net.run_until_quiet();
    net.act("village-zhoutian", order, Action::Confirm);
    net.run_until_quiet();

    assert_eq!(
        net.state("office-qiuchang", order).map(|s| s.status),
        Some(Status::Confirmed)
    );
    let (roster, signed) = (net.roster.clone(), net.signed.clone());
    net.restart_with("office-qiuchang", roster, signed, true);
    let office = net.node("office-qiuchang");
    assert_eq!(
        office.books().count(),
        0,
        "the settled book stays on disk, not in memory"
    );
    assert_eq!(
        office.book_hashes().len(),
        1,
        "but it is still held and summarised"
    );
    assert_eq!(
        net.state("office-qiuchang", order).map(|s| s.status),
        Some(Status::Confirmed)
    );

    // Reconnecting with equal books does not wake it; a new message from the firm does.
    net.connect("office-qiuchang", &firm);
    net.run_until_quiet();
    assert_eq!(net.node("office-qiuchang").books().count(), 0);
    net.act(&firm, order, Action::Message("回访：居民满意".into()));
    net.run_until_quiet();
    assert_eq!(net.node("office-qiuchang").books().count(), 1);
    assert_eq!(net.heads("office-qiuchang"), net.heads(&firm));
    assert_eq!(
        net.state("office-qiuchang", order).map(|s| s.messages),
        Some(1)
    );
}

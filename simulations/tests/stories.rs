//! Stories a planner would tell: three calm days, and a township whose uplink is down from 07:00
//! to 19:00 every day, so what it queued reaches the others only after the firms have closed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use lawmesh_sim::run;
use lawmesh_sim::scenario::Scenario;

/// Huiyang with no faults at all: no failures, no loss, no crashes.
const CALM: &str = r#"
name = "calm"
description = "no faults"
days = 3
[workload]
load_factor = 8.0
[network.village_lan]
mtbf_hours = 0.0
loss = 0.0
burst_every_hours = 0.0
[network.township_uplink]
mtbf_hours = 0.0
loss = 0.0
burst_every_hours = 0.0
[network.urban]
mtbf_hours = 0.0
loss = 0.0
[network.backbone]
mtbf_hours = 0.0
[network.desk]
mtbf_hours = 0.0
loss = 0.0
[nodes.crash_every_days]
village = 0.0
office = 0.0
firm = 0.0
district_centre = 0.0
city_centre = 0.0
desk = 0.0
"#;

#[test]
fn with_no_outages_live_requests_are_served_at_the_first_tiers() {
    let sc = Scenario::from_toml("calm", CALM).unwrap();
    let out = run(&sc, 3, None, &mut |_, _| {}).unwrap();
    let r = &out.report;
    assert!(r.end_check.passed, "{:?}", r.end_check.failures);
    let live: Vec<_> = out.detail.orders.iter().filter(|o| o.live).collect();
    assert!(live.len() >= 20, "want a real sample, got {}", live.len());
    let first_tiers = live
        .iter()
        .filter(|o| {
            o.winner
                .as_ref()
                .is_some_and(|w| matches!(w.2, "office" | "firm" | "desk"))
        })
        .count();
    assert!(
        first_tiers * 10 >= live.len() * 8,
        "{first_tiers} of {} live requests taken by the office, firm or desk",
        live.len()
    );
    assert_eq!(r.overturned.accepts, 0, "no partitions, no double work");
    assert!(
        r.time_to_accept.live.p50 <= 15.0,
        "{:?}",
        r.time_to_accept.live
    );
}

#[test]
fn a_long_uplink_outage_shifts_acceptance_towards_the_centres() {
    // Make Liangjing the busiest township so the comparison has a sample.
    let calm = Scenario::from_toml("calm", CALM)
        .unwrap()
        .with_param("workload.area_weight.liangjing", "30.0")
        .unwrap();
    let mut cut = calm.clone();
    cut.outages.push(lawmesh_sim::scenario::Outage {
        what: "uplink:office-liangjing".into(),
        from: "07:00".into(),
        hours: 12.0,
        on: "daily".into(),
        day: 1,
        share: 1.0,
    });
    let at_centres = |sc: &Scenario| {
        let out = run(sc, 5, None, &mut |_, _| {}).unwrap();
        assert!(
            out.report.end_check.passed,
            "{:?}",
            out.report.end_check.failures
        );
        let area = &out.report.areas["liangjing"];
        assert!(area.orders >= 15, "want a sample, got {}", area.orders);
        area.at_centres
    };
    let (before, after) = (at_centres(&calm), at_centres(&cut));
    assert!(
        after >= before + 0.15,
        "share taken by the district or city centre: {before} without the outage, {after} with it"
    );
}

//! `cargo bench -p lawmesh-sim`: wall time of whole runs (plain timing, one run each; the
//! runs are deterministic, so repeated runs differ only by machine noise).
//!
//! Reports simulated node-hours per wall-second, and checks the figures of DESIGN.md §8: a year
//! of Huiyang at 10× its recorded load within 10 s, the city-scale preset for 30 days within
//! 60 s. Pass a preset name to run only that one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use lawmesh_sim::run;
use lawmesh_sim::scenario::Scenario;
use std::time::Instant;

// The same allocator as the `lawmesh-sim` binary, so the figures are what a planner sees.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let cases: [(&str, u32, Option<f64>); 3] = [
        ("huiyang-baseline", 30, None),
        ("huiyang-10x", 365, Some(10.0)),
        ("city-scale", 30, Some(60.0)),
    ];
    println!(
        "{:<18} {:>5} {:>6} {:>8} {:>10} {:>12} {:>9} {:>16} {:>7}",
        "scenario",
        "days",
        "nodes",
        "orders",
        "events",
        "node-hours",
        "wall s",
        "node-h / wall s",
        "target"
    );
    for (name, days, target) in cases {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let sc = Scenario::load(name).unwrap();
        let t = Instant::now();
        let out = run(&sc, 1, Some(days), &mut |_, _| {}).unwrap();
        let wall = t.elapsed().as_secs_f64();
        let r = &out.report;
        assert!(r.end_check.passed, "{name}: {:?}", r.end_check.failures);
        let orders: u64 = r.orders.values().map(|c| c.created).sum();
        let verdict = match target {
            Some(limit) if wall <= limit => format!("≤{limit:.0} s ok"),
            Some(limit) => format!(">{limit:.0} s MISSED"),
            None => "-".into(),
        };
        println!(
            "{:<18} {:>5} {:>6} {:>8} {:>10} {:>12.0} {:>9.2} {:>16.0} {:>7}",
            name,
            days,
            r.run.nodes,
            orders,
            r.run.events,
            r.run.node_hours,
            wall,
            r.run.node_hours / wall,
            verdict
        );
    }
}

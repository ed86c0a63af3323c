//! Swarm testing: 50 seeds, each with its own randomised fault mix (loss, bursts, link failures,
//! crashes that lose unflushed writes, clock skew, outage windows), one day each. After healing,
//! every end-check invariant must hold: identical books on all entitled replicas, nothing lost
//! or duplicated, one winner, nobody left waiting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use lawmesh_sim::run;
use lawmesh_sim::swarm::swarm;
use std::sync::Mutex;

const SEEDS: u64 = 50;

#[test]
fn invariants_hold_across_fifty_random_fault_mixes() {
    let failures = Mutex::new(Vec::new());
    let faults = Mutex::new(0u64);
    let next = Mutex::new(1u64);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let seed = {
                    let mut n = next.lock().unwrap();
                    let s = *n;
                    *n += 1;
                    s
                };
                if seed > SEEDS {
                    break;
                }
                let sc = swarm(seed).unwrap();
                let r = run(&sc, seed, None, &mut |_, _| {}).unwrap().report;
                *faults.lock().unwrap() += r.faults.link_outages + r.faults.node_crashes;
                if !r.end_check.passed {
                    failures.lock().unwrap().push(format!(
                        "seed {seed}: {:?}\n  reproduce with: {}",
                        r.end_check.failures, r.run.reproduce
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        faults.into_inner().unwrap() > SEEDS,
        "the fault mixes must actually inject faults"
    );
}

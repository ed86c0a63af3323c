//! Swarm testing (as in TigerBeetle's simulator): each seed draws its own fault mix — loss and
//! bursts per link class, random link failures, crash rates, flush intervals, clock skew, and a
//! few outage windows on random targets — over the Huiyang roster, at a load high enough to keep
//! every site busy. The scenario `swarm-N` is this mix for seed N, so a failure reproduces with
//! `lawmesh-sim run swarm-N --seed N --days 1`.

use crate::random::SimRng;
use crate::role::ByRole;
use crate::scenario::{LinkClass, Outage, Scenario, ScenarioError};
use lawmesh_sync::roster::Roster;

/// The prefix of swarm scenario names.
pub const PREFIX: &str = "swarm-";

fn class(rng: &mut SimRng, base: &LinkClass) -> LinkClass {
    LinkClass {
        loss: rng.unit() * 0.05,
        burst_every_hours: if rng.chance(0.5) {
            1.0 + rng.unit() * 12.0
        } else {
            0.0
        },
        burst_minutes: 1.0 + rng.unit() * 30.0,
        burst_loss: 0.3 + rng.unit() * 0.6,
        mtbf_hours: if rng.chance(0.6) {
            1.0 + rng.unit() * 24.0
        } else {
            0.0
        },
        mttr_minutes: 2.0 + rng.unit() * 120.0,
        ..base.clone()
    }
}

/// The swarm scenario for `mix`.
pub fn swarm(mix: u64) -> Result<Scenario, ScenarioError> {
    let name = format!("{PREFIX}{mix}");
    let mut s = Scenario::from_toml(&name, &format!("name = \"{name}\"\ndays = 1"))?;
    s.description = "randomised fault mix over Huiyang (swarm testing)".into();
    s.source = Some(name.clone());
    let mut rng = SimRng::new(mix ^ 0x5741_524d);
    s.workload.load_factor = 1.5 + rng.unit() * 2.5;
    let n = &mut s.network;
    n.village_lan = class(&mut rng, &n.village_lan);
    n.township_uplink = class(&mut rng, &n.township_uplink);
    n.urban = class(&mut rng, &n.urban);
    n.backbone = class(&mut rng, &n.backbone);
    n.desk = class(&mut rng, &n.desk);
    n.max_retransmits = 2 + rng.below(6) as u32;
    let mut crash = || {
        if rng.chance(0.5) {
            0.2 + rng.unit() * 3.0
        } else {
            0.0
        }
    };
    s.nodes.crash_every_days = ByRole::new(crash(), crash(), crash(), crash(), crash(), crash());
    s.nodes.restart_minutes = 1.0 + rng.unit() * 60.0;
    s.nodes.flush_interval_ms = 50 + rng.below(5_000) as u64;
    s.nodes.clock_skew_ms = rng.unit() * 120_000.0;
    let sites: Vec<String> = Roster::huiyang()
        .map(|r| r.sites().iter().map(|x| x.id.to_string()).collect())
        .unwrap_or_default();
    for _ in 0..rng.below(4) {
        let site = sites
            .get(rng.below(sites.len()))
            .cloned()
            .unwrap_or_default();
        let what = match rng.below(4) {
            0 => format!("uplink:{site}"),
            1 => format!("site:{site}"),
            2 => format!("node:{site}"),
            _ => "class:township_uplink".to_owned(),
        };
        s.outages.push(Outage {
            what,
            from: format!("{:02}:{:02}", 6 + rng.below(10), rng.below(60)),
            hours: 0.5 + rng.unit() * 8.0,
            on: "once".into(),
            day: 1,
            share: rng.unit(),
        });
    }
    Ok(s)
}

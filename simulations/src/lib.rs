//! # lawmesh-sim: outage simulations for planners
//!
//! Planners at the district justice bureau ask "what happens if…" — the Liangjing uplink is
//! down six hours a day, a typhoon cuts the rural links, the district centre has two duty
//! lawyers instead of three. This crate answers with the production rules: it runs the real
//! [`lawmesh_sync::replica::Replica`] for every site of a scenario, in one thread, on a
//! virtual clock, driven by one seeded RNG. The same scenario and seed give the same run, byte
//! for byte.
//!
//! ## How a run goes
//!
//! 1. **World** ([`scenario`], [`city`], [`topology`]): the roster (Huiyang's, the generated
//!    city, or a file) gets a node key per site; sites are linked by class (village LAN,
//!    township uplink, urban, backbone, desk).
//! 2. **Faulty phase** (the engine, with `network`, `faults`, `staff`, `workload`):
//!    residents arrive; staff pick up, decline, accept, dispatch, close; links go down in fixed
//!    windows and at random (MTBF/MTTR), lose messages in bursts, connections die; nodes crash
//!    and lose what they had not flushed, then restart from their disk; clocks are skewed.
//!    The engine carries out each replica's effects as a node does: persist, send, wake.
//! 3. **Healed phase**: every link and node comes back, no new residents or faults; the world
//!    runs until nothing is left to do.
//! 4. **End check** (`check`): identical books on all entitled replicas, nothing lost or
//!    duplicated, one winner everywhere, nobody left waiting.
//! 5. **Report** ([`report`], [`summary()`], [`csv`], [`charts`]): service levels, tiers,
//!    overdue, overturned accepts and wasted lawyer-minutes, subsidies, traffic, storage.
//!
//! [`sweep`] runs combinations of parameters over seeds in parallel; [`run()`] is one run.

pub mod charts;
mod check;
pub mod city;
pub mod csv;
mod engine;
mod faults;
pub mod hours;
mod link;
mod network;
mod node;
pub mod progress;
pub mod random;
pub mod report;
pub mod role;
mod run;
pub mod scenario;
mod staff;
mod storage;
pub mod summary;
pub mod swarm;
pub mod sweep;
pub mod topology;
mod truth;
mod workload;
mod world;

pub use check::EndCheck;
pub use engine::SimError;
pub use run::{run, Outcome};
pub use summary::summary;

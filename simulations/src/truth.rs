//! What really happened, as the simulator saw it from outside the mesh: when each resident
//! arrived, which orders were acknowledged, when each site accepted, which lawyer worked on
//! what and for how long. The report compares the replicas' view against it.

use lawmesh_sync::ids::{CaseType, Channel, LawyerId, OrderId};
use lawmesh_sync::time::Millis;
use std::collections::BTreeMap;

/// One acknowledged order.
#[derive(Debug, Clone)]
pub(crate) struct OrderTruth {
    pub(crate) origin: usize,
    pub(crate) channel: Channel,
    pub(crate) case_type: CaseType,
    pub(crate) live: bool,
    /// When the resident's request was saved (simulation time).
    pub(crate) created: Millis,
    /// Accepts made by staff: (node, simulation time).
    pub(crate) accepts: Vec<(usize, Millis)>,
}

/// A stretch of work by a lawyer or clerk on one order at one site.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) node: usize,
    pub(crate) order: OrderId,
    pub(crate) lawyer: Option<LawyerId>,
    pub(crate) clerk: Option<usize>,
    pub(crate) start: Millis,
    /// Planned end; cut short when the site learns another site took the order.
    pub(crate) end: Millis,
}

/// Everything recorded during a run.
#[derive(Debug, Default)]
pub(crate) struct Truth {
    pub(crate) orders: BTreeMap<OrderId, OrderTruth>,
    /// Finished or cut jobs.
    pub(crate) jobs: Vec<Job>,
    /// Residents who came while their kiosk's node was down.
    pub(crate) turned_away: u64,
    /// Staff actions the replica refused (the order had moved on meanwhile).
    pub(crate) refused_actions: u64,
    /// Peers a replica refused (must stay 0: every node is honest here).
    pub(crate) refusals: Vec<String>,
    /// Connections that died of loss.
    pub(crate) connection_resets: u64,
    /// Random link failures.
    pub(crate) link_failures: u64,
    /// Events processed and messages delivered.
    pub(crate) events: u64,
    pub(crate) delivered: u64,
}

//! One simulated site: the real replica, its disk, its clock, and whether it is running.

use crate::role::Role;
use crate::storage::Storage;
use lawmesh_sync::ids::{AreaId, NodeKey, SiteId};
use lawmesh_sync::keys::SecretKey;
use lawmesh_sync::replica::Replica;
use lawmesh_sync::roster::SiteKind;
use lawmesh_sync::time::Millis;
use std::collections::BTreeMap;

/// A site's node.
#[derive(Debug)]
pub(crate) struct SimNode {
    pub(crate) site: SiteId,
    pub(crate) kind: SiteKind,
    pub(crate) role: Role,
    pub(crate) area: Option<AreaId>,
    pub(crate) key: NodeKey,
    pub(crate) secret: SecretKey,
    /// The running replica; `None` while the node is down.
    pub(crate) replica: Option<Replica>,
    pub(crate) disk: Storage,
    /// Clock offset: the node's wall clock reads `now + skew`.
    pub(crate) skew: i64,
    /// When the replica asked to be ticked, in the node's clock.
    pub(crate) wake_at: Option<Millis>,
    /// The earliest wake-up already in the event queue, in simulation time.
    pub(crate) wake_queued: Option<Millis>,
    /// Links of this node, by the peer's node index.
    pub(crate) peer_link: BTreeMap<usize, usize>,
    /// Down after a random crash.
    pub(crate) crashed: bool,
    /// Down inside fixed power-cut windows (a count: windows may overlap).
    pub(crate) forced_down: u32,
    /// Crashes so far.
    pub(crate) crashes: u64,
}

impl SimNode {
    /// Is the node running?
    pub(crate) fn up(&self) -> bool {
        self.replica.is_some()
    }
    /// Should the node be running?
    pub(crate) fn should_run(&self) -> bool {
        !self.crashed && self.forced_down == 0
    }
    /// The node's clock reading at simulation time `now`.
    pub(crate) fn local(&self, now: Millis) -> Millis {
        (now as i64 + self.skew).max(0) as Millis
    }
    /// The simulation time at which the node's clock reads `local`.
    pub(crate) fn sim_time(&self, local: Millis) -> Millis {
        (local as i64 - self.skew).max(0) as Millis
    }
}

//! Links and messages: connecting and disconnecting replicas as links and nodes come and go,
//! and carrying each message across its link.

use crate::engine::{Engine, Ev};
use crate::link::Transmit;
use lawmesh_sync::ids::NodeKey;

impl Engine {
    /// Bring link `l`'s connection in line with the state of the link and its two nodes,
    /// telling both replicas when it comes up or goes down.
    pub(crate) fn refresh_link(&mut self, l: usize) {
        let (a, b) = (self.links[l].a, self.links[l].b);
        let usable = self.links[l].healthy() && self.nodes[a].up() && self.nodes[b].up();
        if usable == self.links[l].connected {
            return;
        }
        let now = self.now;
        self.links[l].set_connected(usable, now);
        if usable {
            if let Some(since) = self.links[l].down_since.take() {
                self.links[l].down_ms += now - since;
            }
        } else if self.links[l].down_since.is_none() {
            self.links[l].down_since = Some(now);
            self.links[l].downs += 1;
        }
        for (x, y) in [(a, b), (b, a)] {
            let peer = self.nodes[y].key;
            let local = self.local_now(x);
            let Some(r) = self.nodes[x].replica.as_mut() else {
                continue;
            };
            let fx = if usable {
                r.connected(local, peer)
            } else {
                r.disconnected(local, peer)
            };
            self.apply(x, fx, false);
        }
    }

    /// Node `from` sends `bytes` to the node with key `to`.
    pub(crate) fn send(&mut self, from: usize, to: NodeKey, bytes: Vec<u8>) {
        let Some(&j) = self.key_index.get(&to) else {
            return;
        };
        let Some(&l) = self.nodes[from].peer_link.get(&j) else {
            return;
        };
        if !self.links[l].connected {
            return;
        }
        let lossless = self.healing;
        let max = self.sc.network.max_retransmits;
        let epoch = self.links[l].epoch;
        match self.links[l].transmit(from, bytes.len(), self.now, lossless, max, &mut self.rng) {
            Transmit::Arrives(t) => self.at(
                t,
                Ev::Deliver {
                    link: l,
                    to: j,
                    epoch,
                    bytes,
                },
            ),
            Transmit::ConnectionDies(t) => self.at(t, Ev::ConnectionDies { link: l, epoch }),
        }
    }

    /// A message arrives, if its connection still lives.
    pub(crate) fn deliver(&mut self, l: usize, to: usize, epoch: u64, bytes: &[u8]) {
        let link = &self.links[l];
        if !link.connected || link.epoch != epoch {
            return;
        }
        let from = self.nodes[link.peer(to)].key;
        let local = self.local_now(to);
        let Some(r) = self.nodes[to].replica.as_mut() else {
            return;
        };
        self.truth.delivered += 1;
        let fx = r.receive(local, self.rng.core(), from, bytes);
        self.apply(to, fx, false);
    }

    /// Too many losses in a row: the connection is dropped and dialled again later.
    pub(crate) fn connection_dies(&mut self, l: usize, epoch: u64) {
        if self.links[l].epoch != epoch || !self.links[l].connected || self.healing {
            return;
        }
        self.truth.connection_resets += 1;
        self.links[l].redialing = true;
        self.refresh_link(l);
        let at = self.now + self.sc.network.redial_seconds * 1_000;
        self.at(at, Ev::Redial(l));
    }
}

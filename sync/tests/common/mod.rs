//! An in-memory, deterministic network of replicas for story and property tests: no sockets, no
//! clock, one seeded RNG. Links are connected and cut by hand; messages are delivered in FIFO
//! order per run; `run_until_quiet` delivers until nobody has anything to say.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

use lawmesh_sync::fold::OrderState;
use lawmesh_sync::ids::{BookId, Channel, NodeKey, OrderId, SiteId};
use lawmesh_sync::keys::SecretKey;
use lawmesh_sync::replica::{Action, Effects, NewOrder, Persist, Replica};
use lawmesh_sync::roster::signed::SignedRoster;
use lawmesh_sync::roster::{NodeEntry, Roster};
use lawmesh_sync::time::Millis;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// 2026-12-07 08:00 in Beijing (a Monday).
pub const MONDAY_8AM: Millis = 1_796_601_600_000;
pub const MINUTE: Millis = 60_000;
pub const HOUR: Millis = 60 * MINUTE;

pub struct Node {
    pub replica: Replica,
    /// What the node persisted, per book: snapshot + appended chunks.
    pub stored: BTreeMap<BookId, Vec<u8>>,
    pub wake_at: Option<Millis>,
}

#[derive(Default, Debug, Clone, Copy)]
pub struct Traffic {
    pub messages: u64,
    pub bytes: u64,
}

pub struct Net {
    pub now: Millis,
    pub rng: ChaCha8Rng,
    pub roster: Roster,
    pub authority: SecretKey,
    pub nodes: BTreeMap<SiteId, Node>,
    pub keys: BTreeMap<SiteId, NodeKey>,
    pub secrets: BTreeMap<SiteId, SecretKey>,
    pub signed: SignedRoster,
    links: BTreeSet<(SiteId, SiteId)>,
    queue: VecDeque<(SiteId, SiteId, Vec<u8>)>,
    /// Bytes and messages per directed pair.
    pub traffic: BTreeMap<(SiteId, SiteId), Traffic>,
    /// Refusals seen: (refusing site, peer site, reason).
    pub refusals: Vec<(SiteId, SiteId, String)>,
    /// Delivery rounds run by the last `run_until_quiet`.
    pub last_rounds: usize,
}

pub fn site(s: &str) -> SiteId {
    SiteId::from(s)
}

impl Net {
    /// A mesh of the Huiyang roster with a node for each of `sites`; every site of the roster
    /// gets a key registered, so the roster is the one a provisioned district would have.
    pub fn huiyang(sites: &[&str], seed: u64) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let base = Roster::huiyang().expect("shipped roster");
        let authority = SecretKey::generate(&mut rng);
        let mut secrets = BTreeMap::new();
        let mut nodes = Vec::new();
        for s in base.sites() {
            let k = SecretKey::generate(&mut rng);
            nodes.push(NodeEntry {
                key: k.public(),
                site: s.id.clone(),
            });
            secrets.insert(s.id.clone(), k);
        }
        let roster = base.with_nodes(nodes, 2).expect("roster with keys");
        let signed = SignedRoster::sign(&roster, &authority).expect("sign");
        let mut net = Net {
            now: MONDAY_8AM,
            rng,
            roster: roster.clone(),
            authority: authority.clone(),
            nodes: BTreeMap::new(),
            keys: secrets
                .iter()
                .map(|(s, k)| (s.clone(), k.public()))
                .collect(),
            secrets: secrets.clone(),
            signed: signed.clone(),
            links: BTreeSet::new(),
            queue: VecDeque::new(),
            traffic: BTreeMap::new(),
            refusals: Vec::new(),
            last_rounds: 0,
        };
        for s in sites {
            let secret = secrets[&site(s)].clone();
            let replica = Replica::new(
                secret,
                authority.public(),
                roster.clone(),
                Some(signed.clone()),
                &mut net.rng,
            )
            .expect("replica");
            net.nodes.insert(
                site(s),
                Node {
                    replica,
                    stored: BTreeMap::new(),
                    wake_at: None,
                },
            );
        }
        net
    }

    /// Stop a node (its links drop) and start it again from what it persisted, under `roster`.
    pub fn restart(&mut self, s: &str, roster: Roster, signed: SignedRoster) {
        self.restart_with(s, roster, signed, false);
    }

    /// Restart, optionally keeping settled books cold.
    pub fn restart_with(&mut self, s: &str, roster: Roster, signed: SignedRoster, cold: bool) {
        let peers: Vec<SiteId> = self
            .links
            .iter()
            .filter_map(|(a, b)| {
                if a.as_str() == s {
                    Some(b.clone())
                } else if b.as_str() == s {
                    Some(a.clone())
                } else {
                    None
                }
            })
            .collect();
        for p in &peers {
            self.disconnect(s, p.as_str());
        }
        let stored = self.nodes[&site(s)].stored.clone();
        let mut replica = Replica::new(
            self.secrets[&site(s)].clone(),
            self.authority.public(),
            roster,
            Some(signed),
            &mut self.rng,
        )
        .expect("replica");
        replica.set_cold_settled(cold);
        for (book, bytes) in &stored {
            replica
                .load_book(book.clone(), bytes, self.now)
                .expect("stored book loads");
        }
        self.nodes.insert(
            site(s),
            Node {
                replica,
                stored,
                wake_at: None,
            },
        );
    }

    pub fn node(&self, s: &str) -> &Replica {
        &self.nodes[&site(s)].replica
    }

    pub fn node_mut(&mut self, s: &str) -> &mut Replica {
        &mut self.nodes.get_mut(&site(s)).expect("node").replica
    }

    fn site_of(&self, key: &NodeKey) -> SiteId {
        self.keys
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(s, _)| s.clone())
            .expect("known key")
    }

    pub fn linked(&self, a: &SiteId, b: &SiteId) -> bool {
        let pair = if a < b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        self.links.contains(&pair)
    }

    /// Carry out a node's effects: persist, queue sends on live links, drop refused peers.
    pub fn apply(&mut self, at: &SiteId, fx: Effects) {
        let node = self.nodes.get_mut(at).expect("node");
        for p in fx.persist {
            match p {
                Persist::BookChunk { book, bytes } => {
                    node.stored.entry(book).or_default().extend(bytes)
                }
                Persist::BookSnapshot { book, bytes } => {
                    node.stored.insert(book, bytes);
                }
                Persist::SyncState { .. } | Persist::Roster(_) => {}
            }
        }
        node.wake_at = fx.wake_at;
        for out in fx.send {
            let to = self.site_of(&out.to);
            if self.linked(at, &to) {
                let t = self.traffic.entry((at.clone(), to.clone())).or_default();
                t.messages += 1;
                t.bytes += out.bytes.len() as u64;
                self.queue.push_back((at.clone(), to, out.bytes));
            }
        }
        for r in fx.refused {
            let peer = self.site_of(&r.peer);
            self.refusals.push((at.clone(), peer.clone(), r.reason));
            self.disconnect(at.as_str(), peer.as_str());
        }
    }

    pub fn connect(&mut self, a: &str, b: &str) {
        let (a, b) = (site(a), site(b));
        let pair = if a < b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        if !self.links.insert(pair) {
            return;
        }
        let now = self.now;
        for (x, y) in [(&a, &b), (&b, &a)] {
            if let Some(key) = self.keys.get(y).copied() {
                if self.nodes.contains_key(y) {
                    let fx = self
                        .nodes
                        .get_mut(x)
                        .expect("node")
                        .replica
                        .connected(now, key);
                    self.apply(x, fx);
                }
            }
        }
    }

    pub fn disconnect(&mut self, a: &str, b: &str) {
        let (a, b) = (site(a), site(b));
        let pair = if a < b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        if !self.links.remove(&pair) {
            return;
        }
        self.queue
            .retain(|(f, t, _)| !((f == &a && t == &b) || (f == &b && t == &a)));
        let now = self.now;
        for (x, y) in [(&a, &b), (&b, &a)] {
            let key = self.keys[y];
            if let Some(n) = self.nodes.get_mut(x) {
                let fx = n.replica.disconnected(now, key);
                self.apply(x, fx);
            }
        }
    }

    /// Deliver messages until none are left; returns the number of delivery rounds (a round
    /// delivers every message queued at its start).
    pub fn run_until_quiet(&mut self) -> usize {
        let mut rounds = 0;
        while !self.queue.is_empty() {
            rounds += 1;
            assert!(rounds < 1_000, "sync did not settle");
            let batch: Vec<_> = self.queue.drain(..).collect();
            for (from, to, bytes) in batch {
                if !self.linked(&from, &to) {
                    continue;
                }
                let from_key = self.keys[&from];
                let now = self.now;
                let node = self.nodes.get_mut(&to).expect("node");
                let fx = node.replica.receive(now, &mut self.rng, from_key, &bytes);
                self.apply(&to, fx);
            }
        }
        self.last_rounds = rounds;
        rounds
    }

    /// Move the clock forward, waking nodes whose timers come due, and sync what follows.
    pub fn advance(&mut self, by: Millis) {
        let until = self.now + by;
        loop {
            let next = self
                .nodes
                .values()
                .filter_map(|n| n.wake_at)
                .filter(|t| *t <= until)
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            let due: Vec<SiteId> = self
                .nodes
                .iter()
                .filter(|(_, n)| n.wake_at.is_some_and(|w| w <= self.now))
                .map(|(s, _)| s.clone())
                .collect();
            for s in due {
                let now = self.now;
                let fx = self.nodes.get_mut(&s).expect("node").replica.tick(now);
                self.apply(&s, fx);
            }
            self.run_until_quiet();
        }
        self.now = until;
    }

    pub fn new_order(
        &mut self,
        at: &str,
        channel: Channel,
        case_type: &str,
        live: bool,
    ) -> OrderId {
        let req = NewOrder {
            channel,
            case_type: case_type.into(),
            live,
            name: "王建华".into(),
            phone: "13900000000".into(),
            text: "土地承包合同到期后村委会不续签".into(),
        };
        let now = self.now;
        let node = self.nodes.get_mut(&site(at)).expect("node");
        let (id, fx) = node
            .replica
            .create_order(now, &mut self.rng, req)
            .expect("order accepted");
        assert!(
            fx.persist
                .iter()
                .any(|p| matches!(p, Persist::BookChunk { .. })),
            "an order is acknowledged only with bytes to persist"
        );
        self.apply(&site(at), fx);
        id
    }

    pub fn act(&mut self, at: &str, order: OrderId, action: Action) {
        let now = self.now;
        let fx = self
            .node_mut(at)
            .act(now, order, action)
            .expect("action allowed");
        self.apply(&site(at), fx);
    }

    pub fn try_act(&mut self, at: &str, order: OrderId, action: Action) -> Result<(), String> {
        let now = self.now;
        let fx = self
            .node_mut(at)
            .act(now, order, action)
            .map_err(|e| e.to_string())?;
        self.apply(&site(at), fx);
        Ok(())
    }

    pub fn state(&self, at: &str, order: OrderId) -> Option<OrderState> {
        self.node(at).order(&order, self.now)
    }

    pub fn heads(&self, at: &str) -> BTreeMap<BookId, [u8; 32]> {
        self.node(at)
            .books()
            .map(|b| (b.id().clone(), b.heads_hash()))
            .collect()
    }

    pub fn bytes_between(&self, a: &str, b: &str) -> (u64, u64) {
        let get = |x: &str, y: &str| self.traffic.get(&(site(x), site(y))).map_or(0, |t| t.bytes);
        (get(a, b), get(b, a))
    }

    pub fn paired_firm(&self, office: &str) -> String {
        self.roster
            .paired_firm(&site(office))
            .expect("paired")
            .to_string()
    }
}

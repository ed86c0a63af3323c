//! The discrete-event engine: one virtual clock, one event queue, one seeded RNG, and the real
//! `lawmesh-sync` replica for every site. It carries out the replicas' effects exactly as a node
//! would — persist, then send, then wake at the asked time — over simulated links and disks.
//!
//! Cost grows with events, not with idle nodes: a node is touched only when a message reaches
//! it, when the time it asked to be woken comes, or when a person there acts. Behaviour lives in
//! sibling modules that add to [`Engine`]: `network` (links and messages), `faults` (outages
//! and crashes), `staff` (people at sites), `workload` (residents).

use crate::faults::{resolve_outages, OutageTarget};
use crate::hours::{day_start, DAY};
use crate::link::Link;
use crate::node::SimNode;
use crate::random::SimRng;
use crate::role::Role;
use crate::scenario::{Scenario, ScenarioError};
use crate::staff::StaffModel;
use crate::truth::Truth;
use crate::workload::WorkloadModel;
use lawmesh_sync::ids::{CaseType, Channel, NodeKey, OrderId, SiteId};
use lawmesh_sync::keys::SecretKey;
use lawmesh_sync::replica::{CommandError, Effects, Replica};
use lawmesh_sync::roster::{NodeEntry, Roster, RosterError};
use lawmesh_sync::time::{Date, Millis};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use thiserror::Error;

/// Why a run could not start.
#[derive(Debug, Error)]
pub enum SimError {
    /// The scenario is wrong.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The roster is wrong.
    #[error("roster: {0}")]
    Roster(#[from] RosterError),
    /// A replica refused to start.
    #[error("a replica refused to start: {0}")]
    Replica(#[from] CommandError),
}

/// Something that happens at a point of simulated time.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A new day: residents' arrivals, fixed outage windows.
    Day(u32),
    /// A resident asks at a kiosk.
    Arrival {
        node: usize,
        channel: Channel,
        case_type: CaseType,
        live: bool,
    },
    /// A message reaches node `to` over `link`, if the connection it was sent on still lives.
    Deliver {
        link: usize,
        to: usize,
        epoch: u64,
        bytes: Vec<u8>,
    },
    /// A connection dies of loss.
    ConnectionDies {
        link: usize,
        epoch: u64,
    },
    /// Dial a dead connection again.
    Redial(usize),
    /// A replica's wake-up time.
    Wake(usize),
    /// A node's periodic flush.
    Flush(usize),
    /// A fixed outage window of a link opens (`down`) or closes.
    LinkWindow {
        link: usize,
        down: bool,
    },
    /// A random link failure, and its repair.
    LinkFail(usize),
    LinkRepair(usize),
    /// A fixed power-cut window of a node opens or closes.
    NodeWindow {
        node: usize,
        down: bool,
    },
    /// A random crash, and the restart.
    NodeCrash(usize),
    NodeRestart(usize),
    /// Staff at a site look at an order.
    Pickup {
        node: usize,
        order: OrderId,
    },
    /// A lawyer or clerk finishes serving.
    ServiceDone {
        node: usize,
        order: OrderId,
    },
    /// The resident confirms the service at the kiosk.
    Confirm {
        node: usize,
        order: OrderId,
    },
}

impl Ev {
    /// Events that are part of the world's work, kept when the mesh is healed; the others
    /// (arrivals, faults, days) stop.
    fn is_work(&self) -> bool {
        matches!(
            self,
            Ev::Deliver { .. }
                | Ev::Wake(_)
                | Ev::Flush(_)
                | Ev::Pickup { .. }
                | Ev::ServiceDone { .. }
                | Ev::Confirm { .. }
        )
    }
}

struct Scheduled {
    at: Millis,
    seq: u64,
    ev: Ev,
}
impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: the heap pops the earliest (then the first scheduled).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending {
    /// When the faults stopped and everything was healed.
    pub(crate) healed_at: Millis,
    /// When the healed mesh went quiet (or the heal deadline).
    pub(crate) quiet_at: Millis,
    /// Did it go quiet before the deadline?
    pub(crate) quiescent: bool,
}

/// A whole simulated world.
pub(crate) struct Engine {
    pub(crate) sc: Scenario,
    pub(crate) seed: u64,
    pub(crate) days: u32,
    pub(crate) rng: SimRng,
    pub(crate) roster: Roster,
    pub(crate) authority: NodeKey,
    pub(crate) offset: i32,
    pub(crate) now: Millis,
    pub(crate) start: Millis,
    pub(crate) end: Millis,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) key_index: BTreeMap<NodeKey, usize>,
    pub(crate) site_index: BTreeMap<SiteId, usize>,
    pub(crate) links: Vec<Link>,
    pub(crate) staff: StaffModel,
    pub(crate) workload: WorkloadModel,
    pub(crate) truth: Truth,
    pub(crate) healing: bool,
    /// The scenario's outage rules, resolved to links and nodes.
    pub(crate) outages: Vec<OutageTarget>,
    /// Signatures already checked by some replica of this run.
    pub(crate) verified: lawmesh_sync::event::SharedVerified,
    trace: Sha256,
}

impl Engine {
    /// Build the world of `sc` for `days` days from `seed`.
    pub(crate) fn new(sc: &Scenario, seed: u64, days: u32) -> Result<Engine, SimError> {
        let mut rng = SimRng::new(seed);
        let base = crate::world::base_roster(sc)?;
        let authority = SecretKey::generate(rng.core());
        let secrets: Vec<SecretKey> = base
            .sites()
            .iter()
            .map(|_| SecretKey::generate(rng.core()))
            .collect();
        let entries = base
            .sites()
            .iter()
            .zip(&secrets)
            .map(|(s, k)| NodeEntry {
                key: k.public(),
                site: s.id.clone(),
            })
            .collect();
        let roster = base.with_nodes(entries, base.version() + 1)?;
        let offset = roster.utc_offset_minutes();
        let start_date = Date::parse(&sc.start).ok_or_else(|| ScenarioError::Invalid {
            name: sc.name.clone(),
            what: format!("start `{}` is not a date", sc.start),
        })?;
        let start = day_start(start_date, offset);
        let mut nodes = Vec::with_capacity(secrets.len());
        // Every replica of the run checks a given event's signature once between them.
        let verified = lawmesh_sync::event::VerifiedEvents::shared(1 << 20);
        for (site, secret) in roster.sites().iter().zip(secrets) {
            let skew = (rng.normal() * sc.nodes.clock_skew_ms).round() as i64;
            let mut replica = Replica::new(
                secret.clone(),
                authority.public(),
                roster.clone(),
                None,
                rng.core(),
            )?;
            replica.set_resync_after(sc.nodes.resync_after_ms);
            replica.set_verified_cache(verified.clone());
            replica.set_cold_settled(true);
            nodes.push(SimNode {
                site: site.id.clone(),
                kind: site.kind,
                role: Role::of(site.kind),
                area: site.area.clone(),
                key: secret.public(),
                secret,
                replica: Some(replica),
                disk: Default::default(),
                skew,
                wake_at: None,
                wake_queued: None,
                peer_link: BTreeMap::new(),
                crashed: false,
                forced_down: 0,
                crashes: 0,
            });
        }
        let mut links = Vec::new();
        for spec in crate::topology::links(&roster) {
            let params = spec.kind.params(&sc.network).clone();
            let id = links.len();
            nodes[spec.a].peer_link.insert(spec.b, id);
            nodes[spec.b].peer_link.insert(spec.a, id);
            links.push(Link::new(spec.a, spec.b, spec.kind, params));
        }
        let key_index = nodes.iter().enumerate().map(|(i, n)| (n.key, i)).collect();
        let site_index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.site.clone(), i))
            .collect();
        let outages = resolve_outages(sc, &nodes, &links, &mut rng)?;
        let staff = StaffModel::new(sc, &roster, &nodes)?;
        let workload = WorkloadModel::new(sc, &roster, &nodes);
        Ok(Engine {
            sc: sc.clone(),
            seed,
            days,
            rng,
            authority: authority.public(),
            offset,
            now: start,
            start,
            end: start + Millis::from(days) * DAY,
            queue: BinaryHeap::new(),
            seq: 0,
            nodes,
            key_index,
            site_index,
            links,
            staff,
            workload,
            truth: Truth::default(),
            healing: false,
            outages,
            verified,
            trace: Sha256::new(),
            roster,
        })
    }

    /// Put an event on the queue.
    pub(crate) fn at(&mut self, at: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    /// Run the faulty phase, then heal everything and run to quiescence.
    pub(crate) fn run(&mut self, progress: &mut dyn FnMut(u32, u32)) -> Ending {
        self.at(self.start, Ev::Day(0));
        self.plan_faults();
        for l in 0..self.links.len() {
            self.refresh_link(l);
        }
        while let Some(next) = self.queue.peek() {
            if next.at >= self.end {
                break;
            }
            self.step(progress);
        }
        self.now = self.end;
        progress(self.days, self.days);
        self.heal();
        let deadline = self.end + (self.sc.check.heal_max_days * DAY as f64) as Millis;
        let mut quiet_at = self.now;
        while let Some(next) = self.queue.peek() {
            if next.at > deadline {
                break;
            }
            quiet_at = next.at;
            self.step(progress);
        }
        Ending {
            healed_at: self.end,
            quiet_at,
            quiescent: self.queue.is_empty(),
        }
    }

    fn step(&mut self, progress: &mut dyn FnMut(u32, u32)) {
        let Some(Scheduled { at, ev, .. }) = self.queue.pop() else {
            return;
        };
        self.now = at;
        self.truth.events += 1;
        self.trace_event(&ev);
        match ev {
            Ev::Day(d) => {
                progress(d, self.days);
                self.new_day(d);
            }
            Ev::Arrival {
                node,
                channel,
                case_type,
                live,
            } => self.arrival(node, channel, case_type, live),
            Ev::Deliver {
                link,
                to,
                epoch,
                bytes,
            } => self.deliver(link, to, epoch, &bytes),
            Ev::ConnectionDies { link, epoch } => self.connection_dies(link, epoch),
            Ev::Redial(l) => {
                self.links[l].redialing = false;
                self.refresh_link(l);
            }
            Ev::Wake(i) => self.wake(i),
            Ev::Flush(i) => self.flush(i),
            Ev::LinkWindow { link, down } => self.link_window(link, down),
            Ev::LinkFail(l) => self.link_fail(l),
            Ev::LinkRepair(l) => self.link_repair(l),
            Ev::NodeWindow { node, down } => self.node_window(node, down),
            Ev::NodeCrash(i) => self.node_crash(i),
            Ev::NodeRestart(i) => self.node_restart(i),
            Ev::Pickup { node, order } => self.pickup(node, order),
            Ev::ServiceDone { node, order } => self.service_done(node, order),
            Ev::Confirm { node, order } => self.confirm(node, order),
        }
    }

    fn trace_event(&mut self, ev: &Ev) {
        let (tag, a, b): (u8, u64, u64) = match ev {
            Ev::Day(d) => (1, u64::from(*d), 0),
            Ev::Arrival { node, .. } => (2, *node as u64, 0),
            Ev::Deliver {
                link, to, bytes, ..
            } => {
                self.trace.update(bytes);
                (3, *link as u64, *to as u64)
            }
            Ev::ConnectionDies { link, .. } => (4, *link as u64, 0),
            Ev::Redial(l) => (5, *l as u64, 0),
            Ev::Wake(i) => (6, *i as u64, 0),
            Ev::Flush(i) => (7, *i as u64, 0),
            Ev::LinkWindow { link, down } => (8, *link as u64, u64::from(*down)),
            Ev::LinkFail(l) => (9, *l as u64, 0),
            Ev::LinkRepair(l) => (10, *l as u64, 0),
            Ev::NodeWindow { node, down } => (11, *node as u64, u64::from(*down)),
            Ev::NodeCrash(i) => (12, *i as u64, 0),
            Ev::NodeRestart(i) => (13, *i as u64, 0),
            Ev::Pickup { node, order } => {
                self.trace.update(order.0);
                (14, *node as u64, 0)
            }
            Ev::ServiceDone { node, order } => {
                self.trace.update(order.0);
                (15, *node as u64, 0)
            }
            Ev::Confirm { node, order } => {
                self.trace.update(order.0);
                (16, *node as u64, 0)
            }
        };
        self.trace.update(self.now.to_le_bytes());
        self.trace.update([tag]);
        self.trace.update(a.to_le_bytes());
        self.trace.update(b.to_le_bytes());
    }

    /// The hash of every event processed so far, in order.
    pub(crate) fn trace_hash(&self) -> String {
        lawmesh_sync::ids::hex(&self.trace.clone().finalize())
    }

    /// Stop the faults: every link and node comes back, no more residents or failures.
    fn heal(&mut self) {
        self.healing = true;
        let mut kept: Vec<Scheduled> = std::mem::take(&mut self.queue).into_vec();
        kept.retain(|s| s.ev.is_work());
        self.queue = kept.into();
        for l in &mut self.links {
            l.windows_down = 0;
            l.failed = false;
            l.redialing = false;
        }
        for i in 0..self.nodes.len() {
            self.nodes[i].crashed = false;
            self.nodes[i].forced_down = 0;
            if !self.nodes[i].up() {
                self.node_restart(i);
            }
        }
        for l in 0..self.links.len() {
            self.refresh_link(l);
        }
    }

    /// Carry out a replica's effects: persist (flushed at once if `ack`: someone is told the
    /// action succeeded), then send, then note the wake-up, then let staff see what changed.
    pub(crate) fn apply(&mut self, i: usize, fx: Effects, ack: bool) {
        let Effects {
            persist,
            send,
            changed,
            refused,
            wake_at,
            ..
        } = fx;
        if self.nodes[i].disk.stage(persist) {
            if ack {
                self.flush(i);
            } else if !self.nodes[i].disk.flush_due {
                self.nodes[i].disk.flush_due = true;
                let at = self.now + self.sc.nodes.flush_interval_ms;
                self.at(at, Ev::Flush(i));
            }
        }
        self.nodes[i].wake_at = wake_at;
        self.schedule_wake(i);
        for out in send {
            self.send(i, out.to, out.bytes);
        }
        for r in refused {
            let peer = self
                .key_index
                .get(&r.peer)
                .map(|&j| self.nodes[j].site.clone());
            self.truth.refusals.push(format!(
                "{} refused {}: {}",
                self.nodes[i].site,
                peer.map_or_else(|| r.peer.to_string(), |s| s.to_string()),
                r.reason
            ));
        }
        for (_, order) in changed {
            self.on_changed(i, order);
        }
    }

    fn schedule_wake(&mut self, i: usize) {
        let n = &self.nodes[i];
        let Some(w) = n.wake_at else { return };
        let t = n.sim_time(w).max(self.now);
        if n.wake_queued.is_none_or(|q| t < q) {
            self.nodes[i].wake_queued = Some(t);
            self.at(t, Ev::Wake(i));
        }
    }

    fn wake(&mut self, i: usize) {
        if self.nodes[i].wake_queued == Some(self.now) {
            self.nodes[i].wake_queued = None;
        }
        let n = &self.nodes[i];
        let due = n.wake_at.is_some_and(|w| n.sim_time(w) <= self.now);
        if !due {
            self.schedule_wake(i);
            return;
        }
        let local = n.local(self.now);
        if let Some(r) = self.nodes[i].replica.as_mut() {
            let fx = r.tick(local);
            self.apply(i, fx, false);
        }
    }

    /// Flush node `i`'s staged writes, compacting books that outgrew their snapshot.
    pub(crate) fn flush(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if !node.up() {
            return;
        }
        for book in node.disk.flush() {
            if let Some(p) = node.replica.as_mut().and_then(|r| r.compact(&book)) {
                node.disk.write(p);
            }
        }
    }

    /// The node's clock now.
    pub(crate) fn local_now(&self, i: usize) -> Millis {
        self.nodes[i].local(self.now)
    }

    /// The local date at node `i`.
    pub(crate) fn today(&self, i: usize) -> Date {
        Date::at(self.local_now(i), self.offset)
    }
}

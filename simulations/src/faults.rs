//! Faults: fixed outage windows from the scenario, random link failures by class (MTBF/MTTR),
//! random node crashes that lose unflushed writes, and restarts from what was flushed.

use crate::engine::{Engine, Ev};
use crate::hours::{day_start, parse_hhmm, MINUTE};
use crate::link::Link;
use crate::node::SimNode;
use crate::random::SimRng;
use crate::scenario::{Outage, Scenario, ScenarioError};
use crate::topology::LinkKind;
use lawmesh_sync::replica::Replica;
use lawmesh_sync::roster::SiteKind;
use lawmesh_sync::time::{Date, Millis};

/// What one outage rule takes down.
#[derive(Debug, Clone)]
pub(crate) enum OutageTarget {
    /// These links.
    Links(Vec<usize>),
    /// These nodes (power cut).
    Nodes(Vec<usize>),
}

/// Resolve the scenario's outage rules to links and nodes. `class:` rules draw their share of
/// links here, once per run.
pub(crate) fn resolve_outages(
    sc: &Scenario,
    nodes: &[SimNode],
    links: &[Link],
    rng: &mut SimRng,
) -> Result<Vec<OutageTarget>, ScenarioError> {
    let bad = |o: &Outage, why: &str| ScenarioError::Invalid {
        name: sc.name.clone(),
        what: format!("outage `{}`: {why}", o.what),
    };
    let node_of = |o: &Outage, site: &str| {
        nodes
            .iter()
            .position(|n| n.site.as_str() == site)
            .ok_or_else(|| bad(o, &format!("no site `{site}` in the roster")))
    };
    let links_of = |i: usize| {
        links
            .iter()
            .enumerate()
            .filter(move |(_, l)| l.a == i || l.b == i)
    };
    let mut out = Vec::new();
    for o in &sc.outages {
        let (kind, arg) = o
            .what
            .split_once(':')
            .ok_or_else(|| bad(o, "want uplink:, site:, node:, link: or class:"))?;
        let target = match kind {
            "uplink" => {
                let i = node_of(o, arg)?;
                let village = nodes[i].kind == SiteKind::VillageKiosk;
                OutageTarget::Links(
                    links_of(i)
                        .filter(|(_, l)| village || l.kind != LinkKind::VillageLan)
                        .map(|(k, _)| k)
                        .collect(),
                )
            }
            "site" => OutageTarget::Links(links_of(node_of(o, arg)?).map(|(k, _)| k).collect()),
            "node" => OutageTarget::Nodes(vec![node_of(o, arg)?]),
            "link" => {
                let (x, y) = arg
                    .split_once('~')
                    .ok_or_else(|| bad(o, "want link:SITE~SITE"))?;
                let (x, y) = (node_of(o, x)?, node_of(o, y)?);
                let k = links
                    .iter()
                    .position(|l| (l.a, l.b) == (x.min(y), x.max(y)))
                    .ok_or_else(|| bad(o, "those two sites have no link"))?;
                OutageTarget::Links(vec![k])
            }
            "class" => {
                let class = LinkKind::parse(arg).ok_or_else(|| {
                    bad(
                        o,
                        "unknown class (village_lan, township_uplink, urban, backbone, desk)",
                    )
                })?;
                OutageTarget::Links(
                    (0..links.len())
                        .filter(|&k| links[k].kind == class && rng.chance(o.share))
                        .collect(),
                )
            }
            _ => return Err(bad(o, "want uplink:, site:, node:, link: or class:")),
        };
        out.push(target);
    }
    Ok(out)
}

impl Engine {
    /// Schedule the first random failure of every link and the first crash of every node.
    pub(crate) fn plan_faults(&mut self) {
        for l in 0..self.links.len() {
            self.next_link_failure(l);
        }
        for i in 0..self.nodes.len() {
            self.next_crash(i);
        }
    }

    /// Open the fixed outage windows that start on day `d` (0-based).
    pub(crate) fn outage_windows(&mut self, d: u32) {
        let date = Date::from_days(Date::at(self.start, self.offset).days() + i64::from(d));
        let midnight = day_start(date, self.offset);
        for k in 0..self.sc.outages.len() {
            let o = &self.sc.outages[k];
            let first = o.day.saturating_sub(1);
            let today = match o.on.as_str() {
                "daily" => d >= first,
                "weekdays" => d >= first && date.weekday() <= 5,
                _ => d == first,
            };
            if !today {
                continue;
            }
            let from = midnight + Millis::from(parse_hhmm(&o.from).unwrap_or(0)) * MINUTE;
            let until = from + (o.hours * 3_600_000.0) as Millis;
            match self.outages.get(k).cloned() {
                Some(OutageTarget::Links(ls)) => {
                    for link in ls {
                        self.at(from, Ev::LinkWindow { link, down: true });
                        self.at(until, Ev::LinkWindow { link, down: false });
                    }
                }
                Some(OutageTarget::Nodes(ns)) => {
                    for node in ns {
                        self.at(from, Ev::NodeWindow { node, down: true });
                        self.at(until, Ev::NodeWindow { node, down: false });
                    }
                }
                None => {}
            }
        }
    }

    pub(crate) fn link_window(&mut self, l: usize, down: bool) {
        let link = &mut self.links[l];
        if down {
            link.windows_down += 1;
        } else {
            link.windows_down = link.windows_down.saturating_sub(1);
        }
        self.refresh_link(l);
    }

    fn next_link_failure(&mut self, l: usize) {
        let hours = self.links[l].params.mtbf_hours;
        if hours > 0.0 && !self.healing {
            let at = self.now + self.rng.exponential(hours * 3_600_000.0) as Millis;
            self.at(at, Ev::LinkFail(l));
        }
    }

    pub(crate) fn link_fail(&mut self, l: usize) {
        self.truth.link_failures += 1;
        self.links[l].failed = true;
        self.refresh_link(l);
        let mttr = self.links[l].params.mttr_minutes * MINUTE as f64;
        let at = self.now + self.rng.lognormal(mttr, 0.8).max(1_000.0) as Millis;
        self.at(at, Ev::LinkRepair(l));
    }

    pub(crate) fn link_repair(&mut self, l: usize) {
        self.links[l].failed = false;
        self.refresh_link(l);
        self.next_link_failure(l);
    }

    fn next_crash(&mut self, i: usize) {
        let days = *self.sc.nodes.crash_every_days.get(self.nodes[i].role);
        if days > 0.0 && !self.healing {
            let at = self.now + self.rng.exponential(days * 86_400_000.0) as Millis;
            self.at(at, Ev::NodeCrash(i));
        }
    }

    pub(crate) fn node_crash(&mut self, i: usize) {
        if self.nodes[i].crashed {
            return;
        }
        self.nodes[i].crashed = true;
        self.nodes[i].crashes += 1;
        self.take_down(i);
        let median = self.sc.nodes.restart_minutes * MINUTE as f64;
        let at = self.now + self.rng.lognormal(median, 0.7).max(10_000.0) as Millis;
        self.at(at, Ev::NodeRestart(i));
    }

    pub(crate) fn node_restart(&mut self, i: usize) {
        self.nodes[i].crashed = false;
        if self.nodes[i].should_run() && !self.nodes[i].up() {
            self.bring_up(i);
        }
        self.next_crash(i);
    }

    pub(crate) fn node_window(&mut self, i: usize, down: bool) {
        if down {
            self.nodes[i].forced_down += 1;
            if self.nodes[i].up() {
                self.take_down(i);
            }
        } else {
            self.nodes[i].forced_down = self.nodes[i].forced_down.saturating_sub(1);
            if self.nodes[i].should_run() && !self.nodes[i].up() {
                self.bring_up(i);
            }
        }
    }

    /// The node stops: what it had not flushed is lost, its links drop.
    fn take_down(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.disk.crash();
        n.replica = None;
        n.wake_at = None;
        let links: Vec<usize> = n.peer_link.values().copied().collect();
        for l in links {
            self.refresh_link(l);
        }
    }

    /// The node starts again from what it flushed: a fresh replica loads its books and sync
    /// states, reconnects, and its staff look at every order again.
    pub(crate) fn bring_up(&mut self, i: usize) {
        let n = &self.nodes[i];
        let mut replica = match Replica::new(
            n.secret.clone(),
            self.authority,
            self.roster.clone(),
            None,
            self.rng.core(),
        ) {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("{} could not restart: {e}", n.site);
                self.truth.refusals.push(msg);
                return;
            }
        };
        replica.set_resync_after(self.sc.nodes.resync_after_ms);
        replica.set_verified_cache(self.verified.clone());
        replica.set_cold_settled(true);
        let local = n.local(self.now);
        // As the node restores: books marked settled are held cold without reading them, the
        // others are read, and the ones found settled now are marked for the next start.
        for (book, stored) in &n.disk.books {
            if let Some(marker) = n.disk.markers.get(book) {
                replica.load_cold_book(book.clone(), stored.bytes.clone(), marker.clone());
            } else if let Err(e) = replica.load_book(book.clone(), &stored.bytes, local) {
                let msg = format!("{} could not load its book {book}: {e}", n.site);
                self.truth.refusals.push(msg);
            }
        }
        for ((peer, book), bytes) in &n.disk.states {
            replica.load_sync_state(*peer, book.clone(), bytes);
        }
        let marks: Vec<_> = n
            .disk
            .books
            .keys()
            .filter(|b| !n.disk.markers.contains_key(*b))
            .filter_map(|b| Some((b.clone(), replica.cold_marker(b)?.clone())))
            .collect();
        self.nodes[i].disk.markers.extend(marks);
        let fx = replica.tick(local);
        self.nodes[i].replica = Some(replica);
        self.apply(i, fx, false);
        let links: Vec<usize> = self.nodes[i].peer_link.values().copied().collect();
        for l in links {
            self.refresh_link(l);
        }
        self.staff_rescan(i);
    }
}

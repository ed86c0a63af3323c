//! The report of a run: what a planner reads. [`Report`] is the JSON document (schema
//! `lawmesh-sim/report/1`, documented field by field here and in `simulations/README.md`);
//! [`Detail`] holds the per-order rows and the backlog series behind the CSV files and charts.
//!
//! Times are minutes unless a field says otherwise. Everything is computed from the healed
//! replicas' books (the mesh's own account) and the simulator's record of when people acted.

use crate::check::{round2, EndCheck, Held};
use crate::engine::{Ending, Engine};
use crate::hours::HOUR;
use lawmesh_sync::fold::{fold_order, OrderState, Status};
use lawmesh_sync::ids::{BookId, OrderId};
use lawmesh_sync::roster::SiteKind;
use lawmesh_sync::time::{Date, Millis};
use serde::Serialize;
use std::collections::BTreeMap;

/// A live request counts as served in time if accepted within this many minutes.
pub const LIVE_TARGET_MINUTES: f64 = 15.0;
/// A queued request counts as served in time if accepted within this many hours.
pub const QUEUED_TARGET_HOURS: f64 = 24.0;

/// The labels under which accepts and backlog are counted, by the kind of site.
pub const TIER_LABELS: [&str; 5] = ["office", "firm", "district_centre", "city_centre", "desk"];

/// The JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `lawmesh-sim/report/1`.
    pub schema: String,
    /// The run.
    pub run: RunInfo,
    /// Orders by channel.
    pub orders: BTreeMap<String, ChannelCounts>,
    /// Time from creation at the kiosk to the winning accept.
    pub time_to_accept: TimeToAccept,
    /// Accepted orders by the kind of site that won them (see [`TIER_LABELS`]).
    pub accepted_by: BTreeMap<String, Share>,
    /// Orders accepted past the last tier's window, or never accepted before healing.
    pub overdue: Share,
    /// Accepts that lost to an earlier one after a merge, and the work they wasted.
    pub overturned: Overturned,
    /// Per area: service levels.
    pub areas: BTreeMap<String, AreaLevels>,
    /// What the run would pay.
    pub subsidies: Subsidies,
    /// Sync traffic and outages per link.
    pub links: Vec<LinkReport>,
    /// Storage per node.
    pub nodes: Vec<NodeReport>,
    /// Faults injected.
    pub faults: Faults,
    /// The end check.
    pub end_check: EndCheck,
}

/// Which run this is.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Simulated days (with faults).
    pub days: u32,
    /// First day.
    pub start: String,
    /// Roster name.
    pub roster: String,
    /// Sites (one node each).
    pub nodes: usize,
    /// Links.
    pub links: usize,
    /// Node-hours simulated (nodes × simulated hours, healing included).
    pub node_hours: f64,
    /// Events processed.
    pub events: u64,
    /// Messages delivered.
    pub messages_delivered: u64,
    /// SHA-256 over every event processed, in order (equal hashes: identical runs).
    pub trace_hash: String,
    /// The command that reproduces this run.
    pub reproduce: String,
}

/// Orders of one channel.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelCounts {
    /// Acknowledged to the resident.
    pub created: u64,
    /// Of which live.
    pub live: u64,
    /// Accepted by some site (before or after healing).
    pub accepted: u64,
    /// Closed by the winner.
    pub closed: u64,
    /// Confirmed by the resident.
    pub confirmed: u64,
}

/// Quantiles of a duration, minutes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quantiles {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
}

impl Quantiles {
    /// Quantiles of the given minutes.
    pub fn of(mut v: Vec<f64>) -> Quantiles {
        if v.is_empty() {
            return Quantiles::default();
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let idx = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
            round2(v[idx])
        };
        Quantiles {
            count: v.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            mean: round2(v.iter().sum::<f64>() / v.len() as f64),
        }
    }
}

/// Time to accept, minutes.
#[derive(Debug, Clone, Serialize)]
pub struct TimeToAccept {
    /// All accepted orders.
    pub all: Quantiles,
    /// Live orders.
    pub live: Quantiles,
    /// Queued orders.
    pub queued: Quantiles,
}

/// A count and its share of the total.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Share {
    /// How many.
    pub count: u64,
    /// Share of all orders in question, 0–1.
    pub share: f64,
}

/// Overturned accepts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overturned {
    /// Accepts that lost.
    pub accepts: u64,
    /// Orders with at least one.
    pub orders: u64,
    /// Lawyer-minutes spent on orders another site had won.
    pub lawyer_minutes_wasted: f64,
}

/// Service levels of one area.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AreaLevels {
    /// Orders created.
    pub orders: u64,
    /// Live: time to accept.
    pub live: Quantiles,
    /// Queued: time to accept.
    pub queued: Quantiles,
    /// Share of live orders accepted within [`LIVE_TARGET_MINUTES`].
    pub live_in_time: f64,
    /// Share of queued orders accepted within [`QUEUED_TARGET_HOURS`].
    pub queued_in_time: f64,
    /// Share accepted at a district or city centre.
    pub at_centres: f64,
}

/// Subsidies (RMB).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Subsidies {
    /// Duty lawyer-days rostered over the simulated days.
    pub duty_days: u64,
    /// Paid for them.
    pub duty_rmb: u64,
    /// Closed and confirmed cases (以案定补 is paid on these).
    pub cases: u64,
    /// Paid for them.
    pub case_rmb: u64,
    /// Per case type: (cases, RMB).
    pub by_case_type: BTreeMap<String, (u64, u64)>,
    /// Duty plus cases.
    pub total_rmb: u64,
}

/// One link.
#[derive(Debug, Clone, Serialize)]
pub struct LinkReport {
    /// One end.
    pub a: String,
    /// The other.
    pub b: String,
    /// Class.
    pub class: String,
    /// Bytes a → b and b → a.
    pub bytes: [u64; 2],
    /// Messages a → b and b → a.
    pub messages: [u64; 2],
    /// Times it went down.
    pub outages: u64,
    /// Minutes down.
    pub down_minutes: f64,
}

/// One node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// Site.
    pub site: String,
    /// Kind of site.
    pub kind: String,
    /// Most bytes stored at any time.
    pub peak_bytes: u64,
    /// Bytes stored at the end.
    pub final_bytes: u64,
    /// Crashes.
    pub crashes: u64,
    /// Writes lost in crashes (not yet flushed).
    pub lost_writes: u64,
}

/// Faults injected.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Faults {
    /// Link outages (windows, failures, dead connections, node downtime).
    pub link_outages: u64,
    /// Link-hours down.
    pub link_hours_down: f64,
    /// Random link failures.
    pub link_failures: u64,
    /// Connections that died of loss.
    pub connection_resets: u64,
    /// Node crashes.
    pub node_crashes: u64,
    /// Writes lost in crashes.
    pub lost_writes: u64,
    /// Residents turned away at kiosks whose node was down.
    pub residents_turned_away: u64,
    /// Staff actions the replica refused because the order had moved on.
    pub refused_actions: u64,
}

/// One order, as the CSV lists it.
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// Order id.
    pub id: OrderId,
    /// Origin site.
    pub origin: String,
    /// Area.
    pub area: String,
    /// Channel.
    pub channel: String,
    /// Case type.
    pub case_type: String,
    /// Live or queued.
    pub live: bool,
    /// Created (epoch ms).
    pub created: Millis,
    /// Final status.
    pub status: String,
    /// Winning site, its tier and kind label.
    pub winner: Option<(String, usize, &'static str)>,
    /// Minutes to accept.
    pub minutes_to_accept: Option<f64>,
    /// Past the last window.
    pub overdue: bool,
    /// Overturned accepts.
    pub overturned: usize,
}

/// The data behind the CSV files and charts.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    /// One row per order.
    pub orders: Vec<OrderRow>,
    /// Backlog samples: (time, open orders per label; index 0 is "queued", then
    /// [`TIER_LABELS`]).
    pub backlog: Vec<(Millis, [u32; 6])>,
    /// Start of the run (epoch ms).
    pub start: Millis,
    /// UTC offset of the roster.
    pub utc_offset_minutes: i32,
}

fn label(kind: SiteKind) -> &'static str {
    match kind {
        SiteKind::JudicialOffice | SiteKind::VillageKiosk => "office",
        SiteKind::Firm => "firm",
        SiteKind::DistrictCentre => "district_centre",
        SiteKind::CityCentre => "city_centre",
        SiteKind::NotaryOffice | SiteKind::TaxCentre | SiteKind::VeteransHome => "desk",
    }
}

fn label_index(l: &str) -> usize {
    TIER_LABELS
        .iter()
        .position(|x| *x == l)
        .map_or(0, |i| i + 1)
}

impl Engine {
    /// Build the report and its detail after the end check.
    pub(crate) fn report(
        &self,
        held: &Held<'_>,
        ending: &Ending,
        check: EndCheck,
        reproduce: String,
    ) -> (Report, Detail) {
        let kind_of = |site: &lawmesh_sync::ids::SiteId| {
            self.site_index.get(site).map(|&i| self.nodes[i].kind)
        };
        let mut orders: BTreeMap<String, ChannelCounts> = BTreeMap::new();
        let mut rows = Vec::new();
        let mut overturned = Overturned::default();
        let mut accepted_by: BTreeMap<String, Share> = TIER_LABELS
            .iter()
            .map(|l| ((*l).to_owned(), Share::default()))
            .collect();
        let mut subsidies = Subsidies::default();
        let mut backlog_orders: Vec<(BookId, OrderId, usize, Millis, Millis)> = Vec::new();
        for (id, t) in &self.truth.orders {
            let origin = &self.nodes[t.origin];
            let counts = orders.entry(t.channel.as_str().to_owned()).or_default();
            counts.created += 1;
            counts.live += u64::from(t.live);
            let state: Option<OrderState> = origin
                .replica
                .as_ref()
                .and_then(|r| r.book_of(id))
                .and_then(|book| held.order(self, id, book, origin.local(ending.quiet_at)));
            let mut row = OrderRow {
                id: *id,
                origin: origin.site.to_string(),
                area: origin
                    .area
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                channel: t.channel.as_str().to_owned(),
                case_type: t.case_type.to_string(),
                live: t.live,
                created: t.created,
                status: "lost".into(),
                winner: None,
                minutes_to_accept: None,
                overdue: false,
                overturned: 0,
            };
            let Some(s) = state else {
                rows.push(row);
                continue;
            };
            row.status = s.status.as_str().to_owned();
            row.overturned = s.overturned.len();
            if !s.overturned.is_empty() {
                overturned.accepts += s.overturned.len() as u64;
                overturned.orders += 1;
            }
            let mut accepted_at = None;
            if let Some(w) = &s.winner {
                counts.accepted += 1;
                let winner_node = self.site_index.get(&w.site).copied();
                let at = t
                    .accepts
                    .iter()
                    .find(|(n, _)| Some(*n) == winner_node)
                    .map(|(_, at)| *at)
                    .unwrap_or(w.at.ms);
                accepted_at = Some(at);
                let l = kind_of(&w.site).map_or("desk", label);
                row.winner = Some((w.site.to_string(), w.tier, l));
                row.minutes_to_accept = Some(at.saturating_sub(t.created) as f64 / 60_000.0);
                if at < self.end {
                    if let Some(share) = accepted_by.get_mut(l) {
                        share.count += 1;
                    }
                }
                // Overdue: the state just before the winning accept.
                if let Some(events) = held.events(&s.book, id) {
                    let before: Vec<_> = events
                        .iter()
                        .filter(|e| e.event.stamp < w.at)
                        .cloned()
                        .collect();
                    row.overdue = fold_order(&s.book, *id, &before, &self.roster, w.at.ms)
                        .is_some_and(|b| b.status == Status::Overdue);
                }
            } else if let Some(events) = held.events(&s.book, id) {
                row.overdue = fold_order(&s.book, *id, events, &self.roster, self.end)
                    .is_some_and(|b| b.status == Status::Overdue);
            }
            if matches!(s.status, Status::Closed | Status::Confirmed) {
                counts.closed += 1;
            }
            if s.status == Status::Confirmed {
                counts.confirmed += 1;
                let rmb = self
                    .roster
                    .specialty(&t.case_type)
                    .map_or(0, |x| u64::from(x.case_subsidy_rmb));
                subsidies.cases += 1;
                subsidies.case_rmb += rmb;
                let e = subsidies
                    .by_case_type
                    .entry(t.case_type.to_string())
                    .or_default();
                e.0 += 1;
                e.1 += rmb;
            }
            backlog_orders.push((
                s.book.clone(),
                *id,
                t.origin,
                t.created,
                accepted_at.unwrap_or(self.end).min(self.end),
            ));
            rows.push(row);
        }
        let total_accepted: u64 = accepted_by.values().map(|s| s.count).sum();
        for s in accepted_by.values_mut() {
            s.share = share(s.count, total_accepted);
        }
        let minutes = |f: &dyn Fn(&OrderRow) -> bool| {
            Quantiles::of(
                rows.iter()
                    .filter(|r| f(r))
                    .filter_map(|r| r.minutes_to_accept)
                    .collect(),
            )
        };
        let time_to_accept = TimeToAccept {
            all: minutes(&|_| true),
            live: minutes(&|r| r.live),
            queued: minutes(&|r| !r.live),
        };
        let overdue_count = rows.iter().filter(|r| r.overdue).count() as u64;
        let overdue = Share {
            count: overdue_count,
            share: share(overdue_count, rows.len() as u64),
        };
        let mut areas: BTreeMap<String, AreaLevels> = BTreeMap::new();
        let area_names: std::collections::BTreeSet<&String> =
            rows.iter().map(|r| &r.area).collect();
        for area in area_names {
            let of = |live: bool| {
                rows.iter()
                    .filter(move |r| &r.area == area && r.live == live)
            };
            let in_time = |live: bool, limit: f64| {
                let all = of(live).count() as u64;
                let ok = of(live)
                    .filter(|r| r.minutes_to_accept.is_some_and(|m| m <= limit))
                    .count() as u64;
                share(ok, all)
            };
            let here: Vec<&OrderRow> = rows.iter().filter(|r| &r.area == area).collect();
            let centres = here
                .iter()
                .filter(|r| {
                    r.winner
                        .as_ref()
                        .is_some_and(|w| w.2 == "district_centre" || w.2 == "city_centre")
                })
                .count() as u64;
            let accepted = here.iter().filter(|r| r.winner.is_some()).count() as u64;
            areas.insert(
                area.clone(),
                AreaLevels {
                    orders: here.len() as u64,
                    live: Quantiles::of(of(true).filter_map(|r| r.minutes_to_accept).collect()),
                    queued: Quantiles::of(of(false).filter_map(|r| r.minutes_to_accept).collect()),
                    live_in_time: in_time(true, LIVE_TARGET_MINUTES),
                    queued_in_time: in_time(false, QUEUED_TARGET_HOURS * 60.0),
                    at_centres: share(centres, accepted),
                },
            );
        }
        overturned.lawyer_minutes_wasted = round2(self.wasted_minutes(held) / 60_000.0);
        // Duty days over the simulated days.
        let duty_sites = self.roster.duty_sites();
        let first = Date::at(self.start, self.offset).days();
        for d in 0..i64::from(self.days) {
            let date = Date::from_days(first + d);
            for site in &duty_sites {
                subsidies.duty_days += self.roster.duty_lawyers(site, date).len() as u64;
            }
        }
        subsidies.duty_rmb = subsidies.duty_days * u64::from(self.roster.policy().duty_day_rmb);
        subsidies.total_rmb = subsidies.duty_rmb + subsidies.case_rmb;
        let links: Vec<LinkReport> = self
            .links
            .iter()
            .map(|l| LinkReport {
                a: self.nodes[l.a].site.to_string(),
                b: self.nodes[l.b].site.to_string(),
                class: l.kind.as_str().to_owned(),
                bytes: l.bytes,
                messages: l.messages,
                outages: l.downs,
                down_minutes: round2(l.down_ms as f64 / 60_000.0),
            })
            .collect();
        let nodes: Vec<NodeReport> = self
            .nodes
            .iter()
            .map(|n| NodeReport {
                site: n.site.to_string(),
                kind: n.kind.as_str().to_owned(),
                peak_bytes: n.disk.peak,
                final_bytes: n.disk.bytes,
                crashes: n.crashes,
                lost_writes: n.disk.lost_writes,
            })
            .collect();
        let faults = Faults {
            link_outages: self.links.iter().map(|l| l.downs).sum(),
            link_hours_down: round2(
                self.links.iter().map(|l| l.down_ms).sum::<u64>() as f64 / HOUR as f64,
            ),
            link_failures: self.truth.link_failures,
            connection_resets: self.truth.connection_resets,
            node_crashes: self.nodes.iter().map(|n| n.crashes).sum(),
            lost_writes: self.nodes.iter().map(|n| n.disk.lost_writes).sum(),
            residents_turned_away: self.truth.turned_away,
            refused_actions: self.truth.refused_actions,
        };
        let simulated_hours = (ending.quiet_at.max(self.end) - self.start) as f64 / HOUR as f64;
        let report = Report {
            schema: "lawmesh-sim/report/1".into(),
            run: RunInfo {
                scenario: self.sc.name.clone(),
                seed: self.seed,
                days: self.days,
                start: self.sc.start.clone(),
                roster: self.roster.doc().name.clone(),
                nodes: self.nodes.len(),
                links: self.links.len(),
                node_hours: round2(simulated_hours * self.nodes.len() as f64),
                events: self.truth.events,
                messages_delivered: self.truth.delivered,
                trace_hash: self.trace_hash(),
                reproduce,
            },
            orders,
            time_to_accept,
            accepted_by,
            overdue,
            overturned,
            areas,
            subsidies,
            links,
            nodes,
            faults,
            end_check: check,
        };
        let detail = Detail {
            backlog: self.backlog(held, &backlog_orders),
            orders: rows,
            start: self.start,
            utc_offset_minutes: self.offset,
        };
        (report, detail)
    }

    /// Lawyer-minutes (ms) spent by sites on orders another site won.
    fn wasted_minutes(&self, held: &Held<'_>) -> f64 {
        let mut jobs = self.truth.jobs.clone();
        jobs.extend(self.staff.unfinished(self.now));
        let mut wasted = 0u64;
        for j in jobs.iter().filter(|j| j.lawyer.is_some()) {
            let origin = match self.truth.orders.get(&j.order) {
                Some(t) => &self.nodes[t.origin],
                None => continue,
            };
            let winner = origin
                .replica
                .as_ref()
                .and_then(|r| r.book_of(&j.order))
                .and_then(|book| held.order(self, &j.order, book, origin.local(self.now)))
                .and_then(|s| s.winner.map(|w| w.site));
            if winner.is_some_and(|w| w != self.nodes[j.node].site) {
                wasted += j.end.saturating_sub(j.start);
            }
        }
        wasted as f64
    }

    /// Open orders per label, sampled through the faulty phase: what a mesh holding every
    /// event so far would show (events after the sample time left out).
    fn backlog(
        &self,
        held: &Held<'_>,
        orders: &[(BookId, OrderId, usize, Millis, Millis)],
    ) -> Vec<(Millis, [u32; 6])> {
        let step = if self.days <= 62 { HOUR } else { 6 * HOUR };
        let samples = ((self.end - self.start) / step) as usize + 1;
        let mut out: Vec<(Millis, [u32; 6])> = (0..samples)
            .map(|k| (self.start + k as Millis * step, [0; 6]))
            .collect();
        for (book, id, _origin, from, until) in orders {
            let Some(events) = held.events(book, id) else {
                continue;
            };
            let first = from.saturating_sub(self.start).div_ceil(step) as usize;
            let mut cached: Option<(Millis, usize)> = None;
            for (t, counts) in out.iter_mut().skip(first) {
                if *t >= *until {
                    break;
                }
                let idx = match cached {
                    Some((valid, idx)) if *t < valid => idx,
                    _ => {
                        let seen: Vec<_> = events
                            .iter()
                            .filter(|e| e.event.stamp.ms <= *t)
                            .cloned()
                            .collect();
                        let next_event = events
                            .iter()
                            .map(|e| e.event.stamp.ms)
                            .filter(|ms| *ms > *t)
                            .min()
                            .unwrap_or(Millis::MAX);
                        let Some(s) = fold_order(book, *id, &seen, &self.roster, *t) else {
                            continue;
                        };
                        let (idx, until) = match (&s.status, &s.on_call) {
                            (Status::Queued, _) | (_, None) => (0, Millis::MAX),
                            (_, Some(c)) => (
                                label_index(kind_of_site(self, &c.site).map_or("desk", label)),
                                c.until.unwrap_or(Millis::MAX),
                            ),
                        };
                        cached = Some((until.min(next_event), idx));
                        idx
                    }
                };
                counts[idx] += 1;
            }
        }
        out
    }
}

fn kind_of_site(e: &Engine, site: &lawmesh_sync::ids::SiteId) -> Option<SiteKind> {
    e.site_index.get(site).map(|&i| e.nodes[i].kind)
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 / of as f64 * 1000.0).round() / 1000.0
    }
}

/// Minutes as words: "45 s", "12 min", "3.5 h", "2.1 days".
pub fn duration_words(minutes: f64) -> String {
    if minutes < 1.0 {
        format!("{:.0} s", minutes * 60.0)
    } else if minutes < 90.0 {
        format!("{minutes:.1} min")
    } else if minutes < 48.0 * 60.0 {
        format!("{:.1} h", minutes / 60.0)
    } else {
        format!("{:.1} days", minutes / 1440.0)
    }
}

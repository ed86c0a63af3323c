//! People at the sites. Staff see what their own node shows them — nothing else — and act
//! through their replica like a console user would:
//!
//! - **Judicial office** (tier 0 of a township): a clerk picks up, solves a share of requests
//!   itself, and sends the rest on (发单: a Decline, which puts the paired firm on call as soon
//!   as anyone outside has seen the order).
//! - **Firm**: accepts (接单) if one of its lawyers at work, not on centre duty today, has the
//!   specialty and is free, and dispatches (派单) that lawyer; otherwise declines.
//! - **District and city centres, veterans' home**: the day's duty lawyers per the roster;
//!   the pick is the roster's deterministic duty pick among those free. With nobody free a
//!   centre declines, unless it is the last tier, which waits for a lawyer to come free.
//! - **Notary office, tax centre**: clerks.
//! - **Origin kiosk**: the resident confirms the service once the order shows closed.
//!
//! Everyone picks up after a delay (log-normal), only in opening hours. A site that learns
//! another site took an order it was serving stops; those lawyer-minutes are wasted.

use crate::engine::{Engine, Ev, SimError};
use crate::hours::{OpeningHours, MINUTE};
use crate::node::SimNode;
use crate::role::Role;
use crate::scenario::{Scenario, ScenarioError};
use crate::truth::Job;
use lawmesh_sync::fold::{OrderState, Status};
use lawmesh_sync::ids::{Channel, LawyerId, OrderId, SiteId};
use lawmesh_sync::replica::Action;
use lawmesh_sync::roster::{Roster, SiteKind};
use lawmesh_sync::suggest::duty_pick;
use lawmesh_sync::time::{Date, Millis};
use std::collections::{BTreeMap, BTreeSet};

/// The staff's state across the world.
#[derive(Debug)]
pub(crate) struct StaffModel {
    hours: Vec<(Role, OpeningHours)>,
    /// Per firm node: the lawyers at work.
    firm_lawyers: BTreeMap<usize, Vec<LawyerId>>,
    /// When each lawyer is free again.
    lawyer_busy: BTreeMap<LawyerId, Millis>,
    /// Per node with clerks: when each clerk is free again.
    clerks: BTreeMap<usize, Vec<Millis>>,
    /// Pick-ups already scheduled.
    pickups: BTreeSet<(usize, OrderId)>,
    /// Work in progress.
    jobs: BTreeMap<(usize, OrderId), Job>,
    /// Orders whose confirmation was handled.
    confirms: BTreeSet<OrderId>,
    /// Orders a site has sent on: it does not pick them up again.
    declined: BTreeSet<(usize, OrderId)>,
    /// Lawyers on duty at any site, per date.
    on_duty: BTreeMap<Date, BTreeSet<LawyerId>>,
}

impl StaffModel {
    pub(crate) fn new(
        sc: &Scenario,
        roster: &Roster,
        nodes: &[SimNode],
    ) -> Result<StaffModel, SimError> {
        let mut hours = Vec::new();
        for role in Role::ALL {
            let h = OpeningHours::parse(sc.staff.hours.get(role)).ok_or_else(|| {
                ScenarioError::Invalid {
                    name: sc.name.clone(),
                    what: format!("staff.hours.{} does not parse", role.as_str()),
                }
            })?;
            hours.push((role, h));
        }
        for f in &sc.staff.firms {
            if !nodes.iter().any(|n| n.site.as_str() == f.site) {
                return Err(ScenarioError::Invalid {
                    name: sc.name.clone(),
                    what: format!("staff.firms: no site `{}` in the roster", f.site),
                }
                .into());
            }
        }
        let mut firm_lawyers = BTreeMap::new();
        let mut clerks = BTreeMap::new();
        for (i, n) in nodes.iter().enumerate() {
            match n.kind {
                SiteKind::Firm => {
                    let mut list: Vec<LawyerId> = roster
                        .lawyers()
                        .iter()
                        .filter(|l| l.firm == n.site)
                        .map(|l| l.id.clone())
                        .collect();
                    if let Some(f) = sc.staff.firms.iter().find(|f| f.site == n.site.as_str()) {
                        list.truncate(f.lawyers_at_work);
                    }
                    firm_lawyers.insert(i, list);
                }
                SiteKind::JudicialOffice => {
                    clerks.insert(i, vec![0; sc.staff.office_clerks.max(1)]);
                }
                SiteKind::NotaryOffice | SiteKind::TaxCentre => {
                    clerks.insert(i, vec![0; sc.staff.desk_clerks.max(1)]);
                }
                // A centre with nobody on its duty rota still has one member of staff.
                SiteKind::DistrictCentre | SiteKind::CityCentre => {
                    clerks.insert(i, vec![0; 1]);
                }
                _ => {}
            }
        }
        Ok(StaffModel {
            hours,
            firm_lawyers,
            lawyer_busy: BTreeMap::new(),
            clerks,
            pickups: BTreeSet::new(),
            jobs: BTreeMap::new(),
            confirms: BTreeSet::new(),
            declined: BTreeSet::new(),
            on_duty: BTreeMap::new(),
        })
    }

    fn hours(&self, role: Role) -> OpeningHours {
        self.hours
            .iter()
            .find(|(r, _)| *r == role)
            .map_or(OpeningHours::always(), |(_, h)| *h)
    }

    /// Jobs still running (counted as worked until `now`).
    pub(crate) fn unfinished(&self, now: Millis) -> Vec<Job> {
        self.jobs
            .values()
            .map(|j| Job {
                end: j.end.min(now),
                ..j.clone()
            })
            .collect()
    }
}

/// Is the order waiting for this site?
fn waiting_for(s: &OrderState, me: &SiteId) -> bool {
    s.status.is_open()
        && (s.on_call.as_ref().is_some_and(|c| &c.site == me)
            || (s.status == Status::Queued && s.chain.first() == Some(me)))
}

impl Engine {
    fn view(&self, i: usize, order: &OrderId) -> Option<OrderState> {
        let local = self.local_now(i);
        self.nodes[i].replica.as_ref()?.order(order, local)
    }

    /// Staff at node `i` look at an order whose state may have changed.
    pub(crate) fn on_changed(&mut self, i: usize, order: OrderId) {
        let Some(s) = self.view(i, &order) else {
            return;
        };
        let me = self.nodes[i].site.clone();
        // Another site took an order we were serving: stop, the time is lost.
        if s.winner.as_ref().is_some_and(|w| w.site != me) {
            if let Some(mut job) = self.staff.jobs.remove(&(i, order)) {
                job.end = self.now;
                self.occupy(&job);
                self.truth.jobs.push(job);
            }
        }
        if s.header.origin == me
            && s.status == Status::Closed
            && self.staff.confirms.insert(order)
            && self.rng.chance(self.sc.workload.confirm_share)
        {
            let wait = if s.header.live {
                2.0 * MINUTE as f64
            } else {
                self.rng.lognormal(20.0 * 3_600_000.0, 0.8)
            };
            self.at(self.now + wait as Millis, Ev::Confirm { node: i, order });
        }
        if waiting_for(&s, &me)
            && !self.staff.declined.contains(&(i, order))
            && self.staff.pickups.insert((i, order))
        {
            let at = self.pickup_time(i, s.header.live);
            self.at(at, Ev::Pickup { node: i, order });
        }
    }

    /// After a restart, staff look at every order their node holds.
    pub(crate) fn staff_rescan(&mut self, i: usize) {
        let local = self.local_now(i);
        let ids: Vec<OrderId> = self.nodes[i]
            .replica
            .as_ref()
            .map(|r| r.orders(local).into_iter().map(|s| s.id).collect())
            .unwrap_or_default();
        for id in ids {
            self.on_changed(i, id);
        }
    }

    fn pickup_time(&mut self, i: usize, live: bool) -> Millis {
        let role = self.nodes[i].role;
        let median = if live {
            self.sc.staff.pickup_minutes.get(role)
        } else {
            self.sc.staff.queued_pickup_minutes.get(role)
        } * MINUTE as f64;
        let delay = self.rng.lognormal(median, self.sc.staff.pickup_sigma) as Millis;
        self.staff.hours(role).next_open(self.now, self.offset) + delay.max(1_000)
    }

    fn service_time(&mut self, median_minutes: f64) -> Millis {
        let t = self
            .rng
            .lognormal(median_minutes * MINUTE as f64, self.sc.staff.service_sigma);
        (t as Millis).max(MINUTE)
    }

    /// Staff at node `i` pick up an order.
    pub(crate) fn pickup(&mut self, i: usize, order: OrderId) {
        self.staff.pickups.remove(&(i, order));
        let Some(s) = self.view(i, &order) else {
            return;
        };
        let me = self.nodes[i].site.clone();
        if !waiting_for(&s, &me)
            || self.staff.jobs.contains_key(&(i, order))
            || self.staff.declined.contains(&(i, order))
        {
            return;
        }
        if !self
            .staff
            .hours(self.nodes[i].role)
            .is_open(self.now, self.offset)
        {
            self.staff.pickups.insert((i, order));
            let at = self.pickup_time(i, s.header.live);
            self.at(at, Ev::Pickup { node: i, order });
            return;
        }
        let last_tier = s
            .on_call
            .as_ref()
            .is_some_and(|c| c.tier + 1 == s.chain.len());
        // Tier 0 may send an order on even before anyone outside has seen it (发单 offline).
        let can_decline = !last_tier;
        match self.nodes[i].kind {
            SiteKind::JudicialOffice => {
                let simple = matches!(s.header.channel, Channel::Consultation | Channel::Mediation);
                if simple && self.rng.chance(self.sc.staff.office_self_solve) {
                    let t = self.service_time(self.sc.staff.office_service_minutes);
                    self.serve_with_clerk(i, order, t);
                } else if can_decline {
                    self.decline(i, order, "需要律师专业意见，发单至对接律所");
                }
            }
            SiteKind::Firm => {
                let today = self.today(i);
                let t = self.service_time(self.sc.staff.service_minutes);
                match self.free_firm_lawyer(i, &s, today) {
                    Some(l) => self.accept_and_serve(i, order, Some(l), None, t),
                    None if can_decline => {
                        self.decline(i, order, "暂无空闲的专业律师");
                    }
                    None => self.retry_later(i, order),
                }
            }
            SiteKind::DistrictCentre | SiteKind::CityCentre | SiteKind::VeteransHome => {
                let today = self.today(i);
                let t = self.service_time(self.sc.staff.service_minutes);
                let duty = self.roster.duty_lawyers(&me, today);
                if duty.is_empty() && self.nodes[i].kind != SiteKind::VeteransHome {
                    self.serve_with_clerk(i, order, t);
                    return;
                }
                let free: Vec<LawyerId> = duty
                    .iter()
                    .filter(|l| self.lawyer_free(l))
                    .cloned()
                    .collect();
                match duty_pick(&self.roster, &order, &s.header.case_type, &free) {
                    Some(l) => self.accept_and_serve(i, order, Some(l), None, t),
                    None if can_decline => {
                        self.decline(i, order, "值班律师都在忙");
                    }
                    None if duty.is_empty() => {}
                    None => self.retry_later(i, order),
                }
            }
            SiteKind::NotaryOffice | SiteKind::TaxCentre => {
                let t = self.service_time(self.sc.staff.service_minutes);
                if self.free_clerk(i).is_some() {
                    self.serve_with_clerk(i, order, t);
                } else if can_decline {
                    self.decline(i, order, "窗口人员都在忙");
                } else {
                    self.retry_later(i, order);
                }
            }
            SiteKind::VillageKiosk => {}
        }
    }

    fn lawyer_free(&self, l: &LawyerId) -> bool {
        self.staff.lawyer_busy.get(l).is_none_or(|t| *t <= self.now)
    }

    fn free_firm_lawyer(&mut self, i: usize, s: &OrderState, today: Date) -> Option<LawyerId> {
        if !self.staff.on_duty.contains_key(&today) {
            if self.staff.on_duty.len() > 8 {
                self.staff.on_duty.clear();
            }
            let set = self
                .roster
                .duty_sites()
                .iter()
                .flat_map(|site| self.roster.duty_lawyers(site, today))
                .collect();
            self.staff.on_duty.insert(today, set);
        }
        let duty = self.staff.on_duty.get(&today)?;
        let list = self.staff.firm_lawyers.get(&i)?;
        list.iter()
            .filter(|l| !duty.contains(*l) && self.lawyer_free(l))
            .filter(|l| {
                self.roster
                    .lawyer(l)
                    .is_some_and(|x| x.specialties.contains(&s.header.case_type))
            })
            .min_by_key(|l| (self.staff.lawyer_busy.get(*l).copied().unwrap_or(0), *l))
            .cloned()
    }

    fn free_clerk(&self, i: usize) -> Option<usize> {
        self.staff
            .clerks
            .get(&i)?
            .iter()
            .position(|t| *t <= self.now)
    }

    fn serve_with_clerk(&mut self, i: usize, order: OrderId, minutes: Millis) {
        match self.free_clerk(i) {
            Some(c) => self.accept_and_serve(i, order, None, Some(c), minutes),
            None => self.retry_later(i, order),
        }
    }

    /// Nobody free: look again when the first person here comes free.
    fn retry_later(&mut self, i: usize, order: OrderId) {
        let mut next: Option<Millis> = self
            .staff
            .clerks
            .get(&i)
            .and_then(|c| c.iter().min().copied());
        let today = self.today(i);
        let site = self.nodes[i].site.clone();
        let mut pool = self.roster.duty_lawyers(&site, today);
        pool.extend(self.staff.firm_lawyers.get(&i).cloned().unwrap_or_default());
        for l in pool {
            if let Some(t) = self.staff.lawyer_busy.get(&l) {
                next = Some(next.map_or(*t, |n| n.min(*t)));
            }
        }
        let at = next.unwrap_or(self.now).max(self.now + MINUTE);
        if self.staff.pickups.insert((i, order)) {
            self.at(at, Ev::Pickup { node: i, order });
        }
    }

    /// Send the order on to the next tier; this site will not pick it up again.
    fn decline(&mut self, i: usize, order: OrderId, reason: &str) {
        if self.act(i, order, Action::Decline(reason.to_owned())) {
            self.staff.declined.insert((i, order));
        }
    }

    /// Do an action through node `i`'s replica, flushed before anyone is told. False if the
    /// replica refused it (the order moved on meanwhile).
    fn act(&mut self, i: usize, order: OrderId, action: Action) -> bool {
        let local = self.local_now(i);
        let Some(r) = self.nodes[i].replica.as_mut() else {
            return false;
        };
        match r.act(local, order, action) {
            Ok(fx) => {
                self.apply(i, fx, true);
                true
            }
            Err(_) => {
                self.truth.refused_actions += 1;
                false
            }
        }
    }

    fn accept_and_serve(
        &mut self,
        i: usize,
        order: OrderId,
        lawyer: Option<LawyerId>,
        clerk: Option<usize>,
        minutes: Millis,
    ) {
        let job = Job {
            node: i,
            order,
            lawyer: lawyer.clone(),
            clerk,
            start: self.now,
            end: self.now + minutes,
        };
        // Taken before the accept goes out, so staff reacting to its effects see it.
        self.occupy(&job);
        self.staff.jobs.insert((i, order), job);
        if !self.act(i, order, Action::Accept) {
            if let Some(mut job) = self.staff.jobs.remove(&(i, order)) {
                job.end = self.now;
                self.occupy(&job);
            }
            return;
        }
        if let Some(t) = self.truth.orders.get_mut(&order) {
            t.accepts.push((i, self.now));
        }
        if let Some(l) = lawyer {
            self.act(i, order, Action::Dispatch(l));
        }
        self.at(self.now + minutes, Ev::ServiceDone { node: i, order });
    }

    /// Mark the job's lawyer or clerk busy until the job's end.
    fn occupy(&mut self, job: &Job) {
        if let Some(l) = &job.lawyer {
            self.staff.lawyer_busy.insert(l.clone(), job.end);
        }
        if let (Some(c), Some(list)) = (job.clerk, self.staff.clerks.get_mut(&job.node)) {
            if let Some(t) = list.get_mut(c) {
                *t = job.end;
            }
        }
    }

    /// The service ends: the winner closes the order.
    pub(crate) fn service_done(&mut self, i: usize, order: OrderId) {
        if !self.staff.jobs.contains_key(&(i, order)) {
            return;
        }
        if !self.nodes[i].up() {
            // The lawyer is done but the node is down: close when it is back.
            self.at(self.now + 10 * MINUTE, Ev::ServiceDone { node: i, order });
            return;
        }
        let me = self.nodes[i].site.clone();
        if let Some(s) = self.view(i, &order) {
            if s.winner.as_ref().is_some_and(|w| w.site == me) && s.closed_at.is_none() {
                self.act(i, order, Action::Close("已解答".into()));
            }
        }
        if let Some(mut job) = self.staff.jobs.remove(&(i, order)) {
            job.end = job.end.min(self.now);
            self.truth.jobs.push(job);
        }
    }

    /// The resident confirms at the origin kiosk.
    pub(crate) fn confirm(&mut self, i: usize, order: OrderId) {
        if !self.nodes[i].up() {
            self.staff.confirms.remove(&order);
            return;
        }
        let closed = self
            .view(i, &order)
            .is_some_and(|s| s.status == Status::Closed);
        if closed {
            self.act(i, order, Action::Confirm);
        }
    }
}

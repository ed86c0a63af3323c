//! Residents: who asks, where, when and for what. Each day, every kiosk draws its arrivals per
//! channel from a Poisson law whose mean follows from the scenario's yearly figures, the
//! township's weight, the weekday, and the load factor; each arrival gets an hour of the day,
//! a case type and whether the resident waits (live) or leaves the request (queued).
//!
//! Where requests are made: consultations and mediations at the judicial offices and their
//! village kiosks (each village takes `village_share` of its township's) and a share at the
//! district centre's walk-in desk; notary, tax and veterans' requests at the district's own
//! desk for them, or at the township offices where the district has none.

use crate::engine::{Engine, Ev};
use crate::hours::{day_start, DAY, HOUR};
use crate::node::SimNode;
use crate::scenario::Scenario;
use lawmesh_sync::ids::{CaseType, Channel};
use lawmesh_sync::replica::NewOrder;
use lawmesh_sync::roster::{AreaKind, Roster, SiteKind};
use lawmesh_sync::time::{Date, Millis};
use std::collections::BTreeMap;

/// Huiyang has 9 townships; the yearly figures are for a district of that size.
const REFERENCE_TOWNSHIPS: f64 = 9.0;

/// One place where requests of one channel are made.
#[derive(Debug, Clone)]
struct Source {
    node: usize,
    channel: Channel,
    /// Mean requests per day, on an average weekday, with the load factor applied.
    per_day: f64,
}

/// The residents of a scenario.
#[derive(Debug)]
pub(crate) struct WorkloadModel {
    sources: Vec<Source>,
    weekday: [f64; 7],
    hourly: Vec<f64>,
    case_mix: Vec<(CaseType, f64)>,
    fallback_case: Option<CaseType>,
    live_share: BTreeMap<Channel, f64>,
    made: u64,
}

impl WorkloadModel {
    pub(crate) fn new(sc: &Scenario, roster: &Roster, nodes: &[SimNode]) -> WorkloadModel {
        let w = &sc.workload;
        let node_of = |site: &lawmesh_sync::ids::SiteId| nodes.iter().position(|n| &n.site == site);
        let mut sources = Vec::new();
        for district in &roster.doc().districts {
            let townships: Vec<_> = roster
                .areas()
                .iter()
                .filter(|a| a.district == district.id && a.kind == AreaKind::Township)
                .collect();
            if townships.is_empty() {
                continue;
            }
            let scale = townships.len() as f64 / REFERENCE_TOWNSHIPS;
            let weights: Vec<f64> = townships
                .iter()
                .map(|a| w.area_weight.get(a.id.as_str()).copied().unwrap_or(1.0))
                .collect();
            let total_weight: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
            let desk_of = |kind: SiteKind| {
                roster
                    .sites()
                    .iter()
                    .find(|s| s.kind == kind && s.district == district.id && s.area.is_some())
                    .and_then(|s| node_of(&s.id))
            };
            let centre = desk_of(SiteKind::DistrictCentre);
            for channel in Channel::ALL {
                let per_day = w.per_year.get(channel) * w.load_factor * scale / 365.0;
                if per_day <= 0.0 {
                    continue;
                }
                let desk = match channel {
                    Channel::Notary => desk_of(SiteKind::NotaryOffice),
                    Channel::Tax => desk_of(SiteKind::TaxCentre),
                    Channel::Veterans => desk_of(SiteKind::VeteransHome),
                    Channel::Consultation | Channel::Mediation => None,
                };
                if let Some(node) = desk {
                    sources.push(Source {
                        node,
                        channel,
                        per_day,
                    });
                    continue;
                }
                let walkin = match channel {
                    Channel::Consultation | Channel::Mediation => w.walkin_share.clamp(0.0, 1.0),
                    _ => 0.0,
                };
                if let (Some(node), true) = (centre, walkin > 0.0) {
                    sources.push(Source {
                        node,
                        channel,
                        per_day: per_day * walkin,
                    });
                }
                for (area, weight) in townships.iter().zip(&weights) {
                    let area_day = per_day * (1.0 - walkin) * weight / total_weight;
                    let villages: Vec<usize> = nodes
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| {
                            n.kind == SiteKind::VillageKiosk && n.area.as_ref() == Some(&area.id)
                        })
                        .map(|(i, _)| i)
                        .collect();
                    let village_share = match channel {
                        Channel::Consultation | Channel::Mediation => w.village_share,
                        _ => 0.0,
                    };
                    let at_villages = (village_share * villages.len() as f64).min(0.9);
                    for v in &villages {
                        sources.push(Source {
                            node: *v,
                            channel,
                            per_day: area_day * at_villages / villages.len() as f64,
                        });
                    }
                    if let Some(office) = node_of(&area.desk) {
                        sources.push(Source {
                            node: office,
                            channel,
                            per_day: area_day * (1.0 - at_villages),
                        });
                    }
                }
            }
        }
        sources.retain(|s| s.per_day > 0.0);
        let mean_weekday = w.weekday.iter().sum::<f64>() / 7.0;
        let weekday = w.weekday.map(|x| {
            if mean_weekday > 0.0 {
                x / mean_weekday
            } else {
                0.0
            }
        });
        let case_mix: Vec<(CaseType, f64)> = w
            .case_mix
            .iter()
            .filter(|(k, _)| roster.specialty(&CaseType((*k).clone())).is_some())
            .map(|(k, v)| (CaseType(k.clone()), *v))
            .collect();
        let live_share = Channel::ALL
            .into_iter()
            .map(|c| (c, w.live_share.get(c)))
            .collect();
        WorkloadModel {
            sources,
            weekday,
            hourly: w.hourly.to_vec(),
            case_mix,
            fallback_case: roster.doc().specialties.first().map(|s| s.id.clone()),
            live_share,
            made: 0,
        }
    }
}

impl Engine {
    /// A new day (0-based): open its outage windows, draw its residents, schedule tomorrow.
    pub(crate) fn new_day(&mut self, d: u32) {
        self.outage_windows(d);
        let date = Date::from_days(Date::at(self.start, self.offset).days() + i64::from(d));
        let midnight = day_start(date, self.offset);
        let factor = self.workload.weekday[usize::from(date.weekday() - 1)];
        for k in 0..self.workload.sources.len() {
            let src = self.workload.sources[k].clone();
            let n = self.rng.poisson(src.per_day * factor);
            for _ in 0..n {
                let hour = self.rng.weighted(&self.workload.hourly) as Millis;
                let within = (self.rng.unit() * HOUR as f64) as Millis;
                let live = self.rng.chance(
                    self.workload
                        .live_share
                        .get(&src.channel)
                        .copied()
                        .unwrap_or(0.5),
                );
                let case_type = self.case_type(src.channel);
                let at = midnight + hour * HOUR + within;
                self.at(
                    at,
                    Ev::Arrival {
                        node: src.node,
                        channel: src.channel,
                        case_type,
                        live,
                    },
                );
            }
        }
        if d + 1 < self.days {
            self.at(midnight + DAY, Ev::Day(d + 1));
        }
    }

    fn case_type(&mut self, channel: Channel) -> CaseType {
        let own = match channel {
            Channel::Notary => Some("notary"),
            Channel::Tax => Some("tax"),
            Channel::Veterans => Some("veterans"),
            Channel::Consultation | Channel::Mediation => None,
        };
        if let Some(own) = own {
            let ct = CaseType::from(own);
            if self.roster.specialty(&ct).is_some() {
                return ct;
            }
        }
        let weights: Vec<f64> = self.workload.case_mix.iter().map(|(_, w)| *w).collect();
        match self.workload.case_mix.get(self.rng.weighted(&weights)) {
            Some((ct, _)) => ct.clone(),
            None => self
                .workload
                .fallback_case
                .clone()
                .unwrap_or_else(|| CaseType::from("family")),
        }
    }

    /// A resident asks at node `i`'s kiosk. The request is saved (flushed) before the resident
    /// is told; a kiosk whose node is down turns the resident away.
    pub(crate) fn arrival(&mut self, i: usize, channel: Channel, case_type: CaseType, live: bool) {
        let local = self.local_now(i);
        self.workload.made += 1;
        let n = self.workload.made;
        let Some(r) = self.nodes[i].replica.as_mut() else {
            self.truth.turned_away += 1;
            return;
        };
        let req = NewOrder {
            channel,
            case_type: case_type.clone(),
            live,
            name: format!("居民{n}"),
            phone: format!("139{:08}", n % 100_000_000),
            text: format!("{}方面的法律问题", case_type.as_str()),
        };
        match r.create_order(local, self.rng.core(), req) {
            Ok((id, fx)) => {
                self.truth.orders.insert(
                    id,
                    crate::truth::OrderTruth {
                        origin: i,
                        channel,
                        case_type,
                        live,
                        created: self.now,
                        accepts: Vec::new(),
                    },
                );
                self.apply(i, fx, true);
            }
            Err(e) => {
                let msg = format!("{} refused a request: {e}", self.nodes[i].site);
                self.truth.refusals.push(msg);
            }
        }
    }
}

//! The roster: who is who in the mesh, and the policy every node applies alike.
//!
//! A roster is rare-admin-edit data, not a CRDT: a versioned document signed by the district's
//! authority key ([`signed`]). Nodes keep the highest valid version. [`Roster`] is the
//! serialised form (the Huiyang roster ships as `sync/data/huiyang.toml`); on load it is checked
//! and indexed, so the rules ask it questions in constant time: which chain serves this book,
//! which site does this key belong to, may this site hold that book.

pub mod signed;

use crate::ids::{AreaId, BookId, CaseType, Channel, LawyerId, NodeKey, PeriodKind, SiteId};
use crate::time::{Date, Millis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// The Huiyang roster as shipped: unsigned source data, without node keys.
pub const HUIYANG_TOML: &str = include_str!("../../data/huiyang.toml");

/// What kind of place a site is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    /// A village public legal service room with a kiosk (村级公共法律服务工作室).
    VillageKiosk,
    /// A township judicial office (司法所), first triage for its area.
    JudicialOffice,
    /// A law firm (律师事务所).
    Firm,
    /// The district public legal service centre (区公共法律服务中心).
    DistrictCentre,
    /// The city public legal service centre (市公共法律服务中心), the backstop.
    CityCentre,
    /// The notary office (公证处).
    NotaryOffice,
    /// The tax public legal service centre (税务公共法律服务中心).
    TaxCentre,
    /// The veterans' legal service home (退役军人法律服务之家).
    VeteransHome,
}

impl SiteKind {
    /// The kind's name as used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::VillageKiosk => "village_kiosk",
            SiteKind::JudicialOffice => "judicial_office",
            SiteKind::Firm => "firm",
            SiteKind::DistrictCentre => "district_centre",
            SiteKind::CityCentre => "city_centre",
            SiteKind::NotaryOffice => "notary_office",
            SiteKind::TaxCentre => "tax_centre",
            SiteKind::VeteransHome => "veterans_home",
        }
    }
    /// Centres see every book of their district (the city centre: of every district).
    pub fn is_centre(self) -> bool {
        matches!(self, SiteKind::DistrictCentre | SiteKind::CityCentre)
    }
}

/// A district (区): its centre is the WAN hub of its sites.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct District {
    /// Id, e.g. `huiyang`.
    pub id: String,
    /// Chinese name.
    pub name: String,
    /// Pinyin.
    pub pinyin: String,
}

/// Whether an area is a township or a stand-alone desk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaKind {
    /// A township or street with its judicial office and villages.
    Township,
    /// A stand-alone desk: notary office, tax centre, veterans' home, a centre's walk-in desk.
    Standalone,
}

/// An origin area: the orders of an area go in that area's books.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    /// Id, e.g. `qiuchang`.
    pub id: AreaId,
    /// Chinese name.
    pub name: String,
    /// Pinyin.
    pub pinyin: String,
    /// The district it belongs to.
    pub district: String,
    /// Township or stand-alone desk.
    pub kind: AreaKind,
    /// How long one book of this area covers.
    #[serde(default)]
    pub period: PeriodKind,
    /// The site that triages the area's orders (a judicial office, or the stand-alone site).
    pub desk: SiteId,
}

/// A place with a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Id, e.g. `office-qiuchang`.
    pub id: SiteId,
    /// Kind of place.
    pub kind: SiteKind,
    /// Chinese name (what staff and residents read).
    pub name: String,
    /// Pinyin.
    pub pinyin: String,
    /// The district it belongs to.
    pub district: String,
    /// The area whose orders it creates; none for firms, which do not originate orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<AreaId>,
}

/// One office → firm pairing (所所对接).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    /// The judicial office.
    pub office: SiteId,
    /// Its paired firm.
    pub firm: SiteId,
}

/// A case type and the specialty it needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Specialty {
    /// Id, e.g. `family`.
    pub id: CaseType,
    /// Chinese name.
    pub name: String,
    /// Case subsidy (以案定补) paid per closed and confirmed case, in RMB.
    pub case_subsidy_rmb: u32,
}

/// A lawyer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lawyer {
    /// Id, e.g. `l017`.
    pub id: LawyerId,
    /// Name (synthetic in the shipped roster).
    pub name: String,
    /// Pinyin.
    pub pinyin: String,
    /// The firm (or duty pool site) the lawyer belongs to.
    pub firm: SiteId,
    /// Specialties (case type ids).
    pub specialties: Vec<CaseType>,
    /// Languages: `zh` Mandarin, `yue` Cantonese, `hak` Hakka.
    #[serde(default)]
    pub languages: Vec<String>,
}

/// Duty lawyers of a site on a weekday, or on one date (a date entry overrides its weekday).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duty {
    /// The site where they are on duty.
    pub site: SiteId,
    /// ISO weekday 1 = Monday … 7 = Sunday.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<u8>,
    /// A specific date `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The lawyers on duty.
    pub lawyers: Vec<LawyerId>,
}

/// One role in an escalation chain, resolved per area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierRole {
    /// The area's desk (its judicial office, or the stand-alone site itself).
    AreaDesk,
    /// The firm paired with the area's desk; skipped where there is none.
    PairedFirm,
    /// The district centre of the area's district.
    DistrictCentre,
    /// The city centre.
    CityCentre,
    /// The notary office of the district.
    NotaryOffice,
    /// The tax centre of the district.
    TaxCentre,
    /// The veterans' home of the district.
    VeteransHome,
}

/// The escalation chain of one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPolicy {
    /// The channel.
    pub channel: Channel,
    /// The tiers in order; the last is the backstop.
    pub tiers: Vec<TierRole>,
    /// Window per tier for live orders (the resident waits at the kiosk), minutes.
    pub live_window_minutes: Vec<u32>,
    /// Window per tier for queued orders, minutes.
    pub queued_window_minutes: Vec<u32>,
}

/// District policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Duty subsidy per lawyer per day (值班律师补贴), RMB.
    pub duty_day_rmb: u32,
    /// Escalation chains, one per channel.
    pub chains: Vec<ChainPolicy>,
}

/// A node key registered to a site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// The node's public key.
    pub key: NodeKey,
    /// Its site.
    pub site: SiteId,
}

/// The roster document, as serialised and signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterDoc {
    /// Version: a node takes a roster only if it is newer than the one it holds.
    pub version: u64,
    /// Display name.
    pub name: String,
    /// The zone of duty days and book periods, minutes east of UTC (480 for China).
    pub utc_offset_minutes: i32,
    /// Districts.
    pub districts: Vec<District>,
    /// Origin areas.
    pub areas: Vec<Area>,
    /// Sites.
    pub sites: Vec<Site>,
    /// Office → firm pairings.
    #[serde(default)]
    pub pairings: Vec<Pairing>,
    /// Case types.
    pub specialties: Vec<Specialty>,
    /// Lawyers.
    pub lawyers: Vec<Lawyer>,
    /// Duty rota.
    #[serde(default)]
    pub duty: Vec<Duty>,
    /// Policy.
    pub policy: Policy,
    /// Node keys → sites.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
}

/// Why a roster was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RosterError {
    /// The text is not a roster document.
    #[error("roster does not parse: {0}")]
    Parse(String),
    /// An id is defined twice.
    #[error("{what} id `{id}` is defined twice")]
    Duplicate {
        /// Kind of thing.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// A reference to something that is not in the roster.
    #[error("{from} refers to unknown {what} `{id}`")]
    Unknown {
        /// Where the reference is.
        from: String,
        /// Kind of thing referred to.
        what: &'static str,
        /// The missing id.
        id: String,
    },
    /// A structural rule is broken.
    #[error("invalid roster: {0}")]
    Invalid(String),
    /// The signature does not verify under the authority key.
    #[error("roster signature does not verify under the authority key: refused")]
    BadSignature,
    /// The roster is not newer than the one held.
    #[error("roster version {offered} is not newer than the version {held} already held: refused")]
    NotNewer {
        /// Version offered.
        offered: u64,
        /// Version held.
        held: u64,
    },
}

/// One resolved tier of a book's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    /// The site on call at this tier.
    pub site: SiteId,
    /// Window for live orders, ms.
    pub live_window_ms: Millis,
    /// Window for queued orders, ms.
    pub queued_window_ms: Millis,
}

impl Tier {
    /// The window for an order that is live or queued.
    pub fn window_ms(&self, live: bool) -> Millis {
        if live {
            self.live_window_ms
        } else {
            self.queued_window_ms
        }
    }
}

/// A checked, indexed roster.
#[derive(Clone, Debug, PartialEq)]
pub struct Roster {
    doc: RosterDoc,
    sites: BTreeMap<SiteId, usize>,
    areas: BTreeMap<AreaId, usize>,
    lawyers: BTreeMap<LawyerId, usize>,
    specialties: BTreeMap<CaseType, usize>,
    keys: BTreeMap<NodeKey, SiteId>,
    paired: BTreeMap<SiteId, SiteId>,
    chains: BTreeMap<(AreaId, Channel), Vec<Tier>>,
    /// Per site: the areas whose books it may hold, by channel.
    entitled: BTreeMap<SiteId, BTreeMap<AreaId, BTreeSet<Channel>>>,
}

impl Roster {
    /// Parse roster TOML (the shipped data format) and check it.
    pub fn from_toml(text: &str) -> Result<Roster, RosterError> {
        let doc: RosterDoc = toml::from_str(text).map_err(|e| RosterError::Parse(e.to_string()))?;
        Roster::new(doc)
    }

    /// The shipped Huiyang roster (no node keys registered).
    pub fn huiyang() -> Result<Roster, RosterError> {
        Roster::from_toml(HUIYANG_TOML)
    }

    /// Check a roster document and index it.
    pub fn new(doc: RosterDoc) -> Result<Roster, RosterError> {
        fn index<T, K: Ord + Clone + ToString>(
            what: &'static str,
            items: &[T],
            key: impl Fn(&T) -> &K,
        ) -> Result<BTreeMap<K, usize>, RosterError> {
            let mut map = BTreeMap::new();
            for (i, item) in items.iter().enumerate() {
                let k = key(item);
                if map.insert(k.clone(), i).is_some() {
                    return Err(RosterError::Duplicate {
                        what,
                        id: k.to_string(),
                    });
                }
            }
            Ok(map)
        }
        let sites = index("site", &doc.sites, |s| &s.id)?;
        let areas = index("area", &doc.areas, |a| &a.id)?;
        let lawyers = index("lawyer", &doc.lawyers, |l| &l.id)?;
        let specialties = index("specialty", &doc.specialties, |s| &s.id)?;
        let districts: BTreeSet<&str> = doc.districts.iter().map(|d| d.id.as_str()).collect();
        let unknown = |from: String, what: &'static str, id: &str| RosterError::Unknown {
            from,
            what,
            id: id.to_owned(),
        };

        for site in &doc.sites {
            if !districts.contains(site.district.as_str()) {
                return Err(unknown(
                    format!("site {}", site.id),
                    "district",
                    &site.district,
                ));
            }
            if let Some(area) = &site.area {
                if !areas.contains_key(area) {
                    return Err(unknown(format!("site {}", site.id), "area", area.as_str()));
                }
            }
        }
        for area in &doc.areas {
            let from = || format!("area {}", area.id);
            if !districts.contains(area.district.as_str()) {
                return Err(unknown(from(), "district", &area.district));
            }
            if area.id.as_str().contains('/') || area.id.as_str().len() > BookId::MAX_PART {
                return Err(RosterError::Invalid(format!(
                    "area id `{}` must be short and have no '/'",
                    area.id
                )));
            }
            let Some(&desk) = sites.get(&area.desk) else {
                return Err(unknown(from(), "site", area.desk.as_str()));
            };
            if doc.sites[desk].area.as_ref() != Some(&area.id) {
                return Err(RosterError::Invalid(format!(
                    "desk {} of area {} is not in that area",
                    area.desk, area.id
                )));
            }
        }
        let mut paired = BTreeMap::new();
        for p in &doc.pairings {
            for (id, want) in [
                (&p.office, SiteKind::JudicialOffice),
                (&p.firm, SiteKind::Firm),
            ] {
                match sites.get(id) {
                    None => return Err(unknown("a pairing".into(), "site", id.as_str())),
                    Some(&i) if doc.sites[i].kind != want => {
                        return Err(RosterError::Invalid(format!(
                            "pairing names {id}, which is not a {}",
                            want.as_str()
                        )))
                    }
                    Some(_) => {}
                }
            }
            if paired.insert(p.office.clone(), p.firm.clone()).is_some() {
                return Err(RosterError::Duplicate {
                    what: "pairing of office",
                    id: p.office.to_string(),
                });
            }
        }
        for l in &doc.lawyers {
            if !sites.contains_key(&l.firm) {
                return Err(unknown(format!("lawyer {}", l.id), "site", l.firm.as_str()));
            }
            for s in &l.specialties {
                if !specialties.contains_key(s) {
                    return Err(unknown(format!("lawyer {}", l.id), "specialty", s.as_str()));
                }
            }
        }
        for d in &doc.duty {
            let from = || format!("duty of {}", d.site);
            if !sites.contains_key(&d.site) {
                return Err(unknown(from(), "site", d.site.as_str()));
            }
            match (&d.weekday, &d.date) {
                (Some(w), None) if (1..=7).contains(w) => {}
                (None, Some(date)) if Date::parse(date).is_some() => {}
                _ => {
                    return Err(RosterError::Invalid(format!(
                        "{} needs exactly one of weekday 1–7 or date YYYY-MM-DD",
                        from()
                    )))
                }
            }
            for l in &d.lawyers {
                if !lawyers.contains_key(l) {
                    return Err(unknown(from(), "lawyer", l.as_str()));
                }
            }
        }
        let mut keys = BTreeMap::new();
        for n in &doc.nodes {
            if !sites.contains_key(&n.site) {
                return Err(unknown(format!("node {}", n.key), "site", n.site.as_str()));
            }
            if keys.insert(n.key, n.site.clone()).is_some() {
                return Err(RosterError::Duplicate {
                    what: "node key",
                    id: n.key.to_string(),
                });
            }
        }
        for c in &doc.policy.chains {
            if c.tiers.is_empty()
                || c.live_window_minutes.len() != c.tiers.len()
                || c.queued_window_minutes.len() != c.tiers.len()
            {
                return Err(RosterError::Invalid(format!("chain of {} needs at least one tier and one live and one queued window per tier", c.channel)));
            }
        }
        let mut roster = Roster {
            doc,
            sites,
            areas,
            lawyers,
            specialties,
            keys,
            paired,
            chains: BTreeMap::new(),
            entitled: BTreeMap::new(),
        };
        roster.resolve_chains()?;
        Ok(roster)
    }

    fn resolve_chains(&mut self) -> Result<(), RosterError> {
        let mut chains = BTreeMap::new();
        let mut entitled: BTreeMap<SiteId, BTreeMap<AreaId, BTreeSet<Channel>>> = BTreeMap::new();
        for area in &self.doc.areas {
            for policy in &self.doc.policy.chains {
                let mut tiers: Vec<Tier> = Vec::new();
                for (i, role) in policy.tiers.iter().enumerate() {
                    let Some(site) = self.resolve_role(*role, area) else {
                        continue;
                    };
                    if tiers.iter().any(|t| t.site == site) {
                        continue;
                    }
                    tiers.push(Tier {
                        site,
                        live_window_ms: u64::from(policy.live_window_minutes[i]) * 60_000,
                        queued_window_ms: u64::from(policy.queued_window_minutes[i]) * 60_000,
                    });
                }
                if tiers.is_empty() {
                    return Err(RosterError::Invalid(format!(
                        "no site serves channel {} for area {}",
                        policy.channel, area.id
                    )));
                }
                let book = (area.id.clone(), policy.channel);
                let mut holders: BTreeSet<SiteId> = tiers.iter().map(|t| t.site.clone()).collect();
                for site in &self.doc.sites {
                    let in_area = site.area.as_ref() == Some(&area.id);
                    let centre_above = (site.kind == SiteKind::DistrictCentre
                        && site.district == area.district)
                        || site.kind == SiteKind::CityCentre;
                    if in_area || centre_above {
                        holders.insert(site.id.clone());
                    }
                }
                for h in holders {
                    entitled
                        .entry(h)
                        .or_default()
                        .entry(book.0.clone())
                        .or_default()
                        .insert(book.1);
                }
                chains.insert(book, tiers);
            }
        }
        self.chains = chains;
        self.entitled = entitled;
        Ok(())
    }

    fn resolve_role(&self, role: TierRole, area: &Area) -> Option<SiteId> {
        let of_kind = |kind: SiteKind, same_district: bool| {
            self.doc
                .sites
                .iter()
                .find(|s| s.kind == kind && (!same_district || s.district == area.district))
                .map(|s| s.id.clone())
        };
        match role {
            TierRole::AreaDesk => Some(area.desk.clone()),
            TierRole::PairedFirm => self.paired.get(&area.desk).cloned(),
            TierRole::DistrictCentre => of_kind(SiteKind::DistrictCentre, true),
            TierRole::CityCentre => of_kind(SiteKind::CityCentre, false),
            TierRole::NotaryOffice => of_kind(SiteKind::NotaryOffice, true),
            TierRole::TaxCentre => of_kind(SiteKind::TaxCentre, true),
            TierRole::VeteransHome => of_kind(SiteKind::VeteransHome, true),
        }
    }

    /// The serialised document.
    pub fn doc(&self) -> &RosterDoc {
        &self.doc
    }
    /// The version.
    pub fn version(&self) -> u64 {
        self.doc.version
    }
    /// A site by id.
    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.get(id).map(|&i| &self.doc.sites[i])
    }
    /// All sites.
    pub fn sites(&self) -> &[Site] {
        &self.doc.sites
    }
    /// An area by id.
    pub fn area(&self, id: &AreaId) -> Option<&Area> {
        self.areas.get(id).map(|&i| &self.doc.areas[i])
    }
    /// All areas.
    pub fn areas(&self) -> &[Area] {
        &self.doc.areas
    }
    /// A lawyer by id.
    pub fn lawyer(&self, id: &LawyerId) -> Option<&Lawyer> {
        self.lawyers.get(id).map(|&i| &self.doc.lawyers[i])
    }
    /// All lawyers.
    pub fn lawyers(&self) -> &[Lawyer] {
        &self.doc.lawyers
    }
    /// A case type by id.
    pub fn specialty(&self, id: &CaseType) -> Option<&Specialty> {
        self.specialties.get(id).map(|&i| &self.doc.specialties[i])
    }
    /// The site a node key belongs to.
    pub fn site_of_key(&self, key: &NodeKey) -> Option<&SiteId> {
        self.keys.get(key)
    }
    /// The node keys of a site.
    pub fn keys_of_site<'a>(&'a self, site: &'a SiteId) -> impl Iterator<Item = NodeKey> + 'a {
        self.doc
            .nodes
            .iter()
            .filter(move |n| &n.site == site)
            .map(|n| n.key)
    }
    /// The firm paired with a judicial office.
    pub fn paired_firm(&self, office: &SiteId) -> Option<&SiteId> {
        self.paired.get(office)
    }
    /// The zone offset used for dates.
    pub fn utc_offset_minutes(&self) -> i32 {
        self.doc.utc_offset_minutes
    }
    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.doc.policy
    }

    /// The escalation chain for an area and channel: tier 0 first, the backstop last.
    pub fn chain(&self, area: &AreaId, channel: Channel) -> Option<&[Tier]> {
        self.chains.get(&(area.clone(), channel)).map(Vec::as_slice)
    }

    /// The tier at which `site` serves a chain, if it does.
    pub fn tier_of(&self, area: &AreaId, channel: Channel, site: &SiteId) -> Option<usize> {
        self.chain(area, channel)?
            .iter()
            .position(|t| &t.site == site)
    }

    /// The book an order belongs to: from its origin, channel and creation time alone.
    pub fn book_for(
        &self,
        origin: &SiteId,
        channel: Channel,
        created_ms: Millis,
    ) -> Option<BookId> {
        let area = self.site(origin)?.area.as_ref()?;
        let period = self
            .area(area)?
            .period
            .label(created_ms, self.doc.utc_offset_minutes);
        Some(BookId {
            area: area.clone(),
            channel,
            period,
        })
    }

    /// May `site` hold `book`? Iff it is in the book's chain, in its area, or a centre above it.
    pub fn entitled(&self, site: &SiteId, book: &BookId) -> bool {
        self.entitled
            .get(site)
            .and_then(|areas| areas.get(&book.area))
            .is_some_and(|channels| channels.contains(&book.channel))
    }

    /// The (area, channel) pairs whose books `site` may hold.
    pub fn entitlements(&self, site: &SiteId) -> impl Iterator<Item = (&AreaId, Channel)> {
        self.entitled.get(site).into_iter().flat_map(|areas| {
            areas
                .iter()
                .flat_map(|(a, chs)| chs.iter().map(move |c| (a, *c)))
        })
    }

    /// The sites that keep a duty rota.
    pub fn duty_sites(&self) -> BTreeSet<SiteId> {
        self.doc.duty.iter().map(|d| d.site.clone()).collect()
    }

    /// The lawyers on duty at `site` on `date`: a date entry overrides the weekday entries.
    pub fn duty_lawyers(&self, site: &SiteId, date: Date) -> Vec<LawyerId> {
        let label = date.to_string();
        let on_date: Vec<&Duty> = self
            .doc
            .duty
            .iter()
            .filter(|d| &d.site == site && d.date.as_deref() == Some(label.as_str()))
            .collect();
        let entries = if on_date.is_empty() {
            let wd = date.weekday();
            self.doc
                .duty
                .iter()
                .filter(|d| &d.site == site && d.weekday == Some(wd))
                .collect()
        } else {
            on_date
        };
        entries
            .iter()
            .flat_map(|d| d.lawyers.iter().cloned())
            .collect()
    }

    /// May `site` send `lawyer` to a case: its own lawyers, or lawyers on its duty rota.
    pub fn may_dispatch(&self, site: &SiteId, lawyer: &LawyerId) -> bool {
        self.lawyer(lawyer).is_some_and(|l| &l.firm == site)
            || self
                .doc
                .duty
                .iter()
                .any(|d| &d.site == site && d.lawyers.contains(lawyer))
    }

    /// A copy with node keys registered (used by provisioning and tests), version bumped.
    pub fn with_nodes(&self, nodes: Vec<NodeEntry>, version: u64) -> Result<Roster, RosterError> {
        let mut doc = self.doc.clone();
        doc.nodes = nodes;
        doc.version = version;
        Roster::new(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huiyang_roster_matches_the_recorded_figures() {
        let r = Roster::huiyang().unwrap();
        let count = |k: SiteKind| r.sites().iter().filter(|s| s.kind == k).count();
        assert_eq!(count(SiteKind::JudicialOffice), 9);
        assert_eq!(count(SiteKind::Firm), 11);
        assert_eq!(count(SiteKind::VillageKiosk), 3);
        let firms: BTreeSet<_> = r
            .sites()
            .iter()
            .filter(|s| s.kind == SiteKind::Firm)
            .map(|s| &s.id)
            .collect();
        let district_lawyers = r
            .lawyers()
            .iter()
            .filter(|l| firms.contains(&l.firm))
            .count();
        assert_eq!(district_lawyers, 92);
        let paired: BTreeSet<_> = r.doc().pairings.iter().map(|p| &p.firm).collect();
        assert_eq!(r.doc().pairings.len(), 9);
        assert_eq!(paired.len(), 7);
        assert_eq!(r.policy().duty_day_rmb, 500);
        // 周田 is in 秋长: its kiosk's consultations go office → paired firm → district → city.
        let zhoutian = r.site(&"village-zhoutian".into()).unwrap();
        assert_eq!(zhoutian.area, Some(AreaId::from("qiuchang")));
        let chain = r.chain(&"qiuchang".into(), Channel::Consultation).unwrap();
        let sites: Vec<&str> = chain.iter().map(|t| t.site.as_str()).collect();
        assert_eq!(sites[0], "office-qiuchang");
        assert_eq!(
            Some(&chain[1].site),
            r.paired_firm(&"office-qiuchang".into())
        );
        assert_eq!(&sites[2..], ["centre-district", "centre-city"]);
    }

    #[test]
    fn entitlement_follows_chain_area_and_centres() {
        let r = Roster::huiyang().unwrap();
        let book = r
            .book_for(
                &"village-zhoutian".into(),
                Channel::Consultation,
                1_790_000_000_000,
            )
            .unwrap();
        let firm = r.paired_firm(&"office-qiuchang".into()).unwrap().clone();
        for site in [
            "village-zhoutian",
            "office-qiuchang",
            firm.as_str(),
            "centre-district",
            "centre-city",
        ] {
            assert!(r.entitled(&site.into(), &book), "{site} should hold {book}");
        }
        let outsiders = r
            .sites()
            .iter()
            .filter(|s| s.kind == SiteKind::Firm && s.id != firm);
        for s in outsiders {
            assert!(!r.entitled(&s.id, &book), "{} must not hold {book}", s.id);
        }
        assert!(!r.entitled(&"office-danshui".into(), &book));
        assert!(!r.entitled(&"village-xiajiao".into(), &book));
    }

    #[test]
    fn duty_dates_override_weekdays() {
        let r = Roster::huiyang().unwrap();
        let centre = SiteId::from("centre-district");
        let new_year = Date::parse("2027-01-01").unwrap();
        let friday_after = Date::parse("2027-01-08").unwrap();
        assert_eq!(r.duty_lawyers(&centre, new_year).len(), 2);
        assert_eq!(r.duty_lawyers(&centre, friday_after).len(), 3);
    }

    #[test]
    fn broken_references_are_refused_with_the_name_of_what_is_missing() {
        let text = HUIYANG_TOML.replace("firm = \"firm-kejia\"", "firm = \"firm-nowhere\"");
        let err = Roster::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains("firm-nowhere"), "{err}");
    }
}

//! Which sites are linked, and by what class of link. The mesh follows DESIGN.md §3: a village
//! kiosk sits on its township's LAN and reaches the world through the judicial office; the
//! office's uplink, its firms and desks all dial the district centre, the WAN hub (an office
//! reaches its paired firm through it); district centres reach the city centre over the
//! backbone.

use crate::scenario::{LinkClass, Network};
use lawmesh_sync::ids::SiteId;
use lawmesh_sync::roster::{Roster, SiteKind};
use std::collections::{BTreeMap, BTreeSet};

/// The class of a link: each has its own latency, bandwidth, loss and failure figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkKind {
    /// Village kiosk ↔ its judicial office.
    VillageLan,
    /// Judicial office ↔ district centre.
    TownshipUplink,
    /// Firm ↔ district centre.
    Urban,
    /// District centre ↔ city centre.
    Backbone,
    /// Notary office, tax centre, veterans' home ↔ district centre.
    Desk,
}

impl LinkKind {
    /// Every class.
    pub const ALL: [LinkKind; 5] = [
        LinkKind::VillageLan,
        LinkKind::TownshipUplink,
        LinkKind::Urban,
        LinkKind::Backbone,
        LinkKind::Desk,
    ];
    /// The class's name in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::VillageLan => "village_lan",
            LinkKind::TownshipUplink => "township_uplink",
            LinkKind::Urban => "urban",
            LinkKind::Backbone => "backbone",
            LinkKind::Desk => "desk",
        }
    }
    /// A class by name.
    pub fn parse(s: &str) -> Option<LinkKind> {
        LinkKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// The scenario's figures for this class.
    pub fn params(self, net: &Network) -> &LinkClass {
        match self {
            LinkKind::VillageLan => &net.village_lan,
            LinkKind::TownshipUplink => &net.township_uplink,
            LinkKind::Urban => &net.urban,
            LinkKind::Backbone => &net.backbone,
            LinkKind::Desk => &net.desk,
        }
    }
}

/// One link between two sites (indices into the roster's site list, `a < b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSpec {
    /// One end.
    pub a: usize,
    /// The other end.
    pub b: usize,
    /// Its class.
    pub kind: LinkKind,
}

/// The links of a roster's mesh, in a fixed order.
pub fn links(roster: &Roster) -> Vec<LinkSpec> {
    let sites = roster.sites();
    let index: BTreeMap<&SiteId, usize> =
        sites.iter().enumerate().map(|(i, s)| (&s.id, i)).collect();
    let of_kind = |kind: SiteKind, district: &str| {
        sites
            .iter()
            .position(|s| s.kind == kind && s.district == district)
            .or_else(|| sites.iter().position(|s| s.kind == kind))
    };
    let city = sites.iter().position(|s| s.kind == SiteKind::CityCentre);
    let mut set: BTreeSet<(usize, usize, LinkKind)> = BTreeSet::new();
    let mut add = |x: usize, y: Option<usize>, kind: LinkKind| {
        if let Some(y) = y {
            if x != y {
                set.insert((x.min(y), x.max(y), kind));
            }
        }
    };
    for (i, s) in sites.iter().enumerate() {
        let hub = of_kind(SiteKind::DistrictCentre, &s.district).or(city);
        match s.kind {
            SiteKind::VillageKiosk => {
                let desk = s
                    .area
                    .as_ref()
                    .and_then(|a| roster.area(a))
                    .and_then(|a| index.get(&a.desk).copied());
                match desk {
                    Some(d) => add(i, Some(d), LinkKind::VillageLan),
                    None => add(i, hub, LinkKind::Desk),
                }
            }
            // The office dials the district hub; its paired firm is reached through it
            // (DESIGN.md §3: the district centre is the WAN hub that everyone dials).
            SiteKind::JudicialOffice => add(i, hub, LinkKind::TownshipUplink),
            SiteKind::Firm => add(i, hub, LinkKind::Urban),
            SiteKind::NotaryOffice | SiteKind::TaxCentre | SiteKind::VeteransHome => {
                add(i, hub, LinkKind::Desk)
            }
            SiteKind::DistrictCentre => add(i, city, LinkKind::Backbone),
            SiteKind::CityCentre => {}
        }
    }
    // One link per pair: keep the first class found for a pair.
    let mut seen = BTreeSet::new();
    set.into_iter()
        .filter(|(a, b, _)| seen.insert((*a, *b)))
        .map(|(a, b, kind)| LinkSpec { a, b, kind })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huiyang_villages_hang_off_their_office_and_everyone_dials_the_district_hub() {
        let r = Roster::huiyang().unwrap();
        let l = links(&r);
        let name = |i: usize| r.sites()[i].id.as_str();
        let has = |x: &str, y: &str, k: LinkKind| {
            l.iter().any(|s| {
                s.kind == k
                    && ((name(s.a) == x && name(s.b) == y) || (name(s.a) == y && name(s.b) == x))
            })
        };
        assert!(has(
            "village-zhoutian",
            "office-qiuchang",
            LinkKind::VillageLan
        ));
        // The office reaches its paired firm through the district hub.
        assert!(!LinkKind::ALL
            .into_iter()
            .any(|k| has("office-liangjing", "firm-kejia", k)));
        assert!(has(
            "office-liangjing",
            "centre-district",
            LinkKind::TownshipUplink
        ));
        assert!(has("firm-kejia", "centre-district", LinkKind::Urban));
        assert!(has("centre-district", "centre-city", LinkKind::Backbone));
        assert!(has("notary-huiyang", "centre-district", LinkKind::Desk));
    }
}

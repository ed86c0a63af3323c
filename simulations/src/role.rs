//! What part a site plays, for the staff and failure model: the six roles a scenario can set
//! numbers for.

use lawmesh_sync::roster::SiteKind;
use serde::{Deserialize, Serialize};

/// A site's role in the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A village kiosk with a liaison officer.
    Village,
    /// A township judicial office.
    Office,
    /// A law firm.
    Firm,
    /// A district public legal service centre.
    DistrictCentre,
    /// The city centre.
    CityCentre,
    /// A notary office, tax centre or veterans' home.
    Desk,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Village,
        Role::Office,
        Role::Firm,
        Role::DistrictCentre,
        Role::CityCentre,
        Role::Desk,
    ];

    /// The role of a kind of site.
    pub fn of(kind: SiteKind) -> Role {
        match kind {
            SiteKind::VillageKiosk => Role::Village,
            SiteKind::JudicialOffice => Role::Office,
            SiteKind::Firm => Role::Firm,
            SiteKind::DistrictCentre => Role::DistrictCentre,
            SiteKind::CityCentre => Role::CityCentre,
            SiteKind::NotaryOffice | SiteKind::TaxCentre | SiteKind::VeteransHome => Role::Desk,
        }
    }

    /// The role's name in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Village => "village",
            Role::Office => "office",
            Role::Firm => "firm",
            Role::DistrictCentre => "district_centre",
            Role::CityCentre => "city_centre",
            Role::Desk => "desk",
        }
    }
}

/// One value per role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByRole<T> {
    /// Village kiosks.
    pub village: T,
    /// Judicial offices.
    pub office: T,
    /// Firms.
    pub firm: T,
    /// District centres.
    pub district_centre: T,
    /// The city centre.
    pub city_centre: T,
    /// Notary office, tax centre, veterans' home.
    pub desk: T,
}

impl<T> ByRole<T> {
    /// Values in the order of [`Role::ALL`].
    pub fn new(
        village: T,
        office: T,
        firm: T,
        district_centre: T,
        city_centre: T,
        desk: T,
    ) -> Self {
        ByRole {
            village,
            office,
            firm,
            district_centre,
            city_centre,
            desk,
        }
    }

    /// The value for a role.
    pub fn get(&self, role: Role) -> &T {
        match role {
            Role::Village => &self.village,
            Role::Office => &self.office,
            Role::Firm => &self.firm,
            Role::DistrictCentre => &self.district_centre,
            Role::CityCentre => &self.city_centre,
            Role::Desk => &self.desk,
        }
    }
}

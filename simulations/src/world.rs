//! The roster a scenario runs over: the shipped Huiyang roster, the generated city, or a file,
//! with the scenario's roster-level edits (duty lawyers per day at district centres).

use crate::engine::SimError;
use crate::scenario::{Scenario, ScenarioError};
use lawmesh_sync::roster::{Roster, SiteKind};

/// The roster of a scenario, before node keys are registered.
pub(crate) fn base_roster(sc: &Scenario) -> Result<Roster, SimError> {
    let roster = match sc.roster.as_str() {
        "huiyang" => Roster::huiyang()?,
        "city" => crate::city::city_roster(&sc.city)?,
        path => {
            let full = match &sc.base_dir {
                Some(dir) => dir.join(path),
                None => path.into(),
            };
            let text = std::fs::read_to_string(&full).map_err(|err| ScenarioError::Read {
                path: full.display().to_string(),
                err,
            })?;
            Roster::from_toml(&text)?
        }
    };
    let Some(n) = sc.staff.district_duty_lawyers else {
        return Ok(roster);
    };
    let mut doc = roster.doc().clone();
    for d in &mut doc.duty {
        let at_district = roster
            .site(&d.site)
            .is_some_and(|s| s.kind == SiteKind::DistrictCentre);
        if at_district {
            d.lawyers.truncate(n);
        }
    }
    Ok(Roster::new(doc)?)
}

//! The generated city-scale mesh: a roster built in code, shaped like a prefecture-level city
//! (`districts` × `townships` × `villages`), with Huiyang's case types and policy.
//!
//! Names follow Huizhou's districts and counties for the first five; everything else is
//! numbered. Like the shipped roster, every name of a firm or lawyer is synthetic.

use crate::scenario::CityShape;
use lawmesh_sync::ids::{AreaId, LawyerId, SiteId};
use lawmesh_sync::roster::{
    Area, AreaKind, District, Duty, Lawyer, Pairing, Roster, RosterDoc, RosterError, Site, SiteKind,
};

const DISTRICTS: [(&str, &str, &str); 5] = [
    ("huicheng", "惠城区", "Huicheng"),
    ("huiyang", "惠阳区", "Huiyang"),
    ("huidong", "惠东县", "Huidong"),
    ("boluo", "博罗县", "Boluo"),
    ("longmen", "龙门县", "Longmen"),
];

/// Duty lawyers per day at each district centre, and at the city centre.
const DISTRICT_DUTY: usize = 3;
const CITY_DUTY: usize = 2;
const CITY_POOL: usize = 8;

/// Build the city roster (no node keys yet).
pub fn city_roster(shape: &CityShape) -> Result<Roster, RosterError> {
    let base = Roster::huiyang()?;
    let specialties = base.doc().specialties.clone();
    let case_types: Vec<_> = specialties.iter().map(|s| s.id.clone()).collect();
    let mut doc = RosterDoc {
        version: 1,
        name: format!(
            "generated city: {} districts × {} townships × {} villages",
            shape.districts, shape.townships, shape.villages
        ),
        utc_offset_minutes: 480,
        districts: Vec::new(),
        areas: Vec::new(),
        sites: Vec::new(),
        pairings: Vec::new(),
        specialties,
        lawyers: Vec::new(),
        duty: Vec::new(),
        policy: base.doc().policy.clone(),
        nodes: Vec::new(),
    };
    let mut lawyer_no = 0usize;
    let mut new_lawyer = |firm: &SiteId, doc: &mut RosterDoc| {
        lawyer_no += 1;
        let n = lawyer_no;
        let specs = (0..1 + n % 3)
            .map(|k| case_types[(n * 7 + k * 5) % case_types.len()].clone())
            .collect::<Vec<_>>();
        let id = LawyerId(format!("cl{n:04}"));
        doc.lawyers.push(Lawyer {
            id: id.clone(),
            name: format!("律师{n}"),
            pinyin: format!("Lvshi {n}"),
            firm: firm.clone(),
            specialties: specs,
            languages: vec!["zh".into()],
        });
        id
    };
    for d in 0..shape.districts {
        let (id, name, pinyin) = match DISTRICTS.get(d) {
            Some((i, n, p)) => ((*i).to_owned(), (*n).to_owned(), (*p).to_owned()),
            None => (
                format!("d{}", d + 1),
                format!("第{}区", d + 1),
                format!("D{}", d + 1),
            ),
        };
        doc.districts.push(District {
            id: id.clone(),
            name: name.clone(),
            pinyin: pinyin.clone(),
        });
        let site = |sid: String, kind, name: String, area: Option<&str>| Site {
            id: SiteId(sid.clone()),
            kind,
            name,
            pinyin: sid,
            district: id.clone(),
            area: area.map(AreaId::from),
        };
        // The district centre, with its walk-in desk.
        let centre = format!("centre-{id}");
        let walkin = format!("walkin-{id}");
        doc.areas
            .push(area(&walkin, &id, AreaKind::Standalone, &centre));
        doc.sites.push(site(
            centre.clone(),
            SiteKind::DistrictCentre,
            format!("{name}公共法律服务中心"),
            Some(&walkin),
        ));
        // Firms and their lawyers.
        let mut firm_lawyers: Vec<Vec<LawyerId>> = Vec::new();
        for f in 0..shape.firms {
            let fid = SiteId(format!("firm-{id}-{:02}", f + 1));
            doc.sites.push(site(
                fid.0.clone(),
                SiteKind::Firm,
                format!("{name}第{}律师事务所", f + 1),
                None,
            ));
            firm_lawyers.push(
                (0..shape.lawyers_per_firm)
                    .map(|_| new_lawyer(&fid, &mut doc))
                    .collect(),
            );
        }
        // Townships, their offices and villages.
        for t in 0..shape.townships {
            let tid = format!("{id}-t{:02}", t + 1);
            let office = format!("office-{tid}");
            doc.areas.push(area(&tid, &id, AreaKind::Township, &office));
            doc.sites.push(site(
                office.clone(),
                SiteKind::JudicialOffice,
                format!("{name}第{}司法所", t + 1),
                Some(&tid),
            ));
            for v in 0..shape.villages {
                doc.sites.push(site(
                    format!("village-{tid}-v{:02}", v + 1),
                    SiteKind::VillageKiosk,
                    format!("{name}{}镇第{}村", t + 1, v + 1),
                    Some(&tid),
                ));
            }
            if shape.firms > 0 {
                doc.pairings.push(Pairing {
                    office: SiteId(office),
                    firm: SiteId(format!("firm-{id}-{:02}", t % shape.firms + 1)),
                });
            }
        }
        // Duty at the district centre: DISTRICT_DUTY lawyers a day, rotating over the firms.
        let all: Vec<&LawyerId> = firm_lawyers.iter().flatten().collect();
        if !all.is_empty() {
            for wd in 1..=7u8 {
                let lawyers = (0..DISTRICT_DUTY)
                    .map(|k| all[(usize::from(wd) * DISTRICT_DUTY + k * 7) % all.len()].clone())
                    .collect::<Vec<_>>();
                doc.duty.push(duty(&centre, wd, lawyers));
            }
        }
    }
    // The city centre and its duty pool.
    let home = doc
        .districts
        .first()
        .map(|d| d.id.clone())
        .unwrap_or_default();
    doc.areas.push(area(
        "walkin-city",
        &home,
        AreaKind::Standalone,
        "centre-city",
    ));
    let city = SiteId::from("centre-city");
    doc.sites.push(Site {
        id: city.clone(),
        kind: SiteKind::CityCentre,
        name: "市公共法律服务中心".into(),
        pinyin: "Shi Zhongxin".into(),
        district: home,
        area: Some(AreaId::from("walkin-city")),
    });
    let pool: Vec<LawyerId> = (0..CITY_POOL)
        .map(|_| new_lawyer(&city, &mut doc))
        .collect();
    for wd in 1..=7u8 {
        let lawyers = (0..CITY_DUTY)
            .map(|k| pool[(usize::from(wd) * CITY_DUTY + k) % pool.len()].clone())
            .collect();
        doc.duty.push(duty("centre-city", wd, lawyers));
    }
    Roster::new(doc)
}

fn area(id: &str, district: &str, kind: AreaKind, desk: &str) -> Area {
    Area {
        id: AreaId::from(id),
        name: id.to_owned(),
        pinyin: id.to_owned(),
        district: district.to_owned(),
        kind,
        period: Default::default(),
        desk: SiteId::from(desk),
    }
}

fn duty(site: &str, weekday: u8, lawyers: Vec<LawyerId>) -> Duty {
    Duty {
        site: SiteId::from(site),
        weekday: Some(weekday),
        date: None,
        lawyers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lawmesh_sync::ids::Channel;

    #[test]
    fn the_default_city_has_the_asked_shape_and_valid_chains() {
        let r = city_roster(&CityShape::default()).unwrap();
        let count = |k: SiteKind| r.sites().iter().filter(|s| s.kind == k).count();
        assert_eq!(count(SiteKind::DistrictCentre), 5);
        assert_eq!(count(SiteKind::JudicialOffice), 75);
        assert_eq!(count(SiteKind::VillageKiosk), 1125);
        assert_eq!(count(SiteKind::CityCentre), 1);
        let chain = r.chain(&"boluo-t03".into(), Channel::Consultation).unwrap();
        let sites: Vec<&str> = chain.iter().map(|t| t.site.as_str()).collect();
        assert_eq!(
            sites,
            [
                "office-boluo-t03",
                "firm-boluo-03",
                "centre-boluo",
                "centre-city"
            ]
        );
    }
}

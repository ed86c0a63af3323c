//! Who should serve an order: lawyer suggestions for a dispatch, and the duty-lawyer pick at
//! centres.

use crate::fold::{OrderState, Status};
use crate::ids::{CaseType, LawyerId, OrderId, SiteId};
use crate::roster::Roster;
use crate::time::Date;
use serde::Serialize;
use std::collections::BTreeMap;

/// One suggested lawyer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// The lawyer.
    pub lawyer: LawyerId,
    /// Has the specialty the case needs.
    pub specialty_match: bool,
    /// Open dispatched orders the lawyer already carries.
    pub load: usize,
    /// On duty at the site today.
    pub on_duty: bool,
}

/// Open cases per lawyer: orders dispatched and not yet closed, confirmed or cancelled.
pub fn lawyer_load<'a>(
    states: impl IntoIterator<Item = &'a OrderState>,
) -> BTreeMap<LawyerId, usize> {
    let mut load = BTreeMap::new();
    for s in states {
        if s.status == Status::Dispatched {
            if let Some(l) = &s.lawyer {
                *load.entry(l.clone()).or_insert(0) += 1;
            }
        }
    }
    load
}

/// The lawyers `site` may dispatch for a case, best first: specialty match, then on duty today,
/// then the lightest load, then id (so every node ranks alike).
pub fn suggest_lawyers(
    roster: &Roster,
    site: &SiteId,
    case_type: &CaseType,
    today: Date,
    load: &BTreeMap<LawyerId, usize>,
) -> Vec<Suggestion> {
    let duty = roster.duty_lawyers(site, today);
    let mut out: Vec<Suggestion> = roster
        .lawyers()
        .iter()
        .filter(|l| roster.may_dispatch(site, &l.id))
        .map(|l| Suggestion {
            lawyer: l.id.clone(),
            specialty_match: l.specialties.contains(case_type),
            load: load.get(&l.id).copied().unwrap_or(0),
            on_duty: duty.contains(&l.id),
        })
        .collect();
    out.sort_by(|a, b| {
        (!a.specialty_match, !a.on_duty, a.load, &a.lawyer).cmp(&(
            !b.specialty_match,
            !b.on_duty,
            b.load,
            &b.lawyer,
        ))
    });
    out
}

/// The duty lawyer a centre sends to an order: a pure function of the order id and that day's
/// duty list, so two devices at the centre that pick concurrently pick the same person. Lawyers
/// with the needed specialty are preferred when any is on duty.
pub fn duty_pick(
    roster: &Roster,
    order: &OrderId,
    case_type: &CaseType,
    duty: &[LawyerId],
) -> Option<LawyerId> {
    let mut list: Vec<&LawyerId> = duty.iter().collect();
    list.sort();
    list.dedup();
    let specialists: Vec<&LawyerId> = list
        .iter()
        .copied()
        .filter(|l| {
            roster
                .lawyer(l)
                .is_some_and(|x| x.specialties.contains(case_type))
        })
        .collect();
    let pool = if specialists.is_empty() {
        list
    } else {
        specialists
    };
    if pool.is_empty() {
        return None;
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&order.0[..8]);
    let idx = (u64::from_le_bytes(n) % pool.len() as u64) as usize;
    Some(pool[idx].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_rank_specialists_first_then_lighter_load() {
        let r = Roster::huiyang().unwrap();
        let firm = r.paired_firm(&"office-qiuchang".into()).unwrap().clone();
        let today = Date::parse("2026-12-07").unwrap();
        let none = BTreeMap::new();
        let list = suggest_lawyers(&r, &firm, &"land".into(), today, &none);
        assert!(!list.is_empty());
        assert!(list
            .iter()
            .all(|s| r.lawyer(&s.lawyer).unwrap().firm == firm));
        let first_non_match = list
            .iter()
            .position(|s| !s.specialty_match)
            .unwrap_or(list.len());
        assert!(list[..first_non_match].iter().all(|s| s.specialty_match));
        assert!(list[first_non_match..].iter().all(|s| !s.specialty_match));
        // Load the top specialist: the next specialist moves ahead of them.
        let top = list[0].lawyer.clone();
        let busy = BTreeMap::from([(top.clone(), 5)]);
        let again = suggest_lawyers(&r, &firm, &"land".into(), today, &busy);
        if first_non_match > 1 {
            assert_ne!(again[0].lawyer, top);
        }
    }

    #[test]
    fn duty_pick_is_a_function_of_order_and_list_only() {
        let r = Roster::huiyang().unwrap();
        let centre = SiteId::from("centre-district");
        let duty = r.duty_lawyers(&centre, Date::parse("2026-12-07").unwrap());
        assert_eq!(duty.len(), 3);
        let mut reversed = duty.clone();
        reversed.reverse();
        let mut picked = std::collections::BTreeSet::new();
        for n in 0..64u8 {
            let order = OrderId([n; 16]);
            let a = duty_pick(&r, &order, &"no-such-type".into(), &duty);
            assert_eq!(a, duty_pick(&r, &order, &"no-such-type".into(), &reversed));
            picked.insert(a.unwrap());
        }
        assert_eq!(picked.len(), 3, "spreads orders over the whole duty list");
    }
}

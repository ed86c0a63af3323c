//! Sweeps: run every combination of parameter values over several seeds, in parallel across
//! cores (each run stays single-threaded and deterministic), and summarise each combination by
//! the mean and spread of the figures a planner compares.

use crate::engine::SimError;
use crate::report::Report;
use crate::scenario::{Scenario, ScenarioError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// One parameter and the values to try.
#[derive(Debug, Clone)]
pub struct Param {
    /// Dotted path in the scenario, e.g. `staff.district_duty_lawyers`.
    pub name: String,
    /// Values, as written on the command line.
    pub values: Vec<String>,
}

impl Param {
    /// Parse `NAME=V1,V2,…`.
    pub fn parse(s: &str) -> Result<Param, ScenarioError> {
        let (name, values) = s
            .split_once('=')
            .ok_or_else(|| ScenarioError::Param(s.to_owned(), "want NAME=V1,V2,…".into()))?;
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
        if name.is_empty() || values.iter().any(String::is_empty) {
            return Err(ScenarioError::Param(
                s.to_owned(),
                "want NAME=V1,V2,…".into(),
            ));
        }
        Ok(Param {
            name: name.to_owned(),
            values,
        })
    }
}

/// Mean and standard deviation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one sample).
    pub sd: f64,
}

impl Spread {
    fn of(v: &[f64]) -> Spread {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Spread {
            mean,
            sd: var.sqrt(),
        }
    }
}

/// One combination's results over its seeds.
#[derive(Debug, Clone)]
pub struct Combination {
    /// The values set, as `name=value`.
    pub setting: Vec<String>,
    /// Live requests: p90 minutes to accept.
    pub live_p90_min: Spread,
    /// Queued requests: p90 hours to accept.
    pub queued_p90_h: Spread,
    /// Share accepted at the district or city centre.
    pub at_centres: Spread,
    /// Overdue orders.
    pub overdue: Spread,
    /// Overturned accepts.
    pub overturned: Spread,
    /// Total subsidies, RMB.
    pub subsidies_rmb: Spread,
    /// Runs whose end check passed, of all runs.
    pub passed: (usize, usize),
    /// Reproduce commands of runs that failed the end check.
    pub failed: Vec<String>,
}

impl Combination {
    /// One line: the setting and each figure as mean ± sd.
    pub fn line(&self) -> String {
        format!(
            "{:<40} live p90 {:>6.1} ± {:<5.1} min | queued p90 {:>5.1} ± {:<4.1} h | at centres {:>4.1} ± {:<4.1} % | overdue {:>5.1} ± {:<4.1} | overturned {:>4.1} ± {:<4.1} | subsidies {:>9.0} ± {:<7.0} RMB | end check {}/{}",
            self.setting.join(" "),
            self.live_p90_min.mean,
            self.live_p90_min.sd,
            self.queued_p90_h.mean,
            self.queued_p90_h.sd,
            self.at_centres.mean * 100.0,
            self.at_centres.sd * 100.0,
            self.overdue.mean,
            self.overdue.sd,
            self.overturned.mean,
            self.overturned.sd,
            self.subsidies_rmb.mean,
            self.subsidies_rmb.sd,
            self.passed.0,
            self.passed.1
        )
    }
}

/// Every combination of the parameters' values (the first parameter varies slowest).
pub fn combinations(params: &[Param]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for p in params {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                p.values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((p.name.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    out
}

/// Run the sweep on up to `threads` threads; `done(k, n)` is called as runs finish. Results
/// come back in combination order, whatever order the runs finished in.
pub fn sweep(
    base: &Scenario,
    params: &[Param],
    seeds: u64,
    days: Option<u32>,
    threads: usize,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<Combination>, SimError> {
    let combos = combinations(params);
    let mut scenarios = Vec::new();
    for c in &combos {
        let mut s = base.clone();
        for (k, v) in c {
            s = s.with_param(k, v)?;
        }
        scenarios.push(s);
    }
    let jobs: Vec<(usize, u64)> = (0..scenarios.len())
        .flat_map(|c| (1..=seeds).map(move |seed| (c, seed)))
        .collect();
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Report, String>>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(jobs.len().max(1)) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(c, seed)) = jobs.get(k) else { break };
                let out = crate::run::run(&scenarios[c], seed, days, &mut |_, _| {})
                    .map(|o| o.report)
                    .map_err(|e| e.to_string());
                if let Ok(mut r) = results.lock() {
                    r[k] = Some(out);
                }
                done(finished.fetch_add(1, Ordering::SeqCst) + 1, jobs.len());
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut out = Vec::new();
    for (c, combo) in combos.iter().enumerate() {
        let mut reports = Vec::new();
        for (k, (jc, _)) in jobs.iter().enumerate() {
            if *jc != c {
                continue;
            }
            match results.get(k).cloned().flatten() {
                Some(Ok(r)) => reports.push(r),
                Some(Err(e)) => {
                    return Err(ScenarioError::Param(combo_name(combo), e).into());
                }
                None => {}
            }
        }
        let f = |g: &dyn Fn(&Report) -> f64| Spread::of(&reports.iter().map(g).collect::<Vec<_>>());
        out.push(Combination {
            setting: combo.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            live_p90_min: f(&|r| r.time_to_accept.live.p90),
            queued_p90_h: f(&|r| r.time_to_accept.queued.p90 / 60.0),
            at_centres: f(&|r| {
                r.accepted_by
                    .get("district_centre")
                    .map_or(0.0, |s| s.share)
                    + r.accepted_by.get("city_centre").map_or(0.0, |s| s.share)
            }),
            overdue: f(&|r| r.overdue.count as f64),
            overturned: f(&|r| r.overturned.accepts as f64),
            subsidies_rmb: f(&|r| r.subsidies.total_rmb as f64),
            passed: (
                reports.iter().filter(|r| r.end_check.passed).count(),
                reports.len(),
            ),
            failed: reports
                .iter()
                .filter(|r| !r.end_check.passed)
                .map(|r| r.run.reproduce.clone())
                .collect(),
        });
    }
    Ok(out)
}

fn combo_name(c: &[(String, String)]) -> String {
    c.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_cover_the_product() {
        let p = [
            Param::parse("a=1,2").unwrap(),
            Param::parse("b=x,y,z").unwrap(),
        ];
        let c = combinations(&p);
        assert_eq!(c.len(), 6);
        assert_eq!(
            c[0],
            vec![("a".into(), "1".into()), ("b".into(), "x".into())]
        );
        assert!(Param::parse("nothing").is_err());
    }
}

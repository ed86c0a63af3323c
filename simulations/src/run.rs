//! One run of a scenario, start to end check.

use crate::engine::{Engine, SimError};
use crate::report::{Detail, Report};
use crate::scenario::Scenario;

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The JSON report.
    pub report: Report,
    /// The data behind the CSV files and charts.
    pub detail: Detail,
}

/// Run `scenario` from `seed` for `days` (default: the scenario's), then heal, check and
/// report. `progress(day, days)` is called as simulated days pass. Deterministic: the same
/// scenario and seed give the same report, byte for byte.
pub fn run(
    scenario: &Scenario,
    seed: u64,
    days: Option<u32>,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<Outcome, SimError> {
    let days = days.unwrap_or(scenario.days).max(1);
    let mut engine = Engine::new(scenario, seed, days)?;
    let ending = engine.run(progress);
    let held = engine.held();
    let check = engine.end_check(&ending, &held);
    let (report, detail) = engine.report(&held, &ending, check, scenario.command(seed, days));
    Ok(Outcome { report, detail })
}

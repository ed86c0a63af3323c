//! Scenarios: what a planner asks, as TOML. Every field has a default, so a scenario file
//! names only what differs from the Huiyang baseline. The format is documented field by field
//! in `simulations/README.md`; the presets in `simulations/scenarios/` are examples of it.

use crate::role::{ByRole, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a scenario could not be used.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// No preset of that name and no such file.
    #[error("no preset or file named `{0}`; `lawmesh-sim list` shows the presets")]
    NotFound(String),
    /// The file could not be read.
    #[error("cannot read {path}: {err}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        err: std::io::Error,
    },
    /// The TOML is not a scenario.
    #[error("scenario {name} does not parse: {err}")]
    Parse {
        /// The scenario's name or file.
        name: String,
        /// What is wrong.
        err: String,
    },
    /// A value is out of range or refers to something unknown.
    #[error("scenario {name}: {what}")]
    Invalid {
        /// The scenario.
        name: String,
        /// What is wrong and how to fix it.
        what: String,
    },
    /// A `--param` could not be applied.
    #[error("parameter `{0}`: {1}")]
    Param(String, String),
}

/// One "what if", complete.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (the preset name or the file's).
    pub name: String,
    /// What the scenario asks, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// `huiyang` (the shipped roster), `city` (generated from `[city]`), or a roster TOML file
    /// relative to the scenario file.
    #[serde(default = "default_roster")]
    pub roster: String,
    /// Shape of the generated city mesh (for `roster = "city"`).
    #[serde(default)]
    pub city: CityShape,
    /// First simulated day, local date `YYYY-MM-DD`.
    #[serde(default = "default_start")]
    pub start: String,
    /// Simulated days (the `--days` option overrides).
    #[serde(default = "default_days")]
    pub days: u32,
    /// Residents and their requests.
    #[serde(default)]
    pub workload: Workload,
    /// People at the sites.
    #[serde(default)]
    pub staff: Staff,
    /// Links by class.
    #[serde(default)]
    pub network: Network,
    /// Node failures, flushing and clocks.
    #[serde(default)]
    pub nodes: Nodes,
    /// Fixed outage windows.
    #[serde(default)]
    pub outages: Vec<Outage>,
    /// The end check.
    #[serde(default)]
    pub check: Check,
    /// Where the scenario file is (for a relative roster path); not part of the format.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
    /// How it was named on the command line (preset or path); not part of the format.
    #[serde(skip)]
    pub source: Option<String>,
    /// Parameters set on top of the file (`--set`); not part of the format.
    #[serde(skip)]
    pub params: Vec<(String, String)>,
}

fn default_roster() -> String {
    "huiyang".into()
}
fn default_start() -> String {
    // A Monday.
    "2027-03-01".into()
}
fn default_days() -> u32 {
    7
}

/// The generated city: `districts` × (`townships` judicial offices × `villages` kiosks each,
/// `firms` law firms), one district centre each and one city centre.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CityShape {
    /// Districts.
    pub districts: usize,
    /// Townships per district.
    pub townships: usize,
    /// Village kiosks per township.
    pub villages: usize,
    /// Law firms per district (each pairs with several townships).
    pub firms: usize,
    /// Lawyers per firm.
    pub lawyers_per_firm: usize,
}

impl Default for CityShape {
    fn default() -> Self {
        CityShape {
            districts: 5,
            townships: 15,
            villages: 15,
            firms: 8,
            lawyers_per_firm: 8,
        }
    }
}

/// Per-channel numbers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerChannel {
    /// Legal consultation.
    pub consultation: f64,
    /// The mediation channel.
    pub mediation: f64,
    /// Notarisation.
    pub notary: f64,
    /// Tax.
    pub tax: f64,
    /// Veterans.
    pub veterans: f64,
}

impl Default for PerChannel {
    fn default() -> Self {
        PerChannel {
            consultation: 0.0,
            mediation: 0.0,
            notary: 0.0,
            tax: 0.0,
            veterans: 0.0,
        }
    }
}

impl PerChannel {
    /// The value for a channel.
    pub fn get(&self, c: lawmesh_sync::ids::Channel) -> f64 {
        use lawmesh_sync::ids::Channel::*;
        match c {
            Consultation => self.consultation,
            Mediation => self.mediation,
            Notary => self.notary,
            Tax => self.tax,
            Veterans => self.veterans,
        }
    }
}

/// Residents and their requests. The defaults are derived from the recorded figures (see
/// `simulations/README.md`, "Workload defaults").
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    /// Multiplies every rate (10 = the 10× preset).
    pub load_factor: f64,
    /// Requests per year per channel for a district of Huiyang's size, at load 1.
    pub per_year: PerChannel,
    /// Share of requests made live (the resident waits at the kiosk), per channel.
    pub live_share: PerChannel,
    /// Share of a township's consultations and mediations made at each of its village kiosks.
    pub village_share: f64,
    /// Share of a district's consultations and mediations made at its centre's walk-in desk.
    pub walkin_share: f64,
    /// Relative weight of each weekday, Monday first.
    pub weekday: [f64; 7],
    /// Relative weight of each hour of the day, 00:00 first.
    pub hourly: [f64; 24],
    /// Relative size of each township (by area id); townships not listed weigh 1.
    pub area_weight: BTreeMap<String, f64>,
    /// Case types of consultations and mediations, with relative weights.
    pub case_mix: BTreeMap<String, f64>,
    /// Share of served residents who confirm the service at the kiosk.
    pub confirm_share: f64,
}

impl Default for Workload {
    fn default() -> Self {
        let hourly = [
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.6, 1.0, 1.0, 0.8, 0.3, 0.2, 0.8, 1.0, 0.9,
            0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        Workload {
            load_factor: 1.0,
            per_year: PerChannel {
                consultation: 260.0,
                mediation: 120.0,
                notary: 60.0,
                tax: 40.0,
                veterans: 30.0,
            },
            live_share: PerChannel {
                consultation: 0.6,
                mediation: 0.3,
                notary: 0.8,
                tax: 0.7,
                veterans: 0.5,
            },
            village_share: 0.1,
            walkin_share: 0.05,
            weekday: [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.3],
            hourly,
            // Huiyang's townships, by rough relative population (our assumption; Danshui, the
            // urban centre, is the largest). Ids not in the roster are ignored.
            area_weight: [
                ("danshui", 3.0),
                ("qiuchang", 1.5),
                ("sanhe", 0.8),
                ("shatian", 1.0),
                ("xinxu", 0.8),
                ("zhenlong", 0.8),
                ("yonghu", 0.6),
                ("liangjing", 0.6),
                ("pingtan", 0.6),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            case_mix: [
                ("family", 0.22),
                ("labour", 0.18),
                ("land", 0.16),
                ("neighbour", 0.12),
                ("contract", 0.12),
                ("traffic", 0.1),
                ("criminal", 0.04),
                ("company", 0.03),
                ("administrative", 0.03),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            confirm_share: 0.9,
        }
    }
}

/// Opening hours of a kind of site.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    /// Daily opening, `HH:MM-HH:MM`.
    pub time: String,
    /// Open weekdays, e.g. `mon-fri` or `mon-sun`.
    pub days: String,
}

impl Hours {
    fn new(time: &str, days: &str) -> Hours {
        Hours {
            time: time.into(),
            days: days.into(),
        }
    }
}

/// A firm with fewer lawyers at work than the roster lists.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmStaffing {
    /// The firm's site id.
    pub site: String,
    /// How many of its lawyers are at work (the first ones of the roster).
    pub lawyers_at_work: usize,
}

/// People at the sites.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Staff {
    /// Median minutes until someone picks up a live order on call at the site.
    pub pickup_minutes: ByRole<f64>,
    /// Median minutes until someone picks up a queued order.
    pub queued_pickup_minutes: ByRole<f64>,
    /// Spread of pick-up delays (log-normal sigma).
    pub pickup_sigma: f64,
    /// Median minutes a lawyer serves one resident.
    pub service_minutes: f64,
    /// Median minutes an office clerk needs for a request the office solves itself.
    pub office_service_minutes: f64,
    /// Spread of service times (log-normal sigma).
    pub service_sigma: f64,
    /// Share of consultations and mediations the judicial office solves itself (otherwise it
    /// sends them on, 发单).
    pub office_self_solve: f64,
    /// Clerks at each judicial office.
    pub office_clerks: usize,
    /// Clerks at each notary office and tax centre.
    pub desk_clerks: usize,
    /// Opening hours by kind of site.
    pub hours: ByRole<Hours>,
    /// Duty lawyers per day at each district centre: the roster's lists cut to this many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub district_duty_lawyers: Option<usize>,
    /// Firms working short-handed.
    pub firms: Vec<FirmStaffing>,
}

impl Default for Staff {
    fn default() -> Self {
        Staff {
            pickup_minutes: ByRole::new(1.0, 1.0, 2.0, 2.0, 2.0, 2.0),
            queued_pickup_minutes: ByRole::new(30.0, 60.0, 90.0, 60.0, 60.0, 60.0),
            pickup_sigma: 0.6,
            service_minutes: 35.0,
            office_service_minutes: 15.0,
            service_sigma: 0.5,
            office_self_solve: 0.3,
            office_clerks: 2,
            desk_clerks: 3,
            hours: ByRole::new(
                Hours::new("08:00-20:00", "mon-sun"),
                Hours::new("08:00-18:00", "mon-fri"),
                Hours::new("08:00-18:00", "mon-sat"),
                Hours::new("08:00-18:00", "mon-sun"),
                Hours::new("08:00-20:00", "mon-sun"),
                Hours::new("08:00-18:00", "mon-fri"),
            ),
            district_duty_lawyers: None,
            firms: Vec::new(),
        }
    }
}

/// One class of link.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkClass {
    /// One-way latency, ms.
    pub latency_ms: u64,
    /// Bandwidth, kbit/s.
    pub bandwidth_kbps: u64,
    /// Chance that one transmission is lost (and retransmitted).
    pub loss: f64,
    /// Mean hours between bursts of heavy loss (0: none).
    pub burst_every_hours: f64,
    /// Mean minutes a burst lasts.
    pub burst_minutes: f64,
    /// Chance of loss during a burst.
    pub burst_loss: f64,
    /// Mean hours between random failures of one link (0: none).
    pub mtbf_hours: f64,
    /// Median minutes to repair a failed link.
    pub mttr_minutes: f64,
}

impl LinkClass {
    #[allow(clippy::too_many_arguments)]
    fn new(
        latency_ms: u64,
        bandwidth_kbps: u64,
        loss: f64,
        burst_every_hours: f64,
        burst_minutes: f64,
        mtbf_hours: f64,
        mttr_minutes: f64,
    ) -> LinkClass {
        LinkClass {
            latency_ms,
            bandwidth_kbps,
            loss,
            burst_every_hours,
            burst_minutes,
            burst_loss: 0.5,
            mtbf_hours,
            mttr_minutes,
        }
    }
}

impl Default for LinkClass {
    fn default() -> Self {
        LinkClass::new(20, 10_000, 0.0, 0.0, 5.0, 0.0, 30.0)
    }
}

/// Links by class (see `topology` for which pair of sites gets which class).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// Village kiosk ↔ its township's judicial office.
    pub village_lan: LinkClass,
    /// Judicial office ↔ district centre (the township's uplink).
    pub township_uplink: LinkClass,
    /// Firm ↔ district centre, in town.
    pub urban: LinkClass,
    /// District centre ↔ city centre.
    pub backbone: LinkClass,
    /// Notary office, tax centre, veterans' home ↔ district centre.
    pub desk: LinkClass,
    /// Seconds before a dropped connection is dialled again.
    pub redial_seconds: u64,
    /// Consecutive losses of one message after which the connection is declared dead.
    pub max_retransmits: u32,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            village_lan: LinkClass::new(8, 2_000, 0.01, 48.0, 10.0, 240.0, 60.0),
            township_uplink: LinkClass::new(30, 10_000, 0.005, 72.0, 5.0, 720.0, 45.0),
            urban: LinkClass::new(5, 100_000, 0.001, 0.0, 5.0, 2_160.0, 30.0),
            backbone: LinkClass::new(10, 100_000, 0.0, 0.0, 5.0, 4_320.0, 20.0),
            desk: LinkClass::new(10, 20_000, 0.002, 0.0, 5.0, 2_160.0, 30.0),
            redial_seconds: 10,
            max_retransmits: 6,
        }
    }
}

/// Node failures, flushing and clocks.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Nodes {
    /// Mean days between crashes of one node, by kind (0: never).
    pub crash_every_days: ByRole<f64>,
    /// Median minutes until a crashed node is running again.
    pub restart_minutes: f64,
    /// How often a node flushes writes that were not acknowledged to anyone (received sync
    /// data); a crash loses what was not flushed. Orders and staff actions are flushed at once.
    pub flush_interval_ms: u64,
    /// Standard deviation of node clock offsets, ms.
    pub clock_skew_ms: f64,
    /// The replica's resync timeout, ms.
    pub resync_after_ms: u64,
}

impl Default for Nodes {
    fn default() -> Self {
        Nodes {
            crash_every_days: ByRole::new(45.0, 120.0, 180.0, 365.0, 365.0, 180.0),
            restart_minutes: 20.0,
            flush_interval_ms: 500,
            clock_skew_ms: 2_000.0,
            resync_after_ms: 15_000,
        }
    }
}

/// A fixed outage window.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// What goes down: `uplink:SITE` (a site's links to the outside, not its own villages),
    /// `site:SITE` (all links of a site; the node keeps running), `node:SITE` (the node is
    /// off: power cut), `link:SITE~SITE`, or `class:CLASS` (links of a class, see `share`).
    pub what: String,
    /// Local time it starts, `HH:MM`.
    pub from: String,
    /// How long, hours.
    pub hours: f64,
    /// `daily`, `weekdays` or `once`.
    #[serde(default = "default_on")]
    pub on: String,
    /// The first day it happens (1 = the first simulated day).
    #[serde(default = "default_day")]
    pub day: u32,
    /// For `class:`: the share of that class's links it hits (drawn once per run).
    #[serde(default = "default_share")]
    pub share: f64,
}

fn default_on() -> String {
    "once".into()
}
fn default_day() -> u32 {
    1
}
fn default_share() -> f64 {
    1.0
}

/// The end check.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Check {
    /// Longest simulated time, in days, the healed mesh may take to become quiet.
    pub heal_max_days: f64,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            heal_max_days: 30.0,
        }
    }
}

/// The preset scenarios, shipped in `simulations/scenarios/`.
pub const PRESETS: [(&str, &str); 8] = [
    (
        "huiyang-baseline",
        include_str!("../scenarios/huiyang-baseline.toml"),
    ),
    ("huiyang-10x", include_str!("../scenarios/huiyang-10x.toml")),
    (
        "liangjing-uplink-6h",
        include_str!("../scenarios/liangjing-uplink-6h.toml"),
    ),
    (
        "district-centre-offline",
        include_str!("../scenarios/district-centre-offline.toml"),
    ),
    ("typhoon-day", include_str!("../scenarios/typhoon-day.toml")),
    (
        "firm-short-staffed",
        include_str!("../scenarios/firm-short-staffed.toml"),
    ),
    (
        "district-duty-2",
        include_str!("../scenarios/district-duty-2.toml"),
    ),
    ("city-scale", include_str!("../scenarios/city-scale.toml")),
];

impl Scenario {
    /// Parse scenario TOML.
    pub fn from_toml(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            name: name.to_owned(),
            err: e.to_string(),
        })?;
        s.validate()?;
        Ok(s)
    }

    /// A preset by name, a swarm fault mix (`swarm-N`), or a scenario file by path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((_, text)) = PRESETS.iter().find(|(n, _)| *n == name_or_path) {
            let mut s = Scenario::from_toml(name_or_path, text)?;
            s.source = Some(name_or_path.to_owned());
            return Ok(s);
        }
        if let Some(mix) = name_or_path
            .strip_prefix(crate::swarm::PREFIX)
            .and_then(|n| n.parse().ok())
        {
            return crate::swarm::swarm(mix);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(ScenarioError::NotFound(name_or_path.to_owned()));
        }
        let text = std::fs::read_to_string(path).map_err(|err| ScenarioError::Read {
            path: name_or_path.to_owned(),
            err,
        })?;
        let mut s = Scenario::from_toml(name_or_path, &text)?;
        s.base_dir = path.parent().map(Path::to_path_buf);
        s.source = Some(name_or_path.to_owned());
        Ok(s)
    }

    /// The preset names and their descriptions.
    pub fn presets() -> Vec<(String, String)> {
        PRESETS
            .iter()
            .map(|(n, t)| {
                let desc = Scenario::from_toml(n, t)
                    .map(|s| s.description)
                    .unwrap_or_else(|e| format!("(broken preset: {e})"));
                ((*n).to_owned(), desc)
            })
            .collect()
    }

    /// A copy with one field set by its dotted path, e.g. `workload.load_factor` = `10` or
    /// `staff.district_duty_lawyers` = `2` (what `sweep --param` does).
    pub fn with_param(&self, path: &str, value: &str) -> Result<Scenario, ScenarioError> {
        let perr = |m: String| ScenarioError::Param(path.to_owned(), m);
        let mut tree = toml::Value::try_from(self).map_err(|e| perr(e.to_string()))?;
        let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(value.into())),
            Err(_) => toml::Value::String(value.to_owned()),
        };
        let mut cur = &mut tree;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let table = cur
                .as_table_mut()
                .ok_or_else(|| perr(format!("`{part}` is not inside a table")))?;
            if i + 1 == parts.len() {
                table.insert((*part).to_owned(), parsed.clone());
                break;
            }
            cur = table
                .entry((*part).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        }
        let mut s: Scenario = tree.try_into().map_err(|e: toml::de::Error| {
            perr(format!("{} (see simulations/README.md)", e.message()))
        })?;
        s.base_dir = self.base_dir.clone();
        s.source = self.source.clone();
        s.params = self.params.clone();
        s.params.push((path.to_owned(), value.to_owned()));
        s.validate()?;
        Ok(s)
    }

    /// The command line that runs this scenario with `seed` for `days` days.
    pub fn command(&self, seed: u64, days: u32) -> String {
        let mut cmd = format!(
            "lawmesh-sim run {} --seed {seed} --days {days}",
            self.source.as_deref().unwrap_or(&self.name)
        );
        for (k, v) in &self.params {
            cmd.push_str(&format!(" --set {k}={v}"));
        }
        cmd
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |what: String| {
            Err(ScenarioError::Invalid {
                name: self.name.clone(),
                what,
            })
        };
        if lawmesh_sync::time::Date::parse(&self.start).is_none() {
            return bad(format!("start `{}` is not a date YYYY-MM-DD", self.start));
        }
        if self.days == 0 || self.days > 3660 {
            return bad(format!("days = {} (want 1–3660)", self.days));
        }
        if !(0.0..=1000.0).contains(&self.workload.load_factor) {
            return bad("workload.load_factor must be between 0 and 1000".into());
        }
        for role in Role::ALL {
            if crate::hours::OpeningHours::parse(self.staff.hours.get(role)).is_none() {
                return bad(format!(
                    "staff.hours.{}: want time = \"HH:MM-HH:MM\", days = \"mon-fri\"",
                    role.as_str()
                ));
            }
        }
        for o in &self.outages {
            if crate::hours::parse_hhmm(&o.from).is_none() || o.hours.is_nan() || o.hours <= 0.0 {
                return bad(format!(
                    "outage `{}`: want from = \"HH:MM\" and hours > 0",
                    o.what
                ));
            }
            if !["daily", "weekdays", "once"].contains(&o.on.as_str()) {
                return bad(format!(
                    "outage `{}`: on = `{}` (want daily, weekdays or once)",
                    o.what, o.on
                ));
            }
        }
        if self.roster == "city" && (self.city.districts == 0 || self.city.townships == 0) {
            return bad("city: want at least one district and one township".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_names_itself() {
        for (name, text) in PRESETS {
            let s = Scenario::from_toml(name, text).unwrap();
            assert_eq!(s.name, name);
            assert!(!s.description.is_empty(), "{name} needs a description");
        }
    }

    #[test]
    fn a_param_sets_a_nested_field() {
        let s = Scenario::load("huiyang-baseline").unwrap();
        let t = s.with_param("workload.load_factor", "10").unwrap();
        assert_eq!(t.workload.load_factor, 10.0);
        let t = s.with_param("staff.district_duty_lawyers", "2").unwrap();
        assert_eq!(t.staff.district_duty_lawyers, Some(2));
        assert!(s.with_param("staff.no_such_field", "2").is_err());
    }
}

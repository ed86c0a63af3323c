//! `lawmesh-sim`: outage simulations of the lawmesh mesh for planners.
//!
//! ```text
//! lawmesh-sim list
//! lawmesh-sim show SCENARIO
//! lawmesh-sim run SCENARIO [--seed N] [--days D] [--set NAME=V]… [--json FILE] [--csv DIR] [--charts DIR]
//! lawmesh-sim sweep SCENARIO --param NAME=V1,V2,… [--param …] [--seeds K] [--days D] [--threads T]
//! ```

use lawmesh_sim::progress::Progress;
use lawmesh_sim::scenario::{Scenario, PRESETS};
use lawmesh_sim::sweep::{sweep, Param};
use lawmesh_sim::{charts, csv, run, summary};
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs allocate and free many small buffers (sync messages, events); mimalloc does that faster
/// than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
lawmesh-sim — outage simulations of the lawmesh mesh (the real sync rules on a virtual clock)

usage:
  lawmesh-sim list                         the preset scenarios
  lawmesh-sim show SCENARIO                print a scenario's TOML (copy it to make your own)
  lawmesh-sim run SCENARIO [options]       run once and print a summary in words
      --seed N          random seed (default 1); the same seed gives the same run
      --days D          simulated days (default: the scenario's)
      --set NAME=V      set a scenario field, e.g. --set staff.district_duty_lawyers=2
      --json FILE       write the JSON report (schema in simulations/README.md)
      --csv DIR         write orders.csv, areas.csv, links.csv, nodes.csv, backlog.csv
      --charts DIR      write time_to_accept.svg, backlog.svg, service_level.svg
  lawmesh-sim sweep SCENARIO --param NAME=V1,V2 [--param …] [--seeds K] [--days D] [--threads T]
                                           every combination over seeds 1..K, in parallel

SCENARIO is a preset name (see `list`) or a path to a scenario TOML file.
Exit status: 0 ok, 1 the end check failed, 2 bad usage or input.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lawmesh-sim: {e}");
            ExitCode::from(2)
        }
    }
}

struct Opts {
    seed: u64,
    days: Option<u32>,
    sets: Vec<(String, String)>,
    json: Option<PathBuf>,
    csv: Option<PathBuf>,
    charts: Option<PathBuf>,
    params: Vec<Param>,
    seeds: u64,
    threads: usize,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        seed: 1,
        days: None,
        sets: Vec::new(),
        json: None,
        csv: None,
        charts: None,
        params: Vec::new(),
        seeds: 5,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        let num = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--seed" => o.seed = num(value()?)?,
            "--days" => o.days = Some(u32::try_from(num(value()?)?).map_err(|e| e.to_string())?),
            "--seeds" => o.seeds = num(value()?)?.max(1),
            "--threads" => {
                o.threads = usize::try_from(num(value()?)?).map_err(|e| e.to_string())?
            }
            "--json" => o.json = Some(value()?.into()),
            "--csv" => o.csv = Some(value()?.into()),
            "--charts" => o.charts = Some(value()?.into()),
            "--set" => {
                let v = value()?;
                let (k, x) = v.split_once('=').ok_or("--set wants NAME=VALUE")?;
                o.sets.push((k.to_owned(), x.to_owned()));
            }
            "--param" => o
                .params
                .push(Param::parse(&value()?).map_err(|e| e.to_string())?),
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    Ok(o)
}

fn load(name: Option<&String>, sets: &[(String, String)]) -> Result<Scenario, String> {
    let name = name.ok_or(format!("which scenario?\n\n{USAGE}"))?;
    let mut s = Scenario::load(name).map_err(|e| e.to_string())?;
    for (k, v) in sets {
        s = s.with_param(k, v).map_err(|e| e.to_string())?;
    }
    Ok(s)
}

fn cli(args: &[String]) -> Result<ExitCode, String> {
    match args.first().map(String::as_str) {
        Some("list") => {
            for (name, desc) in Scenario::presets() {
                println!("{name:<26} {desc}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some("show") => {
            let name = args.get(1).ok_or("show which scenario?")?;
            match PRESETS.iter().find(|(n, _)| n == name) {
                Some((_, text)) => print!("{text}"),
                None => print!(
                    "{}",
                    std::fs::read_to_string(name).map_err(|e| format!("{name}: {e}"))?
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Some("run") => {
            let o = parse_opts(args.get(2..).unwrap_or_default())?;
            let sc = load(args.get(1), &o.sets)?;
            let mut bar = Progress::new("days");
            let outcome = run(&sc, o.seed, o.days, &mut |d, n| {
                bar.update(d as usize, n as usize)
            })
            .map_err(|e| e.to_string())?;
            bar.finish();
            let r = &outcome.report;
            print!("{}", summary(r));
            if let Some(path) = &o.json {
                let text = serde_json::to_string_pretty(r).map_err(|e| e.to_string())?;
                std::fs::write(path, text + "\n")
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if let Some(dir) = &o.csv {
                csv::write_csv(dir, r, &outcome.detail)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            if let Some(dir) = &o.charts {
                charts::write_charts(dir, r, &outcome.detail)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            if r.end_check.passed {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "lawmesh-sim: invariant broken with seed={}; reproduce with: {}",
                    r.run.seed, r.run.reproduce
                );
                Ok(ExitCode::from(1))
            }
        }
        Some("sweep") => {
            let o = parse_opts(args.get(2..).unwrap_or_default())?;
            let sc = load(args.get(1), &o.sets)?;
            if o.params.is_empty() {
                return Err("sweep needs at least one --param NAME=V1,V2".into());
            }
            let bar = std::sync::Mutex::new(Progress::new("runs"));
            let done = |k: usize, n: usize| {
                if let Ok(mut b) = bar.lock() {
                    b.update(k, n);
                }
            };
            let combos = sweep(&sc, &o.params, o.seeds, o.days, o.threads, &done)
                .map_err(|e| e.to_string())?;
            if let Ok(mut b) = bar.lock() {
                b.finish();
            }
            println!(
                "{} over seeds 1..{} ({} days each); mean ± sd per combination:",
                sc.name,
                o.seeds,
                o.days.unwrap_or(sc.days)
            );
            let mut failed = false;
            for c in &combos {
                println!("{}", c.line());
                for cmd in &c.failed {
                    failed = true;
                    eprintln!("lawmesh-sim: end check failed; reproduce with: {cmd}");
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Some("help" | "--help" | "-h") | None => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    }
}

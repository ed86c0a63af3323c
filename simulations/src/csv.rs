//! CSV files of a run: one row per order, per area, per link, per node, and the backlog series.

use crate::report::{Detail, Report, TIER_LABELS};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Write `orders.csv`, `areas.csv`, `links.csv`, `nodes.csv` and `backlog.csv` into `dir`.
pub fn write_csv(dir: &Path, report: &Report, detail: &Detail) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut s = String::from(
        "order,origin,area,channel,case_type,live,created_ms,status,winner,tier,winner_kind,minutes_to_accept,overdue,overturned\n",
    );
    for o in &detail.orders {
        let (w, tier, kind) = match &o.winner {
            Some((w, t, k)) => (w.clone(), t.to_string(), (*k).to_owned()),
            None => Default::default(),
        };
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            o.id,
            field(&o.origin),
            field(&o.area),
            o.channel,
            field(&o.case_type),
            o.live,
            o.created,
            o.status,
            field(&w),
            tier,
            kind,
            o.minutes_to_accept
                .map(|m| format!("{m:.2}"))
                .unwrap_or_default(),
            o.overdue,
            o.overturned
        );
    }
    std::fs::write(dir.join("orders.csv"), s)?;

    let mut s = String::from(
        "area,orders,live_p50_min,live_p90_min,live_p99_min,queued_p50_min,queued_p90_min,queued_p99_min,live_in_time,queued_in_time,at_centres\n",
    );
    for (k, a) in &report.areas {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{}",
            field(k),
            a.orders,
            a.live.p50,
            a.live.p90,
            a.live.p99,
            a.queued.p50,
            a.queued.p90,
            a.queued.p99,
            a.live_in_time,
            a.queued_in_time,
            a.at_centres
        );
    }
    std::fs::write(dir.join("areas.csv"), s)?;

    let mut s =
        String::from("a,b,class,bytes_ab,bytes_ba,messages_ab,messages_ba,outages,down_minutes\n");
    for l in &report.links {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{}",
            field(&l.a),
            field(&l.b),
            l.class,
            l.bytes[0],
            l.bytes[1],
            l.messages[0],
            l.messages[1],
            l.outages,
            l.down_minutes
        );
    }
    std::fs::write(dir.join("links.csv"), s)?;

    let mut s = String::from("site,kind,peak_bytes,final_bytes,crashes,lost_writes\n");
    for n in &report.nodes {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{}",
            field(&n.site),
            n.kind,
            n.peak_bytes,
            n.final_bytes,
            n.crashes,
            n.lost_writes
        );
    }
    std::fs::write(dir.join("nodes.csv"), s)?;

    let mut s = String::from("time_ms,queued");
    for l in TIER_LABELS {
        s.push(',');
        s.push_str(l);
    }
    s.push('\n');
    for (t, counts) in &detail.backlog {
        let row: Vec<String> = counts.iter().map(u32::to_string).collect();
        let _ = writeln!(s, "{t},{}", row.join(","));
    }
    std::fs::write(dir.join("backlog.csv"), s)?;
    Ok(())
}

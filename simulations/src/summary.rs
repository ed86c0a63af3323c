//! The report in plain words, for a planner: what happened, what it costs, where it hurts, and
//! whether the mesh kept its promises.

use crate::report::{duration_words, Report, LIVE_TARGET_MINUTES, QUEUED_TARGET_HOURS};
use std::fmt::Write;

fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

fn rmb(x: u64) -> String {
    let s = x.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} RMB")
}

fn bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The summary of a report, as a few paragraphs of text.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let run = &r.run;
    let _ = writeln!(
        s,
        "Scenario {} — seed {}, {} days from {} ({}: {} sites, {} links).",
        run.scenario, run.seed, run.days, run.start, run.roster, run.nodes, run.links
    );
    let created: u64 = r.orders.values().map(|c| c.created).sum();
    let live: u64 = r.orders.values().map(|c| c.live).sum();
    let by_channel: Vec<String> = r
        .orders
        .iter()
        .map(|(k, c)| format!("{} {k}", c.created))
        .collect();
    let _ = writeln!(
        s,
        "\nResidents made {created} requests ({live} live, {} queued): {}.",
        created - live,
        by_channel.join(", ")
    );
    if r.faults.residents_turned_away > 0 {
        let _ = writeln!(
            s,
            "{} residents were turned away because their kiosk's node was down.",
            r.faults.residents_turned_away
        );
    }
    let t = &r.time_to_accept;
    if t.live.count > 0 {
        let _ = writeln!(
            s,
            "Live requests (the resident waits at the kiosk) were taken in {} at the median, {} for 90 % and {} for 99 %.",
            duration_words(t.live.p50),
            duration_words(t.live.p90),
            duration_words(t.live.p99)
        );
    }
    if t.queued.count > 0 {
        let _ = writeln!(
            s,
            "Queued requests were taken in {} at the median, {} for 90 % and {} for 99 %.",
            duration_words(t.queued.p50),
            duration_words(t.queued.p90),
            duration_words(t.queued.p99)
        );
    }
    let taken: Vec<String> = r
        .accepted_by
        .iter()
        .filter(|(_, v)| v.count > 0)
        .map(|(k, v)| format!("{} {}", k.replace('_', " "), pct(v.share)))
        .collect();
    if !taken.is_empty() {
        let _ = writeln!(s, "Who took them: {}.", taken.join(", "));
    }
    let _ = writeln!(
        s,
        "Overdue (on call at the last tier past its window): {} orders ({}).",
        r.overdue.count,
        pct(r.overdue.share)
    );
    let _ = writeln!(
        s,
        "Double work: {} accepts were overturned by an earlier accept elsewhere once the sites synced ({} orders); {:.0} lawyer-minutes were spent on them.",
        r.overturned.accepts, r.overturned.orders, r.overturned.lawyer_minutes_wasted
    );
    let sub = &r.subsidies;
    let _ = writeln!(
        s,
        "\nSubsidies this run would pay: {} duty lawyer-days = {}; {} confirmed cases = {}; total {}.",
        sub.duty_days,
        rmb(sub.duty_rmb),
        sub.cases,
        rmb(sub.case_rmb),
        rmb(sub.total_rmb)
    );
    // Where it hurts.
    let mut worst: Vec<(&String, f64, u64)> = r
        .areas
        .iter()
        .filter(|(_, a)| a.live.count > 0)
        .map(|(k, a)| (k, a.live_in_time, a.orders))
        .collect();
    worst.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
    let listed: Vec<String> = worst
        .iter()
        .take(3)
        .map(|(k, v, _)| format!("{k} {}", pct(*v)))
        .collect();
    if !listed.is_empty() {
        let _ = writeln!(
            s,
            "\nLive requests taken within {LIVE_TARGET_MINUTES:.0} min, worst areas first: {}.",
            listed.join(", ")
        );
    }
    let mut slow_q: Vec<(&String, f64)> = r
        .areas
        .iter()
        .filter(|(_, a)| a.queued.count > 0)
        .map(|(k, a)| (k, a.queued_in_time))
        .collect();
    slow_q.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
    let listed: Vec<String> = slow_q
        .iter()
        .take(3)
        .map(|(k, v)| format!("{k} {}", pct(*v)))
        .collect();
    if !listed.is_empty() {
        let _ = writeln!(
            s,
            "Queued requests taken within {QUEUED_TARGET_HOURS:.0} h, worst areas first: {}.",
            listed.join(", ")
        );
    }
    let mut centre_heavy: Vec<(&String, f64)> = r
        .areas
        .iter()
        .filter(|(_, a)| a.orders >= 5 && a.at_centres >= 0.25)
        .map(|(k, a)| (k, a.at_centres))
        .collect();
    centre_heavy.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    if let Some((k, v)) = centre_heavy.first() {
        let _ = writeln!(
            s,
            "Watch: in {k}, {} of requests ended up at the district or city centre — its office or paired firm is often unreachable or short of people.",
            pct(*v)
        );
    }
    if r.overdue.share > 0.02 {
        let _ = writeln!(
            s,
            "Watch: more than 2 % of requests went overdue; the last tier needs more duty lawyers or longer hours."
        );
    }
    // Network and storage.
    let total: u64 = r.links.iter().map(|l| l.bytes[0] + l.bytes[1]).sum();
    let busiest = r.links.iter().max_by_key(|l| l.bytes[0] + l.bytes[1]);
    let peak = r.nodes.iter().max_by_key(|n| n.peak_bytes);
    let _ = write!(s, "\nNetwork: {} synced in all", bytes(total));
    if let Some(l) = busiest {
        let _ = write!(
            s,
            "; busiest link {} ↔ {} ({})",
            l.a,
            l.b,
            bytes(l.bytes[0] + l.bytes[1])
        );
    }
    let _ = writeln!(s, ".");
    if let Some(n) = peak {
        let _ = writeln!(
            s,
            "Storage: the fullest node was {} at {} at its peak.",
            n.site,
            bytes(n.peak_bytes)
        );
    }
    let f = &r.faults;
    let _ = writeln!(
        s,
        "Faults: {} link outages ({:.0} link-hours down, {} random failures, {} connections dropped by loss); {} node crashes losing {} unflushed writes.",
        f.link_outages,
        f.link_hours_down,
        f.link_failures,
        f.connection_resets,
        f.node_crashes,
        f.lost_writes
    );
    let c = &r.end_check;
    if c.passed {
        let _ = writeln!(
            s,
            "\nEnd check PASSED: after every link and node was healed the mesh went quiet in {}; {} books are identical on all {} copies held by entitled sites; {} orders, none lost or duplicated, each with one winner on every replica, none left waiting.",
            duration_words(c.quiet_after_minutes),
            c.books_checked,
            c.copies_checked,
            c.orders_checked
        );
    } else {
        let _ = writeln!(s, "\nEnd check FAILED ({} breaches):", c.failure_count);
        for f in &c.failures {
            let _ = writeln!(s, "  - {f}");
        }
        let _ = writeln!(s, "Reproduce with seed={}: {}", run.seed, run.reproduce);
    }
    s
}

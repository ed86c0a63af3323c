//! Charts as SVG, drawn by hand: the distribution of time to accept, the backlog over time per
//! tier, and the service level per area.

use crate::report::{Detail, Report, LIVE_TARGET_MINUTES, QUEUED_TARGET_HOURS, TIER_LABELS};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

const W: f64 = 900.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 80.0;
const COLOURS: [&str; 6] = [
    "#9e9e9e", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Svg(String);

impl Svg {
    fn new(title: &str) -> Svg {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = write!(
            s,
            r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
            W / 2.0,
            esc(title)
        );
        Svg(s)
    }
    fn axes(&mut self, y_max: f64, y_label: &str) {
        let (x0, y0, y1) = (LEFT, H - BOTTOM, TOP);
        let _ = write!(
            self.0,
            r##"<line x1="{x0}" y1="{y0}" x2="{}" y2="{y0}" stroke="#333"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>"##,
            W - RIGHT
        );
        for k in 0..=4 {
            let v = y_max * f64::from(k) / 4.0;
            let y = y0 - (y0 - y1) * f64::from(k) / 4.0;
            let _ = write!(
                self.0,
                r##"<line x1="{}" y1="{y}" x2="{x0}" y2="{y}" stroke="#333"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                x0 - 4.0,
                x0 - 6.0,
                y + 4.0,
                if y_max <= 1.0 {
                    format!("{:.0} %", v * 100.0)
                } else {
                    format!("{v:.0}")
                }
            );
        }
        let _ = write!(
            self.0,
            r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"#,
            (y0 + y1) / 2.0,
            (y0 + y1) / 2.0,
            esc(y_label)
        );
    }
    fn legend(&mut self, items: &[(&str, &str)]) {
        for (k, (name, colour)) in items.iter().enumerate() {
            let x = LEFT + 10.0 + k as f64 * 140.0;
            let _ = write!(
                self.0,
                r#"<rect x="{x}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
                H - 22.0,
                x + 16.0,
                H - 12.0,
                esc(name)
            );
        }
    }
    fn finish(mut self) -> String {
        self.0.push_str("</svg>\n");
        self.0
    }
}

const BINS: [(f64, &str); 12] = [
    (1.0, "<1m"),
    (2.0, "1–2m"),
    (5.0, "2–5m"),
    (10.0, "5–10m"),
    (15.0, "10–15m"),
    (30.0, "15–30m"),
    (60.0, "30–60m"),
    (240.0, "1–4h"),
    (480.0, "4–8h"),
    (1440.0, "8–24h"),
    (2880.0, "1–2d"),
    (f64::INFINITY, ">2d"),
];

fn histogram(detail: &Detail) -> String {
    let mut counts = [[0u32; 12]; 2];
    for o in &detail.orders {
        if let Some(m) = o.minutes_to_accept {
            let b = BINS.iter().position(|(lim, _)| m < *lim).unwrap_or(11);
            counts[usize::from(!o.live)][b] += 1;
        }
    }
    let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1);
    let mut svg = Svg::new("Time from request to acceptance");
    svg.axes(f64::from(max), "orders");
    let slot = (W - LEFT - RIGHT) / BINS.len() as f64;
    let plot_h = H - BOTTOM - TOP;
    for (b, (_, name)) in BINS.iter().enumerate() {
        for (series, colour) in [(0, COLOURS[1]), (1, COLOURS[3])] {
            let v = f64::from(counts[series][b]);
            let h = plot_h * v / f64::from(max);
            let x = LEFT + slot * b as f64 + 4.0 + series as f64 * (slot - 8.0) / 2.0;
            let _ = write!(
                svg.0,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{colour}"/>"#,
                H - BOTTOM - h,
                (slot - 8.0) / 2.0
            );
        }
        let _ = write!(
            svg.0,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{name}</text>"#,
            LEFT + slot * (b as f64 + 0.5),
            H - BOTTOM + 16.0
        );
    }
    svg.legend(&[("live", COLOURS[1]), ("queued", COLOURS[3])]);
    svg.finish()
}

fn backlog(detail: &Detail) -> String {
    let mut svg = Svg::new("Open orders over time, by the tier on call");
    let max = detail
        .backlog
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    svg.axes(f64::from(max), "open orders");
    let n = detail.backlog.len().max(2) - 1;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - BOTTOM - TOP;
    let mut names = vec!["queued (not yet seen)"];
    names.extend(TIER_LABELS);
    let mut legend = Vec::new();
    for (k, name) in names.iter().enumerate() {
        if detail.backlog.iter().all(|(_, c)| c[k] == 0) {
            continue;
        }
        let mut pts = String::new();
        for (j, (_, c)) in detail.backlog.iter().enumerate() {
            let x = LEFT + plot_w * j as f64 / n as f64;
            let y = H - BOTTOM - plot_h * f64::from(c[k]) / f64::from(max);
            let _ = write!(pts, "{x:.1},{y:.1} ");
        }
        let _ = write!(
            svg.0,
            r#"<polyline points="{pts}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
            COLOURS[k]
        );
        legend.push((*name, COLOURS[k]));
    }
    let days = detail.backlog.last().map_or(0.0, |(t, _)| {
        t.saturating_sub(detail.start) as f64 / 86_400_000.0
    });
    for k in 0..=4 {
        let x = LEFT + plot_w * f64::from(k) / 4.0;
        let _ = write!(
            svg.0,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">day {:.1}</text>"#,
            H - BOTTOM + 16.0,
            days * f64::from(k) / 4.0
        );
    }
    let items: Vec<(&str, &str)> = legend.into_iter().collect();
    svg.legend(&items);
    svg.finish()
}

fn service_levels(report: &Report) -> String {
    let mut svg = Svg::new(&format!(
        "Service level per area: live within {LIVE_TARGET_MINUTES:.0} min, queued within {QUEUED_TARGET_HOURS:.0} h"
    ));
    svg.axes(1.0, "share in time");
    let areas: Vec<_> = report.areas.iter().take(40).collect();
    let slot = (W - LEFT - RIGHT) / areas.len().max(1) as f64;
    let plot_h = H - BOTTOM - TOP;
    for (k, (name, a)) in areas.iter().enumerate() {
        for (series, v, colour) in [
            (0, a.live_in_time, COLOURS[1]),
            (1, a.queued_in_time, COLOURS[3]),
        ] {
            let h = plot_h * v;
            let x = LEFT + slot * k as f64 + 2.0 + series as f64 * (slot - 4.0) / 2.0;
            let _ = write!(
                svg.0,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{colour}"/>"#,
                H - BOTTOM - h,
                (slot - 4.0) / 2.0
            );
        }
        let x = LEFT + slot * (k as f64 + 0.5);
        let y = H - BOTTOM + 10.0;
        let _ = write!(
            svg.0,
            r#"<text x="{x:.1}" y="{y}" transform="rotate(40 {x:.1} {y})" font-size="10">{}</text>"#,
            esc(name)
        );
    }
    svg.legend(&[("live", COLOURS[1]), ("queued", COLOURS[3])]);
    svg.finish()
}

/// Write `time_to_accept.svg`, `backlog.svg` and `service_level.svg` into `dir`.
pub fn write_charts(dir: &Path, report: &Report, detail: &Detail) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("time_to_accept.svg"), histogram(detail))?;
    std::fs::write(dir.join("backlog.svg"), backlog(detail))?;
    std::fs::write(dir.join("service_level.svg"), service_levels(report))?;
    Ok(())
}

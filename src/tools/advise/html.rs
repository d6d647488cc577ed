//! `advise --format html`: one self-contained page (inline CSS and SVG, no network at view
//! time) a FinOps reader takes in at a glance — spend by app over time, each app and model's
//! output share, and the levers ranked by dollars with their basis and caveat.
//!
//! The charts are plain SVG built here. A few lines of inline script, run by the browser once
//! the page is laid out, measure every chart's bars and write what they found into the page
//! (`data-drawn` on each chart, the count in `#drawn`), so a headless browser's DOM dump tells
//! whether the charts were really drawn.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::levers::{scale, usd_short};
use super::{Advice, time_text};

const WIDTH: f64 = 960.0;
const COLORS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
];

/// Text made safe for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn dollars(pico: u128) -> f64 {
    pico as f64 / 1e12
}

pub fn page(a: &Advice) -> String {
    let period = a.period_ms();
    let total: u128 = a.groups.iter().map(|g| g.cost).sum();
    let saving: u128 = a.levers.iter().filter_map(|l| l.month_saving).sum();
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>bedrock-meter savings advice</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 17px; margin-top: 28px; }}
.kpi {{ display: inline-block; margin-right: 32px; }} .kpi b {{ display: block; font-size: 22px; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }}
td.n {{ text-align: right; white-space: nowrap; }} .caveat {{ color: #666; font-size: 12px; }}
svg text {{ font: 11px system-ui, sans-serif; fill: #333; }}
</style></head><body>
<h1>Savings advice</h1>
<p>Period {} to {}. Savings are per 30-day month at the observed volume, priced with the rate card.</p>
<div class="kpi">Spend in the period<b id="spend">${}</b></div>
<div class="kpi">Spend per month<b>${}</b></div>
<div class="kpi">Savings found per month<b id="savings">${}</b></div>
"#,
        esc(&time_text(a.from_ms)),
        esc(&time_text(a.to_ms)),
        usd_short(total),
        usd_short(scale(total, period)),
        usd_short(saving),
    );
    html.push_str("<h2>Spend by app over time (USD per day)</h2>\n");
    html.push_str(&spend_chart(a));
    html.push_str("<h2>Output share of token spend, by app and model</h2>\n");
    html.push_str(&output_chart(a));
    html.push_str("<h2>Levers, ranked by dollars per month</h2>\n");
    html.push_str(&lever_chart(a));
    html.push_str(&lever_table(a));
    html.push_str(
        r#"<p id="drawn" data-charts="0"></p>
<script>
// Measures what the browser drew: a chart counts as drawn when all its bars have a size.
var charts = document.querySelectorAll('svg.chart'), drawn = 0;
charts.forEach(function (svg) {
  var bars = svg.querySelectorAll('.bar'), ok = bars.length > 0;
  bars.forEach(function (b) { var r = b.getBBox(); if (!(r.width > 0 && r.height > 0)) ok = false; });
  svg.setAttribute('data-drawn', ok ? bars.length : 0);
  if (ok) drawn++;
});
var p = document.getElementById('drawn');
p.setAttribute('data-charts', drawn);
p.textContent = drawn + ' of ' + charts.length + ' charts drawn';
</script>
</body></html>
"#,
    );
    html
}

/// Stacked bars: one per UTC day, one colour per app.
fn spend_chart(a: &Advice) -> String {
    let mut by_day: BTreeMap<i64, BTreeMap<&str, u128>> = BTreeMap::new();
    let apps: BTreeSet<&str> = a.groups.iter().map(|g| g.app.as_str()).collect();
    for g in &a.groups {
        for (day, pico) in &g.daily {
            *by_day.entry(*day).or_default().entry(&g.app).or_default() += pico;
        }
    }
    let height = 220.0;
    let mut svg = format!(
        r#"<svg class="chart" id="spend-over-time" width="{WIDTH}" height="{}" role="img" aria-label="spend by app over time">"#,
        height + 60.0
    );
    let max = by_day
        .values()
        .map(|apps| apps.values().sum::<u128>())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = by_day.len().max(1) as f64;
    let slot = (WIDTH - 80.0) / n;
    let colour: BTreeMap<&str, &str> = apps
        .iter()
        .enumerate()
        .map(|(i, app)| (*app, COLORS[i % COLORS.len()]))
        .collect();
    for (i, (day, per_app)) in by_day.iter().enumerate() {
        let x = 60.0 + i as f64 * slot;
        let mut y = height;
        for (app, pico) in per_app {
            let h = (height - 10.0) * (*pico as f64 / max as f64);
            y -= h;
            let _ = write!(
                svg,
                r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: ${:.6}</title></rect>"#,
                (slot * 0.8).clamp(1.0, 48.0),
                h.max(0.5),
                colour.get(app).copied().unwrap_or(COLORS[0]),
                esc(app),
                esc(&day_text(*day)),
                dollars(*pico)
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}">{}</text>"#,
            height + 14.0,
            esc(&day_text(*day))
        );
    }
    let _ = write!(
        svg,
        r#"<text x="0" y="12">${:.4}</text><text x="0" y="{height}">$0</text>"#,
        dollars(max)
    );
    for (i, (app, c)) in colour.iter().enumerate() {
        let x = 60.0 + (i % 6) as f64 * 150.0;
        let y = height + 34.0 + (i / 6) as f64 * 14.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{c}"/><text x="{}" y="{y}">{}</text>"#,
            y - 9.0,
            x + 14.0,
            esc(app)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn day_text(day: i64) -> String {
    let (y, m, d) = crate::time::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Horizontal bars of each app and model's output share of its token spend.
fn output_chart(a: &Advice) -> String {
    let rows: Vec<(String, u128)> = a
        .groups
        .iter()
        .filter_map(|g| {
            let tokens = g.input_cost + g.output_cost + g.cache_read_cost + g.cache_write_cost;
            (tokens > 0).then(|| {
                (
                    format!("{} / {}", g.app, g.model),
                    g.output_cost * 100 / tokens,
                )
            })
        })
        .collect();
    bars("output-share", &rows, |v| format!("{v}%"), 100)
}

/// Horizontal bars of the priced levers' dollars per month.
fn lever_chart(a: &Advice) -> String {
    let rows: Vec<(String, u128)> = a
        .levers
        .iter()
        .filter_map(|l| {
            l.month_saving
                .map(|s| (format!("{} — {} / {}", l.kind.as_str(), l.app, l.model), s))
        })
        .collect();
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0);
    bars("levers", &rows, |v| format!("${}", usd_short(v)), max)
}

fn bars(id: &str, rows: &[(String, u128)], label: impl Fn(u128) -> String, max: u128) -> String {
    let row_h = 22.0;
    let label_w = 420.0;
    let mut svg = format!(
        r#"<svg class="chart" id="{id}" width="{WIDTH}" height="{}" role="img">"#,
        rows.len().max(1) as f64 * row_h + 10.0
    );
    for (i, (name, value)) in rows.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let w = (WIDTH - label_w - 140.0) * (*value as f64 / max.max(1) as f64);
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.1}">{}</text><rect class="bar" x="{label_w}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            y + 14.0,
            esc(name),
            w.max(1.0),
            row_h - 6.0,
            COLORS[i % COLORS.len()],
            label_w + w.max(1.0) + 6.0,
            y + 14.0,
            esc(&label(*value))
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn lever_table(a: &Advice) -> String {
    let mut t = String::from(
        "<table id=\"lever-table\"><tr><th>#</th><th>lever</th><th>app / model</th><th>per month</th><th>basis and caveat</th></tr>\n",
    );
    for (i, l) in a.levers.iter().enumerate() {
        let _ = writeln!(
            t,
            r#"<tr class="lever" data-lever="{}"><td class="n">{}</td><td>{}</td><td>{} / {}</td><td class="n">{}</td><td>{}<div class="caveat">{}</div></td></tr>"#,
            l.kind.as_str(),
            i + 1,
            l.kind.as_str(),
            esc(&l.app),
            esc(&l.model),
            l.month_saving
                .map_or_else(|| "not priced".to_owned(), |s| format!("${}", usd_short(s))),
            esc(&l.basis),
            esc(&l.caveat)
        );
    }
    t.push_str("</table>\n");
    t
}

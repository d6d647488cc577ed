//! The text exposition: the per-(app, model) families rendered straight to text a piece at a
//! time, then the `prometheus` registry's small families.

use super::*;
use crate::pricing::billing_units::Unit;

pub(super) fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// A label value as the text format wants it (`\`, `"` and newline escaped).
pub(super) fn push_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub(super) fn family_header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub(super) const REQUESTS: (&str, &str) = (
    "bedrock_requests_total",
    "Bedrock Runtime requests by app, model, operation and the HTTP status the client got.",
);
pub(super) const TOKENS: (&str, &str) = (
    "bedrock_tokens_total",
    "Tokens Bedrock reported, by type (input excludes cache tokens).",
);
pub(super) const COST: (&str, &str) = (
    "bedrock_cost_usd_total",
    "Cost in USD at the rate card's prices, by token type or unit type (image, video, rerank, guardrail).",
);
pub(super) const UNITS: (&str, &str) = (
    "bedrock_units_total",
    "Non-token units Bedrock bills, by unit: images, seconds of video, rerank search units, guardrail text units and images.",
);
pub(super) const OUTPUT_TOKENS: (&str, &str) =
    ("bedrock_output_tokens", "Output tokens per request.");
pub(super) const INPUT_TOKENS: (&str, &str) = (
    "bedrock_input_tokens",
    "Prompt tokens per request, cache reads and writes included.",
);

impl Metrics {
    /// The Prometheus text exposition of every series, in one piece.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut exposition = self.exposition();
        let mut out = String::new();
        while exposition.next_piece(self, &mut out, usize::MAX)? {}
        Ok(out.into_bytes())
    }

    /// A scrape to be written out piece by piece (see [`Exposition`]).
    pub fn exposition(&self) -> Exposition {
        let r = self.rendered_lock();
        Exposition {
            series: r.series.clone(),
            requests: r.requests.clone(),
            part: Part::Requests,
            next: 0,
            header_done: false,
        }
    }
}

/// A scrape in progress. The per-(app, model) families are most of the text (thousands of
/// series with a hundred apps), so they are written out a piece at a time: the admin endpoint
/// yields to the proxy's requests between pieces instead of holding a core for the whole
/// rendering. Counters are read as each piece is written, as any scrape reads them one by one.
pub struct Exposition {
    pub(super) series: Vec<Arc<Series>>,
    pub(super) requests: Vec<Arc<RequestSeries>>,
    pub(super) part: Part,
    /// The next series of `part` to write.
    pub(super) next: usize,
    pub(super) header_done: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Requests,
    Tokens,
    Units,
    Cost,
    OutputTokens,
    InputTokens,
    Registry,
    Done,
}

impl Part {
    pub(super) fn after(self) -> Part {
        match self {
            Part::Requests => Part::Tokens,
            Part::Tokens => Part::Units,
            Part::Units => Part::Cost,
            Part::Cost => Part::OutputTokens,
            Part::OutputTokens => Part::InputTokens,
            Part::InputTokens => Part::Registry,
            Part::Registry | Part::Done => Part::Done,
        }
    }
}

impl Exposition {
    /// Appends the next piece, of about `budget` bytes (whole series only), to `out`; false
    /// once everything has been written.
    pub fn next_piece(
        &mut self,
        metrics: &Metrics,
        out: &mut String,
        budget: usize,
    ) -> Result<bool, prometheus::Error> {
        let limit = out.len().saturating_add(budget);
        while out.len() < limit {
            let part = self.part;
            let count = match part {
                Part::Requests => self.requests.len(),
                Part::Tokens
                | Part::Units
                | Part::Cost
                | Part::OutputTokens
                | Part::InputTokens => self.series.len(),
                Part::Registry => {
                    let mut bytes = Vec::new();
                    TextEncoder::new().encode(&metrics.registry.gather(), &mut bytes)?;
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    self.part = Part::Done;
                    continue;
                }
                Part::Done => return Ok(false),
            };
            if self.next >= count {
                self.part = part.after();
                self.next = 0;
                self.header_done = false;
                continue;
            }
            let i = self.next;
            self.next += 1;
            match part {
                Part::Requests => {
                    self.header(out, REQUESTS, "counter");
                    let r = &self.requests[i];
                    out.push_str(REQUESTS.0);
                    out.push_str(&r.labels);
                    out.push(' ');
                    push_u64(out, r.requests.load(Ordering::Relaxed));
                    out.push('\n');
                }
                Part::Tokens => {
                    self.header(out, TOKENS, "counter");
                    let s = &self.series[i];
                    for t in TokenType::ALL {
                        out.push_str(TOKENS.0);
                        out.push_str(&s.labels);
                        out.push_str(",type=\"");
                        out.push_str(t.as_str());
                        out.push_str("\"} ");
                        push_u64(out, s.tokens[t as usize].load(Ordering::Relaxed));
                        out.push('\n');
                    }
                }
                Part::Units => {
                    let s = self.series[i].clone();
                    let seen = s.units_seen.load(Ordering::Relaxed);
                    if seen == 0 {
                        continue;
                    }
                    self.header(out, UNITS, "counter");
                    for unit in Unit::ALL {
                        if seen & (1 << unit as u8) == 0 {
                            continue;
                        }
                        out.push_str(UNITS.0);
                        out.push_str(&s.labels);
                        out.push_str(",unit=\"");
                        out.push_str(unit.as_str());
                        out.push_str("\"} ");
                        push_u64(out, s.units[unit as usize].load(Ordering::Relaxed));
                        out.push('\n');
                    }
                }
                Part::Cost => {
                    let s = self.series[i].clone();
                    let tokens = s.cost.priced.load(Ordering::Relaxed);
                    let units = s.cost.unit_types.load(Ordering::Relaxed);
                    if !tokens && units == 0 {
                        continue;
                    }
                    self.header(out, COST, "counter");
                    let sums = s.cost.get();
                    let token_types = TokenType::ALL
                        .iter()
                        .filter(|_| tokens)
                        .map(|t| (t.as_str(), sums[*t as usize]));
                    let unit_types = UnitCost::TYPES
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| units & (1 << i) != 0)
                        .map(|(i, t)| (*t, sums[4 + i]));
                    for (kind, pico) in token_types.chain(unit_types) {
                        let _ = writeln!(
                            out,
                            "{}{},type=\"{}\"}} {}",
                            COST.0,
                            s.labels,
                            kind,
                            pico_to_usd(pico)
                        );
                    }
                }
                Part::OutputTokens => {
                    self.header(out, OUTPUT_TOKENS, "histogram");
                    let s = &self.series[i];
                    s.output_tokens.render(out, OUTPUT_TOKENS.0, &s.labels);
                }
                Part::InputTokens => {
                    self.header(out, INPUT_TOKENS, "histogram");
                    let s = &self.series[i];
                    s.input_tokens.render(out, INPUT_TOKENS.0, &s.labels);
                }
                Part::Registry | Part::Done => {}
            }
        }
        Ok(self.part != Part::Done)
    }

    pub(super) fn header(&mut self, out: &mut String, family: (&str, &str), kind: &str) {
        if !self.header_done {
            family_header(out, family.0, family.1, kind);
            self.header_done = true;
        }
    }
}

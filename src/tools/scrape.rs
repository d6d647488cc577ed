//! Reads the Prometheus text format back into samples: the demo's table and the tests use it
//! to read what the proxy exports exactly as Prometheus would.
//!
//! Ours, not a crate: this is the whole reader (samples, labels with escapes, values), and the
//! parsers on crates.io (`prometheus-parse`, `openmetrics-parser`) would bring regex, chrono or
//! pest into the binary for the demo's table alone. The live test against a real Prometheus
//! (`tests/prometheus_live.rs`) checks that what we export is what Prometheus reads.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses every sample line; comments and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_labels(mut s: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    while !s.is_empty() {
        let (key, rest) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        s = rest[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

/// Sum of the samples named `name` whose labels include every pair in `matching`.
pub fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            matching
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples() {
        let text = "# HELP x y\n# TYPE x counter\nx{a=\"1\",b=\"q\\\"uote\"} 2.5\nup 1\nh_bucket{le=\"+Inf\"} 3\n";
        let s = parse(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].labels["b"], "q\"uote");
        assert_eq!(sum(&s, "x", &[("a", "1")]), 2.5);
        assert_eq!(sum(&s, "x", &[("a", "2")]), 0.0);
        assert_eq!(sum(&s, "up", &[]), 1.0);
        assert_eq!(s[2].labels["le"], "+Inf");
    }
}

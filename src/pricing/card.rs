//! The rate card: `rates/*.toml` parsed in two steps (raw serde types that reject unknown keys,
//! then validated prices), and the lookup of a called model id to its price entry.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

/// Per-1M-token rates in micro-dollars (USD × 1e6), so prices with up to six decimals are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    pub id: String,
    pub name: Option<String>,
    pub rates: Rates,
    /// False for models that do not cache on Bedrock.
    pub caching: bool,
}

#[derive(Debug, Default)]
pub struct RateCard {
    pub version: String,
    models: HashMap<String, Arc<ModelPrice>>,
}

/// A card together with what validation had to say about it.
#[derive(Debug)]
pub struct LoadedCard {
    pub card: RateCard,
    pub warnings: Vec<CardError>,
}

/// A problem in a rate card file, located by line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every error found in a card (the checker reports them all, not just the first).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct CardErrors(pub Vec<CardError>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    version: Spanned<String>,
    currency: Option<Spanned<String>>,
    #[serde(default)]
    model: Vec<Spanned<RawModel>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: Spanned<String>,
    name: Option<String>,
    input: Spanned<f64>,
    output: Spanned<f64>,
    cache_read: Option<Spanned<f64>>,
    cache_write: Option<Spanned<f64>>,
    caching: Option<bool>,
}

/// Cross-region inference profile prefixes, stripped when the full id is not in the card.
pub const PROFILE_PREFIXES: [&str; 8] = [
    "us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.", "global.",
];

impl RateCard {
    /// Reads and validates a card file.
    pub fn load(path: &Path) -> Result<LoadedCard, CardErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            CardErrors(vec![CardError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates card text; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<LoadedCard, CardErrors> {
        let at = |span: Option<Range<usize>>, message: String| CardError {
            file: file.to_owned(),
            line: span.map_or(0, |s| line_of(text, s.start)),
            message,
        };
        let raw: RawCard = toml::from_str(text)
            .map_err(|e| CardErrors(vec![at(e.span(), e.message().to_owned())]))?;

        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        if raw.version.get_ref().trim().is_empty() {
            errors.push(at(
                Some(raw.version.span()),
                "version must not be empty".into(),
            ));
        }
        if let Some(c) = &raw.currency
            && c.get_ref() != "USD"
        {
            errors.push(at(
                Some(c.span()),
                format!("currency must be \"USD\", not {:?}", c.get_ref()),
            ));
        }
        let mut models: HashMap<String, Arc<ModelPrice>> = HashMap::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        for entry in &raw.model {
            let m = entry.get_ref();
            let id = m.id.get_ref().trim().to_owned();
            let line = line_of(text, m.id.span().start);
            if id.is_empty() {
                errors.push(at(Some(m.id.span()), "id must not be empty".into()));
                continue;
            }
            let mut rate = |field: &str, value: &Spanned<f64>| match to_micros(*value.get_ref()) {
                Ok(v) => v,
                Err(why) => {
                    errors.push(at(Some(value.span()), format!("{id}: {field} {why}")));
                    0
                }
            };
            let input = rate("input", &m.input);
            let output = rate("output", &m.output);
            let cache_read = m.cache_read.as_ref().map(|v| rate("cache_read", v));
            let cache_write = m.cache_write.as_ref().map(|v| rate("cache_write", v));
            let caching = m.caching.unwrap_or(true);
            if caching {
                for (field, value) in [("cache_read", cache_read), ("cache_write", cache_write)] {
                    if value.is_none() {
                        warnings.push(at(
                            Some(m.id.span()),
                            format!("{id}: no {field} rate; cache tokens will be priced at the input rate (set it, or `caching = false`)"),
                        ));
                    }
                }
            }
            if let Some(prev) = first_line.get(&id) {
                errors.push(at(
                    Some(m.id.span()),
                    format!("{id}: duplicate id (first at line {prev})"),
                ));
                continue;
            }
            first_line.insert(id.clone(), line);
            let price = ModelPrice {
                id: id.clone(),
                name: m.name.clone(),
                rates: Rates {
                    input,
                    output,
                    cache_read: cache_read.unwrap_or(input),
                    cache_write: cache_write.unwrap_or(input),
                },
                caching,
            };
            models.insert(id, Arc::new(price));
        }
        if !errors.is_empty() {
            return Err(CardErrors(errors));
        }
        Ok(LoadedCard {
            card: RateCard {
                version: raw.version.into_inner().trim().to_owned(),
                models,
            },
            warnings,
        })
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// All entries, sorted by id.
    pub fn models(&self) -> Vec<Arc<ModelPrice>> {
        let mut v: Vec<_> = self.models.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Finds the price of a model id as the client called it: the exact id; an ARN reduced to
    /// its id; a cross-region profile id with its geography prefix stripped.
    pub fn lookup(&self, model_id: &str) -> Option<Arc<ModelPrice>> {
        if let Some(p) = self.models.get(model_id) {
            return Some(p.clone());
        }
        let id = arn_resource_id(model_id).unwrap_or(model_id);
        if let Some(p) = self.models.get(id) {
            return Some(p.clone());
        }
        PROFILE_PREFIXES
            .iter()
            .find_map(|prefix| id.strip_prefix(prefix))
            .and_then(|bare| self.models.get(bare).cloned())
    }
}

/// The model or profile id inside a foundation-model or inference-profile ARN.
fn arn_resource_id(model_id: &str) -> Option<&str> {
    let rest = model_id.strip_prefix("arn:")?;
    // arn:PARTITION:bedrock:REGION:ACCOUNT:RESOURCE — the resource may itself contain ':'.
    let mut parts = rest.splitn(5, ':');
    let (_partition, service, _region, _account) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if service != "bedrock" {
        return None;
    }
    let resource = parts.next()?;
    resource
        .strip_prefix("foundation-model/")
        .or_else(|| resource.strip_prefix("inference-profile/"))
        .filter(|id| !id.is_empty())
}

/// USD per 1M tokens as integer micro-dollars; at most six decimals, non-negative, finite.
fn to_micros(usd: f64) -> Result<u64, &'static str> {
    if !usd.is_finite() || usd < 0.0 {
        return Err("must be a non-negative number");
    }
    if usd > 1_000_000.0 {
        return Err("is over $1,000,000 per 1M tokens; is the unit wrong?");
    }
    let scaled = usd * 1e6;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 * scaled.max(1.0) {
        return Err("has more than 6 decimal places");
    }
    Ok(rounded as u64)
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = r#"
version = "2026-11"
currency = "USD"

[[model]]
id = "anthropic.claude-3-haiku-20240307-v1:0"
input = 0.25
output = 1.25
caching = false

[[model]]
id = "anthropic.claude-sonnet-4-5-20250929-v1:0"
input = 3.30
output = 16.50
cache_read = 0.33
cache_write = 4.125

[[model]]
id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
input = 3
output = 15
cache_read = 0.3
cache_write = 3.75

[[model]]
id = "amazon.nova-micro-v1:0"
input = 0.035
output = 0.14
cache_read = 0.00875
"#;

    fn card() -> LoadedCard {
        RateCard::parse(CARD, "card.toml").unwrap()
    }

    #[test]
    fn parses_exact_micros_and_fallbacks() {
        let l = card();
        assert_eq!(l.card.version, "2026-11");
        assert_eq!(l.card.len(), 4);
        let nova = l.card.lookup("amazon.nova-micro-v1:0").unwrap();
        assert_eq!(
            nova.rates,
            Rates {
                input: 35_000,
                output: 140_000,
                cache_read: 8_750,
                cache_write: 35_000
            }
        );
        // One warning: Nova's missing cache_write, at the entry's line.
        assert_eq!(l.warnings.len(), 1);
        assert!(
            l.warnings[0].message.contains("no cache_write"),
            "{:?}",
            l.warnings
        );
        assert_eq!(l.warnings[0].line, 26);
    }

    #[test]
    fn lookup_order() {
        let c = card().card;
        let sonnet = "anthropic.claude-sonnet-4-5-20250929-v1:0";
        let cases = [
            (sonnet.to_owned(), Some(3_300_000)),
            (format!("us.{sonnet}"), Some(3_300_000)),
            (format!("eu.{sonnet}"), Some(3_300_000)),
            (format!("global.{sonnet}"), Some(3_000_000)),
            (
                format!("arn:aws:bedrock:us-east-1::foundation-model/{sonnet}"),
                Some(3_300_000),
            ),
            (
                format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{sonnet}"),
                Some(3_300_000),
            ),
            (
                format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.{sonnet}"),
                Some(3_000_000),
            ),
            (
                "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"
                    .to_owned(),
                None,
            ),
            (
                "arn:aws:s3:::foundation-model/amazon.nova-micro-v1:0".to_owned(),
                None,
            ),
            ("xx.amazon.nova-micro-v1:0".to_owned(), None),
            ("amazon.nova-micro".to_owned(), None),
        ];
        for (id, want) in cases {
            assert_eq!(c.lookup(&id).map(|p| p.rates.input), want, "{id}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        let bad = "version = \"x\"\n[[model]]\nid = \"a\"\ninput = -1\noutput = 0.1234567\n";
        let e = RateCard::parse(bad, "bad.toml").unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "bad.toml:4: a: input must be a non-negative number",
                "bad.toml:5: a: output has more than 6 decimal places",
            ]
        );

        let e = RateCard::parse(
            "version = \"x\"\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\nprice = 2\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].line, 6, "{}", e);
        assert!(e.0[0].message.contains("unknown field `price`"), "{e}");

        let e = RateCard::parse("version = \"x\"\n[[model]]\nid = \"a\"\ninput = 1\n", "f")
            .unwrap_err();
        assert!(e.to_string().contains("missing field `output`"), "{e}");

        let dup = "version = \"x\"\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\ncaching = false\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\ncaching = false\n";
        let e = RateCard::parse(dup, "f").unwrap_err();
        assert_eq!(e.to_string(), "f:8: a: duplicate id (first at line 3)");
    }

    #[test]
    fn micros() {
        assert_eq!(to_micros(0.00875), Ok(8_750));
        assert_eq!(to_micros(4.125), Ok(4_125_000));
        assert_eq!(to_micros(0.0), Ok(0));
        assert_eq!(to_micros(75.0), Ok(75_000_000));
        assert!(to_micros(0.0000001).is_err());
        assert!(to_micros(f64::NAN).is_err());
    }

    #[test]
    fn shipped_card_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rates/bedrock.toml");
        let l = RateCard::load(&path).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert!(l.card.len() >= 50);
        let haiku = l
            .card
            .lookup("us.anthropic.claude-3-haiku-20240307-v1:0")
            .unwrap();
        assert_eq!(
            (haiku.rates.input, haiku.rates.output),
            (250_000, 1_250_000)
        );
    }
}

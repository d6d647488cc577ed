//! The card's parsing and validation: exact rates, lines in messages, dated entries, age.

use std::path::Path;
use std::time::SystemTime;

use super::validate::to_micros;
use super::*;
use crate::pricing::billing_units::{Policy, Quality};
use crate::pricing::date;
use crate::pricing::units::{Call, Rates, Tier};

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

/// The rates a call to `model_id` is priced at now (Standard tier, no Region), as the meter
/// prices it: `None` when unknown or not priced per token.
fn rates_now(card: &RateCard, model_id: &str) -> Option<Rates> {
    card.resolve(&Call {
        model_id,
        region: None,
        latency_optimized: false,
        at: SystemTime::now(),
    })?
    .rates(Tier::Default, false)
}

#[test]
fn parses_exact_micros_and_fallbacks() {
    let l = card();
    assert_eq!(l.card.version, "2026-11");
    assert_eq!(l.card.len(), 4);
    assert_eq!(
        rates_now(&l.card, "amazon.nova-micro-v1:0").unwrap(),
        Rates {
            input: 35_000,
            output: 140_000,
            cache_read: 8_750,
            cache_write: 35_000,
            cache_write_1h: 35_000,
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
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc".to_owned(),
            None,
        ),
        (
            "arn:aws:s3:::foundation-model/amazon.nova-micro-v1:0".to_owned(),
            None,
        ),
        ("xx.amazon.nova-micro-v1:0".to_owned(), None),
        ("amazon.nova-micro".to_owned(), None),
        // Provisioned throughput has no per-token price: not a priced lookup.
        (
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc".to_owned(),
            None,
        ),
    ];
    for (id, want) in cases {
        assert_eq!(rates_now(&c, &id).map(|r| r.input), want, "{id}");
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

    let e =
        RateCard::parse("version = \"x\"\n[[model]]\nid = \"a\"\ninput = 1\n", "f").unwrap_err();
    assert!(e.to_string().contains("missing field `output`"), "{e}");

    let dup = "version = \"x\"\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\ncaching = false\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\ncaching = false\n";
    let e = RateCard::parse(dup, "f").unwrap_err();
    assert_eq!(e.to_string(), "f:8: a: duplicate id (first at line 3)");
}

#[test]
fn new_keys_are_validated_with_lines() {
    let e = RateCard::parse(
        r#"version = "x"
[[model]]
id = "a"
input = 1
output = 1
caching = false
effective_from = "soon"
profiles = { geo = 1.00001 }
tiers = { priority = 1.75, reserved = 2 }
"#,
        "f",
    )
    .unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].line, 9, "{e}");
    assert!(e.0[0].message.contains("unknown field `reserved`"), "{e}");

    let e = RateCard::parse(
        r#"version = "x"
updated = 2026-13-01
[[model]]
id = "a"
input = 1
output = 1
caching = false
effective_from = "soon"
profiles = { geo = 1.00001 }
tiers = { flex = "half" }
long_context = { threshold = 0, input = 2 }
[model.regions.Mars]
input = 1
[[arn]]
arn = "arn:aws:bedrock:us-east-1:1:application-inference-profile/x"
model = "b"
[[arn]]
arn = "nope"
model = "a"
[[arn]]
arn = "arn:aws:bedrock:us-east-1:1:provisioned-model/x"
"#,
        "f",
    );
    // The first failure is a TOML-level one (the bad date and the string multiplier are
    // rejected by the parser), reported alone.
    assert_eq!(
        e.unwrap_err().to_string(),
        "f:2: invalid date, expected month between 01 and 12"
    );

    let e = RateCard::parse(
        r#"version = "x"
updated = "2026-13-01"
[[model]]
id = "a"
input = 1
output = 1
caching = false
effective_from = "soon"
profiles = { geo = 1.00001 }
long_context = { threshold = 0, input = 2 }
[model.regions.Mars]
input = 1
[[arn]]
arn = "arn:aws:bedrock:us-east-1:1:application-inference-profile/x"
model = "b"
[[arn]]
arn = "nope"
model = "a"
[[arn]]
arn = "arn:aws:bedrock:us-east-1:1:provisioned-model/x"
"#,
        "f",
    )
    .unwrap_err();
    let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            r#"f:2: updated "2026-13-01" is not a date: invalid date, expected month between 01 and 12"#,
            r#"f:8: a: effective_from "soon" is not a date: invalid datetime, expected year or hour"#,
            "f:9: a: profiles.geo has more than 4 decimal places",
            r#"f:11: a: regions: "Mars" is not an AWS Region id (e.g. eu-west-1)"#,
            "f:10: a: long_context threshold must be a positive number of tokens",
            r#"f:15: arn:aws:bedrock:us-east-1:1:application-inference-profile/x: model "b" is not priced in this card"#,
            r#"f:17: "nope" is not a Bedrock ARN (arn:aws:bedrock:REGION:ACCOUNT:TYPE/ID)"#,
            r#"f:20: arn:aws:bedrock:us-east-1:1:provisioned-model/x: needs `model = "<model id>"` or `provisioned = true`"#,
        ]
    );
}

#[test]
fn dated_successors_are_not_duplicates() {
    let l = RateCard::parse(
        r#"version = "x"
[[model]]
id = "a"
input = 1
output = 1
caching = false
[[model]]
id = "a"
effective_from = 2027-01-01
input = 2
output = 2
caching = false
"#,
        "f",
    )
    .unwrap();
    assert_eq!(l.card.len(), 2);
    assert_eq!(l.card.models().len(), 2);
    let e = RateCard::parse(
            "version = \"x\"\n[[model]]\nid = \"a\"\neffective_from = 2027-01-01\ninput = 1\noutput = 1\ncaching = false\n[[model]]\nid = \"a\"\neffective_from = \"2027-01-01\"\ninput = 1\noutput = 1\ncaching = false\n",
            "f",
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "f:9: a: duplicate id with effective_from 2027-01-01 (first at line 3)"
    );
}

#[test]
fn age_warnings() {
    let card = |updated: &str| {
        RateCard::parse(
                &format!("version = \"x\"\n{updated}\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\ncaching = false\n"),
                "c.toml",
            )
            .unwrap()
            .card
    };
    let now = date::utc_date(2027, 2, 21).unwrap();
    assert!(card("updated = 2026-11-23").age_warnings(now).is_empty());
    let w = card("updated = 2026-11-22").age_warnings(now);
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].to_string(),
        "c.toml:2: prices last updated 2026-11-22, 91 days ago (more than 90): check them against the sources (`bedrock-meter rates import` shows what changed) and bump `updated`"
    );
    let w = card("").age_warnings(now);
    assert!(w[0].message.starts_with("no `updated` date"), "{w:?}");
    let w = card("updated = 2027-03-01").age_warnings(now);
    assert!(w[0].message.contains("in the future"), "{w:?}");
}

#[test]
fn region_ids() {
    for ok in ["eu-west-1", "us-gov-west-1", "ap-southeast-2", "us-east-1"] {
        assert!(crate::names::valid_region(ok), "{ok}");
    }
    for bad in ["Mars", "eu", "eu-west", "eu-west-", "-west-1", "EU-west-1"] {
        assert!(!crate::names::valid_region(bad), "{bad}");
    }
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
    assert!(l.card.updated().is_some());
    let haiku = rates_now(&l.card, "us.anthropic.claude-3-haiku-20240307-v1:0").unwrap();
    assert_eq!((haiku.input, haiku.output), (250_000, 1_250_000));
}

#[test]
fn unit_prices_and_guardrails() {
    let text = r#"version = "u"
[guardrails]
content_policy = 0.15
word_policy = 0

[[model]]
id = "amazon.nova-canvas-v1:0"
per_image = [
  { quality = "premium", usd = 0.08 },
  { max_pixels = 1048576, usd = 0.04 },
  { quality = "premium", max_pixels = 1048576, usd = 0.06 },
  { usd = 0.06 },
]

[[model]]
id = "amazon.nova-reel-v1:1"
per_video_second = 0.08

[[model]]
id = "cohere.rerank-v3-5:0"
per_search_unit = 0.002
"#;
    let card = RateCard::parse(text, "u.toml").unwrap().card;
    let entry = |id: &str| {
        card.resolve(&Call {
            model_id: id,
            region: None,
            latency_optimized: false,
            at: SystemTime::now(),
        })
        .unwrap()
        .model()
        .clone()
    };
    let canvas = entry("us.amazon.nova-canvas-v1:0");
    assert!(!canvas.per_token && !canvas.caching);
    assert_eq!(
        canvas.units.image(Quality::Standard, 1024 * 1024),
        Some(40_000)
    );
    assert_eq!(
        canvas.units.image(Quality::Standard, 2048 * 2048),
        Some(60_000)
    );
    assert_eq!(canvas.units.image(Quality::Premium, 0), Some(60_000));
    assert_eq!(
        canvas.units.image(Quality::Premium, 1024 * 1025),
        Some(80_000)
    );
    assert_eq!(
        entry("amazon.nova-reel-v1:1").units.video_second,
        Some(80_000)
    );
    assert_eq!(entry("cohere.rerank-v3-5:0").units.search_unit, Some(2_000));
    let g = card.guardrail_rates();
    assert_eq!(g.get(Policy::Content), Some(150_000));
    assert_eq!(g.get(Policy::Word), Some(0));
    assert_eq!(g.get(Policy::Topic), None);
}

#[test]
fn unit_price_errors_name_the_line() {
    let errors = |text: &str| -> Vec<String> {
        RateCard::parse(text, "u.toml")
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        errors("version = \"u\"\n[[model]]\nid = \"m\"\n"),
        [
            "u.toml:3: m: needs `input` and `output` (USD per 1M tokens), or a unit price (`per_image`, `per_video_second`, `per_search_unit`)"
        ]
    );
    assert_eq!(
        errors(
            "version = \"u\"\n[[model]]\nid = \"amazon.nova-canvas-v1:0\"\ninput = 1\noutput = 1\ncaching = false\n"
        ),
        ["u.toml:3: amazon.nova-canvas-v1:0: AWS bills this model per unit: it needs `per_image`"]
    );
    assert_eq!(
        errors(
            "version = \"u\"\n[[model]]\nid = \"stability.sd3-5-large-v1:0\"\nper_image = [\n  { max_pixels = 100, usd = 0.04 },\n]\n"
        ),
        [
            "u.toml:4: stability.sd3-5-large-v1:0: per_image has no standard band without max_pixels, so larger images would have no price"
        ]
    );
    assert_eq!(
        errors(
            "version = \"u\"\n[[model]]\nid = \"x\"\nper_image = [{ quality = \"ultra\", usd = 0.04 }]\n"
        ),
        ["u.toml:4: x: per_image quality \"ultra\" is not \"standard\" or \"premium\""]
    );
    assert_eq!(
        errors("version = \"u\"\n[[model]]\nid = \"x\"\nper_video_second = 5000\n"),
        ["u.toml:4: x: per_video_second is over $1,000 per unit; is the unit wrong?"]
    );
    assert_eq!(
        errors("version = \"u\"\n[guardrails]\ncontent_policy = -1\n"),
        ["u.toml:3: guardrails.content_policy must be a non-negative number"]
    );
    assert!(
        errors("version = \"u\"\n[guardrails]\nimage_policy = 1\n")[0]
            .contains("unknown field `image_policy`")
    );
}

#[test]
fn ladders_step_down_one_model_at_a_time() {
    let models = "version = \"l\"\n[[model]]\nid = \"a.big-v1\"\ninput = 3\noutput = 15\n[[model]]\nid = \"a.mid-v1\"\ninput = 1\noutput = 5\n[[model]]\nid = \"a.small-v1\"\ninput = 0.25\noutput = 1.25\n";
    let ok = RateCard::parse(
        &format!("{models}[[ladder]]\nname = \"A\"\nmodels = [\"a.big-v1\", \"a.mid-v1\", \"a.small-v1\"]\n"),
        "l.toml",
    )
    .unwrap()
    .card;
    assert_eq!(ok.cheaper("a.big-v1").as_deref(), Some("a.mid-v1"));
    assert_eq!(ok.cheaper("us.a.mid-v1").as_deref(), Some("us.a.small-v1"));
    assert_eq!(ok.cheaper("a.small-v1"), None);
    let errors = |ladders: &str| {
        RateCard::parse(&format!("{models}{ladders}"), "l.toml")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        errors("[[ladder]]\nname = \"A\"\nmodels = [\"a.big-v1\"]\n"),
        "l.toml:16: ladder \"A\": needs at least two models, dearest first"
    );
    assert_eq!(
        errors("[[ladder]]\nname = \"A\"\nmodels = [\"a.big-v1\", \"a.gone-v1\"]\n"),
        "l.toml:16: ladder \"A\": model \"a.gone-v1\" is not priced in this card"
    );
    assert_eq!(
        errors(
            "[[ladder]]\nname = \"A\"\nmodels = [\"a.big-v1\", \"a.mid-v1\"]\n[[ladder]]\nname = \"B\"\nmodels = [\"a.big-v1\", \"a.small-v1\"]\n"
        ),
        "l.toml:19: ladder \"B\": a.big-v1 already steps down to a.mid-v1 in another ladder"
    );
}

//! Whole imports: against the shipped card, against odd layouts and conflicting sources.

use std::path::Path;

use super::*;
use crate::pricing::{Call, Tier, Usage, utc_date};

const EXCERPT: &str = include_str!("../../../tests/fixtures/litellm-bedrock-excerpt.json");

fn shipped() -> RateCard {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rates/bedrock.toml");
    RateCard::load(&path).unwrap().card
}

fn now() -> SystemTime {
    utc_date(2026, 11, 23).unwrap()
}

#[test]
fn excerpt_against_the_shipped_card() {
    let card = shipped();
    let r = import_litellm_at(EXCERPT, &card, now()).unwrap();
    assert_eq!(r.source_prices, 14);
    assert_eq!(
        r.added,
        vec![
            "+ amazon.nova-2-pro-preview-20251202-v1:0: input 2.1875, output 17.50, cache_read 0.546875, cache_write 2.1875"
        ]
    );
    assert_eq!(
        r.changed,
        vec![
            "~ mistral.mistral-large-2402-v1:0 input: 4.00 -> 8.00",
            "~ mistral.mistral-large-2402-v1:0 output: 12.00 -> 24.00",
            "~ amazon.titan-text-express-v1 input: 0.20 -> 1.30",
            "~ amazon.titan-text-express-v1 output: 0.60 -> 1.70",
            "~ meta.llama3-70b-instruct-v1:0 [ap-south-1] input: 2.65 -> 3.18 (new Region price)",
            "~ meta.llama3-70b-instruct-v1:0 [ap-south-1] output: 3.50 -> 4.20 (new Region price)",
        ]
    );
    assert!(r.review.is_empty(), "{:#?}", r.review);
    assert_eq!(
        r.notes,
        vec![
            "anthropic.claude-3-5-sonnet-20240620-v1:0: the source has prices above 200000 prompt tokens; the card has no long_context (add one if Bedrock bills it)",
            "anthropic.claude-3-haiku-20240307-v1:0: the source lists cache prices; the card says `caching = false` (kept)",
            "bump `version` and `updated` in the card when you accept these changes",
        ]
    );
    // Everything the excerpt does not list is kept and reported.
    assert_eq!(r.not_in_source.len(), card.base_ids().len() - 8);
    assert!(
        r.not_in_source
            .contains(&"- cohere.command-text-v14".to_owned())
    );
    assert!(!r.not_in_source.iter().any(|l| l.contains("nova-micro")));
    let text = r.to_string();
    assert!(
            text.starts_with("LiteLLM import: 14 Bedrock prices read; 1 model added, 6 rates changed, 62 models not in the source, 0 to review\nadded (appended to the card):\n  + amazon.nova-2-pro"),
            "{text}"
        );

    // The proposed card is the old text with those edits: it parses, prices the changes,
    // and importing the same source again finds nothing more to do.
    let proposed = RateCard::parse(r.proposed_toml(), "proposed.toml")
        .unwrap()
        .card;
    assert!(
        r.proposed_toml()
            .starts_with(&card.text[..card.text.find("# Lookup").unwrap()])
    );
    assert!(r.proposed_toml().contains(
            "output = 5.88\n\n[model.regions.ap-south-1]\ninput = 3.18\noutput = 4.20\n\n# The listed Bedrock price"
        ));
    let llama = proposed
        .resolve(&Call {
            model_id: "meta.llama3-70b-instruct-v1:0",
            region: Some("ap-south-1"),
            latency_optimized: false,
            at: now(),
        })
        .unwrap();
    let usage = Usage {
        input: 1000,
        output: 100,
        ..Usage::default()
    };
    assert_eq!(
        llama.quote(&usage, Tier::Default).cost.unwrap().total(),
        1000 * 3_180_000 + 100 * 4_200_000
    );
    let again = import_litellm_at(EXCERPT, &proposed, now()).unwrap();
    assert!(!again.has_changes(), "{again}");
    assert!(again.review.is_empty(), "{again}");
}

const OLD_STYLE: &str = r#"version = "t"
updated = 2026-11-01

# Old style: the bare id is the geographic price, global. an exact entry.
[[model]]
id = "anthropic.claude-sonnet-4-5-20250929-v1:0"
input = 3.30
output = 16.50
cache_read = 0.33
cache_write = 4.125

[[model]]
id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
input = 3.00
output = 15.00
cache_read = 0.30
cache_write = 3.75

[[model]]
id = "amazon.nova-2-lite-v1:0"
input = 0.30
output = 2.50 # list price
cache_read = 0.075
cache_write = 0.30
profiles = { geo = 1.1 }
"#;

const SOURCE: &str = r#"{
        "anthropic.claude-sonnet-4-5-20250929-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05, "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06, "cache_creation_input_token_cost_above_1hr": 6e-06},
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3.3e-06, "output_cost_per_token": 1.65e-05, "cache_read_input_token_cost": 3.3e-07, "cache_creation_input_token_cost": 4.125e-06, "cache_creation_input_token_cost_above_1hr": 6.6e-06},
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3.4e-06, "output_cost_per_token": 1.65e-05, "cache_read_input_token_cost": 3.3e-07, "cache_creation_input_token_cost": 4.125e-06, "cache_creation_input_token_cost_above_1hr": 6.6e-06},
        "amazon.nova-2-lite-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3e-07, "output_cost_per_token": 2.6e-06, "cache_read_input_token_cost": 7.5e-08},
        "bedrock/converse/amazon.nova-2-lite-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3e-07, "output_cost_per_token": 2.7e-06, "cache_read_input_token_cost": 7.5e-08},
        "us.amazon.nova-2-lite-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3.4e-07, "output_cost_per_token": 2.86e-06, "cache_read_input_token_cost": 8.25e-08}
    }"#;

#[test]
fn literal_edits_inserts_conflicts_and_derived_prices() {
    let card = RateCard::parse(OLD_STYLE, "old.toml").unwrap().card;
    let r = import_litellm_at(SOURCE, &card, now()).unwrap();
    assert_eq!(
            r.to_string(),
            "LiteLLM import: 5 Bedrock prices read; 0 models added, 3 rates changed, 0 models not in the source, 2 to review
changed:
  ~ anthropic.claude-sonnet-4-5-20250929-v1:0 cache_write_1h: unset -> 6.60
  ~ global.anthropic.claude-sonnet-4-5-20250929-v1:0 cache_write_1h: unset -> 6.00
  ~ amazon.nova-2-lite-v1:0 output: 2.50 -> 2.60
to review by hand (not changed):
  ! us.amazon.nova-2-lite-v1:0 input: card 0.33, source 0.34 (the card's 0.30 × 1.1 for geo profiles)
  ! anthropic.claude-sonnet-4-5-20250929-v1:0 input: the source disagrees with itself (3.40 eu.anthropic.claude-sonnet-4-5-20250929-v1:0, 3.30 us.anthropic.claude-sonnet-4-5-20250929-v1:0); not changed
notes:
  amazon.nova-2-lite-v1:0 and bedrock/converse/amazon.nova-2-lite-v1:0 disagree; amazon.nova-2-lite-v1:0 is used
  bump `version` and `updated` in the card when you accept these changes
"
        );
    let want = OLD_STYLE
        .replace(
            "cache_write = 4.125\n",
            "cache_write = 4.125\ncache_write_1h = 6.60\n",
        )
        .replace(
            "cache_write = 3.75\n",
            "cache_write = 3.75\ncache_write_1h = 6.00\n",
        )
        .replace("output = 2.50 # list price", "output = 2.60 # list price");
    assert_eq!(r.proposed_toml(), want);
}

#[test]
fn bad_sources_are_errors_not_panics() {
    let card = RateCard::parse("version = \"t\"\n", "t.toml").unwrap().card;
    assert!(matches!(
        import_litellm("not json", &card),
        Err(ImportError::Source(_))
    ));
    assert!(matches!(
        import_litellm("[1, 2]", &card),
        Err(ImportError::Source(_))
    ));
    // Odd values are skipped, not trusted.
    let r = import_litellm(
        r#"{"a.b": {"litellm_provider": "bedrock", "input_cost_per_token": -1},
                "c.d": {"litellm_provider": "bedrock", "input_cost_per_token": "cheap"},
                "e.f": "not an object",
                "g.h": {"litellm_provider": "bedrock", "input_cost_per_token": 1e300}}"#,
        &card,
    )
    .unwrap();
    assert_eq!(r.source_prices, 0);
}

#[test]
fn edits_land_in_odd_layouts() {
    // Multi-byte text, no trailing newline, sub-tables after the keys.
    let text = "version = \"é\"\n[[model]]\nid = \"a.b\"\nname = \"Ünï\" # ü\ninput = 1\noutput = 1\ncache_read = 0.1\n[model.tiers]\nflex = 0.5\n\n# next\n[[model]]\nid = \"c.d\"\ninput = 1\noutput = 1\ncaching = false";
    let card = RateCard::parse(text, "odd.toml").unwrap().card;
    let json = r#"{
            "a.b": {"litellm_provider": "bedrock", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06, "cache_read_input_token_cost": 1e-07, "cache_creation_input_token_cost": 1.25e-06, "cache_creation_input_token_cost_above_1hr": 2e-06},
            "c.d": {"litellm_provider": "bedrock", "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-06},
            "bedrock/eu-west-3/c.d": {"litellm_provider": "bedrock", "input_cost_per_token": 3e-06, "output_cost_per_token": 1e-06}
        }"#;
    let r = import_litellm_at(json, &card, now()).unwrap();
    assert_eq!(
        r.proposed_toml(),
        "version = \"é\"\n[[model]]\nid = \"a.b\"\nname = \"Ünï\" # ü\ninput = 1\noutput = 1\ncache_read = 0.1\ncache_write = 1.25\ncache_write_1h = 2.00\n[model.tiers]\nflex = 0.5\n\n# next\n[[model]]\nid = \"c.d\"\ninput = 2.00\noutput = 1\ncaching = false\n\n[model.regions.eu-west-3]\ninput = 3.00\noutput = 1.00\n"
    );
    assert!(RateCard::parse(r.proposed_toml(), "p.toml").is_ok());
}

#[test]
fn new_models_get_profiles_from_the_source_ratio() {
    let card = RateCard::parse("version = \"t\"\n", "t.toml").unwrap().card;
    let json = r#"{
            "anthropic.claude-new-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 2e-07, "cache_creation_input_token_cost": 2.5e-06, "cache_creation_input_token_cost_above_1hr": 4e-06},
            "us.anthropic.claude-new-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 2.2e-06, "output_cost_per_token": 1.1e-05, "cache_read_input_token_cost": 2.2e-07, "cache_creation_input_token_cost": 2.75e-06, "cache_creation_input_token_cost_above_1hr": 4.4e-06},
            "bedrock/eu-west-2/meta.llama-new-v1:0": {"litellm_provider": "bedrock", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
        }"#;
    let r = import_litellm_at(json, &card, now()).unwrap();
    assert_eq!(
        r.added,
        vec![
            "+ anthropic.claude-new-v1:0: input 2.00, output 10.00, cache_read 0.20, cache_write 2.50, cache_write_1h 4.00, profiles geo = 1.1",
            "+ meta.llama-new-v1:0: input 1.00, output 2.00, caching = false",
        ]
    );
    let proposed = RateCard::parse(r.proposed_toml(), "p.toml").unwrap().card;
    let us = proposed
        .resolve(&Call {
            model_id: "us.anthropic.claude-new-v1:0",
            region: None,
            latency_optimized: false,
            at: now(),
        })
        .unwrap();
    assert_eq!(us.rates(Tier::Default, false).unwrap().input, 2_200_000);
    let again = import_litellm_at(json, &proposed, now()).unwrap();
    assert!(!again.has_changes() && again.review.is_empty(), "{again}");
}

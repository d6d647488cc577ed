//! Every pricing rule, one row each: a call, its usage, and the cost worked out by hand.
//! Most rows price against the shipped `rates/bedrock.toml`, so the card itself is under test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, SystemTime};

use bedrock_meter::pricing::{Call, Quote, RateCard, Tier, Usage, price, utc_date};

fn shipped() -> RateCard {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rates/bedrock.toml");
    let loaded = RateCard::load(&path).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.card
}

/// The shipped card plus account-specific ARN mappings, as a deployment would add them.
fn shipped_with_arns() -> RateCard {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rates/bedrock.toml");
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(
        r#"
[[arn]]
arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

[[arn]]
arn = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghij12"
model = "amazon.nova-pro-v1:0"
provisioned = true

[[arn]]
arn = "arn:aws:bedrock:us-west-2:123456789012:custom-model-deployment/k9l8m7n6"
model = "meta.llama3-1-8b-instruct-v1:0"
"#,
    );
    RateCard::parse(&text, "bedrock+arns.toml").unwrap().card
}

/// An introductory price and its successor, and a model announced for a future date.
const INTRO: &str = r#"
version = "test"
updated = 2026-11-23

[[model]]
id = "acme.intro-v1:0"
name = "Acme Intro (introductory price until 2027-01-01)"
input = 0.50
output = 1.00
caching = false

[[model]]
id = "acme.intro-v1:0"
name = "Acme Intro"
effective_from = 2027-01-01
input = 1.00
output = 2.00
caching = false

[[model]]
id = "acme.later-v1:0"
effective_from = "2027-03-01"
input = 1.00
output = 1.00
caching = false
"#;

/// The minimal card of the design notes (§3.3): still parses and prices as before.
const MINIMAL: &str = r#"
version = "2026-11"            # shown in bedrock_rate_card_info
currency = "USD"

[[model]]
id = "anthropic.claude-3-haiku-20240307-v1:0"
name = "Claude 3 Haiku"        # optional
input = 0.25
output = 1.25
cache_read = 0.03              # optional
cache_write = 0.30             # optional
"#;

const SONNET_4: &str = "anthropic.claude-sonnet-4-20250514-v1:0";
const SONNET_45: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64, cache_write_1h: u64) -> Usage {
    Usage {
        input,
        output,
        cache_read,
        cache_write,
        cache_write_1h,
    }
}

fn io(input: u64, output: u64) -> Usage {
    usage(input, output, 0, 0, 0)
}

fn now() -> SystemTime {
    utc_date(2026, 11, 23).unwrap()
}

/// What a row expects besides the total.
#[derive(Clone, Copy, Default)]
struct Flags {
    tier_unsupported: bool,
    latency_unsupported: bool,
    uncached: bool,
    long_context: bool,
    cache_savings: u64,
}

struct Row {
    rule: &'static str,
    card: usize,
    model: String,
    region: Option<&'static str>,
    latency_optimized: bool,
    at: SystemTime,
    tier: Tier,
    usage: Usage,
    /// Total pico-dollars; `None`: priced as provisioned / reserved (no per-token cost).
    want: Option<u64>,
    flags: Flags,
}

fn row(rule: &'static str, model: &str, usage: Usage, want: Option<u64>) -> Row {
    Row {
        rule,
        card: 0,
        model: model.to_owned(),
        region: None,
        latency_optimized: false,
        at: now(),
        tier: Tier::Default,
        usage,
        want,
        flags: Flags::default(),
    }
}

impl Row {
    fn region(mut self, r: &'static str) -> Row {
        self.region = Some(r);
        self
    }
    fn tier(mut self, t: Tier) -> Row {
        self.tier = t;
        self
    }
    fn latency(mut self) -> Row {
        self.latency_optimized = true;
        self
    }
    fn card(mut self, c: usize) -> Row {
        self.card = c;
        self
    }
    fn at(mut self, at: SystemTime) -> Row {
        self.at = at;
        self
    }
    fn flags(mut self, f: Flags) -> Row {
        self.flags = f;
        self
    }
}

#[test]
fn every_rule_prices_to_the_pico_dollar() {
    let cards = [
        shipped(),
        shipped_with_arns(),
        RateCard::parse(INTRO, "intro.toml").unwrap().card,
        RateCard::parse(MINIMAL, "minimal.toml").unwrap().card,
    ];
    const ARNS: usize = 1;
    const INTRO_CARD: usize = 2;
    const MINIMAL_CARD: usize = 3;
    let us45 = format!("us.{SONNET_45}");
    let global45 = format!("global.{SONNET_45}");
    let new_year = utc_date(2027, 1, 1).unwrap();

    let rows = vec![
        // Cross-region profiles: global. is the list price, geographic profiles 1.1×, and a
        // bare in-Region id is priced like a geographic one.
        // 10,000 × $3.00/M + 1,000 × $15.00/M = $0.045
        row(
            "global. Sonnet 4.5",
            &global45,
            io(10_000, 1_000),
            Some(45_000_000_000),
        ),
        // 10,000 × $3.30/M + 1,000 × $16.50/M = $0.0495
        row(
            "us. Sonnet 4.5",
            &us45,
            io(10_000, 1_000),
            Some(49_500_000_000),
        ),
        row(
            "in-Region Sonnet 4.5",
            SONNET_45,
            io(10_000, 1_000),
            Some(49_500_000_000),
        ),
        // Cache rates scale with the profile too: 300 × 3.30 + 40 × 16.50 + 2,000 × 0.33 +
        // 500 × 4.125 = 4,372.5 µ$; savings 2,000 × (3.30 − 0.33) = 5,940 µ$.
        row(
            "eu. Sonnet 4.5 with cache",
            &format!("eu.{SONNET_45}"),
            usage(300, 40, 2_000, 500, 0),
            Some(4_372_500_000),
        )
        .flags(Flags {
            cache_savings: 5_940_000_000,
            ..Flags::default()
        }),
        // Older models cost the same under every prefix; GovCloud is about 1.2×: 1,000 × $3.60/M.
        row(
            "us. Claude 3.7 Sonnet",
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            io(1_000, 0),
            Some(3_000_000_000),
        ),
        row(
            "us-gov. Claude 3.5 Sonnet",
            "us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0",
            io(1_000, 0),
            Some(3_600_000_000),
        ),
        // Regions: the Region the request was signed for. Nova Micro 1,000 in + 1,000 out:
        // us-east-1 0.035 + 0.14; eu-west-1 0.040 + 0.16; eu-central-1 0.046 + 0.184.
        row(
            "Nova Micro us-east-1",
            "amazon.nova-micro-v1:0",
            io(1_000, 1_000),
            Some(175_000_000),
        )
        .region("us-east-1"),
        row(
            "Nova Micro eu-west-1",
            "amazon.nova-micro-v1:0",
            io(1_000, 1_000),
            Some(200_000_000),
        )
        .region("eu-west-1"),
        row(
            "Nova Micro via eu. profile signed in eu-west-1",
            "eu.amazon.nova-micro-v1:0",
            io(1_000, 1_000),
            Some(200_000_000),
        )
        .region("eu-west-1"),
        row(
            "Nova Micro ARN names eu-central-1",
            "arn:aws:bedrock:eu-central-1::foundation-model/amazon.nova-micro-v1:0",
            io(1_000, 1_000),
            Some(230_000_000),
        ),
        // Llama 3 70B in sa-east-1: 1,000 × 4.45 + 1,000 × 5.88 = 10,330 µ$.
        row(
            "Llama 3 70B sa-east-1",
            "meta.llama3-70b-instruct-v1:0",
            io(1_000, 1_000),
            Some(10_330_000_000),
        )
        .region("sa-east-1"),
        // Service tiers on gpt-oss-120b (0.15 / 0.60): 1M in + 100K out.
        row(
            "gpt-oss Standard",
            "openai.gpt-oss-120b-1:0",
            io(1_000_000, 100_000),
            Some(210_000_000_000),
        ),
        // Flex 0.5×: 1M × 0.075 + 100K × 0.30 = $0.105
        row(
            "gpt-oss Flex",
            "openai.gpt-oss-120b-1:0",
            io(1_000_000, 100_000),
            Some(105_000_000_000),
        )
        .tier(Tier::Flex),
        // Priority 1.75×: 1M × 0.2625 + 100K × 1.05 = $0.3675
        row(
            "gpt-oss Priority",
            "openai.gpt-oss-120b-1:0",
            io(1_000_000, 100_000),
            Some(367_500_000_000),
        )
        .tier(Tier::Priority),
        // Reserved: monthly capacity, no per-token cost.
        row(
            "gpt-oss Reserved",
            "openai.gpt-oss-120b-1:0",
            io(1_000_000, 100_000),
            None,
        )
        .tier(Tier::Reserved),
        // Priority, then the geo profile: 0.30 × 1.75 × 1.1 = 0.5775 per 1M input.
        row(
            "us. Nova 2 Lite Priority",
            "us.amazon.nova-2-lite-v1:0",
            io(1_000_000, 0),
            Some(577_500_000_000),
        )
        .tier(Tier::Priority),
        // A tier the model does not offer: the default price, flagged.
        row(
            "us. Sonnet 4.5 Priority",
            &us45,
            io(10_000, 1_000),
            Some(49_500_000_000),
        )
        .tier(Tier::Priority)
        .flags(Flags {
            tier_unsupported: true,
            ..Flags::default()
        }),
        // 1-hour cache writes: 600 × 3.75 + 400 × 6.00 (global); × 1.1 geographic.
        row(
            "global. Sonnet 4.5 1h cache write",
            &global45,
            usage(0, 0, 0, 1_000, 400),
            Some(4_650_000_000),
        ),
        row(
            "us. Sonnet 4.5 1h cache write",
            &us45,
            usage(0, 0, 0, 1_000, 400),
            Some(5_115_000_000),
        ),
        // Claude 3.5 Haiku: 600 × 1.00 + 400 × 1.60.
        row(
            "Claude 3.5 Haiku 1h cache write",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            usage(0, 0, 0, 1_000, 400),
            Some(1_240_000_000),
        ),
        // A model without caching that reports cache tokens: input rate, flagged, no savings.
        row(
            "Claude 3 Haiku cache tokens",
            "anthropic.claude-3-haiku-20240307-v1:0",
            usage(0, 0, 100, 0, 0),
            Some(25_000_000),
        )
        .flags(Flags {
            uncached: true,
            ..Flags::default()
        }),
        // Long context: a 250K-token Sonnet 4 prompt is billed entirely at 2× input, 1.5×
        // output: 250,000 × 6.00 + 1,000 × 22.50 = $1.5225.
        row(
            "Sonnet 4 250K input",
            SONNET_4,
            io(250_000, 1_000),
            Some(1_522_500_000_000),
        )
        .flags(Flags {
            long_context: true,
            ..Flags::default()
        }),
        // Exactly 200K is not above the threshold: 200,000 × 3 + 1,000 × 15.
        row(
            "Sonnet 4 200K input",
            SONNET_4,
            io(200_000, 1_000),
            Some(615_000_000_000),
        ),
        // Cache tokens count towards the threshold and are priced at 2× too:
        // 150,000 × 6.00 + 60,000 × 0.60 + 1,000 × 22.50.
        row(
            "Sonnet 4 long via cache",
            SONNET_4,
            usage(150_000, 1_000, 60_000, 0, 0),
            Some(958_500_000_000),
        )
        .flags(Flags {
            long_context: true,
            cache_savings: 60_000 * (6_000_000 - 600_000),
            ..Flags::default()
        }),
        // Long context through a geographic profile: 250,000 × 6.60 + 1,000 × 24.75.
        row(
            "us. Sonnet 4.5 250K input",
            &us45,
            io(250_000, 1_000),
            Some(1_674_750_000_000),
        )
        .flags(Flags {
            long_context: true,
            ..Flags::default()
        }),
        // Latency-optimized: Llama 3.1 405B 3.00 / 3.00 instead of 2.40 / 2.40.
        row(
            "Llama 3.1 405B latency-optimized",
            "us.meta.llama3-1-405b-instruct-v1:0",
            io(1_000, 1_000),
            Some(6_000_000_000),
        )
        .latency(),
        // Asked for where the card has no such price: standard, flagged.
        row(
            "Nova Micro latency-optimized",
            "amazon.nova-micro-v1:0",
            io(1_000, 1_000),
            Some(175_000_000),
        )
        .latency()
        .flags(Flags {
            latency_unsupported: true,
            ..Flags::default()
        }),
        // ARNs. Foundation-model and system inference-profile ARNs reduce to their ids.
        row(
            "inference-profile ARN",
            &format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/{global45}"),
            io(10_000, 1_000),
            Some(45_000_000_000),
        ),
        // An application inference profile mapped to us. Sonnet 4.5.
        row(
            "application-profile ARN",
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
            io(10_000, 1_000),
            Some(49_500_000_000),
        )
        .card(ARNS),
        // Provisioned throughput: tokens counted, no per-token cost, mapped or not.
        row(
            "provisioned ARN (mapped)",
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghij12",
            io(10_000, 1_000),
            None,
        )
        .card(ARNS),
        row(
            "provisioned ARN (not mapped)",
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/zzz",
            io(10_000, 1_000),
            None,
        ),
        row(
            "imported-model ARN (not mapped)",
            "arn:aws:bedrock:us-west-2:123456789012:imported-model/k9l8m7n6",
            io(10_000, 1_000),
            None,
        ),
        // A custom-model deployment mapped to the price it is billed at: 2,000 × 0.22.
        row(
            "custom-model deployment ARN (mapped)",
            "arn:aws:bedrock:us-west-2:123456789012:custom-model-deployment/k9l8m7n6",
            io(1_000, 1_000),
            Some(440_000_000),
        )
        .card(ARNS),
        // Effective dates: the introductory price until 2027-01-01, then its successor.
        row(
            "intro price before its end",
            "acme.intro-v1:0",
            io(1_000, 1_000),
            Some(1_500_000_000),
        )
        .card(INTRO_CARD)
        .at(new_year - Duration::from_secs(1)),
        row(
            "successor price from its date",
            "acme.intro-v1:0",
            io(1_000, 1_000),
            Some(3_000_000_000),
        )
        .card(INTRO_CARD)
        .at(new_year),
        // The design notes' minimal card: 1,000 × 0.25 + 500 × 1.25 + 200 × 0.03 + 100 × 0.30.
        row(
            "minimal card",
            "us.anthropic.claude-3-haiku-20240307-v1:0",
            usage(1_000, 500, 200, 100, 0),
            Some(911_000_000),
        )
        .card(MINIMAL_CARD)
        .flags(Flags {
            cache_savings: 200 * (250_000 - 30_000),
            ..Flags::default()
        }),
    ];

    for r in &rows {
        let call = Call {
            model_id: &r.model,
            region: r.region,
            latency_optimized: r.latency_optimized,
            at: r.at,
        };
        let resolved = cards[r.card]
            .resolve(&call)
            .unwrap_or_else(|| panic!("{}: {} is unpriced", r.rule, r.model));
        let q: Quote = resolved.quote(&r.usage, r.tier);
        assert_eq!(q.cost.map(|c| c.total()), r.want, "{}", r.rule);
        assert_eq!(
            q.tier_unsupported, r.flags.tier_unsupported,
            "{}: tier flag",
            r.rule
        );
        assert_eq!(
            q.latency_unsupported, r.flags.latency_unsupported,
            "{}: latency flag",
            r.rule
        );
        assert_eq!(
            q.uncached_model_with_cache_tokens, r.flags.uncached,
            "{}: caching flag",
            r.rule
        );
        assert_eq!(
            q.long_context, r.flags.long_context,
            "{}: long-context flag",
            r.rule
        );
        assert_eq!(
            q.cache_savings, r.flags.cache_savings,
            "{}: savings",
            r.rule
        );
        assert_eq!(q.cost.is_none(), q.rates.is_none(), "{}", r.rule);
    }
}

#[test]
fn what_is_not_priced() {
    let card = shipped();
    let call = |model_id| Call {
        model_id,
        region: None,
        latency_optimized: false,
        at: now(),
    };
    // Unknown models, unmapped application profiles and custom models: unpriced (None).
    for id in [
        "acme.mystery-model-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/nope",
        "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/x1",
        "arn:aws:s3:::foundation-model/amazon.nova-micro-v1:0",
        "",
    ] {
        assert!(card.resolve(&call(id)).is_none(), "{id}");
    }
    // A provisioned ARN the card does not map: a placeholder entry, never a price.
    let p = card
        .resolve(&call(
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/x",
        ))
        .unwrap();
    assert!(p.is_provisioned());
    assert_eq!(p.model().id, "provisioned");
    for tier in Tier::ALL {
        assert_eq!(p.quote(&io(5, 5), tier).cost, None);
    }
    // A model announced for a later date is unpriced before it.
    let intro = RateCard::parse(INTRO, "intro.toml").unwrap().card;
    let later = |at| {
        intro.resolve(&Call {
            model_id: "acme.later-v1:0",
            region: None,
            latency_optimized: false,
            at,
        })
    };
    assert!(later(utc_date(2027, 2, 28).unwrap()).is_none());
    assert!(later(utc_date(2027, 3, 1).unwrap()).is_some());
    // The mapped provisioned ARN still names its model.
    let arns = shipped_with_arns();
    let mapped = arns
        .resolve(&call(
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghij12",
        ))
        .unwrap();
    assert!(mapped.is_provisioned());
    assert_eq!(mapped.model().id, "amazon.nova-pro-v1:0");
}

/// The Standard-tier rates a model id is priced at with no Region, as the meter resolves them.
fn standard_rates(card: &RateCard, model_id: &str) -> Option<bedrock_meter::pricing::Rates> {
    card.resolve(&Call {
        model_id,
        region: None,
        latency_optimized: false,
        at: SystemTime::now(),
    })
    .and_then(|r| r.rates(Tier::Default, false))
}

#[test]
fn the_minimal_card_prices_ids_profiles_and_arns() {
    let loaded = RateCard::parse(MINIMAL, "minimal.toml").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let card = loaded.card;
    assert_eq!(card.version, "2026-11");
    for id in [
        "anthropic.claude-3-haiku-20240307-v1:0",
        "us.anthropic.claude-3-haiku-20240307-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
    ] {
        let rates = standard_rates(&card, id).unwrap();
        let cost = price(&usage(1_000, 500, 200, 100, 0), &rates);
        assert_eq!(
            (cost.input, cost.output, cost.cache_read, cost.cache_write),
            (250_000_000, 625_000_000, 6_000_000, 30_000_000),
            "{id}"
        );
    }
    // On the shipped card, profile multipliers are folded into the rates.
    let shipped = shipped();
    let us = standard_rates(&shipped, &format!("us.{SONNET_45}")).unwrap();
    assert_eq!((us.input, us.cache_write), (3_300_000, 4_125_000));
    let global = standard_rates(&shipped, &format!("global.{SONNET_45}")).unwrap();
    assert_eq!(global.input, 3_000_000);
    assert!(
        standard_rates(
            &shipped,
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/x"
        )
        .is_none()
    );
}

#[test]
fn quotes_break_cost_down_and_print_exactly() {
    let card = shipped();
    let q = card
        .resolve(&Call {
            model_id: &format!("global.{SONNET_45}"),
            region: None,
            latency_optimized: false,
            at: now(),
        })
        .unwrap()
        .quote(&usage(10_000, 1_000, 20_000, 1_000, 400), Tier::Default);
    let c = q.cost.unwrap();
    // 10,000 × 3.00; 1,000 × 15.00; 20,000 × 0.30; 600 × 3.75 + 400 × 6.00.
    assert_eq!(
        (c.input, c.output, c.cache_read, c.cache_write),
        (30_000_000_000, 15_000_000_000, 6_000_000_000, 4_650_000_000)
    );
    assert_eq!(c.total(), 55_650_000_000);
    assert_eq!(bedrock_meter::money::usd(c.total()), "0.055650000000");
    assert_eq!(q.cache_savings, 20_000 * (3_000_000 - 300_000));
}

#[test]
fn the_shipped_card_is_fresh_today_and_stale_in_90_days() {
    let card = shipped();
    let updated = card.updated().unwrap().at();
    assert!(card.age_warnings(updated).is_empty());
    assert!(
        card.age_warnings(updated + Duration::from_secs(90 * 86_400))
            .is_empty()
    );
    let stale = card.age_warnings(updated + Duration::from_secs(91 * 86_400));
    assert_eq!(stale.len(), 1);
    assert!(stale[0].message.contains("91 days ago"), "{stale:?}");
}

use super::*;

fn canvas() -> UnitPrices {
    let band = |quality, max_pixels, price| ImageBand {
        quality,
        max_pixels,
        price,
    };
    UnitPrices {
        images: vec![
            band(Quality::Standard, Some(1024 * 1024), 40_000),
            band(Quality::Standard, None, 60_000),
            band(Quality::Premium, Some(1024 * 1024), 60_000),
            band(Quality::Premium, None, 80_000),
        ],
        ..UnitPrices::default()
    }
}

#[test]
fn images_are_priced_by_quality_and_size_band() {
    let prices = canvas();
    let images = |n, image_quality, image_pixels| Units {
        images: n,
        image_quality,
        image_pixels,
        ..Units::default()
    };
    let cost = |u: Units| price_units(&u, Some(&prices), &GuardrailRates::default());
    // Two standard 1024×1024 images: $0.04 each.
    assert_eq!(
        cost(images(2, Quality::Standard, 1024 * 1024)).cost.image,
        2 * 40_000 * 1_000_000
    );
    // One pixel over the band: the larger price.
    assert_eq!(
        cost(images(1, Quality::Standard, 1024 * 1024 + 1))
            .cost
            .image,
        60_000 * 1_000_000
    );
    assert_eq!(
        cost(images(3, Quality::Premium, 2048 * 2048)).cost.image,
        3 * 80_000 * 1_000_000
    );
    // No size in the request: the smallest band.
    assert_eq!(
        cost(images(1, Quality::Premium, 0)).cost.image,
        60_000 * 1_000_000
    );
    // A quality the model has no price for is unpriced, never $0 by accident.
    let flat = UnitPrices {
        images: vec![ImageBand {
            quality: Quality::Standard,
            max_pixels: None,
            price: 80_000,
        }],
        ..UnitPrices::default()
    };
    let q = price_units(
        &images(1, Quality::Premium, 0),
        Some(&flat),
        &GuardrailRates::default(),
    );
    assert!(q.unpriced);
    assert_eq!(q.cost.total(), 0);
    let q = price_units(
        &images(1, Quality::Standard, 0),
        None,
        &GuardrailRates::default(),
    );
    assert!(q.unpriced);
}

#[test]
fn video_rerank_and_guardrails() {
    let prices = UnitPrices {
        video_second: Some(80_000),
        search_unit: Some(2_000),
        ..UnitPrices::default()
    };
    let mut rates = GuardrailRates::default();
    rates.0[Policy::Content as usize] = Some(150_000);
    rates.0[Policy::SensitiveInformation as usize] = Some(100_000);
    rates.0[Policy::Word as usize] = Some(0);
    let mut guardrail = PolicyUnits::default();
    guardrail.set(Policy::Content, 3);
    guardrail.set(Policy::SensitiveInformation, 2);
    guardrail.set(Policy::Word, 3);
    let units = Units {
        video_seconds: 6,
        search_units: 5,
        guardrail,
        ..Units::default()
    };
    let q = price_units(&units, Some(&prices), &rates);
    assert!(!q.unpriced);
    assert_eq!(q.cost.video, 6 * 80_000 * 1_000_000);
    assert_eq!(q.cost.rerank, 5 * 2_000 * 1_000_000);
    // $0.15 and $0.10 per 1,000 units: 3 × 150 + 2 × 100 micro-dollars.
    assert_eq!(q.cost.guardrail, (3 * 150 + 2 * 100) * 1_000_000);
    assert_eq!(
        units.counts(),
        [
            (Unit::Image, 0),
            (Unit::VideoSecond, 6),
            (Unit::SearchUnit, 5),
            (Unit::GuardrailTextUnit, 8),
            (Unit::GuardrailImage, 0),
            (Unit::SpeechInputToken, 0),
            (Unit::SpeechOutputToken, 0),
        ]
    );
    // A policy the card has no rate for is unpriced.
    let mut arp = PolicyUnits::default();
    arp.set(Policy::AutomatedReasoning, 1);
    let q = price_units(
        &Units {
            guardrail: arp,
            ..Units::default()
        },
        None,
        &rates,
    );
    assert!(q.unpriced);
}

#[test]
fn later_units_add_and_name_the_size() {
    let asked = Units {
        image_quality: Quality::Premium,
        image_pixels: 4096,
        ..Units::default()
    };
    let answered = Units {
        images: 2,
        ..Units::default()
    };
    let both = asked.and(answered);
    assert_eq!(
        (both.images, both.image_quality, both.image_pixels),
        (2, Quality::Premium, 4096)
    );
    assert!(Units::default().is_empty() && !both.is_empty());
}

/// Speech tokens are priced per 1M like token rates: micro-dollars per 1M tokens are
/// pico-dollars per token. A speech price the card lacks leaves the call unpriced, never $0.
#[test]
fn speech_tokens_per_million() {
    let units = Units {
        speech_input_tokens: 1_200,
        speech_output_tokens: 800,
        ..Units::default()
    };
    let sonic = UnitPrices {
        speech_input: Some(3_000_000),
        speech_output: Some(12_000_000),
        ..UnitPrices::default()
    };
    let q = price_units(&units, Some(&sonic), &GuardrailRates::default());
    assert_eq!(q.cost.speech_input, 1_200 * 3_000_000);
    assert_eq!(q.cost.speech_output, 800 * 12_000_000);
    assert_eq!(q.cost.total(), 1_200 * 3_000_000 + 800 * 12_000_000);
    assert_eq!(q.priced, 16 | 32);
    assert!(!q.unpriced);
    let half = UnitPrices {
        speech_input: Some(3_000_000),
        ..UnitPrices::default()
    };
    let q = price_units(&units, Some(&half), &GuardrailRates::default());
    assert!(q.unpriced);
    assert_eq!(q.cost.speech_output, 0);
    assert_eq!(
        units.counts()[5..],
        [
            (Unit::SpeechInputToken, 1_200),
            (Unit::SpeechOutputToken, 800)
        ]
    );
}

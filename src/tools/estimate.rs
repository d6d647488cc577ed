//! `bedrock-meter estimate`: what a call would cost before it is made. Input tokens are
//! estimated as characters ÷ 4 (rounded up), the rule of thumb for English text; output is
//! taken at the call's `maxTokens`, so the figure is an upper bound for output. Calls billed
//! per unit are priced from the units given: images (by quality and size), seconds of video,
//! search units.

use std::fmt::Write as _;

use crate::cli::EstimateArgs;
use crate::money::usd_trimmed;
use std::time::SystemTime;

use crate::pricing::billing_units::{UnitCost, Units, price_units};
use crate::pricing::{Call, Cost, RateCard, Usage};

/// Characters per token in the estimate.
pub const CHARS_PER_TOKEN: u64 = 4;

#[derive(Debug, PartialEq, Eq)]
pub struct Estimate {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Per call, pico-dollars.
    pub input_pico: u64,
    pub output_pico: u64,
    /// Per call, pico-dollars: images, video and search units.
    pub units_pico: UnitCost,
    pub calls: u64,
}

impl Estimate {
    pub fn per_call(&self) -> u64 {
        self.input_pico
            .saturating_add(self.output_pico)
            .saturating_add(self.units_pico.total())
    }

    pub fn total(&self) -> u64 {
        self.per_call().saturating_mul(self.calls)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EstimateError {
    #[error("{0} is not in the rate card")]
    Unpriced(String),
    #[error("{0} is billed by time (provisioned throughput or reserved tier), not per token")]
    NoTokenPrice(String),
    #[error(
        "{0} has no price in the rate card for the units given (see `per_image`, `per_video_second`, `per_search_unit` in docs/rate-card.md)"
    )]
    NoUnitPrice(String),
}

pub fn estimate(card: &RateCard, args: &EstimateArgs) -> Result<Estimate, EstimateError> {
    let resolved = card
        .resolve(&Call {
            model_id: &args.model,
            region: args.region.as_deref(),
            latency_optimized: false,
            at: SystemTime::now(),
        })
        .ok_or_else(|| EstimateError::Unpriced(args.model.clone()))?;
    let input_tokens = args.input_chars.div_ceil(CHARS_PER_TOKEN);
    let output_tokens = args.output_tokens.unwrap_or(0);
    let usage = Usage {
        input: input_tokens,
        output: output_tokens,
        ..Usage::default()
    };
    let entry = resolved.model();
    let cost = if entry.per_token {
        resolved
            .quote(&usage, args.tier.unwrap_or_default())
            .cost
            .ok_or_else(|| EstimateError::NoTokenPrice(args.model.clone()))?
    } else {
        Cost::default()
    };
    let units = Units {
        images: args.images,
        image_quality: args.quality,
        image_pixels: args.size.unwrap_or(1024 * 1024),
        video_seconds: args.video_seconds,
        search_units: args.search_units,
        ..Units::default()
    };
    let quote = price_units(&units, Some(&entry.units), card.guardrail_rates());
    if quote.unpriced {
        return Err(EstimateError::NoUnitPrice(args.model.clone()));
    }
    Ok(Estimate {
        input_tokens,
        output_tokens,
        input_pico: cost.input,
        output_pico: cost.output,
        units_pico: quote.cost,
        calls: args.calls,
    })
}

/// The estimate as people read it.
pub fn render(card: &RateCard, args: &EstimateArgs, e: &Estimate) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "model    {}  (rate card {})", args.model, card.version);
    let _ = writeln!(
        out,
        "input    {} tokens ({} characters / {CHARS_PER_TOKEN})  ${}",
        e.input_tokens,
        args.input_chars,
        usd_trimmed(e.input_pico)
    );
    match args.output_tokens {
        Some(_) => {
            let _ = writeln!(
                out,
                "output   {} tokens (at most)  ${}",
                e.output_tokens,
                usd_trimmed(e.output_pico)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "output   not estimated: pass --output-tokens (the call's maxTokens) for the upper bound"
            );
        }
    }
    for (what, count, pico) in [
        ("images", args.images, e.units_pico.image),
        ("video", args.video_seconds, e.units_pico.video),
        ("rerank", args.search_units, e.units_pico.rerank),
    ] {
        if count > 0 {
            let unit = match what {
                "images" => format!("{count} {} images", args.quality.as_str()),
                "video" => format!("{count} seconds"),
                _ => format!("{count} search units"),
            };
            let _ = writeln!(out, "{what:<8} {unit}  ${}", usd_trimmed(pico));
        }
    }
    let _ = writeln!(out, "per call ${}", usd_trimmed(e.per_call()));
    if e.calls != 1 {
        let _ = writeln!(out, "{} calls ${}", e.calls, usd_trimmed(e.total()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "version = \"t\"\n[[model]]\nid = \"amazon.nova-micro-v1:0\"\ninput = 0.035\noutput = 0.14\ncache_read = 0.00875\ncache_write = 0.035\n";

    fn args(model: &str, chars: u64, out: Option<u64>, calls: u64) -> EstimateArgs {
        EstimateArgs {
            model: model.into(),
            input_chars: chars,
            output_tokens: out,
            calls,
            region: None,
            tier: None,
            images: 0,
            quality: Default::default(),
            size: None,
            video_seconds: 0,
            search_units: 0,
            rates: "unused".into(),
        }
    }

    #[test]
    fn follows_the_formula() {
        let card = RateCard::parse(CARD, "c").unwrap().card;
        // 10,001 characters → 2,501 tokens × $0.035/1M; 1,000 × $0.14/1M.
        let a = args("us.amazon.nova-micro-v1:0", 10_001, Some(1_000), 3);
        let e = estimate(&card, &a).unwrap();
        assert_eq!((e.input_tokens, e.output_tokens), (2_501, 1_000));
        assert_eq!(e.input_pico, 2_501 * 35_000);
        assert_eq!(e.output_pico, 1_000 * 140_000);
        assert_eq!(e.total(), 3 * (2_501 * 35_000 + 1_000 * 140_000));
        let text = render(&card, &a, &e);
        assert!(text.contains("per call $0.000227535\n"), "{text}");
        assert!(text.contains("3 calls $0.000682605\n"), "{text}");
        assert!(matches!(
            estimate(&card, &args("nope", 1, None, 1)),
            Err(EstimateError::Unpriced(_))
        ));
    }

    /// Without `--output-tokens` only the input is priced (the help, docs/cli.md and the code
    /// say the same), and the output line says so.
    #[test]
    fn without_output_tokens_only_the_input_is_estimated() {
        let card = RateCard::parse(CARD, "c").unwrap().card;
        let a = args("amazon.nova-micro-v1:0", 4_000, None, 1);
        let e = estimate(&card, &a).unwrap();
        assert_eq!((e.input_tokens, e.output_tokens), (1_000, 0));
        assert_eq!(e.output_pico, 0);
        assert_eq!(e.per_call(), 1_000 * 35_000);
        let text = render(&card, &a, &e);
        assert!(
            text.contains("output   not estimated: pass --output-tokens"),
            "{text}"
        );
        assert!(text.contains("per call $0.000035\n"), "{text}");
        // The help says the same as the code.
        let help = <crate::cli::Cli as clap::CommandFactory>::command()
            .find_subcommand_mut("estimate")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains("[default: 0, only the input is estimated]"),
            "{help}"
        );
    }

    #[test]
    fn images_are_priced_by_band() {
        let card = RateCard::parse(
            "version = \"t\"\n[[model]]\nid = \"amazon.nova-canvas-v1:0\"\nper_image = [{ max_pixels = 1048576, usd = 0.04 }, { usd = 0.06 }, { quality = \"premium\", usd = 0.08 }]\n",
            "c",
        )
        .unwrap()
        .card;
        let mut a = args("amazon.nova-canvas-v1:0", 0, None, 10);
        a.images = 4;
        a.quality = crate::pricing::billing_units::Quality::Premium;
        a.size = Some(2048 * 2048);
        let e = estimate(&card, &a).unwrap();
        assert_eq!(e.units_pico.image, 4 * 80_000 * 1_000_000);
        assert_eq!(e.total(), 10 * 4 * 80_000 * 1_000_000);
        let text = render(&card, &a, &e);
        assert!(
            text.contains("images   4 premium images  $0.32\n"),
            "{text}"
        );
        assert!(text.contains("10 calls $3.2\n"), "{text}");
        // Standard, default size: the first band.
        a.quality = crate::pricing::billing_units::Quality::Standard;
        a.size = None;
        assert_eq!(
            estimate(&card, &a).unwrap().units_pico.image,
            4 * 40_000 * 1_000_000
        );
        // Video on an image model: no price, refused.
        a.video_seconds = 6;
        assert!(matches!(
            estimate(&card, &a),
            Err(EstimateError::NoUnitPrice(_))
        ));
    }
}

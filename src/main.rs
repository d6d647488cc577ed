//! The `bedrock-meter` binary: parses the command line, loads and validates configuration, and
//! starts the chosen job. The only place that chooses an exit code.

use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region};
use clap::Parser;

use bedrock_meter::cli::{Cli, Command, EstimateArgs, LogFormat, RatesCommand, ServeArgs};
use bedrock_meter::pricing::RateCard;
use bedrock_meter::proxy::forward::upstream::Upstream;
use bedrock_meter::proxy::identify::Keys;
use bedrock_meter::server::{self, ProxyConfig};
use bedrock_meter::simulator;
use bedrock_meter::tools::demo;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BEDROCK_METER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Simulate { listen } => match simulator::run(listen).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("simulator: {e}")),
            },
            Command::Demo(args) => match demo::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("demo: {e}")),
            },
            Command::Estimate(args) => estimate(&args),
            Command::Report { ledger, args } => report(&ledger, &args),
            Command::Rates {
                command: RatesCommand::Check { file },
            } => rates_check(&file),
            Command::Rates {
                command:
                    RatesCommand::Import {
                        source,
                        card,
                        output,
                    },
            } => rates_import(&source, &card, output.as_deref()),
        }
    })
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Exit 2: the configuration is wrong, nothing was started.
fn config_error(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn report(ledger: &std::path::Path, args: &bedrock_meter::tools::report::ReportArgs) -> ExitCode {
    use bedrock_meter::tools::report;
    let result = report::open(ledger).and_then(|input| {
        report::run(
            input,
            args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_usage() => config_error(e.to_string()),
        Err(e) => fail(e.to_string()),
    }
}

fn estimate(args: &EstimateArgs) -> ExitCode {
    let card = match RateCard::load(&args.rates) {
        Ok(l) => l.card,
        Err(e) => return config_error(format!("rate card rejected:\n{e}")),
    };
    match bedrock_meter::tools::estimate::estimate(&card, args) {
        Ok(e) => {
            print!(
                "{}",
                bedrock_meter::tools::estimate::render(&card, args, &e)
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}

fn rates_import(
    source: &std::path::Path,
    card: &std::path::Path,
    output: Option<&std::path::Path>,
) -> ExitCode {
    let current = match RateCard::load(card) {
        Ok(l) => l.card,
        Err(e) => return config_error(format!("rate card rejected:\n{e}")),
    };
    let json = match std::fs::read_to_string(source) {
        Ok(j) => j,
        Err(e) => return config_error(format!("cannot read {}: {e}", source.display())),
    };
    let report = match bedrock_meter::tools::import::import_litellm(&json, &current) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    print!("{report}");
    if let Some(out) = output {
        if let Err(e) = std::fs::write(out, report.proposed_toml()) {
            return fail(format!("cannot write {}: {e}", out.display()));
        }
        eprintln!("proposed card written to {}", out.display());
    }
    ExitCode::SUCCESS
}

fn rates_check(file: &std::path::Path) -> ExitCode {
    match RateCard::load(file) {
        Ok(loaded) => {
            let mut warnings = loaded.warnings;
            warnings.extend(loaded.card.age_warnings(std::time::SystemTime::now()));
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: ok, version {}, {} models, {} warnings",
                file.display(),
                loaded.card.version,
                loaded.card.len(),
                warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() && !args.allow_open && args.keys.is_none() {
        return config_error(format!(
            "refusing to serve open mode on {}: anyone who can reach this address could call \
             Bedrock with this proxy's AWS credentials. Listen on a loopback address, or pass \
             --allow-open (BEDROCK_METER_ALLOW_OPEN=true) when a network policy already limits \
             who can reach it, or give each app a virtual key with --keys FILE.",
            args.listen
        ));
    }
    let loaded = match RateCard::load(&args.rates) {
        Ok(l) => l,
        Err(e) => return config_error(format!("rate card rejected:\n{e}")),
    };
    for w in &loaded.warnings {
        tracing::warn!("rate card: {w}");
    }
    let keys = match &args.keys {
        None => None,
        Some(path) => match Keys::load(path) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!("keys: {w}");
                }
                let homeless = loaded.keys.bearer_apps_without_region();
                if args.region.is_none() && !homeless.is_empty() {
                    return config_error(format!(
                        "bearer-token requests carry no AWS Region: give the keys of {} a \
                         `region`, or start bedrock-meter with --region",
                        homeless.join(", ")
                    ));
                }
                Some(loaded.keys)
            }
            Err(e) => return config_error(format!("keys file rejected:\n{e}")),
        },
    };
    let upstream = match Upstream::parse(args.upstream.as_deref()) {
        Ok(u) => u,
        Err(e) => return config_error(e.to_string()),
    };
    if let Some(region) = &args.region
        && !bedrock_meter::names::valid_region(region)
    {
        return config_error(format!("--region {region:?} is not an AWS Region id"));
    }
    // The loader's region only steers credential providers (STS for web identity, SSO); an
    // explicit one also keeps it from probing the instance metadata service at start-up.
    let sdk_config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(
            args.region
                .clone()
                .unwrap_or_else(|| "us-east-1".to_owned()),
        ))
        .load()
        .await;
    let Some(credentials) = sdk_config.credentials_provider() else {
        return config_error("no AWS credential provider could be configured".into());
    };

    let mut config = ProxyConfig::new(loaded.card, credentials, upstream);
    config.rates_path = Some(args.rates);
    config.ledger = args
        .ledger
        .as_deref()
        .map(bedrock_meter::meter::ledger::Target::parse);
    config.ledger_queue = args.ledger_queue;
    config.cost_header = args.cost_header;
    config.keys = keys;
    config.keys_path = args.keys;
    config.listen = args.listen;
    config.admin_listen = args.admin_listen;
    config.region = args.region;
    config.max_body = args.max_body;
    config.max_buffered = args.max_buffered_bytes;
    config.max_apps = args.max_apps;
    config.max_models = args.max_models;
    config.connect_timeout = args.connect_timeout;
    config.upstream_timeout = args.upstream_timeout;
    config.upstream_idle_timeout = args.upstream_idle_timeout;
    config.client_header_timeout = args.client_header_timeout;
    config.client_body_timeout = args.client_body_timeout;
    config.abandoned_grace = args.abandoned_grace;
    config.drain_timeout = args.drain_timeout;
    config.max_in_flight = args.max_in_flight;
    let running = match server::start(config).await {
        Ok(r) => r,
        Err(e) => return config_error(e.to_string()),
    };
    eprintln!(
        "bedrock-meter: proxy on {}, metrics on {}/metrics",
        running.url(),
        running.admin_url()
    );
    shutdown_signal().await;
    eprintln!(
        "bedrock-meter: shutting down (unready now; draining up to {:?})",
        args.shutdown_delay + args.drain_timeout
    );
    running.shutdown_after(args.shutdown_delay).await;
    eprintln!("bedrock-meter: stopped");
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

//! The `bedrock-meter` binary: parses the command line, loads and validates configuration, and
//! starts the chosen job. The only place that chooses an exit code.

use std::process::ExitCode;

use clap::Parser;

use bedrock_meter::cli::{Cli, Command, EstimateArgs, LogFormat, RatesCommand, ServeArgs};
use bedrock_meter::config::ServeConfig;
use bedrock_meter::pricing::RateCard;
use bedrock_meter::server;
#[cfg(feature = "simulator")]
use bedrock_meter::{simulator, tools::demo};

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
            #[cfg(feature = "simulator")]
            Command::Simulate { listen } => match simulator::run(listen).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("simulator: {e}")),
            },
            #[cfg(feature = "simulator")]
            Command::Demo(args) => match demo::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("demo: {e}")),
            },
            Command::Estimate(args) => estimate(&args),
            Command::Report { ledger, args } => report(&ledger, &args),
            Command::Advise { ledger, args } => advise(&ledger, &args),
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

fn advise(ledger: &std::path::Path, args: &bedrock_meter::tools::advise::AdviseArgs) -> ExitCode {
    use bedrock_meter::tools::{advise, report};
    let card = match RateCard::load(&args.rates) {
        Ok(l) => l.card,
        Err(e) => return config_error(format!("rate card rejected:\n{e}")),
    };
    let result = report::open(ledger).and_then(|input| {
        advise::run(
            input,
            args,
            &card,
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
    let serve = match ServeConfig::try_from(args) {
        Ok(c) => c,
        Err(e) => return config_error(e.to_string()),
    };
    for w in &serve.warnings {
        tracing::warn!("{w}");
    }
    let drain = serve.proxy.drain_timeout;
    let running = match server::start(serve.proxy).await {
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
        serve.shutdown_delay + drain
    );
    running.shutdown_after(serve.shutdown_delay).await;
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

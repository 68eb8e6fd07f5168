//! The `simpul` binary: `serve` (default), `check`, `token` and `schema`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc: the executor allocates per field and per row; measured in docs/benchmarks.md.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "simpul",
    version,
    about = "One live, cached GraphQL API over every OPD data source"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the deployment in DIR (the default command).
    Serve(ServeArgs),
    /// Report every problem in the deployment in DIR as FILE:LINE:COL, each binding checked
    /// against what its source returns; exit 1 if any, or if a source cannot be reached.
    Check(CheckArgs),
    /// Print an HS256 token signed with SIMPUL_JWT_SECRET, for staff tools and tests.
    Token(TokenArgs),
    /// Print the JSON Schema of a connector file or of simpul.toml, for editors.
    Schema {
        #[arg(value_enum)]
        of: SchemaOf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaOf {
    /// connectors/NAME.toml
    Connector,
    /// simpul.toml
    Gateway,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Deployment directory (schema.graphql, connectors/, simpul.toml).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Accept sources that cannot be reached (their bindings are then not checked).
    #[arg(long)]
    offline: bool,
    /// Print how one field is resolved (connector, statement, parameters, batch key, cache
    /// policy, who sees it) instead of checking, e.g. `--explain Region.villages`.
    #[arg(long, value_name = "TYPE.FIELD")]
    explain: Option<String>,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// What the token may read (any case: `internal`, `INTERNAL`).
    #[arg(long, value_enum, ignore_case = true)]
    tier: TierArg,
    /// The OPD a restricted token belongs to, e.g. dinsos.
    #[arg(long, required_if_eq("tier", "restricted"))]
    opd: Option<String>,
    /// Who the token names (`sub`), e.g. a person or a service.
    #[arg(long)]
    sub: Option<String>,
    /// How long the token is valid, e.g. 15m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// Deployment directory: its simpul.toml `[auth]` gives `issuer` and `audience`.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TierArg {
    Public,
    Internal,
    Restricted,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    simpul::config::duration::parse(text)
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Deployment directory (schema.graphql, connectors/, simpul.toml).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Address to listen on [default: simpul.toml `listen`, else 127.0.0.1:4000].
    #[arg(long, env = "SIMPUL_LISTEN")]
    listen: Option<String>,
}

fn main() -> ExitCode {
    simpul::install_crypto();
    let cli = Cli::parse();
    let dir = match &cli.command {
        Some(Command::Serve(a)) => a.dir.as_path(),
        Some(Command::Check(a)) => a.dir.as_path(),
        _ => std::path::Path::new("."),
    };
    let env = |name: &str| std::env::var(name).ok();
    // Only a server exports traces; `check` and the others only log.
    let telemetry = match &cli.command {
        Some(Command::Serve(_)) | None => simpul::config::telemetry::Telemetry::of(dir, &env),
        _ => None,
    };
    let tracer = start_logging(
        simpul::config::log::LogFormat::of(dir, env("SIMPUL_LOG_FORMAT")),
        telemetry.as_ref(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Check(args)) => check(args).await,
            Some(Command::Serve(args)) => serve(args).await,
            Some(Command::Token(args)) => Ok(token(args)),
            Some(Command::Schema { of }) => {
                let schema = match of {
                    SchemaOf::Connector => simpul::config::schema::connector(),
                    SchemaOf::Gateway => simpul::config::schema::gateway(),
                };
                print!("{}", simpul::config::schema::text(&schema));
                Ok(ExitCode::SUCCESS)
            }
            None => {
                serve(ServeArgs {
                    dir: ".".into(),
                    listen: std::env::var("SIMPUL_LISTEN").ok(),
                })
                .await
            }
        }
    });
    // Outside the runtime: the exporter's client blocks while it sends what is buffered.
    drop(runtime);
    if let Some(tracer) = tracer {
        tracer.shutdown();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The log on stderr, filtered by `RUST_LOG` (default `info,sqlx=warn`; each request's line
/// is `simpul::access=debug`). In JSON, an event inside a request carries the request's
/// span (its `request_id`, and `trace_id` when there is one). With `telemetry`, spans are
/// also exported over OTLP: the request spans and those of `simpul::trace` (GraphQL phases,
/// connector calls), which the log leaves out (they are never built without a tracer).
fn start_logging(
    format: simpul::config::log::LogFormat,
    telemetry: Option<&simpul::config::telemetry::Telemetry>,
) -> Option<simpul::telemetry::Tracer> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    if let Ok(off) = format!("{}=off", simpul::telemetry::TARGET).parse() {
        filter = filter.add_directive(off);
    }
    let tracer = telemetry.and_then(|t| match simpul::telemetry::Tracer::start(t) {
        Ok(tracer) => Some(tracer),
        Err(e) => {
            eprintln!("error: {e}; traces are not exported");
            None
        }
    });
    let traces = tracer.as_ref().map(|t| {
        t.layer().with_filter(
            tracing_subscriber::filter::Targets::new().with_target("simpul", tracing::Level::INFO),
        )
    });
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(traces);
    match format {
        simpul::config::log::LogFormat::Text => registry.with(fmt.with_filter(filter)).init(),
        simpul::config::log::LogFormat::Json => registry
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_filter(filter),
            )
            .init(),
    }
    tracer
}

async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if let Some(target) = &args.explain {
        return match simpul::check::explain(&args.dir, target).await {
            Ok(text) => {
                print!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(2))
            }
        };
    }
    let report = simpul::check::check_dir(&args.dir, true).await;
    for d in &report.problems {
        println!("{d}");
    }
    for d in &report.unreachable {
        println!("{d}");
    }
    let unreachable = report.unreachable.len();
    let failing = report.problems.len() + if args.offline { 0 } else { unreachable };
    if failing == 0 && unreachable == 0 {
        println!("ok: {} has no problems", args.dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    if failing == 0 {
        println!(
            "ok (--offline): no problems; {unreachable} source{} not reached, {} not checked",
            if unreachable == 1 { "" } else { "s" },
            if unreachable == 1 {
                "its bindings"
            } else {
                "their bindings"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} problem{} found{}",
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" },
        match unreachable {
            0 => String::new(),
            n => format!(
                ", {n} source{} not reached (`--offline` accepts that)",
                if n == 1 { "" } else { "s" }
            ),
        }
    );
    Ok(ExitCode::from(1))
}

/// Exit 2, as for any other bad argument, when the secret or the arguments cannot make a
/// token the gateway would accept.
fn token(args: TokenArgs) -> ExitCode {
    let usage = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    };
    let Some(secret) = std::env::var("SIMPUL_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return usage(
            "set SIMPUL_JWT_SECRET to the secret the gateway's [auth] jwt_secret reads".into(),
        );
    };
    // Only `[auth]` is read; other problems of the deployment are `simpul check`'s.
    let mut ignored = Vec::new();
    let gateway =
        simpul::config::load_gateway(&args.dir, &simpul::config::env::process_env, &mut ignored);
    let tier = match args.tier {
        TierArg::Public => simpul::access::Tier::Public,
        TierArg::Internal => simpul::access::Tier::Internal,
        TierArg::Restricted => simpul::access::Tier::Restricted,
    };
    match simpul::auth::mint(
        &secret,
        tier,
        args.opd.as_deref(),
        args.sub.as_deref(),
        args.ttl,
        gateway.auth.issuer.as_deref(),
        gateway.auth.audience.as_deref(),
    ) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => usage(e),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let blueprint = match simpul::compile::compile_dir(&args.dir) {
        Ok(bp) => bp,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            anyhow::bail!(
                "{} problem(s) in {}; not starting (run `simpul check`)",
                diags.len(),
                args.dir.display()
            );
        }
    };
    let listen = args
        .listen
        .or_else(|| blueprint.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:4000".into());
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("invalid listen address '{listen}'"))?;
    let state = simpul::server::AppState::start(blueprint, &args.dir)
        .await
        .map_err(anyhow::Error::msg)?;
    // What `simpul check` refuses, serve refuses; a source that cannot be reached starts
    // DOWN instead (it may come up later), and its bindings are checked by `check` then.
    let report = simpul::check::verify(&state.engine.blueprint, &state.engine.sources, false).await;
    if !report.problems.is_empty() {
        for d in &report.problems {
            eprintln!("{d}");
        }
        anyhow::bail!(
            "{} problem(s) in {}; not starting (run `simpul check`)",
            report.problems.len(),
            args.dir.display()
        );
    }
    // Unreachable sources were logged and marked DOWN when the state started.
    let env: simpul::server::reload::Env = Arc::new(simpul::config::env::process_env);
    let gateway = simpul::server::reload::Gateway::new(state, &args.dir, env);
    simpul::server::serve(gateway, addr)
        .await
        .with_context(|| format!("serving on {addr}"))?;
    Ok(ExitCode::SUCCESS)
}

//! The `simpul` binary: `serve` (default) and `check`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Report every problem in the deployment in DIR as FILE:LINE:COL; exit 1 if any.
    Check {
        /// Deployment directory (schema.graphql, connectors/, simpul.toml).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
            Some(Command::Check { dir }) => check(dir).await,
            Some(Command::Serve(args)) => serve(args).await,
            None => {
                serve(ServeArgs {
                    dir: ".".into(),
                    listen: std::env::var("SIMPUL_LISTEN").ok(),
                })
                .await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn check(dir: PathBuf) -> anyhow::Result<ExitCode> {
    let diags = simpul::check::check(&dir).await;
    for d in &diags {
        println!("{d}");
    }
    if diags.is_empty() {
        println!("ok: {} has no problems", dir.display());
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} problem{} found",
            diags.len(),
            if diags.len() == 1 { "" } else { "s" }
        );
        Ok(ExitCode::from(1))
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
    simpul::server::serve(state, addr)
        .await
        .with_context(|| format!("serving on {addr}"))?;
    Ok(ExitCode::SUCCESS)
}

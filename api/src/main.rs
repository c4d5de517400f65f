//! The `sluice` binary: `serve`, `migrate` and the `admin` CLI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice::config::Settings;
use sluice::startup::Application;
use sluice::{cli, telemetry};

/// jemalloc, for librdkafka's C allocations too, and with background
/// threads: glibc's malloc kept the peak of a burst (argon2's 19 MiB
/// blocks on many blocking threads, produce bodies, librdkafka's queues)
/// long after it, hundreds of MiB on an idle node. jemalloc's background
/// threads purge freed pages after its decay time, idle or not.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Multi-tenant HTTPS queue service in front of Kafka"
)]
struct Cli {
    /// TOML configuration file; SLUICE_* environment variables override it
    #[arg(long, env = "SLUICE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service
    Serve,
    /// Apply the database migrations
    Migrate,
    /// Operator CLI for the admin API
    Admin(Box<cli::AdminArgs>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    let config = args.config.as_deref();
    match args.command {
        Command::Admin(admin) => cli::run(*admin, config).await,
        Command::Serve => {
            let code = report(serve(config).await);
            // Everything that matters is done: requests drained, producer
            // flushed, cursors committed in Postgres. Leave now rather than
            // run librdkafka's destructors against threads still winding down.
            std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
        }
        Command::Migrate => report(migrate(config).await),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sluice: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    telemetry::init(&settings.log);
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    telemetry::init(&settings.log);
    let store = tenancy::Store::connect(&settings.store_options()).await?;
    store.migrate().await?;
    tracing::info!("migrations applied");
    Ok(())
}

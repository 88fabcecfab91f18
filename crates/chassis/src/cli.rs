//! One command line for every service, built with clap derive: `<service> [serve]` runs it
//! until SIGTERM or Ctrl-C, `<service> migrate` applies migrations and exits, and a service
//! adds its own subcommands as a `clap::Subcommand` enum (`NoCommands` when it has none).

use crate::runtime::{Service, migrate};
use crate::settings::CommonSettings;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use diesel_migrations::EmbeddedMigrations;
use messaging::{ConsumerOptions, Participant};
use platform::settings::SettingsError;
use std::future::Future;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
pub struct Cli<C: Subcommand> {
    #[command(subcommand)]
    pub command: Option<Command<C>>,
}

#[derive(Debug, Subcommand)]
pub enum Command<C: Subcommand> {
    /// Run the service (the default)
    Serve,
    /// Apply pending database migrations and exit
    Migrate,
    #[command(flatten)]
    Own(C),
}

/// The own subcommands of a service that has none.
#[derive(Debug, Subcommand)]
pub enum NoCommands {}

impl<C: Subcommand> Cli<C> {
    /// Parses the process's arguments under the service's name, description and version.
    pub fn parse_for(name: &'static str, about: &'static str) -> Self {
        let matches =
            Self::command().name(name).about(about).version(env!("CARGO_PKG_VERSION")).get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }
}

/// What the chassis needs to know of a service to run it.
pub struct ServiceSpec<S> {
    pub bus: Participant,
    /// One line for `--help`.
    pub about: &'static str,
    pub migrations: EmbeddedMigrations,
    pub load: fn() -> Result<S, SettingsError>,
    pub common: fn(&S) -> &CommonSettings,
}

/// The `main` of a service without commands of its own.
pub async fn main<S, Fut>(
    spec: ServiceSpec<S>,
    build: impl FnOnce(S, ConsumerOptions, CancellationToken) -> Fut,
) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<Service>>,
{
    main_with(spec, build, async |command: NoCommands| match command {}).await
}

/// The `main` of every service: parses the command line; `serve` (or nothing) builds the
/// service and runs it until stopped, `migrate` migrates, and the service's own commands go
/// to `own` (which loads what it needs itself).
pub async fn main_with<S, C, Fut>(
    spec: ServiceSpec<S>,
    build: impl FnOnce(S, ConsumerOptions, CancellationToken) -> Fut,
    own: impl AsyncFnOnce(C) -> anyhow::Result<()>,
) -> anyhow::Result<()>
where
    C: Subcommand,
    Fut: Future<Output = anyhow::Result<Service>>,
{
    let service = spec.bus.service;
    let command = Cli::<C>::parse_for(service, spec.about).command.unwrap_or(Command::Serve);
    if let Command::Own(command) = command {
        return own(command).await;
    }
    let settings = (spec.load)()?;
    let common = (spec.common)(&settings);
    if let Command::Migrate = command {
        platform::telemetry::init(common.log_format, "info");
        return migrate(service, common, spec.migrations).await;
    }
    let endpoint = std::env::var(platform::telemetry::OTLP_ENDPOINT_VAR).ok();
    platform::telemetry::init_with(common.log_format, "info", service, endpoint.as_deref());
    let cancel = platform::shutdown::on_signal();
    let outcome = build(settings, ConsumerOptions::new(service), cancel).await?.run_until_stopped().await;
    let _ = tokio::task::spawn_blocking(platform::telemetry::shutdown).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Subcommand, PartialEq)]
    enum Own {
        /// Something of the service's own
        RetryFailed {
            #[arg(long)]
            limit: Option<u32>,
        },
    }

    fn parse<C: Subcommand>(args: &[&str]) -> Result<Option<Command<C>>, clap::Error> {
        let matches = Cli::<C>::command().name("svc").try_get_matches_from(args)?;
        Ok(Cli::<C>::from_arg_matches(&matches)?.command)
    }

    #[test]
    fn every_service_reads_serve_migrate_and_its_own_commands() {
        assert!(matches!(parse::<NoCommands>(&["svc"]), Ok(None)));
        assert!(matches!(parse::<NoCommands>(&["svc", "serve"]), Ok(Some(Command::Serve))));
        assert!(matches!(parse::<NoCommands>(&["svc", "migrate"]), Ok(Some(Command::Migrate))));
        assert!(parse::<NoCommands>(&["svc", "retry-failed"]).is_err(), "not this service's");
        match parse::<Own>(&["svc", "retry-failed", "--limit", "5"]) {
            Ok(Some(Command::Own(own))) => assert_eq!(own, Own::RetryFailed { limit: Some(5) }),
            other => panic!("{other:?}"),
        }
        assert!(parse::<Own>(&["svc", "retry-failed", "--limit", "x"]).is_err(), "a clear error");
    }
}

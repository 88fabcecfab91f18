use crate::callbacks::Callbacks;
use crate::handlers::PaymentRequests;
use crate::http;
use crate::lifecycle::Policy;
use crate::provider::Provider;
use crate::provider::simulated::{self, Simulated};
use crate::provider::stripe::Stripe;
use crate::settings::Settings;
use crate::sweeper::Sweeper;
use crate::worker::{Faults, Worker};
use chassis::{Runtime, Service};
use messaging::ConsumerOptions;
use platform::db::PgPool;
use platform::settings::Secret;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");

/// The provider, and the simulator again when it is the one (for its customer-action routes).
pub type Providers = (Arc<dyn Provider>, Option<Arc<Simulated>>);

/// The configured provider; the simulator is also returned for its customer-action routes.
pub fn provider(settings: &Settings, pool: &PgPool) -> anyhow::Result<Providers> {
    Ok(match settings.payment_provider.as_str() {
        "stripe" => {
            let stripe = Stripe::new(
                &settings.stripe_api_base,
                settings.stripe_api_key.clone(),
                Duration::from_millis(settings.stripe_timeout_ms),
                settings.stripe_max_retries,
            )?;
            (Arc::new(stripe), None)
        }
        // `validate` admits the simulator only when PAYMENT_SIMULATOR_ENABLED is set.
        _ => {
            let simulated = Arc::new(Simulated { pool: pool.clone() });
            (simulated.clone(), Some(simulated))
        }
    })
}

/// The secret callbacks are verified with. A real provider's is required (`validate`); the
/// simulator without one signs with a random secret of this process, so no well-known value can
/// forge its callbacks (its own customer actions are verified in the same process).
pub fn callback_secret(settings: &Settings) -> Secret {
    let configured = settings.payment_webhook_secret.expose().trim();
    if configured.is_empty() && settings.payment_provider == simulated::NAME {
        tracing::info!("PAYMENT_WEBHOOK_SECRET is not set: the simulator signs with a random secret");
        return Secret::new(format!("whsec_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()));
    }
    Secret::new(configured)
}

pub fn policy(settings: &Settings) -> Policy {
    let millis = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    Policy {
        grace_ms: millis(settings.payment_grace_period_ms),
        action_ms: millis(settings.payment_action_timeout_ms),
        recheck_ms: millis(settings.payment_recheck_interval_ms),
    }
}

/// The worker, as `build` runs it (tests build their own with faults armed).
pub fn worker(
    settings: &Settings,
    pool: PgPool,
    provider: Arc<dyn Provider>,
    faults: Faults,
) -> anyhow::Result<Worker> {
    Ok(Worker {
        pool,
        provider,
        policy: policy(settings),
        retry_delays: settings.retry_delays()?,
        lease: Duration::from_millis(settings.payment_lease_ms),
        wake: Arc::new(Notify::new()),
        faults,
    })
}

/// Migrates, connects, consumes `payment.inbox`, runs the worker and the expiry sweep, and
/// serves the payment routes.
pub async fn build(
    settings: Settings,
    consumer: ConsumerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<Service> {
    settings.validate()?;
    let mut runtime = Runtime::start(crate::BUS, &settings.common, MIGRATIONS, cancel.clone()).await?;
    // Workers use the runtime's pool; HTTP handlers (callbacks, views) the HTTP pool.
    let pool = runtime.pool.clone();
    let http_pool = runtime.http_pool.clone();
    let (provider, simulator) = provider(&settings, &pool)?;
    let worker = worker(&settings, pool.clone(), provider.clone(), Faults::default())?;
    runtime.consume(
        Arc::new(PaymentRequests { provider: provider.name(), wake: worker.wake.clone() }),
        consumer,
    )?;
    runtime.spawn(worker.runner(settings.worker()?).run(cancel.clone()));
    let sweeper = Sweeper {
        pool: pool.clone(),
        provider: provider.clone(),
        policy: policy(&settings),
        interval: Duration::from_millis(settings.payment_sweep_interval_ms),
    };
    runtime.spawn(sweeper.run(cancel));
    let callbacks = Callbacks {
        pool: http_pool.clone(),
        provider: provider.name(),
        secret: callback_secret(&settings),
        tolerance_seconds: settings.payment_callback_tolerance_seconds,
        policy: policy(&settings),
    };
    runtime.serve(&settings.common, move |cfg| {
        http::routes(cfg, http_pool.clone(), callbacks.clone(), simulator.clone())
    })
}

//! Logging and tracing set-up: `RUST_LOG` filters, `LOG_FORMAT=json` for machines, pretty for
//! people; OpenTelemetry spans exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set, and nothing of OpenTelemetry installed when it is not.

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    #[default]
    Pretty,
}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs logging only. Safe to call more than once (tests start several services in one
/// process): later calls keep the first subscriber.
pub fn init(format: LogFormat, default_filter: &str) {
    install(format, default_filter, None);
}

/// Installs logging and, when `otlp_endpoint` is given (an OTLP/HTTP base URL such as
/// `http://collector:4318`), span export in batches under `service_name`.
pub fn init_with(format: LogFormat, default_filter: &str, service_name: &str, otlp_endpoint: Option<&str>) {
    let provider = otlp_endpoint.filter(|e| !e.trim().is_empty()).and_then(|endpoint| {
        match otlp_provider(endpoint, service_name) {
            Ok(provider) => Some(provider),
            Err(error) => {
                eprintln!(
                    "OpenTelemetry export disabled: cannot build the OTLP exporter for {endpoint}: {error}"
                );
                None
            }
        }
    });
    install(format, default_filter, provider);
}

fn otlp_provider(endpoint: &str, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name.to_owned()).build())
        .build())
}

/// The subscriber: the log layer filtered by `RUST_LOG` (or `default_filter`), and with a
/// provider, an OpenTelemetry layer of its own that records `info` spans and above whatever the
/// log level. Returns whether this call installed it.
fn install(format: LogFormat, default_filter: &str, provider: Option<SdkTracerProvider>) -> bool {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().with_filter(filter).boxed(),
    };
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("orders")).with_filter(LevelFilter::INFO)
    });
    let installed = Registry::default().with(logs).with(spans).try_init().is_ok();
    if let Some(provider) = provider.filter(|_| installed) {
        crate::trace::enable();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        let _ = PROVIDER.set(provider);
    }
    installed
}

/// Exports what is buffered and stops the exporter; call once at exit (it blocks: from async
/// code, inside `spawn_blocking`). Does nothing when no exporter was installed.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        eprintln!("OpenTelemetry shutdown: {error}");
    }
}

/// Exports what is buffered now (tests call it before reading collected spans).
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
}

/// A finished span, as collected by [`SpanCollector`].
#[derive(Debug, Clone)]
pub struct FinishedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub attributes: Vec<(String, String)>,
}

impl FinishedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// An in-process exporter for tests: every finished span, kept in memory.
#[derive(Debug, Clone, Default)]
pub struct SpanCollector(Arc<Mutex<Vec<FinishedSpan>>>);

impl SpanCollector {
    /// Installs logging plus span collection for this process; `None` when a subscriber was
    /// already installed (collection would see nothing).
    pub fn install(format: LogFormat, default_filter: &str) -> Option<Self> {
        let collector = Self::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(collector.clone())
            .with_resource(Resource::builder().with_service_name("system-tests").build())
            .build();
        install(format, default_filter, Some(provider)).then_some(collector)
    }

    pub fn finished(&self) -> Vec<FinishedSpan> {
        self.0.lock().map(|spans| spans.clone()).unwrap_or_default()
    }
}

impl SpanExporter for SpanCollector {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let finished = batch.into_iter().map(|span| FinishedSpan {
            name: span.name.into_owned(),
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: span.parent_span_id.to_string(),
            attributes: span
                .attributes
                .iter()
                .map(|kv: &KeyValue| (kv.key.to_string(), kv.value.to_string()))
                .collect(),
        });
        if let Ok(mut spans) = self.0.lock() {
            spans.extend(finished);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_otlp_exporter_builds_and_shuts_down_inside_a_runtime() {
        let provider = otlp_provider("http://127.0.0.1:9/", "test");
        assert!(provider.is_ok(), "{:?}", provider.err());
        if let Ok(provider) = provider {
            let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            assert!(stopped.is_ok_and(|result| result.is_ok()));
        }
    }
}

//! W3C `traceparent` in and out of the current `tracing` span, so a trace crosses HTTP calls,
//! the outbox, RabbitMQ and webhooks.
//!
//! Without an OpenTelemetry layer installed (no `OTEL_EXPORTER_OTLP_ENDPOINT`), spans have no
//! OpenTelemetry context: [`current_traceparent`] and [`continue_trace`] return after reading
//! one flag, so the hot path pays next to nothing.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT_HEADER: &str = "traceparent";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are recorded and exported (an OpenTelemetry layer is installed). When not,
/// every function here returns at once.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// The current span's context as a `traceparent` value, when a trace is being recorded.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// `span`'s context as a `traceparent` value, when it has one.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if !enabled() || span.is_none() {
        return None;
    }
    let context = span.context();
    let span_ref = context.span();
    let parent = span_ref.span_context();
    parent.is_valid().then(|| {
        format!("00-{}-{}-{:02x}", parent.trace_id(), parent.span_id(), parent.trace_flags().to_u8())
    })
}

/// Parses a W3C `traceparent` (version 00): `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    u8::from_str_radix(version, 16).ok()?;
    if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let context = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, TraceState::default());
    context.is_valid().then_some(context)
}

/// Makes `span` a child of the remote span in `traceparent` (when it is valid) and records its
/// trace id in the span's `trace_id` field (when it declares one), so log lines carry it.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if !enabled() || span.is_none() {
        return;
    }
    if let Some(remote) = traceparent.and_then(parse_traceparent) {
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
    let context = span.context();
    let span_ref = context.span();
    let id = span_ref.span_context().trace_id();
    if id != TraceId::INVALID {
        span.record("trace_id", tracing::field::display(id));
    }
}

/// The `traceparent` of a JSON CloudEvent (as stored in a row), without decoding the rest.
pub fn traceparent_in_json(event: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Carrier {
        traceparent: Option<String>,
    }
    serde_json::from_slice::<Carrier>(event).ok()?.traceparent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_traceparents_parse_and_malformed_ones_do_not() {
        let parsed = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(
            parsed.map(|c| c.trace_id().to_string()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert!(parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
        assert!(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7").is_none());
        assert!(parse_traceparent("zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
        assert!(parse_traceparent("garbage").is_none());
    }

    #[test]
    fn without_an_opentelemetry_layer_there_is_no_traceparent() {
        assert_eq!(current_traceparent(), None);
    }
}

//! The span each consumed event is handled in, continuing the trace of whoever published it.

use contracts::Envelope;
use lapin::message::Delivery;
use lapin::types::AMQPValue;

/// The span one event is handled in: a child of the span that published it (the AMQP
/// `traceparent` header, else the envelope's), so the handler's effects and the events it
/// publishes continue the producer's trace.
pub(crate) fn event_span(service: &'static str, delivery: &Delivery, envelope: &Envelope) -> tracing::Span {
    let span = tracing::info_span!(
        "consume",
        service,
        event_id = %envelope.id,
        event_type = %envelope.event_type,
        order_id = envelope.subject.as_deref().unwrap_or_default(),
        trace_id = tracing::field::Empty,
    );
    if platform::trace::enabled() && !span.is_none() {
        let header = delivery.properties.headers().as_ref().and_then(|h| {
            match h.inner().get(platform::trace::TRACEPARENT_HEADER) {
                Some(AMQPValue::LongString(value)) => Some(value.to_string()),
                _ => None,
            }
        });
        platform::trace::continue_trace(&span, header.as_deref().or(envelope.traceparent.as_deref()));
    }
    span
}

//! CloudEvents 1.0 structured-mode JSON, plus the W3C `traceparent` extension.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::Event;

pub const SPEC_VERSION: &str = "1.0";
pub const CONTENT_TYPE: &str = "application/json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub specversion: String,
    /// UUIDv7, so ids sort by creation time; also the inbox key that makes consumers idempotent.
    pub id: Uuid,
    /// The producing service, as a URI reference (`/order-api`).
    pub source: String,
    /// The event type, which is also the routing key (`order.created`).
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    /// The order the event is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub datacontenttype: String,
    /// `urn:orders:<type>:v<N>`: the payload's schema and major version.
    pub dataschema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub data: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JSON CloudEvent: {0}")]
    Malformed(serde_json::Error),
    #[error("unsupported CloudEvents specversion `{0}`")]
    SpecVersion(String),
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    #[error("unsupported schema `{found}` for `{event_type}` (this build reads v{supported})")]
    UnsupportedVersion { event_type: String, found: String, supported: u32 },
    #[error("`{event_type}` payload does not match its schema: {source}")]
    InvalidData { event_type: String, source: serde_json::Error },
}

impl Envelope {
    /// Wraps `event` for publishing from `source` (the service name).
    pub fn new(source: &str, event: &Event) -> Self {
        Self {
            specversion: SPEC_VERSION.to_owned(),
            id: Uuid::now_v7(),
            source: format!("/{source}"),
            event_type: event.event_type().to_owned(),
            time: Utc::now(),
            subject: event.order_id().map(|id| id.to_string()),
            datacontenttype: CONTENT_TYPE.to_owned(),
            dataschema: schema_uri(event.event_type(), event.version()),
            traceparent: None,
            data: event.data(),
        }
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        let envelope: Self = serde_json::from_slice(bytes).map_err(DecodeError::Malformed)?;
        if envelope.specversion != SPEC_VERSION {
            return Err(DecodeError::SpecVersion(envelope.specversion));
        }
        Ok(envelope)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings, a UUID, a timestamp and a JSON value cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The typed payload, checked against the versions this build understands.
    pub fn event(&self) -> Result<Event, DecodeError> {
        Event::decode(&self.event_type, &self.dataschema, &self.data)
    }
}

pub fn schema_uri(event_type: &str, version: u32) -> String {
    format!("urn:orders:{event_type}:v{version}")
}

//! What a valid endpoint is: the create and update requests, parsed into checked values.
//! Whether the URL's host is allowed is the guard's business (it needs DNS), not this module's.

use contracts::events::WEBHOOK_EVENT_TYPES;
use platform::validation::Violation;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

pub const MAX_URL_LEN: usize = 2000;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_VALUE_LEN: usize = 1000;
/// Connection-level headers (RFC 9110 §7.6.1) and those we set ourselves on every delivery.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    pub url: String,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub enabled: Option<bool>,
}

/// A PATCH: absent fields stay as they are; `"description": null` clears the description.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub enabled: Option<bool>,
}

/// Tells `"field": null` (Some(None)) from an absent field (None, via `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEndpoint {
    pub url: String,
    /// Empty means every webhook event type.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub enabled: bool,
}

/// A checked PATCH; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub enabled: Option<bool>,
}

impl TryFrom<CreateEndpointRequest> for NewEndpoint {
    type Error = Vec<Violation>;

    fn try_from(request: CreateEndpointRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let url = url(&request.url, &mut errors);
        let event_types = event_types(request.event_types.unwrap_or_default(), &mut errors);
        let description = description(request.description, &mut errors);
        let headers = headers(request.headers.unwrap_or_default(), &mut errors);
        let enabled = request.enabled.unwrap_or(true);
        if errors.is_empty() {
            Ok(Self { url, event_types, description, headers, enabled })
        } else {
            Err(errors)
        }
    }
}

impl TryFrom<UpdateEndpointRequest> for EndpointChanges {
    type Error = Vec<Violation>;

    fn try_from(request: UpdateEndpointRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let changes = Self {
            url: request.url.map(|u| url(&u, &mut errors)),
            event_types: request.event_types.map(|t| event_types(t, &mut errors)),
            description: request.description.map(|d| description(d, &mut errors)),
            headers: request.headers.map(|h| headers(h, &mut errors)),
            enabled: request.enabled,
        };
        if errors.is_empty() { Ok(changes) } else { Err(errors) }
    }
}

fn url(raw: &str, errors: &mut Vec<Violation>) -> String {
    let url = raw.trim().to_owned();
    if url.len() > MAX_URL_LEN {
        errors.push(Violation::new("url", format!("must be at most {MAX_URL_LEN} characters")));
    } else {
        match reqwest::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => {}
            Ok(_) => errors.push(Violation::new("url", "must be an http or https URL with a host")),
            Err(error) => errors.push(Violation::new("url", format!("is not an absolute URL: {error}"))),
        }
    }
    url
}

/// Kept in the order given, repeats dropped, so the stored list reads as it was sent.
fn event_types(requested: Vec<String>, errors: &mut Vec<Violation>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for (index, event_type) in requested.into_iter().enumerate() {
        if !WEBHOOK_EVENT_TYPES.contains(&event_type.as_str()) {
            errors.push(Violation::new(
                format!("event_types[{index}]"),
                format!("unknown event type `{event_type}`; one of {}", WEBHOOK_EVENT_TYPES.join(", ")),
            ));
        } else if !kept.contains(&event_type) {
            kept.push(event_type);
        }
    }
    kept
}

fn description(raw: Option<String>, errors: &mut Vec<Violation>) -> Option<String> {
    let description = raw.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    if description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
        errors.push(Violation::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    description
}

/// Names are lower-cased (HTTP header names are case-insensitive) and must be valid header
/// names that neither break the connection nor impersonate our own `webhook-*` headers.
fn headers(raw: BTreeMap<String, String>, errors: &mut Vec<Violation>) -> BTreeMap<String, String> {
    if raw.len() > MAX_HEADERS {
        errors.push(Violation::new("headers", format!("at most {MAX_HEADERS} headers")));
    }
    let mut kept = BTreeMap::new();
    for (name, value) in raw {
        let lower = name.trim().to_ascii_lowercase();
        let field = format!("headers.{name}");
        if reqwest::header::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            errors.push(Violation::new(field, "is not a valid header name"));
        } else if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            errors.push(Violation::new(field, "is a hop-by-hop, reserved or webhook-* header"));
        } else if value.len() > MAX_HEADER_VALUE_LEN
            || reqwest::header::HeaderValue::from_str(&value).is_err()
        {
            errors.push(Violation::new(
                field,
                format!("value must be visible ASCII, at most {MAX_HEADER_VALUE_LEN} characters"),
            ));
        } else {
            kept.insert(lower, value);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> CreateEndpointRequest {
        CreateEndpointRequest {
            url: url.into(),
            event_types: None,
            description: None,
            headers: None,
            enabled: None,
        }
    }

    #[test]
    fn a_valid_endpoint_is_accepted_with_repeats_dropped() {
        let endpoint = NewEndpoint::try_from(CreateEndpointRequest {
            url: " https://example.com/hooks ".into(),
            event_types: Some(vec![
                "order.confirmed".into(),
                "order.failed".into(),
                "order.confirmed".into(),
            ]),
            description: Some("  ".into()),
            headers: Some(BTreeMap::from([("X-Team".to_owned(), "billing".to_owned())])),
            enabled: None,
        });
        assert_eq!(
            endpoint,
            Ok(NewEndpoint {
                url: "https://example.com/hooks".into(),
                event_types: vec!["order.confirmed".into(), "order.failed".into()],
                description: None,
                headers: BTreeMap::from([("x-team".to_owned(), "billing".to_owned())]),
                enabled: true,
            })
        );
        assert!(NewEndpoint::try_from(request("http://127.0.0.1:9000/x")).is_ok());
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = CreateEndpointRequest {
            url: "ftp://example.com".into(),
            event_types: Some(vec!["order.created".into(), "stock.reserved".into()]),
            description: Some("x".repeat(501)),
            headers: None,
            enabled: None,
        };
        let errors = NewEndpoint::try_from(bad).err().unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["url", "event_types[1]", "description"]);
    }

    #[test]
    fn hop_by_hop_reserved_and_webhook_headers_are_refused() {
        for name in [
            "Connection",
            "transfer-encoding",
            "Upgrade",
            "Host",
            "webhook-signature",
            "Webhook-Id",
            "bad name",
        ] {
            let mut bad = request("https://example.com");
            bad.headers = Some(BTreeMap::from([(name.to_owned(), "x".to_owned())]));
            let errors = NewEndpoint::try_from(bad).err().unwrap_or_default();
            assert_eq!(errors.len(), 1, "{name}");
        }
        let mut bad_value = request("https://example.com");
        bad_value.headers = Some(BTreeMap::from([("x-a".to_owned(), "line\r\nbreak".to_owned())]));
        assert!(NewEndpoint::try_from(bad_value).is_err());
    }

    #[test]
    fn urls_must_be_absolute_and_short() {
        assert!(NewEndpoint::try_from(request("/relative")).is_err());
        assert!(NewEndpoint::try_from(request("not a url")).is_err());
        assert!(NewEndpoint::try_from(request(&format!("https://e.com/{}", "a".repeat(2000)))).is_err());
    }

    #[test]
    fn a_patch_tells_a_cleared_description_from_an_absent_one() {
        let parse = |json: &str| {
            serde_json::from_str::<UpdateEndpointRequest>(json)
                .map_err(|e| e.to_string())
                .and_then(|r| EndpointChanges::try_from(r).map_err(|e| format!("{e:?}")))
        };
        assert_eq!(parse(r#"{"description": null}"#).map(|c| c.description), Ok(Some(None)));
        assert_eq!(
            parse(r#"{"enabled": false}"#).map(|c| (c.description, c.enabled)),
            Ok((None, Some(false)))
        );
        assert!(parse(r#"{"url": "nope"}"#).is_err());
        assert!(parse(r#"{"secret": "x"}"#).is_err());
    }
}

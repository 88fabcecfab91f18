//! Webhook rules, free of SQL and HTTP: what a valid endpoint is, and what happens after a
//! failed attempt.

use contracts::events::WEBHOOK_EVENT_TYPES;
use platform::problem::FieldError;
use serde::Deserialize;
use std::time::Duration;

pub const MAX_URL_LEN: usize = 2000;
pub const MAX_DESCRIPTION_CHARS: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    pub url: String,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEndpoint {
    pub url: String,
    /// Empty means every webhook event type.
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

impl TryFrom<CreateEndpointRequest> for NewEndpoint {
    type Error = Vec<FieldError>;

    fn try_from(request: CreateEndpointRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let url = request.url.trim().to_owned();
        if url.len() > MAX_URL_LEN {
            errors.push(FieldError::new(
                "url",
                format!("must be at most {MAX_URL_LEN} characters"),
            ));
        } else {
            match reqwest::Url::parse(&url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                Ok(_) => errors.push(FieldError::new("url", "must be an http or https URL")),
                Err(error) => errors.push(FieldError::new("url", format!("is not an absolute URL: {error}"))),
            }
        }
        // Kept in the order given, repeats dropped, so the stored list reads as it was sent.
        let mut event_types: Vec<String> = Vec::new();
        for (index, event_type) in request.event_types.unwrap_or_default().into_iter().enumerate() {
            if !WEBHOOK_EVENT_TYPES.contains(&event_type.as_str()) {
                errors.push(FieldError::new(
                    format!("event_types[{index}]"),
                    format!(
                        "unknown event type `{event_type}`; one of {}",
                        WEBHOOK_EVENT_TYPES.join(", ")
                    ),
                ));
            } else if !event_types.contains(&event_type) {
                event_types.push(event_type);
            }
        }
        let description = request
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
        {
            errors.push(FieldError::new(
                "description",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        if errors.is_empty() {
            Ok(Self {
                url,
                event_types,
                description,
            })
        } else {
            Err(errors)
        }
    }
}

/// What to do after failed attempt number `attempts` (1-based): wait `delays[attempts - 1]`, or
/// give up once the schedule is used up.
pub fn retry_delay(delays: &[Duration], attempts: i32) -> Option<Duration> {
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    delays.get(index).copied()
}

/// ±20 %, so deliveries that failed together (an endpoint outage) do not all return together.
pub fn jittered(delay: Duration) -> Duration {
    let factor: f64 = rand::random_range(0.8..1.2);
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> CreateEndpointRequest {
        CreateEndpointRequest {
            url: url.into(),
            event_types: None,
            description: None,
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
        });
        assert_eq!(
            endpoint,
            Ok(NewEndpoint {
                url: "https://example.com/hooks".into(),
                event_types: vec!["order.confirmed".into(), "order.failed".into()],
                description: None,
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
        };
        let errors = NewEndpoint::try_from(bad).err().unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["url", "event_types[1]", "description"]);
    }

    #[test]
    fn urls_must_be_absolute_and_short() {
        assert!(NewEndpoint::try_from(request("/relative")).is_err());
        assert!(NewEndpoint::try_from(request("not a url")).is_err());
        assert!(NewEndpoint::try_from(request(&format!("https://e.com/{}", "a".repeat(2000)))).is_err());
    }

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let delays = [Duration::from_secs(5), Duration::from_secs(60)];
        assert_eq!(retry_delay(&delays, 1), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(&delays, 2), Some(Duration::from_secs(60)));
        assert_eq!(retry_delay(&delays, 3), None);
        assert_eq!(retry_delay(&delays, 0), None);
        assert_eq!(retry_delay(&[], 1), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..100 {
            let ms = jittered(Duration::from_millis(1000)).as_millis();
            assert!((800..=1200).contains(&ms), "{ms}");
        }
    }
}

//! RFC 9457 problem details: the one error shape every HTTP answer uses.
//!
//! `code` is the stable machine-readable identifier clients switch on; `type` is the same code
//! as a relative URI, `title` a human summary, `errors` field-level validation messages, and
//! `request_id` the id echoed in `X-Request-Id`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl From<crate::validation::Violation> for FieldError {
    fn from(violation: crate::validation::Violation) -> Self {
        Self { field: violation.field, message: violation.message }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, title: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{code}"),
            title: title.into(),
            status: status.as_u16(),
            code,
            detail: None,
            errors: Vec::new(),
            request_id: crate::http::current_request_id(),
            extensions: Map::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Field-level messages: `FieldError`s, or the domain's `Violation`s.
    pub fn with_errors<E: Into<FieldError>>(mut self, errors: impl IntoIterator<Item = E>) -> Self {
        self.errors = errors.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn validation<E: Into<FieldError>>(errors: impl IntoIterator<Item = E>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "The request is not valid")
            .with_errors(errors)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// The unexpected: the cause is logged here, once, and never shown to the client.
    /// The unexpected: this is the one place it is logged, with its whole cause chain (a pool
    /// error alone says nothing; the connection refusal under it does), and shown to no one.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %cause_chain(cause), "request failed unexpectedly");
        Self::internal_server_error()
    }

    /// A broken assumption of our own that has no error value (app data not registered).
    pub fn internal_message(message: &str) -> Self {
        tracing::error!(error = message, "request failed unexpectedly");
        Self::internal_server_error()
    }

    fn internal_server_error() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side")
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "A service we depend on is unavailable",
        )
        .with_detail(detail)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// `error: its cause: the cause's cause`, as `anyhow` prints `{:#}`.
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.title, self.code)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status()).content_type(CONTENT_TYPE).json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_serialises_as_rfc_9457_with_our_code_and_fields() {
        let problem = Problem::validation(vec![FieldError::new("items[0].quantity", "must be at least 1")])
            .with_extension("current_status", "confirmed");
        let json = serde_json::to_value(&problem).unwrap_or_default();
        assert_eq!(json["type"], "/problems/validation_failed");
        assert_eq!(json["status"], 422);
        assert_eq!(json["code"], "validation_failed");
        assert_eq!(json["errors"][0]["field"], "items[0].quantity");
        assert_eq!(json["current_status"], "confirmed");
        assert!(json.get("detail").is_none());
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("loading the order failed")]
        Db(#[source] std::io::Error),
    }

    #[test]
    fn an_internal_error_is_logged_with_every_cause_under_it() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(cause_chain(&Outer::Db(refused)), "loading the order failed: connection refused");
        assert_eq!(cause_chain(&std::fmt::Error), "an error occurred when formatting an argument");
    }
}

//! Where order-api's use-case errors become RFC 9457 problems: one mapping per error type, for
//! every route that meets it. The unexpected (database, AMQP, keys) is logged with its cause by
//! `Problem::internal` and shown to no one.

use crate::accounts::AccountError;
use crate::dead_letters::{self, DeadLetterError};
use crate::orders::OrderError;
use actix_web::http::StatusCode;
use platform::problem::{FieldError, Problem};

/// Order intake, reads, cancellation, status changes and the operator's redrive and expire.
pub(super) fn order(error: OrderError) -> Problem {
    match error {
        OrderError::Invalid(errors) => Problem::validation(errors),
        OrderError::NotFound => Problem::not_found("Order"),
        OrderError::Conflict { current, attempted } => Problem::new(
            StatusCode::CONFLICT,
            "illegal_transition",
            format!("An order that is {current} cannot {attempted}"),
        )
        .with_extension("current_status", current.as_str()),
        OrderError::TooManyOpenOrders { open, limit } => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_open_orders",
            "Too many unpaid orders are open",
        )
        .with_detail(format!(
            "{open} of your orders wait for payment (at most {limit}); pay or cancel one before placing another"
        ))
        .with_extension("limit", limit),
        OrderError::Conversion(error) => conversion(error),
        OrderError::RatesUnavailable => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "exchange_rates_unavailable",
            "No exchange rates are loaded",
        )
        .with_detail("the order cannot be converted into another currency until the rates are loaded"),
        OrderError::Db(error) => Problem::internal(&error),
    }
}

/// The same codes as inventory's display conversion (`?currency=`).
fn conversion(error: contracts::exchange::ConversionError) -> Problem {
    use contracts::exchange::ConversionError;
    let detail = error.to_string();
    match error {
        ConversionError::UnknownCurrency(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_not_convertible",
            "Prices cannot be converted into this currency",
        )
        .with_errors(vec![FieldError::new("currency", detail.clone())]),
        ConversionError::Stale { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "exchange_rates_stale",
            "The exchange rates are too old to convert with",
        ),
        ConversionError::Amount(_) => Problem::validation(vec![FieldError::new("currency", detail.clone())]),
    }
    .with_detail(detail)
}

/// Registration, login, logout and password changes.
pub(super) fn account(error: AccountError) -> Problem {
    match error {
        AccountError::Invalid(errors) => Problem::validation(errors),
        AccountError::EmailTaken => {
            Problem::new(StatusCode::CONFLICT, "email_taken", "An account with this email exists")
                .with_errors(vec![FieldError::new("email", "is already registered")])
        }
        AccountError::InvalidCredentials => {
            Problem::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "Wrong email or password")
        }
        AccountError::InvalidToken => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "This link is invalid, has been used or has expired",
        ),
        AccountError::EmailNotVerified => Problem::new(
            StatusCode::FORBIDDEN,
            "email_not_verified",
            "Verify your email address before ordering",
        )
        .with_detail("follow the link in the email sent when you registered"),
        AccountError::Backoff { retry_after_seconds } => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "login_backoff",
            "Too many failed logins for this account or from this address",
        )
        .with_detail(format!("retry in {retry_after_seconds} s"))
        .with_extension("retry_after_seconds", retry_after_seconds),
        AccountError::Password(error) => Problem::internal(&error),
        AccountError::Db(error) => Problem::internal(&error),
        AccountError::Token(error) => Problem::internal(&error),
        AccountError::Unavailable(error) => Problem::unavailable(error.to_string()),
    }
}

/// Dead-letter queue listing, replay and purge.
pub(super) fn dead_letter(error: DeadLetterError) -> Problem {
    match error {
        DeadLetterError::UnknownQueue(queue) => Problem::validation(vec![FieldError::new(
            "queue",
            format!("`{queue}` is not one of {}", dead_letters::queues().join(", ")),
        )]),
        DeadLetterError::Unavailable => Problem::unavailable("RabbitMQ is not reachable; try again shortly"),
        DeadLetterError::Amqp(error) => Problem::internal(&error),
        DeadLetterError::Nacked => Problem::unavailable("RabbitMQ refused the replayed message; try again"),
    }
}

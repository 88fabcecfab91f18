//! Payment routes (the gateway forwards an allow-list of them): the payment of an order and
//! the simulator's customer actions, for the order's owner or an admin; provider callbacks,
//! authenticated by their signature.

use crate::callbacks::{CallbackError, Callbacks};
use crate::domain::access::may_access;
use crate::provider::signature;
use crate::provider::simulated::{self, SimError, Simulated};
use crate::store::{self, log};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use contracts::{Amount, OrderId, PaymentId};
use platform::auth::Authenticated;
use platform::db::PgPool;
use platform::problem::Problem;
use serde_json::json;
use std::sync::Arc;

pub fn routes(
    cfg: &mut web::ServiceConfig,
    pool: PgPool,
    callbacks: Callbacks,
    simulator: Option<Arc<Simulated>>,
) {
    cfg.app_data(web::Data::new(pool))
        .app_data(web::Data::new(callbacks))
        .route("/orders/{order_id}/payment", web::get().to(payment_of_order))
        .route("/payments/callbacks/{provider}", web::post().to(callback));
    if let Some(simulator) = simulator {
        cfg.app_data(web::Data::from(simulator))
            .route("/payments/simulator/{payment_id}/complete", web::post().to(complete))
            .route("/payments/simulator/{payment_id}/fail", web::post().to(fail));
    }
}

fn db(error: diesel::result::Error) -> Problem {
    Problem::internal(&error)
}

/// The payment, when `caller` may see it; another customer's payment answers as an unknown one.
fn visible(payment: Option<store::Payment>, caller: &Authenticated) -> Result<store::Payment, Problem> {
    payment
        .filter(|payment| may_access(payment.customer_id, payment.order_id, &caller.0))
        .ok_or_else(|| Problem::not_found("Payment"))
}

async fn view(pool: &PgPool, payment: store::Payment) -> Result<serde_json::Value, Problem> {
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    let refunds: Vec<serde_json::Value> = log::refunds_of(&mut conn, payment.id)
        .await
        .map_err(db)?
        .into_iter()
        .map(|r| json!({"id": r.id, "amount": Amount::from_db(r.amount), "provider_ref": r.provider_ref, "reason": r.reason, "created_at": r.created_at}))
        .collect();
    let attempts = log::attempts_of(&mut conn, payment.id).await.map_err(db)?;
    let history = log::history_of(&mut conn, payment.id).await.map_err(db)?;
    let provider_events = log::events_of(&mut conn, payment.id).await.map_err(db)?;
    Ok(json!({
        "id": payment.id, "order_id": payment.order_id, "status": payment.status,
        "amount": Amount::from_db(payment.amount), "currency": payment.currency,
        "refunded_amount": Amount::from_db(payment.refunded_amount),
        "payment_method": payment.payment_method, "provider": payment.provider,
        "provider_ref": payment.provider_ref, "failure_code": payment.failure_code,
        "decline_code": payment.decline_code, "failure_message": payment.failure_message,
        "cancel_requested": payment.cancel_requested, "expires_at": payment.expires_at,
        "created_at": payment.created_at, "updated_at": payment.updated_at,
        "refunds": refunds, "attempts": attempts, "history": history, "provider_events": provider_events,
    }))
}

/// The gateway checks that the caller may read the order; this service checks again that the
/// caller placed it, is an admin, or holds the gateway's token for this guest order, so a token
/// alone opens nobody else's payment.
async fn payment_of_order(
    caller: Authenticated,
    pool: web::Data<PgPool>,
    order_id: web::Path<OrderId>,
) -> Result<HttpResponse, Problem> {
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    let payment = store::find_by_order(&mut conn, order_id.into_inner()).await.map_err(db)?;
    drop(conn);
    let payment = visible(payment, &caller)?;
    Ok(HttpResponse::Ok().json(view(&pool, payment).await?))
}

/// The raw body is verified as it came; it is parsed only after the signature matched.
async fn callback(
    req: HttpRequest,
    provider: web::Path<String>,
    body: web::Bytes,
    callbacks: web::Data<Callbacks>,
) -> Result<HttpResponse, Problem> {
    let signature = req.headers().get(signature::HEADER).and_then(|v| v.to_str().ok());
    match callbacks.receive(&provider, signature, &body).await {
        Ok(outcome) => Ok(HttpResponse::Ok().json(json!({"received": true, "outcome": outcome}))),
        Err(error) => Err(callback_problem(error)),
    }
}

fn callback_problem(error: CallbackError) -> Problem {
    match error {
        CallbackError::UnknownProvider(_) => Problem::not_found("Provider"),
        CallbackError::Signature(error) => {
            tracing::warn!(%error, "refused a provider callback");
            Problem::new(StatusCode::BAD_REQUEST, "invalid_signature", "The callback signature is not valid")
                .with_detail(error.to_string())
        }
        CallbackError::Malformed(detail) => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_callback",
            "The callback is not a provider event",
        )
        .with_detail(detail),
        CallbackError::Db(error) => Problem::internal(&error),
        CallbackError::Pool(error) => Problem::unavailable(error.to_string()),
    }
}

async fn complete(
    caller: Authenticated,
    id: web::Path<PaymentId>,
    pool: web::Data<PgPool>,
    simulator: web::Data<Simulated>,
    callbacks: web::Data<Callbacks>,
) -> Result<HttpResponse, Problem> {
    customer_action(&caller, id.into_inner(), true, &pool, &simulator, &callbacks).await
}

async fn fail(
    caller: Authenticated,
    id: web::Path<PaymentId>,
    pool: web::Data<PgPool>,
    simulator: web::Data<Simulated>,
    callbacks: web::Data<Callbacks>,
) -> Result<HttpResponse, Problem> {
    customer_action(&caller, id.into_inner(), false, &pool, &simulator, &callbacks).await
}

/// The customer acts at the simulated provider, which then sends its signed callback; it takes
/// the same path (verification included) as any callback. Only the customer who placed the
/// order (or an admin) may act: anyone else could confirm an order nobody paid for.
async fn customer_action(
    caller: &Authenticated,
    id: PaymentId,
    succeed: bool,
    pool: &PgPool,
    simulator: &Simulated,
    callbacks: &Callbacks,
) -> Result<HttpResponse, Problem> {
    let not_waiting = || {
        Problem::new(
            StatusCode::CONFLICT,
            "not_awaiting_action",
            "The payment is not waiting on the customer",
        )
    };
    let payment = {
        let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
        visible(store::find(&mut conn, id).await.map_err(db)?, caller)?
    };
    let reference = payment.provider_ref.clone().ok_or_else(not_waiting)?;
    let intent = simulator.customer_action(&reference, succeed).await.map_err(|error| match error {
        SimError::NotFound => Problem::not_found("Payment"),
        SimError::NotAwaitingAction => not_waiting(),
        SimError::Provider(error) => Problem::unavailable(error.to_string()),
    })?;
    let (header, body) = simulated::signed_callback(callbacks.secret.expose(), &intent, payment.id);
    callbacks.receive(simulated::NAME, Some(&header), &body).await.map_err(callback_problem)?;
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    let payment =
        store::find(&mut conn, id).await.map_err(db)?.ok_or_else(|| Problem::not_found("Payment"))?;
    drop(conn);
    Ok(HttpResponse::Ok().json(view(pool, payment).await?))
}

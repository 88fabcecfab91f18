//! Internal payment views (the gateway shows them under the order).

use crate::store;
use actix_web::{HttpResponse, web};
use platform::db::PgPool;
use platform::problem::Problem;
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig, pool: PgPool) {
    cfg.app_data(web::Data::new(pool))
        .route("/orders/{order_id}/payment", web::get().to(payment_of_order));
}

async fn payment_of_order(
    pool: web::Data<PgPool>,
    order_id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    match store::find_by_order(&mut conn, order_id.into_inner())
        .await
        .map_err(|e| Problem::internal(&e))?
    {
        Some(payment) => Ok(HttpResponse::Ok().json(payment)),
        None => Err(Problem::not_found("Payment")),
    }
}

//! Internal product routes (the gateway forwards `/api/v1/products` here). Handlers translate:
//! parse, call the store inside a transaction, map the result.

use crate::SERVICE;
use crate::domain::{CreateProductRequest, NewProduct};
use crate::store::{self, Product, StoreError};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use contracts::events::ProductUpserted;
use contracts::{Amount, Currency, Event};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use messaging::outbox;
use platform::auth::Admin;
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig, pool: PgPool) {
    cfg.app_data(web::Data::new(pool))
        .route("/products", web::post().to(create_product))
        .route("/products", web::get().to(list_products))
        .route("/products/{id}", web::get().to(get_product));
}

#[derive(Debug, Serialize)]
pub struct ProductView {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub price: Amount,
    pub currency: Currency,
    pub stock: i64,
    pub available: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        Self {
            available: p.available(),
            id: p.id,
            sku: p.sku,
            name: p.name,
            description: p.description,
            price: Amount::from_db(p.price),
            currency: Currency::from_db(p.currency),
            stock: p.on_hand,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

fn upserted(product: &Product) -> Event {
    Event::ProductUpserted(ProductUpserted {
        product_id: product.id,
        sku: product.sku.clone(),
        name: product.name.clone(),
        price: Amount::from_db(product.price.clone()),
        currency: Currency::from_db(product.currency.clone()),
        available: product.available(),
        active: true,
        version: product.version,
    })
}

fn db_problem(error: impl std::fmt::Display) -> Problem {
    Problem::internal(&error)
}

async fn create_product(
    _admin: Admin,
    pool: web::Data<PgPool>,
    body: web::Json<CreateProductRequest>,
) -> Result<HttpResponse, Problem> {
    let product = NewProduct::try_from(body.into_inner()).map_err(Problem::validation)?;
    let mut pooled = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let created = conn
        .transaction(async |conn: &mut AsyncPgConnection| {
            let created = store::insert_product(conn, &product).await?;
            outbox::enqueue(conn, SERVICE, &upserted(&created)).await?;
            Ok::<_, StoreError>(created)
        })
        .await
        .map_err(|error| match error {
            StoreError::SkuTaken(sku) => {
                Problem::new(StatusCode::CONFLICT, "sku_taken", "A product with this SKU already exists")
                    .with_errors(vec![FieldError::new("sku", format!("`{sku}` is taken"))])
            }
            StoreError::Db(error) => db_problem(error),
        })?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/products/{}", created.id)))
        .json(ProductView::from(created)))
}

async fn get_product(pool: web::Data<PgPool>, id: web::Path<Uuid>) -> Result<HttpResponse, Problem> {
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    match store::find_product(&mut conn, id.into_inner()).await.map_err(db_problem)? {
        Some(product) => Ok(HttpResponse::Ok().json(ProductView::from(product))),
        None => Err(Problem::not_found("Product")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<i64>,
    starting_after: Option<Uuid>,
}

async fn list_products(
    pool: web::Data<PgPool>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Problem::validation(vec![FieldError::new("limit", "must be between 1 and 100")]));
    }
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    let products = store::list_products(&mut conn, query.starting_after, limit).await.map_err(db_problem)?;
    let next_cursor = if products.len() as i64 == limit { products.last().map(|p| p.id) } else { None };
    let items: Vec<ProductView> = products.into_iter().map(ProductView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

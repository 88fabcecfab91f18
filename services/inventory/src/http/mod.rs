//! Internal product routes (the gateway forwards `/api/v1/products/**` here). Handlers
//! translate: authenticate, parse, call one use case in `crate::products`, map the result.
//! Reads are public; every write needs the admin role here too (defence in depth: the gateway
//! checks it as well, but inventory is reachable around it).

pub mod images;
mod read;
mod write;

use crate::products::ProductError;
use crate::store::Product;
use actix_web::http::StatusCode;
use actix_web::web;
use contracts::{Amount, Currency};
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::Serialize;
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig, pool: PgPool, images: crate::images::Images) {
    cfg.app_data(web::Data::new(pool))
        .app_data(web::Data::new(images))
        .configure(images::routes)
        .route("/products", web::post().to(write::create_product))
        .route("/products", web::get().to(read::list_products))
        .route("/products/{id}", web::get().to(read::get_product))
        .route("/products/{id}", web::patch().to(write::update_product))
        .route("/products/{id}", web::delete().to(write::delete_product))
        .route("/products/{id}/stock-adjustments", web::post().to(write::adjust_stock));
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
    /// Increases with every change.
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Only admins asking with `include_deleted=true` see deleted products.
    pub deleted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// In display order (`PUT /products/{id}/images/order`).
    pub images: Vec<images::ImageView>,
}

impl ProductView {
    pub fn with_images(self, images: Vec<crate::store::ProductImage>) -> Self {
        Self { images: images.into_iter().map(images::ImageView::from).collect(), ..self }
    }
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
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
            deleted_at: p.deleted_at,
            images: Vec::new(),
        }
    }
}

fn pool_problem(error: impl std::fmt::Display) -> Problem {
    Problem::unavailable(error.to_string())
}

impl From<ProductError> for Problem {
    fn from(error: ProductError) -> Self {
        match error {
            ProductError::NotFound => Problem::not_found("Product"),
            ProductError::SkuTaken(sku) => {
                Problem::new(StatusCode::CONFLICT, "sku_taken", "A product with this SKU already exists")
                    .with_errors(vec![FieldError::new("sku", format!("`{sku}` is taken"))])
            }
            ProductError::InsufficientStock { on_hand, reserved } => Problem::new(
                StatusCode::CONFLICT,
                "insufficient_stock",
                "Stock cannot go below the units reserved for orders",
            )
            .with_detail(format!("{reserved} of the {on_hand} units on hand are reserved"))
            .with_extension("stock", on_hand)
            .with_extension("reserved", reserved)
            .with_extension("available", on_hand - reserved),
            ProductError::StockLimit { on_hand } => Problem::validation(vec![FieldError::new(
                "delta",
                format!("stock would exceed {} (on hand {on_hand})", crate::domain::MAX_STOCK),
            )]),
            ProductError::Db(error) => Problem::internal(&error),
        }
    }
}

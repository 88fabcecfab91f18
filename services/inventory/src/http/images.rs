//! Product image routes: upload (admin, `multipart/form-data` with one file part named
//! `image`), list, reorder and delete (admin), and the bytes of an original or thumbnail
//! (public, like the product). The bytes are served here rather than by presigned S3 URLs: the
//! same URL works for the local store and S3, the bucket stays private, and an image stops
//! being served the moment its product is deleted.

use crate::images::{self, ImageError, ImageFormat, Images, Refusal, Rendition};
use crate::store::ProductImage;
use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use futures_util::TryStreamExt;
use platform::auth::Admin;
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The form field that carries the file.
pub const FILE_FIELD: &str = "image";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/products/{id}/images", web::post().to(upload))
        .route("/products/{id}/images", web::get().to(list))
        // Before `{image_id}`, which would otherwise take `order` for an id.
        .route("/products/{id}/images/order", web::put().to(reorder))
        .route("/products/{id}/images/{image_id}", web::get().to(original))
        .route("/products/{id}/images/{image_id}", web::delete().to(remove))
        .route("/products/{id}/images/{image_id}/thumbnail", web::get().to(thumbnail));
}

/// An image as a product's JSON lists it; the URLs are the gateway's.
#[derive(Debug, Serialize)]
pub struct ImageView {
    pub id: Uuid,
    pub position: i32,
    pub content_type: &'static str,
    pub width: i32,
    pub height: i32,
    /// Size of the stored original (re-encoded, without metadata).
    pub bytes: i64,
    pub url: String,
    pub thumbnail_url: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<ProductImage> for ImageView {
    fn from(image: ProductImage) -> Self {
        let url = format!("/api/v1/products/{}/images/{}", image.product_id, image.id);
        Self {
            id: image.id,
            position: image.position,
            content_type: image.content_type.content_type(),
            width: image.width,
            height: image.height,
            bytes: image.byte_size,
            thumbnail_url: format!("{url}/thumbnail"),
            url,
            created_at: image.created_at,
        }
    }
}

fn items(images: Vec<ProductImage>) -> HttpResponse {
    let items: Vec<ImageView> = images.into_iter().map(ImageView::from).collect();
    HttpResponse::Ok().json(serde_json::json!({ "items": items }))
}

impl From<ImageError> for Problem {
    fn from(error: ImageError) -> Self {
        match error {
            ImageError::ProductNotFound => Problem::not_found("Product"),
            ImageError::NotFound => Problem::not_found("Image"),
            ImageError::Refused(refusal) => refused(refusal),
            ImageError::TooMany { max } => Problem::new(
                StatusCode::CONFLICT,
                "too_many_images",
                "The product has the most images allowed",
            )
            .with_detail(format!("at most {max} images per product; delete one first")),
            ImageError::OrderMismatch => Problem::validation(vec![FieldError::new(
                "image_ids",
                "must list each of the product's images exactly once",
            )]),
            ImageError::Storage(error) => {
                tracing::warn!(%error, "image storage failed");
                Problem::unavailable("the image store is not reachable; try again shortly".to_owned())
            }
            worker @ ImageError::Worker(_) => Problem::internal(&worker),
            ImageError::Db(error) => Problem::internal(&error),
        }
    }
}

fn refused(refusal: Refusal) -> Problem {
    let detail = refusal.to_string();
    let (status, code, title) = match refusal {
        Refusal::TooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The image file is too large")
        }
        Refusal::Unsupported => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image_type",
            "The file is not a JPEG, PNG or WebP image",
        ),
        Refusal::TooManyPixels { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "image_too_many_pixels", "The image has too many pixels")
        }
        Refusal::Corrupt(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image", "The image cannot be decoded")
        }
    };
    Problem::new(status, code, title).with_detail(detail)
}

fn multipart_problem(detail: impl std::fmt::Display) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid_multipart", "The request must be multipart/form-data")
        .with_detail(format!("{detail}; send the file as the form field `{FILE_FIELD}`"))
}

/// The file part's bytes, read up to the limit: one byte more is a 413, before the rest of the
/// body is read or anything is decoded. Other parts are refused (nothing is silently dropped).
async fn read_file(mut form: Multipart, max_bytes: usize) -> Result<Vec<u8>, Problem> {
    let mut file = None;
    while let Some(mut field) = form.try_next().await.map_err(multipart_problem)? {
        if field.name() != Some(FILE_FIELD) || file.is_some() {
            return Err(multipart_problem(format!("unexpected part `{}`", field.name().unwrap_or_default())));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.try_next().await.map_err(multipart_problem)? {
            if bytes.len() + chunk.len() > max_bytes {
                return Err(refused(Refusal::TooLarge { max: max_bytes }));
            }
            bytes.extend_from_slice(&chunk);
        }
        file = Some(bytes);
    }
    file.ok_or_else(|| multipart_problem(format!("no `{FILE_FIELD}` part")))
}

fn pool_problem(error: impl std::fmt::Display) -> Problem {
    Problem::unavailable(error.to_string())
}

async fn upload(
    _admin: Admin,
    pool: web::Data<PgPool>,
    images: web::Data<Images>,
    id: web::Path<Uuid>,
    form: Multipart,
) -> Result<HttpResponse, Problem> {
    let product = id.into_inner();
    let bytes = read_file(form, images.limits.max_bytes).await?;
    let mut conn = pool.get().await.map_err(pool_problem)?;
    let image = images::add(&mut conn, &images, product, bytes).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/products/{product}/images/{}", image.id)))
        .json(ImageView::from(image)))
}

async fn list(pool: web::Data<PgPool>, id: web::Path<Uuid>) -> Result<HttpResponse, Problem> {
    let mut conn = pool.get().await.map_err(pool_problem)?;
    Ok(items(images::list(&mut conn, id.into_inner()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRequest {
    image_ids: Vec<Uuid>,
}

async fn reorder(
    _admin: Admin,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    body: web::Json<OrderRequest>,
) -> Result<HttpResponse, Problem> {
    let mut conn = pool.get().await.map_err(pool_problem)?;
    Ok(items(images::reorder(&mut conn, id.into_inner(), &body.image_ids).await?))
}

async fn remove(
    _admin: Admin,
    pool: web::Data<PgPool>,
    images: web::Data<Images>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, Problem> {
    let (product, image) = path.into_inner();
    let mut conn = pool.get().await.map_err(pool_problem)?;
    images::remove(&mut conn, &images, product, image).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn serve(
    pool: web::Data<PgPool>,
    images: web::Data<Images>,
    (product, image): (Uuid, Uuid),
    rendition: Rendition,
) -> Result<HttpResponse, Problem> {
    let mut conn = pool.get().await.map_err(pool_problem)?;
    let (format, bytes): (ImageFormat, _) =
        images::bytes(&mut conn, &images, product, image, rendition).await?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        // The bytes under an image id never change.
        .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}

async fn original(
    pool: web::Data<PgPool>,
    images: web::Data<Images>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, Problem> {
    serve(pool, images, path.into_inner(), Rendition::Original).await
}

async fn thumbnail(
    pool: web::Data<PgPool>,
    images: web::Data<Images>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, Problem> {
    serve(pool, images, path.into_inner(), Rendition::Thumbnail).await
}

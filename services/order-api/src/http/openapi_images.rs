//! The product image routes in the OpenAPI document (forwarded to inventory, which checks
//! the files; see `forward.rs` for the upload body limit).

#![expect(
    dead_code,
    reason = "shapes and functions that only carry #[utoipa::path] and schemas; nothing calls them"
)]

use super::openapi::ProblemDoc;
use utoipa::ToSchema;

/// An image of a product, in the product's `images` (display order).
#[derive(ToSchema)]
pub struct ProductImage {
    id: uuid::Uuid,
    /// Display order, from 0.
    position: i32,
    /// What the content is (judged from the bytes): `image/jpeg`, `image/png` or `image/webp`;
    /// the thumbnail has the same type.
    #[schema(example = "image/jpeg")]
    content_type: String,
    width: i32,
    height: i32,
    /// Size of the stored original (re-encoded without metadata).
    bytes: i64,
    #[schema(
        example = "/api/v1/products/0190a0b1-7c3e-7000-8000-000000000001/images/0190a0b1-7c3e-7000-8000-000000000002"
    )]
    url: String,
    thumbnail_url: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(ToSchema)]
pub struct ProductImages {
    items: Vec<ProductImage>,
}

/// The upload form: one file part named `image`.
#[derive(ToSchema)]
pub struct ImageUpload {
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

#[derive(ToSchema)]
pub struct ImageOrder {
    /// Every image of the product, once each, in the new order.
    image_ids: Vec<uuid::Uuid>,
}

#[utoipa::path(post, path = "/api/v1/products/{id}/images", tag = "products",
    description = "Adds an image (last). JPEG, PNG or WebP, recognised by content, not name or declared type; at most \
                   `PRODUCT_IMAGE_MAX_BYTES` and `PRODUCT_IMAGE_MAX_PIXELS` (width × height, read from the header before \
                   decoding). Metadata (EXIF, XMP, ICC, comments) is removed by re-encoding; a thumbnail is made. A refused \
                   file stores nothing.",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = ImageUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = ProductImage),
        (status = 400, description = "Not a multipart form with one `image` part", body = ProblemDoc),
        (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 404, body = ProblemDoc),
        (status = 409, description = "The product has the most images allowed (`too_many_images`)", body = ProblemDoc),
        (status = 413, description = "The file is larger than allowed (`payload_too_large`)", body = ProblemDoc),
        (status = 415, description = "Not a JPEG, PNG or WebP image (`unsupported_image_type`)", body = ProblemDoc),
        (status = 422, description = "Too many pixels (`image_too_many_pixels`) or cannot be decoded (`invalid_image`)", body = ProblemDoc)),
    security(("bearer" = [])))]
fn upload_image() {}

#[utoipa::path(get, path = "/api/v1/products/{id}/images", tag = "products", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ProductImages), (status = 404, body = ProblemDoc)))]
fn list_images() {}

#[utoipa::path(put, path = "/api/v1/products/{id}/images/order", tag = "products", params(("id" = uuid::Uuid, Path)),
    request_body = ImageOrder,
    responses((status = 200, body = ProductImages), (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc),
        (status = 404, body = ProblemDoc),
        (status = 422, description = "The list does not name each image exactly once", body = ProblemDoc)),
    security(("bearer" = [])))]
fn reorder_images() {}

#[utoipa::path(get, path = "/api/v1/products/{id}/images/{image_id}", tag = "products",
    params(("id" = uuid::Uuid, Path), ("image_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "The original, metadata removed; cacheable forever",
            content(("image/jpeg"), ("image/png"), ("image/webp"))),
        (status = 404, body = ProblemDoc)))]
fn get_image() {}

#[utoipa::path(get, path = "/api/v1/products/{id}/images/{image_id}/thumbnail", tag = "products",
    params(("id" = uuid::Uuid, Path), ("image_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "The thumbnail (longer side `PRODUCT_IMAGE_THUMBNAIL_PX`), same type as the original",
            content(("image/jpeg"), ("image/png"), ("image/webp"))),
        (status = 404, body = ProblemDoc)))]
fn get_thumbnail() {}

#[utoipa::path(delete, path = "/api/v1/products/{id}/images/{image_id}", tag = "products",
    params(("id" = uuid::Uuid, Path), ("image_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted, with its stored files"), (status = 401, body = ProblemDoc),
        (status = 403, body = ProblemDoc), (status = 404, body = ProblemDoc)),
    security(("bearer" = [])))]
fn delete_image() {}

//! Product images: upload (checked, stripped of metadata, thumbnailed), list, reorder, delete,
//! serve. The bytes go to the object store ([`storage`]), one row per image to PostgreSQL.
//! Callable without HTTP.
//!
//! Ordering between the two stores, so a failure leaves nothing behind that a retry cannot
//! finish: an upload writes both objects, then the row (a refused or failed insert deletes the
//! objects again); a delete removes the objects, then the row (a failed delete is retried, and
//! a missing object is not an error). A file that fails any check is refused before anything
//! is written. No event: the gateway's catalog does not carry images.

mod format;
mod process;
mod settings;
mod storage;

pub use format::ImageFormat;
pub use process::{JPEG_QUALITY, Limits, Processed, Refusal, process};
pub use settings::{ImageSettings, StoreKind};
pub use storage::{ImageStore, Rendition, StorageError};

use crate::store::{self, NewProductImage, Product, ProductImage};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

/// What an image request can come to; every variant but `Storage` and `Db` is the caller's.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such product")]
    ProductNotFound,
    #[error("no such image")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the product has {max} images, the most allowed")]
    TooMany { max: i64 },
    #[error("the order must list each of the product's images exactly once")]
    OrderMismatch,
    #[error("image storage failed: {0}")]
    Storage(#[from] StorageError),
    #[error("image processing stopped: {0}")]
    Worker(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// The image store and the rules uploads follow.
#[derive(Debug, Clone)]
pub struct Images {
    pub store: ImageStore,
    pub limits: Limits,
    pub max_per_product: i64,
}

impl Images {
    pub fn from_settings(settings: &ImageSettings) -> Result<Self, platform::settings::SettingsError> {
        settings.validate()?;
        Ok(Self {
            store: ImageStore::from_settings(settings)?,
            limits: settings.limits(),
            max_per_product: settings.product_image_max_per_product,
        })
    }

    fn keys(image: &ProductImage) -> [object_store::path::Path; 2] {
        [Rendition::Original, Rendition::Thumbnail]
            .map(|r| ImageStore::key(image.product_id, image.id, image.content_type, r))
    }

    async fn delete_objects(&self, image: &ProductImage) -> Result<(), StorageError> {
        for key in Self::keys(image) {
            self.store.delete(&key).await?;
        }
        Ok(())
    }
}

async fn active_product(
    conn: &mut AsyncPgConnection,
    product: Uuid,
    lock: bool,
) -> Result<Product, ImageError> {
    let found = match lock {
        true => store::lock_product(conn, product).await?,
        false => store::find_product(conn, product, store::Scope::Active).await?,
    };
    found.filter(Product::is_active).ok_or(ImageError::ProductNotFound)
}

/// Checks, strips and stores one uploaded file as the product's last image.
#[tracing::instrument(skip_all, fields(product_id = %product, bytes = bytes.len()))]
pub async fn add(
    conn: &mut AsyncPgConnection,
    images: &Images,
    product: Uuid,
    bytes: Vec<u8>,
) -> Result<ProductImage, ImageError> {
    active_product(conn, product, false).await?;
    if store::product_images(conn, product).await?.len() as i64 >= images.max_per_product {
        return Err(ImageError::TooMany { max: images.max_per_product });
    }
    let limits = images.limits;
    // Decoding and encoding take a core for a while: not on the executor's threads.
    let processed = tokio::task::spawn_blocking(move || process(&bytes, &limits))
        .await
        .map_err(|error| ImageError::Worker(error.to_string()))??;
    let new = NewProductImage {
        id: Uuid::now_v7(),
        product_id: product,
        position: 0,
        content_type: processed.format,
        width: i32::try_from(processed.width).unwrap_or(i32::MAX),
        height: i32::try_from(processed.height).unwrap_or(i32::MAX),
        byte_size: processed.original.len() as i64,
        thumbnail_byte_size: processed.thumbnail.len() as i64,
    };
    let [original, thumbnail] = [Rendition::Original, Rendition::Thumbnail]
        .map(|r| ImageStore::key(product, new.id, processed.format, r));
    let stored = async {
        images.store.put(&original, processed.original).await?;
        images.store.put(&thumbnail, processed.thumbnail).await
    };
    let inserted = match stored.await {
        Ok(()) => insert(conn, images.max_per_product, new).await,
        Err(error) => Err(error.into()),
    };
    if inserted.is_err() {
        for key in [&original, &thumbnail] {
            if let Err(error) = images.store.delete(key).await {
                tracing::warn!(%error, %key, "cannot remove the objects of a failed upload");
            }
        }
    }
    inserted
}

/// The row, positioned last, under the product's lock (so concurrent uploads to one product
/// take turns and the count holds).
async fn insert(
    conn: &mut AsyncPgConnection,
    max: i64,
    new: NewProductImage,
) -> Result<ProductImage, ImageError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        active_product(conn, new.product_id, true).await?;
        let existing = store::product_images(conn, new.product_id).await?;
        if existing.len() as i64 >= max {
            return Err(ImageError::TooMany { max });
        }
        let position = existing.iter().map(|image| image.position + 1).max().unwrap_or(0);
        Ok(store::insert_image(conn, &NewProductImage { position, ..new }).await?)
    })
    .await
}

/// The product's images in display order.
pub async fn list(conn: &mut AsyncPgConnection, product: Uuid) -> Result<Vec<ProductImage>, ImageError> {
    active_product(conn, product, false).await?;
    Ok(store::product_images(conn, product).await?)
}

/// Puts the product's images in the order given, which must name each of them once.
#[tracing::instrument(skip_all, fields(product_id = %product))]
pub async fn reorder(
    conn: &mut AsyncPgConnection,
    product: Uuid,
    order: &[Uuid],
) -> Result<Vec<ProductImage>, ImageError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        active_product(conn, product, true).await?;
        let mut current: Vec<Uuid> =
            store::product_images(conn, product).await?.iter().map(|i| i.id).collect();
        let mut wanted = order.to_vec();
        current.sort();
        wanted.sort();
        if current != wanted {
            return Err(ImageError::OrderMismatch);
        }
        for (position, image) in order.iter().enumerate() {
            store::set_position(conn, product, *image, i32::try_from(position).unwrap_or(i32::MAX)).await?;
        }
        Ok(store::product_images(conn, product).await?)
    })
    .await
}

/// Deletes one image: its objects, then its row.
#[tracing::instrument(skip_all, fields(product_id = %product, image_id = %image))]
pub async fn remove(
    conn: &mut AsyncPgConnection,
    images: &Images,
    product: Uuid,
    image: Uuid,
) -> Result<(), ImageError> {
    let found = store::find_image(conn, product, image).await?.ok_or(ImageError::NotFound)?;
    images.delete_objects(&found).await?;
    store::delete_image(conn, product, image).await?;
    Ok(())
}

/// Deletes every image of a product (called when the product is deleted, soft delete
/// included: a deleted product shows nothing, and its images are not kept for an undelete
/// that does not exist). Objects first, then rows, so a retried product delete finishes it.
#[tracing::instrument(skip_all, fields(product_id = %product))]
pub async fn purge(
    conn: &mut AsyncPgConnection,
    images: &Images,
    product: Uuid,
) -> Result<usize, ImageError> {
    let all = store::product_images(conn, product).await?;
    for image in &all {
        images.delete_objects(image).await?;
    }
    Ok(store::delete_images_of(conn, product).await?.len())
}

/// One rendition's bytes and content type.
pub async fn bytes(
    conn: &mut AsyncPgConnection,
    images: &Images,
    product: Uuid,
    image: Uuid,
    rendition: Rendition,
) -> Result<(ImageFormat, actix_web::web::Bytes), ImageError> {
    let found = store::find_image(conn, product, image).await?.ok_or(ImageError::NotFound)?;
    let key = ImageStore::key(product, image, found.content_type, rendition);
    match images.store.get(&key).await {
        Ok(bytes) => Ok((found.content_type, bytes)),
        // Being deleted right now (objects go first).
        Err(StorageError::NotFound { .. }) => Err(ImageError::NotFound),
        Err(error) => Err(error.into()),
    }
}

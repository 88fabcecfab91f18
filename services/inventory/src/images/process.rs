//! From uploaded bytes to what is stored: the format by its signature, the pixel count from
//! the header before any pixel is decoded (a 100-byte PNG may declare 50,000 × 50,000 pixels,
//! 10 GB once decoded), a full decode under the decoder's own limits, then a re-encode of the
//! original and a thumbnail.
//!
//! Metadata is stripped by re-encoding, not by cutting EXIF/XMP/ICC chunks out of the original:
//! the decode is needed anyway (to prove the file is an image and to make the thumbnail), and
//! an encoder writes pixels and nothing else, so every kind of metadata goes (camera, GPS,
//! comments, text chunks, ICC profiles), and so do bytes hidden after the image (polyglot
//! files), with one code path instead of three chunk parsers. The price: JPEGs are re-compressed
//! (quality [`JPEG_QUALITY`]), WebP is stored lossless (the only WebP encoder `image` has),
//! and images with an ICC profile are shown as sRGB. The EXIF orientation is applied to the
//! pixels first, so a portrait photo stays upright once its EXIF is gone.

use super::format::ImageFormat;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader};
use std::io::Cursor;

/// JPEG quality of re-encoded originals and thumbnails: no visible loss for product photos.
pub const JPEG_QUALITY: u8 = 90;

/// What an upload may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most bytes a file may have.
    pub max_bytes: usize,
    /// The most pixels (width × height) an image may have.
    pub max_pixels: u64,
    /// The longer side of a thumbnail, in pixels.
    pub thumbnail_px: u32,
}

/// Why an upload is refused; each is the uploader's to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("the file is not a JPEG, PNG or WebP image (judged by its content, not its name)")]
    Unsupported,
    #[error("{detail}; at most {max} pixels (width × height) are accepted")]
    TooManyPixels { detail: String, max: u64 },
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}

/// An image as it will be stored.
#[derive(Debug)]
pub struct Processed {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// The original, re-encoded without metadata.
    pub original: Vec<u8>,
    pub thumbnail: Vec<u8>,
}

/// Checks and re-encodes one upload. CPU-bound: call it off the async executor.
pub fn process(bytes: &[u8], limits: &Limits) -> Result<Processed, Refusal> {
    if bytes.len() > limits.max_bytes {
        return Err(Refusal::TooLarge { max: limits.max_bytes });
    }
    let format = ImageFormat::sniff(bytes).ok_or(Refusal::Unsupported)?;
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // zune-jpeg decodes a cut-off scan as grey instead of failing.
        return Err(Refusal::Corrupt("the JPEG data ends before its end-of-image marker".into()));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.codec());
    reader.limits(decoder_limits(limits.max_pixels));
    let too_many = |detail: String| Refusal::TooManyPixels { detail, max: limits.max_pixels };
    let refuse = |error: ImageError| match error {
        ImageError::Limits(error) => too_many(format!("the image is too large to decode ({error})")),
        other => Refusal::Corrupt(other.to_string()),
    };
    // Reads the header only: nothing is decoded (or allocated for pixels) before this check.
    let mut decoder = reader.into_decoder().map_err(refuse)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(too_many(format!("the image is {width} × {height} pixels")));
    }
    let orientation = decoder.orientation().map_err(refuse)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(refuse)?;
    image.apply_orientation(orientation);
    let thumbnail = if image.width() > limits.thumbnail_px || image.height() > limits.thumbnail_px {
        image.thumbnail(limits.thumbnail_px, limits.thumbnail_px)
    } else {
        image.clone()
    };
    let encode_failed = |error: ImageError| Refusal::Corrupt(format!("cannot be re-encoded: {error}"));
    Ok(Processed {
        format,
        width: image.width(),
        height: image.height(),
        original: encode(&image, format).map_err(encode_failed)?,
        thumbnail: encode(&thumbnail, format).map_err(encode_failed)?,
    })
}

/// The decoder's own limits, a second line behind the header check: no side longer than the
/// whole pixel budget, and no allocation beyond it at 8 bytes a pixel (16-bit RGBA).
fn decoder_limits(max_pixels: u64) -> image::Limits {
    let mut limits = image::Limits::default();
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    limits
}

/// A JPEG whose last scan (after the last SOS marker, `FF DA`) is followed by the end-of-image
/// marker (`FF D9`); entropy-coded data never contains `FF D9` (an `FF` byte there is stuffed).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: [u8; 2]| bytes.windows(2).rposition(|pair| pair == marker);
    matches!((last([0xFF, 0xDA]), last([0xFF, 0xD9])), (Some(scan), Some(end)) if end > scan)
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, ImageError> {
    use image::codecs::{jpeg::JpegEncoder, png::PngEncoder, webp::WebPEncoder};
    let mut out = Vec::new();
    match format {
        ImageFormat::Jpeg => {
            let encoder = JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
            match image.color().has_color() {
                true => DynamicImage::ImageRgb8(image.to_rgb8()).write_with_encoder(encoder)?,
                false => DynamicImage::ImageLuma8(image.to_luma8()).write_with_encoder(encoder)?,
            }
        }
        ImageFormat::Png => image.write_with_encoder(PngEncoder::new(&mut out))?,
        ImageFormat::Webp => {
            let encoder = WebPEncoder::new_lossless(&mut out);
            match image.color().has_alpha() {
                true => DynamicImage::ImageRgba8(image.to_rgba8()).write_with_encoder(encoder)?,
                false => DynamicImage::ImageRgb8(image.to_rgb8()).write_with_encoder(encoder)?,
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;

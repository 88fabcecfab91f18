//! Image uploads at the gateway: the one kind of body that is neither JSON nor bounded by
//! `HTTP_BODY_LIMIT_BYTES`. The `bodies` guard reads it with [`upload_limit`] instead and skips
//! the JSON checks; inventory checks the file itself.

use actix_web::dev::ServiceRequest;
use actix_web::web;
use uuid::Uuid;

/// Room for the multipart framing around the file (boundaries, part headers).
const MULTIPART_FRAMING_BYTES: usize = 16 * 1024;

/// The body limit of an image upload: the file limit inventory enforces
/// (`PRODUCT_IMAGE_MAX_BYTES`, read by both) plus the multipart framing, so that a file the
/// limit allows is never cut off here and a larger one is refused before it reaches inventory.
pub fn upload_limit(product_image_max_bytes: usize) -> usize {
    product_image_max_bytes.saturating_add(MULTIPART_FRAMING_BYTES)
}

/// `POST /api/v1/products/{id}/images`: the one route whose body may exceed the JSON limit
/// (and is not JSON).
pub fn is_upload(req: &ServiceRequest) -> bool {
    let path = req.path();
    req.method() == actix_web::http::Method::POST
        && path
            .strip_prefix("/api/v1/products/")
            .and_then(|rest| rest.strip_suffix("/images"))
            .is_some_and(|id| id.parse::<Uuid>().is_ok())
}

/// Reads an upload's body, refusing it once it passes `limit` bytes (413, like any body).
pub async fn read_upload(req: &mut ServiceRequest, limit: usize) -> Result<web::Bytes, String> {
    use actix_web::HttpMessage;
    use futures_util::StreamExt;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(format!("the upload limit is {limit} bytes"));
    }
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| error.to_string())?;
        if body.len() + chunk.len() > limit {
            return Err(format!("the upload limit is {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_file_limit_plus_the_framing() {
        assert_eq!(upload_limit(5 << 20), (5 << 20) + MULTIPART_FRAMING_BYTES);
        assert_eq!(upload_limit(usize::MAX), usize::MAX);
    }
}

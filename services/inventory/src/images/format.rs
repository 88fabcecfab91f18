//! What a file is, from its first bytes: the name and declared content type of an upload are
//! the client's word and are never read. Only the three formats the shop serves are known.

/// An accepted image format, recognised by its signature.
/// Stored as its content type (`product_images.content_type`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::EnumString,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum ImageFormat {
    #[strum(serialize = "image/jpeg")]
    Jpeg,
    #[strum(serialize = "image/png")]
    Png,
    #[strum(serialize = "image/webp")]
    Webp,
}

impl ImageFormat {
    /// The format whose signature `bytes` start with; `None` for anything else (a script, an
    /// HTML page, a GIF, an empty file).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        match bytes {
            // SOI followed by the first marker's 0xFF.
            [0xFF, 0xD8, 0xFF, ..] => Some(Self::Jpeg),
            _ if bytes.starts_with(PNG) => Some(Self::Png),
            // RIFF <4-byte size> WEBP
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(Self::Webp),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        self.into()
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }

    pub(super) fn codec(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::Webp => image::ImageFormat::WebP,
        }
    }
}

contracts::text_column!(ImageFormat);

#[cfg(test)]
mod tests {
    use super::ImageFormat;

    #[test]
    fn formats_are_recognised_by_their_signature() {
        assert_eq!(ImageFormat::sniff(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"), Some(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(ImageFormat::Png));
        assert_eq!(ImageFormat::sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some(ImageFormat::Webp));
    }

    #[test]
    fn anything_else_is_refused_whatever_it_is_called() {
        for bytes in [
            &b"#!/bin/sh\nrm -rf /\n"[..],
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            b"GIF89a\x01\x00\x01\x00",
            b"RIFF\x24\0\0\0WAVEfmt ",
            b"\x89PNG\r\n",
            b"\xFF\xD8",
            b"",
        ] {
            assert_eq!(ImageFormat::sniff(bytes), None, "{bytes:?}");
        }
    }

    #[test]
    fn the_content_type_round_trips_for_storage() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp] {
            assert_eq!(format.content_type().parse::<ImageFormat>().ok(), Some(format));
        }
    }
}

//! Where the feed comes from: an HTTP(S) URL in production, a file for `make run` (the bundled
//! `deploy/rates/eurofxref-daily.xml`, so it works offline) and for operators without egress.

use platform::settings::SettingsError;
use std::path::PathBuf;
use std::time::Duration;

/// The daily feed is ~2 KiB; anything far larger is not it.
const MAX_BYTES: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Http(String),
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("the source answered {0}")]
    Status(reqwest::StatusCode),
    #[error("{path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("the feed is larger than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("the feed is not UTF-8 text")]
    NotText,
}

impl Source {
    /// `None` for an empty setting (no source: the job is off).
    pub fn parse(raw: &str) -> Result<Option<Self>, SettingsError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.starts_with("http://") || raw.starts_with("https://") {
            return reqwest::Url::parse(raw).map(|_| Some(Self::Http(raw.to_owned()))).map_err(|e| {
                SettingsError::Invalid { key: "rates_source_url", reason: format!("not a URL: {e}") }
            });
        }
        if let Some(path) = raw.strip_prefix("file://") {
            return Ok(Some(Self::File(PathBuf::from(path))));
        }
        if raw.contains("://") {
            return Err(SettingsError::Invalid {
                key: "rates_source_url",
                reason: "must be http(s)://…, file:///… or a file path".into(),
            });
        }
        Ok(Some(Self::File(PathBuf::from(raw))))
    }

    pub async fn fetch(&self) -> Result<String, FetchError> {
        let bytes = match self {
            Self::Http(url) => {
                let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
                let mut response = client.get(url).send().await?;
                if !response.status().is_success() {
                    return Err(FetchError::Status(response.status()));
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_BYTES {
                        return Err(FetchError::TooLarge);
                    }
                }
                body
            }
            Self::File(path) => {
                let file_error = |error| FetchError::File { path: path.display().to_string(), error };
                let bytes = tokio::fs::read(path).await.map_err(file_error)?;
                if bytes.len() > MAX_BYTES {
                    return Err(FetchError::TooLarge);
                }
                bytes
            }
        };
        String::from_utf8(bytes).map_err(|_| FetchError::NotText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_files_and_paths_are_told_apart() {
        let parsed = |raw: &str| Source::parse(raw).map_err(|e| e.to_string());
        assert_eq!(parsed(""), Ok(None));
        assert_eq!(
            parsed("https://x.example/f.xml"),
            Ok(Some(Source::Http("https://x.example/f.xml".into())))
        );
        assert_eq!(parsed("file:///srv/f.xml"), Ok(Some(Source::File("/srv/f.xml".into()))));
        assert_eq!(parsed("deploy/rates/f.xml"), Ok(Some(Source::File("deploy/rates/f.xml".into()))));
        assert!(parsed("ftp://x.example/f.xml").is_err());
    }
}

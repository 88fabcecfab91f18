//! Webhook URLs may carry credentials (`https://user:pass@host/hook`), which the client sends
//! as Basic authentication. They are the integrator's secret: a URL that leaves the dispatcher
//! by any other way than the request itself (a log line, an API answer, an event, an attempt's
//! error) goes through [`url`] first.

/// What stands in for a user name or password.
pub const REDACTED: &str = "redacted";
/// Passwords shorter than this are not searched for in free text: replacing `ab` everywhere
/// would garble messages and protect nothing (the whole URL is redacted anyway).
const MIN_SCRUBBED_LEN: usize = 4;

/// `raw` with its user name and password, if any, replaced by [`REDACTED`].
pub fn url(raw: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(raw) else {
        // Stored URLs were parsed at creation; anything else is shown as nothing at all
        // rather than risk showing a credential.
        return "(unparsable URL)".to_owned();
    };
    if has_credentials(&parsed) {
        // Only `cannot-be-a-base` URLs refuse credentials, and those have none to hide.
        let _ = parsed.set_username(REDACTED);
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some(REDACTED));
        }
    }
    parsed.into()
}

pub fn has_credentials(url: &reqwest::Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// `message` with every appearance of `url`'s credentials replaced: the whole URL as written,
/// then its password as written and percent-decoded. For free text (error chains from the HTTP
/// stack) that might quote the URL.
pub fn scrub(message: &str, url: &reqwest::Url) -> String {
    if !has_credentials(url) {
        return message.to_owned();
    }
    let mut scrubbed = message.replace(url.as_str(), &self::url(url.as_str()));
    let mut secrets = vec![url.username().to_owned()];
    secrets.extend(url.password().map(str::to_owned));
    for secret in secrets {
        let decoded = percent_decode(&secret);
        for form in [secret, decoded] {
            if form.len() >= MIN_SCRUBBED_LEN {
                scrubbed = scrubbed.replace(&form, REDACTED);
            }
        }
    }
    scrubbed
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_webhooks_credentials_in_urls_are_redacted_and_the_rest_kept() {
        assert_eq!(
            url("https://hooks:p%40ss-w0rd@example.com:8443/in?x=1"),
            "https://redacted:redacted@example.com:8443/in?x=1"
        );
        assert_eq!(url("https://tok_live_123@example.com/in"), "https://redacted@example.com/in");
        assert_eq!(url("https://example.com/in"), "https://example.com/in");
        assert_eq!(url("not a url with user:pass@host"), "(unparsable URL)");
    }

    #[test]
    fn security_webhooks_free_text_loses_the_url_and_the_password_in_every_form() {
        let Ok(parsed) = reqwest::Url::parse("http://hooks:p%40ss-w0rd@127.0.0.1:9/in") else {
            return;
        };
        let message = "error sending request for url (http://hooks:p%40ss-w0rd@127.0.0.1:9/in): \
                       auth p@ss-w0rd refused, p%40ss-w0rd";
        let scrubbed = scrub(message, &parsed);
        assert!(!scrubbed.contains("p@ss-w0rd") && !scrubbed.contains("p%40ss-w0rd"), "{scrubbed}");
        assert!(scrubbed.contains("http://redacted:redacted@127.0.0.1:9/in"), "{scrubbed}");
        let Ok(plain) = reqwest::Url::parse("http://127.0.0.1:9/in") else { return };
        assert_eq!(scrub("as is", &plain), "as is");
    }
}

//! The words of every message live in `templates/`, embedded at build time, and are filled by a
//! deliberately tiny renderer: `{{name}}` inserts a value (HTML-escaped in HTML templates),
//! `{{{name}}}` inserts an already-rendered fragment as it is. A placeholder without a value
//! is left visible, and tests assert that no rendered message contains one.

/// One template file, and whether values must be escaped for HTML.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    source: &'static str,
    html: bool,
}

macro_rules! templates {
    ($($name:ident = $file:literal, html: $html:literal;)+) => {
        $(pub const $name: Template = Template {
            source: include_str!(concat!("../templates/", $file)),
            html: $html,
        };)+
    };
}

templates! {
    INVOICE_TEXT = "invoice.txt", html: false;
    INVOICE_HTML = "invoice.html", html: true;
    INVOICE_LINE_HTML = "invoice_line.html", html: true;
    INVOICE_SMS = "invoice.sms.txt", html: false;
    FAILURE_TEXT = "failure_notice.txt", html: false;
    FAILURE_HTML = "failure_notice.html", html: true;
    FAILURE_SMS = "failure_notice.sms.txt", html: false;
    CANCELLATION_TEXT = "cancellation_notice.txt", html: false;
    CANCELLATION_HTML = "cancellation_notice.html", html: true;
    CANCELLATION_SMS = "cancellation_notice.sms.txt", html: false;
    REFUND_TEXT = "refund_notice.txt", html: false;
    REFUND_HTML = "refund_notice.html", html: true;
    REFUND_SMS = "refund_notice.sms.txt", html: false;
    DAILY_SUMMARY_TEXT = "daily_summary.txt", html: false;
    VERIFICATION_TEXT = "email_verification.txt", html: false;
    VERIFICATION_HTML = "email_verification.html", html: true;
    PASSWORD_RESET_TEXT = "password_reset.txt", html: false;
    PASSWORD_RESET_HTML = "password_reset.html", html: true;
}

impl Template {
    pub fn render(&self, vars: &[(&str, &str)]) -> String {
        render(self.source, vars, self.html)
    }

    /// For text templates whose first line is `Subject: …`: the rendered subject and body.
    pub fn render_with_subject(&self, vars: &[(&str, &str)]) -> (String, String) {
        let rendered = self.render(vars);
        let (first, rest) = rendered.split_once('\n').unwrap_or((rendered.as_str(), ""));
        let subject = first.strip_prefix("Subject:").unwrap_or(first).trim();
        (subject.to_owned(), rest.to_owned())
    }
}

fn render(source: &str, vars: &[(&str, &str)], html: bool) -> String {
    let mut out = String::with_capacity(source.len() + 256);
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let (raw, open, close) = if after.starts_with("{{{") { (true, 3, "}}}") } else { (false, 2, "}}") };
        let Some(end) = after[open..].find(close) else {
            out.push_str(after);
            return out;
        };
        let name = after[open..open + end].trim();
        let placeholder = &after[..open + end + close.len()];
        match vars.iter().find(|(key, _)| *key == name) {
            Some((_, value)) if html && !raw => escape_html(value, &mut out),
            Some((_, value)) => out.push_str(value),
            None => out.push_str(placeholder),
        }
        rest = &after[placeholder.len()..];
    }
    out.push_str(rest);
    out
}

pub fn escape_html(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn values_are_inserted_and_escaped_only_in_html() {
        let vars = [("name", "Ada <b>&</b> \"Co\""), ("rows", "<tr></tr>")];
        assert_eq!(render("Hi {{name}}!", &vars, false), "Hi Ada <b>&</b> \"Co\"!");
        assert_eq!(
            render("<p>{{ name }}</p>{{{rows}}}", &vars, true),
            "<p>Ada &lt;b&gt;&amp;&lt;/b&gt; &quot;Co&quot;</p><tr></tr>"
        );
    }

    #[test]
    fn unknown_or_unclosed_placeholders_stay_visible() {
        assert_eq!(render("a {{missing}} b", &[], true), "a {{missing}} b");
        assert_eq!(render("a {{open", &[("open", "x")], false), "a {{open");
        assert_eq!(render("${{total}}", &[("total", "5.00")], true), "$5.00");
    }
}

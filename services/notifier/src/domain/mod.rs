//! The notifier's vocabulary, free of SQL and SMTP: kinds, channels and a rendered message with
//! the deliveries it makes. What the messages say is in `messages` and `templates/`.

use contracts::events::{Customer, NotificationKind};

/// How a notification reaches the customer; stored as `email` / `sms`.
pub use contracts::events::Channel;

/// One message for one customer, in every form a channel may need.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub kind: NotificationKind,
    pub customer: Customer,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sms: String,
}

/// What one notification record holds: a message on one channel to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub channel: Channel,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub html_body: Option<&'a str>,
}

impl Rendered {
    /// An email always; an SMS only when the customer gave a phone number.
    pub fn deliveries(&self) -> Vec<Delivery<'_>> {
        let email = Delivery {
            channel: Channel::Email,
            recipient: &self.customer.email,
            subject: &self.subject,
            body: &self.text,
            html_body: Some(&self.html),
        };
        let sms =
            self.customer.phone.as_deref().filter(|phone| !phone.trim().is_empty()).map(|phone| Delivery {
                channel: Channel::Sms,
                recipient: phone,
                subject: &self.subject,
                body: &self.sms,
                html_body: None,
            });
        std::iter::once(email).chain(sms).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(phone: Option<&str>) -> Rendered {
        Rendered {
            kind: NotificationKind::Invoice,
            customer: Customer {
                name: "Ada".into(),
                email: "ada@example.com".into(),
                phone: phone.map(str::to_owned),
            },
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            sms: "m".into(),
        }
    }

    #[test]
    fn a_customer_without_a_phone_gets_only_an_email() {
        let channels = |r: &Rendered| r.deliveries().iter().map(|d| d.channel).collect::<Vec<_>>();
        assert_eq!(channels(&rendered(None)), [Channel::Email]);
        assert_eq!(channels(&rendered(Some(" "))), [Channel::Email]);
        let with_phone = rendered(Some("+14155550123"));
        assert_eq!(channels(&with_phone), [Channel::Email, Channel::Sms]);
        assert_eq!(with_phone.deliveries()[1].recipient, "+14155550123");
        assert_eq!(with_phone.deliveries()[1].body, "m");
    }
}

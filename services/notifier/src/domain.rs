//! What the emails say, free of SQL and SMTP: rendering is a pure function of the event, so the
//! layout is pinned by unit tests and a replayed event renders the same email.

use contracts::events::{NotificationKind, OrderConfirmed, OrderFailed};

/// The only channel so far; stored per row so SMS or push can join without a migration.
pub const EMAIL: &str = "email";

const RULE: &str = "============================================================";
const THIN_RULE: &str = "------------------------------------------------------------";
/// Longer names are cut so the quantity and price columns stay aligned.
const MAX_ITEM_CHARS: usize = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub kind: NotificationKind,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

pub fn kind_str(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Invoice => "invoice",
        NotificationKind::FailureNotice => "failure_notice",
        NotificationKind::CancellationNotice => "cancellation_notice",
        NotificationKind::RefundNotice => "refund_notice",
    }
}

pub fn parse_kind(raw: &str) -> Option<NotificationKind> {
    match raw {
        "invoice" => Some(NotificationKind::Invoice),
        "failure_notice" => Some(NotificationKind::FailureNotice),
        "cancellation_notice" => Some(NotificationKind::CancellationNotice),
        "refund_notice" => Some(NotificationKind::RefundNotice),
        _ => None,
    }
}

pub fn invoice(order: &OrderConfirmed) -> Rendered {
    Rendered {
        kind: NotificationKind::Invoice,
        recipient: order.customer.email.clone(),
        subject: format!("Your invoice for order {}", order.order_id),
        body: invoice_body(order),
    }
}

/// The plain-text invoice: fixed-width columns, 60-character rules, amounts with two decimals.
pub fn invoice_body(order: &OrderConfirmed) -> String {
    let mut lines: Vec<String> = vec![
        RULE.into(),
        "INVOICE".into(),
        RULE.into(),
        format!("Order ID: {}", order.order_id),
        format!("Date: {}", order.placed_at.format("%B %-d, %Y %I:%M %p")),
        THIN_RULE.into(),
        "CUSTOMER INFORMATION".into(),
        THIN_RULE.into(),
        format!("Name: {}", order.customer.name),
        format!("Email: {}", order.customer.email),
        THIN_RULE.into(),
        "ORDER ITEMS".into(),
        THIN_RULE.into(),
        format!("{:<31}{:<6}{:<11}{}", "Item", "Qty", "Price", "Subtotal"),
        THIN_RULE.into(),
    ];
    for line in &order.lines {
        let name: String = line.product_name.chars().take(MAX_ITEM_CHARS).collect();
        let price = format!("${}", line.unit_price);
        lines.push(format!(
            "{name:<31}{:<6}{price:<11}${}",
            line.quantity, line.subtotal
        ));
    }
    lines.extend([
        THIN_RULE.into(),
        format!("{:<47}$ {}", "TOTAL", order.total_amount),
        RULE.into(),
        "Thank you for your order!".into(),
    ]);
    let mut body = lines.join("\n");
    body.push('\n');
    body
}

pub fn failure_notice(order: &OrderFailed) -> Rendered {
    Rendered {
        kind: NotificationKind::FailureNotice,
        recipient: order.customer.email.clone(),
        subject: format!("Your order {} could not be completed", order.order_id),
        body: failure_notice_body(order),
    }
}

pub fn failure_notice_body(order: &OrderFailed) -> String {
    format!(
        "Hello {name},\n\n\
         We are sorry: your order {order_id} could not be completed because {explanation}.\n\n\
         You are welcome to place a new order at any time.\n",
        name = order.customer.name,
        order_id = order.order_id,
        explanation = order.reason.explanation(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use contracts::Amount;
    use contracts::events::{Customer, FailureReason, OrderLine};
    use uuid::Uuid;

    fn amount(raw: &str) -> Amount {
        raw.parse().unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    fn line(name: &str, quantity: u32, price: &str, subtotal: &str) -> OrderLine {
        OrderLine {
            product_id: Uuid::from_u128(7),
            product_name: name.into(),
            quantity,
            unit_price: amount(price),
            subtotal: amount(subtotal),
        }
    }

    fn customer() -> Customer {
        Customer {
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            phone: None,
        }
    }

    fn confirmed() -> OrderConfirmed {
        OrderConfirmed {
            order_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001),
            customer: customer(),
            currency: "USD".parse().unwrap_or_else(|e| panic!("{e}")),
            lines: vec![
                line("Laptop", 2, "999.99", "1999.98"),
                line("An extraordinarily long product name that overflows", 1, "5", "5"),
            ],
            total_amount: amount("2004.98"),
            placed_at: chrono::Utc
                .with_ymd_and_hms(2026, 11, 22, 15, 4, 5)
                .single()
                .unwrap_or_default(),
            payment_id: Uuid::from_u128(9),
        }
    }

    #[test]
    fn the_invoice_layout_is_pinned() {
        let expected = "\
============================================================
INVOICE
============================================================
Order ID: 01930000-0000-7000-8000-000000000001
Date: November 22, 2026 03:04 PM
------------------------------------------------------------
CUSTOMER INFORMATION
------------------------------------------------------------
Name: Ada Lovelace
Email: ada@example.com
------------------------------------------------------------
ORDER ITEMS
------------------------------------------------------------
Item                           Qty   Price      Subtotal
------------------------------------------------------------
Laptop                         2     $999.99    $1999.98
An extraordinarily long produc 1     $5.00      $5.00
------------------------------------------------------------
TOTAL                                          $ 2004.98
============================================================
Thank you for your order!
";
        assert_eq!(invoice_body(&confirmed()), expected);
    }

    #[test]
    fn the_invoice_goes_to_the_customer_with_the_order_in_the_subject() {
        let rendered = invoice(&confirmed());
        assert_eq!(rendered.kind, NotificationKind::Invoice);
        assert_eq!(rendered.recipient, "ada@example.com");
        assert_eq!(
            rendered.subject,
            "Your invoice for order 01930000-0000-7000-8000-000000000001"
        );
    }

    #[test]
    fn a_failure_notice_explains_the_reason_in_plain_words() {
        let order = OrderFailed {
            order_id: Uuid::from_u128(1),
            customer: customer(),
            reason: FailureReason::InsufficientFunds,
            lines: vec![],
        };
        let rendered = failure_notice(&order);
        assert_eq!(
            rendered.subject,
            format!("Your order {} could not be completed", order.order_id)
        );
        assert!(
            rendered
                .body
                .contains("because your payment was declined for insufficient funds."),
            "{}",
            rendered.body
        );
        assert!(rendered.body.starts_with("Hello Ada Lovelace,"));
    }

    #[test]
    fn kinds_round_trip_through_their_column_values() {
        for kind in [NotificationKind::Invoice, NotificationKind::FailureNotice] {
            assert_eq!(parse_kind(kind_str(kind)), Some(kind));
        }
        assert_eq!(parse_kind("sms"), None);
    }
}

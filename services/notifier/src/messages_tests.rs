use super::*;
use chrono::TimeZone;
use contracts::Amount;
use contracts::events::{FailureReason, OrderLine, OrderStatus, ReservedLine};
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
        phone: Some("+14155550123".into()),
    }
}

const ORDER: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);

fn confirmed() -> OrderConfirmed {
    OrderConfirmed {
        order_id: ORDER,
        customer: customer(),
        currency: "USD".parse().unwrap_or_else(|e| panic!("{e}")),
        lines: vec![
            line("Laptop", 2, "999.99", "1999.98"),
            line("An extraordinarily long product name that overflows", 1, "5", "5"),
        ],
        total_amount: amount("2004.98"),
        placed_at: chrono::Utc.with_ymd_and_hms(2026, 11, 22, 15, 4, 5).single().unwrap_or_default(),
        payment_id: Uuid::from_u128(9),
        order_link: None,
        exchange_rate: None,
    }
}

fn failed() -> OrderFailed {
    OrderFailed {
        order_id: ORDER,
        customer: customer(),
        reason: FailureReason::InsufficientFunds,
        lines: vec![],
    }
}

fn cancelled(previous_status: OrderStatus, cancelled_by: CancelledBy) -> OrderCancelled {
    OrderCancelled {
        order_id: ORDER,
        customer: customer(),
        previous_status,
        cancelled_by,
        currency: "EUR".parse().unwrap_or_else(|e| panic!("{e}")),
        total_amount: amount("42"),
        lines: vec![ReservedLine { product_id: Uuid::from_u128(7), quantity: 1 }],
    }
}

fn refunded() -> PaymentRefunded {
    PaymentRefunded {
        order_id: ORDER,
        payment_id: Uuid::from_u128(9),
        refund_id: Uuid::from_u128(10),
        amount: amount("42"),
        currency: "EUR".parse().unwrap_or_else(|e| panic!("{e}")),
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
TOTAL                                          $2004.98 USD
============================================================
Thank you for your order!
";
    assert_eq!(invoice_body(&confirmed()), expected);
}

/// Issue 10: every invoice used to print `$`, whatever the order's currency.
#[test]
fn notifier_fixes_invoices_print_the_order_currency_in_text_and_html() {
    let priced = |code: &str, unit: &str, total: &str| {
        let mut order = confirmed();
        order.currency = code.parse().unwrap_or_else(|e| panic!("{e}"));
        order.lines = vec![line("Laptop", 2, unit, total)];
        order.total_amount = amount(total);
        invoice(&order)
    };
    let cases = [
        ("usd", priced("USD", "999.99", "1999.98")),
        ("eur", priced("EUR", "12.5", "25")),
        ("jpy", priced("JPY", "600", "1200")),
    ];
    for (code, rendered) in &cases {
        insta::assert_snapshot!(format!("invoice_currency_{code}_text"), rendered.text);
        insta::assert_snapshot!(format!("invoice_currency_{code}_html"), rendered.html);
        insta::assert_snapshot!(format!("invoice_currency_{code}_sms"), rendered.sms);
    }
    let (eur, jpy) = (&cases[1].1, &cases[2].1);
    assert!(!eur.text.contains('$') && !eur.html.contains('$'), "{}", eur.text);
    assert!(eur.text.contains("€25.00 EUR") && eur.html.contains("€12.50"), "{}", eur.text);
    assert!(jpy.text.contains("¥1200 JPY") && !jpy.text.contains("1200.00"), "{}", jpy.text);
    assert!(jpy.html.contains("¥600") && jpy.sms.contains("1200 JPY"), "{}", jpy.html);
}

#[test]
fn the_invoice_goes_to_the_customer_with_the_order_in_the_subject() {
    let rendered = invoice(&confirmed());
    assert_eq!(rendered.kind, NotificationKind::Invoice);
    assert_eq!(rendered.customer.email, "ada@example.com");
    assert_eq!(rendered.subject, "Your invoice for order 01930000-0000-7000-8000-000000000001");
}

#[test]
fn a_failure_notice_explains_the_reason_in_plain_words() {
    let rendered = failure_notice(&failed());
    assert_eq!(rendered.subject, format!("Your order {ORDER} could not be completed"));
    assert!(
        rendered.text.contains("because your payment was declined for insufficient funds."),
        "{}",
        rendered.text
    );
    assert!(rendered.text.starts_with("Hello Ada Lovelace,"));
}

#[test]
fn names_are_escaped_in_html_and_left_alone_in_text() {
    let mut order = confirmed();
    order.customer.name = "Ada <script>alert(1)</script> & Co".into();
    order.lines[0].product_name = "Cables & <Adapters>".into();
    let rendered = invoice(&order);
    assert!(rendered.html.contains("Name: Ada &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"));
    assert!(rendered.html.contains("<td>Cables &amp; &lt;Adapters&gt;</td>"));
    assert!(!rendered.html.contains("<script>"));
    assert!(rendered.text.contains("Name: Ada <script>alert(1)</script> & Co"));
}

#[test]
fn a_converted_order_s_invoice_prints_the_rate_it_locked() {
    let mut order = confirmed();
    order.currency = "EUR".parse().unwrap_or_else(|e| panic!("{e}"));
    order.exchange_rate = Some(contracts::exchange::LockedRate {
        from: "USD".parse().unwrap_or_else(|e| panic!("{e}")),
        to: "EUR".parse().unwrap_or_else(|e| panic!("{e}")),
        rate: "0.8640802".parse().unwrap_or_default(),
        date: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default(),
    });
    let rendered = invoice(&order);
    assert!(
        rendered.text.contains(
            "2004.98 EUR\nPrices converted from USD at 1 USD = 0.8640802 EUR,\nECB reference rate of 2026-11-30.\n"
        ),
        "{}",
        rendered.text
    );
    assert!(
        rendered.html.contains("</table>\n<p>Prices converted from USD at 1 USD = 0.8640802 EUR (ECB reference rate of 2026-11-30).</p>"),
        "{}",
        rendered.html
    );
    assert!(
        !invoice(&confirmed()).text.contains("converted"),
        "an order in its products' currency has no note"
    );
}

#[test]
fn a_guest_invoice_carries_its_order_link_and_an_account_invoice_none() {
    let mut order = confirmed();
    order.order_link = Some("https://shop.example/api/v1/orders/x?access_token=ab-c_d&x=<y>".into());
    let rendered = invoice(&order);
    assert!(
        rendered.text.ends_with(
            "Thank you for your order!\nView or cancel your order: https://shop.example/api/v1/orders/x?access_token=ab-c_d&x=<y>\n"
        ),
        "{}",
        rendered.text
    );
    assert!(
        rendered.html.contains(
            r#"<a href="https://shop.example/api/v1/orders/x?access_token=ab-c_d&amp;x=&lt;y&gt;">View or cancel your order</a>"#
        ),
        "{}",
        rendered.html
    );
    assert!(!invoice(&confirmed()).text.contains("View or cancel"), "an account's invoice has no link");
}

/// Every form of every message, pinned; `cargo insta review` shows a change before it ships.
#[test]
fn every_message_in_every_form_is_pinned() {
    let cases = [
        ("invoice", invoice(&confirmed())),
        ("failure_notice", failure_notice(&failed())),
        (
            "cancellation_notice_confirmed",
            cancellation_notice(&cancelled(OrderStatus::Confirmed, CancelledBy::Customer)),
        ),
        (
            "cancellation_notice_pending",
            cancellation_notice(&cancelled(OrderStatus::Pending, CancelledBy::System)),
        ),
        ("refund_notice", refund_notice(&refunded(), &customer())),
    ];
    for (name, rendered) in cases {
        for (form, content) in [("text", &rendered.text), ("html", &rendered.html), ("sms", &rendered.sms)] {
            assert!(!content.contains("{{"), "{name} {form} has an unfilled placeholder:\n{content}");
        }
        insta::assert_snapshot!(format!("{name}_subject"), rendered.subject);
        insta::assert_snapshot!(format!("{name}_text"), rendered.text);
        insta::assert_snapshot!(format!("{name}_html"), rendered.html);
        insta::assert_snapshot!(format!("{name}_sms"), rendered.sms);
    }
}

#[test]
fn account_messages_carry_the_link_and_its_expiry_by_email_only() {
    let expires_at = chrono::Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 0).single().unwrap_or_default();
    let link = "https://shop.example/verify-email?token=abc-_123";
    let verification = email_verification(&contracts::events::AccountRegistered {
        account_id: ORDER,
        token_id: Uuid::from_u128(9),
        email: "ada@example.com".into(),
        name: "Ada <Lovelace>".into(),
        verification_link: contracts::events::SecretLink::new(link.into()),
        expires_at,
    });
    let reset = password_reset(&contracts::events::PasswordResetRequested {
        account_id: ORDER,
        token_id: Uuid::from_u128(10),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        reset_link: contracts::events::SecretLink::new(link.replace("verify-email", "reset-password")),
        expires_at,
    });
    assert_eq!(verification.subject, "Confirm your email address");
    assert_eq!(reset.subject, "Reset your password");
    for (rendered, page) in [(&verification, "verify-email"), (&reset, "reset-password")] {
        let link = link.replace("verify-email", page);
        assert!(rendered.text.contains(&link) && rendered.html.contains(&format!("href=\"{link}\"")));
        assert!(rendered.text.contains("November 23, 2026 09:30 UTC"), "{}", rendered.text);
        assert!(!rendered.text.contains("{{") && !rendered.html.contains("{{"));
        let channels: Vec<_> = rendered.deliveries().iter().map(|d| d.channel).collect();
        assert_eq!(channels, [crate::domain::Channel::Email]);
    }
    assert!(verification.html.contains("Ada &lt;Lovelace&gt;"), "names are escaped in HTML");
    assert_eq!(verification.kind, NotificationKind::EmailVerification);
    assert!(!NotificationKind::PasswordReset.is_about_an_order());
}

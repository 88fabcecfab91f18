//! What the messages say: a pure function of the event, filled into `templates/`, so the
//! layouts are pinned by tests and a replayed event renders the same message.

use crate::domain::Rendered;
use crate::money::MoneyFormat;
use crate::template::{self, Template};
use contracts::events::{
    AccountRegistered, CancelledBy, Customer, NotificationKind, OrderCancelled, OrderConfirmed, OrderFailed,
    OrderStatus, PasswordResetRequested, PaymentRefunded,
};

/// Longer names are cut so the quantity and price columns stay aligned.
const MAX_ITEM_CHARS: usize = 30;

struct Templates {
    text: Template,
    html: Template,
    sms: Template,
}

fn render(
    kind: NotificationKind,
    customer: &Customer,
    templates: Templates,
    vars: &[(&str, &str)],
) -> Rendered {
    let (subject, text) = templates.text.render_with_subject(vars);
    Rendered {
        kind,
        customer: customer.clone(),
        subject,
        text,
        html: templates.html.render(vars),
        sms: templates.sms.render(vars).trim_end().to_owned(),
    }
}

/// Every amount in the order's own currency: symbol and decimals per line, symbol and code
/// in the total (`€42.00 EUR`, `¥1200 JPY`).
pub fn invoice(order: &OrderConfirmed) -> Rendered {
    let (order_id, date) = invoice_vars(order);
    let money = MoneyFormat::of(&order.currency);
    let (total, total_money) =
        (money.number(order.total_amount.as_decimal()), money.full(order.total_amount.as_decimal()));
    let currency = order.currency.to_string();
    let html_lines: String = order
        .lines
        .iter()
        .map(|line| {
            template::INVOICE_LINE_HTML.render(&[
                ("name", &line.product_name),
                ("quantity", &line.quantity.to_string()),
                ("price", &money.short(line.unit_price.as_decimal())),
                ("subtotal", &money.short(line.subtotal.as_decimal())),
            ])
        })
        .collect();
    let text_lines = text_lines(order, &money);
    let vars: [(&str, &str); _] = [
        ("order_id", order_id.as_str()),
        ("date", &date),
        ("name", &order.customer.name),
        ("email", &order.customer.email),
        ("total", &total),
        ("total_money", &total_money),
        ("currency", &currency),
    ];
    // A guest order's link (with its access token); account orders have none: log in instead.
    let (link_text, link_html) = match &order.order_link {
        Some(link) => {
            let mut escaped = String::new();
            template::escape_html(link, &mut escaped);
            (
                format!("\nView or cancel your order: {link}"),
                format!("\n<p><a href=\"{escaped}\">View or cancel your order</a></p>"),
            )
        }
        None => (String::new(), String::new()),
    };
    let (note_text, note_html) = exchange_note(order);
    let text_vars = [
        &vars[..],
        &[
            ("lines", text_lines.as_str()),
            ("order_link", link_text.as_str()),
            ("exchange_note", note_text.as_str()),
        ],
    ]
    .concat();
    let html_vars = [
        &vars[..],
        &[
            ("lines", html_lines.trim_end()),
            ("order_link", link_html.as_str()),
            ("exchange_note", note_html.as_str()),
        ],
    ]
    .concat();
    let (subject, text) = template::INVOICE_TEXT.render_with_subject(&text_vars);
    Rendered {
        kind: NotificationKind::Invoice,
        customer: order.customer.clone(),
        subject,
        text,
        html: template::INVOICE_HTML.render(&html_vars),
        sms: template::INVOICE_SMS.render(&vars).trim_end().to_owned(),
    }
}

/// An order paid in another currency than its products': the rate its prices were converted
/// with, locked when it was placed (empty otherwise, so other invoices read as before).
fn exchange_note(order: &OrderConfirmed) -> (String, String) {
    let Some(locked) = &order.exchange_rate else {
        return (String::new(), String::new());
    };
    let (from, to, rate, date) = (&locked.from, &locked.to, &locked.rate, locked.date);
    (
        format!("\nPrices converted from {from} at 1 {from} = {rate} {to},\nECB reference rate of {date}."),
        format!(
            "\n<p>Prices converted from {from} at 1 {from} = {rate} {to} (ECB reference rate of {date}).</p>"
        ),
    )
}

/// The plain-text invoice: fixed-width columns, 60-character rules, amounts in the order's
/// currency.
pub fn invoice_body(order: &OrderConfirmed) -> String {
    invoice(order).text
}

fn invoice_vars(order: &OrderConfirmed) -> (String, String) {
    (order.order_id.to_string(), order.placed_at.format("%B %-d, %Y %I:%M %p").to_string())
}

/// One fixed-width row per line: name (cut to fit), quantity, unit price, subtotal.
fn text_lines(order: &OrderConfirmed, money: &MoneyFormat) -> String {
    order
        .lines
        .iter()
        .map(|line| {
            let name: String = line.product_name.chars().take(MAX_ITEM_CHARS).collect();
            let price = money.short(line.unit_price.as_decimal());
            let subtotal = money.short(line.subtotal.as_decimal());
            format!("{name:<31}{:<6}{price:<11}{subtotal}", line.quantity)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn failure_notice(order: &OrderFailed) -> Rendered {
    let order_id = order.order_id.to_string();
    let vars: [(&str, &str); _] = [
        ("order_id", order_id.as_str()),
        ("name", &order.customer.name),
        ("explanation", order.reason.explanation()),
    ];
    render(
        NotificationKind::FailureNotice,
        &order.customer,
        Templates { text: template::FAILURE_TEXT, html: template::FAILURE_HTML, sms: template::FAILURE_SMS },
        &vars,
    )
}

pub fn cancellation_notice(order: &OrderCancelled) -> Rendered {
    let order_id = order.order_id.to_string();
    let total = MoneyFormat::of(&order.currency).number(order.total_amount.as_decimal());
    let currency = order.currency.to_string();
    let cancelled_by = match order.cancelled_by {
        CancelledBy::Customer => "at your request",
        CancelledBy::Admin => "by our team",
        CancelledBy::System => "because it could not be completed in time",
    };
    let money = if order.previous_status == OrderStatus::Confirmed {
        "Your payment will be refunded; you will receive a separate notice when it is."
    } else {
        "You have not been charged."
    };
    let vars: [(&str, &str); _] = [
        ("order_id", order_id.as_str()),
        ("name", &order.customer.name),
        ("total", &total),
        ("currency", &currency),
        ("cancelled_by", cancelled_by),
        ("money", money),
    ];
    render(
        NotificationKind::CancellationNotice,
        &order.customer,
        Templates {
            text: template::CANCELLATION_TEXT,
            html: template::CANCELLATION_HTML,
            sms: template::CANCELLATION_SMS,
        },
        &vars,
    )
}

/// `payment.refunded` does not name the customer; the caller finds them in the order ledger.
pub fn refund_notice(refund: &PaymentRefunded, customer: &Customer) -> Rendered {
    let order_id = refund.order_id.to_string();
    let amount = MoneyFormat::of(&refund.currency).number(refund.amount.as_decimal());
    let (currency, refund_id) = (refund.currency.to_string(), refund.refund_id.to_string());
    let vars: [(&str, &str); _] = [
        ("order_id", order_id.as_str()),
        ("name", &customer.name),
        ("amount", &amount),
        ("currency", &currency),
        ("refund_id", &refund_id),
    ];
    render(
        NotificationKind::RefundNotice,
        customer,
        Templates { text: template::REFUND_TEXT, html: template::REFUND_HTML, sms: template::REFUND_SMS },
        &vars,
    )
}

/// The verification email: the link (with its single-use token) and when it stops working.
/// Email only: an account has no phone number.
pub fn email_verification(account: &AccountRegistered) -> Rendered {
    let expires_at = account.expires_at.format("%B %-d, %Y %H:%M UTC").to_string();
    let vars: [(&str, &str); _] = [
        ("name", &account.name),
        ("email", &account.email),
        ("link", account.verification_link.expose()),
        ("expires_at", &expires_at),
    ];
    email_only(
        NotificationKind::EmailVerification,
        &account.name,
        &account.email,
        template::VERIFICATION_TEXT,
        template::VERIFICATION_HTML,
        &vars,
    )
}

/// The password-reset email, the same way.
pub fn password_reset(request: &PasswordResetRequested) -> Rendered {
    let expires_at = request.expires_at.format("%B %-d, %Y %H:%M UTC").to_string();
    let vars: [(&str, &str); _] = [
        ("name", &request.name),
        ("email", &request.email),
        ("link", request.reset_link.expose()),
        ("expires_at", &expires_at),
    ];
    email_only(
        NotificationKind::PasswordReset,
        &request.name,
        &request.email,
        template::PASSWORD_RESET_TEXT,
        template::PASSWORD_RESET_HTML,
        &vars,
    )
}

fn email_only(
    kind: NotificationKind,
    name: &str,
    email: &str,
    text: Template,
    html: Template,
    vars: &[(&str, &str)],
) -> Rendered {
    let (subject, text) = text.render_with_subject(vars);
    Rendered {
        kind,
        customer: Customer { name: name.to_owned(), email: email.to_owned(), phone: None },
        subject,
        text,
        html: html.render(vars),
        sms: String::new(),
    }
}

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;

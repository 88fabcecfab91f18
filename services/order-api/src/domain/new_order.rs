//! A new order, parsed at the edge: the request's shape is checked first, then each line is
//! priced from the catalog read model. Every problem is reported at once, by field.

use contracts::events::{Customer, OrderLine};
use contracts::exchange::LockedRate;
use contracts::{Amount, Currency};
use platform::validation::Violation;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

pub const DEFAULT_PAYMENT_METHOD: &str = "pm_card_ok";

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_items: usize,
    pub max_quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// Optional for a logged-in customer (their account's name is used).
    pub customer_name: Option<String>,
    /// Optional for a logged-in customer (their account's email is used).
    pub customer_email: Option<String>,
    /// E.164 (`+14155550123`); when given, the customer also gets SMS notices.
    pub customer_phone: Option<String>,
    pub items: Vec<ItemRequest>,
    /// A simulated-provider test method: `pm_card_ok` (default), `pm_card_declined`,
    /// `pm_card_insufficient_funds`, ...
    #[schema(example = "pm_card_ok")]
    pub payment_method: Option<String>,
    /// Pay in this currency instead of the products' own: prices are converted with the
    /// exchange rate of the day, which the order locks (`exchange_rate`).
    #[schema(example = "EUR")]
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    pub product_id: Uuid,
    #[schema(minimum = 1, example = 2)]
    pub quantity: i64,
}

/// What the catalog read model knows of a product.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub name: String,
    pub price: Amount,
    pub currency: Currency,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub id: Uuid,
    /// The account that placed it; `None` for a guest order.
    pub owner: Option<Uuid>,
    pub customer: Customer,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub total_amount: Amount,
    pub payment_method: String,
    /// Set when the prices were converted from the products' currency.
    pub exchange_rate: Option<LockedRate>,
}

impl CreateOrderRequest {
    /// The product ids the catalog must be asked about (only meaningful once shape-valid).
    pub fn product_ids(&self) -> Vec<Uuid> {
        self.items.iter().map(|item| item.product_id).collect()
    }

    /// A logged-in customer may leave out name and email: the account's are used.
    pub fn fill_from_account(&mut self, name: &str, email: &str) {
        self.customer_name.get_or_insert_with(|| name.to_owned());
        self.customer_email.get_or_insert_with(|| email.to_owned());
    }

    /// The currency asked to pay in, once `check_shape` accepted it.
    pub fn target_currency(&self) -> Option<Currency> {
        self.currency.as_deref().and_then(|raw| raw.parse().ok())
    }

    /// Checks everything that needs no catalog.
    pub fn check_shape(&self, limits: Limits) -> Vec<Violation> {
        let mut errors = Vec::new();
        let name = self.customer_name.as_deref().unwrap_or_default().trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            errors.push(Violation::new(
                "customer_name",
                "is required: 1 to 200 characters, no control characters",
            ));
        }
        if !is_plausible_email(self.customer_email.as_deref().unwrap_or_default().trim()) {
            errors.push(Violation::new("customer_email", "must be a valid email address"));
        }
        if let Some(phone) = &self.customer_phone
            && !is_e164(phone)
        {
            errors.push(Violation::new("customer_phone", "must be in E.164 form, like +14155550123"));
        }
        if let Some(raw) = &self.currency
            && raw.parse::<Currency>().is_err()
        {
            errors.push(Violation::new("currency", "must be an ISO 4217 code such as EUR"));
        }
        if self.items.is_empty() {
            errors.push(Violation::new("items", "an order needs at least one item"));
        }
        if self.items.len() > limits.max_items {
            errors.push(Violation::new("items", format!("at most {} items per order", limits.max_items)));
        }
        let mut seen = HashSet::new();
        for (index, item) in self.items.iter().enumerate() {
            if !(1..=limits.max_quantity).contains(&item.quantity) {
                errors.push(Violation::new(
                    format!("items[{index}].quantity"),
                    format!("must be between 1 and {}", limits.max_quantity),
                ));
            }
            if !seen.insert(item.product_id) {
                errors.push(Violation::new(
                    format!("items[{index}].product_id"),
                    "appears more than once; put the total quantity on one line",
                ));
            }
        }
        if let Some(method) = &self.payment_method
            && (method.len() > 64
                || !method.starts_with("pm_")
                || !method.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            errors.push(Violation::new(
                "payment_method",
                "must look like `pm_card_ok` (pm_ then letters, digits, _)",
            ));
        }
        errors
    }

    /// Prices every line from `catalog`; unknown or inactive products and mixed currencies are
    /// field errors. Call after `check_shape` returned no errors.
    pub fn price(
        self,
        catalog: &HashMap<Uuid, CatalogEntry>,
        owner: Option<Uuid>,
    ) -> Result<NewOrder, Vec<Violation>> {
        let mut errors = Vec::new();
        let mut lines = Vec::with_capacity(self.items.len());
        let mut currency: Option<Currency> = None;
        let mut total = Amount::zero();
        for (index, item) in self.items.iter().enumerate() {
            let field = format!("items[{index}].product_id");
            let Some(entry) = catalog.get(&item.product_id).filter(|entry| entry.active) else {
                errors.push(Violation::new(field, format!("unknown product {}", item.product_id)));
                continue;
            };
            match &currency {
                None => currency = Some(entry.currency.clone()),
                Some(first) if *first != entry.currency => {
                    errors.push(Violation::new(
                        field,
                        format!(
                            "is priced in {}, the order in {first}; one currency per order",
                            entry.currency
                        ),
                    ));
                    continue;
                }
                Some(_) => {}
            }
            let quantity = u32::try_from(item.quantity).unwrap_or(u32::MAX);
            match entry
                .price
                .times(quantity)
                .and_then(|subtotal| total.plus(&subtotal).map(|sum| (subtotal, sum)))
            {
                Ok((subtotal, sum)) => {
                    total = sum;
                    lines.push(OrderLine {
                        product_id: item.product_id,
                        product_name: entry.name.clone(),
                        quantity,
                        unit_price: entry.price.clone(),
                        subtotal,
                    });
                }
                Err(error) => {
                    errors.push(Violation::new(format!("items[{index}].quantity"), error.to_string()))
                }
            }
        }
        match currency {
            Some(currency) if errors.is_empty() => Ok(NewOrder {
                id: Uuid::now_v7(),
                owner,
                customer: Customer {
                    name: self.customer_name.unwrap_or_default().trim().to_owned(),
                    email: self.customer_email.unwrap_or_default().trim().to_owned(),
                    phone: self.customer_phone,
                },
                currency,
                lines,
                total_amount: total,
                payment_method: self.payment_method.unwrap_or_else(|| DEFAULT_PAYMENT_METHOD.to_owned()),
                exchange_rate: None,
            }),
            _ => Err(errors),
        }
    }
}

impl NewOrder {
    /// The order in `locked.to`: each unit price converted (rounded half-up to the currency's
    /// minor units, see `contracts::exchange`), subtotals and total summed from those, so the
    /// lines still add up exactly.
    pub fn convert(mut self, locked: LockedRate) -> Result<Self, Vec<Violation>> {
        let mut errors = Vec::new();
        let mut total = Amount::zero();
        for (index, line) in self.lines.iter_mut().enumerate() {
            let converted = locked
                .convert(&line.unit_price)
                .map_err(|e| e.to_string())
                .and_then(|unit| unit.times(line.quantity).map(|sub| (unit, sub)).map_err(|e| e.to_string()))
                .and_then(|(unit, sub)| {
                    total.plus(&sub).map(|sum| (unit, sub, sum)).map_err(|e| e.to_string())
                });
            match converted {
                Ok((unit, subtotal, sum)) => {
                    (line.unit_price, line.subtotal, total) = (unit, subtotal, sum);
                }
                Err(error) => errors.push(Violation::new(format!("items[{index}].quantity"), error)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.currency = locked.to.clone();
        self.total_amount = total;
        self.exchange_rate = Some(locked);
        Ok(self)
    }
}

fn is_e164(phone: &str) -> bool {
    phone.len() >= 8
        && phone.len() <= 16
        && phone.starts_with('+')
        && phone[1..].bytes().all(|b| b.is_ascii_digit())
        && !phone[1..].starts_with('0')
}

/// A pragmatic check (one `@`, a dotted domain, no spaces, RFC 5321 length); deliverability is
/// the mail server's business.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_items: 3, max_quantity: 10 };

    fn entry(price: &str, currency: &str) -> CatalogEntry {
        CatalogEntry {
            name: "Widget".into(),
            price: price.parse().unwrap_or_else(|_| Amount::zero()),
            currency: currency.parse().unwrap_or_else(|_| Currency::from_db("XXX".into())),
            active: true,
        }
    }

    fn request(items: Vec<(Uuid, i64)>) -> CreateOrderRequest {
        CreateOrderRequest {
            customer_name: Some("Ada".into()),
            customer_email: Some("ada@example.com".into()),
            customer_phone: None,
            items: items
                .into_iter()
                .map(|(product_id, quantity)| ItemRequest { product_id, quantity })
                .collect(),
            payment_method: None,
            currency: None,
        }
    }

    #[test]
    fn lines_and_total_are_priced_from_the_catalog() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let catalog = HashMap::from([(a, entry("999.99", "USD")), (b, entry("0.10", "USD"))]);
        let order = request(vec![(a, 2), (b, 3)]).price(&catalog, None).map_err(|e| format!("{e:?}"));
        let order = order.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(order.lines[0].subtotal.to_string(), "1999.98");
        assert_eq!(order.lines[1].subtotal.to_string(), "0.30");
        assert_eq!(order.total_amount.to_string(), "2000.28");
        assert_eq!(order.payment_method, DEFAULT_PAYMENT_METHOD);
    }

    #[test]
    fn shape_errors_name_each_field() {
        let id = Uuid::from_u128(1);
        let mut bad = request(vec![(id, 0), (id, 11), (Uuid::from_u128(2), 1), (Uuid::from_u128(3), 1)]);
        bad.customer_email = Some("not-an-email".into());
        bad.customer_name = None;
        bad.payment_method = Some("card; DROP".into());
        let fields: Vec<String> = bad.check_shape(LIMITS).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "customer_name",
                "customer_email",
                "items",
                "items[0].quantity",
                "items[1].quantity",
                "items[1].product_id",
                "payment_method"
            ]
        );
        assert_eq!(request(vec![]).check_shape(LIMITS)[0].field, "items");
    }

    #[test]
    fn unknown_products_and_mixed_currencies_are_refused() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let catalog = HashMap::from([(a, entry("1.00", "USD")), (b, entry("1.00", "EUR"))]);
        let errors = request(vec![(a, 1), (b, 1), (Uuid::from_u128(9), 1)])
            .price(&catalog, None)
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].message.contains("one currency per order"));
        assert!(errors[1].message.starts_with("unknown product"));
    }

    #[test]
    fn a_converted_order_rounds_each_unit_price_and_adds_up_exactly() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let catalog = HashMap::from([(a, entry("999.99", "USD")), (b, entry("0.10", "USD"))]);
        let order = request(vec![(a, 2), (b, 3)]).price(&catalog, None).map_err(|e| format!("{e:?}"));
        let locked = LockedRate {
            from: "USD".parse().unwrap_or_else(|_| Currency::from_db("XXX".into())),
            to: "JPY".parse().unwrap_or_else(|_| Currency::from_db("XXX".into())),
            rate: "150.2674783250".parse().unwrap_or_default(),
            date: chrono::NaiveDate::from_ymd_opt(2027, 1, 4).unwrap_or_default(),
        };
        let order = order
            .and_then(|o| o.convert(locked).map_err(|e| format!("{e:?}")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(order.currency.as_str(), "JPY");
        // 999.99 × 150.267478325 = 150265.97… → 150266 yen; 0.10 → 15.03 → 15 yen.
        assert_eq!(order.lines[0].unit_price.to_string(), "150266.00");
        assert_eq!(order.lines[0].subtotal.to_string(), "300532.00");
        assert_eq!(order.lines[1].unit_price.to_string(), "15.00");
        assert_eq!(order.total_amount.to_string(), "300577.00", "300532 + 3 × 15");
        assert!(order.exchange_rate.is_some());
    }

    #[test]
    fn a_currency_that_is_not_a_code_is_a_field_error() {
        let mut bad = request(vec![(Uuid::from_u128(1), 1)]);
        bad.currency = Some("euro".into());
        let fields: Vec<String> = bad.check_shape(LIMITS).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["currency"]);
    }

    #[test]
    fn emails_are_checked_pragmatically() {
        assert!(is_plausible_email("a.b+tag@mail.example.org"));
        for bad in ["", "a@", "@b.com", "a@b", "a b@c.com", "a@@b.com", "a@b.com.", "a@.b.com"] {
            assert!(!is_plausible_email(bad), "{bad}");
        }
    }
}

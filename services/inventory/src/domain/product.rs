//! A product as created, and a partial change to one (PATCH): both validated by the same rules.

use contracts::{Amount, Currency};
use platform::validation::Violation;
use serde::{Deserialize, Deserializer};

pub const MAX_STOCK: i64 = 1_000_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub price: String,
    pub currency: String,
    pub stock: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub price: Amount,
    pub currency: Currency,
    pub stock: i64,
}

fn name(raw: &str, errors: &mut Vec<Violation>) -> String {
    let name = raw.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(Violation::new("name", "must be 1 to 200 characters"));
    }
    name
}

/// Blank means none.
fn description(raw: Option<String>, errors: &mut Vec<Violation>) -> Option<String> {
    let description = raw.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    if description.as_ref().is_some_and(|d| d.chars().count() > 2000) {
        errors.push(Violation::new("description", "must be at most 2000 characters"));
    }
    description
}

fn price(raw: &str, errors: &mut Vec<Violation>) -> Option<Amount> {
    raw.parse::<Amount>().map_err(|e| errors.push(Violation::new("price", e.to_string()))).ok()
}

fn currency(raw: &str, errors: &mut Vec<Violation>) -> Option<Currency> {
    raw.parse::<Currency>().map_err(|e| errors.push(Violation::new("currency", e.to_string()))).ok()
}

impl TryFrom<CreateProductRequest> for NewProduct {
    type Error = Vec<Violation>;

    fn try_from(request: CreateProductRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let sku = request.sku.trim().to_owned();
        if sku.is_empty()
            || sku.len() > 64
            || !sku.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            errors.push(Violation::new("sku", "1 to 64 letters, digits, '-', '_' or '.'"));
        }
        let name = name(&request.name, &mut errors);
        let description = description(request.description, &mut errors);
        let price = price(&request.price, &mut errors);
        let currency = currency(&request.currency, &mut errors);
        if !(0..=MAX_STOCK).contains(&request.stock) {
            errors.push(Violation::new("stock", format!("must be between 0 and {MAX_STOCK}")));
        }
        match (price, currency) {
            (Some(price), Some(currency)) if errors.is_empty() => {
                Ok(Self { sku, name, description, price, currency, stock: request.stock })
            }
            _ => Err(errors),
        }
    }
}

/// `PATCH /products/{id}`: every field optional; `null` clears the description and is refused
/// for the others. SKU and stock are not editable here (stock moves through adjustments).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub price: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub currency: Option<Option<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A validated, non-empty change; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub price: Option<Amount>,
    pub currency: Option<Currency>,
}

impl TryFrom<UpdateProductRequest> for ProductChanges {
    type Error = Vec<Violation>;

    fn try_from(request: UpdateProductRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let mut not_null = |field: &str, value: Option<Option<String>>| match value {
            Some(None) => {
                errors.push(Violation::new(field, "must not be null"));
                None
            }
            Some(Some(value)) => Some(value),
            None => None,
        };
        let (raw_name, raw_price, raw_currency) = (
            not_null("name", request.name),
            not_null("price", request.price),
            not_null("currency", request.currency),
        );
        if raw_name.is_none()
            && request.description.is_none()
            && raw_price.is_none()
            && raw_currency.is_none()
            && errors.is_empty()
        {
            errors
                .push(Violation::new("body", "must name at least one of name, description, price, currency"));
        }
        let changes = Self {
            name: raw_name.map(|raw| name(&raw, &mut errors)),
            description: request.description.map(|raw| description(raw, &mut errors)),
            price: raw_price.and_then(|raw| price(&raw, &mut errors)),
            currency: raw_currency.and_then(|raw| currency(&raw, &mut errors)),
        };
        if errors.is_empty() { Ok(changes) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CreateProductRequest {
        CreateProductRequest {
            sku: "LAPTOP-1".into(),
            name: "Laptop".into(),
            description: None,
            price: "999.99".into(),
            currency: "USD".into(),
            stock: 50,
        }
    }

    fn fields(errors: &[Violation]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_valid_product_is_accepted() {
        let product = NewProduct::try_from(request()).map_err(|e| format!("{e:?}"));
        assert_eq!(product.map(|p| p.price.to_string()), Ok("999.99".into()));
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = CreateProductRequest {
            sku: "has space".into(),
            name: " ".into(),
            description: Some("x".repeat(2001)),
            price: "-1".into(),
            currency: "usd".into(),
            stock: -5,
        };
        let errors = NewProduct::try_from(bad).err().unwrap_or_default();
        assert_eq!(fields(&errors), ["sku", "name", "description", "price", "currency", "stock"]);
    }

    fn patch(json: serde_json::Value) -> Result<ProductChanges, Vec<Violation>> {
        let request: UpdateProductRequest =
            serde_json::from_value(json).map_err(|e| vec![Violation::new("json", e.to_string())])?;
        ProductChanges::try_from(request)
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_null_clears_the_description() {
        let changes = patch(serde_json::json!({"price": "12.50", "description": null}));
        let expected = ProductChanges {
            price: Some("12.50".parse().unwrap_or_else(|_| Amount::zero())),
            description: Some(None),
            ..ProductChanges::default()
        };
        assert_eq!(changes, Ok(expected));
    }

    #[test]
    fn a_bad_or_empty_patch_names_its_fields() {
        let errors = patch(serde_json::json!({"name": "", "price": "1.001", "currency": null}))
            .err()
            .unwrap_or_default();
        assert_eq!(fields(&errors), ["currency", "name", "price"]);
        assert_eq!(fields(&patch(serde_json::json!({})).err().unwrap_or_default()), ["body"]);
        assert_eq!(fields(&patch(serde_json::json!({"sku": "X"})).err().unwrap_or_default()), ["json"]);
    }
}

//! Money is a decimal amount with an ISO 4217 currency, never a float. Amounts have at most two
//! decimal places and travel in JSON as strings with exactly two (`"1999.98"`), so no client
//! parses them through a binary float.

use bigdecimal::{BigDecimal, RoundingMode, Zero};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The largest amount we accept anywhere (keeps NUMERIC(14,2) columns safe).
const MAX_AMOUNT: i64 = 999_999_999_999;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not a decimal amount")]
    NotANumber(String),
    #[error("amounts cannot be negative")]
    Negative,
    #[error("amounts have at most two decimal places")]
    TooPrecise,
    #[error("amount is too large")]
    TooLarge,
    #[error("`{0}` is not an ISO 4217 currency code (three capital letters)")]
    Currency(String),
}

/// A non-negative amount with two decimal places; a `NUMERIC(14, 2)` column (`crate::sql`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Numeric)]
pub struct Amount(BigDecimal);

impl Amount {
    pub fn zero() -> Self {
        Self(BigDecimal::zero().with_scale(2))
    }

    pub fn new(value: BigDecimal) -> Result<Self, MoneyError> {
        if value < BigDecimal::zero() {
            return Err(MoneyError::Negative);
        }
        if value.with_scale_round(2, RoundingMode::Down) != value {
            return Err(MoneyError::TooPrecise);
        }
        if value > MAX_AMOUNT {
            return Err(MoneyError::TooLarge);
        }
        Ok(Self(value.with_scale(2)))
    }

    /// An amount read back from a `NUMERIC(14, 2)` column, which only ever received amounts
    /// that passed [`Amount::new`].
    pub fn from_db(value: BigDecimal) -> Self {
        Self(value.with_scale(2))
    }

    pub fn as_decimal(&self) -> &BigDecimal {
        &self.0
    }

    /// `self × quantity`; quantities are validated small positive integers.
    pub fn times(&self, quantity: u32) -> Result<Self, MoneyError> {
        Self::new(&self.0 * BigDecimal::from(quantity))
    }

    pub fn plus(&self, other: &Self) -> Result<Self, MoneyError> {
        Self::new(&self.0 + &other.0)
    }
}

impl FromStr for Amount {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed.is_empty() || trimmed.contains(['e', 'E']) {
            return Err(MoneyError::NotANumber(s.to_owned()));
        }
        let value = BigDecimal::from_str(trimmed).map_err(|_| MoneyError::NotANumber(s.to_owned()))?;
        Self::new(value)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // With an explicit precision: BigDecimal prints a zero as `0` whatever its scale, and an
        // amount always has two decimals (`0.00`, as a refunded amount of nothing shows).
        write!(f, "{:.2}", self.0.with_scale(2))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// An ISO 4217 alphabetic code. We check the shape, not membership in the list, so a new
/// currency needs no release.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct Currency(String);

impl Currency {
    /// A code read back from a column constrained to `^[A-Z]{3}$`.
    pub fn from_db(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(MoneyError::Currency(s.to_owned()))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(s: &str) -> Amount {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn amounts_print_with_two_decimals() {
        assert_eq!(amount("5").to_string(), "5.00");
        assert_eq!(amount("999.9").to_string(), "999.90");
        assert_eq!(amount("0").to_string(), "0.00", "a zero too");
        assert_eq!(Amount::from_db(BigDecimal::from(0)).to_string(), "0.00");
        assert_eq!(amount("12345678.9").to_string(), "12345678.90");
        assert_eq!(serde_json::to_string(&amount("1999.98")).ok(), Some("\"1999.98\"".into()));
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(amount("0.10").times(3).map(|a| a.to_string()), Ok("0.30".into()));
        assert_eq!(
            amount("999.99").times(2).and_then(|a| a.plus(&amount("0.02"))).map(|a| a.to_string()),
            Ok("2000.00".into())
        );
    }

    #[test]
    fn bad_amounts_are_refused_with_reasons() {
        assert_eq!("-1".parse::<Amount>(), Err(MoneyError::Negative));
        assert_eq!("1.001".parse::<Amount>(), Err(MoneyError::TooPrecise));
        assert_eq!("1e3".parse::<Amount>(), Err(MoneyError::NotANumber("1e3".into())));
        assert_eq!("abc".parse::<Amount>(), Err(MoneyError::NotANumber("abc".into())));
        assert_eq!("10000000000000".parse::<Amount>(), Err(MoneyError::TooLarge));
        assert!(serde_json::from_str::<Amount>("12.5").is_err(), "numbers must be strings");
    }

    #[test]
    fn currencies_are_three_capital_letters() {
        assert!("USD".parse::<Currency>().is_ok());
        assert!("usd".parse::<Currency>().is_err());
        assert!("US".parse::<Currency>().is_err());
        assert!("EURO".parse::<Currency>().is_err());
    }
}

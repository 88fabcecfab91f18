//! Exchange rates and conversion between currencies. A price stays in its product's currency;
//! a customer may see and pay in another one, converted with a reference rate (units of a
//! currency per one unit of a base currency, the ECB publishes them against EUR).
//!
//! Rounding is **half-up** (away from zero at exactly half a minor unit): it is what EU law
//! prescribes for currency conversions (Council Regulation 1103/97, art. 5: "if the result is
//! exactly halfway, rounded up"), what a customer checking with a calculator expects, and we
//! round once per unit price, so half-even's advantage (no bias over many roundings summed)
//! does not apply. Line subtotals are then exact multiples in the target currency.

use crate::money::{Amount, Currency, MoneyError};
use bigdecimal::{BigDecimal, RoundingMode, Zero};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Decimal places kept in a cross rate: ten, enough that a rate of 1 IDR in JPY (~0.0097) still
/// carries eight significant digits, more than the ECB's five.
pub const RATE_SCALE: i64 = 10;

/// The ISO 4217 minor-unit exponent of the currencies the ECB publishes (and EUR), so a
/// converted amount is rounded to what the currency can actually be paid in. A currency not
/// listed here is refused rather than guessed.
pub fn minor_units(currency: &Currency) -> Option<u32> {
    match currency.as_str() {
        // No minor unit in use.
        "JPY" | "ISK" | "KRW" => Some(0),
        "EUR" | "USD" | "GBP" | "CHF" | "BGN" | "CZK" | "DKK" | "HUF" | "PLN" | "RON" | "SEK" | "NOK"
        | "TRY" | "AUD" | "BRL" | "CAD" | "CNY" | "HKD" | "IDR" | "ILS" | "INR" | "MXN" | "MYR" | "NZD"
        | "PHP" | "SGD" | "THB" | "ZAR" | "HRK" | "RUB" => Some(2),
        _ => None,
    }
}

/// One published rate: `rate` units of `currency` buy one unit of the base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeRate {
    pub currency: Currency,
    /// A positive decimal string (`"1.0842"`), never a JSON number.
    pub rate: BigDecimal,
}

/// The rate an order was converted with, locked when it was placed: one unit of `from` (the
/// products' currency) costs `rate` units of `to` (the order's currency), per the reference
/// rates of `date`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedRate {
    pub from: Currency,
    pub to: Currency,
    /// A positive decimal string (`"0.9223390518"`).
    pub rate: BigDecimal,
    /// The publication date of the reference rates used.
    pub date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error("no exchange rate is known for {0}")]
    UnknownCurrency(Currency),
    #[error("the exchange rates are of {date}, older than the {max_age_days} days allowed")]
    Stale { date: NaiveDate, max_age_days: u32 },
    #[error("converted amount: {0}")]
    Amount(#[from] MoneyError),
}

/// A day's reference rates against one base, as stored by a service. `rates` includes every
/// quoted currency but not necessarily the base itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTable {
    pub base: Currency,
    pub date: NaiveDate,
    pub rates: Vec<ExchangeRate>,
}

impl RateTable {
    fn per_base(&self, currency: &Currency) -> Option<BigDecimal> {
        if *currency == self.base {
            return Some(BigDecimal::from(1));
        }
        self.rates.iter().find(|r| r.currency == *currency).map(|r| r.rate.clone())
    }

    /// Refuses rates published more than `max_age_days` before `today` (0: no limit).
    pub fn check_age(&self, today: NaiveDate, max_age_days: u32) -> Result<(), ConversionError> {
        if max_age_days > 0 && (today - self.date).num_days() > i64::from(max_age_days) {
            return Err(ConversionError::Stale { date: self.date, max_age_days });
        }
        Ok(())
    }

    /// The cross rate from one currency to another through the base, rounded half-up to
    /// [`RATE_SCALE`] places; the rate shown is the rate computed with.
    pub fn lock(&self, from: &Currency, to: &Currency) -> Result<LockedRate, ConversionError> {
        for currency in [from, to] {
            if minor_units(currency).is_none() {
                return Err(ConversionError::UnknownCurrency(currency.clone()));
            }
        }
        let unknown = |c: &Currency| ConversionError::UnknownCurrency(c.clone());
        let per_from =
            self.per_base(from).filter(|r| *r > BigDecimal::zero()).ok_or_else(|| unknown(from))?;
        let per_to = self.per_base(to).ok_or_else(|| unknown(to))?;
        let rate = (per_to / per_from).with_scale_round(RATE_SCALE, RoundingMode::HalfUp);
        Ok(LockedRate { from: from.clone(), to: to.clone(), rate: trimmed(rate), date: self.date })
    }
}

/// Without trailing zeros, but never in exponent form (`10`, not `1E+1`).
pub fn trimmed(value: BigDecimal) -> BigDecimal {
    let normal = value.normalized();
    if normal.fractional_digit_count() < 0 { normal.with_scale(0) } else { normal }
}

impl LockedRate {
    /// `amount` (in `from`) in `to`, rounded half-up to `to`'s minor units.
    pub fn convert(&self, amount: &Amount) -> Result<Amount, ConversionError> {
        let exponent =
            minor_units(&self.to).ok_or_else(|| ConversionError::UnknownCurrency(self.to.clone()))?;
        let converted =
            (amount.as_decimal() * &self.rate).with_scale_round(i64::from(exponent), RoundingMode::HalfUp);
        Ok(Amount::new(converted)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn c(code: &str) -> Currency {
        code.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn d(value: &str) -> BigDecimal {
        BigDecimal::from_str(value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn table() -> RateTable {
        RateTable {
            base: c("EUR"),
            date: NaiveDate::from_ymd_opt(2027, 1, 4).unwrap_or_default(),
            rates: vec![
                ExchangeRate { currency: c("USD"), rate: d("1.0842") },
                ExchangeRate { currency: c("JPY"), rate: d("162.92") },
                ExchangeRate { currency: c("GBP"), rate: d("0.83045") },
                ExchangeRate { currency: c("XAU"), rate: d("0.0004") },
            ],
        }
    }

    fn convert(from: &str, to: &str, amount: &str) -> String {
        let locked = table().lock(&c(from), &c(to)).unwrap_or_else(|e| panic!("{e}"));
        locked
            .convert(&amount.parse().unwrap_or_else(|e| panic!("{e}")))
            .map(|a| a.to_string())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn cross_rates_go_through_the_base_and_are_rounded_to_ten_places() {
        let locked = table().lock(&c("USD"), &c("EUR")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(locked.rate.to_string(), "0.9223390518", "1 / 1.0842");
        assert_eq!(table().lock(&c("EUR"), &c("USD")).map(|l| l.rate.to_string()), Ok("1.0842".into()));
        assert_eq!(
            table().lock(&c("USD"), &c("JPY")).map(|l| l.rate.to_string()),
            Ok("150.2674783250".trim_end_matches('0').into())
        );
        assert_eq!(table().lock(&c("USD"), &c("USD")).map(|l| l.rate.to_string()), Ok("1".into()));
    }

    #[test]
    fn amounts_round_half_up_to_the_target_minor_units() {
        assert_eq!(convert("USD", "EUR", "999.99"), "922.33", "922.3298...");
        assert_eq!(convert("EUR", "USD", "10.00"), "10.84", "10.842 rounds down");
        assert_eq!(convert("EUR", "USD", "0.25"), "0.27", "0.27105 rounds down");
        assert_eq!(convert("USD", "JPY", "10.00"), "1503.00", "JPY has no minor unit: 1502.67... → 1503");
        assert_eq!(convert("EUR", "JPY", "0.50"), "81.00", "81.46 → 81");
        // Exactly half a minor unit goes up (half-even would give 0.02 here).
        let half = LockedRate { from: c("EUR"), to: c("USD"), rate: d("0.5"), date: table().date };
        assert_eq!(
            half.convert(&"0.05".parse().unwrap_or_else(|_| Amount::zero())).map(|a| a.to_string()),
            Ok("0.03".into())
        );
        let half_yen = LockedRate { from: c("EUR"), to: c("JPY"), rate: d("5"), date: table().date };
        assert_eq!(
            half_yen.convert(&"0.50".parse().unwrap_or_else(|_| Amount::zero())).map(|a| a.to_string()),
            Ok("3.00".into())
        );
    }

    #[test]
    fn unknown_currencies_are_refused() {
        assert_eq!(
            table().lock(&c("USD"), &c("CHF")),
            Err(ConversionError::UnknownCurrency(c("CHF"))),
            "not in the table"
        );
        assert_eq!(
            table().lock(&c("XAU"), &c("EUR")),
            Err(ConversionError::UnknownCurrency(c("XAU"))),
            "no ISO exponent we know"
        );
    }

    #[test]
    fn rates_older_than_the_limit_are_stale() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2027, 1, d).unwrap_or_default();
        assert_eq!(table().check_age(day(9), 5), Ok(()));
        assert_eq!(
            table().check_age(day(10), 5),
            Err(ConversionError::Stale { date: day(4), max_age_days: 5 })
        );
        assert_eq!(table().check_age(day(31), 0), Ok(()), "0 turns the limit off");
    }

    #[test]
    fn every_listed_exponent_is_iso_4217() {
        assert_eq!(minor_units(&c("JPY")), Some(0));
        assert_eq!(minor_units(&c("KRW")), Some(0));
        assert_eq!(minor_units(&c("ISK")), Some(0));
        assert_eq!(minor_units(&c("EUR")), Some(2));
        assert_eq!(minor_units(&c("XXX")), None);
    }
}

//! Amounts as a customer reads them: in the order's currency, with its symbol and as many
//! decimals as the currency has (¥1200, not $1200.00). Currencies not in the table print
//! with their code and two decimals, which is never wrong, only plainer.

use bigdecimal::{BigDecimal, RoundingMode};
use contracts::Currency;

/// ISO 4217 code, symbol (empty: none widely recognised) and minor-unit digits.
const KNOWN: &[(&str, &str, i64)] = &[
    ("USD", "$", 2),
    ("EUR", "€", 2),
    ("GBP", "£", 2),
    ("JPY", "¥", 0),
    ("CNY", "CN¥", 2),
    ("KRW", "₩", 0),
    ("INR", "₹", 2),
    ("CAD", "CA$", 2),
    ("AUD", "A$", 2),
    ("NZD", "NZ$", 2),
    ("CHF", "", 2),
    ("SEK", "", 2),
    ("NOK", "", 2),
    ("DKK", "", 2),
    ("PLN", "zł", 2),
    ("BRL", "R$", 2),
    ("MXN", "MX$", 2),
    ("ISK", "", 0),
    ("VND", "₫", 0),
    ("CLP", "", 0),
];

/// How one currency's amounts are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyFormat {
    code: String,
    symbol: &'static str,
    decimals: i64,
}

impl MoneyFormat {
    pub fn of(currency: &Currency) -> Self {
        let code = currency.as_str();
        let (symbol, decimals) = KNOWN
            .iter()
            .find(|(known, _, _)| *known == code)
            .map_or(("", 2), |(_, symbol, decimals)| (*symbol, *decimals));
        Self { code: code.to_owned(), symbol, decimals }
    }

    /// The number alone, with the currency's decimals: `1999.98`, `1200`.
    pub fn number(&self, amount: &BigDecimal) -> String {
        amount.with_scale_round(self.decimals, RoundingMode::HalfEven).to_string()
    }

    /// With the symbol, for columns where the code is said once elsewhere: `$5.00`, `¥1200`,
    /// `CHF 5.00` when the currency has no symbol.
    pub fn short(&self, amount: &BigDecimal) -> String {
        match self.symbol {
            "" => format!("{} {}", self.code, self.number(amount)),
            symbol => format!("{symbol}{}", self.number(amount)),
        }
    }

    /// Symbol and code, unmistakable on its own: `$2004.98 USD`, `€42.00 EUR`, `CHF 5.00`.
    pub fn full(&self, amount: &BigDecimal) -> String {
        match self.symbol {
            "" => self.short(amount),
            _ => format!("{} {}", self.short(amount), self.code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(code: &str) -> MoneyFormat {
        MoneyFormat::of(&code.parse().unwrap_or_else(|e| panic!("{code}: {e}")))
    }

    fn dec(raw: &str) -> BigDecimal {
        raw.parse().unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn notifier_fixes_amounts_carry_their_own_currency_and_decimals() {
        assert_eq!(format("USD").full(&dec("2004.98")), "$2004.98 USD");
        assert_eq!(format("EUR").full(&dec("42")), "€42.00 EUR");
        assert_eq!(format("JPY").full(&dec("1200.00")), "¥1200 JPY");
        assert_eq!(format("JPY").short(&dec("600")), "¥600");
        assert_eq!(format("CHF").full(&dec("5")), "CHF 5.00");
        assert_eq!(format("XTS").full(&dec("5")), "XTS 5.00", "unknown: code and two decimals");
        assert_eq!(format("JPY").number(&dec("1200.5")), "1200", "half to even");
    }
}

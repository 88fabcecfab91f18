//! The ECB daily-reference feed (`eurofxref-daily.xml`): one `<Cube time='YYYY-MM-DD'>` holding
//! `<Cube currency='USD' rate='1.0842'/>` per currency, every rate per one euro. Anything else
//! (no date, two dates, a rate that is not a positive decimal, a broken document) is refused
//! whole: a half-read feed must never replace good rates.

use bigdecimal::{BigDecimal, Zero};
use chrono::NaiveDate;
use contracts::Currency;
use contracts::exchange::{ExchangeRate, RateTable};
use quick_xml::events::{BytesStart, Event};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the feed is not well-formed XML: {0}")]
    Malformed(String),
    #[error("the feed has no `<Cube time='YYYY-MM-DD'>` date")]
    MissingDate,
    #[error("the feed holds several days; use the daily feed (eurofxref-daily.xml)")]
    SeveralDates,
    #[error("`{0}` is not a date (YYYY-MM-DD)")]
    BadDate(String),
    #[error("a rate stands outside the `<Cube time=…>` that dates it")]
    UndatedRate,
    #[error("`{0}` is not a currency code")]
    BadCurrency(String),
    #[error("{currency}: `{rate}` is not a positive decimal rate")]
    BadRate { currency: String, rate: String },
    #[error("{0} is quoted twice")]
    Duplicate(String),
    #[error("the feed quotes no currency")]
    Empty,
}

/// The ECB quotes every currency against the euro.
pub const BASE: &str = "EUR";

pub fn parse(xml: &str) -> Result<RateTable, FeedError> {
    let base: Currency = BASE.parse().map_err(|_| FeedError::BadCurrency(BASE.into()))?;
    let mut reader = quick_xml::Reader::from_str(xml);
    let malformed = |error: &dyn std::fmt::Display| FeedError::Malformed(error.to_string());
    let mut depth = 0usize;
    // The depth of the dated `<Cube>` while inside it.
    let mut dated_at: Option<usize> = None;
    let mut date: Option<NaiveDate> = None;
    let mut rates: Vec<ExchangeRate> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e))?;
        match &event {
            Event::Start(element) | Event::Empty(element) if element.local_name().as_ref() == b"Cube" => {
                let attributes = attributes(element)?;
                if let Some(time) = attributes.time {
                    if date.is_some() {
                        return Err(FeedError::SeveralDates);
                    }
                    date = Some(
                        NaiveDate::parse_from_str(&time, "%Y-%m-%d").map_err(|_| FeedError::BadDate(time))?,
                    );
                    if matches!(event, Event::Start(_)) {
                        dated_at = Some(depth + 1);
                    }
                } else if let Some(code) = attributes.currency {
                    if dated_at.is_none() {
                        return Err(FeedError::UndatedRate);
                    }
                    rates.push(rate(&code, attributes.rate.unwrap_or_default(), &rates)?);
                }
            }
            _ => {}
        }
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                if dated_at == Some(depth) {
                    dated_at = None;
                }
                depth = depth.checked_sub(1).ok_or_else(|| malformed(&"an end tag closes nothing"))?;
            }
            Event::Eof if depth > 0 => return Err(malformed(&"the document ends inside an element")),
            Event::Eof => break,
            _ => {}
        }
    }
    let date = date.ok_or(FeedError::MissingDate)?;
    if rates.is_empty() {
        return Err(FeedError::Empty);
    }
    Ok(RateTable { base, date, rates })
}

#[derive(Default)]
struct CubeAttributes {
    time: Option<String>,
    currency: Option<String>,
    rate: Option<String>,
}

fn attributes(element: &BytesStart<'_>) -> Result<CubeAttributes, FeedError> {
    let mut found = CubeAttributes::default();
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|e| FeedError::Malformed(e.to_string()))?;
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| FeedError::Malformed(e.to_string()))?
            .into_owned();
        match attribute.key.local_name().as_ref() {
            b"time" => found.time = Some(value),
            b"currency" => found.currency = Some(value),
            b"rate" => found.rate = Some(value),
            _ => {}
        }
    }
    Ok(found)
}

fn rate(code: &str, raw: String, so_far: &[ExchangeRate]) -> Result<ExchangeRate, FeedError> {
    let currency: Currency = code.parse().map_err(|_| FeedError::BadCurrency(code.to_owned()))?;
    if currency.as_str() == BASE {
        return Err(FeedError::BadCurrency(format!("{code} (the base itself)")));
    }
    if so_far.iter().any(|r| r.currency == currency) {
        return Err(FeedError::Duplicate(code.to_owned()));
    }
    let bad = || FeedError::BadRate { currency: code.to_owned(), rate: raw.clone() };
    // Plain decimals only: no exponent, no sign, at most 10 places (the column's scale).
    let plain = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let value = BigDecimal::from_str(&raw).ok().filter(|_| plain).ok_or_else(bad)?;
    if value <= BigDecimal::zero() || value.fractional_digit_count() > 10 || value >= 10_000_000_000_i64 {
        return Err(bad());
    }
    Ok(ExchangeRate { currency, rate: value })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
	<gesmes:subject>Reference rates</gesmes:subject>
	<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
	<Cube>
		<Cube time='2027-01-04'>
			<Cube currency='USD' rate='1.0842'/>
			<Cube currency='JPY' rate='162.92'/>
			<Cube currency="GBP" rate="0.83045"/>
		</Cube>
	</Cube>
</gesmes:Envelope>"#;

    fn with_rates(rates: &str) -> String {
        format!("<Envelope><Cube><Cube time='2027-01-04'>{rates}</Cube></Cube></Envelope>")
    }

    #[test]
    fn the_daily_feed_reads_with_its_date_and_every_rate() {
        let table = parse(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(table.base.as_str(), "EUR");
        assert_eq!(table.date.to_string(), "2027-01-04");
        let read: Vec<String> = table.rates.iter().map(|r| format!("{} {}", r.currency, r.rate)).collect();
        assert_eq!(read, ["USD 1.0842", "JPY 162.92", "GBP 0.83045"]);
    }

    #[test]
    fn the_bundled_file_of_make_run_reads() {
        let bundled = include_str!("../../../../deploy/rates/eurofxref-daily.xml");
        let table = parse(bundled).unwrap_or_else(|e| panic!("{e}"));
        assert!(table.rates.len() >= 29, "every currency the ECB publishes: {}", table.rates.len());
    }

    #[test]
    fn broken_documents_are_refused() {
        for broken in [
            "<Envelope><Cube><Cube time='2027-01-04'><Cube currency='USD' rate='1.0842'/></Cube>",
            "<Envelope><Cube time='2027-01-04'><Cube currency='USD' rate='1.0842'/></Cube></Wrong>",
            "{\"rates\": {\"USD\": 1.08}}",
            "<Envelope><Cube time='2027-01-04'><Cube currency='USD' rate='1.0842/></Cube></Envelope>",
        ] {
            assert!(
                matches!(parse(broken), Err(FeedError::Malformed(_) | FeedError::MissingDate)),
                "{broken}: {:?}",
                parse(broken)
            );
        }
        assert_eq!(parse("<Envelope/>"), Err(FeedError::MissingDate));
    }

    #[test]
    fn a_feed_without_a_date_is_refused() {
        let undated = "<Envelope><Cube><Cube currency='USD' rate='1.0842'/></Cube></Envelope>";
        assert_eq!(parse(undated), Err(FeedError::UndatedRate));
        let bad_date = "<Envelope><Cube><Cube time='04.01.2027'><Cube currency='USD' rate='1'/></Cube></Cube></Envelope>";
        assert_eq!(parse(bad_date), Err(FeedError::BadDate("04.01.2027".into())));
        let two =
            "<E><Cube time='2027-01-04'><Cube currency='USD' rate='1'/></Cube><Cube time='2027-01-03'/></E>";
        assert_eq!(parse(two), Err(FeedError::SeveralDates));
        assert_eq!(parse(&with_rates("")), Err(FeedError::Empty));
    }

    #[test]
    fn zero_negative_and_odd_rates_are_refused() {
        for rate in ["0", "0.0000", "-1.08", "1e3", "", "abc", "1.2.3", "0.00000000001"] {
            let feed = with_rates(&format!("<Cube currency='USD' rate='{rate}'/>"));
            assert_eq!(
                parse(&feed),
                Err(FeedError::BadRate { currency: "USD".into(), rate: rate.into() }),
                "{rate}"
            );
        }
        let unrated = with_rates("<Cube currency='USD'/>");
        assert!(matches!(parse(&unrated), Err(FeedError::BadRate { .. })));
        assert_eq!(
            parse(&with_rates("<Cube currency='usd' rate='1'/>")),
            Err(FeedError::BadCurrency("usd".into()))
        );
        let twice = with_rates("<Cube currency='USD' rate='1'/><Cube currency='USD' rate='2'/>");
        assert_eq!(parse(&twice), Err(FeedError::Duplicate("USD".into())));
    }
}

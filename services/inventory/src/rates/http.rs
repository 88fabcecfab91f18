//! The rate routes (`GET /exchange-rates`, admin `POST /exchange-rates/refresh`) and the
//! display conversion the product reads use (`?currency=EUR`).

use super::{RefreshError, source::Source, store};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use bigdecimal::BigDecimal;
use chrono::{NaiveDate, Utc};
use contracts::exchange::{ConversionError, RateTable, minor_units};
use contracts::{Amount, Currency};
use diesel_async::AsyncPgConnection;
use platform::auth::Admin;
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::Serialize;

/// What the rate routes and the product reads need to know.
#[derive(Debug, Clone)]
pub struct RatesConfig {
    pub source: Option<Source>,
    pub max_age_days: u32,
}

pub fn routes(cfg: &mut web::ServiceConfig, config: RatesConfig) {
    cfg.app_data(web::Data::new(config))
        .route("/exchange-rates", web::get().to(current))
        .route("/exchange-rates/refresh", web::post().to(refresh));
}

#[derive(Debug, Serialize)]
struct RatesView {
    base: Currency,
    date: NaiveDate,
    /// Whether conversions refuse these rates as older than `max_age_days`.
    stale: bool,
    max_age_days: u32,
    rates: Vec<contracts::exchange::ExchangeRate>,
}

fn view(table: RateTable, config: &RatesConfig) -> RatesView {
    let stale = table.check_age(Utc::now().date_naive(), config.max_age_days).is_err();
    RatesView {
        base: table.base,
        date: table.date,
        stale,
        max_age_days: config.max_age_days,
        rates: table.rates,
    }
}

async fn current(pool: web::Data<PgPool>, config: web::Data<RatesConfig>) -> Result<HttpResponse, Problem> {
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    let table =
        store::current(&mut conn).await.map_err(|e| Problem::internal(&e))?.ok_or_else(unavailable)?;
    Ok(HttpResponse::Ok().json(view(table, &config)))
}

/// Loads the feed now; on any failure the rates held stay as they were.
async fn refresh(
    _admin: Admin,
    pool: web::Data<PgPool>,
    config: web::Data<RatesConfig>,
) -> Result<HttpResponse, Problem> {
    match super::refresh(&pool, config.source.as_ref()).await {
        Ok(table) => Ok(HttpResponse::Ok().json(view(table, &config))),
        Err(error) => Err(refresh_problem(error)),
    }
}

fn refresh_problem(error: RefreshError) -> Problem {
    let detail = error.to_string();
    match error {
        RefreshError::NoSource => {
            Problem::new(StatusCode::CONFLICT, "rates_source_unset", "No exchange-rate source is configured")
        }
        RefreshError::Fetch(_) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "rates_source_unreachable",
            "The exchange-rate source cannot be read",
        ),
        RefreshError::Feed(_) => {
            Problem::new(StatusCode::BAD_GATEWAY, "rates_feed_invalid", "The exchange-rate feed is not valid")
        }
        RefreshError::Older { .. } => {
            Problem::new(StatusCode::CONFLICT, "rates_feed_older", "The feed is older than the rates held")
        }
        RefreshError::Db(error) => return Problem::internal(&error),
        RefreshError::Pool(error) => return Problem::unavailable(error.to_string()),
    }
    .with_detail(format!("{detail}; the rates held are unchanged"))
}

fn unavailable() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "exchange_rates_unavailable",
        "No exchange rates are loaded",
    )
    .with_detail("prices cannot be converted until the rates are loaded (POST /exchange-rates/refresh)")
}

/// A price shown in another currency: `amount` = price × `rate`, rounded half-up to the
/// currency's minor units; `rate_date` is the rates' publication date (null: no conversion).
#[derive(Debug, Clone, Serialize)]
pub struct DisplayPrice {
    pub amount: Amount,
    pub currency: Currency,
    pub rate: BigDecimal,
    pub rate_date: Option<NaiveDate>,
}

/// Converts prices into one currency for display, with the rates held when it was made.
pub struct Converter {
    target: Currency,
    /// Loaded and checked once; an error only matters for a product that needs converting.
    table: Result<RateTable, Problem>,
}

impl Converter {
    /// `raw` is the `currency` query parameter.
    pub async fn load(
        conn: &mut AsyncPgConnection,
        raw: &str,
        config: &RatesConfig,
    ) -> Result<Self, Problem> {
        let target: Currency = raw.parse().ok().filter(|c| minor_units(c).is_some()).ok_or_else(|| {
            conversion_problem(ConversionError::UnknownCurrency(Currency::from_db(raw.to_owned())))
        })?;
        let table = match store::current(conn).await.map_err(|e| Problem::internal(&e))? {
            None => Err(unavailable()),
            Some(table) => match table.check_age(Utc::now().date_naive(), config.max_age_days) {
                Ok(()) => Ok(table),
                Err(stale) => Err(conversion_problem(stale)),
            },
        };
        Ok(Self { target, table })
    }

    pub fn display(&self, price: &Amount, currency: &Currency) -> Result<DisplayPrice, Problem> {
        if *currency == self.target {
            let rate = BigDecimal::from(1);
            return Ok(DisplayPrice {
                amount: price.clone(),
                currency: currency.clone(),
                rate,
                rate_date: None,
            });
        }
        let table = self.table.as_ref().map_err(Clone::clone)?;
        let locked = table.lock(currency, &self.target).map_err(conversion_problem)?;
        let amount = locked.convert(price).map_err(conversion_problem)?;
        Ok(DisplayPrice {
            amount,
            currency: self.target.clone(),
            rate: locked.rate,
            rate_date: Some(locked.date),
        })
    }
}

/// The same codes as the gateway's order conversion.
pub fn conversion_problem(error: ConversionError) -> Problem {
    let detail = error.to_string();
    match error {
        ConversionError::UnknownCurrency(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_not_convertible",
            "Prices cannot be converted into this currency",
        )
        .with_errors(vec![FieldError::new("currency", detail.clone())]),
        ConversionError::Stale { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "exchange_rates_stale",
            "The exchange rates are too old to convert with",
        ),
        ConversionError::Amount(_) => Problem::validation(vec![FieldError::new("currency", detail.clone())]),
    }
    .with_detail(detail)
}

/// A product as read, with its price in the currency asked for (`?currency=`), if any.
#[derive(Debug, Serialize)]
pub struct Priced {
    #[serde(flatten)]
    pub product: crate::http::ProductView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_price: Option<DisplayPrice>,
}

/// Adds display prices in `currency` (none without it); one rates query for the whole page.
pub async fn priced(
    conn: &mut AsyncPgConnection,
    products: Vec<crate::http::ProductView>,
    currency: Option<&str>,
    config: &RatesConfig,
) -> Result<Vec<Priced>, Problem> {
    let converter = match currency {
        Some(raw) => Some(Converter::load(conn, raw, config).await?),
        None => None,
    };
    products
        .into_iter()
        .map(|product| {
            let display_price = match &converter {
                Some(converter) => Some(converter.display(&product.price, &product.currency)?),
                None => None,
            };
            Ok(Priced { product, display_price })
        })
        .collect()
}

//! How contract types are stored: an [`Amount`] is a `NUMERIC(14, 2)` column, a [`Currency`] a
//! `TEXT` column checked to `^[A-Z]{3}$`, and an enumeration a `TEXT` column whose `CHECK` lists
//! its names. Reading a value the type does not accept is an error naming the value, never a
//! silent default.
//!
//! Enumerations are text with a `CHECK`, not PostgreSQL enum types (docs/architecture.md,
//! "Typed storage"): [`text_column!`] maps one to the enum's `strum` names (`snake_case`, the
//! same as its serde names on the wire).

use crate::money::{Amount, Currency};
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Numeric, Text};

/// Implements `ToSql<Text, Pg>` and `FromSql<Text, Pg>` for an enum deriving
/// `strum::IntoStaticStr`, `strum::EnumString`, `diesel::AsExpression` and `diesel::FromSqlRow`
/// with `#[diesel(sql_type = diesel::sql_types::Text)]`.
#[macro_export]
macro_rules! text_column {
    ($ty:ty) => {
        impl ::diesel::serialize::ToSql<::diesel::sql_types::Text, ::diesel::pg::Pg> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut ::diesel::serialize::Output<'b, '_, ::diesel::pg::Pg>,
            ) -> ::diesel::serialize::Result {
                let name: &'static str = self.into();
                <str as ::diesel::serialize::ToSql<::diesel::sql_types::Text, ::diesel::pg::Pg>>::to_sql(
                    name,
                    &mut out.reborrow(),
                )
            }
        }

        impl ::diesel::deserialize::FromSql<::diesel::sql_types::Text, ::diesel::pg::Pg> for $ty {
            fn from_sql(value: ::diesel::pg::PgValue<'_>) -> ::diesel::deserialize::Result<Self> {
                let raw = <String as ::diesel::deserialize::FromSql<
                    ::diesel::sql_types::Text,
                    ::diesel::pg::Pg,
                >>::from_sql(value)?;
                raw.parse::<$ty>().map_err(|_| format!("`{raw}` is not a {}", stringify!($ty)).into())
            }
        }
    };
}

/// Declares an enum stored as a `TEXT` column: the derives [`text_column!`] needs, serde and
/// strum names in `snake_case`, and the column mapping. Extra derives go in an attribute of
/// their own (`#[derive(Hash)]`). The calling crate depends on `serde`, `strum` and `diesel`.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            serde::Serialize,
            strum::IntoStaticStr,
            strum::EnumString,
            diesel::AsExpression,
            diesel::FromSqlRow,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        #[diesel(sql_type = diesel::sql_types::Text)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        $crate::text_column!($name);
    };
}

text_column!(crate::events::FailureReason);
text_column!(crate::events::NotificationKind);
text_column!(crate::events::Channel);
text_column!(crate::events::OrderStatus);
text_column!(crate::events::DisabledReason);
text_column!(crate::events::CancelledBy);

impl ToSql<Numeric, Pg> for Amount {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <bigdecimal::BigDecimal as ToSql<Numeric, Pg>>::to_sql(self.as_decimal(), &mut out.reborrow())
    }
}

impl FromSql<Numeric, Pg> for Amount {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let decimal = <bigdecimal::BigDecimal as FromSql<Numeric, Pg>>::from_sql(value)?;
        Amount::new(decimal.clone()).map_err(|error| format!("`{decimal}` is not an amount: {error}").into())
    }
}

impl ToSql<Text, Pg> for Currency {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.as_str(), &mut out.reborrow())
    }
}

impl FromSql<Text, Pg> for Currency {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let raw = <String as FromSql<Text, Pg>>::from_sql(value)?;
        raw.parse().map_err(|error: crate::MoneyError| error.to_string().into())
    }
}

//! Ids of the things more than one service speaks of. Where an order id and a payment id meet
//! (a function taking both, a row holding both) their types keep them apart; on the wire and in
//! the database each is the plain UUID (`#[serde(transparent)]`, a `UUID` column).

/// Declares a UUID newtype with serde, diesel and conversion impls.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
            diesel::AsExpression,
            diesel::FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new time-ordered id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for uuid::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Uuid, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <uuid::Uuid as diesel::serialize::ToSql<diesel::sql_types::Uuid, diesel::pg::Pg>>::to_sql(
                    &self.0,
                    &mut out.reborrow(),
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Uuid, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                <uuid::Uuid as diesel::deserialize::FromSql<diesel::sql_types::Uuid, diesel::pg::Pg>>::from_sql(value)
                    .map(Self)
            }
        }
    };
}

uuid_id!(
    /// An order, as the gateway numbered it.
    OrderId
);
uuid_id!(
    /// A product of the catalog (inventory's).
    ProductId
);
uuid_id!(
    /// A payment (payment's), one per order.
    PaymentId
);

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn an_id_is_its_plain_uuid_on_the_wire() {
        let raw = uuid::Uuid::from_u128(7);
        let json = serde_json::to_string(&OrderId(raw)).unwrap_or_default();
        assert_eq!(json, format!("\"{raw}\""));
        let back: Result<PaymentId, _> = serde_json::from_str(&json);
        assert_eq!(back.map(Uuid::from).ok(), Some(raw));
        assert_eq!(ProductId(raw).to_string(), raw.to_string());
    }
}

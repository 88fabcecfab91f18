//! The language the services speak: the CloudEvents envelope, every event payload with its
//! version, and money. Producers and consumers depend on this crate and nothing else of each
//! other; `proto-schemas/` holds the same contracts as JSON Schema for other languages.

pub mod envelope;
pub mod events;
pub mod exchange;
pub mod ids;
pub mod money;
pub mod sql;

pub use envelope::{DecodeError, Envelope};
pub use events::Event;
pub use ids::{OrderId, PaymentId, ProductId};
pub use money::{Amount, Currency, MoneyError};

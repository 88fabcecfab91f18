//! One transition table decides every move of an order. Over HTTP an illegal move is a 409; on
//! the bus it is logged, counted and ignored (events may arrive late or twice).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Processing,
    Confirmed,
    Failed,
    Cancelled,
    Shipped,
    Delivered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    StockReserved,
    StockRejected,
    PaymentSucceeded,
    PaymentFailed,
    Cancel,
    Ship,
    Deliver,
    /// An operator gives up on an order stuck past its deadline (`pending` or `processing`).
    Expire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order that is {from} cannot take {trigger:?}")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub trigger: Trigger,
}

impl OrderStatus {
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Processing,
        Self::Confirmed,
        Self::Failed,
        Self::Cancelled,
        Self::Shipped,
        Self::Delivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Confirmed => "confirmed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
        }
    }

    pub fn next(self, trigger: Trigger) -> Result<Self, IllegalTransition> {
        use OrderStatus as S;
        use Trigger as T;
        match (self, trigger) {
            (S::Pending, T::StockReserved) => Ok(S::Processing),
            (S::Pending, T::StockRejected) => Ok(S::Failed),
            (S::Processing, T::PaymentSucceeded) => Ok(S::Confirmed),
            (S::Processing, T::PaymentFailed) => Ok(S::Failed),
            (S::Pending | S::Processing | S::Confirmed, T::Cancel) => Ok(S::Cancelled),
            (S::Confirmed, T::Ship) => Ok(S::Shipped),
            (S::Shipped, T::Deliver) => Ok(S::Delivered),
            (S::Pending | S::Processing, T::Expire) => Ok(S::Failed),
            (from, trigger) => Err(IllegalTransition { from, trigger }),
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown order status `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus as S;
    use Trigger as T;

    #[test]
    fn the_happy_path_and_its_failures() {
        assert_eq!(S::Pending.next(T::StockReserved), Ok(S::Processing));
        assert_eq!(S::Processing.next(T::PaymentSucceeded), Ok(S::Confirmed));
        assert_eq!(S::Pending.next(T::StockRejected), Ok(S::Failed));
        assert_eq!(S::Processing.next(T::PaymentFailed), Ok(S::Failed));
        assert_eq!(S::Confirmed.next(T::Ship), Ok(S::Shipped));
        assert_eq!(S::Shipped.next(T::Deliver), Ok(S::Delivered));
    }

    #[test]
    fn late_or_repeated_events_are_illegal_moves() {
        assert!(S::Confirmed.next(T::PaymentSucceeded).is_err());
        assert!(S::Failed.next(T::PaymentSucceeded).is_err());
        assert!(S::Processing.next(T::StockReserved).is_err());
        assert!(S::Cancelled.next(T::StockReserved).is_err());
        assert!(S::Pending.next(T::PaymentSucceeded).is_err());
    }

    #[test]
    fn terminal_states_accept_nothing_and_cancel_only_before_shipping() {
        for trigger in [
            T::StockReserved,
            T::StockRejected,
            T::PaymentSucceeded,
            T::PaymentFailed,
            T::Cancel,
            T::Ship,
            T::Deliver,
            T::Expire,
        ] {
            assert!(S::Failed.next(trigger).is_err());
            assert!(S::Cancelled.next(trigger).is_err());
            assert!(S::Delivered.next(trigger).is_err());
        }
        assert!(S::Shipped.next(T::Cancel).is_err());
        assert_eq!(S::Confirmed.next(T::Cancel), Ok(S::Cancelled));
    }

    #[test]
    fn only_orders_still_in_the_saga_can_expire() {
        assert_eq!(S::Pending.next(T::Expire), Ok(S::Failed));
        assert_eq!(S::Processing.next(T::Expire), Ok(S::Failed));
        for settled in [S::Confirmed, S::Failed, S::Cancelled, S::Shipped, S::Delivered] {
            assert!(settled.next(T::Expire).is_err(), "{settled} cannot expire");
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in S::ALL {
            assert_eq!(status.as_str().parse::<S>(), Ok(status));
        }
        assert!("shipping".parse::<S>().is_err());
    }
}

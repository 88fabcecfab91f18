//! One transition table decides every move of an order. Over HTTP an illegal move is a 409; on
//! the bus it is logged, counted and ignored (events may arrive late or twice).

/// The statuses are the contract's (clients, webhooks and `order.cancelled` see them); which
/// moves are legal is decided here, by [`Transitions::next`].
pub use contracts::events::OrderStatus;

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

/// The transition table, as a method of the contract's status.
pub trait Transitions: Sized {
    fn next(self, trigger: Trigger) -> Result<Self, IllegalTransition>;
}

impl Transitions for OrderStatus {
    fn next(self, trigger: Trigger) -> Result<Self, IllegalTransition> {
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
        for &status in <S as strum::VariantArray>::VARIANTS {
            assert_eq!(status.as_str().parse::<S>(), Ok(status));
        }
        assert!("shipping".parse::<S>().is_err());
    }
}

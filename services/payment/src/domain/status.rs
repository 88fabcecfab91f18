//! One transition table decides every move of a payment. A move the table refuses (a late,
//! repeated or out-of-order provider event) is logged and counted by the caller, never applied,
//! so nothing moves a payment backwards.

contracts::text_enum! {
    #[derive(Hash, strum::Display, strum::VariantArray)]
    pub enum PaymentStatus {
        Pending,
        Processing,
        RequiresAction,
        Succeeded,
        Failed,
        Refunded,
        PartiallyRefunded,
        Voided,
    }
}

/// What happened to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The worker sent it to the provider.
    Submitted,
    /// The provider is still working on it.
    ProviderProcessing,
    /// The provider waits on the customer (3-D Secure and the like).
    ProviderRequiresAction,
    ProviderSucceeded,
    ProviderFailed,
    /// Cancelled before money moved.
    Void,
    /// The grace period ran out.
    Expire,
    RefundedInFull,
    RefundedInPart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payment that is {from} cannot take {trigger:?}")]
pub struct IllegalTransition {
    pub from: PaymentStatus,
    pub trigger: Trigger,
}

impl PaymentStatus {
    /// Not yet decided: the worker, callbacks and the sweeper may still move it.
    pub const OPEN: [Self; 3] = [Self::Pending, Self::Processing, Self::RequiresAction];

    /// Its name, as stored and shown (`requires_action`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }

    pub fn next(self, trigger: Trigger) -> Result<Self, IllegalTransition> {
        use PaymentStatus as S;
        use Trigger as T;
        match (self, trigger) {
            (S::Pending, T::Submitted | T::ProviderProcessing) => Ok(S::Processing),
            (S::RequiresAction, T::ProviderProcessing) => Ok(S::Processing),
            (S::Pending | S::Processing, T::ProviderRequiresAction) => Ok(S::RequiresAction),
            (S::Pending | S::Processing | S::RequiresAction, T::ProviderSucceeded) => Ok(S::Succeeded),
            // A capture the provider reports after we gave up or voided: money moved, so the
            // payment is succeeded again and the caller refunds it.
            (S::Failed | S::Voided, T::ProviderSucceeded) => Ok(S::Succeeded),
            (S::Pending | S::Processing | S::RequiresAction, T::ProviderFailed | T::Expire) => Ok(S::Failed),
            (S::Pending | S::Processing | S::RequiresAction, T::Void) => Ok(S::Voided),
            (S::Succeeded | S::PartiallyRefunded, T::RefundedInFull) => Ok(S::Refunded),
            (S::Succeeded | S::PartiallyRefunded, T::RefundedInPart) => Ok(S::PartiallyRefunded),
            (from, trigger) => Err(IllegalTransition { from, trigger }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus as S;
    use Trigger as T;

    #[test]
    fn the_paths_of_a_charge() {
        assert_eq!(S::Pending.next(T::Submitted), Ok(S::Processing));
        assert_eq!(S::Processing.next(T::ProviderSucceeded), Ok(S::Succeeded));
        assert_eq!(S::Processing.next(T::ProviderFailed), Ok(S::Failed));
        assert_eq!(S::Processing.next(T::ProviderRequiresAction), Ok(S::RequiresAction));
        assert_eq!(S::RequiresAction.next(T::ProviderSucceeded), Ok(S::Succeeded));
        assert_eq!(S::RequiresAction.next(T::Expire), Ok(S::Failed));
        assert_eq!(S::RequiresAction.next(T::Void), Ok(S::Voided));
        assert_eq!(S::Succeeded.next(T::RefundedInPart), Ok(S::PartiallyRefunded));
        assert_eq!(S::PartiallyRefunded.next(T::RefundedInFull), Ok(S::Refunded));
    }

    #[test]
    fn nothing_moves_a_payment_backwards() {
        assert!(S::Succeeded.next(T::ProviderRequiresAction).is_err());
        assert!(S::Succeeded.next(T::ProviderFailed).is_err());
        assert!(S::Succeeded.next(T::ProviderProcessing).is_err());
        assert!(S::Succeeded.next(T::Void).is_err());
        assert!(S::Failed.next(T::ProviderRequiresAction).is_err());
        assert!(S::Refunded.next(T::ProviderSucceeded).is_err());
        assert!(S::Voided.next(T::Expire).is_err());
        assert!(S::Pending.next(T::RefundedInFull).is_err());
    }

    #[test]
    fn a_late_capture_reopens_only_to_be_refunded() {
        assert_eq!(S::Voided.next(T::ProviderSucceeded), Ok(S::Succeeded));
        assert_eq!(S::Failed.next(T::ProviderSucceeded), Ok(S::Succeeded));
    }

    #[test]
    fn every_status_round_trips_through_its_name() {
        for &status in <S as strum::VariantArray>::VARIANTS {
            assert_eq!(status.as_str().parse::<S>(), Ok(status));
        }
        assert!("paid".parse::<S>().is_err());
    }
}

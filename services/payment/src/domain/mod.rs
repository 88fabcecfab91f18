//! The payment's rules: its state machine and what work a payment in a given state needs.

pub mod access;
pub mod status;

pub use status::{IllegalTransition, PaymentStatus, Trigger};

/// What the worker must do next for a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Create (if not yet) and confirm at the provider.
    Charge,
    /// Ask the provider where a payment waiting on it or on the customer stands.
    Recheck,
    /// Cancel before money moved (the order was cancelled).
    Void,
    /// Give the money back (the order was cancelled, or a capture came after we gave up).
    Refund,
    Nothing,
}

/// What deciding a payment's next job needs to know of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub status: PaymentStatus,
    /// The provider has been asked to confirm the intent.
    pub confirmed: bool,
    /// Its order was cancelled or failed: the money must not stay taken.
    pub cancel_requested: bool,
}

pub fn job_of(payment: Standing) -> Job {
    match payment.status {
        open if open.is_open() && payment.cancel_requested => Job::Void,
        PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded if payment.cancel_requested => {
            Job::Refund
        }
        PaymentStatus::Pending => Job::Charge,
        PaymentStatus::Processing if !payment.confirmed => Job::Charge,
        PaymentStatus::Processing | PaymentStatus::RequiresAction => Job::Recheck,
        PaymentStatus::Succeeded
        | PaymentStatus::PartiallyRefunded
        | PaymentStatus::Failed
        | PaymentStatus::Refunded
        | PaymentStatus::Voided => Job::Nothing,
    }
}

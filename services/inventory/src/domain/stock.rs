//! Manual stock changes: a restock, damaged goods written off, a count correction, a customer
//! return. Each has a signed `delta`, a typed reason and an optional note.

use super::MAX_STOCK;
use platform::validation::Violation;
use serde::Deserialize;

/// Why stock changed by hand. A closed list (not free text) so reports can group by it; the
/// note carries the detail.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[strum(serialize_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum AdjustmentReason {
    /// Goods received: positive.
    Restock,
    /// Goods written off: negative.
    Damaged,
    /// A stock count disagreed: either sign.
    Correction,
    /// A customer sent goods back: positive.
    Return,
}

impl AdjustmentReason {
    fn allows(self, delta: i64) -> Result<(), &'static str> {
        match self {
            Self::Restock | Self::Return if delta < 0 => Err("must be positive for this reason"),
            Self::Damaged if delta > 0 => Err("must be negative for this reason"),
            Self::Restock | Self::Return | Self::Damaged | Self::Correction => Ok(()),
        }
    }
}

pub const MAX_NOTE_CHARS: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockAdjustmentRequest {
    pub delta: i64,
    pub reason: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockAdjustment {
    pub delta: i64,
    pub reason: AdjustmentReason,
    pub note: Option<String>,
}

impl TryFrom<StockAdjustmentRequest> for StockAdjustment {
    type Error = Vec<Violation>;

    fn try_from(request: StockAdjustmentRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let reason = request.reason.parse::<AdjustmentReason>().ok();
        if request.delta == 0 {
            errors.push(Violation::new("delta", "must not be zero"));
        } else if !(-MAX_STOCK..=MAX_STOCK).contains(&request.delta) {
            errors.push(Violation::new("delta", format!("must be between -{MAX_STOCK} and {MAX_STOCK}")));
        } else if let Some(Err(message)) = reason.map(|r| r.allows(request.delta)) {
            errors.push(Violation::new("delta", message));
        }
        if reason.is_none() {
            errors.push(Violation::new("reason", "must be one of restock, damaged, correction, return"));
        }
        let note = request.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
            errors.push(Violation::new("note", format!("must be at most {MAX_NOTE_CHARS} characters")));
        }
        match reason {
            Some(reason) if errors.is_empty() => Ok(Self { delta: request.delta, reason, note }),
            _ => Err(errors),
        }
    }
}

/// Why an adjustment cannot apply to the stock as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockRefusal {
    /// Units promised to orders cannot be removed.
    BelowReserved,
    AboveMaximum,
}

impl StockAdjustment {
    /// The new stock on hand, given the current one and what is reserved.
    pub fn apply(&self, on_hand: i64, reserved: i64) -> Result<i64, StockRefusal> {
        let next = on_hand.saturating_add(self.delta);
        if next < reserved {
            Err(StockRefusal::BelowReserved)
        } else if next > MAX_STOCK {
            Err(StockRefusal::AboveMaximum)
        } else {
            Ok(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adjustment(delta: i64, reason: &str, note: Option<&str>) -> Result<StockAdjustment, Vec<String>> {
        StockAdjustment::try_from(StockAdjustmentRequest {
            delta,
            reason: reason.into(),
            note: note.map(Into::into),
        })
        .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
    }

    #[test]
    fn reasons_fix_the_sign_and_correction_allows_both() {
        assert!(
            adjustment(5, "restock", Some("  pallet 7 "))
                .is_ok_and(|a| a.note.as_deref() == Some("pallet 7"))
        );
        assert!(adjustment(-2, "damaged", None).is_ok());
        assert!(adjustment(-2, "correction", None).is_ok());
        assert!(adjustment(3, "correction", None).is_ok());
        assert_eq!(adjustment(-1, "restock", None), Err(vec!["delta".into()]));
        assert_eq!(adjustment(1, "damaged", None), Err(vec!["delta".into()]));
    }

    #[test]
    fn zero_huge_unknown_and_overlong_inputs_are_named() {
        let long = "x".repeat(MAX_NOTE_CHARS + 1);
        assert_eq!(
            adjustment(0, "lost", Some(&long)),
            Err(vec!["delta".into(), "reason".into(), "note".into()])
        );
        assert_eq!(adjustment(MAX_STOCK + 1, "restock", None), Err(vec!["delta".into()]));
    }

    #[test]
    fn stock_never_drops_below_what_is_reserved_nor_above_the_maximum() {
        let remove = |delta| StockAdjustment { delta, reason: AdjustmentReason::Correction, note: None };
        assert_eq!(remove(-3).apply(10, 7), Ok(7));
        assert_eq!(remove(-4).apply(10, 7), Err(StockRefusal::BelowReserved));
        assert_eq!(remove(1).apply(MAX_STOCK, 0), Err(StockRefusal::AboveMaximum));
    }
}

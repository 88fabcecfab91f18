//! Payment rules: what the built-in simulated provider answers for each test payment method.
//! The method token decides the outcome, so every path of the saga can be exercised
//! deterministically (the same idea as Stripe's test cards).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded,
    Declined {
        code: &'static str,
        message: &'static str,
    },
}

pub const PROVIDER: &str = "simulated";

pub fn simulate_charge(payment_method: &str) -> ChargeOutcome {
    match payment_method {
        "pm_card_ok" => ChargeOutcome::Succeeded,
        "pm_card_declined" => ChargeOutcome::Declined {
            code: "card_declined",
            message: "The card was declined",
        },
        "pm_card_insufficient_funds" => ChargeOutcome::Declined {
            code: "insufficient_funds",
            message: "The card has insufficient funds",
        },
        _ => ChargeOutcome::Declined {
            code: "unsupported_payment_method",
            message: "The simulated provider does not know this payment method",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_test_method_has_its_outcome() {
        assert_eq!(simulate_charge("pm_card_ok"), ChargeOutcome::Succeeded);
        assert!(matches!(
            simulate_charge("pm_card_declined"),
            ChargeOutcome::Declined {
                code: "card_declined",
                ..
            }
        ));
        assert!(matches!(
            simulate_charge("pm_card_insufficient_funds"),
            ChargeOutcome::Declined {
                code: "insufficient_funds",
                ..
            }
        ));
        assert!(matches!(
            simulate_charge("pm_other"),
            ChargeOutcome::Declined {
                code: "unsupported_payment_method",
                ..
            }
        ));
    }
}

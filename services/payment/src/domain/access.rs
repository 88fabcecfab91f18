//! Who may see a payment or act on it at the simulator: the customer who placed the order, an
//! admin, or for a guest order the gateway on the guest's behalf. Checked here, not only at the
//! gateway, so a caller that reaches this service's port directly gains nothing. Anyone else
//! gets the same answer as for an unknown order, so ids of other customers' orders reveal
//! nothing.
//!
//! Every token this service accepts is an internal one, signed by the gateway for one forwarded
//! request. For a guest order the gateway checks the order's access token itself and then signs
//! a token naming that order (`guest_order`, no account): it opens that guest order's payment
//! and nothing else, neither another order nor an account's.

use contracts::OrderId;
use platform::auth::{Claims, Role};
use uuid::Uuid;

/// `owner` is the account that placed `order`; `None` for a guest order.
pub fn may_access(owner: Option<Uuid>, order: OrderId, caller: &Claims) -> bool {
    if let Some(guest_order) = caller.guest_order {
        return owner.is_none() && guest_order == order.as_uuid();
    }
    match caller.role {
        Role::Admin => true,
        Role::Customer => owner.is_some_and(|owner| owner == caller.sub),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: u128, role: Role, guest_order: Option<Uuid>) -> Claims {
        Claims {
            sub: Uuid::from_u128(sub),
            email: String::new(),
            name: String::new(),
            role,
            iss: "order-api".into(),
            aud: "orders-internal".into(),
            iat: 0,
            exp: 0,
            sv: 0,
            guest_order,
        }
    }

    #[test]
    fn the_owner_and_admins_and_no_one_else() {
        let (ada, bob, admin) =
            (claims(1, Role::Customer, None), claims(2, Role::Customer, None), claims(3, Role::Admin, None));
        let (owned, order) = (Some(Uuid::from_u128(1)), OrderId(Uuid::from_u128(10)));
        assert!(may_access(owned, order, &ada));
        assert!(!may_access(owned, order, &bob));
        assert!(may_access(owned, order, &admin));
        assert!(!may_access(None, order, &ada), "a guest order's payment is no customer's");
        assert!(may_access(None, order, &admin));
    }

    #[test]
    fn a_guest_token_opens_its_own_guest_order_only() {
        let (order, other) = (OrderId(Uuid::from_u128(10)), OrderId(Uuid::from_u128(11)));
        let guest = claims(0, Role::Customer, Some(order.as_uuid()));
        assert!(may_access(None, order, &guest));
        assert!(!may_access(None, other, &guest), "another guest order");
        assert!(!may_access(Some(Uuid::nil()), order, &guest), "an account's order, whatever its id");
        assert!(!may_access(Some(Uuid::from_u128(1)), order, &guest));
        // The claim narrows even an admin-role token to its order.
        assert!(!may_access(None, other, &claims(3, Role::Admin, Some(order.as_uuid()))));
    }
}

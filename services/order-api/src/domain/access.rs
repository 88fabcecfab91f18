//! Who may see or change an order: admins everything; a customer their own orders; a guest
//! order (placed without an account) whoever presents its access token. Everything else is
//! "not found", the same answer as for an id that does not exist, for every caller: an id alone
//! reveals nothing, not even whether it exists.

use platform::auth::{Claims, Role};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// Not yours, or no such order (404).
    Hidden,
}

/// Reading and cancelling follow the same rule. `token_matches`: the request carried the guest
/// order's access token.
pub fn can_read(owner: Option<Uuid>, caller: Option<&Claims>, token_matches: bool) -> Access {
    match (owner, caller) {
        (_, Some(claims)) if claims.role == Role::Admin => Access::Allowed,
        (Some(owner), Some(claims)) if owner == claims.sub => Access::Allowed,
        (None, _) if token_matches => Access::Allowed,
        _ => Access::Hidden,
    }
}

/// A customer cancels their own orders, a guest with the order's token, an admin any order.
pub fn can_cancel(owner: Option<Uuid>, caller: Option<&Claims>, token_matches: bool) -> Access {
    can_read(owner, caller, token_matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: u128, role: Role) -> Claims {
        Claims {
            sub: Uuid::from_u128(sub),
            email: "a@b.co".into(),
            name: "A".into(),
            role,
            iss: "order-api".into(),
            aud: "orders".into(),
            iat: 0,
            exp: 0,
            sv: 0,
            guest_order: None,
        }
    }

    #[test]
    fn reading_follows_ownership_or_the_guest_token() {
        let (ada, bob, admin) =
            (claims(1, Role::Customer), claims(2, Role::Customer), claims(3, Role::Admin));
        let owned = Some(Uuid::from_u128(1));
        assert_eq!(can_read(owned, Some(&ada), false), Access::Allowed);
        assert_eq!(can_read(owned, Some(&bob), false), Access::Hidden);
        assert_eq!(can_read(owned, Some(&admin), false), Access::Allowed);
        assert_eq!(can_read(owned, None, false), Access::Hidden, "no 401: the same answer as unknown");
        assert_eq!(can_read(owned, None, true), Access::Hidden, "a token opens guest orders only");
        assert_eq!(can_read(None, None, false), Access::Hidden, "a guest order's id alone is not enough");
        assert_eq!(can_read(None, None, true), Access::Allowed);
        assert_eq!(can_read(None, Some(&bob), false), Access::Hidden);
        assert_eq!(can_read(None, Some(&bob), true), Access::Allowed);
        assert_eq!(can_read(None, Some(&admin), false), Access::Allowed);
    }

    #[test]
    fn cancelling_needs_an_owner_the_token_or_an_admin() {
        let (ada, bob, admin) =
            (claims(1, Role::Customer), claims(2, Role::Customer), claims(3, Role::Admin));
        let owned = Some(Uuid::from_u128(1));
        assert_eq!(can_cancel(owned, Some(&ada), false), Access::Allowed);
        assert_eq!(can_cancel(owned, Some(&bob), false), Access::Hidden);
        assert_eq!(can_cancel(None, Some(&bob), false), Access::Hidden);
        assert_eq!(can_cancel(None, None, true), Access::Allowed);
        assert_eq!(can_cancel(None, Some(&admin), false), Access::Allowed);
        assert_eq!(can_cancel(owned, None, false), Access::Hidden);
    }
}

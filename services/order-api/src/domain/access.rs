//! Who may see or change an order: admins everything; a customer their own orders; anyone with
//! its id a guest order (placed without an account). Another customer's order is "not found",
//! so ids of others' orders reveal nothing.

use platform::auth::{Claims, Role};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// Log in first (401).
    Unauthenticated,
    /// Not yours (404).
    Hidden,
}

pub fn can_read(owner: Option<Uuid>, caller: Option<&Claims>) -> Access {
    match (owner, caller) {
        (_, Some(claims)) if claims.role == Role::Admin => Access::Allowed,
        (None, _) => Access::Allowed,
        (Some(owner), Some(claims)) if owner == claims.sub => Access::Allowed,
        (Some(_), Some(_)) => Access::Hidden,
        (Some(_), None) => Access::Unauthenticated,
    }
}

/// Cancelling needs an account: a customer cancels their own orders, an admin any order.
pub fn can_cancel(owner: Option<Uuid>, caller: Option<&Claims>) -> Access {
    match (owner, caller) {
        (_, None) => Access::Unauthenticated,
        (_, Some(claims)) if claims.role == Role::Admin => Access::Allowed,
        (Some(owner), Some(claims)) if owner == claims.sub => Access::Allowed,
        _ => Access::Hidden,
    }
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
            iss: "orders".into(),
            iat: 0,
            exp: 0,
        }
    }

    #[test]
    fn reading_follows_ownership() {
        let (ada, bob, admin) =
            (claims(1, Role::Customer), claims(2, Role::Customer), claims(3, Role::Admin));
        let owned = Some(Uuid::from_u128(1));
        assert_eq!(can_read(owned, Some(&ada)), Access::Allowed);
        assert_eq!(can_read(owned, Some(&bob)), Access::Hidden);
        assert_eq!(can_read(owned, Some(&admin)), Access::Allowed);
        assert_eq!(can_read(owned, None), Access::Unauthenticated);
        assert_eq!(can_read(None, None), Access::Allowed, "guest orders are readable by id");
        assert_eq!(can_read(None, Some(&bob)), Access::Allowed);
    }

    #[test]
    fn cancelling_needs_an_owner_or_an_admin() {
        let (ada, bob, admin) =
            (claims(1, Role::Customer), claims(2, Role::Customer), claims(3, Role::Admin));
        let owned = Some(Uuid::from_u128(1));
        assert_eq!(can_cancel(owned, Some(&ada)), Access::Allowed);
        assert_eq!(can_cancel(owned, Some(&bob)), Access::Hidden);
        assert_eq!(can_cancel(None, Some(&bob)), Access::Hidden);
        assert_eq!(can_cancel(None, Some(&admin)), Access::Allowed);
        assert_eq!(can_cancel(owned, None), Access::Unauthenticated);
    }
}

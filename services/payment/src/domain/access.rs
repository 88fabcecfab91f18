//! Who may see a payment or act on it at the simulator: the customer who placed the order, or an
//! admin. Checked here, not only at the gateway, so a caller that reaches this service's port
//! directly gains nothing. Anyone else gets the same answer as for an unknown order, so ids of
//! other customers' orders reveal nothing.

use platform::auth::Role;
use uuid::Uuid;

/// `owner` is the account that placed the order; `None` for a guest order, which no customer
/// token can claim (only admins see guest payments here).
pub fn may_access(owner: Option<Uuid>, caller: Uuid, role: Role) -> bool {
    match role {
        Role::Admin => true,
        Role::Customer => owner.is_some_and(|owner| owner == caller),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_and_admins_and_no_one_else() {
        let (ada, bob, admin) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let owned = Some(ada);
        assert!(may_access(owned, ada, Role::Customer));
        assert!(!may_access(owned, bob, Role::Customer));
        assert!(may_access(owned, admin, Role::Admin));
        assert!(!may_access(None, ada, Role::Customer), "a guest order's payment is no customer's");
        assert!(may_access(None, admin, Role::Admin));
    }
}

//! Revoked sessions: the lowest session version (`sv` claim) still valid, per account.
//!
//! Only accounts whose sessions were revoked within the last token lifetime are listed (older
//! revocations have outlived every token they could refuse), so the map stays small and the
//! check is a lookup in memory on every request. The gateway refills it from its database on a
//! short period and adds its own revocations at once; see docs/security.md for why the gateway
//! and not every service checks it.

use crate::auth::Claims;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

#[derive(Clone, Default)]
pub struct Revocations(Arc<RwLock<HashMap<Uuid, i64>>>);

impl Revocations {
    /// Tokens of `account` with a session version below `valid_from` are refused from now on.
    pub fn revoke(&self, account: Uuid, valid_from: i64) {
        if let Ok(mut map) = self.0.write() {
            let entry = map.entry(account).or_insert(valid_from);
            *entry = (*entry).max(valid_from);
        }
    }

    /// Replaces the whole map with a fresh read of the store, keeping any newer local entry
    /// (a revocation made here after the read started).
    pub fn replace(&self, fresh: HashMap<Uuid, i64>) {
        if let Ok(mut map) = self.0.write() {
            let mut merged = fresh;
            for (account, version) in map.iter() {
                if let Some(known) = merged.get_mut(account) {
                    *known = (*known).max(*version);
                }
            }
            *map = merged;
        }
    }

    pub fn is_revoked(&self, claims: &Claims) -> bool {
        // A poisoned lock means a panic while writing; refusing everything then would lock
        // every user out, so the check is skipped (the token is still signature-checked).
        self.0.read().ok().and_then(|map| map.get(&claims.sub).copied()).is_some_and(|min| claims.sv < min)
    }

    pub fn len(&self) -> usize {
        self.0.read().map(|map| map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

//! Live order updates: every status-history row, as it becomes safe to serve, to every stream
//! of this replica that may see it.
//!
//! One `LISTEN order_status` connection per replica ([`listener`]) reads new rows from
//! PostgreSQL, so a change made through any replica (or by the saga) reaches streams on all of
//! them, and fans them out through a tokio broadcast channel. A stream first replays the
//! stored history after its client's `Last-Event-ID`, then follows the channel; both read in
//! the same order ([`Position`]), so the hand-over has neither a gap nor a duplicate.

pub mod listener;
pub mod store;

use crate::orders::HistoryView;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Where a history row stands in the stream: (the transaction that wrote it, its id). Ids are
/// taken when a row is written, not when it commits, so the id alone is not commit order; see
/// the migration `live_order_updates` for why this order loses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub tx: i64,
    pub id: i64,
}

/// One status-history row, with what a stream filters on.
#[derive(Debug)]
pub struct LiveEvent {
    pub position: Position,
    pub order_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub entry: HistoryView,
}

/// The body of one SSE event: the status-history entry, with the order it belongs to.
#[derive(Debug, serde::Serialize)]
pub struct OrderEvent<'a> {
    pub order_id: Uuid,
    #[serde(flatten)]
    pub entry: &'a HistoryView,
}

/// Which rows a stream shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One order (its owner, an admin, or a guest with the order's token).
    Order(Uuid),
    /// Every order of one account.
    Customer(Uuid),
    /// Every order (admins).
    All,
}

impl Scope {
    pub fn shows(self, event: &LiveEvent) -> bool {
        match self {
            Scope::Order(id) => event.order_id == id,
            Scope::Customer(id) => event.customer_id == Some(id),
            Scope::All => true,
        }
    }
}

/// How streams behave, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct LivePolicy {
    /// A comment line this often keeps proxies from closing an idle stream and finds clients
    /// that went away.
    pub heartbeat: Duration,
    /// Streams one client (an account, or a guest's address) may hold open on one replica.
    pub max_streams_per_client: usize,
}

/// This replica's streams: the channel they follow, how many each client holds, and the
/// token whose cancellation (drain) ends them all.
pub struct Hub {
    events: broadcast::Sender<Arc<LiveEvent>>,
    pub policy: LivePolicy,
    open: Mutex<HashMap<String, usize>>,
    pub cancel: CancellationToken,
}

/// Events held for slow streams; one that falls further behind re-reads from the database.
const CHANNEL_CAPACITY: usize = 1024;

impl Hub {
    pub fn new(policy: LivePolicy, cancel: CancellationToken) -> Arc<Self> {
        let (events, _) = broadcast::channel(CHANNEL_CAPACITY);
        Arc::new(Self { events, policy, open: Mutex::new(HashMap::new()), cancel })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.events.subscribe()
    }

    /// Sends to every stream; none listening is fine.
    pub fn publish(&self, event: LiveEvent) {
        let _ = self.events.send(Arc::new(event));
    }

    /// A stream for `client`, unless it already holds the most it may.
    pub fn admit(self: &Arc<Self>, client: String) -> Option<StreamPermit> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let held = open.entry(client.clone()).or_default();
        if *held >= self.policy.max_streams_per_client {
            return None;
        }
        *held += 1;
        metrics::gauge!("live_streams_open").increment(1.0);
        Some(StreamPermit { hub: self.clone(), client })
    }
}

/// One open stream; dropping it (the stream ended) frees the client's slot.
pub struct StreamPermit {
    hub: Arc<Hub>,
    client: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.hub.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = open.get_mut(&self.client) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.client);
            }
        }
        metrics::gauge!("live_streams_open").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(max: usize) -> Arc<Hub> {
        Hub::new(
            LivePolicy { heartbeat: Duration::from_secs(1), max_streams_per_client: max },
            CancellationToken::new(),
        )
    }

    #[test]
    fn a_client_gets_at_most_its_streams_and_a_closed_one_frees_its_slot() {
        let hub = hub(2);
        let first = hub.admit("ada".into());
        let second = hub.admit("ada".into());
        assert!(first.is_some() && second.is_some());
        assert!(hub.admit("ada".into()).is_none(), "a third stream is refused");
        assert!(hub.admit("bob".into()).is_some(), "another client has slots of their own");
        drop(first);
        assert!(hub.admit("ada".into()).is_some(), "a closed stream frees its slot");
    }

    #[test]
    fn positions_order_by_transaction_first() {
        let early_tx_late_id = Position { tx: 10, id: 99 };
        let late_tx_early_id = Position { tx: 11, id: 5 };
        assert!(early_tx_late_id < late_tx_early_id);
        assert!(Position { tx: 10, id: 1 } < early_tx_late_id);
    }
}

//! Watches for orders to become terminal by walking the confirmed and failed lists every
//! interval, not by asking for each order.
//!
//! The lists are in id order (UUIDv7, creation order), but orders finish out of order, so a
//! plain "remember the last cursor" walk would miss an older order that finishes late. Each round
//! instead starts right after the newest already-finished order that is older than every
//! unfinished one: everything before that point is known to be done, so the walk only covers
//! the part of the list that can still change.

use crate::fire::Accepted;
use crate::gateway::Gateway;
use crate::progress::Counters;
use anyhow::bail;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;

pub struct Terminal {
    pub confirmed: bool,
    /// When the poller first saw the order terminal, since the run's origin.
    pub seen_at: Duration,
}

pub struct Watched {
    pub terminal: HashMap<Uuid, Terminal>,
    /// Orders still not terminal when the deadline passed.
    pub unfinished: usize,
    pub rounds: usize,
    pub pages: usize,
}

/// Watches every order that arrives on `accepted` until the channel is closed (all orders
/// placed) and all of them are terminal, or the deadline passes.
pub async fn watch(
    gateway: &Gateway,
    mut accepted: UnboundedReceiver<Accepted>,
    origin: Instant,
    created_after: &str,
    interval: Duration,
    deadline: Duration,
    counters: &Counters,
) -> anyhow::Result<Watched> {
    let mut pending: BTreeSet<Uuid> = BTreeSet::new();
    let mut done: BTreeSet<Uuid> = BTreeSet::new();
    let mut terminal = HashMap::new();
    let mut placing = true;
    let (mut rounds, mut pages) = (0, 0);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    loop {
        ticker.tick().await;
        loop {
            match accepted.try_recv() {
                Ok(order) => {
                    pending.insert(order.id);
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    placing = false;
                    break;
                }
            }
        }
        if !placing && pending.is_empty() {
            break;
        }
        if started.elapsed() > deadline {
            if placing {
                bail!("orders were still being placed when the {deadline:?} deadline passed");
            }
            break;
        }
        if pending.is_empty() {
            continue;
        }
        rounds += 1;
        let start = match pending.first() {
            Some(oldest) => done.range(..*oldest).next_back().copied(),
            None => done.last().copied(),
        };
        for status in ["confirmed", "failed"] {
            let mut cursor = start;
            loop {
                let page = gateway.list(status, cursor, created_after).await?;
                pages += 1;
                let seen_at = origin.elapsed();
                for (id, listed) in page.items {
                    if pending.remove(&id) {
                        done.insert(id);
                        let confirmed = listed == "confirmed";
                        let counter = if confirmed { &counters.confirmed } else { &counters.failed };
                        counter.fetch_add(1, Ordering::Relaxed);
                        terminal.insert(id, Terminal { confirmed, seen_at });
                    }
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(Watched { terminal, unfinished: pending.len(), rounds, pages })
}

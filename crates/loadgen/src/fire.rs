//! Fires the orders, in one of two ways:
//! * closed loop (`fire`): a fixed number of workers share one counter, so exactly `orders`
//!   requests go out and never more than `concurrency` are in flight; each worker waits for its
//!   answer, so when the gateway slows down the offered load drops with it;
//! * open loop (`fire_at_rate`): one order every 1/rate seconds, each in its own task, whatever
//!   the answers do, so an overload shows as growing latency and a backlog instead.

use crate::gateway::{Gateway, Placed};
use crate::progress::Counters;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use uuid::Uuid;

/// One accepted order: its id, the POST round trip, and when (since the run's origin) the
/// answer arrived.
#[derive(Clone, Copy, Debug)]
pub struct Accepted {
    pub id: Uuid,
    pub latency: Duration,
    pub accepted_at: Duration,
}

#[derive(Default)]
pub struct Fired {
    pub accepted: Vec<Accepted>,
    /// Orders the gateway answered with anything but 201.
    pub refused: usize,
    /// Orders that got no answer at all (connection error, 30 s timeout).
    pub unanswered: usize,
    pub first_refusal: Option<String>,
    /// When the first request went out and the last answer came back, since the origin.
    pub first_sent: Duration,
    pub last_answer: Duration,
    /// Open loop only: how late the generator sent its latest-sent order against the schedule
    /// (large values mean loadgen itself could not keep the rate).
    pub max_send_lag: Duration,
}

impl Fired {
    fn absorb(&mut self, other: Fired) {
        self.accepted.extend(other.accepted);
        self.refused += other.refused;
        self.unanswered += other.unanswered;
        if self.first_refusal.is_none() {
            self.first_refusal = other.first_refusal;
        }
    }
}

/// Where each accepted order is reported: `tell` at once (so the poller can watch it while the
/// rest are still being placed) and the progress counters.
#[derive(Clone)]
pub struct Sink {
    pub origin: Instant,
    pub tell: UnboundedSender<Accepted>,
    pub counters: Arc<Counters>,
}

/// Places order number `index` and records what happened in `fired`.
async fn place_one(gateway: &Gateway, product: Uuid, index: usize, sink: &Sink, fired: &mut Fired) {
    let sent = Instant::now();
    let outcome = gateway.place_order(product, index + 1).await;
    let latency = sent.elapsed();
    match outcome {
        Ok(Placed::Accepted(id)) => {
            let accepted = Accepted { id, latency, accepted_at: sink.origin.elapsed() };
            fired.accepted.push(accepted);
            sink.counters.accepted.fetch_add(1, Ordering::Relaxed);
            let _ = sink.tell.send(accepted);
        }
        Ok(Placed::Refused { status, body }) => {
            fired.refused += 1;
            note(fired, format!("HTTP {status}: {body}"));
        }
        Err(error) => {
            fired.unanswered += 1;
            note(fired, format!("{error:#}"));
        }
    }
}

fn note(fired: &mut Fired, reason: String) {
    if fired.first_refusal.is_none() {
        fired.first_refusal = Some(reason);
    }
}

/// Closed loop: `concurrency` workers, `orders` orders in all.
pub async fn fire(
    gateway: &Gateway,
    product: Uuid,
    orders: usize,
    concurrency: usize,
    sink: Sink,
) -> anyhow::Result<Fired> {
    let next = Arc::new(AtomicUsize::new(0));
    let first_sent = sink.origin.elapsed();
    let mut workers = Vec::new();
    for _ in 0..concurrency.clamp(1, orders.max(1)) {
        let (gateway, next, sink) = (gateway.clone(), next.clone(), sink.clone());
        workers.push(tokio::spawn(async move {
            let mut fired = Fired::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= orders {
                    break;
                }
                place_one(&gateway, product, index, &sink, &mut fired).await;
            }
            fired
        }));
    }
    let mut total = Fired { first_sent, ..Fired::default() };
    for worker in futures_util::future::join_all(workers).await {
        total.absorb(worker?);
    }
    total.last_answer = sink.origin.elapsed();
    Ok(total)
}

/// The moment order `index` is due, for `rate` orders a second.
fn due(index: usize, rate: f64) -> Duration {
    Duration::from_secs_f64(index as f64 / rate)
}

/// Open loop: `orders` orders at `rate` a second, each sent on schedule in its own task.
pub async fn fire_at_rate(
    gateway: &Gateway,
    product: Uuid,
    orders: usize,
    rate: f64,
    sink: Sink,
) -> anyhow::Result<Fired> {
    let start = tokio::time::Instant::now();
    let first_sent = sink.origin.elapsed();
    let mut max_send_lag = Duration::ZERO;
    let mut tasks = Vec::with_capacity(orders);
    for index in 0..orders {
        let due_at = start + due(index, rate);
        tokio::time::sleep_until(due_at).await;
        max_send_lag = max_send_lag.max(tokio::time::Instant::now().saturating_duration_since(due_at));
        let (gateway, sink) = (gateway.clone(), sink.clone());
        tasks.push(tokio::spawn(async move {
            let mut fired = Fired::default();
            place_one(&gateway, product, index, &sink, &mut fired).await;
            fired
        }));
    }
    let mut total = Fired { first_sent, max_send_lag, ..Fired::default() };
    for task in futures_util::future::join_all(tasks).await {
        total.absorb(task?);
    }
    total.last_answer = sink.origin.elapsed();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_due_evenly_spaced_at_the_rate() {
        assert_eq!(due(0, 300.0), Duration::ZERO);
        assert_eq!(due(300, 300.0), Duration::from_secs(1));
        assert_eq!(due(3, 4.0), Duration::from_millis(750));
    }
}

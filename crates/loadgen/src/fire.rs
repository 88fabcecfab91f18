//! Fires the orders: a fixed number of workers share one counter, so exactly `orders` requests
//! go out and never more than `concurrency` are in flight.

use crate::gateway::{Gateway, Placed};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use uuid::Uuid;

/// One accepted order: its id, the POST round trip, and when (since the run's origin) the
/// answer arrived.
#[derive(Clone, Copy)]
pub struct Accepted {
    pub id: Uuid,
    pub latency: Duration,
    pub accepted_at: Duration,
}

#[derive(Default)]
pub struct Fired {
    pub accepted: Vec<Accepted>,
    /// Orders the gateway refused or that never got an answer, with the first reason seen.
    pub refused: usize,
    pub first_refusal: Option<String>,
    /// When the first request went out and the last answer came back, since the origin.
    pub first_sent: Duration,
    pub last_answer: Duration,
}

/// Each accepted order is also sent on `tell` at once, so the poller can watch it while the
/// rest are still being placed.
pub async fn fire(
    gateway: &Gateway,
    product: Uuid,
    orders: usize,
    concurrency: usize,
    origin: Instant,
    tell: UnboundedSender<Accepted>,
) -> anyhow::Result<Fired> {
    let next = Arc::new(AtomicUsize::new(0));
    let first_sent = origin.elapsed();
    let mut workers = Vec::new();
    for _ in 0..concurrency.clamp(1, orders.max(1)) {
        let (gateway, next, tell) = (gateway.clone(), next.clone(), tell.clone());
        workers.push(tokio::spawn(async move {
            let mut fired = Fired::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= orders {
                    break;
                }
                let sent = Instant::now();
                let outcome = gateway.place_order(product, index + 1).await;
                let latency = sent.elapsed();
                match outcome {
                    Ok(Placed::Accepted(id)) => {
                        let accepted = Accepted { id, latency, accepted_at: origin.elapsed() };
                        fired.accepted.push(accepted);
                        let _ = tell.send(accepted);
                    }
                    Ok(Placed::Refused { status, body }) => {
                        refuse(&mut fired, format!("HTTP {status}: {body}"))
                    }
                    Err(error) => refuse(&mut fired, format!("{error:#}")),
                }
            }
            fired
        }));
    }
    let mut total = Fired { first_sent, ..Fired::default() };
    for worker in futures_util::future::join_all(workers).await {
        let fired = worker?;
        total.accepted.extend(fired.accepted);
        total.refused += fired.refused;
        if total.first_refusal.is_none() {
            total.first_refusal = fired.first_refusal;
        }
    }
    total.last_answer = origin.elapsed();
    Ok(total)
}

fn refuse(fired: &mut Fired, reason: String) {
    fired.refused += 1;
    if fired.first_refusal.is_none() {
        fired.first_refusal = Some(reason);
    }
}

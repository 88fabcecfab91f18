//! Clients that keep at it: each places one order with its own `Idempotency-Key` and retries
//! the very same request (same key, same body) on a connection error, a timeout, a 5xx, a 409
//! (the first attempt is still in flight) or a 429, with capped exponential backoff and jitter,
//! until it holds a 201 or its patience runs out.

use rand::Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct Outcome {
    /// 1-based; the order's customer email is `chaos+<index>@example.com`.
    pub index: usize,
    pub key: String,
    pub body: Value,
    /// The id of the 201 the client finally got.
    pub id: Option<Uuid>,
    pub attempts: u32,
    /// Why it gave up, when it did.
    pub refusal: Option<String>,
}

/// Why attempts were repeated, over all clients.
#[derive(Default, Debug, Clone)]
pub struct Retries {
    pub connection: usize,
    pub server_error: usize,
    pub in_flight: usize,
    pub too_many: usize,
}

impl Retries {
    pub fn total(&self) -> usize {
        self.connection + self.server_error + self.in_flight + self.too_many
    }
}

pub struct Fired {
    pub outcomes: Vec<Outcome>,
    pub retries: Retries,
    pub last_answer: Duration,
}

pub fn email(index: usize) -> String {
    format!("chaos+{index}@example.com")
}

pub fn order_body(product: Uuid, index: usize) -> Value {
    json!({
        "customer_name": format!("Chaos {index}"),
        "customer_email": email(index),
        "items": [{"product_id": product, "quantity": 1}],
    })
}

pub struct Plan {
    pub gateway: String,
    pub product: Uuid,
    pub orders: usize,
    pub concurrency: usize,
    /// Orders started per second (over all clients), so the placing lasts through the faults.
    pub rate: f64,
    /// How long one client keeps retrying before it gives up.
    pub patience: Duration,
    pub request_timeout: Duration,
}

enum Attempt {
    Created(Uuid),
    Retry(&'static str, String),
    Refused(String),
}

async fn attempt(http: &reqwest::Client, url: &str, key: &str, body: &Value) -> Attempt {
    let sent = http.post(url).header("Idempotency-Key", key).json(body).send().await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Attempt::Retry("connection", format!("{error}")),
    };
    let status = response.status().as_u16();
    let text = match response.text().await {
        Ok(text) => text,
        Err(error) => return Attempt::Retry("connection", format!("reading the answer: {error}")),
    };
    match status {
        201 => match serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["id"].as_str().and_then(|id| Uuid::parse_str(id).ok()))
        {
            Some(id) => Attempt::Created(id),
            None => Attempt::Refused(format!("201 without an order id: {text}")),
        },
        409 => Attempt::Retry("in_flight", text),
        429 => Attempt::Retry("too_many", text),
        500..=599 => Attempt::Retry("server_error", format!("HTTP {status}: {text}")),
        _ => Attempt::Refused(format!("HTTP {status}: {text}")),
    }
}

/// Places one order as a client would, retrying until a 201 or `patience` ends.
async fn place(
    http: &reqwest::Client,
    url: &str,
    mut outcome: Outcome,
    patience: Duration,
    retries: &mut Retries,
) -> Outcome {
    let start = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        outcome.attempts += 1;
        let reason = match attempt(http, url, &outcome.key, &outcome.body).await {
            Attempt::Created(id) => {
                outcome.id = Some(id);
                return outcome;
            }
            Attempt::Refused(why) => {
                outcome.refusal = Some(why);
                return outcome;
            }
            Attempt::Retry(kind, why) => {
                match kind {
                    "connection" => retries.connection += 1,
                    "server_error" => retries.server_error += 1,
                    "in_flight" => retries.in_flight += 1,
                    _ => retries.too_many += 1,
                }
                why
            }
        };
        if start.elapsed() > patience {
            outcome.refusal = Some(format!("gave up after {} attempts; last: {reason}", outcome.attempts));
            return outcome;
        }
        let jitter = rand::rng().random_range(0.5..1.5);
        tokio::time::sleep(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Runs every client; each order starts at its slot (`index / rate` after `origin`) or when a
/// worker is free, whichever is later.
pub async fn fire(plan: Plan, origin: Instant) -> anyhow::Result<Fired> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(plan.concurrency + 4)
        .timeout(plan.request_timeout)
        .build()?;
    let url = format!("{}/api/v1/orders", plan.gateway);
    let next = Arc::new(AtomicUsize::new(0));
    let plan = Arc::new(plan);
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency.clamp(1, plan.orders.max(1)) {
        let (http, url, next, plan) = (http.clone(), url.clone(), next.clone(), plan.clone());
        workers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut retries = Retries::default();
            loop {
                let slot = next.fetch_add(1, Ordering::Relaxed);
                if slot >= plan.orders {
                    break;
                }
                let at = origin + Duration::from_secs_f64(slot as f64 / plan.rate.max(0.001));
                tokio::time::sleep_until(at.into()).await;
                let index = slot + 1;
                let outcome = Outcome {
                    index,
                    key: Uuid::new_v4().to_string(),
                    body: order_body(plan.product, index),
                    id: None,
                    attempts: 0,
                    refusal: None,
                };
                outcomes.push(place(&http, &url, outcome, plan.patience, &mut retries).await);
            }
            (outcomes, retries)
        }));
    }
    let mut fired = Fired { outcomes: Vec::new(), retries: Retries::default(), last_answer: Duration::ZERO };
    for worker in futures_util::future::join_all(workers).await {
        let (outcomes, retries) = worker?;
        fired.outcomes.extend(outcomes);
        fired.retries.connection += retries.connection;
        fired.retries.server_error += retries.server_error;
        fired.retries.in_flight += retries.in_flight;
        fired.retries.too_many += retries.too_many;
    }
    fired.outcomes.sort_by_key(|o| o.index);
    fired.last_answer = origin.elapsed();
    Ok(fired)
}

/// After the storm: the same request with the same key must answer 201 with the same order id
/// (the gateway replays its first answer). Returns the clients whose replay differed.
pub async fn replay_all(
    gateway: &str,
    outcomes: &[Outcome],
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    use futures_util::StreamExt;
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build()?;
    let url = format!("{gateway}/api/v1/orders");
    let mismatches = futures_util::stream::iter(outcomes.iter().filter(|o| o.id.is_some()))
        .map(|outcome| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                match attempt(&http, &url, &outcome.key, &outcome.body).await {
                    Attempt::Created(id) if Some(id) == outcome.id => None,
                    Attempt::Created(id) => Some(format!(
                        "client {}: first answer {:?}, replay {id}",
                        outcome.index,
                        outcome.id.unwrap_or_default()
                    )),
                    Attempt::Retry(_, why) | Attempt::Refused(why) => {
                        Some(format!("client {}: replay did not answer 201: {why}", outcome.index))
                    }
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|m| async move { m })
        .collect::<Vec<_>>()
        .await;
    Ok(mismatches)
}

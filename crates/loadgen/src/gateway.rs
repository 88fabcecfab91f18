//! The few gateway calls the load generator makes, over one keep-alive connection pool.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Clone)]
pub struct Gateway {
    base: String,
    http: reqwest::Client,
    /// An admin's bearer token: creating products and listing every order need one.
    admin_token: String,
}

/// What one `POST /api/v1/orders` answered.
pub enum Placed {
    Accepted(Uuid),
    Refused { status: u16, body: String },
}

/// One page of `GET /api/v1/orders`: (id, status) pairs and the cursor of the next page.
pub struct Page {
    pub items: Vec<(Uuid, String)>,
    pub next_cursor: Option<Uuid>,
}

impl Gateway {
    /// Refuses anything but a loopback gateway: this tool generates load and must not be aimed
    /// at a shared environment by accident.
    pub fn new(base: &str, connections: usize) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base).with_context(|| format!("gateway URL `{base}`"))?;
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let loopback =
            host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            bail!(
                "refusing to load `{base}`: only a loopback gateway (127.0.0.1, ::1, localhost) is allowed"
            );
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(connections.max(1) + 4)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { base, http, admin_token: String::new() })
    }

    /// Logs in as the admin whose token the product and list calls carry.
    pub async fn login(&mut self, email: &str, password: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if status.as_u16() != 200 {
            bail!("admin login as {email}: HTTP {status}: {text}");
        }
        let value: Value = serde_json::from_str(&text)?;
        self.admin_token = value["access_token"].as_str().unwrap_or_default().to_owned();
        Ok(())
    }

    pub async fn create_product(&self, sku: &str, stock: usize) -> anyhow::Result<Uuid> {
        let body = json!({
            "sku": sku, "name": format!("Load test {sku}"), "price": "1.00", "currency": "USD", "stock": stock,
        });
        let response = self
            .http
            .post(format!("{}/api/v1/products", self.base))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if status.as_u16() != 201 {
            bail!("creating product {sku}: HTTP {status}: {text}");
        }
        let value: Value = serde_json::from_str(&text)?;
        id_of(&value).with_context(|| format!("product answer without an id: {text}"))
    }

    pub async fn place_order(&self, product: Uuid, index: usize) -> anyhow::Result<Placed> {
        let body = json!({
            "customer_name": format!("Load {index}"),
            "customer_email": format!("load+{index}@example.com"),
            "items": [{"product_id": product, "quantity": 1}],
        });
        let response = self.http.post(format!("{}/api/v1/orders", self.base)).json(&body).send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        if status != 201 {
            return Ok(Placed::Refused { status, body: text });
        }
        let value: Value = serde_json::from_str(&text)?;
        Ok(Placed::Accepted(id_of(&value).with_context(|| format!("order answer without an id: {text}"))?))
    }

    /// Places orders until the gateway's catalog knows `product` (422 until it does).
    /// Returns the id of the order that got through: it takes one unit of stock.
    pub async fn wait_until_orderable(&self, product: Uuid, deadline: Duration) -> anyhow::Result<Uuid> {
        let start = Instant::now();
        loop {
            match self.place_order(product, 0).await? {
                Placed::Accepted(id) => return Ok(id),
                Placed::Refused { status: 422, .. } if start.elapsed() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Placed::Refused { status, body } => {
                    bail!("the gateway never accepted an order for product {product}: HTTP {status}: {body}")
                }
            }
        }
    }

    /// `status` must be a terminal status (`confirmed` or `failed`); `created_after` (RFC 3339)
    /// keeps orders of earlier runs out of the walk.
    pub async fn list(&self, status: &str, after: Option<Uuid>, created_after: &str) -> anyhow::Result<Page> {
        let mut url =
            format!("{}/api/v1/orders?status={status}&limit=100&created_after={created_after}", self.base);
        if let Some(after) = after {
            url.push_str(&format!("&starting_after={after}"));
        }
        let response = self.http.get(&url).bearer_auth(&self.admin_token).send().await?;
        let status_code = response.status();
        let text = response.text().await?;
        if !status_code.is_success() {
            bail!("listing orders: HTTP {status_code}: {text}");
        }
        let value: Value = serde_json::from_str(&text)?;
        let mut items = Vec::new();
        for item in value["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let id = id_of(item).with_context(|| format!("listed order without an id: {item}"))?;
            items.push((id, item["status"].as_str().unwrap_or(status).to_owned()));
        }
        let next_cursor = value["next_cursor"].as_str().map(Uuid::parse_str).transpose()?;
        Ok(Page { items, next_cursor })
    }
}

fn id_of(value: &Value) -> Option<Uuid> {
    value["id"].as_str().and_then(|id| Uuid::parse_str(id).ok())
}

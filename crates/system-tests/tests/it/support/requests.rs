//! Calls through the gateway, as a guest, a customer or the admin, and the steps built on them.

use super::{SAGA_TIMEOUT, System};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::eventually;
use uuid::Uuid;

impl System {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self.http.post(self.url(path)).json(body).send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An admin call (products, webhook endpoints, notifications): use these for admin routes so
    /// the scenario keeps working when the gateway requires an admin token.
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_as(&self.admin_token, reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        self.send_as(&self.admin_token, reqwest::Method::GET, path, None).await
    }

    pub async fn admin_patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_as(&self.admin_token, reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn admin_delete(&self, path: &str) -> (u16, Value) {
        self.send_as(&self.admin_token, reqwest::Method::DELETE, path, None).await
    }

    /// A call with `token` as bearer.
    pub async fn send_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates a product through the gateway and waits until the gateway's catalog knows it.
    pub async fn product(&self, sku: &str, price: &str, stock: i64) -> Uuid {
        let (status, body) =
            self.admin_post("/api/v1/products", &json!({"sku": sku, "name": format!("Product {sku}"), "price": price, "currency": "USD", "stock": stock})).await;
        assert_eq!(status, 201, "product created: {body}");
        let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
        eventually("the catalog to learn the product", Duration::from_secs(20), || async move {
            (self
                .count(&format!("SELECT count(*) AS n FROM order_api.catalog_products WHERE id = '{id}'"))
                .await
                == 1)
                .then_some(())
        })
        .await;
        id
    }

    pub async fn order(&self, items: &[(Uuid, i64)], payment_method: Option<&str>) -> (u16, Value) {
        let items: Vec<Value> =
            items.iter().map(|(id, q)| json!({"product_id": id, "quantity": q})).collect();
        let mut body =
            json!({"customer_name": "Ada Lovelace", "customer_email": "ada@example.com", "items": items});
        if let Some(method) = payment_method {
            body["payment_method"] = json!(method);
        }
        self.post("/api/v1/orders", &body).await
    }

    /// Polls the order until `done` says so; returns the last body.
    pub async fn order_until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/api/v1/orders/{id}");
        eventually(what, SAGA_TIMEOUT, || {
            let path = path.clone();
            let done = &done;
            async move {
                // As an admin: a guest order is not readable by its id alone.
                let (status, body) = self.admin_get(&path).await;
                (status == 200 && done(&body)).then_some(body)
            }
        })
        .await
    }

    pub async fn terminal(&self, id: &str) -> Value {
        self.order_until(id, "the order to reach a terminal state", |o| {
            matches!(o["status"].as_str(), Some("confirmed" | "failed"))
        })
        .await
    }

    pub async fn product_view(&self, id: Uuid) -> Value {
        let (status, body) = self.get(&format!("/api/v1/products/{id}")).await;
        assert_eq!(status, 200);
        body
    }
}

//! Bad input at the gateway: a clear 4xx problem, and nothing changes.

use crate::support::System;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kind_of_bad_order_is_a_4xx_problem_and_changes_nothing() {
    let system = System::start().await;
    let product = system.product("MUG", "8.00", 10).await;
    let valid =
        |items: Value| json!({"customer_name": "Ada", "customer_email": "ada@example.com", "items": items});
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "missing items",
            json!({"customer_name": "Ada", "customer_email": "ada@example.com"}),
            422,
            "validation_failed",
        ),
        ("empty items", valid(json!([])), 422, "validation_failed"),
        ("zero quantity", valid(json!([{"product_id": product, "quantity": 0}])), 422, "validation_failed"),
        (
            "negative quantity",
            valid(json!([{"product_id": product, "quantity": -3}])),
            422,
            "validation_failed",
        ),
        (
            "huge quantity",
            valid(json!([{"product_id": product, "quantity": 1_000_000}])),
            422,
            "validation_failed",
        ),
        (
            "quantity beyond i64",
            valid(json!([{"product_id": product, "quantity": 1e30}])),
            422,
            "validation_failed",
        ),
        (
            "quantity as a string",
            valid(json!([{"product_id": product, "quantity": "2"}])),
            422,
            "validation_failed",
        ),
        (
            "unknown product",
            valid(json!([{"product_id": uuid::Uuid::now_v7(), "quantity": 1}])),
            422,
            "validation_failed",
        ),
        (
            "malformed product id",
            valid(json!([{"product_id": "abc", "quantity": 1}])),
            422,
            "validation_failed",
        ),
        (
            "duplicate lines",
            valid(json!([{"product_id": product, "quantity": 1}, {"product_id": product, "quantity": 2}])),
            422,
            "validation_failed",
        ),
        (
            "invalid email",
            json!({"customer_name": "Ada", "customer_email": "ada-at-example", "items": [{"product_id": product, "quantity": 1}]}),
            422,
            "validation_failed",
        ),
        (
            "empty name",
            json!({"customer_name": "  ", "customer_email": "ada@example.com", "items": [{"product_id": product, "quantity": 1}]}),
            422,
            "validation_failed",
        ),
        (
            "unknown field",
            json!({"customer_name": "Ada", "customer_email": "ada@example.com", "items": [{"product_id": product, "quantity": 1}], "discount": "100%"}),
            422,
            "validation_failed",
        ),
        (
            "too many items",
            valid(json!(
                (0..51)
                    .map(|_| json!({"product_id": uuid::Uuid::now_v7(), "quantity": 1}))
                    .collect::<Vec<_>>()
            )),
            422,
            "validation_failed",
        ),
    ];
    for (name, body, status, code) in cases {
        let (got, problem) = system.post("/api/v1/orders", &body).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{name}: {problem}");
        assert_eq!(problem["status"], status, "{name}");
    }

    let raw = |body: &'static str, content_type: &'static str| {
        system.http.post(system.url("/api/v1/orders")).header("content-type", content_type).body(body).send()
    };
    let response = raw("{\"customer_name\": ", "application/json").await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "malformed_json");
    let response = raw("customer_name=Ada", "application/x-www-form-urlencoded").await.unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let oversized = format!("{{\"customer_name\": \"{}\"}}", "x".repeat(100_000));
    let response = system
        .http
        .post(system.url("/api/v1/orders"))
        .header("content-type", "application/json")
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);

    let (status, problem) = system.get("/api/v1/orders/not-a-uuid").await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    let (status, _) = system.get(&format!("/api/v1/orders/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(status, 404);
    let (status, problem) = system.admin_get("/api/v1/orders?limit=1000").await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("validation_failed")));

    let (status, problem) = system
        .admin_post(
            "/api/v1/products",
            &json!({"sku": "MUG", "name": "Again", "price": "1.00", "currency": "USD", "stock": 1}),
        )
        .await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("sku_taken")));
    let (status, problem) = system
        .admin_post(
            "/api/v1/products",
            &json!({"sku": "X", "name": "X", "price": 9.99, "currency": "USD", "stock": 1}),
        )
        .await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("validation_failed")), "prices are strings");

    assert_eq!(system.count("SELECT count(*) AS n FROM order_api.orders").await, 0, "no order was created");
    assert_eq!(system.count("SELECT count(*) AS n FROM order_api.outbox").await, 0, "no event was queued");
    assert_eq!(system.count("SELECT count(*) AS n FROM inventory.products").await, 1, "no product was added");
    let (status, list) = system.admin_get("/api/v1/orders").await;
    assert_eq!((status, list["items"].as_array().map(Vec::len)), (200, Some(0)));
    system.finish().await;
}

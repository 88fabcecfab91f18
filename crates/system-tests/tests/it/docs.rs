//! The API documentation is true: the served OpenAPI document is the committed one, real
//! answers match its schemas (forwarded services included), and the docs page renders with no
//! internet in a real browser.

use crate::support::System;
use serde_json::{Value, json};

fn check_against(openapi: &Value, schema: &str, instance: &Value) {
    let mut root = openapi.clone();
    root["$ref"] = json!(format!("#/components/schemas/{schema}"));
    let validator = jsonschema::options().with_draft(jsonschema::Draft::Draft202012).build(&root).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{schema} does not describe {instance}: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_served_openapi_document_is_the_committed_one_and_describes_real_answers() {
    let system = System::start().await;
    let (status, served) = system.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(testkit::repo_root().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(served, committed, "docs/openapi.json drifted from the served document");

    let (_, product) = system
        .admin_post(
            "/api/v1/products",
            &json!({"sku": "DOC-1", "name": "Doc", "price": "5.00", "currency": "USD", "stock": 3}),
        )
        .await;
    check_against(&served, "Product", &product);
    let (_, products) = system.get("/api/v1/products").await;
    check_against(&served, "ProductPage", &products);
    let (_, endpoint) =
        system.admin_post("/api/v1/webhook-endpoints", &json!({"url": system.receiver.url("/h")})).await;
    check_against(&served, "WebhookEndpoint", &endpoint);
    let id: uuid::Uuid = product["id"].as_str().unwrap().parse().unwrap();
    testkit::eventually("the catalog", crate::support::SAGA_TIMEOUT, || async {
        (system
            .count(&format!("SELECT count(*) AS n FROM order_api.catalog_products WHERE id = '{id}'"))
            .await
            == 1)
            .then_some(())
    })
    .await;
    let (_, order) = system.order(&[(id, 1)], None).await;
    check_against(&served, "OrderView", &order);
    let (_, page) = system.admin_get("/api/v1/orders").await;
    check_against(&served, "Page", &page);
    let (_, problem) = system.post("/api/v1/orders", &json!({"items": []})).await;
    check_against(&served, "ProblemDoc", &problem);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_docs_page_renders_offline_in_headless_chromium() {
    let system = System::start().await;
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("chromium is installed (scripts/setup-test-deps.sh installs it)");
    let profile = std::env::temp_dir().join(format!("chromium-{}", system.db.name));
    let output = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            // Anything the page tried to fetch from outside would fail: only loopback resolves.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=15000",
            "--dump-dom",
            &system.url("/docs/"),
        ])
        .output()
        .await
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains("swagger-ui"), "not the Swagger UI page:\n{}", &dom[..dom.len().min(2000)]);
    for operation in
        ["/api/v1/orders", "/api/v1/orders/{id}/cancel", "/api/v1/auth/login", "/api/v1/products"]
    {
        assert!(dom.contains(operation), "the rendered page does not list {operation}");
    }
    assert!(dom.contains("Orders API"), "the document's title is shown");
    let _ = std::fs::remove_dir_all(profile);
    system.finish().await;
}

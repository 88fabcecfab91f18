//! Finding 8 and the low items: login backoff per account and per client, which client a
//! forwarded address names, registration that reveals no account, and the gateway's /metrics.

use super::{PASSWORD, customer, trusting_localhost};
use crate::support::{Options, System};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::eventually;

async fn login(
    system: &System,
    client: Option<&str>,
    email: &str,
    password: &str,
) -> (u16, Value, Option<String>) {
    let mut request = system
        .http
        .post(system.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(client) = client {
        request = request.header("x-forwarded-for", client);
    }
    let response = request.send().await.unwrap();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null), retry_after)
}

/// Wrong guesses (`email(n)` for the n-th) until the gateway refuses one with a wait of two
/// seconds or more, so the next request is surely still refused. The first `free` are always
/// let through; after them the wait doubles from 1 s.
async fn guess_until_backoff(
    system: &System,
    client: Option<&str>,
    email: impl Fn(usize) -> String,
    free: usize,
) {
    for n in 1..=free {
        let (status, problem, _) = login(system, client, &email(n), "wrong password guess").await;
        assert_eq!(status, 401, "guess {n} of the {free} free ones: {problem}");
    }
    let attempt = std::sync::atomic::AtomicUsize::new(free);
    let email = &email;
    eventually("a login backoff of 2 s or more", Duration::from_secs(30), || {
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        async move {
            let (status, problem, retry_after) =
                login(system, client, &email(n), "wrong password guess").await;
            assert!(status == 401 || status == 429, "{status} {problem}");
            let wait = retry_after.map(|s| s.parse::<u64>().unwrap());
            (status == 429 && problem["code"] == "login_backoff" && wait >= Some(2)).then_some(())
        }
    })
    .await;
}

fn short_backoff(settings: &mut order_api::settings::Settings) {
    settings.login_backoff_max_seconds = 5;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_login_backs_off_per_account_in_the_shared_database() {
    let system = System::start_with(Options { gateway: short_backoff, ..Options::default() }).await;
    customer(&system, "ada@example.com").await;
    guess_until_backoff(&system, None, |_| "ada@example.com".into(), 5).await;
    // Now even the right password must wait. The count lives in PostgreSQL, so every gateway
    // replica sees it.
    let (status, problem, _) = login(&system, None, "Ada@Example.com", PASSWORD).await;
    assert_eq!((status, problem["code"].as_str()), (429, Some("login_backoff")), "{problem}");
    let shared = "SELECT count(*) AS n FROM order_api.login_attempts \
                  WHERE subject = 'account:ada@example.com' AND blocked_until > now()";
    assert_eq!(system.count(shared).await, 1);
    // Unknown emails back off alike, so the answer reveals no account.
    guess_until_backoff(&system, None, |_| "nobody@example.com".into(), 5).await;
    // After the wait, the owner gets in, and a success starts the account afresh.
    eventually("the backoff to lapse", Duration::from_secs(30), || async {
        (login(&system, None, "ada@example.com", PASSWORD).await.0 == 200).then_some(())
    })
    .await;
    let left = "SELECT count(*) AS n FROM order_api.login_attempts WHERE subject = 'account:ada@example.com'";
    assert_eq!(system.count(left).await, 0);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_a_forged_forwarded_for_does_not_escape_the_per_client_login_backoff() {
    fn strict(settings: &mut order_api::settings::Settings) {
        settings.login_free_attempts_per_client = 3;
    }
    // No trusted proxies (the default): X-Forwarded-For is the attacker's own words. Every
    // guess names a new account and a new forged address; all count against the one peer.
    let system = System::start_with(Options { gateway: strict, ..Options::default() }).await;
    for n in 1..=3 {
        let (forged, email) = (format!("203.0.113.{n}"), format!("user{n}@example.com"));
        assert_eq!(login(&system, Some(&forged), &email, "wrong password").await.0, 401);
    }
    let attempt = std::sync::atomic::AtomicUsize::new(3);
    let refused = eventually("a per-client refusal", Duration::from_secs(20), || {
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let system = &system;
        async move {
            let (forged, email) = (format!("203.0.113.{n}"), format!("user{n}@example.com"));
            let (status, problem, _) = login(system, Some(&forged), &email, "wrong password").await;
            (status == 429).then_some(problem)
        }
    })
    .await;
    assert_eq!(refused["code"], "login_backoff");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_forwarded_for_from_a_trusted_proxy_names_the_client() {
    fn behind_proxy(settings: &mut order_api::settings::Settings) {
        trusting_localhost(settings);
        settings.login_free_attempts_per_client = 3;
    }
    let system = System::start_with(Options { gateway: behind_proxy, ..Options::default() }).await;
    guess_until_backoff(&system, Some("198.51.100.1"), |n| format!("user{n}@example.com"), 3).await;
    // A client cannot pose as another by prepending addresses (the proxy appends the real one,
    // and that one counts); another client behind the same proxy is somebody else.
    assert_eq!(login(&system, Some("198.51.100.2, 198.51.100.1"), "more@example.com", "wrong").await.0, 429);
    assert_eq!(login(&system, Some("198.51.100.2"), "other@example.com", "wrong password").await.0, 401);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_registration_does_not_reveal_who_has_an_account() {
    let system = System::start().await;
    let register = async |email: &str, name: &str| {
        system
            .post(
                "/api/v1/auth/register",
                &json!({"email": email, "password": "some other passphrase", "name": name}),
            )
            .await
    };
    customer(&system, "ada@example.com").await;
    let (taken_status, taken) = register("ada@example.com", "Mallory").await;
    let (free_status, free) = register("fresh@example.com", "Mallory").await;
    assert_eq!((taken_status, free_status), (201, 201));
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&taken), keys(&free));
    assert_eq!((taken["name"].as_str(), taken["role"].as_str()), (Some("Mallory"), Some("customer")));
    // Nothing changed for the real owner.
    assert_eq!(login(&system, None, "ada@example.com", PASSWORD).await.0, 200);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_the_gateway_serves_metrics_only_on_its_own_listener() {
    let system = System::start().await;
    let public = system.http.get(system.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status().as_u16(), 404);
    assert!(!public.text().await.unwrap().contains("http_requests_total"));
    let private = system.http.get(format!("{}/metrics", system.metrics)).send().await.unwrap();
    assert_eq!(private.status().as_u16(), 200);
    assert!(private.text().await.unwrap().contains("http_requests_total"));
    system.finish().await;
}

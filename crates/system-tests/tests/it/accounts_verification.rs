//! Verified accounts and password reset, end to end through the gateway and the notifier to the
//! real SMTP server: the verification email goes out once (also when its event is redelivered
//! or replayed), its single-use token expires, unverified accounts may be kept from ordering,
//! and a password reset by email ends every session. Only hashes of the tokens are stored.

use crate::support::{SAGA_TIMEOUT, System};
use contracts::{Envelope, Event};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{ReceivedMail, eventually};

const PASSWORD: &str = "correct horse battery";

async fn register(system: &System, email: &str) {
    let (status, body) = system
        .post("/api/v1/auth/register", &json!({"email": email, "password": PASSWORD, "name": "Ada Lovelace"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["email_verified"], false, "{body}");
}

async fn login(system: &System, email: &str, password: &str) -> (u16, Value) {
    system.post("/api/v1/auth/login", &json!({"email": email, "password": password})).await
}

async fn token_of(system: &System, email: &str) -> String {
    let (status, body) = login(system, email, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn mails_to(system: &System, email: &str, subject: &str) -> Vec<ReceivedMail> {
    system
        .smtp
        .received()
        .into_iter()
        .filter(|m| m.to.iter().any(|to| to == email))
        .filter(|m| m.header("subject").is_some_and(|s| s.contains(subject)))
        .collect()
}

/// Waits for the one email about `subject` to `email` and returns the token in its link (the
/// link is `…/<page>?token=<43 base64url characters>`, whatever the transfer encoding did to
/// the lines around it).
async fn token_from_mail(system: &System, email: &str, subject: &str, page: &str) -> String {
    let mails = eventually(&format!("the `{subject}` email to {email}"), SAGA_TIMEOUT, || async {
        let mails = mails_to(system, email, subject);
        (!mails.is_empty()).then_some(mails)
    })
    .await;
    assert_eq!(mails.len(), 1, "exactly one `{subject}` email");
    // Undo quoted-printable: soft line breaks, and `=` written as `=3D` (base64url has no `=`).
    let data = mails[0].data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let marker = format!("/{page}?token=");
    let at = data.find(&marker).unwrap_or_else(|| panic!("no {marker} link in:\n{data}")) + marker.len();
    let token: String =
        data[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    assert_eq!(token.len(), 43, "a 256-bit token in the link: {token}");
    token
}

async fn verify(system: &System, token: &str) -> (u16, Value) {
    system.post("/api/v1/auth/verify", &json!({"token": token})).await
}

/// The account.registered / password-reset events seen on the bus for `email`.
fn account_events(system: &System, event_type: &str, email: &str) -> Vec<Value> {
    system.events().into_iter().filter(|e| e["type"] == event_type && e["data"]["email"] == email).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_verification_email_goes_out_once_and_its_token_works_once_until_it_expires() {
    let system = System::start().await;
    register(&system, "ada@example.com").await;
    let token =
        token_from_mail(&system, "ada@example.com", "Confirm your email address", "verify-email").await;
    // Only the token's SHA-256 is stored.
    let stored = format!(
        "SELECT count(*) AS n FROM order_api.account_tokens \
         WHERE token_hash = sha256(convert_to('{token}', 'UTF8')) AND purpose = 'email_verification'"
    );
    assert_eq!(system.count(&stored).await, 1);
    assert_eq!(
        system.count(&format!("SELECT count(*) AS n FROM order_api.account_tokens WHERE encode(token_hash, 'escape') LIKE '%{token}%'")).await,
        0
    );

    let bearer = token_of(&system, "ada@example.com").await;
    let (_, me) = system.send_as(&bearer, reqwest::Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(me["email_verified"], false);
    assert_eq!(verify(&system, &token).await.0, 204);
    let (_, me) = system.send_as(&bearer, reqwest::Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(me["email_verified"], true, "{me}");
    let (status, problem) = verify(&system, &token).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_token")), "a second use: {problem}");
    let (status, _) = verify(&system, "not-a-token").await;
    assert_eq!(status, 400);

    // An expired token is refused, and stays unspent (the account is still unverified).
    register(&system, "grace@example.com").await;
    let late =
        token_from_mail(&system, "grace@example.com", "Confirm your email address", "verify-email").await;
    system
        .execute(
            "UPDATE order_api.account_tokens SET expires_at = now() - interval '1 second' \
             WHERE user_id = (SELECT id FROM order_api.users WHERE email = 'grace@example.com')",
        )
        .await;
    let (status, problem) = verify(&system, &late).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_token")), "{problem}");
    assert_eq!(
        system.count("SELECT count(*) AS n FROM order_api.users WHERE email = 'grace@example.com' AND email_verified_at IS NULL").await,
        1
    );

    // Redelivered (same event id) and replayed (a new id): no second email, no second row.
    let registered = account_events(&system, "account.registered", "ada@example.com");
    assert_eq!(registered.len(), 1, "one account.registered for one registration");
    let bytes = serde_json::to_vec(&registered[0]).unwrap();
    system.publish_raw("account.registered", &bytes).await;
    let envelope: Envelope = serde_json::from_value(registered[0].clone()).unwrap();
    let event: Event = envelope.event().unwrap();
    let replay = Envelope::new("test", &event);
    system.publish_raw("account.registered", &replay.to_bytes()).await;
    let handled = format!("SELECT count(*) AS n FROM notifier.inbox WHERE event_id = '{}'", replay.id);
    eventually("the notifier to handle the replay", Duration::from_secs(30), || async {
        (system.count(&handled).await == 1).then_some(())
    })
    .await;
    assert_eq!(mails_to(&system, "ada@example.com", "Confirm your email address").len(), 1);
    assert_eq!(
        system.count("SELECT count(*) AS n FROM notifier.notifications WHERE kind = 'email_verification' AND recipient = 'ada@example.com'").await,
        1
    );
    // Account messages are announced to nobody, and integrators cannot subscribe to them.
    assert!(system.events().iter().all(|e| e["type"] != "notification.sent"
        || !matches!(e["data"]["kind"].as_str(), Some("email_verification" | "password_reset"))));
    let (status, body) = system
        .admin_post(
            "/api/v1/webhook-endpoints",
            &json!({"url": "http://127.0.0.1:9/hooks", "event_types": ["account.registered"]}),
        )
        .await;
    assert_eq!(status, 422, "account events are not webhook events: {body}");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_unverified_accounts_get_a_403_when_the_setting_requires_verification() {
    let system = System::start_with(crate::support::Options {
        gateway: |s| s.require_verified_email = true,
        ..Default::default()
    })
    .await;
    let product = system.product("VERIFY-1", "10.00", 5).await;
    register(&system, "ada@example.com").await;
    let bearer = token_of(&system, "ada@example.com").await;
    let order = json!({"items": [{"product_id": product, "quantity": 1}]});
    let (status, problem) =
        system.send_as(&bearer, reqwest::Method::POST, "/api/v1/orders", Some(&order)).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("email_not_verified")), "{problem}");
    assert_eq!(system.count("SELECT count(*) AS n FROM order_api.orders").await, 0, "nothing stored");

    let token =
        token_from_mail(&system, "ada@example.com", "Confirm your email address", "verify-email").await;
    assert_eq!(verify(&system, &token).await.0, 204);
    // The same access token orders now: verification is read at order time.
    let (status, placed) =
        system.send_as(&bearer, reqwest::Method::POST, "/api/v1/orders", Some(&order)).await;
    assert_eq!(status, 201, "{placed}");
    system.terminal(placed["id"].as_str().unwrap()).await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_password_reset_by_email_ends_every_session_and_its_token_works_once() {
    let system = System::start().await;
    register(&system, "ada@example.com").await;
    let old_session = token_of(&system, "ada@example.com").await;

    // Unknown and known addresses get the same answer; only the known one gets an email.
    let at = &system;
    let reset = |email: &'static str| async move {
        let response = at
            .http
            .post(at.url("/api/v1/auth/password-reset"))
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let unknown = reset("nobody@example.com").await;
    let known = reset("Ada@Example.com").await;
    assert_eq!(unknown, known, "no account enumeration");
    assert_eq!(known.0, 202);
    let token = token_from_mail(&system, "ada@example.com", "Reset your password", "reset-password").await;
    assert!(account_events(&system, "account.password_reset_requested", "nobody@example.com").is_empty());
    assert!(!system.smtp.attempted().iter().any(|to| to == "nobody@example.com"));

    // A new password that breaks the policy leaves the token unspent.
    let confirm = |token: String, password: &'static str| async move {
        at.post("/api/v1/auth/password-reset/confirm", &json!({"token": token, "new_password": password}))
            .await
    };
    let (status, problem) = confirm(token.clone(), "short").await;
    assert_eq!(status, 422, "{problem}");
    let (status, body) = confirm(token.clone(), "a brand new passphrase").await;
    assert_eq!(status, 204, "{body}");

    let (status, _) = system.send_as(&old_session, reqwest::Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(status, 401, "the session from before the reset has ended");
    assert_eq!(login(&system, "ada@example.com", "a brand new passphrase").await.0, 200);
    assert_eq!(login(&system, "ada@example.com", PASSWORD).await.0, 401, "the old password fails");
    let (status, problem) = confirm(token, "yet another passphrase").await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_token")), "reused: {problem}");
    assert_eq!(login(&system, "ada@example.com", "a brand new passphrase").await.0, 200);
    system.finish().await;
}

//! The gateway, as an admin: a bearer token from `--token`/`OPS_TOKEN`, or one obtained by
//! logging in with `OPS_EMAIL`/`OPS_PASSWORD`.

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

pub struct Gateway {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Gateway {
    pub async fn connect(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
        let base = format!("{}/api/v1", base.trim_end_matches('/'));
        let token = match token.filter(|t| !t.is_empty()) {
            Some(token) => token,
            None => login(&http, &base).await?,
        };
        Ok(Self { http, base, token })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{method} {url}: no answer"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {url}: {status}: {}", describe_problem(&body));
        }
        Ok(body)
    }
}

async fn login(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let (Ok(email), Ok(password)) = (std::env::var("OPS_EMAIL"), std::env::var("OPS_PASSWORD")) else {
        bail!("no credentials: pass --token (or OPS_TOKEN), or set OPS_EMAIL and OPS_PASSWORD");
    };
    let response = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .context("login: the gateway did not answer")?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("login refused ({status}): {}", describe_problem(&body));
    }
    body["access_token"].as_str().map(str::to_owned).context("login answered without an access_token")
}

/// A problem+json body in one line: title, detail and field errors.
fn describe_problem(body: &Value) -> String {
    let mut parts: Vec<String> =
        ["title", "detail"].iter().filter_map(|key| body[*key].as_str().map(str::to_owned)).collect();
    if let Some(errors) = body["errors"].as_array() {
        for error in errors {
            parts.push(format!(
                "{}: {}",
                error["field"].as_str().unwrap_or("?"),
                error["message"].as_str().unwrap_or("?")
            ));
        }
    }
    if parts.is_empty() { body.to_string() } else { parts.join("; ") }
}

//! A real HTTP server on loopback that records every request (for webhook tests) and answers
//! as the test scripts it: a status (or a sequence of them), extra headers such as
//! `Retry-After` or `Location`, a body, and a delay before answering.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// When the request arrived (before any scripted delay).
    pub at: Instant,
}

/// How the receiver answers.
#[derive(Debug, Clone)]
struct Script {
    /// Statuses to answer, one per request, before falling back to `status`.
    next: VecDeque<u16>,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

#[derive(Clone)]
pub struct HttpReceiver {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    script: Arc<Mutex<Script>>,
}

impl HttpReceiver {
    pub async fn start() -> anyhow::Result<Self> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Script {
            next: VecDeque::new(),
            status: 200,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }));
        let (store, answer) = (received.clone(), script.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            let (store, answer) = (store.clone(), answer.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (store, answer) = (store.clone(), answer.clone());
                async move {
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                        .collect();
                    if let Ok(mut all) = store.lock() {
                        all.push(ReceivedRequest {
                            path: req.path().to_owned(),
                            headers,
                            body: body.to_vec(),
                            at: Instant::now(),
                        });
                    }
                    let (status, headers, body, delay) = match answer.lock() {
                        Ok(mut script) => {
                            let status = script.next.pop_front().unwrap_or(script.status);
                            (status, script.headers.clone(), script.body.clone(), script.delay)
                        }
                        Err(_) => (500, Vec::new(), String::new(), Duration::ZERO),
                    };
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let code = actix_web::http::StatusCode::from_u16(status)
                        .unwrap_or(actix_web::http::StatusCode::OK);
                    let mut response = HttpResponse::build(code);
                    for header in headers {
                        response.insert_header(header);
                    }
                    response.body(body)
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        tokio::spawn(server);
        Ok(Self { port, received, script })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn edit(&self, change: impl FnOnce(&mut Script)) {
        if let Ok(mut script) = self.script.lock() {
            change(&mut script);
        }
    }

    /// Answers every request (after any scripted sequence) with `status`.
    pub fn respond_with(&self, status: u16) {
        self.edit(|s| s.status = status);
    }

    /// Answers the next requests with these statuses, in order, then as before.
    pub fn respond_in_sequence(&self, statuses: &[u16]) {
        self.edit(|s| s.next.extend(statuses));
    }

    /// Adds a header to every answer (`Retry-After`, `Location`, ...).
    pub fn respond_with_header(&self, name: &str, value: &str) {
        self.edit(|s| s.headers.push((name.to_owned(), value.to_owned())));
    }

    pub fn respond_with_body(&self, body: &str) {
        self.edit(|s| s.body = body.to_owned());
    }

    /// Waits this long before answering each request (a slow receiver).
    pub fn delay_answers(&self, delay: Duration) {
        self.edit(|s| s.delay = delay);
    }

    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received.lock().map(|all| all.clone()).unwrap_or_default()
    }
}

//! A real HTTP server on loopback that records every request (for webhook tests) and answers
//! with a status the test chooses.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

#[derive(Clone)]
pub struct HttpReceiver {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    status: Arc<AtomicU16>,
}

impl HttpReceiver {
    pub async fn start() -> anyhow::Result<Self> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (store, answer) = (received.clone(), status.clone());
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
                        });
                    }
                    let code = actix_web::http::StatusCode::from_u16(answer.load(Ordering::SeqCst))
                        .unwrap_or(actix_web::http::StatusCode::OK);
                    HttpResponse::build(code).finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        tokio::spawn(server);
        Ok(Self { port, received, status })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn respond_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received.lock().map(|all| all.clone()).unwrap_or_default()
    }
}

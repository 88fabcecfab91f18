//! What every service needs and none of them should write twice: layered settings, logging,
//! the PostgreSQL pool and embedded migrations, the HTTP server with health, metrics and
//! RFC 9457 problems, and one cancellation token for graceful shutdown.

pub mod auth;
pub mod db;
pub mod exit;
pub mod http;
pub mod private_file;
pub mod problem;
pub mod retry;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod trace;
pub mod validation;

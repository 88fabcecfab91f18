//! The gateway's own commands, besides the chassis's `serve` and `migrate`.
//!
//! `order-api create-admin` is the other way to get the first admin (besides the
//! `BOOTSTRAP_ADMIN_*` settings). The password comes from `ADMIN_PASSWORD` or standard input,
//! never from the command line (where `ps` and shell history would keep it).

use crate::accounts;
use crate::settings::Settings;
use crate::startup::MIGRATIONS;
use std::io::BufRead;

#[derive(Debug, clap::Subcommand)]
pub enum Own {
    /// Create an admin account (the password is read from ADMIN_PASSWORD or standard input)
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
    /// Generate a token signing key (or, with --public, print the public keys of JWT_SIGNING_KEY)
    JwtKeys {
        #[arg(long)]
        public: bool,
    },
}

/// Runs one of the gateway's own commands.
pub async fn run(command: Own) -> anyhow::Result<()> {
    match command {
        Own::CreateAdmin { email, name } => create_admin(&email, &name).await,
        Own::JwtKeys { public } => jwt_keys(public),
    }
}

async fn create_admin(email: &str, name: &str) -> anyhow::Result<()> {
    let password = match std::env::var("ADMIN_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            eprintln!("password for {email} (then Enter):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let settings = Settings::load()?;
    chassis::migrate(crate::SERVICE, &settings.common, MIGRATIONS).await?;
    let pool = platform::db::pool(settings.common.database_url.expose(), 2)?;
    let mut conn = pool.get().await?;
    match accounts::ensure_admin(&mut conn, email, &password, name).await {
        Ok(true) => println!("created admin {email}"),
        Ok(false) => println!("an account with email {email} already exists; nothing changed"),
        Err(accounts::AccountError::Invalid(errors)) => {
            for error in errors {
                eprintln!("{}: {}", error.field, error.message);
            }
            anyhow::bail!("the admin was not created");
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// `order-api jwt-keys`: a fresh token signing key and its public JWK set, as `.env` lines
/// (`JWT_SIGNING_KEY` for the gateway only, `JWT_PUBLIC_KEYS` for every service).
/// `order-api jwt-keys --public` prints the JWK set of the key in `JWT_SIGNING_KEY` instead
/// (to add a new key to the services' `JWT_PUBLIC_KEYS` during a rollover).
fn jwt_keys(public_only: bool) -> anyhow::Result<()> {
    let pem = if public_only {
        platform::settings::Secret::new(
            std::env::var("JWT_SIGNING_KEY").map_err(|_| anyhow::anyhow!("set JWT_SIGNING_KEY"))?,
        )
    } else {
        platform::auth::generate_signing_key_pem()
    };
    let key = platform::auth::SigningKey::from_pem(&pem)?;
    let jwks = serde_json::to_string(&platform::auth::jwk_set([key.public_jwk()]))?;
    if public_only {
        println!("{jwks}");
    } else {
        // One line each, newlines escaped: fits an .env file and a Kubernetes literal.
        println!("JWT_SIGNING_KEY='{}'", pem.expose().trim_end().replace('\n', "\\n"));
        println!("JWT_PUBLIC_KEYS='{jwks}'");
    }
    Ok(())
}

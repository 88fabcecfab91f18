//! `order-api create-admin`: the other way to get the first admin (besides the
//! `BOOTSTRAP_ADMIN_*` settings). The password comes from `ADMIN_PASSWORD` or standard input,
//! never from the command line (where `ps` and shell history would keep it).

use crate::accounts;
use crate::settings::Settings;
use crate::startup::MIGRATIONS;
use std::io::BufRead;

pub async fn create_admin(args: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let matches = clap::Command::new("order-api create-admin")
        .about("Create an admin account (the password is read from ADMIN_PASSWORD or standard input)")
        .arg(clap::Arg::new("email").long("email").required(true))
        .arg(clap::Arg::new("name").long("name").default_value("Administrator"))
        .try_get_matches_from(args)?;
    let email = matches.get_one::<String>("email").cloned().unwrap_or_default();
    let name = matches.get_one::<String>("name").cloned().unwrap_or_default();
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
    messaging::runtime::migrate(crate::SERVICE, &settings.common, MIGRATIONS).await?;
    let pool = platform::db::pool(settings.common.database_url.expose(), 2)?;
    let mut conn = pool.get().await?;
    match accounts::ensure_admin(&mut conn, &email, &password, &name).await {
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
pub fn jwt_keys(args: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let matches = clap::Command::new("order-api jwt-keys")
        .about("Generate a token signing key (or, with --public, print the public keys of JWT_SIGNING_KEY)")
        .arg(clap::Arg::new("public").long("public").action(clap::ArgAction::SetTrue))
        .try_get_matches_from(args)?;
    let public_only = matches.get_flag("public");
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

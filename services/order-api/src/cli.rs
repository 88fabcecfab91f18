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

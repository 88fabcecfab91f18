//! Each service's `src/schema.rs` is what `diesel print-schema` makes of its migrations: a
//! migration that changes a table without regenerating it (or an edit by hand) fails here.
//! `UPDATE_SCHEMA=1` rewrites the files instead. Needs the `diesel` CLI, which
//! `scripts/setup-test-deps.sh` installs.

use std::process::Command;

/// (service directory, PostgreSQL schema and role)
const SERVICES: [(&str, &str); 5] = [
    ("order-api", "order_api"),
    ("inventory", "inventory"),
    ("payment", "payment"),
    ("notifier", "notifier"),
    ("webhook-dispatcher", "webhooks"),
];

fn diesel_cli() -> std::path::PathBuf {
    let on_path = Command::new("diesel").arg("--version").output().is_ok_and(|out| out.status.success());
    if on_path {
        return "diesel".into();
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cargo")))
        .expect("HOME or CARGO_HOME is set");
    let installed = home.join("bin/diesel");
    assert!(installed.exists(), "the diesel CLI is missing: run scripts/setup-test-deps.sh (make test does)");
    installed
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_rs_of_every_service_matches_its_migrations() {
    let db = testkit::TestDatabase::create().await.unwrap();
    let diesel = diesel_cli();
    let root = testkit::repo_root();
    let update = std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1");
    let mut drifted = Vec::new();
    for (service, role) in SERVICES {
        let own = match role {
            "order_api" => order_api::startup::MIGRATIONS,
            "inventory" => inventory::startup::MIGRATIONS,
            "payment" => payment::startup::MIGRATIONS,
            "notifier" => notifier::startup::MIGRATIONS,
            _ => webhook_dispatcher::startup::MIGRATIONS,
        };
        let pool = platform::db::pool(&db.url_for(role), 2).unwrap();
        platform::db::migrate(&pool, platform::db::lock_key(role), vec![messaging::MIGRATIONS, own])
            .await
            .unwrap_or_else(|e| panic!("{service} migrates: {e}"));
        let config = root.join("services").join(service).join("diesel.toml");
        let out = Command::new(&diesel)
            .args(["print-schema", "--database-url", &db.url_for(role), "--config-file"])
            .arg(&config)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", diesel.display()));
        assert!(
            out.status.success(),
            "diesel print-schema for {service}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let generated = String::from_utf8(out.stdout).unwrap();
        assert!(
            generated.contains("diesel::table!"),
            "{service}: print-schema found no tables:\n{generated}"
        );
        let path = root.join("services").join(service).join("src/schema.rs");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if generated != committed {
            if update {
                std::fs::write(&path, &generated).unwrap();
            } else {
                drifted.push(path.display().to_string());
            }
        }
    }
    db.drop_database().await.unwrap();
    assert!(
        drifted.is_empty(),
        "{drifted:?} differ from `diesel print-schema` of the migrations: \
         run UPDATE_SCHEMA=1 cargo nextest run -p system-tests -E 'test(/schema_rs/)' and commit the result"
    );
}

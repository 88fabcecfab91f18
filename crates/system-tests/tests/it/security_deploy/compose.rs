//! docker-compose: what it publishes, its secrets, its database passwords, Prometheus' APIs.

use crate::deploy::{SERVICES, read, root, str_seq, yaml};
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// `(host address, host port, container port)` of a compose `ports:` entry, short or long
/// syntax. No address means every interface.
fn published(entry: &Value) -> (String, String, String) {
    if let Some(text) = entry.as_str() {
        let text = text.split('/').next().unwrap();
        // `[::1]:8080:8080`, `127.0.0.1:8080:8080`, `8080:8080`, `8080`.
        let (address, rest) = match text.strip_prefix('[') {
            Some(v6) => {
                let (address, rest) = v6.split_once("]:").unwrap();
                (address.to_owned(), rest.to_owned())
            }
            None => {
                let parts: Vec<&str> = text.split(':').collect();
                match parts.len() {
                    3 => (parts[0].to_owned(), format!("{}:{}", parts[1], parts[2])),
                    _ => ("0.0.0.0".to_owned(), text.to_owned()),
                }
            }
        };
        let (host, container) = rest.split_once(':').unwrap_or(("(random)", &rest));
        (address, host.to_owned(), container.to_owned())
    } else {
        let address = entry["host_ip"].as_str().unwrap_or("0.0.0.0").to_owned();
        let value = |v: &Value| v.as_u64().map(|n| n.to_string()).or(v.as_str().map(str::to_owned));
        (address, value(&entry["published"]).unwrap_or("(random)".into()), value(&entry["target"]).unwrap())
    }
}

#[test]
fn security_deploy_compose_publishes_only_the_gateway_beyond_this_machine() {
    // The parser reads what an attacker would get: no address is every interface.
    assert_eq!(published(&Value::from("8081:8081")).0, "0.0.0.0");
    assert_eq!(published(&Value::from("8081")).0, "0.0.0.0");
    assert_eq!(published(&Value::from("127.0.0.1:8081:8081")).0, "127.0.0.1");
    assert_eq!(published(&Value::from("[::1]:8081:8081/tcp")).0, "::1");

    let compose = yaml("docker-compose.yml");
    let mut public = Vec::new();
    for (name, service) in compose["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        for entry in service["ports"].as_sequence().into_iter().flatten() {
            let (address, host, container) = published(entry);
            let loopback = address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                public.push(format!("{name} {address}:{host}->{container}"));
            }
        }
        assert!(service.get("network_mode").is_none_or(|m| m != "host"), "{name} uses the host network");
    }
    assert_eq!(public, ["order-api 0.0.0.0:8080->8080"], "only the gateway is reachable from other machines");
    // The admin UIs and the services are still there for this machine.
    for (name, port) in [
        ("rabbitmq", "15672"),
        ("mailcatcher", "8025"),
        ("jaeger", "16686"),
        ("prometheus", "9090"),
        ("grafana", "3000"),
        ("inventory", "8081"),
        ("payment", "8082"),
        ("notifier", "8083"),
        ("webhook-dispatcher", "8084"),
    ] {
        let ports: Vec<_> =
            compose["services"][name]["ports"].as_sequence().unwrap().iter().map(published).collect();
        assert_eq!(ports, [("127.0.0.1".to_owned(), port.to_owned(), port.to_owned())], "{name}");
    }
}

/// `${NAME...}` interpolations in `text`: (name, the operator and what follows, e.g. `:?msg`).
fn interpolations(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let body = &rest[start + 2..];
        let end = body.find('}').expect("closed interpolation");
        let inner = &body[..end];
        let name_end = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
        found.push((inner[..name_end].to_owned(), inner[name_end..].to_owned()));
        rest = &body[end..];
    }
    found
}

/// A variable that holds a secret by its name (public keys, key files and directories do not).
fn secret_like(name: &str) -> bool {
    let name = name.to_uppercase();
    ["PASSWORD", "_PASS", "SECRET", "TOKEN", "CREDENTIAL", "API_KEY", "SIGNING_KEY", "PRIVATE_KEY"]
        .iter()
        .any(|word| name.contains(word))
}

/// Every string value under `value`, with its path.
fn strings<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map {
                strings(v, format!("{path}.{}", k.as_str().unwrap_or("?")), out);
            }
        }
        _ => {}
    }
}

#[test]
fn security_deploy_compose_requires_every_secret_and_defaults_none() {
    let text = read("docker-compose.yml");
    // Comments may show the syntax; only the configuration counts.
    let config: String =
        text.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    let mut required = BTreeSet::new();
    for (name, operator) in interpolations(&config) {
        if secret_like(&name) {
            assert!(
                operator.starts_with(":?") && operator.len() > 2,
                "${{{name}{operator}}}: a secret is required with a message (`${{{name}:?...}}`), never defaulted"
            );
            required.insert(name);
        }
    }
    assert!(required.len() >= 10, "the secrets are found: {required:?}");

    let compose = yaml("docker-compose.yml");
    let mut values = Vec::new();
    strings(&compose["services"], "services".into(), &mut values);
    for (path, value) in &values {
        let key = path.rsplit('.').next().unwrap();
        // An environment variable that holds a secret takes it from a required variable.
        if path.contains(".environment.") && secret_like(key) && !key.ends_with("_FILE") {
            assert!(
                value.starts_with("${") && interpolations(value).iter().all(|(_, op)| op.starts_with(":?")),
                "{path} = {value}: a secret must come from a required variable"
            );
        }
        // A password inside a URL likewise: `scheme://user:${VAR:?...}@host`.
        if let Some((_, after)) = value.split_once("://")
            && let Some((userinfo, _)) = after.split_once('@')
            && let Some((user, password)) = userinfo.split_once(':')
        {
            assert!(
                password.starts_with("${") && password.contains(":?"),
                "{path}: {user}'s password in the URL is not a required variable: {value}"
            );
        }
        for public in ["change-me", "whsec_simulated_local_only", "guest:guest"] {
            assert!(!value.contains(public), "{path} holds the public value {public}");
        }
    }
    for (name, key) in [
        ("grafana", "GF_SECURITY_ADMIN_PASSWORD"),
        ("rabbitmq", "RABBITMQ_DEFAULT_PASS"),
        ("postgres", "POSTGRES_PASSWORD"),
    ] {
        let value = compose["services"][name]["environment"][key].as_str().unwrap_or_default();
        assert!(value.contains(":?"), "{name} {key} is required: {value}");
    }
    assert_eq!(
        compose["services"]["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"].as_str(),
        Some("false")
    );
}

#[test]
fn security_deploy_compose_env_generates_a_distinct_value_for_every_required_secret() {
    let dir = std::env::temp_dir().join(format!("compose-env-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let env_file = dir.join(".env");
    // A value already there is kept.
    std::fs::write(&env_file, "POSTGRES_PASSWORD=kept-by-the-generator-0123456789\n").unwrap();
    let run = || {
        let output = std::process::Command::new("bash")
            .arg(root().join("deploy/compose-env.sh"))
            .env("ENV_FILE", &env_file)
            .env_clear_secrets()
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        std::fs::read_to_string(&env_file).unwrap()
    };
    let first = run();
    assert_eq!(run(), first, "a second run changes nothing");
    let generated: BTreeMap<&str, &str> = first.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(generated["POSTGRES_PASSWORD"], "kept-by-the-generator-0123456789");

    let text = read("docker-compose.yml");
    let config: String =
        text.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    let required: BTreeSet<String> =
        interpolations(&config).into_iter().filter(|(_, op)| op.starts_with(":?")).map(|(n, _)| n).collect();
    let mut seen = BTreeSet::new();
    for name in &required {
        let value = generated.get(name.as_str()).unwrap_or_else(|| panic!("{name} is not generated"));
        assert!(value.len() >= 32, "{name}: at least 128 bits");
        if config.contains(&format!(":${{{name}:?")) {
            // A password inside a URL (`user:${VAR:?...}@host`) must need no escaping.
            assert!(
                value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{name}: safe inside a URL"
            );
        }
        assert!(seen.insert(*value), "{name} repeats another secret");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs scripts without the caller's secrets in the environment, so the generator's output
/// depends on the file alone.
trait ClearSecrets {
    fn env_clear_secrets(&mut self) -> &mut Self;
}

impl ClearSecrets for std::process::Command {
    fn env_clear_secrets(&mut self) -> &mut Self {
        for (name, _) in std::env::vars() {
            if secret_like(&name) {
                self.env_remove(name);
            }
        }
        self
    }
}

#[test]
fn security_deploy_every_database_role_has_its_own_password() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let postgres = &services["postgres"]["environment"];
    // role -> the variable holding its password, from where each role connects.
    let mut variables: BTreeMap<String, String> = BTreeMap::new();
    let password_variable = |url: &str| -> (String, String) {
        let userinfo = url.strip_prefix("postgres://").unwrap().split_once('@').unwrap().0;
        let (user, password) = userinfo.split_once(':').unwrap();
        let names = interpolations(password);
        assert_eq!(names.len(), 1, "{url}");
        (user.to_owned(), names[0].0.clone())
    };
    for (service, role, _) in SERVICES {
        for (entry, expected_role) in
            [(service.to_owned(), role.to_owned()), (format!("{service}-migrate"), format!("{role}_owner"))]
        {
            let url = services[entry.as_str()]["environment"]["DATABASE_URL"].as_str().unwrap();
            let (user, variable) = password_variable(url);
            assert_eq!(user, expected_role, "{entry} connects as {expected_role}");
            if let Some(previous) = variables.insert(user.clone(), variable.clone()) {
                assert_eq!(previous, variable, "{user} has one password");
            }
            // The postgres container receives it, under the name docker-init.sh reads.
            let init_name = format!("{}_DB_PASSWORD", user.to_uppercase());
            assert_eq!(
                variable, init_name,
                "{entry}: docker-init.sh sets {user}'s password from {init_name}"
            );
            assert!(
                postgres[init_name.as_str()]
                    .as_str()
                    .is_some_and(|v| v.contains(&format!("${{{init_name}:?"))),
                "the postgres container gets {init_name}"
            );
        }
    }
    assert_eq!(variables.len(), 10, "five runtime roles and five owners: {variables:?}");
    let distinct: BTreeSet<&String> = variables.values().collect();
    assert_eq!(distinct.len(), variables.len(), "one password per role: {variables:?}");
    // The superuser's password is the postgres container's alone.
    for (name, service) in services.as_mapping().unwrap() {
        if name.as_str() != Some("postgres") {
            let text = serde_yaml::to_string(service).unwrap();
            assert!(!text.contains("POSTGRES_PASSWORD"), "{name:?} sees the superuser's password");
        }
    }

    // docker-init.sh refuses a shared or missing password before it touches the database.
    let run_init = |env: &[(String, String)]| {
        let mut command = std::process::Command::new("bash");
        command.arg(root().join("deploy/postgres/docker-init.sh")).env_clear_secrets();
        // No PostgreSQL to reach: the script must stop before connecting.
        command.env("POSTGRES_USER", "nobody").env("POSTGRES_DB", "none").env("PGHOST", "/nonexistent");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let mut env: Vec<(String, String)> = variables
        .keys()
        .map(|role| (format!("{}_DB_PASSWORD", role.to_uppercase()), format!("pw-{role}-0123456789")))
        .collect();
    env.iter_mut().find(|(k, _)| k == "PAYMENT_OWNER_DB_PASSWORD").unwrap().1 =
        "pw-payment-0123456789".into();
    let shared = run_init(&env);
    assert!(!shared.status.success());
    let stderr = String::from_utf8_lossy(&shared.stderr);
    assert!(stderr.contains("every role needs its own password"), "{stderr}");
    env.iter_mut().find(|(k, _)| k == "PAYMENT_OWNER_DB_PASSWORD").unwrap().1 =
        "pw-payment-owner-0123456789".into();
    env.retain(|(k, _)| k != "NOTIFIER_DB_PASSWORD");
    let missing = run_init(&env);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NOTIFIER_DB_PASSWORD is missing"));
}

#[test]
fn security_deploy_prometheus_has_no_lifecycle_or_admin_api() {
    let compose = yaml("docker-compose.yml");
    let command = str_seq(&compose["services"]["prometheus"]["command"]);
    assert!(command.iter().any(|a| a.starts_with("--config.file=")), "{command:?}");
    for flag in ["--web.enable-lifecycle", "--web.enable-admin-api", "--web.enable-remote-write-receiver"] {
        assert!(!command.contains(&flag), "prometheus runs with {flag}: anyone reaching :9090 could use it");
    }
}

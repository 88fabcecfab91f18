//! Issue 9, finding 9 and the low items on Kubernetes and database roles: what the deployment
//! files expose, and what a service's own database role may do.
//!
//! - docker-compose publishes only the gateway beyond loopback, has no default or literal
//!   secret, gives every database role its own password, and runs Prometheus without its
//!   lifecycle API (the file is parsed, as in `deploy.rs`: no compose plugin or daemon here);
//! - the Kubernetes manifests, rendered by `kubectl kustomize` (and the test renderer,
//!   `deploy::render`), deny by default and let each pod talk only to what it needs: a small
//!   evaluator of NetworkPolicy semantics answers "may A connect to B on port P" for the
//!   connections an attacker would try; no pod mounts a service-account token;
//! - a service's runtime role, on a database migrated the way the services migrate, reads and
//!   writes its rows but cannot ALTER, DROP, TRUNCATE or CREATE.

use crate::deploy::{KUSTOMIZATIONS, SERVICES, read, render, root, secret_refs, str_seq, yaml};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

// ---------------------------------------------------------------------------------------------
// docker-compose

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

// ---------------------------------------------------------------------------------------------
// Kubernetes: network policies

/// One end of a connection: a pod (namespace, labels, an address in the pod range) or an
/// address outside the cluster.
#[derive(Clone, Debug)]
struct Endpoint {
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    ip: IpAddr,
}

fn pod(namespace: &str, labels: &[(&str, &str)]) -> Endpoint {
    Endpoint {
        namespace: Some(namespace.to_owned()),
        labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        // The pod network is private, as in every cluster.
        ip: "10.244.1.23".parse().unwrap(),
    }
}

fn service_pod(namespace: &str, service: &str) -> Endpoint {
    pod(
        namespace,
        &[
            ("app.kubernetes.io/name", service),
            ("app.kubernetes.io/part-of", "orders"),
            ("app.kubernetes.io/component", "service"),
        ],
    )
}

fn outside(ip: &str) -> Endpoint {
    Endpoint { namespace: None, labels: BTreeMap::new(), ip: ip.parse().unwrap() }
}

fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    assert!(selector.get("matchExpressions").is_none(), "the evaluator knows matchLabels only");
    selector["matchLabels"]
        .as_mapping()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k.as_str().unwrap()).map(String::as_str) == v.as_str())
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (network, bits) = cidr.split_once('/').unwrap();
    let bits: u32 = bits.parse().unwrap();
    match (ip, network.parse::<IpAddr>().unwrap()) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Whether `peer` (a `from`/`to` item of a policy in `namespace`) covers `endpoint`.
fn peer_matches(peer: &Value, namespace: &str, endpoint: &Endpoint) -> bool {
    if let Some(block) = peer.get("ipBlock") {
        let cidr = block["cidr"].as_str().unwrap();
        return in_cidr(endpoint.ip, cidr)
            && !str_seq(&block["except"]).iter().any(|except| {
                assert!(
                    in_cidr(except.split('/').next().unwrap().parse().unwrap(), cidr),
                    "{except} within {cidr}"
                );
                in_cidr(endpoint.ip, except)
            });
    }
    let Some(endpoint_namespace) = &endpoint.namespace else { return false };
    let namespace_ok = match peer.get("namespaceSelector") {
        Some(selector) => {
            let labels =
                BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), endpoint_namespace.clone())]);
            selects(selector, &labels)
        }
        None => endpoint_namespace == namespace,
    };
    namespace_ok && peer.get("podSelector").is_none_or(|selector| selects(selector, &endpoint.labels))
}

fn port_matches(rule: &Value, port: u16) -> bool {
    let ports = rule["ports"].as_sequence();
    ports.is_none_or(|ports| ports.is_empty())
        || ports.into_iter().flatten().any(|p| {
            assert!(p["protocol"].as_str().is_none_or(|proto| ["TCP", "UDP"].contains(&proto)));
            p["protocol"].as_str().unwrap_or("TCP") == "TCP" && p["port"].as_u64() == Some(u64::from(port))
        })
}

/// Kubernetes' rule: a connection needs the source's egress and the destination's ingress
/// allowed; a direction is allowed when no policy of the pod's namespace selects the pod for
/// it, or when a rule of one of those that do allows it (rules add up).
fn allowed(policies: &[&Value], from: &Endpoint, to: &Endpoint, port: u16) -> bool {
    let direction_allows = |pod: &Endpoint, other: &Endpoint, direction: &str, peers: &str| {
        let Some(namespace) = &pod.namespace else { return true };
        let selecting: Vec<&&Value> = policies
            .iter()
            .filter(|p| p["metadata"]["namespace"].as_str().unwrap_or("orders") == namespace)
            .filter(|p| selects(&p["spec"]["podSelector"], &pod.labels))
            .filter(|p| str_seq(&p["spec"]["policyTypes"]).contains(&direction))
            .collect();
        selecting.is_empty()
            || selecting.iter().any(|policy| {
                policy["spec"][direction.to_lowercase().as_str()].as_sequence().into_iter().flatten().any(
                    |rule| {
                        let peers = rule[peers].as_sequence();
                        port_matches(rule, port)
                            && (peers.is_none_or(|p| p.is_empty())
                                || peers
                                    .into_iter()
                                    .flatten()
                                    .any(|peer| peer_matches(peer, namespace, other)))
                    },
                )
            })
    };
    direction_allows(from, to, "Egress", "to") && direction_allows(to, from, "Ingress", "from")
}

#[test]
fn security_deploy_the_network_policy_evaluator_follows_kubernetes_rules() {
    let policy: Value = serde_yaml::from_str(
        r#"
metadata: { name: p, namespace: orders }
spec:
  podSelector: { matchLabels: { app: db } }
  policyTypes: [Ingress]
  ingress:
    - from: [{ podSelector: { matchLabels: { app: api } } }]
      ports: [{ port: 5432 }]
    - from: [{ ipBlock: { cidr: 0.0.0.0/0, except: [10.0.0.0/8] } }]
"#,
    )
    .unwrap();
    let db = pod("orders", &[("app", "db")]);
    let api = pod("orders", &[("app", "api")]);
    let policies = [&policy];
    assert!(allowed(&policies, &api, &db, 5432));
    assert!(!allowed(&policies, &api, &db, 22), "other ports are not");
    assert!(
        !allowed(&policies, &pod("other", &[("app", "api")]), &db, 5432),
        "a bare podSelector is same-namespace"
    );
    assert!(allowed(&policies, &outside("8.8.8.8"), &db, 22), "the ipBlock rule has no port list");
    assert!(!allowed(&policies, &outside("10.1.1.1"), &db, 22), "except");
    assert!(allowed(&policies, &db, &api, 80), "unselected pods are unrestricted");
    assert!(
        in_cidr("fd00::1".parse().unwrap(), "fc00::/7")
            && !in_cidr("2001:db8::1".parse().unwrap(), "fc00::/7")
    );
}

#[test]
fn security_deploy_network_policies_let_each_service_be_reached_only_by_what_needs_it() {
    for kustomization in KUSTOMIZATIONS {
        let objects = render(kustomization);
        let namespace = if kustomization.contains("staging") { "orders-staging" } else { "orders" };
        let policies: Vec<&Value> =
            objects.iter().filter(|((kind, _), _)| kind == "NetworkPolicy").map(|(_, v)| v).collect();
        let at = |what: &str| format!("{kustomization}: {what}");

        // Deny by default, for every pod of the namespace, both ways.
        let deny = objects
            .get(&("NetworkPolicy".to_owned(), "default-deny".to_owned()))
            .unwrap_or_else(|| panic!("{kustomization}: no default-deny policy"));
        assert_eq!(
            deny["spec"]["podSelector"],
            serde_yaml::from_str::<Value>("{}").unwrap(),
            "{kustomization}"
        );
        assert_eq!(str_seq(&deny["spec"]["policyTypes"]), ["Ingress", "Egress"]);
        assert!(deny["spec"]["ingress"].is_null() && deny["spec"]["egress"].is_null());

        let ports: BTreeMap<&str, u16> = SERVICES.iter().map(|(s, _, p)| (*s, *p)).collect();
        let gateway = service_pod(namespace, "order-api");
        let ingress_controller = pod("ingress-nginx", &[("app.kubernetes.io/name", "ingress-nginx")]);
        let prometheus = pod("observability", &[("app.kubernetes.io/name", "prometheus")]);
        let stranger = pod("default", &[("app", "anything")]);
        let unlabelled_neighbour = pod(namespace, &[]);
        let internet = outside("203.0.113.7");

        for (service, port) in &ports {
            let target = service_pod(namespace, service);
            let may = |from: &Endpoint| allowed(&policies, from, &target, *port);
            let public = *service == "order-api";
            assert_eq!(
                may(&ingress_controller),
                public,
                "{}",
                at(&format!("ingress controller -> {service}"))
            );
            assert!(!may(&internet), "{}", at(&format!("the internet straight to {service}'s pods")));
            assert!(!may(&stranger), "{}", at(&format!("a pod of another namespace -> {service}")));
            assert!(
                !may(&unlabelled_neighbour),
                "{}",
                at(&format!("a foreign pod in the namespace -> {service}"))
            );
            // Where Prometheus scrapes: the pod's annotation (the gateway has a metrics port).
            let deployment = &objects[&("Deployment".to_owned(), (*service).to_owned())];
            let scrape: u16 = deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                allowed(&policies, &prometheus, &target, scrape),
                "{}",
                at(&format!("prometheus scrapes {service}"))
            );
            if scrape != *port {
                assert!(
                    !allowed(&policies, &ingress_controller, &target, scrape),
                    "{}",
                    at(&format!("{service}'s metrics are not public"))
                );
                // The gateway's API port has no /metrics: Prometheus gets the metrics port only.
                assert_eq!((public, scrape), (true, 9464), "{}", at(&format!("{service}'s metrics port")));
                assert!(
                    !allowed(&policies, &prometheus, &target, *port),
                    "{}",
                    at(&format!("prometheus -> {service}'s API port"))
                );
            }
            assert!(!allowed(&policies, &prometheus, &target, 22), "{}", at("only the service port"));
            if !public {
                assert!(may(&gateway), "{}", at(&format!("the gateway forwards to {service}")));
            }
            // No service but the gateway reaches another service: a taken dispatcher (the one
            // that talks to the internet) gains no path to payment or the gateway.
            for other in ports.keys() {
                if other != service && *other != "order-api" {
                    assert!(!may(&service_pod(namespace, other)), "{}", at(&format!("{other} -> {service}")));
                }
            }
        }

        // Egress.
        let dispatcher = service_pod(namespace, "webhook-dispatcher");
        let payment = service_pod(namespace, "payment");
        let inventory = service_pod(namespace, "inventory");
        let notifier = service_pod(namespace, "notifier");
        let to = |from: &Endpoint, to: &Endpoint, port: u16| allowed(&policies, from, to, port);
        for public_address in ["203.0.113.7", "2001:db8::7"] {
            assert!(to(&dispatcher, &outside(public_address), 443), "{}", at("webhooks reach the internet"));
            assert!(to(&dispatcher, &outside(public_address), 8443), "{}", at("on any port"));
        }
        for internal in ["10.0.0.5", "172.20.1.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "fd00::5"]
        {
            assert!(
                !to(&dispatcher, &outside(internal), 443),
                "{}",
                at(&format!("dispatcher -> {internal}"))
            );
            assert!(!to(&dispatcher, &outside(internal), 80), "{}", at(&format!("dispatcher -> {internal}")));
        }
        assert!(!to(&dispatcher, &payment, 8082), "{}", at("dispatcher -> payment"));
        assert!(!to(&dispatcher, &gateway, 8080), "{}", at("dispatcher -> gateway"));
        assert!(to(&payment, &outside("203.0.113.9"), 443), "{}", at("payment -> the provider's API"));
        assert!(!to(&payment, &outside("203.0.113.9"), 80), "{}", at("payment: HTTPS only"));
        assert!(!to(&payment, &outside("10.0.0.9"), 443), "{}", at("payment -> a private address"));
        assert!(to(&notifier, &outside("203.0.113.9"), 587), "{}", at("notifier -> SMTP submission"));
        assert!(!to(&inventory, &outside("203.0.113.9"), 443), "{}", at("inventory has no business outside"));
        assert!(!to(&gateway, &outside("203.0.113.9"), 443), "{}", at("the gateway calls nothing outside"));
        for (service, port) in &ports {
            if *service != "order-api" {
                assert!(
                    to(&gateway, &service_pod(namespace, service), *port),
                    "{}",
                    at(&format!("gateway -> {service}"))
                );
            }
        }
        // What every service needs: DNS, PostgreSQL, RabbitMQ, the collector.
        let dns = pod("kube-system", &[("k8s-app", "kube-dns")]);
        let collector = pod("observability", &[("app.kubernetes.io/name", "otel-collector")]);
        for service in ports.keys() {
            let from = service_pod(namespace, service);
            assert!(allowed(&policies, &from, &dns, 53), "{}", at(&format!("{service} resolves names")));
            assert!(to(&from, &outside("10.10.0.5"), 5432), "{}", at(&format!("{service} -> PostgreSQL")));
            assert!(to(&from, &outside("10.10.0.6"), 5672), "{}", at(&format!("{service} -> RabbitMQ")));
            assert!(to(&from, &collector, 4318), "{}", at(&format!("{service} -> the collector")));
        }
        let job = pod(
            namespace,
            &[
                ("app.kubernetes.io/name", "payment"),
                ("app.kubernetes.io/part-of", "orders"),
                ("app.kubernetes.io/component", "migrate"),
            ],
        );
        assert!(to(&job, &outside("10.10.0.5"), 5432), "{}", at("the migration Job reaches PostgreSQL"));
        assert!(!to(&job, &outside("10.10.0.6"), 5672), "{}", at("and nothing else"));
        assert!(!to(&job, &outside("203.0.113.9"), 443), "{}", at("and nothing else"));
    }
}

#[test]
fn security_deploy_no_pod_mounts_a_service_account_token_and_migrations_run_as_owners() {
    for kustomization in KUSTOMIZATIONS {
        let objects = render(kustomization);
        let mut pods = 0;
        for ((kind, name), object) in &objects {
            let Some(spec) = object.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("spec"))
            else {
                continue;
            };
            pods += 1;
            assert_eq!(
                spec["automountServiceAccountToken"].as_bool(),
                Some(false),
                "{kustomization}: {kind} {name} mounts a service-account token"
            );
            let container = &spec["containers"][0];
            let database = secret_refs(container).get("DATABASE_URL").cloned().unwrap_or_default();
            let service = object["metadata"]["labels"]["app.kubernetes.io/name"].as_str().unwrap();
            let expected = if kind == "Job" {
                format!("{service}-owner-database-url")
            } else {
                format!("{service}-database-url")
            };
            assert_eq!(database, expected, "{kustomization}: {kind} {name}'s database role");
        }
        assert_eq!(pods, 10, "{kustomization}: five Deployments and five Jobs");
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL roles

/// Runs `sql` as `url`'s role; the error text when PostgreSQL refuses it.
async fn try_sql(url: &str, sql: &str) -> Result<(), String> {
    let mut conn = AsyncPgConnection::establish(url).await.map_err(|e| e.to_string())?;
    conn.batch_execute(sql).await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn security_deploy_runtime_roles_read_and_write_rows_but_cannot_alter_or_drop_tables() {
    let db = testkit::TestDatabase::create().await.unwrap();
    // Migrated the way every service migrates at start: through its runtime role's pool
    // (platform::db::migrate applies them as `<role>_owner`).
    let roles = ["order_api", "inventory", "payment", "notifier", "webhooks"];
    let sources = |role: &str| {
        let own = match role {
            "order_api" => order_api::startup::MIGRATIONS,
            "inventory" => inventory::startup::MIGRATIONS,
            "payment" => payment::startup::MIGRATIONS,
            "notifier" => notifier::startup::MIGRATIONS,
            _ => webhook_dispatcher::startup::MIGRATIONS,
        };
        vec![messaging::MIGRATIONS, own]
    };
    for role in roles {
        let pool = platform::db::pool(&db.url_for(role), 2).unwrap();
        platform::db::migrate(&pool, platform::db::lock_key(role), sources(role))
            .await
            .unwrap_or_else(|e| panic!("{role} migrates: {e}"));
        // Again: nothing pending, so no DDL, which the runtime role could not do.
        platform::db::migrate(&pool, platform::db::lock_key(role), sources(role)).await.unwrap();
    }

    // The attack: a runtime role (an SQL injection, a stolen DATABASE_URL) changing the schema.
    let runtime = db.url_for("inventory");
    try_sql(
        &runtime,
        "INSERT INTO products (id, sku, name, price, currency, on_hand) \
         VALUES (gen_random_uuid(), 'sec-1', 'Widget', 1.00, 'EUR', 5); \
         UPDATE products SET on_hand = 6 WHERE sku = 'sec-1'; \
         INSERT INTO outbox (event_id, routing_key, payload) VALUES (gen_random_uuid(), 'k', '\\x00'); \
         SELECT count(*) FROM products; DELETE FROM outbox;",
    )
    .await
    .expect("the runtime role reads and writes rows, sequences included");
    for (attack, refusal) in [
        ("DROP TABLE products CASCADE", "must be owner"),
        ("ALTER TABLE products ADD COLUMN backdoor TEXT", "must be owner"),
        ("ALTER TABLE products DROP CONSTRAINT products_on_hand_check", "must be owner"),
        ("TRUNCATE products CASCADE", "permission denied"),
        ("CREATE TABLE loot (data TEXT)", "permission denied for schema"),
        ("CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'", "permission denied for schema"),
        ("DROP TABLE __diesel_schema_migrations", "must be owner"),
        ("INSERT INTO __diesel_schema_migrations (version) VALUES ('99999999999999')", "permission denied"),
        ("CREATE TABLE public.loot (data TEXT)", "permission denied for schema public"),
        ("CREATE SCHEMA loot", "permission denied for database"),
        ("SET ROLE inventory_owner", "permission denied"),
        ("SELECT * FROM payment.payments", "permission denied for schema payment"),
    ] {
        let outcome = try_sql(&runtime, attack).await;
        let error = outcome.expect_err(&format!("inventory may not: {attack}"));
        assert!(error.contains(refusal), "{attack}: {error}");
    }
    // The schema is intact: the owner (the migration role) still may, so the refusals above are
    // about the role, not a broken table.
    try_sql(
        &db.url_for("inventory_owner"),
        "ALTER TABLE products ADD COLUMN probe TEXT; ALTER TABLE products DROP COLUMN probe",
    )
    .await
    .unwrap();

    // Every service alike: the runtime role owns nothing, may create nothing, and has DML only.
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut admin = AsyncPgConnection::establish(&db.admin_url()).await.unwrap();
    for role in roles {
        let count = |sql: String| diesel::sql_query(sql);
        let owned: Count = count(format!(
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
             WHERE s.nspname = '{role}' AND pg_get_userbyid(c.relowner) = '{role}'"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(owned.n, 0, "{role} owns nothing in its schema");
        let tables: Count = count(format!(
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = '{role}' AND tableowner = '{role}_owner'"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert!(tables.n >= 3, "{role}_owner owns the tables ({})", tables.n);
        let beyond_dml: Count = count(format!(
            "SELECT count(*) AS n FROM pg_tables t, unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) p \
             WHERE t.schemaname = '{role}' AND has_table_privilege('{role}', format('%I.%I', t.schemaname, t.tablename), p)"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(beyond_dml.n, 0, "{role} has only SELECT, INSERT, UPDATE, DELETE");
        let dml: Count = count(format!(
            "SELECT count(*) AS n FROM pg_tables t, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p \
             WHERE t.schemaname = '{role}' AND t.tablename <> '__diesel_schema_migrations' \
               AND NOT has_table_privilege('{role}', format('%I.%I', t.schemaname, t.tablename), p)"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(dml.n, 0, "{role} reads and writes every table of its schema");
        let history: Count = count(format!(
            "SELECT count(*) AS n FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p \
             WHERE has_table_privilege('{role}', '{role}.__diesel_schema_migrations', p)"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(history.n, 1, "{role} reads its migration history, and may not forge it");
        let create: Count = count(format!(
            "SELECT count(*) AS n FROM pg_namespace WHERE nspname = '{role}' AND has_schema_privilege('{role}', oid, 'CREATE')"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(create.n, 0, "{role} cannot create in its schema");
    }
    drop(admin);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn security_deploy_a_database_from_before_the_split_is_handed_to_the_owners() {
    // An existing installation: schemas and tables owned by the runtime roles, as the old
    // schemas.sql made them. Re-running today's set-up takes the schema away from them.
    let db = testkit::TestDatabase::create().await.unwrap();
    let admin = db.admin_url();
    try_sql(&admin, "ALTER SCHEMA notifier OWNER TO notifier").await.unwrap();
    let runtime = db.url_for("notifier");
    try_sql(&runtime, "CREATE TABLE legacy (id BIGSERIAL PRIMARY KEY, note TEXT)").await.unwrap();
    try_sql(&admin, &read("deploy/postgres/schemas.sql")).await.unwrap();
    try_sql(&runtime, "INSERT INTO legacy (note) VALUES ('still writable'); SELECT * FROM legacy")
        .await
        .unwrap();
    let error = try_sql(&runtime, "DROP TABLE legacy").await.expect_err("no longer the owner");
    assert!(error.contains("must be owner"), "{error}");
    let error = try_sql(&runtime, "CREATE TABLE more (id INT)").await.expect_err("no CREATE on the schema");
    assert!(error.contains("permission denied for schema"), "{error}");
    db.drop_database().await.unwrap();
}

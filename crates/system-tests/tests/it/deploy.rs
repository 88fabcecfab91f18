//! The deployment files agree with the code: docker-compose, the Kubernetes manifests
//! (`deploy/k8s`), Prometheus, its alert rules and the Grafana dashboard run every service with
//! the port, probes, database role, settings and metric names the code has.
//!
//! How "the code's settings" are known: a service reads exactly the fields of its `Settings`
//! struct (`services/<svc>/src/settings.rs`) plus the flattened `CommonSettings`
//! (`crates/messaging/src/runtime.rs`), each from the environment variable of the same name
//! upper-cased (`platform::settings::load`). The structs are deserialized with serde, so their
//! field names cannot be listed at run time; [`setting_names`] reads the two struct bodies and
//! takes every `pub <field>:` line instead (the flattened `common` field excepted), and checks
//! itself against `CommonSettings::defaults`. A few variables are read by the process rather
//! than by `Settings` ([`PROCESS_VARIABLES`]).
//!
//! How the Kubernetes manifests are rendered: with `kubectl kustomize` when kubectl is on the
//! PATH; and always with [`kustomize`], a small renderer of the only features the
//! kustomizations use (`resources`, `namespace`, `images`, `replicas`, and `patches` whose file
//! is a strategic-merge patch applied to every object of a `target` kind, lists of named items
//! merged by `name`). It refuses any other feature, and when kubectl is present both renderings
//! must be equal, so the fallback stays honest. `KUBECTL=/path/to/kubectl` picks another binary
//! (a missing one: the fallback alone).

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// (service, database role, port) as the code's defaults give them.
pub(crate) const SERVICES: [(&str, &str, u16); 5] = [
    ("order-api", "order_api", 8080),
    ("inventory", "inventory", 8081),
    ("payment", "payment", 8082),
    ("notifier", "notifier", 8083),
    ("webhook-dispatcher", "webhooks", 8084),
];

/// Read by the process, not by `Settings`: the log filter (`tracing_subscriber::EnvFilter`), the
/// optional settings file (`platform::settings::load`) and the OpenTelemetry exporter's
/// standard variables.
const PROCESS_VARIABLES: [&str; 4] =
    ["RUST_LOG", "CONFIG_FILE", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"];

/// Metric names the services export (`/metrics`), RabbitMQ's plugin exports, and Prometheus'
/// own `up`. Histograms also have `_bucket`, `_sum` and `_count` series.
const METRICS: [&str; 16] = [
    "http_requests_total",
    "http_request_duration_seconds",
    "messages_consumed_total",
    "message_batch_duration_seconds",
    "outbox_events_published_total",
    "outbox_backlog_events",
    "outbox_oldest_event_age_seconds",
    "orders_placed_total",
    "orders_cancelled_total",
    "order_transitions_total",
    "orders_stuck",
    "payments_total",
    "amqp_connected",
    "broker_connected",
    "rabbitmq_queue_messages_ready",
    "up",
];
const HISTOGRAMS: [&str; 2] = ["http_request_duration_seconds", "message_batch_duration_seconds"];

pub(crate) fn root() -> PathBuf {
    testkit::repo_root()
}

pub(crate) fn read(path: impl AsRef<Path>) -> String {
    let path = root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub(crate) fn yaml(path: impl AsRef<Path>) -> Value {
    let path = path.as_ref();
    let mut value: Value =
        serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{} parses: {e}", path.display()));
    value.apply_merge().unwrap_or_else(|e| panic!("{}: merge keys: {e}", path.display()));
    value
}

/// The port the code listens on by default, from `CommonSettings::defaults`.
/// Where Prometheus scrapes `service`: its HTTP port, but the gateway's metrics listener
/// (`METRICS_ADDR`; the public port has no /metrics).
fn scrape_port(service: &str, port: u16) -> u16 {
    if service == "order-api" { 9464 } else { port }
}

fn code_port(role: &'static str, port: u16) -> u16 {
    let defaults = messaging::CommonSettings::defaults(role, port);
    let addr = defaults.iter().find(|(k, _)| *k == "http_addr").map(|(_, v)| v.clone()).unwrap();
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// `pub <field>:` lines of `pub struct <name> { ... }` in `source`.
fn struct_fields(source: &str, name: &str) -> Vec<String> {
    let start = source.find(&format!("pub struct {name} {{")).unwrap_or_else(|| panic!("no struct {name}"));
    let body = &source[start..];
    let body = &body[..body.find("\n}").unwrap()];
    body.lines()
        .filter_map(|line| line.trim().strip_prefix("pub "))
        .filter_map(|rest| rest.split_once(':').map(|(field, _)| field.trim().to_owned()))
        .filter(|field| field.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .collect()
}

/// Every environment variable `service` reads (see the module documentation).
fn setting_names(service: &str, role: &'static str, port: u16) -> BTreeSet<String> {
    let common = struct_fields(&read("crates/messaging/src/runtime.rs"), "CommonSettings");
    for (key, _) in messaging::CommonSettings::defaults(role, port) {
        assert!(common.iter().any(|f| f == key), "the settings parser missed CommonSettings::{key}");
    }
    let own = struct_fields(&read(format!("services/{service}/src/settings.rs")), "Settings");
    assert!(own.iter().any(|f| f == "common"), "{service}: Settings flattens CommonSettings");
    common
        .iter()
        .chain(own.iter().filter(|f| *f != "common"))
        .map(|f| f.to_uppercase())
        .chain(PROCESS_VARIABLES.iter().map(|v| (*v).to_owned()))
        .collect()
}

fn assert_settings(service: &str, role: &'static str, port: u16, names: &[String], origin: &str) {
    let allowed = setting_names(service, role, port);
    for name in names {
        assert!(
            allowed.contains(name),
            "{origin}: {name} is not a setting of {service} (settings: {allowed:?})"
        );
    }
}

pub(crate) fn str_seq(value: &Value) -> Vec<&str> {
    value.as_sequence().map(|s| s.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// docker-compose

#[test]
fn docker_compose_parses_and_wires_every_service_as_the_code_expects() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    for dependency in
        ["postgres", "rabbitmq", "mailcatcher", "otel-collector", "jaeger", "prometheus", "grafana"]
    {
        assert!(services.get(dependency).is_some(), "{dependency} missing");
    }
    for (service, role, port) in SERVICES {
        let defaults = messaging::CommonSettings::defaults(role, port);
        let default_of =
            |key: &str| defaults.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(default_of("http_addr"), format!("127.0.0.1:{port}"), "{service}: code default port");
        assert!(
            default_of("database_url").starts_with(&format!("postgres://{role}@")),
            "{service}: code default role"
        );

        let entry = &services[service];
        let env = &entry["environment"];
        let database_url =
            env["DATABASE_URL"].as_str().unwrap_or_else(|| panic!("{service} has no DATABASE_URL"));
        assert!(
            database_url.starts_with(&format!("postgres://{role}:")),
            "{service} connects as {role}: {database_url}"
        );
        assert!(env["AMQP_URL"].as_str().is_some_and(|u| u.starts_with("amqp://")), "{service} AMQP_URL");
        assert_eq!(
            env["HTTP_ADDR"].as_str(),
            Some(format!("0.0.0.0:{port}").as_str()),
            "{service} HTTP_ADDR"
        );
        assert_eq!(
            entry["build"]["args"]["SERVICE"].as_str(),
            Some(service),
            "{service} image builds its own binary"
        );
        // Only the gateway is published on every interface (security_deploy.rs checks all).
        let published = if service == "order-api" {
            format!("{port}:{port}")
        } else {
            format!("127.0.0.1:{port}:{port}")
        };
        assert_eq!(str_seq(&entry["ports"]), [published], "{service} ports");
    }
    let gateway = &services["order-api"]["environment"];
    assert_eq!(gateway["INVENTORY_URL"].as_str(), Some("http://inventory:8081"));
    assert_eq!(gateway["WEBHOOKS_URL"].as_str(), Some("http://webhook-dispatcher:8084"));
    assert!(
        services["notifier"]["environment"]["SMTP_URL"].as_str().is_some_and(|u| u.starts_with("smtp://"))
    );
}

#[test]
fn compose_services_have_health_checks_telemetry_start_order_and_only_real_settings() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    for (service, role, port) in SERVICES {
        let port = code_port(role, port);
        let entry = &services[service];
        let health = str_seq(&entry["healthcheck"]["test"]).join(" ");
        assert!(
            health.contains(&format!("http://127.0.0.1:{port}/health/ready")),
            "{service}: health check asks /health/ready on its port: {health}"
        );
        assert!(health.starts_with("CMD wget"), "{service}: the check uses the image's busybox wget");
        let env = entry["environment"].as_mapping().unwrap_or_else(|| panic!("{service} environment"));
        assert_eq!(
            entry["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str(),
            Some("http://otel-collector:4318"),
            "{service} exports traces to the collector"
        );
        // Only the gateway holds the token signing key; every service has the public keys and
        // logs in to RabbitMQ as its own user.
        assert!(
            entry["environment"]["JWT_PUBLIC_KEYS"]
                .as_str()
                .is_some_and(|v| v.starts_with("${JWT_PUBLIC_KEYS:?")),
            "{service}: JWT_PUBLIC_KEYS comes from the environment"
        );
        assert_eq!(
            entry["environment"]["JWT_SIGNING_KEY"].as_str().is_some(),
            service == "order-api",
            "{service}: JWT_SIGNING_KEY is the gateway's only"
        );
        assert!(
            entry["environment"]["AMQP_URL"].as_str().is_some_and(|v| v.starts_with(&format!(
                "amqp://{service}:${{RABBITMQ_{}_PASSWORD:?",
                service.to_uppercase().replace('-', "_")
            ))),
            "{service}: its own broker user, password required"
        );
        assert!(entry["depends_on"].get("rabbitmq-setup").is_some(), "{service}: waits for its broker user");
        let names: Vec<String> = env.keys().filter_map(Value::as_str).map(str::to_owned).collect();
        assert_settings(service, role, port, &names, &format!("docker-compose {service}"));

        let depends = &entry["depends_on"];
        for (dependency, condition) in [
            ("postgres", "service_healthy"),
            ("rabbitmq", "service_healthy"),
            (&format!("{service}-migrate") as &str, "service_completed_successfully"),
        ] {
            assert_eq!(
                depends[dependency]["condition"].as_str(),
                Some(condition),
                "{service} waits for {dependency}: {condition}"
            );
        }

        let migrate = &services[format!("{service}-migrate").as_str()];
        assert_eq!(str_seq(&migrate["command"]), ["migrate"], "{service}-migrate runs `{service} migrate`");
        assert_eq!(migrate["image"], entry["image"], "{service}-migrate uses the service's image");
        assert_eq!(migrate["build"]["args"]["SERVICE"].as_str(), Some(service));
        // The migration connects as the schema owner, the service as its runtime role.
        let migrate_url = migrate["environment"]["DATABASE_URL"].as_str().unwrap_or_default();
        assert!(
            migrate_url.starts_with(&format!("postgres://{role}_owner:")),
            "{service}-migrate connects as {role}_owner: {migrate_url}"
        );
        assert_eq!(migrate["depends_on"]["postgres"]["condition"].as_str(), Some("service_healthy"));
        let names: Vec<String> = migrate["environment"]
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        assert_settings(service, role, port, &names, &format!("docker-compose {service}-migrate"));
    }
    for key in ["BOOTSTRAP_ADMIN_EMAIL", "BOOTSTRAP_ADMIN_PASSWORD"] {
        let value = services["order-api"]["environment"][key].as_str().unwrap_or_default();
        assert!(value.starts_with(&format!("${{{key}")), "order-api {key} comes from the environment");
    }

    // Every file mounted from the repository exists.
    for (name, entry) in services.as_mapping().unwrap() {
        for volume in str_seq(&entry["volumes"]) {
            if let Some(source) = volume.split(':').next().and_then(|s| s.strip_prefix("./")) {
                assert!(root().join(source).exists(), "{name:?} mounts missing {source}");
            }
        }
    }
    let plugins = read("deploy/rabbitmq/enabled_plugins");
    assert!(plugins.contains("rabbitmq_prometheus") && plugins.contains("rabbitmq_management"));

    let collector = yaml("deploy/otel/collector.yaml");
    assert_eq!(
        collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].as_str(),
        Some("0.0.0.0:4318")
    );
    let traces = &collector["service"]["pipelines"]["traces"];
    for exporter in str_seq(&traces["exporters"]) {
        assert!(collector["exporters"].get(exporter).is_some(), "collector exporter {exporter} is defined");
    }
    assert_eq!(collector["exporters"]["otlp/jaeger"]["endpoint"].as_str(), Some("jaeger:4317"));
    assert_eq!(services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"].as_str(), Some("true"));
}

#[test]
fn the_dockerfile_builds_one_non_root_image_per_service_with_what_the_health_checks_need() {
    let dockerfile = read("Dockerfile");
    let final_stage = &dockerfile[dockerfile.rfind("\nFROM ").unwrap()..];
    assert!(dockerfile.contains("ARG SERVICE"), "the service is a build argument");
    assert!(dockerfile.contains(r#"--bin "${SERVICE}""#), "only that service's binary is built");
    assert!(final_stage.contains("USER 10001"), "the final image runs as a non-root user");
    assert!(final_stage.contains("ca-certificates"), "TLS roots for SMTP, Stripe and webhooks");
    assert!(
        final_stage.contains("busybox") && final_stage.contains("/usr/local/bin/wget"),
        "wget for compose"
    );
    // The dependency layer sees manifests only, so it survives code edits.
    let deps_stage = &dockerfile[dockerfile.find("AS deps").unwrap()..dockerfile.find("AS build").unwrap()];
    assert!(!deps_stage.contains("COPY . ."), "the dependency stage copies manifests only");
    for ignored in ["target/", ".git/", ".env"] {
        assert!(read(".dockerignore").lines().any(|l| l.trim() == ignored), ".dockerignore has {ignored}");
    }
    // The Kubernetes pods run as the image's user and its preStop uses the image's busybox.
    for (service, ..) in SERVICES {
        let deployment = read(format!("deploy/k8s/base/{service}/deployment.yaml"));
        assert!(deployment.contains("runAsUser: 10001") && deployment.contains("/bin/busybox"), "{service}");
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

/// Splits a multi-document YAML stream.
fn documents(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if !current.trim().is_empty() {
                let doc: Value = serde_yaml::from_str(&current).unwrap_or_else(|e| panic!("{e}:\n{current}"));
                if !doc.is_null() {
                    docs.push(doc);
                }
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

/// Strategic merge as far as these manifests need it: maps merge, lists of maps with a `name`
/// merge item by item, other values are replaced, `null` deletes.
fn strategic_merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Mapping(base), Value::Mapping(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    base.remove(key);
                } else if let Some(existing) = base.get_mut(key) {
                    strategic_merge(existing, value);
                } else {
                    base.insert(key.clone(), value.clone());
                }
            }
        }
        (Value::Sequence(base), Value::Sequence(patch))
            if patch.iter().all(|item| item.get("name").is_some()) =>
        {
            for item in patch {
                match base.iter_mut().find(|b| b.get("name") == item.get("name")) {
                    Some(existing) => strategic_merge(existing, item),
                    None => base.push(item.clone()),
                }
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

/// The documented subset of `kustomize build` (module documentation).
fn kustomize(dir: &Path) -> Vec<Value> {
    let file = dir.join("kustomization.yaml");
    let kustomization: Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    for key in kustomization.as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        assert!(
            ["apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"].contains(&key),
            "{}: `{key}` is not rendered by the test's kustomize subset; use kubectl or extend it",
            file.display()
        );
    }
    let mut docs = Vec::new();
    for resource in str_seq(&kustomization["resources"]) {
        let path = dir.join(resource);
        if path.is_dir() {
            docs.extend(kustomize(&path));
        } else {
            docs.extend(documents(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    for patch in kustomization["patches"].as_sequence().into_iter().flatten() {
        let kind = patch["target"]["kind"].as_str().expect("patches name a target kind");
        let name = patch["target"]["name"].as_str();
        let mut body: Value = serde_yaml::from_str(
            &std::fs::read_to_string(dir.join(patch["path"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        body["metadata"].as_mapping_mut().unwrap().remove("name");
        for doc in docs.iter_mut().filter(|d| d["kind"].as_str() == Some(kind)) {
            if name.is_none_or(|n| doc["metadata"]["name"].as_str() == Some(n)) {
                strategic_merge(doc, &body);
            }
        }
    }
    for image in kustomization["images"].as_sequence().into_iter().flatten() {
        let wanted = image["name"].as_str().unwrap();
        for doc in &mut docs {
            // `get_mut`, not indexing: indexing a mapping inserts the missing keys.
            let pod = doc.get_mut("spec").and_then(|s| s.get_mut("template")).and_then(|t| t.get_mut("spec"));
            let Some(spec) = pod else { continue };
            for list in ["containers", "initContainers"] {
                for container in spec.get_mut(list).and_then(Value::as_sequence_mut).into_iter().flatten() {
                    let current = container["image"].as_str().unwrap().to_owned();
                    let (name, tag) = current.rsplit_once(':').unwrap_or((&current, "latest"));
                    if name == wanted {
                        let name = image["newName"].as_str().unwrap_or(name);
                        let tag = image["newTag"].as_str().unwrap_or(tag);
                        container["image"] = Value::from(format!("{name}:{tag}"));
                    }
                }
            }
        }
    }
    for replicas in kustomization["replicas"].as_sequence().into_iter().flatten() {
        for doc in docs.iter_mut().filter(|d| d["metadata"]["name"] == replicas["name"]) {
            if ["Deployment", "StatefulSet", "ReplicaSet"].contains(&doc["kind"].as_str().unwrap()) {
                doc["spec"]["replicas"] = replicas["count"].clone();
            }
        }
    }
    if let Some(namespace) = kustomization["namespace"].as_str() {
        for doc in &mut docs {
            doc["metadata"]["namespace"] = Value::from(namespace);
        }
    }
    docs
}

fn kubectl_kustomize(dir: &Path) -> Option<Vec<Value>> {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
    let output = std::process::Command::new(kubectl).arg("kustomize").arg(dir).output().ok()?;
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(documents(&String::from_utf8(output.stdout).unwrap()))
}

fn by_kind_and_name(docs: Vec<Value>) -> BTreeMap<(String, String), Value> {
    let mut map = BTreeMap::new();
    for doc in docs {
        let key =
            (doc["kind"].as_str().unwrap().to_owned(), doc["metadata"]["name"].as_str().unwrap().to_owned());
        assert!(map.insert(key.clone(), doc).is_none(), "{key:?} appears twice");
    }
    map
}

pub(crate) const KUSTOMIZATIONS: [&str; 3] =
    ["deploy/k8s/base", "deploy/k8s/overlays/staging", "deploy/k8s/overlays/production"];

/// The rendered objects of a kustomization, checked against kubectl when it is there.
pub(crate) fn render(kustomization: &str) -> BTreeMap<(String, String), Value> {
    let dir = root().join(kustomization);
    let ours = by_kind_and_name(kustomize(&dir));
    if let Some(theirs) = kubectl_kustomize(&dir) {
        let theirs = by_kind_and_name(theirs);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{kustomization}: same objects"
        );
        for (key, object) in &theirs {
            assert_eq!(&ours[key], object, "{kustomization}: {key:?} renders as kubectl does");
        }
    }
    ours
}

fn env_names(container: &Value) -> Vec<String> {
    str_names(&container["env"])
}

fn str_names(list: &Value) -> Vec<String> {
    list.as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|item| item["name"].as_str().map(str::to_owned))
        .collect()
}

fn probe_port(probe: &Value, container: &Value) -> u64 {
    let port = &probe["httpGet"]["port"];
    port.as_u64().unwrap_or_else(|| {
        let name = port.as_str().expect("probe port is a number or a name");
        container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("probe port {name} is not a container port"))
    })
}

/// `secretKeyRef`s of a container, by variable name; they all name `orders-secrets`.
pub(crate) fn secret_refs(container: &Value) -> BTreeMap<String, String> {
    let mut refs = BTreeMap::new();
    for var in container["env"].as_sequence().into_iter().flatten() {
        let Some(secret) = var["valueFrom"].get("secretKeyRef") else { continue };
        assert_eq!(secret["name"].as_str(), Some("orders-secrets"), "{var:?}");
        refs.insert(var["name"].as_str().unwrap().to_owned(), secret["key"].as_str().unwrap().to_owned());
    }
    refs
}

fn matches_selector(selector: &Value, labels: &Value) -> bool {
    selector.as_mapping().unwrap().iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn kubernetes_manifests_render_and_match_every_service_port_probe_and_setting() {
    for kustomization in KUSTOMIZATIONS {
        let objects = render(kustomization);
        let get = |kind: &str, name: &str| {
            objects
                .get(&(kind.to_owned(), name.to_owned()))
                .unwrap_or_else(|| panic!("{kustomization}: no {kind} {name}"))
        };
        assert!(
            !objects.keys().any(|(kind, _)| kind == "Secret"),
            "{kustomization}: secrets are referenced, never committed"
        );
        for (service, role, port) in SERVICES {
            let port = u64::from(code_port(role, port));
            let at = format!("{kustomization} {service}");

            let deployment = get("Deployment", service);
            let pod = &deployment["spec"]["template"];
            assert!(matches_selector(
                &deployment["spec"]["selector"]["matchLabels"],
                &pod["metadata"]["labels"]
            ));
            let containers = pod["spec"]["containers"].as_sequence().unwrap();
            assert_eq!(containers.len(), 1, "{at}: one container");
            let container = &containers[0];
            let ports: Vec<u64> = container["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(|p| p["containerPort"].as_u64())
                .collect();
            // The HTTP port, and the gateway's separate metrics listener.
            let metrics = u64::from(scrape_port(service, port as u16));
            let expected: Vec<u64> = if metrics == port { vec![port] } else { vec![port, metrics] };
            assert_eq!(ports, expected, "{at}: container ports are the code's");
            assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/health/live"), "{at}");
            assert_eq!(
                container["readinessProbe"]["httpGet"]["path"].as_str(),
                Some("/health/ready"),
                "{at}"
            );
            assert_eq!(probe_port(&container["livenessProbe"], container), port, "{at}: liveness port");
            assert_eq!(probe_port(&container["readinessProbe"], container), port, "{at}: readiness port");
            for bound in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        !container["resources"][bound][resource].is_null(),
                        "{at}: resources.{bound}.{resource}"
                    );
                }
            }
            let image = container["image"].as_str().unwrap();
            assert!(image.contains(&format!("orders/{service}:")), "{at}: image {image}");
            assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{at}");
            assert_eq!(
                pod["metadata"]["annotations"]["prometheus.io/port"].as_str(),
                Some(scrape_port(service, port as u16).to_string().as_str()),
                "{at}: scrape annotation"
            );

            // Settings: the ConfigMap's keys and the container's variables are the service's.
            let config_refs: Vec<&str> = container["envFrom"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|source| source["configMapRef"]["name"].as_str())
                .collect();
            assert_eq!(config_refs, [format!("{service}-config")], "{at}: envFrom");
            let config = get("ConfigMap", &format!("{service}-config"));
            let data = config["data"].as_mapping().unwrap();
            let keys: Vec<String> = data.keys().filter_map(Value::as_str).map(str::to_owned).collect();
            assert_settings(service, role, port as u16, &keys, &format!("{at} ConfigMap"));
            assert_settings(service, role, port as u16, &env_names(container), &format!("{at} Deployment"));
            assert!(data.values().all(Value::is_string), "{at}: ConfigMap values are strings");
            assert_eq!(
                config["data"]["HTTP_ADDR"].as_str(),
                Some(format!("0.0.0.0:{port}").as_str()),
                "{at}"
            );
            let secrets = secret_refs(container);
            for (var, key) in [
                ("DATABASE_URL", format!("{service}-database-url")),
                ("AMQP_URL", format!("{service}-amqp-url")),
                ("JWT_PUBLIC_KEYS", "jwt-public-keys".to_owned()),
            ] {
                assert_eq!(secrets.get(var), Some(&key), "{at}: {var} from orders-secrets/{key}");
            }
            // The token signing key reaches the gateway only.
            let signing = (service == "order-api").then(|| "jwt-signing-key".to_owned());
            assert_eq!(secrets.get("JWT_SIGNING_KEY"), signing.as_ref(), "{at}: JWT_SIGNING_KEY");
            let shadowed: Vec<&String> = keys.iter().filter(|k| secrets.contains_key(*k)).collect();
            assert!(shadowed.is_empty(), "{at}: set both in the ConfigMap and from the Secret: {shadowed:?}");

            let svc = get("Service", service);
            let service_port = &svc["spec"]["ports"][0];
            assert_eq!(service_port["port"].as_u64(), Some(port), "{at}: Service port");
            assert!(
                service_port["targetPort"].as_u64() == Some(port)
                    || service_port["targetPort"].as_str() == container["ports"][0]["name"].as_str(),
                "{at}: Service targets the container port"
            );
            assert!(
                matches_selector(&svc["spec"]["selector"], &pod["metadata"]["labels"]),
                "{at}: Service selects"
            );

            let hpa = get("HorizontalPodAutoscaler", service);
            assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"].as_str(), Some("Deployment"));
            assert_eq!(hpa["spec"]["scaleTargetRef"]["name"].as_str(), Some(service));
            let (min, max) =
                (hpa["spec"]["minReplicas"].as_u64().unwrap(), hpa["spec"]["maxReplicas"].as_u64().unwrap());
            assert!(1 <= min && min <= max, "{at}: HPA {min}..{max}");

            let pdb = get("PodDisruptionBudget", service);
            assert!(
                matches_selector(&pdb["spec"]["selector"]["matchLabels"], &pod["metadata"]["labels"]),
                "{at}: PDB selects the pods"
            );

            let job = get("Job", &format!("{service}-migrate"));
            let migrate = &job["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(str_seq(&migrate["args"]), ["migrate"], "{at}: the Job runs `{service} migrate`");
            assert_eq!(migrate["image"], container["image"], "{at}: the Job migrates with the same image");
            assert_eq!(
                secret_refs(migrate).get("DATABASE_URL"),
                Some(&format!("{service}-owner-database-url")),
                "{at}: the Job migrates as the schema owner"
            );
            assert_settings(service, role, port as u16, &env_names(migrate), &format!("{at} Job"));
            assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"].as_str(), Some("Never"));

            if kustomization.contains("overlays") {
                assert!(!image.ends_with(":dev"), "{at}: overlays pin a release tag, not {image}");
                for object in objects.values() {
                    assert!(object["metadata"]["namespace"].is_string(), "{at}: namespaced");
                }
            }
        }
    }
}

#[test]
fn the_test_renderer_does_what_kustomize_does_for_the_features_used() {
    let production = render("deploy/k8s/overlays/production");
    let deployment = &production[&("Deployment".to_owned(), "payment".to_owned())];
    assert_eq!(deployment["metadata"]["namespace"].as_str(), Some("orders"));
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(3));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"].as_str(), Some("registry.example.com/orders/payment:1.0.0"));
    assert_eq!(container["resources"]["limits"]["memory"].as_str(), Some("1Gi"));
    // The patch changed the resources only: the rest of the container is the base's.
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/health/live"));
    let hpa = &production[&("HorizontalPodAutoscaler".to_owned(), "payment".to_owned())];
    assert_eq!(hpa["spec"]["minReplicas"].as_u64(), Some(3));
    assert_eq!(hpa["metadata"]["name"].as_str(), Some("payment"));
}

// ---------------------------------------------------------------------------------------------
// Prometheus, alerts, Grafana

/// Metric names in a PromQL expression: identifiers that are not functions, keywords, label
/// names (inside `{}` or a `by (...)` list), durations, strings or Grafana `$variables`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    // The index after the string literal opening at `i`.
    let skip_string = |mut i: usize| {
        let quote = chars[i];
        i += 1;
        while i < chars.len() && chars[i] != quote {
            i += if chars[i] == '\\' { 2 } else { 1 };
        }
        i + 1
    };
    // The index after the bracket opening at `i` and its match.
    let skip_until = |mut i: usize, open: char, close: char| {
        let mut depth = 0;
        while i < chars.len() {
            match chars[i] {
                '"' | '\'' | '`' => {
                    i = skip_string(i);
                    continue;
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_until(i, '{', '}');
        } else if c == '[' {
            i = skip_until(i, '[', ']');
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_string(i);
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            i += 1;
            while i < chars.len() && (ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let followed_by_paren = chars.get(next) == Some(&'(');
            let grouping = ["by", "without", "on", "ignoring", "group_left", "group_right"];
            let keywords = ["and", "or", "unless", "bool", "offset", "atan2"];
            let aggregations = [
                "sum",
                "min",
                "max",
                "avg",
                "count",
                "group",
                "stddev",
                "stdvar",
                "topk",
                "bottomk",
                "quantile",
                "count_values",
                "limitk",
                "limit_ratio",
            ];
            if grouping.contains(&word.as_str()) {
                if followed_by_paren {
                    i = skip_until(next, '(', ')');
                }
            } else if !followed_by_paren
                && !keywords.contains(&word.as_str())
                && !aggregations.contains(&word.as_str())
            {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

fn known_metric(name: &str) -> bool {
    METRICS.contains(&name)
        || ["_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| name.strip_suffix(suffix).is_some_and(|base| HISTOGRAMS.contains(&base)))
}

fn assert_known_metrics(expr: &str, origin: &str) -> BTreeSet<String> {
    let names = metric_names(expr);
    assert!(!names.is_empty(), "{origin}: no metric in `{expr}`");
    for name in &names {
        assert!(known_metric(name), "{origin}: `{name}` is not a metric the system exports (in `{expr}`)");
    }
    names
}

#[test]
fn the_promql_metric_extractor_skips_functions_labels_and_strings() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le, job) (rate(http_request_duration_seconds_bucket{route!="/x", a='b'}[$__rate_interval]))) / on(job) group_left up and max without (x) (orders_stuck) > 5"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["http_request_duration_seconds_bucket", "orders_stuck", "up"]
    );
}

#[test]
fn prometheus_scrapes_every_service_and_rabbitmq() {
    let prometheus = yaml("deploy/prometheus/prometheus.yml");
    let jobs = prometheus["scrape_configs"].as_sequence().unwrap();
    let targets_of = |job: &str| -> Vec<String> {
        let config = jobs
            .iter()
            .find(|j| j["job_name"].as_str() == Some(job))
            .unwrap_or_else(|| panic!("no scrape job {job}"));
        config["static_configs"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|s| str_seq(&s["targets"]))
            .map(str::to_owned)
            .collect()
    };
    let compose = yaml("docker-compose.yml");
    for (service, role, port) in SERVICES {
        let port = code_port(role, port);
        let port = scrape_port(service, port);
        assert_eq!(targets_of(service), [format!("{service}:{port}")], "{service} scraped on its port");
        let job = jobs.iter().find(|j| j["job_name"].as_str() == Some(service)).unwrap();
        assert!(job["metrics_path"].as_str().is_none_or(|p| p == "/metrics"));
        assert!(compose["services"].get(service).is_some());
    }
    assert_eq!(targets_of("rabbitmq"), ["rabbitmq:15692"], "the rabbitmq_prometheus plugin's port");
    for rules in str_seq(&prometheus["rule_files"]) {
        let local = rules.strip_prefix("/etc/prometheus/").expect("rules mounted from deploy/prometheus");
        assert!(root().join("deploy/prometheus").join(local).exists(), "{rules} exists");
    }
}

#[test]
fn alert_rules_watch_dead_letters_outbox_lag_and_stuck_orders_with_real_metrics() {
    let alerts = yaml("deploy/prometheus/alerts.yml");
    let mut used = BTreeSet::new();
    let mut exprs = Vec::new();
    for group in alerts["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().expect("alerting rules only");
            let expr = rule["expr"].as_str().unwrap_or_else(|| panic!("{name} has an expr"));
            used.extend(assert_known_metrics(expr, name));
            assert!(rule["labels"]["severity"].is_string(), "{name} has a severity");
            assert!(rule["annotations"]["summary"].is_string(), "{name} has a summary");
            exprs.push(expr.to_owned());
        }
    }
    assert!(
        exprs.iter().any(|e| e.contains("rabbitmq_queue_messages_ready") && e.contains("dlq")),
        "an alert on a growing dead-letter queue"
    );
    for metric in ["outbox_oldest_event_age_seconds", "orders_stuck"] {
        assert!(used.contains(metric), "an alert on {metric}");
    }
    // The dead-letter queues exist under the name the alert matches.
    let definitions: serde_json::Value =
        serde_json::from_str(&read("deploy/rabbitmq/definitions.json")).unwrap();
    let queues: Vec<&str> =
        definitions["queues"].as_array().unwrap().iter().filter_map(|q| q["name"].as_str()).collect();
    for (service, ..) in SERVICES {
        assert!(queues.contains(&format!("{service}.inbox.dlq").as_str()), "{service}'s dead-letter queue");
    }
}

#[test]
fn grafana_is_provisioned_and_its_dashboard_queries_real_metrics() {
    let datasources = yaml("deploy/grafana/provisioning/datasources/prometheus.yaml");
    let datasource = &datasources["datasources"][0];
    assert_eq!(datasource["type"].as_str(), Some("prometheus"));
    assert_eq!(datasource["url"].as_str(), Some("http://prometheus:9090"));
    let uid = datasource["uid"].as_str().unwrap();

    let providers = yaml("deploy/grafana/provisioning/dashboards/orders.yaml");
    let path = providers["providers"][0]["options"]["path"].as_str().unwrap();
    let compose = yaml("docker-compose.yml");
    let mount = str_seq(&compose["services"]["grafana"]["volumes"])
        .into_iter()
        .find(|v| v.contains(&format!(":{path}")))
        .expect("the dashboards directory is mounted where the provider looks");
    let local = mount.split(':').next().unwrap();

    let mut dashboards = 0;
    let mut used = BTreeSet::new();
    for entry in std::fs::read_dir(root().join(local)).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        dashboards += 1;
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).expect("dashboard JSON parses");
        assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
        for panel in dashboard["panels"].as_array().unwrap() {
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().unwrap();
            let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title} has targets"));
            assert!(!targets.is_empty(), "{title} has targets");
            for target in targets {
                assert_eq!(
                    target["datasource"]["uid"].as_str(),
                    Some(uid),
                    "{title}: provisioned datasource"
                );
                used.extend(assert_known_metrics(target["expr"].as_str().unwrap(), title));
            }
        }
    }
    assert!(dashboards >= 1);
    for (what, metric) in [
        ("order funnel", "orders_placed_total"),
        ("order funnel", "order_transitions_total"),
        ("latency", "http_request_duration_seconds_bucket"),
        ("queue depths and dead letters", "rabbitmq_queue_messages_ready"),
        ("dead letters", "messages_consumed_total"),
        ("outbox lag", "outbox_oldest_event_age_seconds"),
    ] {
        assert!(used.contains(metric), "the dashboard shows the {what} ({metric})");
    }
}

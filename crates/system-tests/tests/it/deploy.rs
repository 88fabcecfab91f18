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
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

// By what the files deploy: compose, the Kubernetes manifests (and the renderer the tests use
// for them), monitoring.
mod compose;
mod kubernetes;
mod logs;
mod monitoring;
mod renderer;

pub(crate) use kubernetes::secret_refs;
pub(crate) use renderer::{KUSTOMIZATIONS, render};

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
    let defaults = chassis::CommonSettings::defaults(role, port);
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
    let common = struct_fields(&read("crates/chassis/src/settings.rs"), "CommonSettings");
    for (key, _) in chassis::CommonSettings::defaults(role, port) {
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

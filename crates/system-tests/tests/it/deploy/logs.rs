//! Central logs: every service's JSON lines go from Docker's log files (compose) or the
//! kubelet's (Kubernetes) through the OpenTelemetry collector to Loki, and Grafana jumps from a
//! trace id to its logs and back. No container runs here (no images offline): the files are
//! parsed and cross-checked, and the collector's and Grafana's regular expressions are run on a
//! line written in the services' own JSON format.

use super::{KUSTOMIZATIONS, SERVICES, read, render, root, str_seq, yaml};
use regex::Regex;
use serde_yaml::Value;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const LABELS: [&str; 2] = ["com.docker.compose.project", "com.docker.compose.service"];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A log line as a service writes it with `LOG_FORMAT=json`: the layer `platform::telemetry`
/// builds (checked against its source), an event inside a request span whose `trace_id` was
/// recorded as `platform::trace::continue_trace` does, under a child span without the field.
fn service_log_line() -> String {
    let telemetry = read("crates/platform/src/telemetry.rs");
    for setting in [".json()", ".flatten_event(true)", ".with_current_span(true)"] {
        assert!(telemetry.contains(setting), "telemetry.rs no longer formats logs with {setting}");
    }
    assert!(
        read("crates/platform/src/trace.rs")
            .contains(r#"span.record("trace_id", tracing::field::display(id))"#)
    );
    assert!(read("crates/platform/src/http.rs").contains("trace_id = tracing::field::Empty"));
    let captured = Captured::default();
    let writer = captured.clone();
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_writer(move || writer.clone());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let request = tracing::info_span!("http", service = "order-api", trace_id = tracing::field::Empty);
        request.record("trace_id", tracing::field::display(TRACE_ID));
        let _request = request.enter();
        let _query = tracing::info_span!("db", statement = "insert").entered();
        tracing::info!(order_id = "o-1", "order placed");
    });
    let line = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(parsed["level"], "INFO");
    assert!(parsed["span"].get("trace_id").is_none(), "the current span lacks the field: {line}");
    line
}

/// The operator of a filelog receiver with this `id` (or, without one, this `type`).
fn operator<'a>(receiver: &'a Value, id: &str) -> (usize, &'a Value) {
    let operators = receiver["operators"].as_sequence().expect("operators");
    operators
        .iter()
        .enumerate()
        .find(|(_, o)| o["id"].as_str().or(o["type"].as_str()) == Some(id))
        .unwrap_or_else(|| panic!("no operator {id}"))
}

/// Runs the receiver's `level` and `trace-id` regex parsers on `body` (Go's RE2 and Rust's
/// regex agree on these) and checks that the severity and trace parsers read what they capture.
fn assert_lifts_level_and_trace_id(receiver: &Value, body: &str, origin: &str) {
    for (id, wanted) in [("level", "INFO"), ("trace-id", TRACE_ID)] {
        let (_, parser) = operator(receiver, id);
        assert_eq!(parser["type"].as_str(), Some("regex_parser"), "{origin}: {id}");
        assert!(parser["parse_from"].as_str().is_none_or(|f| f == "body"), "{origin}: {id} reads the line");
        assert_eq!(
            parser["on_error"].as_str(),
            Some("send_quiet"),
            "{origin}: a line without it still ships"
        );
        let regex = Regex::new(parser["regex"].as_str().unwrap()).unwrap();
        let name = regex
            .capture_names()
            .flatten()
            .next()
            .unwrap_or_else(|| panic!("{origin}: {id} names its capture"));
        let found = regex.captures(body).and_then(|c| c.name(name)).map(|m| m.as_str());
        assert_eq!(found, Some(wanted), "{origin}: {id} in {body}");
        let into = format!("attributes.{name}");
        let reads = if id == "level" {
            parser["severity"]["parse_from"].as_str().map(str::to_owned)
        } else {
            let (_, trace) = operator(receiver, "trace_parser");
            trace["trace_id"]["parse_from"].as_str().map(str::to_owned)
        };
        assert_eq!(reads, Some(into), "{origin}: {id} is parsed from what the regex captured");
    }
}

/// The collector configuration's components exist, and its `logs` pipeline exports to the
/// OTLP endpoint of the Loki at `loki` (`http://host:port`). Returns the pipeline's receiver.
fn logs_pipeline<'a>(collector: &'a Value, loki: &str, origin: &str) -> &'a Value {
    let service = &collector["service"];
    for (kind, pipeline) in service["pipelines"].as_mapping().unwrap() {
        for section in ["receivers", "processors", "exporters"] {
            for name in str_seq(&pipeline[section]) {
                assert!(collector[section].get(name).is_some(), "{origin}: {kind:?} uses undefined {name}");
            }
        }
    }
    for name in str_seq(&service["extensions"]) {
        assert!(collector["extensions"].get(name).is_some(), "{origin}: extension {name} is defined");
    }
    let logs = &service["pipelines"]["logs"];
    let exporters = str_seq(&logs["exporters"]);
    assert!(
        exporters.iter().any(|e| e.starts_with("otlphttp")
            && collector["exporters"][*e]["endpoint"].as_str() == Some(&format!("{loki}/otlp"))),
        "{origin}: the logs go to {loki}/otlp, Loki's OTLP endpoint: {exporters:?}"
    );
    let receivers = str_seq(&logs["receivers"]);
    let filelog = receivers.iter().find(|r| r.starts_with("filelog")).expect("a filelog receiver");
    let receiver = &collector["receivers"][*filelog];
    let storage = receiver["storage"].as_str().expect("read offsets are kept");
    assert!(str_seq(&service["extensions"]).contains(&storage), "{origin}: {storage} is enabled");
    receiver
}

/// `*` matches within one path segment, as in the collector's `include` globs.
fn glob(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == path,
        Some((prefix, rest)) => {
            let Some(path) = path.strip_prefix(prefix) else { return false };
            let segment = path.find('/').unwrap_or(path.len());
            (0..=segment).filter(|&i| path.is_char_boundary(i)).any(|i| glob(rest, &path[i..]))
        }
    }
}

/// An image pinned to a release: a tag with a version number, not `latest` or a variable.
fn pinned(image: &str) -> bool {
    let tag = image.rsplit('/').next().and_then(|last| last.split_once(':')).map(|(_, tag)| tag);
    tag.is_some_and(|t| t != "latest" && !t.contains('$') && t.chars().any(|c| c.is_ascii_digit()))
}

fn loki_port() -> u64 {
    let loki = yaml("deploy/loki/loki.yaml");
    loki["server"]["http_listen_port"].as_u64().expect("Loki's HTTP port")
}

#[test]
fn logs_the_glob_and_pin_checks_tell_good_from_bad() {
    assert!(glob(
        "/var/log/pods/orders*_*/service/*.log",
        "/var/log/pods/orders-staging_payment-1_u/service/0.log"
    ));
    assert!(!glob("/var/log/pods/orders*_*/service/*.log", "/var/log/pods/kube_orders-1_u/service/0.log"));
    assert!(!glob("/a/*.log", "/a/b/c.log"), "`*` stays within a segment");
    assert!(pinned("grafana/loki:3.3.2") && pinned("localhost:5000/loki:v1.2") && pinned("postgres:15"));
    assert!(!pinned("grafana/loki") && !pinned("axllent/mailpit:latest") && !pinned("x/y:${TAG:-dev}"));
}

#[test]
fn logs_compose_runs_a_pinned_loki_with_otlp_ingestion_on_a_volume() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let loki = services.get("loki").expect("docker-compose runs Loki");
    for (name, entry) in services.as_mapping().unwrap() {
        if entry.get("build").is_none() {
            let image = entry["image"].as_str().unwrap_or_default();
            assert!(pinned(image), "{name:?}: image {image} is pinned to a version");
        }
    }
    let config = str_seq(&loki["command"])
        .iter()
        .find_map(|a| a.strip_prefix("-config.file="))
        .expect("a config file");
    let mount = str_seq(&loki["volumes"]).into_iter().find(|v| v.split(':').nth(1) == Some(config));
    assert_eq!(
        mount,
        Some(format!("./deploy/loki/loki.yaml:{config}:ro").as_str()),
        "Loki reads deploy/loki/loki.yaml"
    );

    let settings = yaml("deploy/loki/loki.yaml");
    let schema = settings["schema_config"]["configs"].as_sequence().unwrap().last().unwrap();
    assert_eq!(
        (schema["store"].as_str(), schema["schema"].as_str()),
        (Some("tsdb"), Some("v13")),
        "OTLP needs v13"
    );
    assert_ne!(
        settings["limits_config"]["allow_structured_metadata"].as_bool(),
        Some(false),
        "trace_id is metadata"
    );
    let data = settings["common"]["path_prefix"].as_str().unwrap();
    let volume = str_seq(&loki["volumes"])
        .into_iter()
        .find(|v| v.ends_with(&format!(":{data}")))
        .expect("data on a volume");
    let named = volume.split(':').next().unwrap();
    assert!(compose["volumes"].get(named).is_some(), "the volume {named} is declared");
    assert!(loki.get("ports").is_none(), "Loki is not published: Grafana and the collector reach it inside");
}

#[test]
fn logs_the_collector_ships_every_services_docker_log_lines_to_loki() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let project = compose["name"].as_str().unwrap();
    for (service, ..) in SERVICES {
        let entry = &services[service];
        assert_eq!(entry["environment"]["LOG_FORMAT"].as_str(), Some("json"), "{service} logs JSON");
        assert_eq!(
            entry["logging"]["driver"].as_str(),
            Some("json-file"),
            "{service}: logs in files the collector reads"
        );
        let labels = entry["logging"]["options"]["labels"].as_str().unwrap_or_default();
        for label in LABELS {
            assert!(labels.split(',').any(|l| l == label), "{service}'s lines carry {label}: {labels}");
        }
    }
    let otel = &services["otel-collector"];
    let mounted =
        str_seq(&otel["command"]).iter().find_map(|a| a.strip_prefix("--config=")).unwrap().to_owned();
    assert!(
        str_seq(&otel["volumes"]).contains(&format!("./deploy/otel/collector.yaml:{mounted}:ro").as_str())
    );
    assert_eq!(otel["depends_on"]["loki"]["condition"].as_str(), Some("service_started"));

    let collector = yaml("deploy/otel/collector.yaml");
    let receiver = logs_pipeline(&collector, &format!("http://loki:{}", loki_port()), "compose collector");
    for include in str_seq(&receiver["include"]) {
        let dir = include.split('*').next().unwrap().trim_end_matches('/');
        assert!(
            str_seq(&otel["volumes"]).contains(&format!("{dir}:{dir}:ro").as_str()),
            "the collector sees {dir} (read-only) where it looks for {include}"
        );
        assert!(glob(include, &format!("{dir}/abc/abc-json.log")), "{include}: Docker's json-file name");
    }
    let extension = &collector["extensions"][receiver["storage"].as_str().unwrap()];
    let state = extension["directory"].as_str().unwrap();
    assert!(
        str_seq(&otel["volumes"]).iter().any(|v| v.split(':').nth(1).is_some_and(|t| state.starts_with(t))
            && compose["volumes"].get(v.split(':').next().unwrap()).is_some()),
        "the read offsets ({state}) are on a named volume"
    );

    // Docker's envelope first, then the selection by the labels above, then the line as body.
    let (envelope, docker) = operator(receiver, "docker-envelope");
    assert_eq!(envelope, 0);
    assert_eq!(docker["timestamp"]["parse_from"].as_str(), Some("attributes.time"));
    let (_, filter) = operator(receiver, "only-the-orders-services");
    let expr = filter["expr"].as_str().unwrap();
    assert!(
        expr.contains(&format!(r#"attributes.attrs["{}"] != "{project}""#, LABELS[0])),
        "keeps project {project}: {expr}"
    );
    let operators = receiver["operators"].as_sequence().unwrap();
    let moved = |from: &str, to: &str| {
        operators.iter().position(|o| o["type"] == "move" && o["from"] == from && o["to"] == to)
    };
    assert!(
        moved(&format!(r#"attributes.attrs["{}"]"#, LABELS[1]), r#"resource["service.name"]"#).is_some(),
        "named by service"
    );
    let body = moved("attributes.log", "body").expect("the service's line becomes the body");
    assert!(operator(receiver, "level").0 > body && operator(receiver, "trace-id").0 > body);
    assert_lifts_level_and_trace_id(receiver, &service_log_line(), "compose collector");
}

#[test]
fn logs_grafana_has_loki_and_links_trace_ids_to_jaeger_and_back() {
    let compose = yaml("docker-compose.yml");
    let grafana = &compose["services"]["grafana"];
    let provisioning = str_seq(&grafana["volumes"])
        .into_iter()
        .find(|v| v.contains(":/etc/grafana/provisioning"))
        .and_then(|v| v.split(':').next()?.strip_prefix("./"))
        .unwrap();
    let source = |name: &str| {
        let file = format!("{provisioning}/datasources/{name}.yaml");
        let text = read(&file);
        // Grafana expands `$VAR` and `${VAR}` in provisioning files: a literal `${` is `$${`.
        let bare = text.match_indices("${").filter(|(i, _)| !text[..*i].ends_with('$')).count();
        assert_eq!(bare, 0, "{file}: write Grafana's own ${{...}} variables as $${{...}}");
        yaml(&file)["datasources"][0].clone()
    };
    let (loki, jaeger) = (source("loki"), source("jaeger"));
    assert_eq!(loki["type"].as_str(), Some("loki"));
    assert_eq!(loki["url"].as_str(), Some(format!("http://loki:{}", loki_port()).as_str()));
    assert_eq!(jaeger["type"].as_str(), Some("jaeger"));
    assert_eq!(jaeger["url"].as_str(), Some("http://jaeger:16686"), "Jaeger's query port");
    assert!(str_seq(&compose["services"]["jaeger"]["ports"]).iter().any(|p| p.ends_with(":16686")));
    for dependency in ["loki", "jaeger"] {
        assert!(grafana["depends_on"].get(dependency).is_some(), "grafana starts after {dependency}");
    }
    let (loki_uid, jaeger_uid) = (loki["uid"].as_str().unwrap(), jaeger["uid"].as_str().unwrap());

    // Log line -> trace: the derived field finds the id in a real line and opens it in Jaeger.
    let line = service_log_line();
    let fields = loki["jsonData"]["derivedFields"].as_sequence().expect("derived fields");
    let field =
        fields.iter().find(|f| f["datasourceUid"].as_str() == Some(jaeger_uid)).expect("a link to Jaeger");
    let regex = Regex::new(field["matcherRegex"].as_str().unwrap()).unwrap();
    assert_eq!(regex.captures(&line).and_then(|c| c.get(1)).map(|m| m.as_str()), Some(TRACE_ID));
    assert_eq!(field["url"].as_str(), Some("$${__value.raw}"), "the internal link's query is the id itself");

    // Trace -> logs: from a span in Jaeger, and on the dashboard from the Trace id box.
    let to_logs = &jaeger["jsonData"]["tracesToLogsV2"];
    assert_eq!(to_logs["datasourceUid"].as_str(), Some(loki_uid));
    let query = to_logs["query"].as_str().unwrap();
    assert!(query.contains("service_name") && query.contains(r#"|= "$${__trace.traceId}""#), "{query}");
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/orders.json")).unwrap();
    let variable =
        dashboard["templating"]["list"].as_array().unwrap().iter().find(|v| v["name"] == "trace_id");
    assert_eq!(variable.and_then(|v| v["type"].as_str()), Some("textbox"), "a Trace id box");
    let panel =
        dashboard["panels"].as_array().unwrap().iter().find(|p| p["type"] == "logs").expect("a logs panel");
    assert_eq!(panel["datasource"]["uid"].as_str(), Some(loki_uid));
    let targets = panel["targets"].as_array().unwrap();
    assert!(!targets.is_empty());
    for target in targets {
        assert_eq!(target["datasource"]["uid"].as_str(), Some(loki_uid));
        let expr = target["expr"].as_str().unwrap();
        // `service_name` is the label Loki makes of the collector's `service.name`.
        assert!(expr.starts_with("{service_name") && expr.contains(r#"|= "$trace_id""#), "{expr}");
    }
}

#[test]
fn logs_kubernetes_log_collector_ships_the_pod_logs_of_every_service() {
    let objects = render("deploy/k8s/logging");
    let get = |kind: &str, name: &str| &objects[&(kind.to_owned(), name.to_owned())];
    let daemonset = get("DaemonSet", "log-collector");
    assert_eq!(daemonset["metadata"]["namespace"].as_str(), Some("observability"));
    let pod = &daemonset["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    let container = &pod["containers"][0];
    let compose = yaml("docker-compose.yml");
    assert_eq!(
        container["image"], compose["services"]["otel-collector"]["image"],
        "the compose collector's version"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"].as_bool(), Some(true));
    let mount = |path: &str| {
        let mounted = container["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| path.starts_with(m["mountPath"].as_str().unwrap()));
        let mounted = mounted.unwrap_or_else(|| panic!("nothing mounted at {path}"));
        let name = &mounted["name"];
        (mounted, pod["volumes"].as_sequence().unwrap().iter().find(|v| &v["name"] == name).unwrap())
    };
    let args = str_seq(&container["args"]);
    let config = args.iter().find_map(|a| a.strip_prefix("--config=")).unwrap();
    let (_, volume) = mount(config);
    let configmap = get("ConfigMap", volume["configMap"]["name"].as_str().unwrap());
    let key = config.rsplit('/').next().unwrap();
    let collector: Value =
        serde_yaml::from_str(configmap["data"][key].as_str().expect("the config file")).unwrap();

    let receiver =
        logs_pipeline(&collector, &format!("http://loki.observability:{}", loki_port()), "k8s collector");
    assert_eq!(receiver["include_file_path"].as_bool(), Some(true), "the container parser reads the path");
    let includes = str_seq(&receiver["include"]);
    for include in &includes {
        let (mounted, volume) = mount(include);
        assert_eq!(mounted["readOnly"].as_bool(), Some(true), "{include} is read-only");
        assert_eq!(volume["hostPath"]["path"], mounted["mountPath"], "{include} is the node's");
    }
    let state = collector["extensions"][receiver["storage"].as_str().unwrap()]["directory"].as_str().unwrap();
    assert!(mount(state).1.get("hostPath").is_some(), "read offsets ({state}) outlive the pod");

    // Every pod of every service and migration Job, in every overlay, is shipped and named.
    let (_, naming) = operator(receiver, "service-name");
    assert_eq!(naming["parse_from"].as_str(), Some(r#"resource["k8s.pod.name"]"#));
    let naming = Regex::new(naming["regex"].as_str().unwrap()).unwrap();
    for kustomization in &KUSTOMIZATIONS[1..] {
        for ((kind, name), object) in render(kustomization) {
            let pod_name = match kind.as_str() {
                "Deployment" => format!("{name}-5d8f7c9b6-x2x9z"),
                "Job" => format!("{name}-q7k2p"),
                _ => continue,
            };
            let service = object["metadata"]["labels"]["app.kubernetes.io/name"].as_str().unwrap();
            assert!(SERVICES.iter().any(|(s, ..)| *s == service));
            let namespace = object["metadata"]["namespace"].as_str().unwrap();
            for shipped in object["spec"]["template"]["spec"]["containers"].as_sequence().unwrap() {
                let file = format!(
                    "/var/log/pods/{namespace}_{pod_name}_0f1e/{}/0.log",
                    shipped["name"].as_str().unwrap()
                );
                assert!(
                    includes.iter().any(|i| glob(i, &file)),
                    "{kustomization}: {kind} {name}: {file} is not shipped"
                );
            }
            let named = naming.captures(&pod_name).and_then(|c| c.name("service_name")).map(|m| m.as_str());
            assert_eq!(named, Some(service), "{kustomization}: {pod_name} is named {service}");
        }
    }
    assert_lifts_level_and_trace_id(receiver, &service_log_line(), "k8s collector");
    let config_maps = render("deploy/k8s/base");
    for (service, ..) in SERVICES {
        let data = &config_maps[&("ConfigMap".to_owned(), format!("{service}-config"))]["data"];
        assert_eq!(data["LOG_FORMAT"].as_str(), Some("json"), "{service} logs JSON in Kubernetes");
    }
    assert!(root().join("deploy/k8s/logging/kustomization.yaml").exists());
}

//! Prometheus, its alert rules and the Grafana dashboard scrape and query metrics the system
//! really exports.

use super::{SERVICES, code_port, read, root, scrape_port, str_seq, yaml};
use std::collections::BTreeSet;

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
            // Rows hold no query; the logs panel queries Loki (deploy/logs.rs checks it).
            if panel["type"] == "row" || panel["type"] == "logs" {
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

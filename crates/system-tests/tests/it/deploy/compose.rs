//! docker-compose and the Dockerfile run every service as the code expects.

use super::{SERVICES, assert_settings, code_port, read, root, str_seq, yaml};
use serde_yaml::Value;

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
        let defaults = chassis::CommonSettings::defaults(role, port);
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

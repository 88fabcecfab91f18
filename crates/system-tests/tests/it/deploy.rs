//! The deployment files agree with the code: docker-compose runs every service with the port,
//! database role and settings the code expects.

use serde_yaml::Value;

#[test]
fn docker_compose_parses_and_wires_every_service_as_the_code_expects() {
    let path = testkit::repo_root().join("docker-compose.yml");
    let compose: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).expect("docker-compose.yml parses");
    let services = &compose["services"];
    for dependency in ["postgres", "rabbitmq"] {
        assert!(services.get(dependency).is_some(), "{dependency} missing");
    }
    let expected = [
        ("order-api", "order_api", 8080),
        ("inventory", "inventory", 8081),
        ("payment", "payment", 8082),
        ("notifier", "notifier", 8083),
        ("webhook-dispatcher", "webhooks", 8084),
    ];
    for (service, role, port) in expected {
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
        let ports: Vec<&str> =
            entry["ports"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(ports, [format!("{port}:{port}")], "{service} ports");
    }
    let gateway = &services["order-api"]["environment"];
    assert_eq!(gateway["INVENTORY_URL"].as_str(), Some("http://inventory:8081"));
    assert_eq!(gateway["WEBHOOKS_URL"].as_str(), Some("http://webhook-dispatcher:8084"));
    assert!(
        services["notifier"]["environment"]["SMTP_URL"].as_str().is_some_and(|u| u.starts_with("smtp://"))
    );
}

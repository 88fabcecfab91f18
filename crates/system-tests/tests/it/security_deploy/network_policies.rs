//! Kubernetes: who may connect to whom under the NetworkPolicies, and what pods mount and run as.

use crate::deploy::{KUSTOMIZATIONS, SERVICES, render, secret_refs, str_seq};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

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

//! The Kubernetes manifests, as rendered, run every service with the port, probes, database
//! role and settings the code has.

use super::{KUSTOMIZATIONS, SERVICES, assert_settings, code_port, render, scrape_port, str_seq};
use serde_yaml::Value;
use std::collections::BTreeMap;

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

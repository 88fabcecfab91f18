//! The test renderer of the kustomizations: the documented subset of `kustomize build` (the
//! parent module's documentation), checked against `kubectl kustomize` when it is there.

use super::{root, str_seq};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::Path;

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

//! The whole bus, assembled where every service is visible (shared crates know no service):
//! each service's `BUS` declaration (what it publishes, what its handler handles) is the one
//! source of the queue bindings, `deploy/rabbitmq/definitions.json` and
//! `proto-schemas/asyncapi.yaml`; the tests here fail when either file drifts from the
//! declarations. Regenerate with
//! `UPDATE_DEFINITIONS=1 UPDATE_ASYNCAPI=1 cargo nextest run -p system-tests -E 'test(/topology/)'`.

use messaging::topology::{EXCHANGE, binding_drift, queue_name};
use messaging::{EventHandler, Participant, QueueType, Topology};
use std::time::Duration;

/// Every service's declaration, in the order the generated files list them.
pub fn participants() -> Vec<Participant> {
    vec![order_api::BUS, inventory::BUS, payment::BUS, notifier::BUS, webhook_dispatcher::BUS]
}

/// The whole map with the given queue settings (what loading the definitions file declares).
pub fn whole(queue_type: QueueType, retry_delays: Vec<Duration>) -> Topology {
    Topology { queue_type, retry_delays, participants: participants() }
}

fn default_retry_delays() -> Vec<Duration> {
    [1, 10, 60, 300].into_iter().map(Duration::from_secs).collect()
}

fn repo_file(path: &str) -> std::path::PathBuf {
    testkit::repo_root().join(path)
}

/// Compares `generated` with the committed file, rewriting it first when `update_var` is set.
fn check_generated(path: &str, update_var: &str, generated: &str) {
    let file = repo_file(path);
    if std::env::var_os(update_var).is_some() {
        std::fs::write(&file, generated).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} drifted from the services' declarations; rerun with {update_var}=1"
    );
}

#[test]
fn topology_definitions_file_is_generated_from_the_services_declarations() {
    let generated = whole(QueueType::Quorum, default_retry_delays()).definitions("/");
    let pretty = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    check_generated("deploy/rabbitmq/definitions.json", "UPDATE_DEFINITIONS", &pretty);
}

#[test]
fn topology_asyncapi_document_is_generated_from_the_services_declarations() {
    check_generated("proto-schemas/asyncapi.yaml", "UPDATE_ASYNCAPI", &asyncapi(&participants()));
}

/// The bindings of each inbox in the committed definitions file are exactly what its handler
/// handles: a type bound but not handled would be dead-lettered on a good day, a type handled
/// but not bound would never arrive.
#[test]
fn topology_every_handler_handles_exactly_what_its_queue_is_bound_to() {
    let handlers: [(&str, &[&str]); 5] = [
        (order_api::SERVICE, order_api::saga::OrderSaga::HANDLES),
        (inventory::SERVICE, inventory::handlers::OrderEvents::HANDLES),
        (payment::SERVICE, payment::handlers::PaymentRequests::HANDLES),
        (notifier::SERVICE, notifier::handlers::OrderOutcomes::HANDLES),
        (webhook_dispatcher::SERVICE, webhook_dispatcher::handlers::WebhookEvents::HANDLES),
    ];
    let text = std::fs::read_to_string(repo_file("deploy/rabbitmq/definitions.json")).unwrap();
    let definitions: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (service, handles) in handlers {
        let queue = queue_name(service);
        let bound: Vec<&str> = definitions["bindings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["source"] == EXCHANGE && b["destination"] == queue.as_str())
            .filter_map(|b| b["routing_key"].as_str())
            .collect();
        assert_eq!(binding_drift(service, &bound, handles), None);
    }
    for participant in participants() {
        assert!(
            handlers
                .iter()
                .any(|(service, handles)| *service == participant.service && *handles == participant.handles),
            "{} declares handles that are not its handler's",
            participant.service
        );
    }
}

/// What a service binds at start-up on a real broker is what its handler handles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_each_service_binds_its_inbox_to_what_it_handles_on_the_broker() {
    let vhost = testkit::TestVhost::create().await.unwrap();
    for participant in participants() {
        let own = Topology {
            participants: vec![participant],
            ..whole(QueueType::Quorum, vec![Duration::from_secs(1)])
        };
        own.declare_everything(&vhost.amqp_url()).await.unwrap();
        let url = format!(
            "{}/api/queues/{}/{}/bindings",
            std::env::var("TEST_RABBITMQ_MANAGEMENT").unwrap_or_else(|_| "http://127.0.0.1:15672".to_owned()),
            vhost.name,
            participant.queue()
        );
        let bindings: serde_json::Value = reqwest::Client::new()
            .get(url)
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bound: Vec<&str> = bindings
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["source"] == EXCHANGE)
            .filter_map(|b| b["routing_key"].as_str())
            .collect();
        assert_eq!(binding_drift(participant.service, &bound, participant.handles), None);
    }
    vhost.delete().await.unwrap();
}

#[test]
fn topology_every_event_type_has_exactly_one_publisher_and_a_reader() {
    let all = participants();
    for (event_type, _) in contracts::Event::TYPES {
        let publishers: Vec<&str> =
            all.iter().filter(|p| p.publishes.contains(event_type)).map(|p| p.service).collect();
        assert_eq!(publishers.len(), 1, "{event_type} must have exactly one publisher: {publishers:?}");
        // Terminal stock events are for integrators (webhooks) and dashboards.
        let informational = matches!(*event_type, "stock.committed" | "stock.released");
        let consumed = all.iter().any(|p| p.handles.contains(event_type));
        assert!(informational || consumed, "{event_type} has no consumer");
    }
    let published: usize = all.iter().map(|p| p.publishes.len()).sum();
    assert_eq!(published, contracts::Event::TYPES.len(), "a service declares an unknown type");
}

#[test]
fn topology_the_dead_letter_operator_covers_every_inbox() {
    let inboxes: Vec<&str> = participants().iter().filter(|p| p.consumes()).map(|p| p.service).collect();
    assert_eq!(order_api::BUS.dead_letters_of, inboxes.as_slice());
}

/// The AsyncAPI 3.0 document: one channel per event type (from its schema file's summary),
/// one send operation per publisher and one receive operation per handler that handles it.
fn asyncapi(participants: &[Participant]) -> String {
    let mut schemas = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(repo_file("proto-schemas"))
        .unwrap()
        .filter_map(|entry| entry.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.contains(".v") && name.ends_with(".json"))
        .collect();
    files.sort();
    for name in files {
        let stem = name.trim_end_matches(".json");
        let (kind, version) = stem.rsplit_once(".v").unwrap();
        let doc: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(repo_file(&format!("proto-schemas/{name}"))).unwrap(),
        )
        .unwrap();
        let description = doc["description"].as_str().unwrap();
        let summary = description.split(" Produced by").next().unwrap().to_owned();
        let producer =
            participants.iter().find(|p| p.publishes.contains(&kind)).map_or("nobody", |p| p.service);
        let consumers: Vec<&str> =
            participants.iter().filter(|p| p.handles.contains(&kind)).map(|p| p.service).collect();
        schemas.push((kind.to_owned(), version.to_owned(), name.clone(), summary, producer, consumers));
    }
    let quote = |text: &str| serde_json::to_string(text).unwrap();
    let mut out = String::from(ASYNCAPI_HEAD);
    out.push_str("channels:\n");
    for (kind, version, _, summary, _, _) in &schemas {
        let msg = format!("{}V{version}", camel(kind, true));
        out.push_str(&format!(
            "  {}:\n    address: {kind}\n    description: {}\n    messages:\n      {msg}:\n        $ref: '#/components/messages/{msg}'\n    bindings:\n      amqp:\n        is: routingKey\n        exchange: {{ name: orders.events, type: topic, durable: true, autoDelete: false, vhost: / }}\n",
            camel(kind, false),
            quote(summary)
        ));
    }
    out.push_str("operations:\n");
    for (kind, version, _, _, producer, consumers) in &schemas {
        let (channel, msg) = (camel(kind, false), format!("{}V{version}", camel(kind, true)));
        let refs = format!(
            "    channel: {{ $ref: '#/channels/{channel}' }}\n    messages: [ {{ $ref: '#/channels/{channel}/messages/{msg}' }} ]\n"
        );
        out.push_str(&format!(
            "  {}Publishes{}:\n    action: send\n{refs}",
            camel(producer, false),
            camel(kind, true)
        ));
        for consumer in consumers {
            out.push_str(&format!(
                "  {}Consumes{}:\n    action: receive\n    summary: from queue {consumer}.inbox\n{refs}",
                camel(consumer, false),
                camel(kind, true)
            ));
        }
    }
    out.push_str("components:\n  messages:\n");
    for (kind, version, name, summary, producer, consumers) in &schemas {
        let readers = if consumers.is_empty() { "integrators only".to_owned() } else { consumers.join(", ") };
        out.push_str(&format!(
            "    {}V{version}:\n      name: {kind}\n      title: {kind} v{version}\n      summary: {}\n      description: {}\n      payload: {{ $ref: './{name}' }}\n",
            camel(kind, true),
            quote(summary),
            quote(&format!("Produced by {producer}; consumed by {readers}."))
        ));
    }
    out
}

const ASYNCAPI_HEAD: &str = "\
# AsyncAPI 3.0 description of the events on the bus, generated by the system tests
# (crates/system-tests/tests/it/topology.rs) from the schema files next to it and each service's
# bus declaration. Each message's payload is the whole CloudEvents structured-mode envelope,
# described by its JSON Schema (draft 2020-12).
asyncapi: 3.0.0
info:
  title: Orders event bus
  version: 1.0.0
  description: |
    Every event exchanged by the order system's services. All events go through one durable
    topic exchange, `orders.events`; the routing key is the event type (`order.created`).
    Each consuming service has one queue, `<service>.inbox`, bound to the types it reads, with
    retry queues `<service>.inbox.retry.<delay>` and a dead-letter queue `<service>.inbox.dlq`.
defaultContentType: application/cloudevents+json
servers:
  rabbitmq:
    host: rabbitmq:5672
    protocol: amqp
    protocolVersion: 0.9.1
";

/// `order.created` → `orderCreated` (or `OrderCreated`), `order-api` → `orderApi`.
fn camel(kind: &str, upper: bool) -> String {
    let mut out = String::new();
    for (i, part) in kind.split(['.', '_', '-']).enumerate() {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            if i == 0 && !upper {
                out.push(first);
            } else {
                out.extend(first.to_uppercase());
            }
            out.push_str(chars.as_str());
        }
    }
    out
}

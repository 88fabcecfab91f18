//! The map in RabbitMQ's definitions format (`deploy/rabbitmq/definitions.json`) and each
//! service's broker-user rights, both derived from the participants' declarations. Operators
//! load the file before any service starts; the users themselves, with their passwords, are
//! created by `deploy/rabbitmq/setup.sh`.

use crate::topology::{
    EXCHANGE, Participant, Topology, dead_letter_queue, queue_name, reroute_exchange, retry_queue,
    retry_queue_ttl,
};
use serde_json::{Value, json};

impl Topology {
    /// Every participant's exchanges, queues and bindings on `vhost`, with each service
    /// user's permissions.
    pub fn definitions(&self, vhost: &str) -> Value {
        let mut exchanges = vec![json!({"name": EXCHANGE, "vhost": vhost, "type": "topic", "durable": true,
            "auto_delete": false, "internal": false, "arguments": {}})];
        let mut queues = Vec::new();
        let mut bindings = Vec::new();
        let binding = |source: &str, destination: &str, key: &str| {
            json!({"source": source, "vhost": vhost, "destination": destination,
                "destination_type": "queue", "routing_key": key, "arguments": {}})
        };
        let queue_type = self.queue_type.as_str();
        for participant in self.consumers() {
            let queue = participant.queue();
            let dlq = dead_letter_queue(&queue);
            let reroute = reroute_exchange(&queue);
            exchanges.push(json!({"name": reroute, "vhost": vhost, "type": "direct", "durable": true,
                "auto_delete": false, "internal": false, "arguments": {}}));
            queues.push(json!({"name": dlq, "vhost": vhost, "durable": true, "auto_delete": false,
                "arguments": {"x-queue-type": queue_type}}));
            queues.push(json!({"name": queue, "vhost": vhost, "durable": true, "auto_delete": false,
                "arguments": {"x-queue-type": queue_type, "x-dead-letter-exchange": reroute,
                    "x-dead-letter-routing-key": dlq}}));
            bindings.push(binding(&reroute, &dlq, &dlq));
            bindings.push(binding(&reroute, &queue, &queue));
            for delay in &self.retry_delays {
                let retry = retry_queue(&queue, *delay);
                queues.push(json!({"name": retry, "vhost": vhost, "durable": true,
                    "auto_delete": false, "arguments": {"x-queue-type": "classic",
                    "x-message-ttl": retry_queue_ttl(*delay), "x-dead-letter-exchange": reroute,
                    "x-dead-letter-routing-key": queue}}));
                bindings.push(binding(&reroute, &retry, &retry));
            }
            for key in participant.handles {
                bindings.push(binding(EXCHANGE, &queue, key));
            }
        }
        let permissions: Vec<_> = self
            .participants
            .iter()
            .map(|participant| {
                let p = Permissions::of(participant);
                json!({"user": participant.service, "vhost": vhost, "configure": p.configure,
                    "write": p.write, "read": p.read})
            })
            .collect();
        let topic_permissions: Vec<_> = self
            .participants
            .iter()
            .map(|participant| {
                let p = Permissions::of(participant);
                json!({"user": participant.service, "vhost": vhost, "exchange": EXCHANGE,
                    "write": p.topic_write, "read": p.topic_read})
            })
            .collect();
        json!({
            "vhosts": [{"name": vhost}],
            "exchanges": exchanges,
            "queues": queues,
            "bindings": bindings,
            "permissions": permissions,
            "topic_permissions": topic_permissions,
        })
    }
}

/// A service's broker user's rights, as RabbitMQ regular expressions (`rabbitmqctl
/// set_permissions` / `set_topic_permissions`): configure and read its own queues and
/// exchanges, publish only its own event types, bind its inbox only to the types it handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
    /// Routing keys it may publish to [`EXCHANGE`].
    pub topic_write: String,
    /// Routing keys it may bind its queue to on [`EXCHANGE`].
    pub topic_read: String,
}

impl Permissions {
    pub fn of(participant: &Participant) -> Self {
        let own = format!("{}(\\..+)?", regex_escape(&participant.queue()));
        let exchange = regex_escape(EXCHANGE);
        let (mut write, mut read) =
            (vec![exchange.clone(), own.clone()], vec![exchange.clone(), own.clone()]);
        // Listing, replaying and purging other services' DLQs (the operators' tools).
        for service in participant.dead_letters_of {
            let queue = queue_name(service);
            read.push(regex_escape(&dead_letter_queue(&queue)));
            write.push(regex_escape(&reroute_exchange(&queue)));
        }
        let keys = |keys: &[&str]| {
            let keys: Vec<String> = keys.iter().map(|key| regex_escape(key)).collect();
            // `^$` matches no routing key: a service with nothing to publish or bind.
            if keys.is_empty() { "^$".to_owned() } else { format!("^({})$", keys.join("|")) }
        };
        Self {
            configure: format!("^({exchange}|{own})$"),
            write: format!("^({})$", write.join("|")),
            read: format!("^({})$", read.join("|")),
            topic_write: keys(participant.publishes),
            topic_read: keys(participant.handles),
        }
    }
}

fn regex_escape(name: &str) -> String {
    name.replace('.', "\\.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueueType;

    const DISPATCHER: Participant = Participant {
        service: "webhook-dispatcher",
        publishes: &["webhook.delivered", "webhook.failed"],
        handles: &["order.created"],
        dead_letters_of: &[],
    };
    const OPERATOR: Participant = Participant {
        service: "order-api",
        publishes: &["order.created"],
        handles: &["webhook.delivered"],
        dead_letters_of: &["order-api", "webhook-dispatcher"],
    };

    #[test]
    fn a_service_user_may_publish_its_own_events_and_read_its_own_queues_only() {
        let p = Permissions::of(&DISPATCHER);
        assert_eq!(p.topic_write, r"^(webhook\.delivered|webhook\.failed)$");
        assert_eq!(p.topic_read, r"^(order\.created)$");
        assert_eq!(p.read, r"^(orders\.events|webhook-dispatcher\.inbox(\..+)?)$");
        assert_eq!(p.configure, p.read);
        let operator = Permissions::of(&OPERATOR);
        assert!(operator.read.contains(r"webhook-dispatcher\.inbox\.dlq"), "the DLQ operator");
        assert!(operator.write.contains(r"webhook-dispatcher\.inbox\.reroute"), "replays through it");
        assert!(!operator.read.contains(r"webhook-dispatcher\.inbox("), "but not the inbox itself");
    }

    #[test]
    fn definitions_bind_each_inbox_to_what_its_handler_handles() {
        let topology = Topology {
            queue_type: QueueType::Quorum,
            retry_delays: vec![std::time::Duration::from_secs(1)],
            participants: vec![DISPATCHER, OPERATOR],
        };
        let definitions = topology.definitions("/");
        let bound: Vec<(&str, &str)> = definitions["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["source"] == EXCHANGE)
            .filter_map(|b| Some((b["destination"].as_str()?, b["routing_key"].as_str()?)))
            .collect();
        assert_eq!(
            bound,
            [("webhook-dispatcher.inbox", "order.created"), ("order-api.inbox", "webhook.delivered")]
        );
        assert_eq!(definitions["permissions"].as_array().map(Vec::len), Some(2));
    }
}

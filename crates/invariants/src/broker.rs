//! What the broker holds: the vhost's queues (names from the management API) and their depths
//! (from passive declares over AMQP: the management API's counts lag by its statistics interval,
//! a declare answers with the queue's depth now).

use crate::report::DeadLetter;
use crate::{Error, Expectations, Target};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use serde::Deserialize;

/// At most this many dead letters are read per queue for the report.
const DEAD_LETTERS_SHOWN: u32 = 50;

pub struct QueueState {
    pub name: String,
    pub messages: u32,
    /// Read only when the look asks for detail and the count is not the expected one.
    pub dead_letters: Vec<DeadLetter>,
}

impl QueueState {
    pub fn is_dead_letter_queue(&self) -> bool {
        self.name.ends_with(".dlq")
    }
}

#[derive(Deserialize)]
struct Listed {
    name: String,
    #[serde(default)]
    exclusive: bool,
}

fn broker_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Broker(format!("{what}: {e}"))
}

/// The vhost of an AMQP URL (its path, percent-decoded; "/" when empty).
fn vhost_of(amqp_url: &str) -> Result<String, Error> {
    let url = reqwest::Url::parse(amqp_url).map_err(|e| broker_error("the AMQP URL", e))?;
    let path = url.path().trim_start_matches('/');
    if path.is_empty() {
        return Ok("/".into());
    }
    let mut decoded = Vec::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).map_err(|e| broker_error("the AMQP URL's vhost", e))
}

async fn list_queues(target: &Target) -> Result<Vec<Listed>, Error> {
    let vhost = vhost_of(&target.amqp_url)?;
    let mut url =
        reqwest::Url::parse(&target.management_url).map_err(|e| broker_error("the management URL", e))?;
    url.path_segments_mut()
        .map_err(|()| broker_error("the management URL", "cannot be a base"))?
        .pop_if_empty()
        .extend(["api", "queues", vhost.as_str()]);
    url.set_query(Some("columns=name,exclusive"));
    let response = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(5))
        .basic_auth(&target.management_user, Some(&target.management_password))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| broker_error("listing queues through the management API", e))?;
    response.json().await.map_err(|e| broker_error("reading the queue list", e))
}

pub async fn read(
    target: &Target,
    expected: &Expectations,
    with_detail: bool,
) -> Result<Vec<QueueState>, Error> {
    let listed = list_queues(target).await?;
    let connection = Connection::connect(&target.amqp_url, ConnectionProperties::default())
        .await
        .map_err(|e| broker_error("connecting over AMQP", e))?;
    let mut queues = Vec::new();
    // Exclusive queues belong to another connection (a test's spy); `amq.*` are server-named.
    for queue in listed.into_iter().filter(|q| !q.exclusive && !q.name.starts_with("amq.")) {
        // A failed declare closes its channel, so one channel per queue.
        let channel = connection.create_channel().await.map_err(|e| broker_error("opening a channel", e))?;
        let declared = channel
            .queue_declare(
                queue.name.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await;
        let Ok(declared) = declared else {
            continue; // deleted since it was listed
        };
        let mut state =
            QueueState { name: queue.name, messages: declared.message_count(), dead_letters: vec![] };
        let expected_count = expected.dead_letters.get(&state.name).copied().unwrap_or(0);
        if with_detail && state.is_dead_letter_queue() && state.messages != expected_count {
            state.dead_letters = peek(&channel, &state.name, state.messages.min(DEAD_LETTERS_SHOWN)).await?;
        }
        // Closing the channel hands back whatever `peek` read without acknowledging it.
        let _ = channel.close(200, "counted".into()).await;
        queues.push(state);
    }
    let _ = connection.close(200, "invariants read".into()).await;
    Ok(queues)
}

/// Reads up to `count` messages without acknowledging them; they go back when the channel closes.
async fn peek(channel: &lapin::Channel, queue: &str, count: u32) -> Result<Vec<DeadLetter>, Error> {
    let mut letters = Vec::new();
    for _ in 0..count {
        let got = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await
            .map_err(|e| broker_error("reading a dead letter", e))?;
        let Some(message) = got else { break };
        let headers = message.delivery.properties.headers().clone().unwrap_or_default();
        let header = |name: &str| match headers.inner().get(name) {
            Some(AMQPValue::LongString(text)) => Some(text.to_string()),
            Some(AMQPValue::ShortString(text)) => Some(text.to_string()),
            _ => None,
        };
        let event_type = serde_json::from_slice::<serde_json::Value>(&message.delivery.data)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
        letters.push(DeadLetter {
            routing_key: header("x-original-routing-key")
                .unwrap_or_else(|| message.delivery.routing_key.to_string()),
            event_type,
            reason: header("x-dead-letter-reason"),
        });
    }
    Ok(letters)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]
mod tests {
    use super::vhost_of;

    #[test]
    fn the_vhost_is_the_url_path_decoded() {
        assert_eq!(vhost_of("amqp://guest:guest@127.0.0.1:5672/t_1").unwrap(), "t_1");
        assert_eq!(vhost_of("amqp://guest:guest@127.0.0.1:5672/%2F").unwrap(), "/");
        assert_eq!(vhost_of("amqp://guest:guest@127.0.0.1:5672").unwrap(), "/");
    }
}

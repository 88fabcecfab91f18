#!/bin/sh
# Prepares a RabbitMQ vhost for the five services through the management API (curl only, so it
# runs from `make run`, a compose one-shot container or a Kubernetes Job):
#   * one broker user per service, password from RABBITMQ_<SERVICE>_PASSWORD
#     (RABBITMQ_ORDER_API_PASSWORD, RABBITMQ_INVENTORY_PASSWORD, RABBITMQ_PAYMENT_PASSWORD,
#     RABBITMQ_NOTIFIER_PASSWORD, RABBITMQ_WEBHOOK_DISPATCHER_PASSWORD; letters, digits, - and _);
#   * definitions.json: the exchanges, queues and bindings of the whole system (so an event
#     published before its consumer first ran has a queue to wait in), and each user's
#     permissions: its own queues, publishing only its own event types (topic permissions).
# Needs RABBITMQ_ADMIN_URL (http://host:15672), RABBITMQ_ADMIN_USER, RABBITMQ_ADMIN_PASSWORD;
# RABBITMQ_VHOST defaults to `/`. Safe to run again.
set -eu
dir=$(dirname "$0")
url=${RABBITMQ_ADMIN_URL:?set RABBITMQ_ADMIN_URL, e.g. http://127.0.0.1:15672}
admin="${RABBITMQ_ADMIN_USER:?set RABBITMQ_ADMIN_USER}:${RABBITMQ_ADMIN_PASSWORD:?set RABBITMQ_ADMIN_PASSWORD}"
vhost=${RABBITMQ_VHOST:-/}
api() { curl -fsS -u "$admin" -H 'content-type: application/json' "$@"; }

for service in order-api inventory payment notifier webhook-dispatcher; do
    var="RABBITMQ_$(printf %s "$service" | tr 'a-z-' 'A-Z_')_PASSWORD"
    eval "password=\${$var:-}"
    if [ -z "$password" ]; then echo "setup.sh: set $var" >&2; exit 1; fi
    case "$password" in
        *[!A-Za-z0-9_-]*) echo "setup.sh: $var may hold only letters, digits, - and _" >&2; exit 1 ;;
    esac
    if [ "${#password}" -lt 16 ]; then echo "setup.sh: $var needs at least 16 characters" >&2; exit 1; fi
    # No tags: no management UI, no policies; only AMQP with the permissions below.
    api -X PUT "$url/api/users/$service" -d "{\"password\":\"$password\",\"tags\":\"\"}" >/dev/null
done
# definitions.json is written for the vhost `/`; retarget it.
sed -e "s#\"vhost\": \"/\"#\"vhost\": \"$vhost\"#" -e "s#\"name\": \"/\"#\"name\": \"$vhost\"#" "$dir/definitions.json" \
    | api -X POST "$url/api/definitions" --data-binary @- >/dev/null
echo "RabbitMQ vhost '$vhost': service users and topology loaded"

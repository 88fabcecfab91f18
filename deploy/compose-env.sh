#!/usr/bin/env bash
# Writes the secrets docker-compose.yml requires into .env next to it: every `${VAR:?...}` the
# compose file names that neither .env nor the environment sets gets a random value (32 hex
# characters: 128 bits, safe inside URLs). Existing values are kept, so it is safe to re-run
# after the compose file gains a secret. .env is git-ignored and never copied into images.
set -euo pipefail
cd "$(dirname "$0")/.."
env_file="${ENV_FILE:-.env}"
touch "$env_file"
chmod 600 "$env_file"
random() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
added=()
# The token signing key (Ed25519, for order-api only) and its public JWK set (every service),
# generated together; `order-api jwt-keys` prints the same two lines.
if ! grep -qE '^JWT_SIGNING_KEY=' "$env_file" && [ -z "${JWT_SIGNING_KEY:-}" ]; then
    b64url() { base64 | tr '+/' '-_' | tr -d '=\n'; }
    pem="$(openssl genpkey -algorithm ed25519)"
    x="$(printf '%s\n' "$pem" | openssl pkey -pubout -outform DER | tail -c 32 | b64url)"
    kid="$(printf '{"crv":"Ed25519","kty":"OKP","x":"%s"}' "$x" | openssl dgst -sha256 -binary | b64url)"
    printf "JWT_SIGNING_KEY='%s'\n" "$(printf '%s' "$pem" | awk '{printf "%s\\n", $0}')" >>"$env_file"
    printf "JWT_PUBLIC_KEYS='{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"%s\",\"use\":\"sig\",\"alg\":\"EdDSA\"}]}'\n" "$x" "$kid" >>"$env_file"
    added+=(JWT_SIGNING_KEY JWT_PUBLIC_KEYS)
fi
for var in $(grep -vE '^\s*#' docker-compose.yml | grep -oE '\$\{[A-Z0-9_]+:\?' | sed -E 's/^\$\{//; s/:\?$//' | sort -u); do
    if grep -qE "^${var}=" "$env_file" || [ -n "${!var:-}" ]; then continue; fi
    case "$var" in
        # An AES-256 key: 32 random bytes in base64, as the dispatcher requires.
        WEBHOOK_SECRET_KEY) value="$(head -c 32 /dev/urandom | base64 | tr -d '\n')" ;;
        *) value="$(random)" ;;
    esac
    printf '%s=%s\n' "$var" "$value" >>"$env_file"
    added+=("$var")
done
if [ "${#added[@]}" -gt 0 ]; then
    echo "compose-env: generated ${added[*]} in $env_file"
else
    echo "compose-env: $env_file already sets every required secret"
fi

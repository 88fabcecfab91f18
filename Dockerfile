# syntax=docker/dockerfile:1
# One image per service, all from this file:
#   docker build --build-arg SERVICE=inventory -t orders/inventory .
# SERVICE is one of order-api, inventory, payment, notifier, webhook-dispatcher.
#
# The dependency layer is built from the manifests and lock file alone, with every workspace
# crate replaced by an empty stub. That layer depends neither on SERVICE nor on any source
# file, so it is built once and shared by the five images; editing code only re-runs the
# `build` stage. (cargo-chef does the same, but is not available offline in CI here.)

# Only the Cargo manifests of the workspace, whatever crates it has: this stage re-runs on any
# change, but its result changes only with a manifest, and BuildKit caches the COPY --from
# below by content.
FROM rust:1.95-bookworm AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name Cargo.toml ! -name Cargo.lock -delete && find . -type d -empty -delete

FROM rust:1.95-bookworm AS deps
WORKDIR /src
COPY --from=manifests /src ./
# Stubs for every target a manifest names, so cargo accepts the workspace.
RUN for dir in crates/* services/*; do \
        mkdir -p "$dir/src" && echo 'fn main() {}' > "$dir/src/main.rs" && : > "$dir/src/lib.rs"; \
    done \
    && mkdir -p crates/system-tests/tests/it && echo 'fn main() {}' > crates/system-tests/tests/it/main.rs \
    && cargo build --release --locked \
        -p order-api -p inventory -p payment -p notifier -p webhook-dispatcher \
    && rm -rf crates services

# The real sources of the workspace, then the one binary.
FROM deps AS build
COPY crates crates
COPY services services
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "--build-arg SERVICE=<service> is required" >&2; exit 1; }
# The stubs were compiled after the sources' mtimes, so make sure cargo sees them as changed.
RUN find crates services -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p "${SERVICE}" --bin "${SERVICE}" \
    && cp "target/release/${SERVICE}" /service

# Final image: glibc (the binary is built against bookworm), CA roots for TLS (SMTP, Stripe,
# webhooks) and busybox for the compose health check. Health checks: Kubernetes probes use
# httpGet and need nothing in the image; docker compose runs a command inside the container,
# and `busybox wget` (about 1 MB, no further packages, exits non-zero on any non-2xx answer)
# is the smallest tool that can do an HTTP GET here; curl would pull in libcurl and friends.
# No HEALTHCHECK instruction: the port is per service and the orchestrators own the checks.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates busybox \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /bin/busybox /usr/local/bin/wget \
    && useradd --system --uid 10001 --home-dir /app --create-home service
COPY --from=build /service /usr/local/bin/service
# Relative defaults (var/jwt, var/mail) resolve under /app, which the user owns.
WORKDIR /app
USER 10001:10001
# Deployments set HTTP_ADDR=0.0.0.0:<port> (each service has its own port; see
# docker-compose.yml and deploy/k8s); the code's default listens on loopback only.
ENV LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/service"]
CMD ["serve"]

# One image per service: docker build --build-arg SERVICE=inventory -t orders/inventory .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ARG SERVICE
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --bin "${SERVICE}" && cp "target/release/${SERVICE}" /service

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 service
COPY --from=build /service /usr/local/bin/service
USER 10001
ENV LOG_FORMAT=json HTTP_ADDR=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/service"]

# syntax=docker/dockerfile:1
# floodgate container image: one binary, `floodgate serve` by default.
#
#   docker build -t floodgate .
#   docker run --rm -p 8080:8080 floodgate                 # embedded mode
#   docker run --rm floodgate worker                       # workers only
#
# Builder: rdkafka builds a bundled librdkafka with make/g++ and needs zlib.
FROM rust:1-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends make g++ pkg-config zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target dir between builds (BuildKit); the
# binary is copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p floodgate \
    && install -D -m 0755 target/release/floodgate /out/floodgate

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 floodgate \
    && useradd --system --uid 10001 --gid floodgate --home-dir /app --shell /usr/sbin/nologin floodgate \
    && mkdir -p /app/data \
    && chown -R floodgate:floodgate /app
COPY --from=builder /out/floodgate /usr/local/bin/floodgate
# /app/data holds the SQLite file in embedded mode (no DATABASE_URL).
WORKDIR /app
USER 10001:10001
ENV FLOODGATE_LISTEN=0.0.0.0:8080 \
    FLOODGATE_LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8080
# No curl in the image: bash's /dev/tcp sends a plain HTTP/1.0 GET /health and
# the check passes when the status line says 200.  (`floodgate worker` does not
# listen on HTTP; deploy/docker-compose.yml overrides the check for workers.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200'"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["floodgate"]
CMD ["serve"]

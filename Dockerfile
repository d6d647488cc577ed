# syntax=docker/dockerfile:1
#
# bedrock-meter container image. The entrypoint is `bedrock-meter`; the default command
# is `serve`.
#
#   docker build -t bedrock-meter .
#   docker run --rm -p 127.0.0.1:8080:8080 -p 127.0.0.1:9464:9464 -e AWS_REGION=us-east-1 \
#     -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN bedrock-meter
#   docker run --rm -p 127.0.0.1:9465:9465 -e BEDROCK_METER_ADMIN_LISTEN=0.0.0.0:9465 \
#     bedrock-meter demo --admin-listen 0.0.0.0:9465        # no AWS account needed
#
# Override the rate card by mounting a file over /etc/bedrock-meter/rates/bedrock.toml
# (or point BEDROCK_METER_RATES elsewhere).
#
# Builds with the classic builder and with BuildKit alike (no BuildKit-only syntax), so
# docker-compose v1 can build it.

# The Rust toolchain image. "1" follows the latest stable release; pin a release for
# reproducible builds, e.g. --build-arg RUST_VERSION=1.95. The crate needs 1.85 or later
# (edition 2024).
ARG RUST_VERSION=1

############################ build ############################
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build

# Build the dependency graph alone first, against a placeholder main, so this
# layer stays cached until Cargo.toml or Cargo.lock change. Editing src/ then
# only recompiles the crate itself.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && cargo build --release --locked \
 && rm -rf src

COPY src/ src/
# The rate card sits next to the sources in case the crate embeds it (include_str!).
COPY rates/ rates/
# COPY keeps the files' original mtimes, which can be older than the placeholder
# build above; touch them so cargo rebuilds the real crate instead of shipping
# the placeholder binary.
RUN find src -name '*.rs' -exec touch {} + \
 && cargo build --release --locked \
 && install -m 0755 target/release/bedrock-meter /usr/local/bin/bedrock-meter

############################ runtime ############################
# Same Debian release as the builder, so the binary's glibc matches.
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="bedrock-meter" \
      org.opencontainers.image.description="Metering proxy for Amazon Bedrock Runtime: token usage, cost and Prometheus metrics"

# ca-certificates: the AWS credential chain (STS, SSO, web identity) uses the
# system trust store. Nothing else is needed: rustls needs no OpenSSL, and the
# health check below uses bash (always present) instead of curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Fixed numeric ids so orchestrators can enforce runAsNonRoot.
RUN groupadd --system --gid 10001 meter \
 && useradd --system --uid 10001 --gid meter --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin meter

COPY --from=builder /usr/local/bin/bedrock-meter /usr/local/bin/bedrock-meter
COPY rates/ /etc/bedrock-meter/rates/

# Listen on all interfaces: inside a container 127.0.0.1 is unreachable from
# outside. Open mode on a non-loopback address must be acknowledged with
# BEDROCK_METER_ALLOW_OPEN; publish the port only where clients should reach it.
ENV BEDROCK_METER_RATES=/etc/bedrock-meter/rates/bedrock.toml \
    BEDROCK_METER_LISTEN=0.0.0.0:8080 \
    BEDROCK_METER_ADMIN_LISTEN=0.0.0.0:9464 \
    BEDROCK_METER_ALLOW_OPEN=true

USER 10001:10001
EXPOSE 8080 9464

# GET /healthz on the admin port through bash's /dev/tcp, so the image needs no
# curl. The port follows BEDROCK_METER_ADMIN_LISTEN (default 9464); the check
# assumes the admin listener is reachable on 127.0.0.1 (true for 0.0.0.0 / [::]).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "port=\"${BEDROCK_METER_ADMIN_LISTEN##*:}\"; exec 3<>\"/dev/tcp/127.0.0.1/${port:-9464}\" && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["bedrock-meter"]
CMD ["serve"]

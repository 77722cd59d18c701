# Multi-stage build: a release binary on a small Debian runtime, run as a non-root user.
#   docker build -t smart-meter .
#   docker run --rm --device /dev/ttyUSB0 -v ./config:/etc/smart-meter:ro -e SMART_METER_ENV=evn smart-meter
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates crates
COPY tests tests
RUN cargo build --release --locked -p smart-meter \
 && strip target/release/smart-meter

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --gid dialout --home-dir /var/lib/smart-meter --create-home smart-meter
COPY --from=build /src/target/release/smart-meter /usr/local/bin/smart-meter
COPY config /etc/smart-meter
ENV SMART_METER_CONFIG=/etc/smart-meter \
    SMART_METER_ENV=demo
USER smart-meter
WORKDIR /var/lib/smart-meter
# The status endpoint, when a profile enables it with status = { listen = "0.0.0.0:9100" }.
EXPOSE 9100
ENTRYPOINT ["/usr/local/bin/smart-meter"]
CMD ["run"]

# One multi-stage image recipe for every service: `docker build --build-arg SERVICE=identity .`
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ARG SERVICE=identity
RUN cargo build --release --locked -p "${SERVICE}" \
 && cp "target/release/${SERVICE}" /service

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 koupang
COPY --from=build /service /usr/local/bin/service
USER koupang
ENTRYPOINT ["/usr/local/bin/service"]

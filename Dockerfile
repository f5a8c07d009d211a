# The remediate image: the tool as entrypoint, run as a non-root user, with a shell for scripts
# such as samples/k8s/cronjob.yaml. Build: docker build -t remediate . (or podman/buildah).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The production tool alone: no simulated tenant in the image.
RUN cargo build --release --locked --no-default-features && strip target/release/remediate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/remediate --create-home remediate
COPY --from=build /src/target/release/remediate /usr/local/bin/remediate
USER 10001
WORKDIR /var/lib/remediate
ENV XDG_CACHE_HOME=/var/lib/remediate/.cache
ENTRYPOINT ["remediate"]
CMD ["--help"]

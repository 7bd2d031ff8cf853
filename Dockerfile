# The `salient` CLI as a container image: the image deploy/kubernetes/ runs (`salient:latest`).
#
#   docker build -t salient:latest .
#   docker run --rm -v /data:/data salient:latest build --weights /data/models/imagenet_l2_3_0.pt ...
#
# Only the command-line program: batch work (build, merge, eval, discover) needs nothing else.
# For `salient site`, give the built web app with --app (or SALIENT_APP_DIR), or run
# `make install` on a machine with the web toolchain.
FROM rust:1.95-slim-trixie AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p salient \
 && install -D target/release/salient /out/salient

FROM debian:trixie-slim
RUN useradd --system --home-dir /work salient \
 && mkdir -p /work && chown salient /work
COPY --from=build /out/salient /usr/local/bin/salient
USER salient
WORKDIR /work
ENTRYPOINT ["salient"]
CMD ["--help"]

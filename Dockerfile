# syntax=docker/dockerfile:1
# inferd in a container (docs/operating.md, "Run it in a container").
#
#   docker build -t inferd .
#   docker run -p 8080:8080 -v inferd-state:/var/lib/inferd inferd
#
# The build stage sets itself up with the project's own script (its test
# tools too: the stage is thrown away) and installs
# into /stage; the runtime stage has only the runtime libraries, the
# install tree (the binary, libinferd, the plugins, ONNX Runtime, the
# default models, the Python SDK) and Python for portable plugins.
# tests/integration/test_docker.sh checks the runtime stage's packages
# against what the installed files need.

FROM debian:12-slim AS build
WORKDIR /src
COPY . .
RUN ./scripts/setup.sh \
 && cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr/local \
 && cmake --build /build -j"$(nproc)" \
 && DESTDIR=/stage cmake --install /build

FROM debian:12-slim
# RUNTIME-PACKAGES: what the installed files need (test_docker.sh), curl for the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libjansson4 libturbojpeg0 libspng0 zlib1g libmicrohttpd12 libgnutls30 libcurl4 \
      libssl3 libzip4 libsqlite3-0 libmosquitto1 libavformat59 libavcodec59 libswscale6 \
      libavutil57 python3 python3-numpy curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /stage/ /
RUN ldconfig \
 && useradd --system --user-group --home-dir /var/lib/inferd --create-home inferd
USER inferd
ENV INFERD_LISTEN=0.0.0.0:8080 \
    INFERD_STATE_DIR=/var/lib/inferd
VOLUME /var/lib/inferd
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD curl -fsS http://127.0.0.1:8080/ready >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/inferd", "serve"]

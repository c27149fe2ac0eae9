# minifocus container: a drop-in for docker-jitsi-meet's `jicofo` service.
# Build: docker build -t minifocus .   (runs the same command as `make build`)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/minifocus /usr/local/bin/minifocus
# /config/config.toml is read when present; the environment alone suffices.
VOLUME /config
EXPOSE 8888
ENV MINIFOCUS_HTTP_LISTEN=0.0.0.0:8888
# The operator endpoints (status page, /debug, /move-endpoints, /pin) stay on
# the container's loopback, 127.0.0.1:8889; see README.md to reach them.
USER nonroot:nonroot
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/minifocus", "-healthcheck"]
ENTRYPOINT ["/usr/local/bin/minifocus"]

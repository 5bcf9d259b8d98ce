# Multi-stage build: a static strata binary in an otherwise empty image, run
# as an unprivileged numeric user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/strata ./cmd/strata \
 && mkdir -p /out/data /out/tmp

FROM scratch
COPY --from=build /out/strata /usr/local/bin/strata
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/tmp /tmp
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# 9000: S3 API; 9001: admin (/metrics, /healthz); 9002: inter-node RPC
# (cluster mode: add --meta etcd://… --node-id … --zone … --advertise-rpc …)
EXPOSE 9000 9001 9002
ENTRYPOINT ["/usr/local/bin/strata", "server", "--data-dir", "/data/strata-data", "--s3-addr", "0.0.0.0:9000", "--admin-addr", "0.0.0.0:9001", "--rpc-addr", "0.0.0.0:9002"]

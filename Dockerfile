# Skiff as a container: the one binary on a small base. PostgreSQL is not
# included; set SKIFF_DATABASE_URL (see docker-compose.yml).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The release (docker build --build-arg VERSION=v1.4.0 .): `skiff version`
# and the start-up log line show it; without it, the commit the build saw.
ARG VERSION=
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w ${VERSION:+-X main.version=$VERSION}" -o /out/skiff ./cmd/skiff

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/skiff --create-home skiff
COPY --from=build /out/skiff /usr/local/bin/skiff
USER skiff
WORKDIR /var/lib/skiff
ENV SKIFF_DATA_DIR=/var/lib/skiff \
    SKIFF_HTTP_ADDR=0.0.0.0:8080 \
    SKIFF_SFTP_ADDR=0.0.0.0:2022 \
    SKIFF_LOG_FORMAT=json
EXPOSE 8080 2022
ENTRYPOINT ["skiff"]
CMD ["serve"]

# productd: one binary in a small Debian image.
#
#   docker build -t productd .        (or: docker compose up --build)
#
# The image worker decodes through libvips with cgo: the build stage needs
# its headers (libvips-dev), the runtime its shared library (libvips42), both
# from the same Debian release (bookworm: libvips 8.14).
#
# Build stage: the module download is its own layer, so editing code does
# not download dependencies again.
FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvips-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# No .git in the context (.dockerignore): do not try to stamp VCS info.
ENV GOFLAGS=-buildvcs=false
RUN CGO_ENABLED=1 go build -trimpath -o /productd ./cmd/productd

# Runtime: debian-slim rather than distroless because the compose health
# check needs curl and the binary needs libvips; ca-certificates because the
# image worker fetches originals over HTTPS.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libvips42 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /productd /productd
# Unprivileged, the same uid distroless' "nonroot" uses.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/productd"]
CMD ["all"]

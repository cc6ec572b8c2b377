# wasm-policyd container image: built with Node 24 on Debian, run on distroless Node 24 as non-root.
#   docker build -t wasm-policyd .
# No insecure default: on 0.0.0.0 the daemon refuses to start without TLS (POLICYD_TLS_CERT/KEY) and
# credentials (POLICYD_AUTH_ADMIN_TOKENS, POLICYD_AUTH_EVALUATE_TOKENS or mTLS). To try it locally:
#   docker run --rm -p 127.0.0.1:50051:50051 -e POLICYD_TLS_INSECURE=true \
#     -e POLICYD_AUTH_ADMIN_TOKENS=$(openssl rand -hex 20) wasm-policyd
FROM node:24-bookworm-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN make build examples && npm prune --omit=dev

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/dist/clients ./dist/clients
COPY --from=build /src/examples/policies ./examples/policies
# gRPC on all interfaces needs TLS and credentials (or explicit opt-outs); the sidecar manifests use a
# unix socket instead. Admin (metrics, probes) on 9090.
ENV POLICYD_LISTEN=0.0.0.0:50051 \
    POLICYD_ADMIN_LISTEN=0.0.0.0:9090 \
    POLICYD_FILE_ROOT=/policies
EXPOSE 50051 9090
USER nonroot
# The main thread's young generation as the workers' (docs/design-notes.md, "Each isolate's young generation is sized").
ENTRYPOINT ["/nodejs/bin/node", "--disable-warning=ExperimentalWarning", "--max-semi-space-size=16", "--external-memory-accounted-in-global-limit", "--expose-gc", "dist/src/cli/main.js"]
CMD ["serve"]

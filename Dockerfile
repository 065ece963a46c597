# Tern MQTT broker image: `docker build -t tern .`, then for example
#   docker run -p 1883:1883 -p 9464:9464 tern --redis redis://redis:6379 --node-name tern1
# Arguments after the image name are the CLI's flags (`tern --help`); TERN_* variables work too
# (docs/configuration.md). docker-compose.yml runs three of these behind HAProxy.

# ---- build: install everything, compile the workspaces, then drop the dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
# The manifests first, so the dependency layer is reused while only sources change. npm ci needs
# every workspace's package.json (benchmarks is one), not its sources.
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/listener/package.json packages/listener/
COPY packages/router/package.json packages/router/
COPY packages/session/package.json packages/session/
COPY packages/cluster/package.json packages/cluster/
COPY packages/broker/package.json packages/broker/
COPY packages/testkit/package.json packages/testkit/
COPY benchmarks/package.json benchmarks/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY packages packages
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- run: the compiled packages and production dependencies only, as a non-root user ----
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    TERN_HOST=0.0.0.0 \
    TERN_METRICS_HOST=0.0.0.0 \
    TERN_METRICS_PORT=9464
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json /app/package-lock.json ./
COPY --from=build --chown=node:node /app/node_modules node_modules
COPY --from=build --chown=node:node /app/packages packages
USER node
EXPOSE 1883 9464
# /health answers 200 while the process runs; the image has no curl, so Node asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.TERN_METRICS_PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself: a graceful shutdown (docs/operations.md).
ENTRYPOINT ["node", "packages/broker/dist/cli.js"]

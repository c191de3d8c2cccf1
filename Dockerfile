# One image per service, from one Dockerfile: `docker build --build-arg SERVICE=cart .`
# (compose.yaml does this for every service). Node 24 slim, compiled once, production
# dependencies only in the final stage, non-root, telemetry preloaded.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# ---- build: all dependencies, compile every runtime workspace once ----------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime workspaces: the shared packages every service runs on, and the services.
COPY packages/contract/package.json packages/contract/
COPY packages/telemetry/package.json packages/telemetry/
COPY packages/kit/package.json packages/kit/
COPY services/ad/package.json services/ad/
COPY services/cart/package.json services/cart/
COPY services/checkout/package.json services/checkout/
COPY services/currency/package.json services/currency/
COPY services/frontend/package.json services/frontend/
COPY services/load-generator/package.json services/load-generator/
COPY services/payment/package.json services/payment/
COPY services/product-catalog/package.json services/product-catalog/
COPY services/recommendation/package.json services/recommendation/
COPY services/shipping/package.json services/shipping/
# Developer-tool workspaces: only their manifests, so that the lockfile matches; their
# code never enters an image (test/architecture.test.ts keeps this list whole).
COPY packages/coralogix/package.json packages/coralogix/
COPY packages/dashboards/package.json packages/dashboards/
COPY packages/lab/package.json packages/lab/
COPY packages/scenario-cli/package.json packages/scenario-cli/
COPY packages/traces/package.json packages/traces/
# Install scripts stay off: the image's own Node is the runtime (the `node` dev
# dependency only pins Node 24 for developers).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.base.json ./
COPY packages/contract ./packages/contract
COPY packages/telemetry ./packages/telemetry
COPY packages/kit ./packages/kit
COPY services ./services
RUN npx tsc -b packages/contract packages/telemetry packages/kit services/*/ \
 && mkdir -p /out \
 && for dir in packages/contract/ packages/telemetry/ packages/kit/ services/*/; do \
      mkdir -p "/out/$dir" && cp -r "$dir/package.json" "$dir/dist" "/out/$dir"; \
    done \
 && cp -r services/load-generator/scenarios /out/services/load-generator/

# ---- prod-deps: production dependencies of every workspace ------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /out/ ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && find packages services -mindepth 2 -maxdepth 2 -name dist -type d -exec rm -rf {} +

# ---- runtime: one service ------------------------------------------------------------
# Everything up to `ARG SERVICE` is the same for every service, so the ten images share
# those layers: one copy on disk, one upload to a registry, one pull on a node.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# The runtime layout (test/production-install.test.ts lays it out the same way): the
# root manifests and production node_modules (with the workspaces' own), and each
# workspace's package.json and compiled dist, plus the load generator's scenarios.
COPY --from=prod-deps --chown=node:node /app ./
COPY --from=build --chown=node:node /out/ ./
USER node
ARG SERVICE
RUN test -n "$SERVICE" || (echo "build with --build-arg SERVICE=<name>" >&2; exit 1)
ENV SERVICE=${SERVICE}
WORKDIR /app/services/${SERVICE}
# The V8 flags are the lab's too (SERVICE_NODE_FLAGS in packages/lab/src/lab.ts).
CMD ["node", "--max-semi-space-size=2", "--require", "@bfl/telemetry/preload", "dist/main.js"]

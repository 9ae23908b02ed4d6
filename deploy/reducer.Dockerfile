# syntax=docker/dockerfile:1
#
# reducer: the cluster service. Intake for collectors on 8000, Prometheus /metrics and the JSON
# /api on 7010, the SQLite store under /var/lib/ebpf-net. Runs as an unprivileged user (10001).
#
# Build from the repository root (the build context must be the whole workspace):
#   docker build -f deploy/reducer.Dockerfile -t ebpf-net/reducer:dev .
# deploy/reducer.Dockerfile.dockerignore (read by BuildKit beside this file) keeps node_modules,
# dist and bpf/.output out of the context.

ARG NODE_VERSION=20
# pnpm 10, as the workspace's packageManager field pins it; installed with npm (not corepack).
ARG PNPM_VERSION=10.34.9

# ---- build: TypeScript and a pruned production copy of the reducer ---------------------------
# node:20-bookworm has python3, make and g++: better-sqlite3 12.11.1 is compiled from source here
# (about 80 s), against this Node's ABI, which the runtime stage shares.
FROM node:${NODE_VERSION}-bookworm AS build
ARG PNPM_VERSION
RUN npm install -g pnpm@${PNPM_VERSION}

WORKDIR /src
# Dependencies first, from the lockfile alone, so this layer is reused until the lockfile changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch --store-dir /pnpm-store

COPY . .
# Only the reducer and the workspace packages it depends on. The root package.json lists
# better-sqlite3 in pnpm.onlyBuiltDependencies, so its native addon is built here.
RUN pnpm install --offline --frozen-lockfile --store-dir /pnpm-store --filter '@ebpf-net/reducer...'
# tsc -b follows the project references: protocol, common, reducer.
RUN pnpm exec tsc -b packages/reducer
# A self-contained copy with production dependencies only (--legacy: the workspace does not set
# inject-workspace-packages, which pnpm 10's default deploy requires). The built better-sqlite3
# comes from the store's side-effects cache; the last line proves the addon loads.
RUN pnpm --filter @ebpf-net/reducer deploy --prod --legacy --offline --store-dir /pnpm-store /out \
 && rm -rf /out/src /out/test /out/dist/test /out/tsconfig.json \
 && node -e "new (require('/out/node_modules/better-sqlite3'))(':memory:').close()" \
 && node /out/dist/src/cli.js --help > /dev/null

# ---- runtime ----------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# A fixed numeric uid/gid, so Kubernetes' runAsUser/fsGroup and volume ownership can match it.
RUN groupadd --system --gid 10001 ebpf-net \
 && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/ebpf-net --no-create-home \
      --shell /usr/sbin/nologin ebpf-net \
 && mkdir -p /var/lib/ebpf-net \
 && chown 10001:10001 /var/lib/ebpf-net

COPY --from=build /out /opt/ebpf-net/reducer

# The SQLite store lives in EBPF_NET_DATA_DIR (mount a volume there). Logs: readable lines on
# stderr (--log-console) and no JSON file (--no-log-file): the default file,
# /var/log/ebpf_net_reducer.log, is not writable by this user. For JSON logs, set
# EBPF_NET_LOG_FILE_PATH to a file on a volume and drop --no-log-file.
ENV NODE_ENV=production \
    EBPF_NET_DATA_DIR=/var/lib/ebpf-net
EXPOSE 8000 7010
USER 10001:10001
WORKDIR /var/lib/ebpf-net
ENTRYPOINT ["node", "/opt/ebpf-net/reducer/dist/src/cli.js"]
CMD ["--log-console", "--no-log-file"]

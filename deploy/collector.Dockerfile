# syntax=docker/dockerfile:1
#
# kernel-collector: the per-node eBPF daemon. Runs as root, privileged, in the host's PID and
# network namespaces (see docker-compose.yml and the Helm chart for the flags it needs).
#
# Build from the repository root (the build context must be the whole workspace):
#   docker build -f deploy/collector.Dockerfile -t ebpf-net/kernel-collector:dev .
# deploy/collector.Dockerfile.dockerignore (read by BuildKit beside this file) keeps
# node_modules, dist and bpf/.output out of the context, so nothing built on the host leaks in.
#
# The BPF object is CO-RE: vmlinux.h is generated from the BTF of the machine that builds the
# image (/sys/kernel/btf/vmlinux, readable inside BuildKit's RUN steps on a Linux builder) and the
# object relocates itself on each node's kernel at load time. On a builder without BTF, put a
# vmlinux BTF file in the context and pass --build-arg VMLINUX_BTF=/src/<that file>.
# bpf/build.sh targets x86 (-D__TARGET_ARCH_x86): the image is linux/amd64 only.

ARG NODE_VERSION=20
# pnpm 10, as the workspace's packageManager field pins it. corepack is not used: its signature
# check rejects the registry's pnpm on some machines, so pnpm comes from npm.
ARG PNPM_VERSION=10.34.9

# ---- build: TypeScript, the BPF object, and a pruned production copy of the collector ----------
FROM node:${NODE_VERSION}-bookworm AS build
ARG PNPM_VERSION
ARG VMLINUX_BTF=/sys/kernel/btf/vmlinux

# The BPF toolchain (Debian 12): clang-16 and llvm-strip-16 compile and strip, bpftool dumps
# vmlinux.h and links the per-concern objects, libbpf-dev has bpf_helpers.h.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clang-16 llvm-16 libbpf-dev bpftool \
 && rm -rf /var/lib/apt/lists/*
RUN npm install -g pnpm@${PNPM_VERSION}

WORKDIR /src
# Dependencies first, from the lockfile alone, so this layer is reused until the lockfile changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch --store-dir /pnpm-store

COPY . .
# Only the collector and the workspace packages it depends on (not the reducer's native build).
RUN pnpm install --offline --frozen-lockfile --store-dir /pnpm-store --filter '@ebpf-net/collector...'
# tsc -b follows the project references: protocol, common, collector.
RUN pnpm exec tsc -b packages/collector
RUN VMLINUX_BTF="${VMLINUX_BTF}" bash bpf/build.sh
# A self-contained copy of the collector with its production dependencies only (--legacy: the
# workspace does not set inject-workspace-packages, which pnpm 10's default deploy requires).
RUN pnpm --filter @ebpf-net/collector deploy --prod --legacy --offline --store-dir /pnpm-store /out \
 && rm -rf /out/src /out/test /out/dist/test /out/tsconfig.json \
 && node /out/dist/src/cli.js --help > /dev/null

# ---- runtime ----------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# libbpf1: the collector opens libbpf.so.1 through ffi-rs at run time.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libbpf1 \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /out /opt/ebpf-net/collector
COPY --from=build /src/bpf/.output/ebpf_net.bpf.o /opt/ebpf-net/bpf/ebpf_net.bpf.o
COPY --from=build /src/bpf/.output/ebpf_net.typed.bpf.o /opt/ebpf-net/bpf/ebpf_net.typed.bpf.o

# EBPF_NET_BPF_OBJECT: the object's default path is relative to a source checkout, which the
# image does not have. EBPF_NET_HOST_DIR: where the host's /proc, /sys/fs/cgroup and /etc are
# mounted. The JSON log goes to a file in the container (readable with `docker exec` or
# `kubectl exec`); the default command adds readable logs on stderr for `docker logs`.
ENV NODE_ENV=production \
    EBPF_NET_BPF_OBJECT=/opt/ebpf-net/bpf/ebpf_net.bpf.o \
    EBPF_NET_HOST_DIR=/hostfs \
    EBPF_NET_LOG_FILE_PATH=/var/log/ebpf-net/collector.log

# Loading BPF programs, attaching them to cgroups and mounting bpffs/tracefs need root
# (and a privileged container): the collector deliberately runs as root.
# hadolint ignore=DL3002
USER root
WORKDIR /opt/ebpf-net/collector
ENTRYPOINT ["node", "/opt/ebpf-net/collector/dist/src/cli.js"]
CMD ["--log-console"]

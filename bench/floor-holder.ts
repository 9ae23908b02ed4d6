// bench/floor-holder: holds the floor's programs (floor-object.ts) attached until SIGTERM or
// SIGINT, for bench/collector-overhead --floor: the throughput the workloads lose to programs on
// the collector's hooks that do nothing. Cgroup programs attach to the cgroup v2 root.
//
//   node bench/dist/floor-holder.js <floor.bpf.o>     (root; prints "attached" once they all are)

import { BpfObject } from '@ebpf-net/collector/bpf';

const path = process.argv[2];
if (!path) {
  console.error('usage: node bench/dist/floor-holder.js <floor.bpf.o>');
  process.exit(2);
}
const object = await BpfObject.open(path);
try {
  await object.load();
  const failed = (await object.attach()).filter((r) => r.status !== 'attached');
  if (failed.length > 0) throw new Error(`not attached: ${failed.map((r) => `${r.name} (${r.status}: ${r.reason})`).join(', ')}`);
} catch (error) {
  object.close();
  console.error(`bench/floor-holder: ${path}: ${(error as Error).message}`);
  process.exit(1);
}
console.log('attached');
const keepAlive = setInterval(() => {}, 1 << 30);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    clearInterval(keepAlive);
    object.close();
  });
}

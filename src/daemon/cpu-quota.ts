import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * Worker threads to start: the container's CPU quota (cgroup v2 cpu.max, or v1 cfs files) rounded
 * up, never more than the CPUs Node sees — a pod limited to 2 CPUs on a 64-core node gets 2.
 */
export function defaultThreads(): number {
  const cpus = availableParallelism();
  return Math.max(1, Math.min(cpus, cgroupQuota() ?? cpus));
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function cgroupQuota(root = '/sys/fs/cgroup'): number | undefined {
  const v2 = read(`${root}/cpu.max`);
  if (v2) {
    const [quota, period] = v2.split(/\s+/);
    return quota === 'max' || !period ? undefined : Math.ceil(Number(quota) / Number(period));
  }
  const quota = Number(read(`${root}/cpu/cpu.cfs_quota_us`));
  const period = Number(read(`${root}/cpu/cpu.cfs_period_us`));
  return quota > 0 && period > 0 ? Math.ceil(quota / period) : undefined;
}

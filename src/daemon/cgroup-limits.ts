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

/**
 * The container's memory limit in bytes (cgroup v2 memory.max, or v1 memory.limit_in_bytes), or
 * undefined when there is none (v1 writes a page-rounded 2^63 for "unlimited").
 */
export function cgroupMemoryLimit(root = '/sys/fs/cgroup'): number | undefined {
  const v2 = read(`${root}/memory.max`);
  if (v2) return v2 === 'max' ? undefined : Number(v2);
  const v1 = Number(read(`${root}/memory/memory.limit_in_bytes`));
  return v1 > 0 && v1 < 2 ** 60 ? v1 : undefined;
}

/**
 * Refuses a configuration whose guests could together take more memory than the budget: every
 * worker may run a guest at the linear-memory cap at the same time. The default budget is 75 % of
 * the container's limit (the daemon itself needs the rest); with no limit and no budget, no check.
 */
export function checkGuestMemory(threads: number, perGuestMb: number, budgetMb: number, limitBytes = cgroupMemoryLimit()): void {
  const budget = budgetMb > 0 ? budgetMb : limitBytes === undefined ? undefined : Math.floor((limitBytes * 0.75) / 2 ** 20);
  if (budget === undefined || threads * perGuestMb <= budget) return;
  throw new Error(
    `${threads} workers × memoryLimitMb ${perGuestMb} MiB of guest memory can reach ${threads * perGuestMb} MiB, above the budget of ${budget} MiB ` +
      `(${budgetMb > 0 ? 'maxGuestMemoryMb' : "75 % of the container's memory limit"}): lower memoryLimitMb or threads, or raise the limit`,
  );
}

import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * A server process's CPU, in all and thread by thread, and how long its main thread waited for a core,
 * from /proc (Linux). On two shared cores the daemon's event loop competes with its own pool workers and
 * V8's helper threads for a core, and that — not its own work alone — is what held R1 down
 * (bench/RESULTS.md, "2026-11-27 (evening)"); every row of bench/NATIVE.md shows it.
 */

/** What a thread does, from its name: Node names its worker threads, V8 its platform threads. */
type Role = 'main' | 'workers' | 'helpers' | 'other';

export interface ThreadSample {
  /** CPU seconds (user + system) each role's threads have used so far. */
  cpu: Record<Role, number>;
  /** Seconds the main thread has spent runnable but not running (/proc schedstat); NaN where the kernel does not keep it. */
  mainWaiting: number;
  /** When it was taken, in seconds. */
  at: number;
}

export interface ThreadShares {
  /** CPU ms per request: the main thread (event loop), the pool workers, V8's helper threads (GC, compilation). */
  mainMs: number;
  workersMs: number;
  helpersMs: number;
  /** Share of the time between the samples the main thread was runnable but had no core. */
  mainWaiting: number;
}

const USER_HZ = 100; // clock ticks per second in /proc/<pid>/stat

/** A /proc stat line's name (the process's or thread's) and CPU seconds (user + system). */
function parseStat(stat: string): { name: string; cpu: number } {
  // "id (name) state ppid …": the name may hold spaces and parentheses, so split at the last ')'.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return { name: stat.slice(stat.indexOf('(') + 1, close), cpu: (Number(fields[11]) + Number(fields[12])) / USER_HZ };
}

/** CPU seconds (user + system) a process has used so far, all its threads, ended ones included. */
export function cpuSeconds(pid: number): number {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpu;
}

function roleOf(pid: number, tid: string, name: string): Role {
  if (tid === String(pid)) return 'main';
  if (name === 'WorkerThread') return 'workers';
  if (name === 'V8Worker') return 'helpers';
  return 'other';
}

export function sampleThreads(pid: number): ThreadSample {
  const cpu: Record<Role, number> = { main: 0, workers: 0, helpers: 0, other: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended since the directory was read
    }
    const { name, cpu: used } = parseStat(stat);
    cpu[roleOf(pid, tid, name)] += used;
  }
  let mainWaiting = Number.NaN;
  try {
    mainWaiting = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    // a kernel without schedstat
  }
  return { cpu, mainWaiting, at: performance.now() / 1000 };
}

export function threadShares(before: ThreadSample, after: ThreadSample, requests: number): ThreadShares {
  const ms = (role: Role) => ((after.cpu[role] - before.cpu[role]) / requests) * 1000;
  return {
    mainMs: ms('main'),
    workersMs: ms('workers'),
    helpersMs: ms('helpers'),
    mainWaiting: (after.mainWaiting - before.mainWaiting) / (after.at - before.at),
  };
}

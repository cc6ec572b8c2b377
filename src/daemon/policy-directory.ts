import { statSync, watch, type FSWatcher } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import type { PolicyEngine } from '../engine/policy-engine.js';
import { errorMessage } from '../errors/policyd-error.js';

interface Loaded {
  name: string;
  digest: string;
}

function looksLikePolicy(text: string): boolean {
  try {
    const doc = parseYaml(text) as { kind?: unknown } | null;
    return doc !== null && typeof doc === 'object' && doc.kind === 'Policy';
  } catch {
    return true; // let the loader say what is wrong with it
  }
}

/**
 * The policies of a set of files and directories, kept loaded: every `*.yaml`/`*.yml` with
 * `kind: Policy` below them is loaded at start, and on any change the set is synced — changed
 * documents or scripts reloaded, deleted ones unloaded. A version that fails to load is reported and
 * the last good one keeps serving; evaluations in flight finish on the version they started with.
 */
export class PolicyDirectory {
  readonly #loaded = new Map<string, Loaded>();
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> = Promise.resolve();

  constructor(
    private readonly engine: PolicyEngine,
    private readonly roots: string[],
    private readonly logger: Logger,
  ) {}

  async #files(): Promise<string[]> {
    const files: string[] = [];
    for (const root of this.roots.map((r) => resolve(r))) {
      if (!(await stat(root)).isDirectory()) {
        files.push(root);
        continue;
      }
      for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
        if (entry.isFile() && /\.ya?ml$/.test(entry.name)) files.push(join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name));
      }
    }
    return files.sort();
  }

  /** Loads (or reloads) one document; returns the error instead of throwing. */
  async #load(file: string): Promise<Error | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      return err as Error;
    }
    if (!looksLikePolicy(bytes.toString('utf8'))) return undefined;
    try {
      const { policy, alreadyLoaded } = await this.engine.load({ type: 'document', bytes, baseDir: dirname(file), label: file });
      const previous = this.#loaded.get(file);
      if (previous && previous.name !== policy.name && this.engine.registry.get(previous.name)?.digest === previous.digest) {
        this.engine.registry.remove(previous.name);
      }
      this.#loaded.set(file, { name: policy.name, digest: policy.digest });
      if (!alreadyLoaded) this.logger.info({ policy: policy.name, digest: policy.digest, file }, 'policy loaded');
      return undefined;
    } catch (err) {
      return err as Error;
    }
  }

  /** The start-up load: every policy must load, or the daemon does not start. */
  async loadAll(): Promise<void> {
    const failures: string[] = [];
    for (const file of await this.#files()) {
      const err = await this.#load(file);
      if (err) failures.push(`${file}: ${errorMessage(err)}`);
    }
    if (failures.length > 0) throw new Error(`policies failed to load:\n  ${failures.join('\n  ')}`);
  }

  /** One pass over the files: new and changed documents loaded, vanished ones unloaded. */
  sync(): Promise<void> {
    this.#syncing = this.#syncing.then(async () => {
      const files = await this.#files().catch(() => [] as string[]);
      for (const file of files) {
        const err = await this.#load(file);
        if (err) {
          const kept = this.#loaded.get(file);
          this.logger.error({ file, error: errorMessage(err), kept: kept?.digest ?? null }, 'policy reload failed; the last good version keeps serving');
        }
      }
      for (const [file, loaded] of this.#loaded) {
        if (files.includes(file)) continue;
        this.#loaded.delete(file);
        if (this.engine.registry.get(loaded.name)?.digest === loaded.digest) {
          this.engine.registry.remove(loaded.name);
          this.logger.info({ policy: loaded.name, digest: loaded.digest, file }, 'policy unloaded: its file is gone');
        }
      }
    });
    return this.#syncing;
  }

  /** Re-syncs shortly after the files change (editors and ConfigMap updates write in bursts). */
  watch(debounceMs = 200): void {
    for (const root of this.roots) {
      // A single file is watched through its directory: editors and ConfigMaps replace files by rename.
      const target = statSync(resolve(root)).isDirectory() ? resolve(root) : dirname(resolve(root));
      const watcher = watch(target, { recursive: true }, () => {
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => void this.sync(), debounceMs);
      });
      watcher.on('error', (err) => this.logger.error({ root: target, error: errorMessage(err) }, 'cannot watch policies'));
      this.#watchers.push(watcher);
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    for (const w of this.#watchers) w.close();
  }
}

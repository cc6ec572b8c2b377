import { statSync, watch, type FSWatcher } from 'node:fs';
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { PolicyEngine } from '../engine/policy-engine.js';
import { errorMessage } from '../errors/policyd-error.js';

interface Loaded {
  name: string;
  digest: string;
}

/**
 * A top-level `kind: Policy` (YAML) or `"kind": "Policy"` (JSON): decided without parsing, since a
 * watched directory may hold large YAML files of other kinds and parsing belongs off the main thread.
 */
function looksLikePolicy(text: string): boolean {
  return /^kind:\s*["']?Policy["']?\s*(#.*)?$/m.test(text) || /"kind"\s*:\s*"Policy"/.test(text);
}

/**
 * The policies of a set of files and directories, kept loaded: every `*.yaml`/`*.yml` with
 * `kind: Policy` below them is loaded at start, and on any change the set is synced — changed
 * documents or scripts reloaded, deleted ones unloaded. A version that fails to load is reported and
 * the last good one keeps serving; evaluations in flight finish on the version they started with.
 *
 * Laid out as the kubelet mounts a ConfigMap or Secret, a directory holds `name.yaml -> ..data/name.yaml`
 * links, `..data -> ..<timestamp>` and the real files in `..<timestamp>/`, and an update swaps `..data`
 * atomically. So: symlinks are followed, hidden entries (`..data`, `..<timestamp>`, dotfiles) are not
 * walked, and a file is known by the path it was found at, which stays the same across swaps. A
 * listing that fails keeps everything as it is: only a file that a successful listing no longer
 * shows is unloaded.
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

  /** Every policy file below the roots, following symlinks (each real directory walked once). */
  async #files(): Promise<string[]> {
    const files: string[] = [];
    const walked = new Set<string>();
    const walk = async (dir: string): Promise<void> => {
      const real = await realpath(dir);
      if (walked.has(real)) return;
      walked.add(real);
      for (const name of await readdir(dir)) {
        if (name.startsWith('.')) continue;
        const path = join(dir, name);
        const target = await stat(path).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined; // a dangling link, or removed while listing
          throw err;
        });
        if (target?.isDirectory()) await walk(path);
        else if (target?.isFile() && /\.ya?ml$/.test(name)) files.push(path);
      }
    };
    for (const root of this.roots.map((r) => resolve(r))) {
      if ((await stat(root)).isDirectory()) await walk(root);
      else files.push(root);
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
      // The file now holds another policy: the one it held goes (by digest: only that version).
      if (previous && previous.name !== policy.name && this.engine.policy(previous.digest)) this.engine.unload(previous.digest);
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
      let files: string[];
      try {
        files = await this.#files();
      } catch (err) {
        this.logger.error({ error: errorMessage(err) }, 'cannot list the policy files; every loaded policy keeps serving');
        return;
      }
      for (const file of files) {
        const err = await this.#load(file);
        if (err) {
          const kept = this.#loaded.get(file);
          this.logger.error(
            { file, error: errorMessage(err), kept: kept?.digest ?? null },
            'policy reload failed; the last good version keeps serving',
          );
        }
      }
      const present = new Set(files);
      const stillServed = new Set([...this.#loaded].filter(([file]) => present.has(file)).map(([, l]) => l.digest));
      for (const [file, loaded] of this.#loaded) {
        if (present.has(file)) continue;
        this.#loaded.delete(file);
        // The same content may still come from another file (a rename): it stays.
        if (stillServed.has(loaded.digest) || this.engine.policy(loaded.digest) === undefined) continue;
        this.engine.unload(loaded.digest);
        this.logger.info({ policy: loaded.name, digest: loaded.digest, file }, 'policy unloaded: its file is gone');
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

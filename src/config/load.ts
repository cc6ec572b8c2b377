import { readFileSync } from 'node:fs';
import { stringify, parse as parseYaml } from 'yaml';
import { errorMessage } from '../errors/policyd-error.js';
import { configSchema, type DaemonConfig } from './schema.js';
import { SETTINGS, envName, type Setting } from './settings.js';
import { describeIssues } from '../errors/issues.js';

export class ConfigError extends Error {}

type Tree = Record<string, unknown>;

function setPath(tree: Tree, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Tree;
  }
  node[keys.at(-1)!] = value;
}

function getPath(tree: Tree, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (node as Tree | undefined)?.[key], tree);
}

/** A string from the environment or a flag, read as the setting's type. */
export function parseSetting(setting: Setting, raw: string, source: string): unknown {
  switch (setting.type) {
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(`${source}: "${raw}" is not a number`);
      return n;
    }
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(raw)) return true;
      if (/^(false|0|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${source}: "${raw}" is not true or false`);
    default:
      if (setting.choices && !setting.choices.includes(raw)) {
        throw new ConfigError(`${source}: "${raw}" is not one of ${setting.choices.join(', ')}`);
      }
      return raw;
  }
}

function fromFile(path: string): Tree {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${errorMessage(err)}`);
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config file ${path}: must be a YAML mapping of settings`);
  return raw as Tree;
}

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b) ? merge(b as Tree, v as Tree) : v;
  }
  return out;
}

export interface ConfigSources {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values from flags, by setting path (already typed). */
  flags?: Record<string, unknown>;
}

/**
 * The effective configuration: defaults, overridden by the config file, then by POLICYD_*
 * environment variables, then by flags. Every problem names the key and where it came from.
 */
export function loadConfig(sources: ConfigSources): DaemonConfig {
  let tree: Tree = sources.file ? fromFile(sources.file) : {};
  const fromEnv: Tree = {};
  for (const setting of SETTINGS) {
    const name = envName(setting.path);
    const raw = sources.env?.[name];
    if (raw !== undefined) setPath(fromEnv, setting.path, parseSetting(setting, raw, `environment variable ${name}`));
  }
  tree = merge(tree, fromEnv);
  const fromFlags: Tree = {};
  for (const [path, value] of Object.entries(sources.flags ?? {})) if (value !== undefined) setPath(fromFlags, path, value);
  tree = merge(tree, fromFlags);
  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) {
    const where = sources.file ? ` (file ${sources.file}, environment, flags)` : '';
    throw new ConfigError(`invalid configuration${where}: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}

/** The configuration as YAML, secrets replaced by "<redacted>". */
export function renderConfig(config: DaemonConfig): string {
  const copy = structuredClone(config) as Tree;
  for (const setting of SETTINGS) {
    if (!setting.secret) continue;
    const value = getPath(copy, setting.path);
    if (Array.isArray(value) ? value.length > 0 : value !== undefined && value !== '') {
      setPath(copy, setting.path, Array.isArray(value) ? value.map(() => '<redacted>') : '<redacted>');
    }
  }
  return stringify(copy);
}

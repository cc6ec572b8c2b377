import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

/** What a registry is logged in with: a user and password (or token), or an OAuth2 refresh token. */
export type RegistryCredentials = { username: string; password: string } | { identityToken: string };

const dockerConfig = z.looseObject({
  auths: z
    .record(
      z.string(),
      z.looseObject({
        auth: z.string().optional(),
        username: z.string().optional(),
        password: z.string().optional(),
        identitytoken: z.string().optional(),
      }),
    )
    .optional(),
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
});

const helperAnswer = z.object({ Username: z.string(), Secret: z.string() });

/** JSON, or undefined (which the schemas then refuse with a message naming the file or helper). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Where `docker login`, `oras login` and `helm registry login` write: $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
export function defaultDockerConfigPath(): string {
  return join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

/** `https://host:5000/v1/` and `host:5000` name the same registry in `auths`. */
function registryKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}

/** Asks a credential helper (`docker-credential-<name> get`), as the Docker CLI does. */
function askHelper(helper: string, registry: string): Promise<RegistryCredentials | undefined> {
  return new Promise((resolve, reject) => {
    const child = execFile(`docker-credential-${helper}`, ['get'], { timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      // A helper that knows nothing of the registry exits non-zero with "credentials not found".
      if (err) {
        if (/credentials not found/i.test(stdout)) return resolve(undefined);
        return reject(new Error(`credential helper docker-credential-${helper} failed: ${err.message}`));
      }
      const answer = helperAnswer.safeParse(parseJson(stdout));
      if (!answer.success)
        return reject(new Error(`credential helper docker-credential-${helper} answered something else than credentials`));
      const { Username, Secret } = answer.data;
      resolve(Username === '<token>' ? { identityToken: Secret } : { username: Username, password: Secret });
    });
    child.stdin?.end(registry);
  });
}

/**
 * The credentials a Docker config file holds for `registry` (helpers first, then `auths`), read at
 * every call: a mounted Secret may be rotated while the daemon runs. No file: anonymous.
 */
export async function credentialsFor(registry: string, path = defaultDockerConfigPath()): Promise<RegistryCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the Docker config file ${path}: ${(err as Error).message}`);
  }
  const parsed = dockerConfig.safeParse(parseJson(text));
  if (!parsed.success) throw new Error(`the Docker config file ${path} is not a Docker config (auths, credHelpers, credsStore)`);
  const config = parsed.data;
  const helper = config.credHelpers?.[registry] ?? config.credsStore;
  if (helper) {
    const fromHelper = await askHelper(helper, registry);
    if (fromHelper) return fromHelper;
  }
  const entry = Object.entries(config.auths ?? {}).find(([key]) => registryKey(key) === registry)?.[1];
  if (!entry) return undefined;
  if (entry.identitytoken) return { identityToken: entry.identitytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new Error(`the auth entry for ${registry} in ${path} is not base64 of user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}

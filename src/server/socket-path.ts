import { lstat, mkdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * The default unix socket, `/tmp/wasm-policyd-<uid>/policyd.sock`: in a directory of its own, private
 * to the user (as ssh-agent does), so another local user cannot take the path first and answer the
 * daemon's clients, as they could with a socket directly in world-writable /tmp.
 */
export function defaultSocketPath(): string {
  return join(tmpdir(), `wasm-policyd-${process.getuid?.() ?? 'user'}`, 'policyd.sock');
}

/** Creates the default socket's directory (0700) or checks that the one there is ours and private. */
async function privateDirectory(dir: string): Promise<void> {
  await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const info = await lstat(dir);
  const uid = process.getuid?.();
  if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o077) !== 0) {
    throw new Error(
      `refusing the socket directory ${dir}: it must be a directory owned by this user with mode 0700 (another user may have created it); remove it or listen elsewhere`,
    );
  }
}

/**
 * Makes `path` free for a new socket without taking it from anyone: a stale socket (nothing accepts
 * on it) is removed; a live one (another daemon) or anything that is not a socket is refused.
 */
export async function claimSocketPath(path: string): Promise<void> {
  if (path === defaultSocketPath()) await privateDirectory(dirname(path));
  const existing = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing === undefined) return;
  if (!existing.isSocket())
    throw new Error(`cannot listen on unix://${path}: it exists and is not a socket; remove it or choose another path`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live)
    throw new Error(`cannot listen on unix://${path}: another process is serving on it (a second daemon?); stop it or choose another path`);
  await rm(path, { force: true });
}

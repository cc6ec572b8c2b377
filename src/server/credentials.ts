import { ServerCredentials, experimental } from '@grpc/grpc-js';

export interface TlsFiles {
  cert: string;
  key: string;
  /** Require client certificates signed by this CA (mTLS). */
  clientCa?: string;
  /** How often the files are re-read, so renewed certificates apply without a restart. */
  refreshMs?: number;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/i;

function firstUpdate(provider: experimental.FileWatcherCertificateProvider, kind: 'identity' | 'ca', files: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const listener = (update: unknown) => {
      if (kind === 'identity') provider.removeIdentityCertificateListener(listener);
      else provider.removeCaCertificateListener(listener);
      if (update) resolve();
      else reject(new Error(`cannot read TLS ${kind === 'identity' ? 'certificate and key' : 'client CA'} from ${files}`));
    };
    if (kind === 'identity') provider.addIdentityCertificateListener(listener);
    else provider.addCaCertificateListener(listener);
  });
}

export function isUnixAddress(address: string): boolean {
  return address.startsWith('unix:');
}

function host(address: string): string {
  return address.replace(/:\d+$/, '');
}

/** A unix socket or a loopback TCP address: only this machine (or pod) can reach it. */
export function isLocalAddress(address: string): boolean {
  return isUnixAddress(address) || LOOPBACK.test(host(address));
}

/**
 * The credentials for one listen address: unix sockets are plaintext (the file mode guards them);
 * TCP uses TLS when configured, and plaintext only on loopback unless explicitly allowed.
 */
export async function credentialsFor(address: string, tls: TlsFiles | undefined, allowInsecureTcp: boolean): Promise<ServerCredentials> {
  if (isUnixAddress(address)) return ServerCredentials.createInsecure();
  if (tls) {
    const identity = new experimental.FileWatcherCertificateProvider({
      certificateFile: tls.cert,
      privateKeyFile: tls.key,
      refreshIntervalMs: tls.refreshMs ?? 10_000,
    });
    const ca = tls.clientCa
      ? new experimental.FileWatcherCertificateProvider({ caCertificateFile: tls.clientCa, refreshIntervalMs: tls.refreshMs ?? 10_000 })
      : null;
    // The providers read the files asynchronously: serve only once they have, or the first
    // handshakes fail. A file that cannot be read is an error at start-up, not a silent retry.
    await firstUpdate(identity, 'identity', `${tls.cert} / ${tls.key}`);
    if (ca) await firstUpdate(ca, 'ca', tls.clientCa!);
    // grpc-js names the first parameter "caCertificateProvider" but uses it as the identity provider.
    return experimental.createCertificateProviderServerCredentials(identity, ca as never, Boolean(tls.clientCa));
  }
  if (isLocalAddress(address) || allowInsecureTcp) return ServerCredentials.createInsecure();
  throw new Error(
    `refusing plaintext gRPC on ${address}, which is not a loopback address: configure tls.cert and tls.key (--tls-cert, --tls-key), or set tls.insecure (--tls-insecure) to accept the risk`,
  );
}

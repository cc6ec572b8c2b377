import { ServerCredentials, experimental } from '@grpc/grpc-js';
import type { CertificateFileWatcher, CertificateFiles } from './certificate-files.js';

export interface TlsFiles extends CertificateFiles {
  /** How often the files are re-read, so renewed certificates apply without a restart. */
  refreshMs?: number;
  /** Told when changed files are rejected (the previous certificate keeps serving). */
  onRejected?: (error: string) => void;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/i;

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
export function credentialsFor(address: string, tls: CertificateFileWatcher | undefined, allowInsecureTcp: boolean): ServerCredentials {
  if (isUnixAddress(address)) return ServerCredentials.createInsecure();
  if (tls) {
    // grpc-js names the first parameter "caCertificateProvider" but uses it as the identity provider.
    return experimental.createCertificateProviderServerCredentials(tls, tls.mutual ? tls : null, tls.mutual);
  }
  if (isLocalAddress(address) || allowInsecureTcp) return ServerCredentials.createInsecure();
  throw new Error(
    `refusing plaintext gRPC on ${address}, which is not a loopback address: configure tls.cert and tls.key (--tls-cert, --tls-key), or set tls.insecure (--tls-insecure) to accept the risk`,
  );
}

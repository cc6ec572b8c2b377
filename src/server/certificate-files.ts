import { type KeyObject, X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { experimental } from '@grpc/grpc-js';

type Provider = experimental.CertificateProvider;
type IdentityListener = Parameters<Provider['addIdentityCertificateListener']>[0];
type CaListener = Parameters<Provider['addCaCertificateListener']>[0];

export interface CertificateFiles {
  cert: string;
  key: string;
  /** CA bundle that client certificates must chain to (mTLS). */
  clientCa?: string;
}

interface Material {
  certificate: Buffer;
  privateKey: Buffer;
  caCertificate?: Buffer;
}

/** Throws, naming the file, unless the files make a working server context with a matching key. */
function validate(m: Material, files: CertificateFiles): void {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(m.certificate);
  } catch {
    throw new Error(`${files.cert} is not a PEM certificate`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(m.privateKey);
  } catch {
    throw new Error(`${files.key} is not a PEM private key`);
  }
  if (!leaf.checkPrivateKey(key)) throw new Error(`${files.key} is not the private key of ${files.cert}`);
  if (m.caCertificate) {
    try {
      new X509Certificate(m.caCertificate);
    } catch {
      throw new Error(`${files.clientCa} is not a PEM CA bundle`);
    }
  }
  createSecureContext({ cert: m.certificate, key: m.privateKey, ca: m.caCertificate });
}

/**
 * The server's certificate, key and client CA, re-read every `refreshMs` so renewed certificates
 * apply without a restart — and checked before use: a pair that does not parse or match (a
 * half-written rotation, a wrong file) is rejected and the last good one keeps serving, where
 * grpc-js's own file watcher would hand it to every handshake and drop every new connection.
 */
export class CertificateFileWatcher implements Provider {
  #current: Material | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #identity = new Set<IdentityListener>();
  readonly #ca = new Set<CaListener>();

  private constructor(
    private readonly files: CertificateFiles,
    private readonly onRejected: (error: string) => void,
  ) {}

  /** Reads and checks the files once (an error here stops start-up), then watches them. */
  static async start(files: CertificateFiles, refreshMs: number, onRejected: (error: string) => void): Promise<CertificateFileWatcher> {
    const watcher = new CertificateFileWatcher(files, onRejected);
    watcher.#current = await watcher.#read();
    watcher.#timer = setInterval(() => void watcher.#refresh(), refreshMs).unref();
    return watcher;
  }

  async #read(): Promise<Material> {
    const read = (path: string) => readFile(path).catch(() => Promise.reject(new Error(`cannot read ${path}`)));
    const [certificate, privateKey, caCertificate] = await Promise.all([
      read(this.files.cert),
      read(this.files.key),
      this.files.clientCa ? read(this.files.clientCa) : undefined,
    ]);
    const material = { certificate, privateKey, caCertificate };
    validate(material, this.files);
    return material;
  }

  async #refresh(): Promise<void> {
    let next: Material;
    try {
      next = await this.#read();
    } catch (err) {
      this.onRejected(`${(err as Error).message}; the previous certificate keeps serving`);
      return;
    }
    const previous = this.#current!;
    this.#current = next;
    if (!next.certificate.equals(previous.certificate) || !next.privateKey.equals(previous.privateKey)) {
      for (const listener of this.#identity) listener(next);
    }
    if (next.caCertificate && !next.caCertificate.equals(previous.caCertificate ?? Buffer.alloc(0))) {
      for (const listener of this.#ca) listener({ caCertificate: next.caCertificate });
    }
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identity.add(listener);
    // Not synchronously: grpc-js registers its watcher only after this call returns.
    const current = this.#current!;
    process.nextTick(() => listener(current));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identity.delete(listener);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#ca.add(listener);
    const ca = this.#current?.caCertificate;
    if (ca) process.nextTick(() => listener({ caCertificate: ca }));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#ca.delete(listener);
  }

  /** Client certificates are required (a client CA is configured). */
  get mutual(): boolean {
    return Boolean(this.files.clientCa);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

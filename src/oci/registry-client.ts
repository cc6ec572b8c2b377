/**
 * The part of the OCI distribution API that moving policies needs: manifests and blobs in both
 * directions, and referrers (the API, or the `sha256-<hex>` tag schema on registries without it).
 *
 * Written here rather than taken from npm: no maintained JavaScript distribution client exists
 * (@sigstore/oci only attaches artifacts to images). It is the subset ORAS and Helm use, checked
 * against Debian's docker-registry and cross-checked with the oras CLI in the tests.
 *
 * Every request goes through the same SSRF guard as guest HTTP unless the operator allows private
 * networks for registries; every byte read is checked against the digest it was asked for.
 */
import { sha256 } from '../policies/digest.js';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import type { Response } from 'undici';
import { guardedFetch, readCapped, type GuardedRequest as Request } from '../net/http-fetch.js';
import { credentialsFor, type RegistryCredentials } from './docker-config.js';
import { formatOciReference, type OciReference } from './reference.js';

export interface RegistryOptions {
  /** Registries (`host:port`) spoken to over plain HTTP instead of HTTPS, as oras's --plain-http. */
  plainHttp: readonly string[];
  /** Let registry hosts resolve to loopback, private and link-local addresses (off: the SSRF guard is on). */
  allowPrivateNetwork: boolean;
  /** The Docker config file credentials are read from (default: $DOCKER_CONFIG or ~/.docker). */
  dockerConfig?: string;
  /** Each request, redirects included. */
  requestTimeoutMs: number;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  data?: string;
}

export const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';
/** Distribution's own limit for a manifest. */
export const MAX_MANIFEST_BYTES = 4 * 2 ** 20;

/** `Bearer realm="…",service="…",scope="…"` → its scheme and parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) params[m[1]!.toLowerCase()] = m[2]!;
  return { scheme, params };
}

/** Lets go of an answer whose body is not read (the connection is then reused or closed). */
async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => {});
}

/** The scope a token is asked for. */
type Access = 'pull' | 'pull,push';

export class RegistryClient {
  /** Authorization header values by registry and scope, learnt from challenges. */
  readonly #authorizations = new Map<string, string>();

  constructor(private readonly options: RegistryOptions) {}

  #base(ref: OciReference): string {
    const scheme = this.options.plainHttp.includes(ref.registry) ? 'http' : 'https';
    return `${scheme}://${ref.registry}/v2/${ref.repository}`;
  }

  #unavailable(ref: OciReference, why: string): PolicydError {
    return new PolicydError('REGISTRY_UNAVAILABLE', `registry ${ref.registry} cannot be used for ${ref.repository}: ${why}; retry later`);
  }

  async #send(ref: OciReference, access: Access, req: Request): Promise<Response> {
    const key = `${ref.registry} ${ref.repository} ${access}`;
    const once = (authorization?: string) =>
      this.#fetch(ref, { ...req, headers: { ...req.headers, ...(authorization ? { authorization } : {}) } });
    let res = await once(this.#authorizations.get(key));
    if (res.status !== 401) return res;
    const challenge = res.headers.get('www-authenticate');
    await discard(res);
    if (!challenge) throw this.#denied(ref, 401);
    const authorization = await this.#authorize(ref, access, challenge);
    if (authorization === undefined) throw this.#denied(ref, 401);
    this.#authorizations.set(key, authorization);
    res = await once(authorization);
    if (res.status === 401) {
      await discard(res);
      this.#authorizations.delete(key);
      throw this.#denied(ref, 401);
    }
    return res;
  }

  #denied(ref: OciReference, status: number): PolicydError {
    return new PolicydError(
      'REGISTRY_DENIED',
      `registry ${ref.registry} refused access to ${ref.repository} (HTTP ${status}); log in to it (docker login, oras login or helm registry login write the Docker config file this daemon reads${this.options.dockerConfig ? `: ${this.options.dockerConfig}` : ''}) with an account that may ${status === 403 ? 'use' : 'read'} that repository`,
    );
  }

  /** Answers a challenge: Basic with the stored password, or a Bearer token from the realm it names. */
  async #authorize(ref: OciReference, access: Access, header: string): Promise<string | undefined> {
    let credentials: RegistryCredentials | undefined;
    try {
      credentials = await credentialsFor(ref.registry, this.options.dockerConfig);
    } catch (err) {
      throw new PolicydError('REGISTRY_DENIED', `${errorMessage(err)}; fix it to log in to ${ref.registry}`);
    }
    const { scheme, params } = parseChallenge(header);
    const basic =
      credentials && 'username' in credentials
        ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
        : undefined;
    if (scheme === 'basic') return basic;
    if (scheme !== 'bearer' || !params.realm) return undefined;
    const scope = `repository:${ref.repository}:${access}`;
    const realm = new URL(params.realm);
    let tokenRequest: Request;
    if (credentials && 'identityToken' in credentials) {
      // An OAuth2 refresh token (docker login to an identity provider): exchanged by POST.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: credentials.identityToken,
        scope,
        client_id: 'wasm-policyd',
      });
      if (params.service) form.set('service', params.service);
      tokenRequest = {
        url: realm.href,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
      };
    } else {
      if (params.service) realm.searchParams.set('service', params.service);
      realm.searchParams.set('scope', scope);
      tokenRequest = { url: realm.href, method: 'GET', headers: basic ? { authorization: basic } : {} };
    }
    const res = await this.#fetch(ref, tokenRequest);
    if (res.status !== 200) {
      await discard(res);
      return undefined;
    }
    const body = await readCapped(res, 1 << 20);
    let answer: { token?: unknown; access_token?: unknown } = {};
    try {
      if (body) answer = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      return undefined; // not a token answer: the call is refused as unauthenticated
    }
    const token = answer?.token ?? answer?.access_token;
    return typeof token === 'string' && token ? `Bearer ${token}` : undefined;
  }

  async #check(ref: OciReference, res: Response, what: string, notFound?: () => PolicydError): Promise<void> {
    if (res.ok) return;
    await discard(res);
    if (res.status === 404 && notFound) throw notFound();
    if (res.status === 401 || res.status === 403) throw this.#denied(ref, res.status);
    if (res.status === 429 || res.status >= 500) throw this.#unavailable(ref, `HTTP ${res.status} for ${what}`);
    throw new PolicydError('REGISTRY_UNAVAILABLE', `registry ${ref.registry} answered HTTP ${res.status} for ${what} of ${ref.repository}`);
  }

  async #read(ref: OciReference, res: Response, max: number, what: string): Promise<Uint8Array> {
    const bytes = await readCapped(res, max).catch((err: unknown) => {
      throw this.#unavailable(ref, `reading ${what} failed: ${errorMessage(err)}`);
    });
    if (!bytes) {
      await discard(res);
      throw new PolicydError('POLICY_BUDGET', `${what} in ${formatOciReference(ref)} is larger than ${max} bytes, this daemon's limit`);
    }
    return bytes;
  }

  /** The manifest `ref` names (by digest, or by tag), checked against its digest. */
  async manifest(
    ref: OciReference,
    accept: readonly string[] = [MANIFEST_MEDIA_TYPE],
  ): Promise<{ bytes: Uint8Array; digest: string; mediaType: string }> {
    const at = ref.digest ?? ref.tag!;
    const res = await this.#send(ref, 'pull', {
      url: `${this.#base(ref)}/manifests/${at}`,
      method: 'GET',
      headers: { accept: accept.join(', ') },
    });
    await this.#check(
      ref,
      res,
      `manifest ${at}`,
      () =>
        new PolicydError(
          'ARTIFACT_NOT_FOUND',
          `${formatOciReference(ref)} does not exist in the registry; push it first (wasm-policyd push)`,
        ),
    );
    const bytes = await this.#read(ref, res, MAX_MANIFEST_BYTES, 'the manifest');
    const digest = sha256(bytes);
    if (ref.digest !== undefined && digest !== ref.digest) {
      throw new PolicydError(
        'DIGEST_MISMATCH',
        `registry ${ref.registry} answered ${formatOciReference(ref)} with a manifest of another digest`,
      );
    }
    return { bytes, digest, mediaType: res.headers.get('content-type')?.split(';')[0]?.trim() ?? '' };
  }

  /** A blob, at most `maxBytes`, checked against its digest (a registry or a redirect target could lie). */
  async blob(ref: OciReference, digest: string, maxBytes: number): Promise<Uint8Array> {
    const res = await this.#send(ref, 'pull', { url: `${this.#base(ref)}/blobs/${digest}`, method: 'GET' });
    await this.#check(
      ref,
      res,
      `blob ${digest}`,
      () => new PolicydError('INVALID_ARTIFACT', `${formatOciReference(ref)} names blob ${digest}, which the registry does not have`),
    );
    const bytes = await this.#read(ref, res, maxBytes, `blob ${digest}`);
    if (sha256(bytes) !== digest) {
      throw new PolicydError('DIGEST_MISMATCH', `registry ${ref.registry} answered blob ${digest} of ${ref.repository} with other content`);
    }
    return bytes;
  }

  /** Uploads a blob unless the registry has it (one monolithic PUT, as the spec's simplest flow). */
  async pushBlob(ref: OciReference, bytes: Uint8Array): Promise<Descriptor> {
    const digest = sha256(bytes);
    const head = await this.#send(ref, 'pull,push', { url: `${this.#base(ref)}/blobs/${digest}`, method: 'HEAD' });
    await discard(head);
    if (head.status !== 200) {
      const start = await this.#send(ref, 'pull,push', { url: `${this.#base(ref)}/blobs/uploads/`, method: 'POST' });
      await this.#check(ref, start, 'starting an upload');
      await discard(start);
      const location = start.headers.get('location');
      if (!location) throw this.#unavailable(ref, 'the registry started an upload without saying where to send it');
      const upload = new URL(location, `${this.#base(ref)}/`);
      upload.searchParams.set('digest', digest);
      const put = await this.#send(ref, 'pull,push', {
        url: upload.href,
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
      });
      await this.#check(ref, put, `uploading blob ${digest}`);
      await discard(put);
    }
    return { mediaType: 'application/octet-stream', digest, size: bytes.byteLength };
  }

  /** Stores a manifest under a tag or its digest; true when the registry reports its `subject` indexed. */
  async pushManifest(ref: OciReference, at: string, bytes: Uint8Array, mediaType: string): Promise<{ subjectIndexed: boolean }> {
    const res = await this.#send(ref, 'pull,push', {
      url: `${this.#base(ref)}/manifests/${at}`,
      method: 'PUT',
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    await this.#check(ref, res, `storing manifest ${at}`);
    await discard(res);
    return { subjectIndexed: res.headers.has('oci-subject') };
  }

  /** Descriptors of the manifests whose `subject` is `digest`: the referrers API, else the tag schema. */
  async referrers(ref: OciReference, digest: string): Promise<Descriptor[]> {
    const res = await this.#send(ref, 'pull', {
      url: `${this.#base(ref)}/referrers/${digest}`,
      method: 'GET',
      headers: { accept: INDEX_MEDIA_TYPE },
    });
    if (res.status === 200 && res.headers.get('content-type')?.startsWith(INDEX_MEDIA_TYPE)) {
      return manifestsOf(await this.#read(ref, res, MAX_MANIFEST_BYTES, 'the referrers index'));
    }
    // Registries without the API answer 404, or 400/405 for a path they do not know: all mean "use the tag".
    if (res.status === 403 || res.status === 429 || res.status >= 500) await this.#check(ref, res, 'referrers');
    await discard(res);
    return this.#tagSchemaReferrers(ref, digest);
  }

  async #tagSchemaReferrers(ref: OciReference, digest: string): Promise<Descriptor[]> {
    const tag = referrersTag(digest);
    const res = await this.#send(ref, 'pull', {
      url: `${this.#base(ref)}/manifests/${tag}`,
      method: 'GET',
      headers: { accept: INDEX_MEDIA_TYPE },
    });
    if (res.status === 404) {
      await discard(res);
      return [];
    }
    await this.#check(ref, res, `referrers tag ${tag}`);
    return manifestsOf(await this.#read(ref, res, MAX_MANIFEST_BYTES, 'the referrers index'));
  }

  /** Lists `descriptor` as a referrer of `digest` in the tag schema, for registries without the API. */
  async addToReferrersTag(ref: OciReference, digest: string, descriptor: Descriptor): Promise<void> {
    const manifests = (await this.#tagSchemaReferrers(ref, digest)).filter((d) => d.digest !== descriptor.digest);
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [...manifests, descriptor] }));
    await this.pushManifest(ref, referrersTag(digest), index, INDEX_MEDIA_TYPE);
  }

  /** One request through the SSRF guard; refusals and network errors become PolicydErrors. */
  async #fetch(ref: OciReference, req: Request): Promise<Response> {
    const { allowPrivateNetwork, requestTimeoutMs } = this.options;
    let answer: Awaited<ReturnType<typeof guardedFetch>>;
    try {
      answer = await guardedFetch(req, { allowPrivateNetwork, maxRedirects: 10, signal: AbortSignal.timeout(requestTimeoutMs) });
    } catch (err) {
      throw this.#unavailable(
        ref,
        `it cannot be reached (${errorMessage((err as { cause?: unknown }).cause ?? err)}); check the host and port${/^https:/.test(req.url) ? ', and whether it speaks plain HTTP (list it in oci.plainHttp)' : ''}`,
      );
    }
    if ('refused' in answer) {
      if (answer.refused === 'private') {
        throw new PolicydError(
          'UNSUPPORTED_REF',
          `registry ${ref.registry} resolves to the private address ${answer.address}; set oci.allowPrivateNetwork to use registries on private networks`,
        );
      }
      throw this.#unavailable(ref, `${req.method} ${req.url} was redirected too many times`);
    }
    return answer.res;
  }
}

export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

/** The descriptors of an image index; none when it is not one (a broken index hides no valid signature). */
function manifestsOf(bytes: Uint8Array): Descriptor[] {
  try {
    const index = JSON.parse(Buffer.from(bytes).toString('utf8')) as { manifests?: Descriptor[] };
    return Array.isArray(index.manifests) ? index.manifests.filter((d) => typeof d?.digest === 'string') : [];
  } catch {
    return [];
  }
}

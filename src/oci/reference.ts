import { PolicydError } from '../errors/policyd-error.js';

/**
 * `oci://registry[:port]/repository[:tag][@sha256:<hex>]`, the way Helm and Kubewarden write OCI refs.
 * The registry is always explicit (no Docker Hub default: a policy's origin should be read off its
 * ref), and only sha256 digests are accepted.
 */
export interface OciReference {
  /** `host` or `host:port`, as credentials in a Docker config file are keyed. */
  registry: string;
  repository: string;
  tag?: string;
  /** `sha256:<hex>` of the manifest. */
  digest?: string;
}

export const OCI_SCHEME = 'oci://';

// The grammar of github.com/distribution/reference, restricted to what registries accept.
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function isOciRef(ref: string): boolean {
  return ref.startsWith(OCI_SCHEME);
}

export function parseOciReference(ref: string): OciReference {
  const bad = (why: string) =>
    new PolicydError(
      'UNSUPPORTED_REF',
      `${ref} is not an OCI reference (${why}); write oci://registry[:port]/repository[:tag][@sha256:<hex>]`,
    );
  if (!isOciRef(ref)) throw bad('it must start with oci://');
  let rest = ref.slice(OCI_SCHEME.length);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`digest ${JSON.stringify(digest)} is not sha256:<64 hex digits>`);
  }
  const slash = rest.indexOf('/');
  if (slash <= 0) throw bad('no registry host before the repository');
  const registry = rest.slice(0, slash);
  if (!HOST.test(registry)) throw bad(`registry ${JSON.stringify(registry)} is not a host name or host:port`);
  let path = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`tag ${JSON.stringify(tag)} is not a valid tag`);
  }
  if (path === '' || !path.split('/').every((c) => COMPONENT.test(c))) {
    throw bad(`repository ${JSON.stringify(path)} must be lowercase path components such as policies/sbom-checks`);
  }
  if (path.length > 255) throw bad('the repository name is longer than 255 characters');
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository: path, tag, digest };
}

export function formatOciReference(ref: OciReference): string {
  return `${OCI_SCHEME}${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The same repository at a manifest digest (what a replica fetches on demand, and what signatures name). */
export function atDigest(ref: OciReference, digest: string): OciReference {
  return { registry: ref.registry, repository: ref.repository, digest };
}

/**
 * Who may call what. Two roles: `evaluate` (Evaluate, EvaluateBatch, ListPolicies) and `admin` (also LoadPolicy and
 * UnloadPolicy), granted by bearer tokens, by a verified client certificate (mTLS), or to anonymous
 * callers. Checked in a server interceptor on the call's metadata, before its message is read, so a
 * caller without the role costs no decoding. Health and reflection stay open for probes.
 */
import type { Metadata, ServerInterceptingCallInterface, ServerListener } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { createHash, timingSafeEqual } from 'node:crypto';
import { PolicyEngineService } from '../gen/policyengine/v1/engine_pb.js';
import { PolicydError } from '../errors/policyd-error.js';
import { isLocalAddress } from './credentials.js';
import { toServiceError } from './status.js';

export type Role = 'evaluate' | 'admin';
export type AnonymousRole = Role | 'none';

export interface AuthSettings {
  /** Bearer tokens with the admin role. */
  adminTokens: string[];
  /** Bearer tokens with the evaluate role. */
  evaluateTokens: string[];
  /** Client-certificate identities (subject CN or a subjectAltName value) with the admin role; any other verified certificate has the evaluate role. */
  adminIdentities: string[];
  /** The role of a call without credentials; `auto`: admin when no credentials are configured and every listener is local, else none. */
  anonymous: AnonymousRole | 'auto';
}

const RANK: Record<AnonymousRole, number> = { none: 0, evaluate: 1, admin: 2 };

const REQUIRED = new Map<string, Role>(
  PolicyEngineService.methods.map((m) => [
    `/${PolicyEngineService.typeName}/${m.name}`,
    m.name === 'LoadPolicy' || m.name === 'UnloadPolicy' ? 'admin' : 'evaluate',
  ]),
);

/** A certificate's identities: its subject CN and every subjectAltName value (DNS, URI, IP, email). */
function identities(cert: PeerCertificate): string[] {
  const names = cert.subjectaltname ? cert.subjectaltname.split(', ').map((entry) => entry.slice(entry.indexOf(':') + 1)) : [];
  const cn = cert.subject?.CN;
  return [...(Array.isArray(cn) ? cn : cn ? [cn] : []), ...names];
}

function matches(tokens: Buffer[], given: Buffer): boolean {
  // Every candidate is compared, in constant time each, so the answer's timing tells nothing.
  let found = false;
  for (const t of tokens) found = (t.length === given.length && timingSafeEqual(t, given)) || found;
  return found;
}

export class Authorizer {
  readonly anonymous: AnonymousRole;
  readonly #admin: Buffer[];
  readonly #evaluate: Buffer[];
  readonly #adminIdentities: Set<string>;

  /**
   * Resolves `auto` and refuses what would let anyone who reaches a non-local listener manage
   * policies without being told to.
   */
  constructor(settings: AuthSettings, listen: string[], clientCertificates: boolean) {
    this.#admin = settings.adminTokens.map((t) => Buffer.from(t));
    this.#evaluate = settings.evaluateTokens.map((t) => Buffer.from(t));
    this.#adminIdentities = new Set(settings.adminIdentities);
    const credentials = this.#admin.length + this.#evaluate.length > 0 || clientCertificates;
    const exposed = listen.filter((a) => !isLocalAddress(a));
    if (settings.anonymous !== 'auto') this.anonymous = settings.anonymous;
    else if (credentials) this.anonymous = 'none';
    else if (exposed.length === 0) this.anonymous = 'admin';
    else {
      throw new Error(
        `refusing to serve ${exposed.join(', ')} without credentials: anyone who reaches it could load, replace and unload policies. ` +
          'Configure auth.adminTokens and auth.evaluateTokens (--auth-admin-tokens, --auth-evaluate-tokens) or client certificates (--tls-client-ca), ' +
          'or set auth.anonymous (--auth-anonymous evaluate|admin) to accept the risk',
      );
    }
  }

  /** The role a call has, or the error that refuses it. */
  roleOf(metadata: Metadata, peer: PeerCertificate | undefined): AnonymousRole | PolicydError {
    let role = this.anonymous;
    const header = metadata.get('authorization');
    if (header.length > 0) {
      const given = Buffer.from(String(header[0]).replace(/^Bearer\s+/i, ''));
      if (matches(this.#admin, given)) role = 'admin';
      else if (matches(this.#evaluate, given)) role = 'evaluate';
      else
        return new PolicydError(
          'UNAUTHENTICATED',
          'unknown bearer token: send "authorization: Bearer <token>" with a token the daemon was configured with',
        );
    }
    if (peer && Object.keys(peer).length > 0) {
      const certRole: Role = identities(peer).some((id) => this.#adminIdentities.has(id)) ? 'admin' : 'evaluate';
      if (RANK[certRole] > RANK[role]) role = certRole;
    }
    return role;
  }

  /**
   * Who a call (already admitted) comes from, for decision logs: its certificate's first identity, or
   * a fingerprint of its token (never the token), or `anonymous`.
   */
  callerOf(metadata: Metadata, peer: PeerCertificate | undefined): { role: string; subject: string } {
    const role = this.roleOf(metadata, peer);
    const header = metadata.get('authorization');
    let subject = 'anonymous';
    if (peer && Object.keys(peer).length > 0) subject = identities(peer)[0] ?? 'certificate';
    else if (header.length > 0) {
      const token = String(header[0]).replace(/^Bearer\s+/i, '');
      subject = `token:${createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
    }
    return { role: role instanceof PolicydError ? 'none' : role, subject };
  }

  /** Undefined when the call may go ahead. */
  check(path: string, metadata: Metadata, peer: PeerCertificate | undefined): PolicydError | undefined {
    const required = REQUIRED.get(path);
    if (!required) return undefined;
    const role = this.roleOf(metadata, peer);
    if (role instanceof PolicydError) return role;
    if (role === 'none') {
      return new PolicydError(
        'UNAUTHENTICATED',
        'this daemon needs credentials: send "authorization: Bearer <token>" metadata, or a client certificate',
      );
    }
    if (RANK[role] < RANK[required]) {
      const method = path.slice(path.lastIndexOf('/') + 1);
      return new PolicydError(
        'NOT_PERMITTED',
        `${method} needs the ${required} role; the credentials presented have the ${role} role: use an admin token or identity`,
      );
    }
    return undefined;
  }

  /**
   * The listener event that applies `check` to a call's metadata, before its message is read (none for
   * calls no role guards: health, reflection). A refusal goes at once: the message of a caller that may
   * not make the call is not worth reading, and if it goes on sending, its connection may go (admission,
   * which refuses callers that may come back later, waits for theirs: src/server/admission.ts). The
   * status ends the call, so grpc-js passes none of its later events on.
   */
  listener(path: string, call: ServerInterceptingCallInterface): ServerListener | undefined {
    if (!REQUIRED.has(path)) return undefined;
    return {
      onReceiveMetadata: (metadata, forward) => {
        const refused = this.check(path, metadata, call.getAuthContext().sslPeerCertificate);
        if (refused) call.sendStatus(toServiceError(refused) as never);
        else forward(metadata);
      },
    };
  }
}

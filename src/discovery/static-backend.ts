import { readFileSync } from 'node:fs';
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import { parse as parseYaml } from 'yaml';
import { ReferrerItemSchema, type ReferrerItem } from '../gen/controlplane/v1/referrer_pb.js';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import type { DiscoveryBackend } from './backend.js';
import { referrerItemJson } from './referrer-json.js';

/**
 * Discovery from a file, for local use and tests: a YAML or JSON list of ReferrerItems (protojson:
 * `digest`, `kind`, `references`, `metadata`, `createdAt`…); each is found by its digest.
 */
export class StaticDiscovery implements DiscoveryBackend {
  readonly #items = new Map<string, ReferrerItem>();

  constructor(path: string) {
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new PolicydError('INVALID_REQUEST', `referrers file ${path} cannot be read: ${errorMessage(err)}`);
    }
    if (!Array.isArray(raw)) throw new PolicydError('INVALID_REQUEST', `referrers file ${path} must hold a list of referrer items`);
    raw.forEach((entry, i) => {
      try {
        const item = fromJson(ReferrerItemSchema, entry as JsonValue);
        this.#items.set(item.digest, item);
      } catch (err) {
        throw new PolicydError('INVALID_REQUEST', `referrers file ${path}, item ${i}: ${errorMessage(err)}`);
      }
    });
  }

  async discover(digest: string, kind: string): Promise<string | null> {
    const item = this.#items.get(digest);
    if (!item || (kind !== '' && item.kind !== kind)) return null;
    return referrerItemJson(item);
  }

  close(): void {}
}

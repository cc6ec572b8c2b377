/**
 * Answers `chainloop_discover(digest, kind)`: the referrer graph of an artifact as the JSON Chainloop
 * gives its guests, or null (the guest then sees 0, as in Chainloop on any error).
 */
export interface DiscoveryBackend {
  discover(digest: string, kind: string, signal: AbortSignal): Promise<string | null>;
  close(): void;
}

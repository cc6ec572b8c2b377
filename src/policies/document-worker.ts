/**
 * The thread that parses policy documents for the daemon (document-parser.ts): YAML of a few
 * megabytes takes seconds, which must not be spent on the thread that serves gRPC.
 */
import { parentPort } from 'node:worker_threads';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { parsePolicyDocument } from './document.js';

export interface ParseRequest {
  id: number;
  bytes: Uint8Array;
  label: string;
}

export type ParseReply = { id: number; document: unknown } | { id: number; error: ReturnType<PolicydError['toData']> };

parentPort!.on('message', ({ id, bytes, label }: ParseRequest) => {
  let reply: ParseReply;
  try {
    reply = { id, document: parsePolicyDocument(bytes, label) };
  } catch (err) {
    reply = {
      id,
      error: err instanceof PolicydError ? err.toData() : { reason: 'INVALID_DOCUMENT', message: `${label}: ${errorMessage(err)}` },
    };
  }
  parentPort!.postMessage(reply);
});

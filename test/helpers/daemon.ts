import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import type { ServiceError } from '@grpc/grpc-js';
import { ErrorInfoSchema, type ErrorInfo } from '../../src/gen/google/rpc/error_details_pb.js';
import { StatusSchema } from '../../src/gen/google/rpc/status_pb.js';
import { PolicyEngine, type EngineOptions } from '../../src/engine/policy-engine.js';
import { PolicyServer, type ServerOptions } from '../../src/server/server.js';
import { PolicyEngineClient } from '../../clients/typescript/src/index.js';

export interface Daemon {
  server: PolicyServer;
  engine: PolicyEngine;
  tcp: PolicyEngineClient;
  unix: PolicyEngineClient;
  tcpAddress: string;
  unixAddress: string;
  stop(): Promise<void>;
}

/** A real daemon on an ephemeral loopback port and a fresh unix socket, with a client on each. */
export async function startDaemon(options: EngineOptions = {}, serverOptions: Partial<ServerOptions> = {}): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'policyd-test-'));
  const engine = new PolicyEngine({ threads: 2, ...options });
  const server = new PolicyServer(engine, { listen: ['127.0.0.1:0', `unix://${join(dir, 'policyd.sock')}`], ...serverOptions });
  const [tcpAddress, unixAddress] = (await server.listen()) as [string, string];
  server.markReady();
  const tcp = new PolicyEngineClient(tcpAddress);
  const unix = new PolicyEngineClient(unixAddress);
  return {
    server,
    engine,
    tcp,
    unix,
    tcpAddress,
    unixAddress,
    async stop() {
      tcp.close();
      unix.close();
      await server.shutdown(1000);
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The google.rpc.ErrorInfo a failed call carries. */
export function errorInfo(err: unknown): ErrorInfo | undefined {
  const raw = (err as ServiceError).metadata?.get('grpc-status-details-bin')[0];
  if (!raw) return undefined;
  const status = fromBinary(StatusSchema, raw as Buffer);
  for (const detail of status.details) {
    const info = anyUnpack(detail, ErrorInfoSchema);
    if (info) return info;
  }
  return undefined;
}

/**
 * A predicate for assert.rejects: gRPC code, ErrorInfo reason (undefined: a status the gRPC library
 * itself produced, without one) and a message pattern.
 */
export function grpcError(code: number, reason: string | undefined, message?: RegExp) {
  return (err: unknown): boolean => {
    const e = err as ServiceError;
    if (e.code !== code) throw new Error(`expected code ${code}, got ${e.code}: ${e.details}`);
    const info = errorInfo(err);
    if (info?.reason !== reason) throw new Error(`expected reason ${reason}, got ${info?.reason}: ${e.details}`);
    if (message && !message.test(e.details)) throw new Error(`message ${JSON.stringify(e.details)} does not match ${message}`);
    return true;
  };
}

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, credentials } from '@grpc/grpc-js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { exampleRequest } from '../helpers/documents.js';
import { example, exampleMaterial } from '../helpers/paths.js';
import { killProcess, type ServeProcess, serveProcess } from '../helpers/serve-process.js';
import { behaviourModule, wat } from '../helpers/wat.js';

/**
 * The daemon's memory under a mixed hostile load: every round sends what an attacker or a careless
 * client would — args that differ on every call (the per-worker host cache is keyed by them), policy
 * churn under a few names, guests that exhaust their memory cap, oversized and undecodable requests,
 * invalid materials, the largest allow-list a request may carry — alongside ordinary evaluations.
 * RSS (from /proc) after warm-up and at the end must stay within a bound far below what any of these
 * would cost if it were kept.
 */
const ROUNDS = Number(process.env.HOSTILE_ROUNDS ?? 60);
const WARM_UP = 20;
const MAX_GROWTH_BYTES = 40 * 2 ** 20;

function rss(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return Number(kb) * 1024;
}

describe('memory under a mixed hostile load', () => {
  let dir: string;
  let daemon: ServeProcess;
  let raw: Client;
  const samples: number[] = [];
  const outcomes = new Map<string, number>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-hostile-'));
    daemon = await serveProcess(dir, [
      '--memory-limit-mb',
      '16',
      '--max-receive-mb',
      '1',
      '--max-event-loop-lag-ms',
      '0',
      '--max-queue',
      '100',
    ]);
    raw = new Client(daemon.socket, credentials.createInsecure());
    const licenses = exampleRequest(example('cyclonedx-licenses'));
    await daemon.client.loadPolicy({ source: { case: 'policyDocument', value: licenses.document }, scripts: licenses.scripts });
    const hog = await wat(`(module
      (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
      (memory (export "memory") 1)
      (func (export "Execute") (result i32)
        (block $full (loop $grow (br_if $full (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br $grow)))
        unreachable))`);
    await daemon.client.loadPolicy({ source: { case: 'wasmModule', value: hog }, name: 'memory-hog', kinds: [MaterialKind.EVIDENCE] });
  });
  after(async () => {
    raw.close();
    await killProcess(daemon);
    rmSync(dir, { recursive: true, force: true });
  });

  const note = (what: string) => (err: { code?: number; details?: string } | undefined) => {
    const key = `${what}: ${err?.code ?? 0}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  };

  it(`answers ${ROUNDS} rounds of hostile and ordinary requests`, async () => {
    const c = daemon.client;
    const sbom = exampleMaterial('cyclonedx-licenses', 'fail.json');
    for (let round = 0; round < ROUNDS; round++) {
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 10; i++) {
        const args = { allowed: `MIT, License-${round}-${i}` }; // a new host-cache key every call
        calls.push(
          c
            .evaluate({ policy: 'cyclonedx-licenses', material: { content: sbom, kind: MaterialKind.SBOM_CYCLONEDX_JSON }, args })
            .then(() => note('licenses')(undefined), note('licenses')),
        );
      }
      for (let i = 0; i < 3; i++) {
        const module = await behaviourModule({ output: JSON.stringify({ violations: [`round ${round} ${i}`] }) });
        calls.push(
          c
            .loadPolicy({ source: { case: 'wasmModule', value: module }, name: `churn-${i}`, kinds: [MaterialKind.EVIDENCE] })
            .then(() => note('churn')(undefined), note('churn')),
        );
      }
      for (let i = 0; i < 3; i++) {
        calls.push(
          c
            .evaluate({ policy: 'memory-hog', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } })
            .then(() => note('hog')(undefined), note('hog')),
        );
      }
      calls.push(
        c
          .evaluate({ policy: 'cyclonedx-licenses', material: { content: Buffer.alloc(2 * 2 ** 20, 0x20), kind: MaterialKind.EVIDENCE } })
          .then(() => note('oversized')(undefined), note('oversized')),
      );
      calls.push(
        c
          .evaluate({
            policy: 'cyclonedx-licenses',
            material: { content: Buffer.from('{"not json'), kind: MaterialKind.SBOM_CYCLONEDX_JSON },
          })
          .then(() => note('invalid')(undefined), note('invalid')),
      );
      const hosts = Array.from({ length: 64 }, (_, i) => `h${round}-${i}.example.com`);
      calls.push(
        c
          .evaluate({
            policy: 'cyclonedx-licenses',
            material: { content: sbom, kind: MaterialKind.SBOM_CYCLONEDX_JSON },
            options: { allowedHostnames: hosts },
          })
          .then(() => note('hosts')(undefined), note('hosts')),
      );
      calls.push(
        new Promise<void>((resolve) =>
          raw.makeUnaryRequest(
            '/policyengine.v1.PolicyEngineService/Evaluate',
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.from([0xff, 0xff, 0xff]),
            (err) => {
              note('undecodable')(err ?? undefined);
              resolve();
            },
          ),
        ),
      );
      await Promise.all(calls);
      if (round === WARM_UP - 1 || round === ROUNDS - 1) samples.push(rss(daemon.process.pid!));
      if (process.env.HOSTILE_TRACE && round % 20 === 19)
        console.log(`round ${round + 1}: ${(rss(daemon.process.pid!) / 2 ** 20).toFixed(1)} MiB`);
    }
    console.log(`hostile load outcomes (status codes): ${JSON.stringify(Object.fromEntries(outcomes))}`);
    assert.equal(outcomes.get('licenses: 0'), ROUNDS * 10, 'every ordinary evaluation succeeded');
    assert.equal(outcomes.get('hog: 8'), ROUNDS * 3, 'every memory hog was stopped at its cap (RESOURCE_EXHAUSTED)');
    assert.equal(outcomes.get('oversized: 8'), ROUNDS, 'every oversized request was refused');
    assert.equal(outcomes.get('undecodable: 3'), ROUNDS, 'every undecodable request was INVALID_ARGUMENT');
    assert.deepEqual(
      (await c.listPolicies()).policies.map((p) => p.name),
      ['churn-0', 'churn-1', 'churn-2', 'cyclonedx-licenses', 'memory-hog'],
    );
  });

  it('keeps RSS bounded after warm-up', () => {
    const [warm, end] = samples as [number, number];
    console.log(`hostile load RSS: ${(warm / 2 ** 20).toFixed(1)} MiB after warm-up, ${(end / 2 ** 20).toFixed(1)} MiB at the end`);
    assert.ok(
      end - warm < MAX_GROWTH_BYTES,
      `RSS grew ${((end - warm) / 2 ** 20).toFixed(1)} MiB (${(warm / 2 ** 20).toFixed(0)} → ${(end / 2 ** 20).toFixed(0)} MiB) over ${ROUNDS - WARM_UP} rounds`,
    );
  });
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { evaluableInput } from '../../src/materials/evaluable.js';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const json = (b: Uint8Array) => JSON.parse(text(b)) as Record<string, any>;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('evaluable material (the guest input)', () => {
  it('adds chainloop_metadata with name, sha256 digest and built-in annotations that win over custom ones', () => {
    const content = '{"a":1}';
    const input = json(
      evaluableInput({
        content: Buffer.from(content),
        kind: MaterialKind.EVIDENCE,
        name: 'ev',
        annotations: { team: 'red', 'chainloop.material.type': 'FAKE' },
      }),
    );
    assert.deepEqual(input, {
      chainloop_metadata: {
        name: 'ev',
        digest: { sha256: sha(content) },
        annotations: { 'chainloop.material.name': 'ev', 'chainloop.material.type': 'EVIDENCE', team: 'red' },
      },
      a: 1,
    });
  });

  it('keeps the material bytes as they are (big numbers, key order) instead of re-serialising', () => {
    const out = text(evaluableInput({ content: Buffer.from('{"z": 12345678901234567890, "a": 1.50}'), kind: MaterialKind.EVIDENCE }));
    assert.ok(out.endsWith('"z": 12345678901234567890, "a": 1.50}'), out);
  });

  it('wraps a top-level array as {"elements": …}', () => {
    const input = json(evaluableInput({ content: Buffer.from('[1,2]'), kind: MaterialKind.EVIDENCE }));
    assert.deepEqual(input.elements, [1, 2]);
    assert.equal(input.chainloop_metadata.name, 'material');
  });

  it('handles an empty object and replaces a chainloop_metadata the material brought', () => {
    assert.deepEqual(Object.keys(json(evaluableInput({ content: Buffer.from(' { } '), kind: MaterialKind.EVIDENCE }))), [
      'chainloop_metadata',
    ]);
    const replaced = json(
      evaluableInput({ content: Buffer.from('{"chainloop_metadata":{"name":"spoof"},"b":2}'), kind: MaterialKind.EVIDENCE, name: 'real' }),
    );
    assert.equal(replaced.chainloop_metadata.name, 'real');
    assert.equal(replaced.b, 2);
  });

  it('passes prepared content through untouched', () => {
    const content = Buffer.from('not even json');
    assert.equal(evaluableInput({ content, kind: MaterialKind.EVIDENCE, prepared: true }), content);
  });

  it('unwraps the in-toto statement of a DSSE envelope for ATTESTATION', () => {
    const statement = { _type: 'https://in-toto.io/Statement/v1', subject: [] };
    const envelope = {
      payloadType: 'application/vnd.in-toto+json',
      payload: Buffer.from(JSON.stringify(statement)).toString('base64'),
      signatures: [],
    };
    const input = json(evaluableInput({ content: Buffer.from(JSON.stringify(envelope)), kind: MaterialKind.ATTESTATION }));
    assert.equal(input._type, statement._type);
    assert.equal(input.chainloop_metadata.annotations['chainloop.material.type'], 'ATTESTATION');
  });

  it('gives STRING materials {} plus their content in chainloop_metadata, and container images their digest', () => {
    const str = json(evaluableInput({ content: Buffer.from('v1.2.3'), kind: MaterialKind.STRING }));
    assert.equal(Buffer.from(str.chainloop_metadata.content, 'base64').toString(), 'v1.2.3');
    const image = json(
      evaluableInput({ content: Buffer.from(`ghcr.io/a/b@sha256:${'c'.repeat(64)}`), kind: MaterialKind.CONTAINER_IMAGE }),
    );
    assert.equal(image.chainloop_metadata.digest.sha256, 'c'.repeat(64));
  });

  it('refuses invalid JSON and kinds that need a projection, saying what to do', () => {
    assert.throws(
      () => evaluableInput({ content: Buffer.from('{oops'), kind: MaterialKind.SARIF }),
      /SARIF material is not valid JSON .*prepared/,
    );
    assert.throws(() => evaluableInput({ content: Buffer.from('"text"'), kind: MaterialKind.EVIDENCE }), /must be a JSON object or array/);
    assert.throws(
      () => evaluableInput({ content: Buffer.from('<testsuite/>'), kind: MaterialKind.JUNIT_XML }),
      /needs a projection to JSON/,
    );
  });
});

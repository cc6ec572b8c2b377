import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { parsePolicyDocument, scriptSources } from '../../src/policies/document.js';

const bytes = (s: string) => Buffer.from(s);

describe('policy documents', () => {
  it('reads YAML with snake_case keys and enum names', () => {
    const doc = parsePolicyDocument(
      bytes(`
api_version: workflowcontract.chainloop.dev/v1
kind: Policy
metadata:
  name: my-policy
  finding_type: VULNERABILITY
spec:
  inputs: [{ name: level, default: high }]
  policies:
    - kind: SBOM_CYCLONEDX_JSON
      ref: policy.wasm
    - embedded: AGFzbQ==
`),
    );
    assert.equal(doc.metadata.name, 'my-policy');
    assert.equal(doc.metadata.findingType, 'VULNERABILITY');
    assert.deepEqual(
      scriptSources(doc).map((s) => [s.kind, s.location, s.embedded]),
      [
        [MaterialKind.SBOM_CYCLONEDX_JSON, 'policy.wasm', undefined],
        [MaterialKind.UNSPECIFIED, undefined, 'AGFzbQ=='],
      ],
    );
  });

  it('reads JSON with lowerCamel keys and numeric kinds', () => {
    const doc = parsePolicyDocument(
      bytes(
        JSON.stringify({
          apiVersion: 'chainloop.dev/v1',
          kind: 'Policy',
          metadata: { name: 'p' },
          spec: { policies: [{ kind: 11, path: 'x.wasm', attestationPhases: ['PUSH'] }] },
        }),
      ),
    );
    assert.deepEqual(
      scriptSources(doc).map((s) => [s.kind, s.location]),
      [[MaterialKind.EVIDENCE, 'x.wasm']],
    );
  });

  it('supports the legacy single script (spec.path + spec.type)', () => {
    const doc = parsePolicyDocument(
      bytes('apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: old}\nspec: {path: old.wasm, type: SARIF}\n'),
    );
    assert.deepEqual(
      scriptSources(doc).map((s) => [s.kind, s.location, s.field]),
      [[MaterialKind.SARIF, 'old.wasm', 'spec']],
    );
  });

  const rejected: [string, string, RegExp][] = [
    ['not YAML', 'a: [', /neither YAML nor JSON/],
    ['a list', '- 1', /must be a Chainloop Policy/],
    ['wrong apiVersion', 'apiVersion: v2\nkind: Policy\nmetadata: {name: p}\nspec: {path: x}', /apiVersion/],
    ['wrong kind', 'apiVersion: chainloop.dev/v1\nkind: PolicyGroup\nmetadata: {name: p}\nspec: {path: x}', /kind/],
    [
      'bad name',
      'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: My_Policy}\nspec: {path: x}',
      /metadata\.name: must be lowercase/,
    ],
    [
      'unknown field',
      'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: p, colour: red}\nspec: {path: x}',
      /metadata: Unrecognized key.*colour/,
    ],
    [
      'unknown kind',
      'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec: {policies: [{kind: SBOM, ref: x}]}',
      /spec\.policies\.0\.kind: unknown material kind "SBOM"/,
    ],
    [
      'two sources',
      'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec: {policies: [{ref: x, embedded: y}]}',
      /spec\.policies\.0: each entry needs exactly one/,
    ],
    ['no script', 'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec: {inputs: []}', /spec: spec needs `policies`/],
    [
      'required with default',
      'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec: {path: x, inputs: [{name: a, required: true, default: b}]}',
      /spec\.inputs\.0: an input cannot be both required/,
    ],
  ];
  for (const [what, text, message] of rejected) {
    it(`rejects ${what} with INVALID_DOCUMENT naming the field`, () => {
      assert.throws(
        () => parsePolicyDocument(bytes(text)),
        (err: { reason?: string; message: string }) => {
          assert.equal(err.reason, 'INVALID_DOCUMENT');
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});

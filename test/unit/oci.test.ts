import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dsse } from '@sigstore/core';
import { PolicydError } from '../../src/errors/policyd-error.js';
import { credentialsFor } from '../../src/oci/docker-config.js';
import { DOCUMENT_MEDIA_TYPE, WASM_MEDIA_TYPE, packPolicy, policyLayers } from '../../src/oci/policy-artifact.js';
import { formatOciReference, parseOciReference } from '../../src/oci/reference.js';
import { parseChallenge } from '../../src/oci/registry-client.js';
import { SIGN_PREDICATE, SignatureVerifier, signManifest } from '../../src/oci/signatures.js';
import { sha256 } from '../../src/policies/digest.js';

const HEX = 'a'.repeat(64);

describe('OCI references', () => {
  const valid = [
    {
      name: 'registry with port, nested repository, tag',
      ref: 'oci://localhost:5000/policies/sbom:1.0',
      parsed: { registry: 'localhost:5000', repository: 'policies/sbom', tag: '1.0' },
    },
    {
      name: 'no tag means latest',
      ref: 'oci://ghcr.io/acme/sbom',
      parsed: { registry: 'ghcr.io', repository: 'acme/sbom', tag: 'latest' },
    },
    {
      name: 'digest only',
      ref: `oci://ghcr.io/acme/sbom@sha256:${HEX}`,
      parsed: { registry: 'ghcr.io', repository: 'acme/sbom', digest: `sha256:${HEX}` },
    },
    {
      name: 'tag and digest',
      ref: `oci://ghcr.io/acme/sbom:1@sha256:${HEX}`,
      parsed: { registry: 'ghcr.io', repository: 'acme/sbom', tag: '1', digest: `sha256:${HEX}` },
    },
    { name: 'IPv6 registry', ref: 'oci://[::1]:5000/p:v', parsed: { registry: '[::1]:5000', repository: 'p', tag: 'v' } },
    {
      name: 'separators inside components',
      ref: 'oci://r.io/a__b/c.d-e:t',
      parsed: { registry: 'r.io', repository: 'a__b/c.d-e', tag: 't' },
    },
  ];
  for (const c of valid) {
    it(`reads ${c.name}, and writes it back`, () => {
      const parsed = parseOciReference(c.ref);
      assert.deepEqual({ ...parsed }, { tag: undefined, digest: undefined, ...c.parsed });
      assert.equal(parseOciReference(formatOciReference(parsed)).repository, parsed.repository);
    });
  }
  const invalid = [
    { name: 'another scheme', ref: 'https://ghcr.io/acme/sbom', why: /must start with oci:\/\// },
    { name: 'no repository', ref: 'oci://ghcr.io', why: /no registry host/ },
    { name: 'upper case in the repository', ref: 'oci://ghcr.io/Acme/sbom', why: /lowercase/ },
    { name: 'a path escape', ref: 'oci://ghcr.io/../sbom', why: /lowercase path components/ },
    { name: 'a short digest', ref: 'oci://ghcr.io/acme/sbom@sha256:abc', why: /sha256:<64 hex digits>/ },
    { name: 'another digest algorithm', ref: `oci://ghcr.io/acme/sbom@sha512:${HEX}${HEX}`, why: /sha256/ },
    { name: 'a tag too long', ref: `oci://ghcr.io/acme/sbom:${'t'.repeat(129)}`, why: /not a valid tag/ },
    { name: 'a host with a space', ref: 'oci://bad host/acme', why: /not a host name/ },
  ];
  for (const c of invalid) {
    it(`refuses ${c.name}, saying how to write one`, () => {
      assert.throws(
        () => parseOciReference(c.ref),
        (err: unknown) =>
          err instanceof PolicydError &&
          err.reason === 'UNSUPPORTED_REF' &&
          c.why.test(err.message) &&
          /oci:\/\/registry/.test(err.message),
      );
    });
  }
});

describe('the policy artifact format', () => {
  const files = {
    document: { title: 'policy.yaml', bytes: Buffer.from('kind: Policy\n') },
    scripts: { 'b.wasm': Buffer.from('B'), 'a.wasm': Buffer.from('A') },
  };

  it('packs the same files into the same manifest (no timestamps), modules in a stable order', () => {
    const one = packPolicy(files);
    const two = packPolicy({ ...files, scripts: { 'a.wasm': Buffer.from('A'), 'b.wasm': Buffer.from('B') } });
    assert.equal(one.digest, two.digest);
    assert.equal(one.digest, sha256(one.manifest));
    const layers = policyLayers(one.manifest, 'test');
    assert.equal(layers.document.mediaType, DOCUMENT_MEDIA_TYPE);
    assert.deepEqual([...layers.scripts.keys()], ['a.wasm', 'b.wasm']);
    assert.equal(layers.totalBytes, files.document.bytes.byteLength + 2);
    for (const d of [layers.document, ...layers.scripts.values()]) assert.ok(one.blobs.has(d.digest));
  });

  const manifest = (patch: object) => Buffer.from(JSON.stringify({ ...JSON.parse(packPolicy(files).manifest.toString()), ...patch }));
  const layer = (mediaType: string, title?: string) => ({
    mediaType,
    digest: sha256(title ?? 'x'),
    size: 1,
    ...(title ? { annotations: { 'org.opencontainers.image.title': title } } : {}),
  });
  const refused = [
    { name: 'not JSON', bytes: Buffer.from('{'), why: /not JSON/ },
    { name: 'an image index', bytes: manifest({ mediaType: 'application/vnd.oci.image.index.v1+json' }), why: /not an OCI image manifest/ },
    { name: 'another artifact type', bytes: manifest({ artifactType: 'application/vnd.cncf.helm.config.v1+json' }), why: /artifact type/ },
    {
      name: 'no document',
      bytes: manifest({ layers: [layer(WASM_MEDIA_TYPE, 'p.wasm')] }),
      why: /no application\/vnd.wasm-policyd.policy.document/,
    },
    {
      name: 'two documents',
      bytes: manifest({ layers: [layer(DOCUMENT_MEDIA_TYPE, 'a'), layer(DOCUMENT_MEDIA_TYPE, 'b')] }),
      why: /two policy documents/,
    },
    {
      name: 'an untitled module',
      bytes: manifest({ layers: [layer(DOCUMENT_MEDIA_TYPE, 'd'), layer(WASM_MEDIA_TYPE)] }),
      why: /no org.opencontainers.image.title/,
    },
    {
      name: 'two modules with one title',
      bytes: manifest({ layers: [layer(DOCUMENT_MEDIA_TYPE, 'd'), layer(WASM_MEDIA_TYPE, 'p'), layer(WASM_MEDIA_TYPE, 'p')] }),
      why: /two module layers are titled p/,
    },
    {
      name: 'a layer of another type',
      bytes: manifest({ layers: [layer(DOCUMENT_MEDIA_TYPE, 'd'), layer('application/x-sh', 'run.sh')] }),
      why: /media type application\/x-sh/,
    },
    { name: 'a negative size', bytes: manifest({ layers: [{ ...layer(DOCUMENT_MEDIA_TYPE, 'd'), size: -1 }] }), why: /digest or size/ },
    {
      name: 'too many layers',
      bytes: manifest({ layers: Array.from({ length: 65 }, (_, i) => layer(WASM_MEDIA_TYPE, `m${i}`)) }),
      why: /more than 64/,
    },
  ];
  for (const c of refused) {
    it(`refuses a manifest with ${c.name}`, () => {
      assert.throws(
        () => policyLayers(c.bytes, 'oci://r/p@sha256:x'),
        (err: unknown) => err instanceof PolicydError && err.reason === 'INVALID_ARTIFACT' && c.why.test(err.message),
      );
    });
  }
});

describe('registry authentication challenges', () => {
  it('reads a Bearer challenge with its realm, service and scope', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:p:pull"'), {
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:p:pull' },
    });
  });
  it('reads a Basic challenge', () => {
    assert.deepEqual(parseChallenge('Basic realm="policyd"'), { scheme: 'basic', params: { realm: 'policyd' } });
  });
});

describe('credentials from a Docker config file', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-docker-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config = (name: string, content: object) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify(content));
    return file;
  };

  it('decodes auths[registry].auth, with keys written as URLs too', async () => {
    const file = config('a.json', {
      auths: { 'https://registry.example:5000/v1/': { auth: Buffer.from('bot:pa:ss').toString('base64') } },
    });
    assert.deepEqual(await credentialsFor('registry.example:5000', file), { username: 'bot', password: 'pa:ss' });
    assert.equal(await credentialsFor('other.example', file), undefined);
  });
  it('takes an identity token (an OAuth2 refresh token) over a password', async () => {
    const file = config('b.json', { auths: { 'r.example': { identitytoken: 'refresh', username: 'u', password: 'p' } } });
    assert.deepEqual(await credentialsFor('r.example', file), { identityToken: 'refresh' });
  });
  it('asks the registry’s credential helper, as the Docker CLI does', async () => {
    const helper = join(dir, 'docker-credential-test');
    writeFileSync(
      helper,
      '#!/bin/sh\nread host\necho "{\\"ServerURL\\":\\"$host\\",\\"Username\\":\\"from-helper\\",\\"Secret\\":\\"s3cret-$host\\"}"\n',
    );
    chmodSync(helper, 0o755);
    const file = config('c.json', { credHelpers: { 'r.example': 'test' } });
    const previous = process.env.PATH;
    process.env.PATH = `${dir}:${previous}`;
    try {
      assert.deepEqual(await credentialsFor('r.example', file), { username: 'from-helper', password: 's3cret-r.example' });
    } finally {
      process.env.PATH = previous;
    }
  });
  it('is anonymous without a file, and says which file is broken', async () => {
    assert.equal(await credentialsFor('r.example', join(dir, 'absent.json')), undefined);
    writeFileSync(join(dir, 'broken.json'), '{"auths": 3}');
    await assert.rejects(credentialsFor('r.example', join(dir, 'broken.json')), /broken\.json is not a Docker config/);
    writeFileSync(join(dir, 'truncated.json'), '{"auths": {');
    await assert.rejects(credentialsFor('r.example', join(dir, 'truncated.json')), /truncated\.json is not a Docker config/);
  });
});

describe('signature verification', () => {
  const release = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const digest = `sha256:${HEX}`;
  const verifier = new SignatureVerifier([{ name: 'release.pub', key: release.publicKey }]);
  const verify = (bundles: Uint8Array[], d = digest) => verifier.verify(d, bundles, 'oci://r/p@x');
  const refusedBecause = (why: RegExp) => (err: unknown) =>
    err instanceof PolicydError && err.reason === 'SIGNATURE_NOT_VERIFIED' && why.test(err.message);

  /** A bundle signing an arbitrary statement, to build the cases push never makes. */
  function bundleFor(statement: object, key = release.privateKey): Uint8Array {
    const payload = Buffer.from(JSON.stringify(statement));
    const sig = sign('sha256', dsse.preAuthEncoding('application/vnd.in-toto+json', payload), key);
    const bundle = JSON.parse(Buffer.from(signManifest(digest, key, release.publicKey)).toString());
    bundle.dsseEnvelope = {
      payload: payload.toString('base64'),
      payloadType: 'application/vnd.in-toto+json',
      signatures: [{ sig: sig.toString('base64'), keyid: '' }],
    };
    return Buffer.from(JSON.stringify(bundle));
  }
  const statement = (predicateType: string, d = HEX) => ({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ digest: { sha256: d } }],
    predicateType,
    predicate: {},
  });

  it('accepts a signature of this manifest by a configured key, among others', () => {
    const foreign = signManifest(digest, other.privateKey, other.publicKey);
    assert.deepEqual(verify([foreign, signManifest(digest, release.privateKey, release.publicKey)]), { key: 'release.pub' });
  });
  it('refuses no signature, naming the keys and how to sign', () => {
    assert.throws(() => verify([]), refusedBecause(/is not signed.*release\.pub.*push --sign-key/));
  });
  it('refuses a signature by another key', () => {
    assert.throws(() => verify([signManifest(digest, other.privateKey, other.publicKey)]), refusedBecause(/not signed by release\.pub/));
  });
  it('refuses a signature of another manifest (a replayed signature)', () => {
    assert.throws(
      () => verify([signManifest(`sha256:${'b'.repeat(64)}`, release.privateKey, release.publicKey)]),
      refusedBecause(/signs something else/),
    );
  });
  it('refuses an attestation by the right key: only cosign’s sign predicate approves a policy', () => {
    assert.throws(() => verify([bundleFor(statement('https://slsa.dev/provenance/v1'))]), refusedBecause(/signs something else/));
    assert.deepEqual(verify([bundleFor(statement(SIGN_PREDICATE))]), { key: 'release.pub' });
  });
  it('refuses a bundle whose statement was changed after signing', () => {
    const bundle = JSON.parse(Buffer.from(bundleFor(statement(SIGN_PREDICATE, 'b'.repeat(64)))).toString());
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement(SIGN_PREDICATE))).toString('base64');
    assert.throws(() => verify([Buffer.from(JSON.stringify(bundle))]), refusedBecause(/not signed by release\.pub/));
  });
  it('refuses a bundle whose statement is not JSON', () => {
    const bundle = JSON.parse(Buffer.from(bundleFor(statement(SIGN_PREDICATE))).toString());
    bundle.dsseEnvelope.payload = Buffer.from('not json').toString('base64');
    assert.throws(() => verify([Buffer.from(JSON.stringify(bundle))]), refusedBecause(/signs something else/));
  });
  it('refuses what is not a bundle', () => {
    assert.throws(() => verify([Buffer.from('{"mediaType":"x"}')]), refusedBecause(/not a Sigstore bundle/));
  });
});

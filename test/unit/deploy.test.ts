import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { helmLint, helmTemplate } from '../helpers/helm.js';
import { ROOT } from '../helpers/paths.js';

/** Validates a manifest against the Kubernetes OpenAPI schema (kubernetes-models). */
async function validate(doc: Record<string, unknown>): Promise<void> {
  const manifest = doc;
  const [group, version] = String(manifest.apiVersion).includes('/')
    ? String(manifest.apiVersion).split('/')
    : ['', String(manifest.apiVersion)];
  if (group === 'monitoring.coreos.com') return; // a CRD the Kubernetes schemas do not carry
  const module = await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${manifest.kind}`);
  const Model = module[manifest.kind as string];
  assert.ok(Model, `no model for ${manifest.apiVersion} ${manifest.kind}`);
  try {
    new Model(manifest).validate();
  } catch (err) {
    throw new Error(`${manifest.kind}: ${(err as Error).message}`);
  }
}

const container = (docs: Record<string, unknown>[]) =>
  (docs.find((d) => d.kind === 'Deployment') as any).spec.template.spec.containers.find((c: { name: string }) => c.name === 'wasm-policyd');

describe('deployment manifests', () => {
  for (const file of ['sidecar.yaml', 'standalone.yaml']) {
    it(`deploy/kubernetes/${file} is valid Kubernetes and runs non-root with probes`, async () => {
      const docs = parseAllDocuments(readFileSync(`${ROOT}deploy/kubernetes/${file}`, 'utf8')).map(
        (d) => d.toJSON() as Record<string, unknown>,
      );
      for (const doc of docs) await validate(doc);
      const c = container(docs);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.ok(c.readinessProbe && c.livenessProbe);
      assert.equal((docs.find((d) => d.kind === 'Deployment') as any).spec.template.spec.securityContext.runAsNonRoot, true);
    });
  }

  it('the standalone Service is headless, for client-side load balancing', () => {
    const docs = parseAllDocuments(readFileSync(`${ROOT}deploy/kubernetes/standalone.yaml`, 'utf8')).map((d) => d.toJSON());
    assert.equal(docs.find((d: any) => d.kind === 'Service').spec.clusterIP, 'None');
  });

  it('the sidecar shares a unix socket volume between the two containers', () => {
    const docs = parseAllDocuments(readFileSync(`${ROOT}deploy/kubernetes/sidecar.yaml`, 'utf8')).map((d) => d.toJSON());
    const pod = docs.find((d: any) => d.kind === 'Deployment').spec.template.spec;
    for (const c of pod.containers)
      assert.ok(
        c.volumeMounts.some((m: { name: string }) => m.name === 'policyd-socket'),
        c.name,
      );
    assert.equal(
      pod.containers[1].env.find((e: { name: string }) => e.name === 'POLICYD_LISTEN').value,
      'unix:///var/run/policyd/policyd.sock',
    );
  });
});

describe('Helm chart', () => {
  const chart = `${ROOT}deploy/helm/wasm-policyd`;

  it('passes helm lint --strict', () => {
    assert.match(helmLint(chart), /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('renders valid Kubernetes objects with default values: Deployment, headless Service, HPA, PDB, a token Secret', async () => {
    const docs = helmTemplate(chart);
    for (const doc of docs) await validate(doc);
    assert.deepEqual(docs.map((d) => d.kind).sort(), [
      'Deployment',
      'HorizontalPodAutoscaler',
      'Pod',
      'PodDisruptionBudget',
      'Secret',
      'Service',
      'ServiceAccount',
    ]);
    const deployment = docs.find((d) => d.kind === 'Deployment')!;
    assert.equal(deployment.spec.template.spec.serviceAccountName, docs.find((d) => d.kind === 'ServiceAccount')!.metadata.name);
    assert.equal(deployment.spec.template.spec.automountServiceAccountToken, false);
    assert.equal(container(docs).image, 'ghcr.io/example/wasm-policyd:0.1.0', "image.tag defaults to the chart's appVersion");
    const test = docs.find((d) => d.kind === 'Pod')!;
    assert.equal(test.metadata.annotations['helm.sh/hook'], 'test');
    assert.ok(test.spec.containers[0].args.includes('-service=policyengine.v1.PolicyEngineService'));
    const c = container(docs);
    assert.deepEqual(c.readinessProbe.grpc, { port: 50051, service: 'policyengine.v1.PolicyEngineService' });
    assert.deepEqual(c.livenessProbe.grpc, { port: 50051 });
    assert.deepEqual(c.resources, { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } });
    assert.equal((docs.find((d) => d.kind === 'Deployment') as any).spec.replicas, undefined, 'the HPA owns replicas');
    assert.equal(c.env.find((e: { name: string }) => e.name === 'POLICYD_STATE_DIR').value, '/var/lib/wasm-policyd');
    assert.ok(
      c.volumeMounts.some((m: { name: string; mountPath: string }) => m.name === 'state' && m.mountPath === '/var/lib/wasm-policyd'),
    );
  });

  it('creates random admin and evaluate tokens by default, and the daemon its environment describes starts without anonymous access', async () => {
    const docs = helmTemplate(chart);
    const secret = docs.find((d) => d.kind === 'Secret')!;
    const tokens: Record<string, string> = Object.fromEntries(
      Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString()]),
    );
    assert.deepEqual(Object.keys(tokens).sort(), ['admin-tokens', 'evaluate-tokens']);
    assert.ok(Object.values(tokens).every((t) => /^[A-Za-z0-9]{40}$/.test(t)) && tokens['admin-tokens'] !== tokens['evaluate-tokens']);
    assert.notEqual(
      helmTemplate(chart).find((d) => d.kind === 'Secret')!.data['admin-tokens'],
      secret.data['admin-tokens'],
      'random per install',
    );
    const env: Record<string, string> = {};
    for (const e of container(docs).env as {
      name: string;
      value?: string;
      valueFrom?: { secretKeyRef: { name: string; key: string } };
    }[]) {
      if (e.valueFrom) assert.equal(e.valueFrom.secretKeyRef.name, secret.metadata.name);
      env[e.name] = e.value ?? tokens[e.valueFrom!.secretKeyRef.key]!;
    }
    const { loadConfig } = await import('../../src/config/load.js');
    const { Authorizer } = await import('../../src/server/authorization.js');
    const config = loadConfig({ env });
    assert.equal(new Authorizer(config.auth, config.listen, false).anonymous, 'none');
  });

  it('pulls policies from a registry with mounted credentials and signature keys, as the daemon reads its environment', async () => {
    const pem = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----';
    const docs = helmTemplate(chart, {
      policiesConfigMap: 'local-policies',
      oci: {
        policies: ['oci://registry.example.com/policies/sbom:1.0'],
        onDemand: ['oci://registry.example.com/policies/sbom'],
        credentialsSecret: 'registry-login',
        allowPrivateNetwork: true,
      },
      signatures: { publicKeys: { 'release.pub': pem } },
    });
    for (const doc of docs) await validate(doc);
    const c = container(docs);
    const env = Object.fromEntries(
      (c.env as { name: string; value?: string }[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
    );
    const { loadConfig } = await import('../../src/config/load.js');
    const config = loadConfig({ env });
    assert.deepEqual(config.policies, ['/policies', 'oci://registry.example.com/policies/sbom:1.0']);
    assert.deepEqual(config.oci.onDemand, ['oci://registry.example.com/policies/sbom']);
    assert.equal(config.oci.allowPrivateNetwork, true);
    assert.deepEqual(config.signatures.keys, ['/etc/wasm-policyd/keys/release.pub']);
    const pod = (docs.find((d) => d.kind === 'Deployment') as any).spec.template.spec;
    const mountOf = (volume: string) => c.volumeMounts.find((m: { name: string }) => m.name === volume).mountPath;
    const credentials = pod.volumes.find((v: any) => v.secret?.secretName === 'registry-login');
    assert.equal(`${mountOf(credentials.name)}/${credentials.secret.items[0].path}`, config.oci.dockerConfig);
    assert.equal(credentials.secret.items[0].key, '.dockerconfigjson');
    const keys = docs.find((d) => d.kind === 'ConfigMap' && d.data?.['release.pub'])!;
    assert.equal(keys.data['release.pub'], pem);
    const keyVolume = pod.volumes.find((v: any) => v.configMap?.name === keys.metadata.name);
    assert.equal(`${mountOf(keyVolume.name)}/release.pub`, config.signatures.keys[0]);
    assert.throws(() => helmTemplate(chart, { oci: { policies: ['registry.example.com/policies/sbom:1.0'] } }), /oci/);
  });

  it('takes scheduling, pull secrets, name overrides and an existing service account', async () => {
    const docs = helmTemplate(chart, {
      fullnameOverride: 'policyd',
      imagePullSecrets: [{ name: 'registry' }],
      nodeSelector: { 'kubernetes.io/arch': 'amd64' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'policy', effect: 'NoSchedule' }],
      affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
      serviceAccount: { create: false, name: 'existing' },
      image: { tag: '9.9.9' },
    });
    for (const doc of docs) await validate(doc);
    const pod = docs.find((d) => d.kind === 'Deployment')!.spec.template.spec;
    assert.equal(docs.find((d) => d.kind === 'Deployment')!.metadata.name, 'policyd');
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'registry' }]);
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/arch': 'amd64' });
    assert.equal(pod.tolerations[0].key, 'dedicated');
    assert.ok(pod.affinity.podAntiAffinity);
    assert.equal(pod.serviceAccountName, 'existing');
    assert.equal(
      docs.find((d) => d.kind === 'ServiceAccount'),
      undefined,
    );
    assert.equal(container(docs).image, 'ghcr.io/example/wasm-policyd:9.9.9');
  });

  it('refuses values that do not fit values.schema.json, naming the key', () => {
    assert.throws(() => helmTemplate(chart, { config: { memoryLimitMb: 'big' } }), /\/config\/memoryLimitMb': got string, want integer/);
    assert.throws(() => helmTemplate(chart, { replicas: 3 }), /additional properties 'replicas' not allowed/);
  });

  it('switches to TLS, tokens and admin-port probes, and drops HPA/PDB when told to', async () => {
    const docs = helmTemplate(chart, {
      tls: { enabled: true, secretName: 'tls', clientCaKey: 'ca.crt' },
      auth: { existingSecret: 'tokens', adminIdentities: ['control-plane'] },
      policiesConfigMap: 'policies',
      autoscaling: { enabled: false },
      podDisruptionBudget: { enabled: false },
      serviceMonitor: { enabled: true },
      config: { allowedHostnames: ['a.example', '*.b.example'] },
    });
    for (const doc of docs) await validate(doc);
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['Deployment', 'Pod', 'Service', 'ServiceAccount', 'ServiceMonitor']);
    const c = container(docs);
    const env = Object.fromEntries(c.env.map((e: { name: string; value?: string }) => [e.name, e.value ?? 'secret']));
    assert.equal(env.POLICYD_TLS_CLIENT_CA, '/tls/ca.crt');
    assert.equal(env.POLICYD_AUTH_ADMIN_TOKENS, 'secret');
    assert.equal(env.POLICYD_AUTH_ADMIN_IDENTITIES, 'control-plane');
    assert.equal(c.env.find((e: { name: string }) => e.name === 'POLICYD_AUTH_ADMIN_TOKENS').valueFrom.secretKeyRef.name, 'tokens');
    assert.equal(env.POLICYD_HTTP_ALLOWED_HOSTNAMES, 'a.example,*.b.example');
    assert.equal(env.POLICYD_POLICIES, '/policies');
    assert.equal(env.POLICYD_TLS_INSECURE, undefined);
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'admin' });
    assert.equal((docs.find((d) => d.kind === 'Deployment') as any).spec.replicas, 2);
  });
});

describe('every launcher of the daemon gives its main thread the V8 flags it needs', () => {
  it('the Dockerfile, the bin shebang and make run pass DAEMON_NODE_FLAGS', async () => {
    const { DAEMON_NODE_FLAGS } = await import('../../src/config/defaults.js');
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(`${ROOT}Dockerfile`, 'utf8'))![1]!;
    const shebang = readFileSync(`${ROOT}src/cli/main.ts`, 'utf8').split('\n')[0]!;
    const run = /^run:.*\n\t(.*)$/m.exec(readFileSync(`${ROOT}Makefile`, 'utf8'))![1]!;
    for (const flag of DAEMON_NODE_FLAGS) {
      assert.ok((JSON.parse(entrypoint) as string[]).includes(flag), `Dockerfile ENTRYPOINT lacks ${flag}`);
      assert.ok(shebang.split(' ').includes(flag), `the shebang of src/cli/main.ts lacks ${flag}`);
      assert.ok(run.split(' ').includes(flag), `make run lacks ${flag}`);
    }
  });
});

describe('deployment files name only real settings', () => {
  it('every POLICYD_* variable in Dockerfile, manifests and chart is a daemon setting', async () => {
    const { SETTINGS, envName } = await import('../../src/config/settings.js');
    const known = new Set(SETTINGS.map((s) => envName(s.path)));
    const files = [
      'Dockerfile',
      'deploy/kubernetes/sidecar.yaml',
      'deploy/kubernetes/standalone.yaml',
      'deploy/helm/wasm-policyd/templates/deployment.yaml',
    ];
    const used = files.flatMap((f) => [...readFileSync(`${ROOT}${f}`, 'utf8').matchAll(/POLICYD_[A-Z_]+/g)].map((m) => m[0]));
    assert.ok(used.length > 10);
    assert.deepEqual([...new Set(used.filter((v) => !known.has(v)))], []);
  });
});

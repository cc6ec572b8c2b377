import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

export interface Pki {
  ca: string;
  cert: string;
  key: string;
}

/** A throwaway CA and one certificate it signed (server: SAN localhost/127.0.0.1), as PEM files. */
export function makePki(dir: string, name: string, cn = 'localhost'): Pki {
  const p = (f: string) => join(dir, `${name}-${f}`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, 'req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', `/CN=${name}-ca`);
  openssl(dir, 'req', ...ec, '-keyout', p('key.pem'), '-out', p('csr.pem'), '-subj', `/CN=${cn}`);
  writeFileSync(p('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    p('csr.pem'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('cert.pem'),
    '-days',
    '2',
    '-extfile',
    p('ext.cnf'),
  );
  return { ca: p('ca.pem'), cert: p('cert.pem'), key: p('key.pem') };
}

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether the local redis-server can serve TLS and `openssl` can make certificates, and if not why. */
export function tlsSupport(): { readonly ok: true } | { readonly ok: false; readonly reason: string } {
  const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8', timeout: 5000 });
  if (openssl.error || openssl.status !== 0) {
    return { ok: false, reason: 'openssl is not on PATH: cannot make a throwaway CA and certificate' };
  }
  const server = process.env['SLUICE_REDIS_SERVER'] ?? 'redis-server';
  // A TLS build fails on the missing key file; a build without TLS does not know the directive.
  const probe = spawnSync(server, ['--port', '0', '--tls-port', '1', '--save', '', '--appendonly', 'no'], {
    encoding: 'utf8',
    timeout: 5000,
  });
  const output = `${probe.stdout}${probe.stderr}`;
  if (probe.error) return { ok: false, reason: `${server} could not be run: ${probe.error.message}` };
  if (/Bad directive|wrong number of arguments|not supported/i.test(output)) {
    return { ok: false, reason: `${server} was built without TLS support (it does not know --tls-port)` };
  }
  if (!/tls/i.test(output)) {
    return {
      ok: false,
      reason: `could not tell whether ${server} supports TLS: ${output.trim().slice(0, 200)}`,
    };
  }
  return { ok: true };
}

/** A throwaway CA and a server certificate for 127.0.0.1 signed by it, in a temp dir. */
export interface TlsMaterial {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA certificate, PEM. */
  readonly ca: string;
  /** A second CA that signed nothing here: a client trusting only it must refuse the server. */
  readonly otherCa: string;
  dispose(): void;
}

export function makeTlsMaterial(): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-faults-tls-'));
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  const ca = (name: string): void => {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.crt`),
    );
  };
  ca('sluice-faults-ca');
  ca('sluice-faults-other-ca');
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  );
  writeFileSync(file('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    '-days',
    '2',
    '-in',
    file('server.csr'),
    '-CA',
    file('sluice-faults-ca.crt'),
    '-CAkey',
    file('sluice-faults-ca.key'),
    '-CAcreateserial',
    '-extfile',
    file('san.cnf'),
    '-out',
    file('server.crt'),
  );
  return {
    dir,
    caFile: file('sluice-faults-ca.crt'),
    certFile: file('server.crt'),
    keyFile: file('server.key'),
    ca: readFileSync(file('sluice-faults-ca.crt'), 'utf8'),
    otherCa: readFileSync(file('sluice-faults-other-ca.crt'), 'utf8'),
    dispose: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

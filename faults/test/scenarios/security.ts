import { StoreError } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { getFreePort, uniquePrefix } from '@sluice/testing';
import type { ConnectionSpec } from '../../src/protocol';
import { toConnection } from '../../src/program';
import { Harness } from '../support/harness';
import { Ledgers } from '../support/ledger';
import { describeExit, ProgramProcess, runConnectCheck } from '../support/programs';
import { reconcile } from '../support/reconcile';
import { report, resultOf } from '../support/results';
import { makeTlsMaterial, tlsSupport, type TlsMaterial } from '../support/tls';

export interface SecurityParams {
  readonly jobs: number;
  readonly workers: number;
  readonly record: boolean;
  readonly timeoutMs: number;
}

const USER = 'sluice';
const PASSWORD = 's3cret-worker-pass';
const DEFAULT_PASSWORD = 'default-pass';

/** What a refused `RedisStore.connect` threw, and how long it took. */
async function refusal(connection: ConnectionSpec): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    const store = await RedisStore.connect({
      connection: toConnection(connection),
      prefix: uniquePrefix('refused'),
      connectTimeoutMs: 5000,
    });
    await store.close();
    return { error: undefined, ms: Date.now() - started };
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
}

async function runJobs(
  h: Harness,
  queue: string,
  p: SecurityParams,
): Promise<{ r: Awaited<ReturnType<typeof reconcile>>; workers: ProgramProcess[] }> {
  await h.keepAllRecords(queue);
  const workers: ProgramProcess[] = [];
  for (let i = 0; i < p.workers; i++)
    workers.push(await h.startWorker(`w${String(i)}`, queue, { concurrency: 10, workMs: 1 }));
  const ids = await h.enqueue(queue, p.jobs);
  await h.waitForQuiet(queue, p.jobs, p.timeoutMs / 3);
  await h.stopPrograms();
  return { r: await reconcile(h.store, queue, ids, Ledgers.read(h.ledgerDir)), workers };
}

/**
 * Redis with `requirepass` and an ACL user: the store and worker processes connect as the user and
 * process jobs; wrong or missing credentials make `RedisStore.connect` refuse at once with Redis' own
 * reason, and a worker process given them exits with that reason and runs nothing.
 */
export function aclScenario(p: SecurityParams): void {
  it(
    'ACL user and password: workers connect and process jobs; wrong credentials are refused at connect with a clear error',
    async () => {
      const h = await Harness.start({
        label: 'acl',
        requirepass: DEFAULT_PASSWORD,
        users: [`${USER} on >${PASSWORD} ~* &* +@all`],
        connection: (redis) => `redis://${USER}:${PASSWORD}@${redis.host}:${String(redis.port)}`,
      });
      try {
        const { host, port } = h.redis;
        expect(await h.admin.acl('WHOAMI')).toBe(USER);
        const { r } = await runJobs(h, 'acl', p);

        const asDefault = await refusal(`redis://:${DEFAULT_PASSWORD}@${host}:${String(port)}`);
        const wrongPassword = await refusal(`redis://${USER}:wrong@${host}:${String(port)}`);
        const unknownUser = await refusal(`redis://nobody:${PASSWORD}@${host}:${String(port)}`);
        const noPassword = await refusal(`redis://${host}:${String(port)}`);
        const badWorker = await ProgramProcess.start(
          'worker',
          'bad-credentials',
          h.workerConfig('bad-credentials', 'acl', {
            connection: `redis://${USER}:wrong@${host}:${String(port)}`,
          }),
          { waitReady: false },
        );
        const badExit = await badWorker.exited;
        const badRuns =
          Ledgers.read(h.ledgerDir)
            .of(badWorker.pid)
            ?.entries.filter((e) => e.tag === 'S').length ?? 0;
        const message = (x: { error: unknown }): string =>
          x.error instanceof Error ? x.error.message : String(x.error);
        report(
          resultOf('security-acl', r, [
            `${String(p.workers)} workers as ACL user "${USER}" (requirepass set for the default user)`,
            `refused at connect: wrong password "${message(wrongPassword)}" in ${String(wrongPassword.ms)} ms; unknown user "${message(unknownUser)}"; no credentials "${message(noPassword)}" in ${String(noPassword.ms)} ms`,
            `a worker process with a wrong password: ${describeExit(badExit)}, ran ${String(badRuns)} jobs`,
          ]),
          { record: p.record },
        );

        expect(r.lost).toBe(0);
        expect(r.completed).toBe(p.jobs);
        expect(asDefault.error).toBeUndefined();
        for (const x of [wrongPassword, unknownUser]) {
          expect(x.error).toBeInstanceOf(StoreError);
          expect(message(x)).toBe('redis: WRONGPASS invalid username-password pair or user is disabled.');
          expect(x.ms).toBeLessThan(2000);
        }
        expect(noPassword.error).toBeInstanceOf(StoreError);
        expect(message(noPassword)).toBe('redis: NOAUTH Authentication required.');
        expect(noPassword.ms).toBeLessThan(2000);
        expect(describeExit(badExit)).toBe('code 1');
        expect(badWorker.text).toMatch(
          /worker failed: StoreError: redis: WRONGPASS invalid username-password pair/,
        );
        expect(badRuns).toBe(0);
      } finally {
        await h.dispose();
      }
    },
    p.timeoutMs,
  );
}

const tls = tlsSupport();

/**
 * The same over TLS (a throwaway CA and server certificate made with openssl; the server's plain port
 * is only used by the harness to see it start): workers connect as the ACL user over TLS and process
 * jobs. A client that does not trust the server's CA must be refused with an error that names the
 * certificate problem, and the failed connection must not take the process down.
 */
export function tlsScenario(p: SecurityParams): void {
  if (!tls.ok) {
    it.skip(`TLS (skipped: ${tls.reason})`, () => undefined);
    process.stdout.write(`[faults] TLS scenario skipped: ${tls.reason}\n`);
    return;
  }

  /**
   * A Redis serving TLS on its own port (a throwaway CA and server certificate) to ACL user `USER`;
   * the harness's store and programs connect over TLS trusting that CA.
   */
  const withTlsServer = async (
    label: string,
    fn: (h: Harness, tlsPort: number, material: TlsMaterial) => Promise<void>,
  ): Promise<void> => {
    const material = makeTlsMaterial();
    try {
      const tlsPort = await getFreePort();
      const h = await Harness.start({
        label,
        users: ['default off', `${USER} on >${PASSWORD} ~* &* +@all`],
        config: {
          'tls-port': tlsPort,
          'tls-cert-file': material.certFile,
          'tls-key-file': material.keyFile,
          'tls-ca-cert-file': material.caFile,
          'tls-auth-clients': 'no',
        },
        connection: (redis) => ({
          host: redis.host,
          port: tlsPort,
          username: USER,
          password: PASSWORD,
          tls: { ca: material.ca },
        }),
      });
      try {
        await fn(h, tlsPort, material);
      } finally {
        await h.dispose();
      }
    } finally {
      material.dispose();
    }
  };

  it(
    'TLS with an ACL user: workers connect over TLS and process jobs',
    async () => {
      await withTlsServer('tls', async (h) => {
        expect(await h.admin.acl('WHOAMI')).toBe(USER);
        const { r } = await runJobs(h, 'tls', p);
        report(
          resultOf('security-tls', r, [
            `${String(p.workers)} workers over TLS (server certificate from a throwaway CA) as ACL user "${USER}"; default user disabled`,
          ]),
          { record: p.record },
        );
        expect(r.lost).toBe(0);
        expect(r.completed).toBe(p.jobs);
      });
    },
    p.timeoutMs,
  );

  /** A TLS server whose certificate the client cannot verify (it trusts another CA only). */
  const withUntrustedServer = (
    label: string,
    fn: (connection: ConnectionSpec) => Promise<void>,
  ): Promise<void> =>
    withTlsServer(label, (h, tlsPort, material) =>
      fn({
        host: h.redis.host,
        port: tlsPort,
        username: USER,
        password: PASSWORD,
        tls: { ca: material.otherCa },
      }),
    );

  it(
    'TLS with an untrusted server certificate: failed connections do not crash the process',
    async () => {
      await withUntrustedServer('tls-crash', async (connection) => {
        // A failed TLS handshake crashes the process only sometimes (about one connection in ten here):
        // 60 attempts, 20 at a time, make a crash all but certain if it can happen.
        const attempts = 60;
        const check = await runConnectCheck({
          connection,
          attempts,
          parallel: 20,
          connectTimeoutMs: 5000,
          lingerMs: 1500,
        });
        const crash = /^Error: .*$/m.exec(check.output)?.[0];
        const emitter = /Emitted 'error' event on (\w+) instance/.exec(check.output)?.[1];
        process.stdout.write(
          `[faults] TLS, untrusted certificate: ${String(attempts)} connect attempts in one process → ${describeExit(check.exit)}${crash ? `: unhandled 'error' event on a ${emitter ?? '?'} (${crash})` : ''}\n`,
        );
        expect({ exit: describeExit(check.exit), crash }).toEqual({ exit: 'code 0', crash: undefined });
        expect(check.report?.results.filter((x) => !x.ok)).toHaveLength(attempts);
      });
    },
    p.timeoutMs,
  );

  it(
    'TLS with an untrusted server certificate: connect refuses quickly with an error naming the certificate problem',
    async () => {
      await withUntrustedServer('tls-message', async (connection) => {
        // One attempt per process; a process that crashed (see the test above) is tried again.
        let check: Awaited<ReturnType<typeof runConnectCheck>> | undefined;
        for (let i = 0; i < 5 && !check?.report; i++) {
          check = await runConnectCheck({ connection, attempts: 1, connectTimeoutMs: 5000, lingerMs: 0 });
        }
        const result = check?.report?.results[0];
        process.stdout.write(
          `[faults] TLS, untrusted certificate: RedisStore.connect rejected after ${String(result?.ms)} ms with "${result?.error ?? '?'}"\n`,
        );
        expect(result?.ok).toBe(false);
        expect(result?.ms).toBeLessThan(5000);
        expect(result?.error).toMatch(/certificate/i);
      });
    },
    p.timeoutMs,
  );
}

/**
 * Transactional email at 400/s through a provider that allows 450/s, across two worker processes.
 *
 *   npm run build && npm start -w examples/email-ses      (REDIS_URL, EMAILS to change the defaults)
 *
 * This process plays three parts: the email provider (an HTTP simulator), the producer that adds
 * the emails, and the supervisor that starts two `worker.js` processes and stops them at the end.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { maxInAnyWindow, Queue } from '@sluice/core';
import { EMAIL_QUEUE, emailSchema, type Email } from './email';
import { SimulatedProvider } from './provider';
import { openRedisOrExit } from './redis';
import type { WorkerMessage } from './worker';

const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const total = Number(process.env['EMAILS'] ?? 4000);

/** A worker process and what it reported. */
interface WorkerProcess {
  readonly child: ChildProcess;
  readonly handlerStarts: number[];
  sent: number;
  dead: number;
  retried: number;
}

/** Forks `worker.js` and resolves once it is ready; counts the outcomes it reports. */
function startWorker(env: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  const child = fork(join(__dirname, 'worker.js'), { env });
  const worker: WorkerProcess = { child, handlerStarts: [], sent: 0, dead: 0, retried: 0 };
  return new Promise((resolve) => {
    child.on('message', (message: WorkerMessage) => {
      if (message.type === 'ready') resolve(worker);
      if (message.type === 'start') worker.handlerStarts.push(message.at);
      if (message.type !== 'outcome') return;
      if (message.kind === 'completed') worker.sent++;
      if (message.kind === 'dead') worker.dead++;
      if (message.kind === 'retrying') worker.retried++;
    });
  });
}

async function main(): Promise<void> {
  const prefix = `sluice-examples:email-ses:${Date.now().toString(36)}`;
  const demo = await openRedisOrExit(redisUrl, prefix);
  const provider = new SimulatedProvider({ maxPerSecond: 450 });
  const providerUrl = await provider.listen();
  const env = { ...process.env, REDIS_URL: redisUrl, SLUICE_PREFIX: prefix, PROVIDER_URL: providerUrl };
  const workers = await Promise.all([startWorker(env), startWorker(env)]);
  console.log(
    `Redis at ${redisUrl}; provider at ${providerUrl} (450 calls/s); two workers (400/s between them)`,
  );

  const emails = new Queue<Email>(demo.store, EMAIL_QUEUE, {
    schema: emailSchema,
    defaults: { maxAttempts: 5 },
  });
  const started = Date.now();
  await emails.addBulk(
    Array.from({ length: total }, (_, n) => ({
      // Every 200th address bounces for good.
      data: { to: `${n % 200 === 7 ? 'bounce' : 'user'}-${n}@example.com`, subject: `Your receipt #${n}` },
    })),
  );
  console.log(`${total} emails added`);

  const count = (key: 'sent' | 'dead' | 'retried'): number => workers.reduce((n, w) => n + w[key], 0);
  let reported = 0; // whole seconds of progress printed so far
  while (count('sent') + count('dead') < total) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const elapsed = Math.floor((Date.now() - started) / 1000);
    if (elapsed === reported) continue;
    reported = elapsed;
    console.log(
      `  ${elapsed} s  sent ${count('sent')}, dead-lettered ${count('dead')}, retries ${count('retried')}`,
    );
  }
  const seconds = (Date.now() - started) / 1000;
  for (const w of workers) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => new Promise((resolve) => w.child.once('exit', resolve))));

  const calls = provider.calls;
  const handlerStarts = workers.flatMap((w) => w.handlerStarts);
  console.log(
    `\n${total} emails in ${seconds.toFixed(1)} s: ${calls.length} provider calls (${(calls.length / seconds).toFixed(0)}/s)`,
  );
  console.log(`  sent            ${count('sent')}`);
  console.log(`  dead-lettered   ${count('dead')} (hard bounces)`);
  console.log(`  retried         ${count('retried')} (503s, after a jittered exponential backoff)`);
  console.log(`  by worker       ${workers.map((w) => w.sent + w.dead).join(' + ')}`);
  console.log('busiest 1,000 ms');
  console.log(`  handler starts  ${maxInAnyWindow(handlerStarts, 1000)} (the pipeline's limit is 400)`);
  console.log(
    `  provider calls  ${maxInAnyWindow(
      calls.map((c) => c.at),
      1000,
    )} (as they arrived; the provider's limit is 450)`,
  );
  console.log(`  429 answers     ${calls.filter((c) => c.status === 429).length}`);

  await provider.close();
  await demo.dispose();
}

void main();

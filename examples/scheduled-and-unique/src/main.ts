/**
 * Three worker processes share reminders due at future times, a recurring digest (once per cron
 * tick, whichever process adds or runs it) and welcome emails that stay unique however often signup
 * retries.
 *
 *   npm run build && npm start -w examples/scheduled-and-unique
 *   CRON='* * * * *' RUN_SECONDS=180 npm start -w examples/scheduled-and-unique   (every minute, as in production)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Queue } from '@sluice/core';
import {
  DIGEST_QUEUE,
  REMINDER_QUEUE,
  WELCOME_QUEUE,
  type Digest,
  type Reminder,
  type Welcome,
} from './jobs';
import { openRedisOrExit } from './redis';
import type { WorkerMessage } from './worker';

const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const cron = process.env['CRON'] ?? '*/5 * * * * *'; // every 5 s, so a short run shows several ticks
const runSeconds = Number(process.env['RUN_SECONDS'] ?? 22);

const started = Date.now();
const clock = (t: number): string => new Date(t).toISOString().slice(11, 23);
const log = (line: string): void => {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);
};

type Run = Extract<WorkerMessage, { type: 'ran' }> & { readonly worker: number };

/** Forks worker number `n`; resolves with its process once it is ready, and logs each job it runs. */
function startWorker(n: number, env: NodeJS.ProcessEnv, runs: Run[]): Promise<ChildProcess> {
  const child = fork(join(__dirname, 'worker.js'), { env });
  return new Promise((resolve) => {
    child.on('message', (message: WorkerMessage) => {
      if (message.type === 'ready') {
        resolve(child);
        return;
      }
      runs.push({ ...message, worker: n });
      const late = `${message.at - message.runAt} ms after its time`;
      switch (message.queue) {
        case DIGEST_QUEUE:
          log(`worker ${n}: digest for tick ${clock(message.runAt)} (${late})`);
          break;
        case REMINDER_QUEUE: {
          const { user, text } = message.data as Reminder;
          log(`worker ${n}: reminder to ${user}: "${text}", due ${clock(message.runAt)} (${late})`);
          break;
        }
        case WELCOME_QUEUE:
          log(`worker ${n}: welcome email to ${(message.data as Welcome).user}`);
          break;
      }
    });
  });
}

async function main(): Promise<void> {
  const prefix = `sluice-examples:scheduled-and-unique:${Date.now().toString(36)}`;
  const demo = await openRedisOrExit(redisUrl, prefix);
  const store = demo.store;
  const env = { ...process.env, REDIS_URL: redisUrl, SLUICE_PREFIX: prefix };
  const runs: Run[] = [];
  const workers = await Promise.all([1, 2, 3].map((n) => startWorker(n, env, runs)));
  log('three workers started');

  const digests = new Queue<Digest>(store, DIGEST_QUEUE);
  await digests.schedule('activity-digest', cron, { report: 'activity' });
  log(`digest scheduled: "${cron}"`);

  const reminders = new Queue<Reminder>(store, REMINDER_QUEUE);
  const now = Date.now();
  await reminders.add({ user: 'ada', text: 'stand-up in 5 minutes' }, { runAt: now + 2_000 });
  await reminders.add({ user: 'grace', text: 'renew your certificate' }, { runAt: now + 6_500 });
  await reminders.add({ user: 'linus', text: 'review the release notes' }, { runAt: now + 11_000 });
  log(`3 reminders added, due at ${[2_000, 6_500, 11_000].map((d) => clock(now + d)).join(', ')}`);

  // A signup form retried ten times at once: one welcome email.
  const welcome = new Queue<Welcome>(store, WELCOME_QUEUE);
  const adds = await Promise.all(
    Array.from({ length: 10 }, () =>
      welcome.add({ user: 'grace' }, { unique: { key: 'welcome:grace', ttlMs: 24 * 3_600_000 } }),
    ),
  );
  log(
    `10 welcome requests for grace → job ${adds[0]?.id ?? '?'}, ${adds.filter((a) => a.duplicate).length} answered duplicate: true with the same id`,
  );

  await new Promise((resolve) => setTimeout(resolve, runSeconds * 1000));
  for (const child of workers) child.kill('SIGTERM');
  await Promise.all(workers.map((child) => new Promise((resolve) => child.once('exit', resolve))));

  const digestRuns = runs.filter((r) => r.queue === DIGEST_QUEUE);
  const ticks = digestRuns.map((r) => r.runAt).sort((a, b) => a - b);
  const byWorker = [1, 2, 3].map((n) => digestRuns.filter((r) => r.worker === n).length);
  console.log(
    `\ndigest: ${digestRuns.length} runs for ${new Set(ticks).size} ticks: ${ticks.map(clock).join(', ')}`,
  );
  console.log(`  run by workers 1 / 2 / 3: ${byWorker.join(' / ')}`);
  const reminderRuns = runs.filter((r) => r.queue === REMINDER_QUEUE);
  const early = reminderRuns.filter((r) => r.at < r.runAt).length;
  console.log(`reminders: ${reminderRuns.length} of 3 ran, ${early} before their time`);
  console.log(`welcome emails sent to grace: ${runs.filter((r) => r.queue === WELCOME_QUEUE).length}`);
  await demo.dispose();
}

void main();

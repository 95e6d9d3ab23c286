/**
 * Users upload keyword lists; a worker process scrapes them at 30 searches a minute, five at a time.
 * Midway we deploy: SIGTERM to the worker (it finishes what it holds), then a new worker takes over.
 *
 *   npm run build && npm start -w examples/keyword-scraper
 *   SEARCH_PERIOD_MS=3000 npm start -w examples/keyword-scraper      (30 searches per 3 s, for a quick run)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { maxInAnyWindow, Queue } from '@sluice/core';
import { KEYWORD_QUEUE, SEARCH_LIMIT, type KeywordJob } from './keyword';
import { openRedisOrExit } from './redis';
import type { WorkerMessage } from './worker';

const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** Three users' keyword lists: each keyword becomes one job. */
const uploads: Record<string, string[]> = {
  ada: [
    'running shoes',
    'best running shoes',
    'cheap running shoes',
    'running shoes for women',
    'trail shoes',
    'best trail shoes',
    'waterproof trail shoes',
    'running socks',
    'merino running socks',
    'running belt',
    'marathon training plan',
    'half marathon training',
    'foam roller',
    'sports watch',
    'running headphones',
  ],
  grace: [
    'espresso machine',
    'best espresso machine',
    'espresso machine for home',
    'coffee grinder',
    'burr coffee grinder',
    'milk frother',
    'latte art',
    'pour over kettle',
    'gooseneck kettle',
    'coffee scale',
    'cold brew maker',
    'french press',
    'moka pot',
    'decaf coffee beans',
    'coffee subscription',
  ],
  linus: [
    'mechanical keyboard',
    'best mechanical keyboard',
    'quiet mechanical keyboard',
    'usb c hub',
    '4k monitor',
    'monitor arm',
    'standing desk',
    'standing desk converter',
    'ergonomic chair',
    'desk lamp',
    'webcam',
    'noise cancelling headphones',
    'laptop stand',
    'cable management',
    'wireless mouse',
  ],
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const started = Date.now();
const log = (line: string): void => {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);
};

interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  readonly searches: Extract<WorkerMessage, { type: 'search' }>[];
  readonly saved: string[];
  readonly exited: Promise<unknown>;
}

/** Forks a worker and resolves once it is ready; prints what it reports. */
function startWorker(name: string, env: NodeJS.ProcessEnv): Promise<Started> {
  const child = fork(join(__dirname, 'worker.js'), { env });
  const worker: Started = {
    name,
    child,
    searches: [],
    saved: [],
    exited: new Promise((resolve) => child.once('exit', resolve)),
  };
  return new Promise((resolve) => {
    child.on('message', (message: WorkerMessage) => {
      switch (message.type) {
        case 'ready':
          log(`${name}: started (pid ${child.pid})`);
          resolve(worker);
          break;
        case 'search':
          worker.searches.push(message);
          break;
        case 'saved':
          worker.saved.push(message.keyword);
          log(`${name}: "${message.keyword}" → ${message.results} results saved`);
          break;
        case 'draining':
          log(`${name}: SIGTERM, finishing the ${message.inFlight.length} keywords in flight`);
          break;
        case 'closed':
          log(
            `${name}: ${message.drained ? 'drained' : 'NOT drained'}; database pool peak ${message.poolPeak} of 5, exhausted ${message.poolExhausted} times`,
          );
          break;
      }
    });
  });
}

async function main(): Promise<void> {
  const prefix = `sluice-examples:keyword-scraper:${Date.now().toString(36)}`;
  const demo = await openRedisOrExit(redisUrl, prefix);
  const store = demo.store;
  const env = { ...process.env, REDIS_URL: redisUrl, SLUICE_PREFIX: prefix };
  const keywords = new Queue<KeywordJob>(store, KEYWORD_QUEUE);
  for (const [user, list] of Object.entries(uploads)) {
    await keywords.addBulk(list.map((keyword) => ({ data: { user, list: `${user}-list`, keyword } })));
  }
  const total = Object.values(uploads).flat().length;
  log(
    `${total} keywords uploaded; the search API allows ${SEARCH_LIMIT.allowed} per ${SEARCH_LIMIT.periodMs} ms`,
  );

  const first = await startWorker('worker A', env);
  while (first.saved.length < 4) await sleep(20);
  log('deploy: SIGTERM to worker A; worker B starts once A has exited');
  first.child.kill('SIGTERM');
  await first.exited;
  const second = await startWorker('worker B', env);
  while (first.saved.length + second.saved.length < total) await sleep(50);
  second.child.kill('SIGTERM');
  await second.exited;

  const saved = [...first.saved, ...second.saved];
  const searches = [...first.searches, ...second.searches];
  console.log(`\n${new Set(saved).size} of ${total} keywords have results (${saved.length} saves in all)`);
  console.log(`  worker A ${first.saved.length}, worker B ${second.saved.length}`);
  console.log(
    `  busiest window of ${SEARCH_LIMIT.periodMs} ms: ${maxInAnyWindow(
      searches.map((s) => s.at),
      SEARCH_LIMIT.periodMs,
    )} searches (limit ${SEARCH_LIMIT.allowed})`,
  );
  await demo.dispose();
}

void main();

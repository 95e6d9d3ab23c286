/**
 * Messages arrive one at a time, 1,300 a second; an inspection API takes 10 requests a second of up
 * to 100 messages each. The pipeline batches them and keeps the API busy at 1,000 messages a second;
 * each finding becomes one alert job, paged from its own pipeline.
 *
 *   npm run build && npm start -w examples/content-inspection      (REDIS_URL, SECONDS to change)
 */
import { createLogger, Queue, Worker } from '@sluice/core';
import { SimulatedInspectionApi } from './inspection-api';
import { ALERT_QUEUE, MESSAGE_QUEUE, type Finding, type Message } from './message';
import { SimulatedPager } from './pager';
import { inspectionPipelines } from './pipelines';
import { produceMessages } from './producer';
import { openStore } from './store';
import { maxCallsInAnyWindow, sustainedRate } from './throughput';

const seconds = Number(process.env['SECONDS'] ?? 10);

async function main(): Promise<void> {
  const opened = await openStore('content-inspection');
  const store = opened.store;
  const api = new SimulatedInspectionApi();
  const pager = new SimulatedPager();
  const messages = new Queue<Message>(store, MESSAGE_QUEUE);
  const alerts = new Queue<Finding>(store, ALERT_QUEUE);
  const worker = new Worker({
    store,
    pipelines: inspectionPipelines({ api, pager, alerts }),
    logger: createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn' }),
  });
  worker.start();
  console.log(`Store: ${opened.name}. Adding 1,300 messages a second for ${seconds} s, one at a time…`);

  const inspected = (): number => api.calls.reduce((n, c) => n + c.messageIds.length, 0);
  const started = Date.now();
  let last = 0;
  const progress = setInterval(() => {
    const now = inspected();
    const elapsed = Math.round((Date.now() - started) / 1000);
    console.log(
      `  ${String(elapsed).padStart(3)} s  inspected ${now} (+${now - last})  alerts ${pager.delivered.length}`,
    );
    last = now;
  }, 1000);

  const ids = await produceMessages(messages, { perSecond: 1300, durationMs: seconds * 1000 });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  while ((await messages.stats()).totals.completed < ids.length) await sleep(100);
  const findings = (await alerts.stats()).totals.enqueued;
  while (pager.delivered.length < findings) await sleep(100);
  clearInterval(progress);
  await worker.close();
  await opened.dispose();

  const rate = sustainedRate(api.calls, 10, started + 2000);
  const sizes = api.calls.map((c) => c.messageIds.length);
  console.log(
    `\n${ids.length} messages inspected in ${api.calls.length} calls (${sizes.filter((s) => s === 100).length} full)`,
  );
  console.log(
    `  sustained        ${rate.perSecond.toFixed(0)} messages/s over ${rate.calls} calls after warm-up (median window ${rate.medianPerSecond.toFixed(0)}/s)`,
  );
  console.log(
    `  busiest second   ${maxCallsInAnyWindow(api.calls, 1000)} calls (limit 10), refused: ${api.rejected}`,
  );
  console.log(`  findings         ${findings}, alerts paged: ${pager.delivered.length}`);
}

void main();

import type { GroupInfo, JobRecord, QueueStats } from '@sluice/core';

/** A plain text table with left-aligned columns and a header rule. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

/**
 * One row per queue: jobs waiting and running now, the records kept of finished jobs (what the
 * retention leaves, `KEPT …`), then totals since the queue was created (`TOTAL …`). Failed attempts
 * are split into handler failures and lease expiries (a crashed or stalled worker).
 */
export function statsRows(all: readonly QueueStats[]): string[] {
  return table(
    [
      'QUEUE',
      'READY',
      'SCHEDULED',
      'RUNNING',
      'PAUSED',
      'KEPT COMPLETED',
      'KEPT CANCELLED',
      'KEPT DEAD',
      'TOTAL COMPLETED',
      'TOTAL DEAD',
      'HANDLER FAILURES',
      'LEASE EXPIRIES',
    ],
    all.map((s) => [
      s.queue,
      String(s.counts.ready),
      String(s.counts.scheduled),
      String(s.counts.running),
      s.paused ? 'yes' : 'no',
      String(s.counts.completed),
      String(s.counts.cancelled),
      String(s.counts.dead),
      String(s.totals.completed),
      String(s.totals.dead),
      String(s.totals.handlerFailures),
      String(s.totals.leaseExpiries),
    ]),
  );
}

/** One row per group: ready jobs, slots held (running, retrying), paused. */
export function groupRows(groups: readonly GroupInfo[], now = Date.now()): string[] {
  return table(
    ['GROUP', 'READY', 'ACTIVE', 'PAUSED', 'WEIGHT', 'LIMITED'],
    groups.map((g) => [
      truncate(g.group, 60),
      String(g.ready),
      String(g.active),
      g.paused ? 'yes' : 'no',
      String(g.weight ?? 1),
      // Held back by its rate limit: for how much longer (store time against this clock).
      g.limitedUntil === undefined ? '' : `${Math.max(0, Math.ceil(g.limitedUntil - now))} ms`,
    ]),
  );
}

/** One row per job; a GROUP column when some job on the page has a group. */
export function jobRows(jobs: readonly JobRecord[]): string[] {
  const grouped = jobs.some((j) => j.group !== undefined);
  return table(
    [
      'ID',
      'NAME',
      ...(grouped ? ['GROUP'] : []),
      'STATE',
      'ATTEMPT',
      'PRIORITY',
      'RUN AT',
      'REASON / LAST ERROR',
    ],
    jobs.map((j) => [
      j.id,
      j.name,
      ...(grouped ? [j.group ?? ''] : []),
      j.state,
      `${j.attempt}/${j.maxAttempts}`,
      String(j.priority),
      new Date(j.runAt).toISOString(),
      truncate(j.reason ?? j.errors[j.errors.length - 1]?.message ?? '', 60),
    ]),
  );
}

export function jobDetail(job: JobRecord): string[] {
  const lines = [
    `id:        ${job.id}`,
    `queue:     ${job.queue}`,
    `name:      ${job.name}`,
    ...(job.group === undefined ? [] : [`group:     ${job.group}`]),
    `state:     ${job.state}${job.reason ? ` (${job.reason})` : ''}`,
    `attempt:   ${job.attempt} of ${job.maxAttempts}`,
    `priority:  ${job.priority}`,
    `created:   ${new Date(job.createdAt).toISOString()}`,
    `run at:    ${new Date(job.runAt).toISOString()}`,
  ];
  if (job.startedAt !== undefined) lines.push(`started:   ${new Date(job.startedAt).toISOString()}`);
  if (job.finishedAt !== undefined) lines.push(`finished:  ${new Date(job.finishedAt).toISOString()}`);
  lines.push(`data:      ${JSON.stringify(job.data)}`);
  if (job.trace !== undefined) {
    lines.push(
      `trace:     ${job.trace.traceparent}${job.trace.tracestate ? ` (${job.trace.tracestate})` : ''}`,
    );
  }
  if (job.result !== undefined) lines.push(`result:    ${JSON.stringify(job.result)}`);
  for (const e of job.errors) lines.push(`error #${e.attempt}:  ${e.name}: ${e.message}`);
  if (job.progress !== undefined) lines.push(`progress:  ${JSON.stringify(job.progress)}`);
  if (job.logs && job.logs.length > 0) {
    lines.push(`log (${job.logs.length} newest lines):`);
    for (const line of job.logs) lines.push(`  ${line}`);
  }
  return lines;
}

function truncate(s: string, n: number): string {
  const oneLine = s.replace(/\s+/g, ' ');
  return oneLine.length > n ? `${oneLine.slice(0, n - 1)}…` : oneLine;
}

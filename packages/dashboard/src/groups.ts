import type { GroupInfo, Store } from '@sluice/core';

/** Groups read per `store.listGroups` call while scanning a queue's groups. */
export const GROUP_SCAN_CHUNK = 1000;
/** Default of how many groups one scan reads at most (the dashboard's, the CLI's and `/metrics`'). */
export const DEFAULT_GROUP_SCAN_LIMIT = 10_000;

/** A queue's groups as one scan read them, busiest first. */
export interface GroupScan {
  /** Busiest first (see {@link compareBusiest}). */
  readonly groups: readonly GroupInfo[];
  /** `false` when the queue has more groups than the scan read (the first `scanLimit` by name). */
  readonly complete: boolean;
}

/**
 * Busiest first: most ready and active jobs together, then most active, then by name (code points),
 * so the order is total and the same on every read of the same counts.
 */
export function compareBusiest(a: GroupInfo, b: GroupInfo): number {
  const load = b.ready + b.active - (a.ready + a.active);
  if (load !== 0) return load;
  if (b.active !== a.active) return b.active - a.active;
  return a.group < b.group ? -1 : a.group > b.group ? 1 : 0;
}

/**
 * Reads up to `scanLimit` of a queue's groups (`store.listGroups` pages them by name) and sorts
 * them busiest first. The store lists groups that hold anything or are paused, so the cost grows
 * with those groups, never with idle ones; `scanLimit` bounds it. The pages are separate reads, so
 * a group that changes during the scan is counted as one of its pages saw it. Resolves `undefined`
 * when the store cannot list groups.
 */
export async function scanGroups(
  store: Store,
  queue: string,
  scanLimit: number = DEFAULT_GROUP_SCAN_LIMIT,
): Promise<GroupScan | undefined> {
  const listGroups = store.listGroups?.bind(store);
  if (!listGroups) return undefined;
  const groups: GroupInfo[] = [];
  let complete = false;
  while (groups.length < scanLimit) {
    const want = Math.min(GROUP_SCAN_CHUNK, scanLimit - groups.length);
    const page = await listGroups(queue, { offset: groups.length, limit: want });
    groups.push(...page);
    if (page.length < want) {
      complete = true;
      break;
    }
  }
  if (!complete) {
    // Exactly `scanLimit` groups may be all there is.
    complete = (await listGroups(queue, { offset: groups.length, limit: 1 })).length === 0;
  }
  groups.sort(compareBusiest);
  return { groups, complete };
}

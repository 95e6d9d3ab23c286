/** Something that happened in the app: stored in the database and pushed to live dashboards. */
export interface AppEvent {
  readonly id: string;
  readonly type: 'page-view' | 'signup' | 'purchase';
  readonly userId: number;
}

export const EVENT_QUEUE = 'events';

/** The `n`-th event of a made-up stream: mostly page views, some signups and purchases. */
export function makeEvent(n: number): AppEvent {
  const type = n % 50 === 0 ? 'purchase' : n % 10 === 0 ? 'signup' : 'page-view';
  return { id: `evt-${n}`, type, userId: n % 997 };
}

/**
 * The one empty list the hot paths answer instead of making a new `[]` each time (a schema check
 * with nothing to report, a reservation with no invalid job, a run before it starts). Frozen: a
 * caller that tried to add to it would throw rather than change every other caller's answer.
 */
export const NONE: readonly never[] = Object.freeze([]);

/**
 * `@sluice/testing`: marble tests of whole pipelines, the store-contract suite, and a harness that
 * finds or starts a real Redis.
 */
export * from './manual-clock';
export * from './pipeline-harness';
export * from './store-contract';
export * from './redis';

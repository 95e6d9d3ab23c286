/**
 * `@sluice/cli`: the `sluice` command. `run(argv, io)` is the whole program, usable from tests.
 */
export { createProgram, run } from './program';
export { clusterNodes, partitionCounts, type ConnectOptions } from './connect';
export { CliError, processIo, type Io } from './io';
export { runDemo, type DemoOptions, type DemoSummary } from './demo/demo';

/**
 * The rate-limit scenario's provider, in a process of its own (forked by `Provider.start`): an HTTP
 * server that timestamps every arrival on the shared clock (`clock.now`), as a provider counting
 * calls would, and accepts every call. Reports over IPC: `{ type: 'ready', url }`, and on
 * `{ type: 'arrivals' }` every arrival so far, `{ type: 'arrivals', arrivals }`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { now } from '../clock';

const arrivals: number[] = [];
const server = createServer((req, res) => {
  arrivals.push(now());
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` });
});
process.on('message', (message: { type?: string }) => {
  if (message.type === 'arrivals') process.send?.({ type: 'arrivals', arrivals });
});
// The benchmark's parent went away (or closed the channel): nothing is left to report to.
process.on('disconnect', () => process.exit(0));

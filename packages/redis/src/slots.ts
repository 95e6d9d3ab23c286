import { parsePartitionName } from '@sluice/core';

/** Hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16/XMODEM of a string's UTF-8 bytes: what Redis Cluster hashes a key with. */
function crc16(text: string): number {
  let crc = 0;
  for (const byte of Buffer.from(text, 'utf8')) {
    crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  }
  return crc;
}

/**
 * The Cluster slot of `key`: of its hash tag (the part between the first `{` and the next `}`, when
 * not empty), else of the whole key.
 */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % CLUSTER_SLOTS;
  }
  return crc16(key) % CLUSTER_SLOTS;
}

/**
 * The hash tag of a partition's keys: its name, followed by `.1`, `.2`, … until the tag's slot falls
 * in the middle half of the partition's share of the slots (partition i of n: slots from
 * (i + ¼)·16384/n to (i + ¾)·16384/n). A Cluster created with its slots split evenly (what
 * `redis-cli --cluster create` does) then holds the partitions of a queue with n a multiple of its
 * masters evenly, n / masters on each, whatever the queue's name; no lookup or shared state decides
 * it, so every process finds the same tag. Any other name: `undefined`.
 */
export function partitionTag(name: string): string | undefined {
  const partition = parsePartitionName(name);
  if (!partition) return undefined;
  const share = CLUSTER_SLOTS / partition.count;
  const from = Math.floor((partition.index + 0.25) * share);
  const to = Math.max(from + 1, Math.floor((partition.index + 0.75) * share));
  for (let s = 0; ; s++) {
    const tag = s === 0 ? name : `${name}.${s}`;
    const slot = crc16(tag) % CLUSTER_SLOTS;
    if (slot >= from && slot < to) return tag;
  }
}

import { MemoryStore } from '@sluice/core';
import { defineStoreContract, ManualClock } from '@sluice/testing';

defineStoreContract('MemoryStore', () => {
  const clock = new ManualClock();
  return {
    store: new MemoryStore({ scheduler: clock }),
    advance: (ms) => {
      clock.advance(ms);
      return Promise.resolve();
    },
  };
});

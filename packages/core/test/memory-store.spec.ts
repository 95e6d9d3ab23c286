import { defineStoreContract, memoryStoreFixture } from '@sluice/testing';

defineStoreContract('MemoryStore', memoryStoreFixture);

import { definePartitionContract, memoryStoreFixture } from '@sluice/testing';

definePartitionContract('MemoryStore', memoryStoreFixture);

import t from 'tap';
import { MemorySessionStore } from '../src/index.js';
import { storeContract } from './store-contract.js';

storeContract(t, async (limits) => {
  const store = new MemorySessionStore<number>(limits);
  return {
    store,
    // Memory outlives nothing: "after a restart" is the same process here.
    reopen: async () => store,
    storedMessages: async () => store.messageCount,
    stop: () => store.close(),
  };
});

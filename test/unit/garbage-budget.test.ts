import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { GarbageBudget } from '../../src/runtime/garbage-budget.js';

describe('GarbageBudget', () => {
  it('collects once per spent budget, after the current turn', async () => {
    let collections = 0;
    const budget = new GarbageBudget(100, () => collections++);
    budget.took(60);
    await turn();
    assert.equal(collections, 0, 'collected before the budget was spent');
    budget.took(40);
    budget.took(500);
    assert.equal(collections, 0, 'collected inside the turn that spent the budget');
    await turn();
    assert.equal(collections, 1, 'one collection for everything counted before it');
    budget.took(99);
    await turn();
    assert.equal(collections, 1, 'the count did not start again after collecting');
    budget.took(1);
    await turn();
    assert.equal(collections, 2);
    budget.took(99);
    budget.collected(); // V8 collected on its own
    budget.took(99);
    await turn();
    assert.equal(collections, 2, 'a collection by V8 did not start the count again');
  });
});

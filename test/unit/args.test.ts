import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeArgs, splitArgValue } from '../../src/policies/args.js';

describe('Chainloop argument rules', () => {
  it('splits on newlines and unescaped commas, trims and drops empties', () => {
    assert.deepEqual(splitArgValue('john, sarah'), ['john', 'sarah']);
    assert.deepEqual(splitArgValue('a\\,b'), ['a,b']);
    assert.deepEqual(splitArgValue('one\ntwo, three\n\n , '), ['one', 'two', 'three']);
    assert.deepEqual(splitArgValue('  '), []);
  });

  it('gives a string for one value, a list for several, and drops keys with none', () => {
    const { args } = computeArgs(undefined, { users: 'john, sarah', single: 'x', empty: ' , ', escaped: 'a\\,b' });
    assert.deepEqual(args, { users: ['john', 'sarah'], single: 'x', escaped: 'a,b' });
  });

  it('passes every argument through when the policy declares no inputs', () => {
    assert.deepEqual(computeArgs([], { anything: 'goes' }).args, { anything: 'goes' });
  });

  it('keeps only declared inputs, applies defaults to missing or empty ones and reports the rest', () => {
    const inputs = [{ name: 'severity', default: 'high' }, { name: 'owners' }];
    const computed = computeArgs(inputs, { owners: 'a,b', severity: '', undeclared: 'x' });
    assert.deepEqual(computed.args, { severity: 'high', owners: ['a', 'b'] });
    assert.deepEqual(computed.ignored, ['undeclared']);
  });

  it('refuses a missing or empty required input, naming it', () => {
    const inputs = [{ name: 'threshold', required: true, description: 'lowest score' }];
    assert.throws(() => computeArgs(inputs, {}), /missing required input "threshold" \(lowest score\)/);
    assert.throws(
      () => computeArgs(inputs, { threshold: '' }),
      (err: { reason?: string }) => err.reason === 'MISSING_INPUT',
    );
    assert.deepEqual(computeArgs(inputs, { threshold: '7' }).args, { threshold: '7' });
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseOutput } from '../../src/worker/output.js';

const parse = (text: string | null) => parseOutput(text === null ? null : Buffer.from(text), 'p');

describe('guest output parsing (Chainloop rules)', () => {
  it('reads skipped, skip_reason (singular), string violations and ignore; unknown keys ignored', () => {
    assert.deepEqual(parse('{"skipped":true,"skip_reason":"why","skip_reasons":["dropped"],"violations":["a"],"ignore":false,"extra":1}'), {
      skipped: true,
      skipReason: 'why',
      violations: [{ message: 'a' }],
      ignore: false,
    });
  });

  it('treats missing and null fields as zero values', () => {
    assert.deepEqual(parse('{"violations":null}'), { skipped: false, skipReason: '', violations: [], ignore: false });
  });

  it('accepts {message} objects as violations and keeps them as findings', () => {
    assert.deepEqual(parse('{"violations":[{"message":"m","id":7}]}').violations, [{ message: 'm', finding: { message: 'm', id: 7 } }]);
  });

  it('lets non-empty findings win over violations', () => {
    assert.deepEqual(parse('{"violations":["ignored"],"findings":[{"message":"f"}]}').violations, [
      { message: 'f', finding: { message: 'f' } },
    ]);
    assert.deepEqual(parse('{"violations":["kept"],"findings":[]}').violations, [{ message: 'kept' }]);
  });

  const errors: [string, string | null, RegExp][] = [
    ['empty output', null, /^failed to parse policy output: unexpected end of JSON input$/],
    ['zero bytes', '', /unexpected end of JSON input/],
    ['not JSON', 'nope', /^failed to parse policy output: /],
    ['a JSON array', '[]', /cannot unmarshal \[\]interface \{\} into Go value/],
    ['a number violation', '{"violations":[1]}', /^violation in policy "p": violation must be a string or object, got float64$/],
    ['an object without message', '{"violations":[{"id":1}]}', /missing required "message" field in structured violation/],
    ['a non-string message', '{"violations":[{"message":3}]}', /"message" field must be a string, got float64/],
    ['a non-object finding', '{"findings":["x"]}', /^finding in policy "p": finding must be a JSON object/],
    ['skipped not a bool', '{"skipped":"yes"}', /cannot unmarshal string into Go struct field \.skipped of type bool/],
  ];
  for (const [what, text, message] of errors) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => parse(text),
        (err: { reason?: string; message: string }) => err.reason === 'INVALID_OUTPUT' && message.test(err.message),
      );
    });
  }
});

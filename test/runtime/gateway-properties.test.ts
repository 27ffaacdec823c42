/**
 * Properties of what the providers parse and encode: the event-stream parser
 * gives the same events however the network cut the stream and whatever its
 * line endings (\n, \r\n, \r); function names are always valid for the
 * providers and tell different tools apart.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../../runtime/kernel/providers/http.js';
import { FUNCTION_NAME, functionName } from '../../runtime/kernel/providers/provider.js';

function parse(chunks: string[]): SseEvent[] {
  const parser = new SseParser();
  return [...chunks.flatMap((c) => parser.push(c)), ...parser.end()];
}

const line = fc.string({ maxLength: 20 }).filter((s) => !/[\r\n]/.test(s));
const event = fc.record({ event: fc.constantFrom('message', 'content_block_delta', 'ping'), data: fc.array(line, { minLength: 1, maxLength: 3 }) });

describe('SseParser', () => {
  it('reads event, multi-line data, comments and both kinds of field spacing', () => {
    const text = ': keep-alive\nevent: delta\ndata: {"a":\ndata:1}\n\ndata: [DONE]\n\n';
    expect(parse([text])).toEqual([
      { event: 'delta', data: '{"a":\n1}' },
      { event: 'message', data: '[DONE]' },
    ]);
  });

  it('a blank line without data dispatches nothing; an unterminated last event still counts', () => {
    expect(parse(['event: ping\n\n\n', 'data: tail'])).toEqual([{ event: 'message', data: 'tail' }]);
  });

  it('gives the same events however the stream is chunked and whatever its line endings', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 6 }), fc.constantFrom('\n', '\r\n', '\r'), fc.array(fc.nat(), { maxLength: 8 }), (events, eol, cuts) => {
        const text = events.map((e) => `event: ${e.event}${eol}${e.data.map((d) => `data: ${d}${eol}`).join('')}${eol}`).join('');
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...points].map((p, i, all) => text.slice(p, all[i + 1] ?? text.length));
        expect(parse(chunks)).toEqual(events.map((e) => ({ event: e.event, data: e.data.join('\n') })));
      }),
      { numRuns: 300 },
    );
  });
});

describe('functionName', () => {
  const toolName = fc.oneof(fc.stringMatching(/^[a-z0-9-]{1,63}$/), fc.stringMatching(/^[a-z0-9-]{1,63}\/[a-z0-9-]{1,63}$/), fc.string({ maxLength: 80 }));
  const mcpName = fc.oneof(fc.stringMatching(/^[a-zA-Z0-9_.-]{1,64}$/), fc.string({ maxLength: 80 }));

  it('keeps plain names readable and hashes the rest', () => {
    expect(functionName('kb-search', 'search_articles')).toBe('kb-search__search_articles');
    expect(functionName('acme-research/paper-search', 'search_papers')).toMatch(/^_[0-9a-f]{12}_acme-research_paper-search__search_papers$/);
    expect(functionName('a'.repeat(40), 'b'.repeat(30))).toHaveLength(64);
  });

  it('is always a valid function name, and different tools never share one', () => {
    fc.assert(
      fc.property(toolName, mcpName, toolName, mcpName, (t1, n1, t2, n2) => {
        const a = functionName(t1, n1);
        expect(a).toMatch(FUNCTION_NAME);
        if (t1 !== t2 || n1 !== n2) expect(functionName(t2, n2)).not.toBe(a);
      }),
      { numRuns: 500 },
    );
  });

  it('does not confuse a `__` inside a name with the separator', () => {
    expect(functionName('a', 'b__c')).not.toBe(functionName('a__b', 'c'));
    expect(functionName('a-', 'b')).not.toBe(functionName('a', '-b'));
  });
});

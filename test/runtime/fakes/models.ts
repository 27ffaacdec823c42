/** Model objects, requests and a clock for the gateway tests. */
import type { Clock } from '../../../common/index.js';
import type { CompiledObject } from '../../../compiler/index.js';
import { compiled } from '../../helpers/compiled.js';
import type { ModelRequest } from '../../../runtime/types.js';

/** A compiled Model, as the compiler produces it from this spec (which must pass the Model schema). */
export function modelObject(name: string, spec: Record<string, unknown>): CompiledObject {
  return compiled({ kind: 'Model', metadata: { name }, spec });
}

export function request(model: string, overrides: Partial<ModelRequest> = {}): ModelRequest {
  return {
    model,
    messages: [
      { role: 'system', content: 'You triage support tickets.' },
      { role: 'user', content: 'My invoice is wrong.' },
    ],
    tools: [],
    script: { input: 'My invoice is wrong.', turn: 0, lastToolResult: null, agent: 'triage', replica: 0, round: 0 },
    caller: { tenant: 'acme-support', agent: 'triage', run: 'run-1' },
    ...overrides,
  };
}

/** A clock whose sleeps return at once and are recorded; time moves only by what was slept. */
export function fakeClock(start = Date.parse('2025-06-01T12:00:00Z')): Clock & { sleeps: number[] } {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: (ms, signal) => {
      if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
      sleeps.push(ms);
      now += ms;
      return Promise.resolve();
    },
  };
}

/**
 * What a target's sandbox needs, from its agents' `sandbox` blocks: the
 * isolation, memory and CPU. A Workflow runs its agents in one sandbox, so it
 * needs the strictest isolation and the most memory and CPU any of them asks for.
 */
import { ofKind } from '../compiler/index.js';
import { runObjects, type LaunchOptions } from '../runtime/index.js';
import { SandboxError } from './types.js';

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** Bytes of a Kubernetes memory quantity (`512Mi`, `1G`, `1073741824`); throws on anything else. */
export function memoryBytes(quantity: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (m === null) throw new SandboxError('invalid_option', `'${quantity}' is not a memory quantity (512Mi, 1Gi, 1G, bytes)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? '']!);
}

/** Millicores of a Kubernetes CPU quantity (`500m`, `1`, `1.5`). */
export function cpuMillis(quantity: string): number {
  const m = /^([0-9]+)m$|^([0-9]+(?:\.[0-9]{1,3})?)$/.exec(quantity);
  if (m === null) throw new SandboxError('invalid_option', `'${quantity}' is not a CPU quantity (500m, 1, 1.5)`);
  return m[1] !== undefined ? Number(m[1]) : Math.round(Number(m[2]) * 1000);
}

export interface SandboxNeeds {
  isolation: 'gvisor' | 'process';
  memoryBytes: number;
  /** The quantity as written (for Kubernetes), of the agent that asks for the most. */
  memory: string;
  cpuMillis: number;
  cpu: string;
  /** Whether a run starts stdio tool servers in the sandbox (a process each, per run). */
  stdioTools: boolean;
}

export function sandboxNeeds(bundle: LaunchOptions['bundle'], target: string): SandboxNeeds {
  const { objects } = runObjects(bundle, target);
  const stdioTools = objects.filter(ofKind('Tool')).some((t) => t.object.spec.mcp.transport === 'stdio');
  const needs: SandboxNeeds = { isolation: 'process', memoryBytes: 0, memory: '512Mi', cpuMillis: 0, cpu: '500m', stdioTools };
  let agents = 0;
  for (const o of objects.filter(ofKind('Agent'))) {
    agents++;
    const s = o.object.spec.sandbox ?? {};
    if ((s.isolation ?? 'gvisor') === 'gvisor') needs.isolation = 'gvisor';
    const mem = memoryBytes(s.memory ?? '512Mi');
    if (mem > needs.memoryBytes) Object.assign(needs, { memoryBytes: mem, memory: s.memory ?? '512Mi' });
    const cpu = cpuMillis(s.cpu ?? '500m');
    if (cpu > needs.cpuMillis) Object.assign(needs, { cpuMillis: cpu, cpu: s.cpu ?? '500m' });
  }
  if (agents === 0) Object.assign(needs, { isolation: 'gvisor', memoryBytes: memoryBytes('512Mi'), cpuMillis: 500 });
  return needs;
}

/** The V8 heap limit for a sandbox of `bytes`: three quarters of it, the rest for code, buffers and the MCP servers' own. */
export function heapLimitMiB(bytes: number): number {
  return Math.max(64, Math.floor((bytes * 0.75) / 2 ** 20));
}

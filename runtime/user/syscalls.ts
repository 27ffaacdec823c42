/**
 * User space's view of the kernel: the model gateway and the HTTP tools as
 * system calls over the runtime channel. A kernel error comes back as the
 * error the agent loop expects (a ModelError with the kernel's code and
 * retryable flag), so the loop cannot tell a local fake from the kernel.
 */
import type { Channel } from '../channel.js';
import { ProtocolError } from '../protocol.js';
import { isModelErrorCode, ModelError, type ModelGateway, type ModelResponse, type ToolDefinition, type ToolProvider, type ToolResult } from '../types.js';

function asModelError(err: unknown): unknown {
  if (!(err instanceof ProtocolError)) return err;
  const code = isModelErrorCode(err.code) ? err.code : 'server_error';
  const status = typeof err.data?.status === 'number' ? err.data.status : undefined;
  return new ModelError(code, err.message, { retryable: err.retryable, status, retryAfterMs: err.retryAfterMs, cause: err });
}

/** `model.complete` through the kernel. */
export function kernelGateway(channel: Channel): ModelGateway {
  return {
    complete: async (request, options) => {
      try {
        return await channel.call<ModelResponse>('model.complete', request, { ...(options?.signal !== undefined ? { signal: options.signal } : {}), timeoutMs: Infinity });
      } catch (err) {
        throw asModelError(err);
      }
    },
  };
}

/**
 * The agent's HTTP tools, through the kernel, within run `run` (the kernel
 * serves tool calls only within a run it started), as the workflow's node
 * `node` (the kernel calls them as that node's agent).
 */
export function kernelTools(channel: Channel, run?: string, node?: string): ToolProvider {
  return {
    list: (options) => channel.call<ToolDefinition[]>('tool.list', {}, options?.signal !== undefined ? { signal: options.signal } : {}),
    call: (call, options) =>
      channel.call<ToolResult>(
        'tool.call',
        {
          call,
          ...(run !== undefined ? { run } : {}),
          ...(node !== undefined ? { node } : {}),
          ...(options?.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
        },
        { ...(options?.signal !== undefined ? { signal: options.signal } : {}), timeoutMs: Infinity },
      ),
    close: async () => undefined,
  };
}

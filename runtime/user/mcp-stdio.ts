/**
 * stdio MCP servers, run in user space (inside the agent's sandbox): the
 * Tool's `mcp.command` started over its shipped files, with the Tool's literal
 * `mcp.env` as its whole environment (nothing of ours, not even PATH unless
 * declared) and the files root as its working folder. The SDK's own stdio
 * transport always adds HOME, PATH, USER and friends from the parent, so this
 * file has its own: the same newline-delimited JSON-RPC framing (the SDK's
 * ReadBuffer), a clean environment, and a process group per server so that
 * closing it also ends whatever it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { isAbsolute, posix, resolve } from 'node:path';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { errorMessage, McpConfigError, McpToolServer, readToolConfig, type McpServerOptions, type McpToolConfig, type ToolObject } from '../mcp.js';

export interface StdioMcpOptions extends McpServerOptions {
  /** The folder holding the Tool's `files` at their manifest-relative paths; the server's working folder. */
  filesRoot: string;
  /** How long each step of stopping a server waits (stdin closed, then SIGTERM, then SIGKILL). @default 2_000 */
  killGraceMs?: number;
  /** Largest message a server may send (a line of JSON). @default 16 MiB */
  maxMessageBytes?: number;
  /**
   * The user (uid and gid) to start the server as: not the runtime's, so that
   * it can neither signal nor trace the runtime. Needs the runtime to be
   * root of its sandbox (the gVisor runner's); without it, the runtime's own.
   */
  uid?: number;
}

/** How a Tool's server is started. */
export interface StdioLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** Absolute paths of the arguments that are the Tool's files. */
  files: string[];
  /** Started as this user and group (the runtime's own when absent). */
  uid?: number;
}

/** A stdio Tool's server, behind the shared call rules. Throws McpConfigError when the Tool cannot be run. */
export function stdioMcpServer(name: string, tool: ToolObject, options: StdioMcpOptions): McpToolServer {
  const config = readToolConfig(name, tool);
  if (config.transport !== 'stdio') throw new McpConfigError(`Tool ${name}: its transport is ${config.transport}; stdio servers only here`);
  const launch = { ...stdioLaunch(config, options.filesRoot), ...(options.uid !== undefined ? { uid: options.uid } : {}) };
  const killGraceMs = options.killGraceMs ?? 2_000;
  const maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
  return new McpToolServer(
    config,
    {
      open() {
        checkLaunch(launch, options.filesRoot);
        return new CleanStdioTransport(launch, {
          killGraceMs,
          maxMessageBytes,
          onStderr: (line) => options.onLog?.({ level: 'info', tool: name, message: `stderr: ${line}` }),
        });
      },
      describe: (t) => (t instanceof CleanStdioTransport ? t.describeExit() : undefined),
    },
    options,
  );
}

/**
 * argv and environment of a Tool's server: `node` is this Node.js, an argument
 * that is one of the Tool's `files` becomes its path under `filesRoot`, and the
 * environment is `mcp.env` and nothing else.
 */
export function stdioLaunch(config: McpToolConfig, filesRoot: string): StdioLaunch {
  const where = `Tool ${config.name}`;
  if (typeof filesRoot !== 'string' || filesRoot === '') throw new McpConfigError(`${where}: a stdio server needs filesRoot, the folder of its files`);
  // The schema requires a command of a stdio Tool; a Tool of the other transport has none.
  const argv = config.mcp.command ?? [];
  if (argv.length === 0) throw new McpConfigError(`${where}: spec.mcp.command must be a non-empty list of arguments`);
  const env = config.mcp.env ?? {};
  // Names are checked by the schema; a NUL in a value (YAML can write one) cannot reach a process's environment.
  for (const [k, v] of Object.entries(env)) if (v.includes('\0')) throw new McpConfigError(`${where}: spec.mcp.env.${k} is not a valid environment variable`);
  const root = resolve(filesRoot);
  const shipped = new Set(config.files.map((f) => posix.normalize(f)));
  const files: string[] = [];
  // A relative path that is not shipped never compiles (BCN3012): it is left as written.
  const args = argv.map((arg, i) => {
    if (i === 0 && arg === 'node') return process.execPath;
    if (isAbsolute(arg) || arg.startsWith('-')) return arg;
    if (shipped.has(posix.normalize(arg))) {
      files.push(resolve(root, arg));
      return files.at(-1)!;
    }
    return arg;
  });
  return { command: args[0]!, args: args.slice(1), env: { ...env }, cwd: root, files };
}

/** Files the server needs must be there before it starts: a clear message instead of a spawn error. */
function checkLaunch(launch: StdioLaunch, filesRoot: string): void {
  if (!isFolder(launch.cwd)) throw new Error(`the files root '${filesRoot}' is not a folder`);
  const missing = launch.files.find((path) => !exists(path));
  if (missing !== undefined) throw new Error(`'${missing}', one of the Tool's files, is not in the files root`);
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The last characters of a server's stderr kept for error messages. */
const STDERR_TAIL = 2_000;

/** The process groups of the stdio servers running now (each leads its own): what a sandbox reports, so that its runner can end them if it dies. */
const liveGroups = new Set<number>();

export function serverGroups(): number[] {
  return [...liveGroups];
}

/**
 * An MCP client transport over a child process's stdin/stdout with exactly
 * the given environment. The child leads its own process group: close() ends
 * stdin, then signals the group SIGTERM, then SIGKILL, each after
 * `killGraceMs`, and resolves once the server has exited; leftovers of the
 * group are killed whenever the server exits.
 */
export class CleanStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private closedNotified = false;
  private stderrTail = '';
  /** Why this side ended the connection (a message too large). */
  private failure: string | undefined;
  private exitDescription: string | undefined;
  private readonly buffer: ReadBuffer;

  constructor(
    private readonly launch: StdioLaunch,
    private readonly options: { killGraceMs: number; maxMessageBytes: number; onStderr?: (line: string) => void },
  ) {
    this.buffer = new ReadBuffer({ maxBufferSize: options.maxMessageBytes });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** How the server ended, with the tail of its stderr, for error messages. */
  describeExit(): string | undefined {
    const tail = this.stderrTail.trim();
    const parts = [this.failure, this.exitDescription, tail !== '' ? `stderr: ${tail}` : undefined].filter((p) => p !== undefined);
    return parts.length > 0 ? parts.join('; ') : undefined;
  }

  start(): Promise<void> {
    if (this.child !== undefined) return Promise.reject(new Error('the server is already started'));
    const { command, args, env, cwd, uid } = this.launch;
    const user = uid !== undefined ? { uid, gid: uid } : {};
    return new Promise((resolveStart, rejectStart) => {
      const child = spawn(command, args, { env, cwd, ...user, stdio: ['pipe', 'pipe', 'pipe'], detached: true, shell: false, windowsHide: true });
      this.child = child;
      if (child.pid !== undefined) liveGroups.add(child.pid);
      this.exited = new Promise((done) => {
        child.once('exit', (code, signal) => {
          if (child.pid !== undefined) liveGroups.delete(child.pid);
          this.exitDescription = `exited with ${signal !== null ? `signal ${signal}` : `code ${code}`}`;
          this.killGroup('SIGKILL');
          done();
          this.notifyClosed();
        });
      });
      child.once('error', (err) => {
        // Failed to start: no process to wait for.
        this.exitDescription = `could not start '${command}': ${err.message}`;
        this.exited = Promise.resolve();
        rejectStart(new Error(this.exitDescription));
        this.notifyClosed();
      });
      child.once('spawn', () => resolveStart());
      child.stdin?.on('error', (err) => this.onerror?.(err));
      child.stdout?.on('data', (chunk: Buffer) => this.receive(chunk));
      child.stderr?.setEncoding('utf8');
      let partial = '';
      child.stderr?.on('data', (text: string) => {
        this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
        const lines = (partial + text).split('\n');
        partial = lines.pop()!.slice(-STDERR_TAIL);
        for (const line of lines) if (line.trim() !== '') this.options.onStderr?.(line.slice(0, STDERR_TAIL));
      });
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (stdin == null || this.closing !== undefined || !stdin.writable) return Promise.reject(new Error('the server is not running'));
    return new Promise((done, fail) => {
      stdin.write(serializeMessage(message), (err) => (err == null ? done() : fail(err)));
    });
  }

  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    const child = this.child;
    if (child !== undefined && this.exited !== undefined) {
      const grace = this.options.killGraceMs;
      child.stdin?.end();
      if (!(await settlesWithin(this.exited, grace))) {
        this.killGroup('SIGTERM');
        if (!(await settlesWithin(this.exited, grace))) {
          this.killGroup('SIGKILL');
          await this.exited;
        }
      }
    }
    this.buffer.clear();
    this.notifyClosed();
  }

  private receive(chunk: Buffer): void {
    try {
      this.buffer.append(chunk);
    } catch (err) {
      this.failure = `the server sent a message larger than ${this.options.maxMessageBytes} bytes`;
      this.onerror?.(new Error(`${this.failure}: ${errorMessage(err)}`));
      void this.close();
      return;
    }
    for (;;) {
      let msg: JSONRPCMessage | null;
      try {
        msg = this.buffer.readMessage();
      } catch (err) {
        this.onerror?.(new Error(`the server wrote a line that is not a JSON-RPC message: ${errorMessage(err)}`));
        continue;
      }
      if (msg === null) break;
      this.onmessage?.(msg);
    }
  }

  /** Signals the server's whole process group; it may be gone already. */
  private killGroup(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: nothing left in the group.
    }
  }

  private notifyClosed(): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    this.onclose?.();
  }
}

/** True when `promise` settles within `ms`. */
function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((done) => {
    const timer = setTimeout(() => done(false), ms);
    void promise.then(() => {
      clearTimeout(timer);
      done(true);
    });
  });
}

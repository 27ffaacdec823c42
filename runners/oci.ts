/**
 * The OCI bundle of a gVisor sandbox: a read-only root that holds only what
 * the runtime needs — the system's programs and libraries (`/usr`, and
 * `/lib*`, `/bin`, `/sbin` as the host lays them out), a minimal `/etc`
 * written here (no `/etc/shadow`, no host accounts), of the BeaconOS
 * installation folder only what the runtime needs (RUNTIME_PATHS) read-only
 * at its own path, with any data folder inside them masked (or no sandbox),
 * the target's shipped files read-only at `/beacon/files`, and a private
 * scratch tmpfs at `/tmp`. Never the host's home or data folders, never the
 * host's environment: the process gets exactly `env`.
 *
 * The runtime is the sandbox's root, holding only the capabilities to change
 * user (CAP_SETUID, CAP_SETGID) under no_new_privs: it starts its stdio
 * servers as `TOOLS_UID` (nobody), which cannot signal, trace or read the
 * memory of the runtime that holds the kernel channel, and has no way back.
 */
import { lstatSync, mkdirSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { RunnerUnavailable } from './types.js';

export interface OciOptions {
  /** argv of the sandbox's process (absolute program path). */
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** The BeaconOS installation folder: its RUNTIME_PATHS mounted read-only at their own paths. */
  installRoot: string;
  /** Folders that hold data (runs, caches, state): hidden behind an empty read-only tmpfs where a mount would show them. */
  maskDirs: string[];
  /** The target's shipped files on the host: mounted read-only at `/beacon/files`. */
  filesDir?: string;
  /** The Node.js binary, mounted at its own path when it is not under the system folders. */
  nodeBinary: string;
  /** Size of the scratch tmpfs. */
  scratchBytes: number;
  hostname: string;
  /** RLIMIT_NOFILE and RLIMIT_CPU. */
  openFiles: number;
  cpuSeconds: number;
}

/** The user the runtime starts its stdio servers as, inside the sandbox (nobody): not the runtime's. */
export const TOOLS_UID = 65534;

/** All the runtime may do as the sandbox's root: drop to `TOOLS_UID` for its stdio servers. */
const RUNTIME_CAPABILITIES = ['CAP_SETUID', 'CAP_SETGID'];

/** Where the shipped files are inside the sandbox. */
export const FILES_IN_SANDBOX = '/beacon/files';

/** Top-level system folders the runtime needs from the host (programs and shared libraries). */
const SYSTEM = ['/usr', '/lib', '/lib32', '/lib64', '/libx32', '/bin', '/sbin'];

interface Mount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

function isUnder(path: string, dir: string): boolean {
  const r = relative(dir, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/** What the runtime needs of the installation folder: its built code, its modules and package.json (ESM, version). Nothing else of it is shown. */
export const RUNTIME_PATHS = ['package.json', 'dist', 'node_modules'] as const;

/** The runtime's paths in the installation folder, each with its mount point made in `rootfs`. */
function installationPaths(install: string, rootfs: string): string[] {
  return RUNTIME_PATHS.map((p) => join(install, p)).filter((path) => {
    let st;
    try {
      st = statSync(path);
    } catch {
      return false;
    }
    mkdirSync(join(rootfs, st.isDirectory() ? path : dirname(path)), { recursive: true });
    if (!st.isDirectory()) writeFileSync(join(rootfs, path), '', { flag: 'a' });
    return true;
  });
}

/**
 * The data folders to hide that a mount shows, each made a folder on the host
 * if it is not one yet, so that its mask applies (runsc cannot mount over a
 * path that does not exist, and a folder made later would be visible). A mask
 * that cannot be applied refuses the sandbox: it never starts without it.
 */
function masks(maskDirs: string[], shown: string[]): string[] {
  const needed = maskDirs.map((d) => resolve(d)).filter((m) => shown.some((p) => isUnder(m, p) && m !== p));
  for (const m of needed) {
    try {
      mkdirSync(m, { recursive: true });
      if (!statSync(m).isDirectory()) throw new Error('it is not a folder');
    } catch (err) {
      throw new RunnerUnavailable(`cannot hide ${m} from the sandbox (${err instanceof Error ? err.message : String(err)}): refusing to start it`);
    }
  }
  return needed;
}

/**
 * Write the bundle into `bundleDir` (config.json and an empty rootfs/ with the
 * mount points, the system folders' symbolic links and a minimal /etc).
 * Returns the config written.
 */
export function writeOciBundle(bundleDir: string, o: OciOptions): Record<string, unknown> {
  const rootfs = join(bundleDir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${o.scratchBytes}`] },
  ];
  const dirs = new Set<string>(['proc', 'dev', 'tmp', 'etc']);
  for (const sys of SYSTEM) {
    let st;
    try {
      st = lstatSync(sys);
    } catch {
      continue;
    }
    const name = sys.slice(1);
    if (st.isSymbolicLink()) {
      // A merged-/usr host: /lib -> usr/lib. The same link inside, so the dynamic loader's paths resolve.
      symlinkSync(readlinkSync(sys), join(rootfs, name));
    } else if (st.isDirectory()) {
      dirs.add(name);
      mounts.push({ destination: sys, type: 'bind', source: sys, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
    }
  }
  const install = resolve(o.installRoot);
  dirs.add(install.slice(1));
  const shown = installationPaths(install, rootfs);
  mounts.push(...shown.map((p) => ({ destination: p, type: 'bind', source: p, options: ['rbind', 'ro', 'nosuid', 'nodev'] })));
  for (const m of masks(o.maskDirs, shown)) mounts.push({ destination: m, type: 'tmpfs', source: 'tmpfs', options: ['ro', 'nosuid', 'nodev', 'noexec', 'size=4k', 'mode=555'] });
  const node = resolve(o.nodeBinary);
  if (!SYSTEM.some((s) => isUnder(node, s)) && !isUnder(node, install)) {
    mkdirSync(join(rootfs, dirname(node)), { recursive: true });
    writeFileSync(join(rootfs, node), '');
    mounts.push({ destination: node, type: 'bind', source: node, options: ['bind', 'ro', 'nosuid', 'nodev'] });
  }
  if (o.filesDir !== undefined) {
    dirs.add(FILES_IN_SANDBOX.slice(1));
    mounts.push({ destination: FILES_IN_SANDBOX, type: 'bind', source: resolve(o.filesDir), options: ['rbind', 'ro', 'nosuid', 'nodev'] });
  }
  for (const d of dirs) mkdirSync(join(rootfs, d), { recursive: true });
  // Accounts the runtime may look up; nothing of the host's.
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(rootfs, 'etc', 'hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  const config = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: o.args,
      env: Object.entries(o.env).map(([k, v]) => `${k}=${v}`),
      cwd: o.cwd,
      noNewPrivileges: true,
      capabilities: { bounding: RUNTIME_CAPABILITIES, effective: RUNTIME_CAPABILITIES, inheritable: [], permitted: RUNTIME_CAPABILITIES, ambient: [] },
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: o.openFiles, soft: o.openFiles },
        { type: 'RLIMIT_CPU', hard: o.cpuSeconds, soft: o.cpuSeconds },
      ],
    },
    root: { path: 'rootfs', readonly: true },
    hostname: o.hostname,
    mounts,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  writeFileSync(join(bundleDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return config;
}

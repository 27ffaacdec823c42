/**
 * The host's process table, as the local runners' heartbeats measure a
 * sandbox's memory from it: who is whose child, and which process group each
 * process is in. Reading it means reading the stat file of every process on
 * the host, so one read serves every sandbox's heartbeat: a snapshot younger
 * than the caller's `maxAgeMs` is taken as it is. Without the sharing, a host
 * of S sandboxes among P processes read S × P files on every tick (twice:
 * the memory check and the heartbeat's answer each measured the tree).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { residentBytes } from '../runtime/index.js';

/** The table indexed for walking trees: children by parent, members by process group. */
interface Snapshot {
  /** When it was read (performance.now(): monotonic). */
  at: number;
  children: Map<number, number[]>;
  groups: Map<number, number[]>;
}

let last: Snapshot | undefined;

/** Parent and process group of every process on this host, from /proc, indexed (empty where there is none). */
function readTable(): Snapshot {
  const children = new Map<number, number[]>();
  const groups = new Map<number, number[]>();
  const at = performance.now();
  let names: string[];
  try {
    names = readdirSync('/proc').filter((n) => /^[0-9]+$/.test(n));
  } catch {
    return { at, children, groups };
  }
  const add = (map: Map<number, number[]>, key: number, pid: number) => {
    const list = map.get(key);
    if (list === undefined) map.set(key, [pid]);
    else list.push(pid);
  };
  for (const n of names) {
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      // After the command name (which may hold spaces and parentheses): state, ppid, pgrp.
      const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      add(children, Number(ppid), Number(n));
      add(groups, Number(pgrp), Number(n));
    } catch {
      // gone meanwhile
    }
  }
  return { at, children, groups };
}

/** The process table, read now unless the last read is younger than `maxAgeMs`. */
function snapshot(maxAgeMs: number): Snapshot {
  if (last === undefined || performance.now() - last.at > maxAgeMs) last = readTable();
  return last;
}

/**
 * The resident memory, measured on this host, of `root` and all its
 * descendants, and of every member of `groups` (stdio servers that left the
 * tree): what a sandbox holds, whatever it reports. The tree is walked in a
 * table at most `maxAgeMs` old (0: read now); the sizes are read now.
 */
export function treeResidentBytes(root: number, groups: number[] = [], maxAgeMs = 0): number {
  const table = snapshot(maxAgeMs);
  const seen = new Set<number>();
  const todo = [root, ...groups.flatMap((g) => table.groups.get(g) ?? [])];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const kids = table.children.get(pid);
    if (kids !== undefined) todo.push(...kids);
  }
  let bytes = 0;
  for (const pid of seen) bytes += residentBytes(pid) ?? 0;
  return bytes;
}

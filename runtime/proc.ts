/**
 * What the host says about a process, for whoever must tell a live one from a
 * gone one (run leases, runners' state records) or measure one (a sandbox's
 * heartbeat). Linux's /proc; elsewhere the /proc answers are undefined.
 */
import { readFileSync } from 'node:fs';

/** Whether a process exists (signal 0; EPERM: it does, as another user's). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat): with the pid, it names the process, not a later one given the same pid. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name, which may hold spaces and parentheses, fields are space-separated from the state (field 3).
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** A process's resident memory in bytes (/proc/<pid>/statm, 4 KiB pages). */
export function residentBytes(pid: number): number | undefined {
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return Number.isFinite(pages) ? pages * 4096 : undefined;
  } catch {
    return undefined;
  }
}

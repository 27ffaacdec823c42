/**
 * The process table the local runners' heartbeats measure memory in: a
 * process tree's resident size counts every descendant and every member of
 * the groups named, and one read of /proc serves every caller while it is
 * younger than their `maxAgeMs` (a process started since is seen only by a
 * caller that wants a fresher table).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { residentBytes } from '../../runtime/index.js';
import { treeResidentBytes } from '../../runners/proc-table.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
});

/** A node process, leader of its own group, that starts `children` node processes and says `ready` once they run. */
async function family(children: number): Promise<{ leader: number; pids: number[] }> {
  const script = `const {spawn}=require('node:child_process');const kids=[];for(let i=0;i<${children};i++)kids.push(spawn(process.execPath,['-e','setInterval(()=>{},1e6)'],{stdio:'ignore'}).pid);console.log(JSON.stringify(kids));setInterval(()=>{},1e6);`;
  const child = spawn(process.execPath, ['-e', script], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  started.push(child);
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  return { leader: child.pid!, pids: JSON.parse(line.toString('utf8')) as number[] };
}

const sizes = (pids: number[]) => pids.reduce((sum, pid) => sum + (residentBytes(pid) ?? 0), 0);

describe('treeResidentBytes', () => {
  it('counts the root and all its descendants, and nothing of an unrelated process', async () => {
    const a = await family(2);
    const b = await family(1);
    const ofA = treeResidentBytes(a.leader);
    // Each node process holds tens of MiB; sizes move a little between reads.
    expect(ofA).toBeGreaterThan(0.8 * sizes([a.leader, ...a.pids]));
    expect(ofA).toBeLessThan(1.2 * sizes([a.leader, ...a.pids]));
    expect(ofA).toBeLessThan(sizes([a.leader, ...a.pids, b.leader, ...b.pids]));
  });

  it('counts the members of the process groups named, out of the tree', async () => {
    const a = await family(0);
    const b = await family(1);
    const alone = treeResidentBytes(a.leader);
    const withGroup = treeResidentBytes(a.leader, [b.leader]);
    expect(withGroup - alone).toBeGreaterThan(0.8 * sizes([b.leader, ...b.pids]));
  });

  it('walks the table read within maxAgeMs, and reads it again for a caller that wants it fresher', async () => {
    treeResidentBytes(process.pid, [], 0);
    const later = await family(1);
    // The table read before the family started does not know its child: only the leader (measured directly) counts.
    const leader = residentBytes(later.leader)!;
    const between = leader + residentBytes(later.pids[0]!)! / 2;
    expect(treeResidentBytes(later.leader, [], 60_000)).toBeLessThan(between);
    // A caller that wants a fresher table reads it again, and sees the child.
    expect(treeResidentBytes(later.leader, [], 0)).toBeGreaterThan(between);
    // That read is now the shared one.
    expect(treeResidentBytes(later.leader, [], 60_000)).toBeGreaterThan(between);
  });
});

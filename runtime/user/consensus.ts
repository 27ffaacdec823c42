/**
 * Consensus: each voter replica's ballot (its output, compared on the
 * canonical JSON of `voteOn`, or an abstention), and the tally. The
 * denominator is every voter, abstentions included; `majority` needs more
 * than half, `unanimous` all, a fraction f at least ⌈f·voters⌉. When the two
 * most-voted values have the same count no value leads: no consensus, even
 * if both reached a low quorum.
 */
import { canonicalJson } from '../../compiler/index.js';
import type { ConsensusTally, Json } from '../types.js';
import { brief } from './values.js';

export type Ballot = { node: string; replica: number } & ({ ok: true; vote: Json; output: Json } | { ok: false; error: string });

export type Quorum = ConsensusTally['quorum'];

/** `params.quorum` as declared (default majority), or why it is not a quorum. */
export function parseQuorum(value: unknown): { quorum: Quorum } | { error: string } {
  if (value === undefined) return { quorum: 'majority' };
  if (value === 'majority' || value === 'unanimous') return { quorum: value };
  if (typeof value === 'number' && value > 0 && value <= 1) return { quorum: value };
  return { error: `params.quorum must be majority, unanimous or a fraction in (0, 1], got ${brief(value)}` };
}

export function requiredVotes(quorum: Quorum, voters: number): number {
  if (quorum === 'majority') return Math.floor(voters / 2) + 1;
  if (quorum === 'unanimous') return voters;
  // The epsilon keeps 2/3 of 3 voters at 2, not 3, despite floating point.
  return Math.max(1, Math.ceil(quorum * voters - 1e-9));
}

/** Count the ballots (in voter, then replica order) and say which output won, if any. */
export function tally(ballots: readonly Ballot[], quorum: Quorum): { tally: ConsensusTally; output?: Json } {
  const required = requiredVotes(quorum, ballots.length);
  const byValue = new Map<string, ConsensusTally['votes'][number] & { output: Json }>();
  const abstained: ConsensusTally['abstained'] = [];
  for (const b of ballots) {
    if (!b.ok) {
      abstained.push({ node: b.node, replica: b.replica, error: b.error });
      continue;
    }
    const key = canonicalJson(b.vote);
    let v = byValue.get(key);
    if (v === undefined) byValue.set(key, (v = { value: b.vote, count: 0, ballots: [], output: b.output }));
    v.count++;
    v.ballots.push({ node: b.node, replica: b.replica });
  }
  // Stable: equal counts keep the order of their first ballot.
  const ranked = [...byValue.values()].sort((a, b) => b.count - a.count);
  const votes = ranked.map(({ value, count, ballots: who }) => ({ value, count, ballots: who }));
  const t: ConsensusTally = { quorum, required, voters: ballots.length, votes, abstained };
  const [first, second] = ranked;
  if (first !== undefined && second !== undefined && first.count === second.count) t.tie = true;
  if (first === undefined || t.tie === true || first.count < required) return { tally: t };
  t.winner = first.value;
  return { tally: t, output: first.output };
}

/** Why there was no consensus, in a sentence. */
export function noConsensusMessage(t: ConsensusTally): string {
  const need = `${t.quorum === 'majority' || t.quorum === 'unanimous' ? t.quorum : `quorum ${t.quorum}`}: ${t.required} of ${t.voters} votes`;
  const counts = t.votes.map((v) => `${brief(v.value, 40)} ${v.count}`).join(', ') || 'no votes';
  const abstained = t.abstained.length > 0 ? `, ${t.abstained.length} abstained` : '';
  return `${t.tie === true ? 'the vote is tied' : 'no value reached the quorum'} (${need}; ${counts}${abstained})`;
}

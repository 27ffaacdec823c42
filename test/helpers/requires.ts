/**
 * Tests that need something of the machine (runsc, say) use `requires`: in CI
 * (CI=true) a missing requirement fails the test loudly, since CI installs it;
 * elsewhere the test is skipped and the reason is printed once.
 */
import { it } from 'vitest';

const reported = new Set<string>();

/** `it` when `missing` is null; otherwise `it` that fails in CI and `it.skip` elsewhere. */
export function requires(missing: string | null): typeof it {
  if (missing === null) return it;
  if (process.env.CI === 'true' || process.env.CI === '1') {
    const fail = (name: string) =>
      it(name, () => {
        throw new Error(`this test needs ${missing}, and CI must provide it`);
      });
    // `.each` too: a table of cases fails case by case, with the reason, not at collection.
    const each = (cases: readonly unknown[]) => (name: string) => cases.forEach((_, i) => fail(`${name} [case ${i + 1}]`));
    return Object.assign(fail, { each }) as unknown as typeof it;
  }
  if (!reported.has(missing)) {
    reported.add(missing);
    process.stderr.write(`skipping tests that need ${missing}\n`);
  }
  return it.skip as unknown as typeof it;
}

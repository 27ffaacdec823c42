/**
 * Evaluation reports as JUnit XML, the format CI systems show as test
 * results (GitHub, GitLab, Jenkins): one `testsuite` per Evaluation, one
 * `testcase` per case (failed with its scorers' reasons) and per threshold,
 * and an Evaluation that could not run as a skipped test with why. It
 * follows the Apache Ant JUnit schema that most readers accept (every
 * required attribute and element present; test/fixtures/junit/JUnit.xsd).
 */
import type { EvaluationReport } from './types.js';

/** One Evaluation's outcome as JUnit shows it. */
export interface JunitSuite {
  /** `tenant/name`. */
  evaluation: string;
  /** Each case's name (`case 1: <input>`), in order. */
  caseNames: string[];
  /** Each scorer's label (`exact /category`), in order. */
  scorerNames: string[];
  /** Set when it ran. */
  report?: EvaluationReport;
  /** Why it did not run. */
  skipped?: string;
  /** When it started, and how long it took. */
  startedAt: Date;
  seconds: number;
}

/** The JUnit XML of `suites`, for `hostname`. */
export function junitXml(suites: readonly JunitSuite[], hostname: string): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>', '<testsuites>'];
  suites.forEach((s, id) => out.push(...suite(s, id, hostname)));
  out.push('</testsuites>', '');
  return out.join('\n');
}

function suite(s: JunitSuite, id: number, hostname: string): string[] {
  const classname = s.evaluation.replace('/', '.');
  const cases: string[] = [];
  let failures = 0;
  if (s.report === undefined) {
    cases.push(`    <testcase name="${attr('not run')}" classname="${attr(classname)}" time="0"><skipped message="${attr(s.skipped ?? 'not run')}"/></testcase>`);
  } else {
    const r = s.report;
    const perCase = s.seconds / Math.max(1, r.cases.length);
    for (const c of r.cases) {
      const name = s.caseNames[c.case] ?? `case ${c.case + 1}`;
      const head = `    <testcase name="${attr(name)}" classname="${attr(classname)}" time="${seconds(c.latencyMs / 1000 || perCase)}"`;
      if (c.passed) {
        cases.push(`${head}/>`);
        continue;
      }
      failures++;
      const lines = c.failures.map((f) => `${s.scorerNames[f.scorer] ?? `scorer ${f.scorer + 1}`}${f.repeat > 0 ? ` (run ${f.repeat + 1})` : ''}: ${f.message}`);
      cases.push(`${head}><failure message="${attr(lines[0] ?? 'failed')}" type="scorer">${text(lines.join('\n'))}</failure></testcase>`);
    }
    for (const t of r.thresholds) {
      const head = `    <testcase name="${attr(`threshold ${t.name}`)}" classname="${attr(classname)}" time="0"`;
      if (t.passed) cases.push(`${head}/>`);
      else {
        failures++;
        const message = `${t.name}: ${t.actual} is ${t.name === 'minPassRate' ? 'below' : 'above'} ${t.limit}`;
        cases.push(`${head}><failure message="${attr(message)}" type="threshold">${text(message)}</failure></testcase>`);
      }
    }
  }
  const tests = cases.length;
  const props =
    s.report !== undefined
      ? [
          ['version', s.report.version],
          ['digest', s.report.digest],
          ['passRate', String(s.report.passRate)],
          ['cached', String(s.report.cached)],
        ]
      : [];
  return [
    `  <testsuite name="${attr(s.evaluation)}" package="${attr(classname)}" id="${id}" timestamp="${s.startedAt.toISOString().slice(0, 19)}" hostname="${attr(hostname || 'localhost')}" tests="${tests}" failures="${failures}" errors="0" skipped="${s.report === undefined ? 1 : 0}" time="${seconds(s.seconds)}">`,
    props.length === 0 ? '    <properties/>' : `    <properties>${props.map(([n, v]) => `<property name="${attr(n!)}" value="${attr(v!)}"/>`).join('')}</properties>`,
    ...cases,
    '    <system-out/>',
    '    <system-err/>',
    '  </testsuite>',
  ];
}

function seconds(s: number): string {
  return Number.isFinite(s) && s > 0 ? s.toFixed(3) : '0';
}

/** Characters XML 1.0 cannot hold at all (most control characters, lone surrogates), dropped. */
// eslint-disable-next-line no-control-regex
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function text(s: string): string {
  return s.replace(NOT_XML, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An attribute value: line breaks and tabs as references, so that they survive attribute normalization. */
function attr(s: string): string {
  return text(s).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

/**
 * Which line of a YAML document is out of line. `yaml` reports an indentation
 * mistake where its parser notices it, which is often the lines after the
 * mistake (each sibling that no longer lines up) or the line before it (a plain
 * scalar that "swallowed" an over-indented key), and a tab as one error per
 * line. This reads the document's lines the way a person does — keys of one
 * mapping start at one column — and names the one line to fix, with how.
 *
 * Only asked when `yaml` already found an indentation problem (yaml.ts), so it
 * may be simple: where a line is not plain block YAML (a quoted scalar that
 * spans lines), it says nothing and `yaml`'s own errors stand.
 */

/** The one line to fix. */
export interface IndentMistake {
  kind: 'tab' | 'indent';
  line: number;
  column: number;
  message: string;
  hint: string;
}

/** One open mapping or list: the column its entries start at, and its first entry. */
interface Level {
  indent: number;
  /** Its first entry's key and line, and its last entry's key. */
  key: string | undefined;
  line: number;
  last: string | undefined;
  entries: number;
}

/** What one significant line holds. */
interface Entry {
  line: number;
  /** Column (0-based) of the key, or of the item's content for `- `. */
  indent: number;
  /** Column of the `-` when the line is a list item. */
  dash?: number;
  key: string | undefined;
  /** Ends with `key:` or `-` alone: the next lines are its value. */
  opens: boolean;
  /** `|` or `>`: the lines indented deeper are text. */
  block: boolean;
  /** Brackets left open at the end of the line. */
  flow: number;
  /** A quote left open at the end of the line. */
  quote: boolean;
}

const KEY = /^("[^"]*"|'[^']*'|[^\s#"'{}[\],&*!|>%@`-][^:#]*?|-[^\s:#][^:#]*?)[ \t]*:(?=[ \t]|$)/;

/** Read one line's content (after its indentation). */
function readEntry(line: number, indent: number, content: string): Entry {
  let dash: number | undefined;
  let at = indent;
  let rest = content;
  while (/^-(?:[ \t]|$)/.test(rest)) {
    dash ??= at;
    const skip = /^-[ \t]*/.exec(rest)![0].length;
    at += skip;
    rest = rest.slice(skip);
  }
  const key = KEY.exec(rest);
  const value = key !== null ? rest.slice(key[0].length) : rest;
  const bare = value.replace(/(^|[ \t])#.*$/, '').trim();
  return {
    line,
    indent: at,
    ...(dash !== undefined ? { dash } : {}),
    key: key !== null ? key[1]!.replace(/^["']|["']$/g, '') : undefined,
    opens: bare === '' && (key !== null || dash !== undefined),
    block: /^[|>][-+0-9]*$/.test(bare),
    ...brackets(bare),
  };
}

/** Brackets and quotes a line leaves open. */
function brackets(text: string): { flow: number; quote: boolean } {
  let flow = 0;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== null) {
      if (c === quote && (quote === "'" || text[i - 1] !== '\\')) quote = null;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s[{,:]/.test(text[i - 1]!)) quote = c;
    } else if (c === '[' || c === '{') flow++;
    else if ((c === ']' || c === '}') && flow > 0) flow--;
  }
  return { flow, quote: quote !== null };
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const lastOf = (l: Level): string => (l.last !== undefined ? `'${l.last}'` : 'the entry above');
const named = (e: { key: string | undefined }, what = 'this line'): string => (e.key !== undefined ? `'${e.key}'` : what);

/** The lines (1-based, `from`..`to`) of one document: the first one out of line, or null. */
export function indentMistake(lines: readonly string[], from: number, to: number): IndentMistake | null {
  const scan = new Scan(lines);
  for (let n = from; n <= to && n <= lines.length; n++) {
    const found = scan.line(n);
    if (found === 'stop') return null;
    if (found !== null) return found.kind === 'tab' ? withOtherTabs(found, lines, n, to) : found;
  }
  return null;
}

/** A tab mistake names every other tab-indented line of the document, so one error says it all. */
function withOtherTabs(m: IndentMistake, lines: readonly string[], from: number, to: number): IndentMistake {
  const tabbed: number[] = [];
  for (let n = from; n <= to && n <= lines.length; n++) if (/^[ \t]*\t/.test(lines[n - 1]!) && lines[n - 1]!.trim() !== '') tabbed.push(n);
  if (tabbed.length < 2) return m;
  const list = `${tabbed.slice(0, -1).join(', ')} and ${tabbed[tabbed.length - 1]}`;
  return { ...m, message: `Tabs are not allowed as indentation (lines ${list})` };
}

/** The state of a reading: open levels, the last entry, and text that is not entries. */
class Scan {
  private levels: Level[] = [];
  private prev: Entry | undefined;
  /** Lines indented deeper than this are a block scalar's text. */
  private text: number | undefined;
  private flow = 0;

  constructor(private readonly lines: readonly string[]) {}

  line(n: number): IndentMistake | null | 'stop' {
    const raw = this.lines[n - 1]!.replace(/\r$/, '');
    const lead = /^[ \t]*/.exec(raw)![0];
    const content = raw.slice(lead.length);
    if (this.text !== undefined && (content === '' || lead.length > this.text)) return null;
    this.text = undefined;
    if (this.flow > 0) {
      this.flow = Math.max(0, this.flow + brackets(content).flow);
      return null;
    }
    if (content === '' || content.startsWith('#')) return null;
    if (/^(?:---|\.\.\.)(?:[ \t]|$)/.test(raw)) {
      this.levels = [];
      this.prev = undefined;
      return null;
    }
    if (lead.includes('\t')) return this.tab(n, lead);
    const e = readEntry(n, lead.length, content);
    if (e.quote) return 'stop';
    const mistake = this.place(e);
    if (mistake === 'continuation') return null;
    if (mistake !== null) return mistake;
    this.prev = e;
    if (e.block) this.text = lead.length;
    this.flow = e.flow;
    return null;
  }

  private tab(n: number, lead: string): IndentMistake {
    const like = this.prev === undefined ? 0 : this.prev.opens ? this.prev.indent + 2 : this.prev.indent;
    return {
      kind: 'tab',
      line: n,
      column: lead.indexOf('\t') + 1,
      message: 'Tabs are not allowed as indentation',
      hint: `YAML indents with spaces only: replace the tab${this.prev !== undefined ? ` (here ${plural(like, 'space')} line it up with ${this.prev.opens ? `the value of ${named(this.prev)}` : named(this.prev)})` : ''}`,
    };
  }

  /** Where the entry belongs among the open levels, or the mistake that it fits none. */
  private place(e: Entry): IndentMistake | null | 'continuation' {
    const prev = this.prev;
    const start = e.dash ?? e.indent;
    if (prev === undefined) return this.open(e, start);
    if (prev.opens && start > (prev.dash !== undefined && prev.key === undefined ? prev.dash : prev.indent)) return this.open(e, start);
    if (prev.opens && start === prev.indent && e.dash !== undefined) return this.open(e, start);
    if (start > prev.indent) {
      // Deeper than a complete entry: the text of a plain scalar goes on, unless it is an entry itself.
      if (e.key === undefined && e.dash === undefined) return 'continuation';
      return {
        kind: 'indent',
        line: e.line,
        column: start + 1,
        message: `${named(e)} is indented ${plural(start, 'space')}, deeper than ${named(prev, 'the entry')} above it, whose value is already on its line`,
        hint: `indent it ${plural(prev.dash ?? prev.indent, 'space')}, like ${named(prev, 'the entry above it')}`,
      };
    }
    return this.dedent(e, start);
  }

  private open(e: Entry, start: number): null {
    this.levels.push({ indent: start, key: e.key, line: e.line, last: e.key, entries: 1 });
    this.inner(e);
    return null;
  }

  /** A list item that holds a mapping opens that mapping at its key's column. */
  private inner(e: Entry): void {
    if (e.dash !== undefined && e.key !== undefined) this.levels.push({ indent: e.indent, key: e.key, line: e.line, last: e.key, entries: 1 });
  }

  /** An entry back at (or before) an open level's column: it must be exactly one of them. */
  private dedent(e: Entry, start: number): IndentMistake | null {
    let closed: Level | undefined;
    while (this.levels.length > 0 && this.levels[this.levels.length - 1]!.indent > start) closed = this.levels.pop();
    const top = this.levels[this.levels.length - 1];
    if (top !== undefined && top.indent === start) {
      top.entries++;
      top.last = e.key;
      this.inner(e);
      return null;
    }
    if (closed === undefined) return this.open(e, start);
    if (closed.entries === 1 && top !== undefined) {
      // The level's only entry so far is the odd one out: the entries after it agree with each other.
      return {
        kind: 'indent',
        line: closed.line,
        column: closed.indent + 1,
        message: `${named(closed)} is indented ${plural(closed.indent, 'space')}, but the keys after it ${start}: the entries of one mapping start at the same column`,
        hint: `indent ${named(closed)} ${plural(start, 'space')}, like the keys after it`,
      };
    }
    return {
      kind: 'indent',
      line: e.line,
      column: start + 1,
      message: `${named(e)} is indented ${plural(start, 'space')}, which lines it up with no entry above it (${lastOf(closed)} is at ${closed.indent}${top !== undefined ? `, ${lastOf(top)} at ${top.indent}` : ''})`,
      hint: `indent it ${plural(closed.indent, 'space')} to go on after ${lastOf(closed)}${top !== undefined ? `, or ${top.indent} to go on after ${lastOf(top)}` : ''}`,
    };
  }
}

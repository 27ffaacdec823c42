/**
 * HTML built from template literals with every interpolated value escaped:
 * `html\`<td>${name}</td>\`` escapes `name`; a value that is already markup
 * (another `html` result) is kept as it is. Nothing else makes markup, so a
 * manifest's name, a commit message or an event's text can never become a
 * tag or an attribute on a page.
 */

/** Markup made by `html` (or `raw`): inserted as it is. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** What may be interpolated: markup, text, numbers, lists of them; null, undefined and false render nothing. */
export type Part = Html | string | number | boolean | null | undefined | readonly Part[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as it may stand in an element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function render(part: Part): string {
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return (part as readonly Part[]).map(render).join('');
  if (part === null || part === undefined || part === false) return '';
  return escapeHtml(String(part));
}

/** The tag of every page's markup. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Markup made elsewhere and trusted (the SVG of a graph this module's callers built with `html`). */
export function raw(text: string): Html {
  return new Html(text);
}

/** JSON for a `<script type="application/json">` block: `<` escaped so that no `</script>` can close it early. */
export function jsonBlock(value: unknown): Html {
  return new Html(JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026'));
}

#!/usr/bin/env node
// Acme help-center MCP server: search and read support articles from kb.json.
//
// Speaks the Model Context Protocol (revision 2025-06-18) over stdio:
// newline-delimited JSON-RPC 2.0 on stdin/stdout, logs on stderr only.
// It runs inside an agent's sandbox (no network, no secrets), so it uses
// nothing but Node.js built-ins and the files shipped with the Tool.
//
// Environment (literal values from the Tool manifest's mcp.env):
//   KB_INDEX        path of the knowledge base JSON (default: kb.json beside
//                   this file; a relative path is resolved against this file)
//   KB_MAX_RESULTS  default number of search results, 1-10 (default: 5)
//
// Try it by hand:
//   printf '%s\n' \
//     '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"0"}}}' \
//     '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
//     '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search_articles","arguments":{"query":"charged twice"}}}' \
//     | node kb-server.mjs

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER_INFO = { name: 'acme-kb', title: 'Acme help center', version: '1.2.0' };
// Newest first; an initialize asking for one of these gets it back, anything
// else gets the newest and the client decides whether it can speak it.
const SUPPORTED_PROTOCOL_VERSIONS = ['2025-06-18', '2025-03-26', '2024-11-05'];
const MAX_QUERY_LENGTH = 2000; // agents often pass a whole JSON case file as the query
const MAX_LIMIT = 10;

const RPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
};

function log(message) {
  process.stderr.write(`[acme-kb] ${message}\n`);
}

// ---------------------------------------------------------------------------
// Knowledge base

const here = dirname(fileURLToPath(import.meta.url));
const kbPath = resolve(here, process.env.KB_INDEX || 'kb.json');
const defaultLimit = clampInt(Number.parseInt(process.env.KB_MAX_RESULTS ?? '', 10), 1, MAX_LIMIT, 5);

function clampInt(value, min, max, fallback) {
  if (!Number.isInteger(value)) return fallback;
  return Math.min(max, Math.max(min, value));
}

function loadKnowledgeBase(path) {
  const kb = JSON.parse(readFileSync(path, 'utf8'));
  if (!kb || !Array.isArray(kb.articles)) throw new Error(`${path}: expected {"articles": [...]}`);
  return kb.articles.map((a) => {
    for (const field of ['id', 'title', 'category', 'body']) {
      if (typeof a[field] !== 'string') throw new Error(`${path}: article ${a.id ?? '?'} has no string "${field}"`);
    }
    const tags = Array.isArray(a.tags) ? a.tags.map(String) : [];
    return {
      ...a,
      tags,
      index: {
        title: new Set(terms(a.title)),
        tags: new Set(tags.flatMap(terms)),
        body: countTerms(terms(a.body)),
        phrases: tags.filter((t) => t.includes(' ')).map((t) => t.toLowerCase()),
      },
    };
  });
}

// ---------------------------------------------------------------------------
// Search: a small term-weighted ranking, good enough for a dozen articles.

const STOPWORDS = new Set(
  ('a an and are as at be been but by can do does for from had has have how i if in into is it its ' +
    'me my no not of on or our so than that the their them then there these they this to too was we ' +
    'were what when where which who why will with would you your yes please hi hello thanks ' +
    // keys and channel values of the JSON objects agents pass through as queries
    'ticket channel customerid category priority summary question chat web').split(' '),
);

function stem(word) {
  let w = word;
  if (w.length > 3 && w.endsWith('s') && !w.endsWith('ss')) w = w.slice(0, -1);
  if (w.length > 5 && w.endsWith('ing')) w = w.slice(0, -3);
  else if (w.length > 4 && w.endsWith('ed')) w = w.slice(0, -2);
  if (w.length > 3 && w.endsWith('e')) w = w.slice(0, -1);
  return w;
}

function terms(text) {
  return (String(text).toLowerCase().match(/[a-z0-9]+/g) ?? [])
    .filter((w) => w.length > 1 && !STOPWORDS.has(w))
    .map(stem);
}

function countTerms(list) {
  const counts = new Map();
  for (const t of list) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}

function search(query, { limit, category }) {
  const queryTerms = [...new Set(terms(query))];
  const lowered = query.toLowerCase();
  const scored = [];
  for (const article of articles) {
    if (category && article.category !== category) continue;
    let score = 0;
    for (const t of queryTerms) {
      if (article.index.title.has(t)) score += 3;
      if (article.index.tags.has(t)) score += 2;
      const n = article.index.body.get(t) ?? 0;
      if (n > 0) score += 1 + Math.log2(n);
    }
    for (const phrase of article.index.phrases) if (lowered.includes(phrase)) score += 4;
    if (score > 0) scored.push({ article, score, queryTerms });
  }
  scored.sort((x, y) => y.score - x.score || x.article.id.localeCompare(y.article.id));
  // Drop the long tail of articles that share one common word with the query.
  const cutoff = (scored[0]?.score ?? 0) * 0.25;
  return scored.filter((s) => s.score >= cutoff).slice(0, limit);
}

function snippet(body, queryTerms, max = 220) {
  // Split after sentence punctuation followed by a space, so hostnames such as status.acme.example stay whole.
  const sentences = body.split(/(?<=[.!?])\s+/);
  let best = sentences[0];
  let bestHits = -1;
  for (const s of sentences) {
    const words = new Set(terms(s));
    const hits = queryTerms.filter((t) => words.has(t)).length;
    if (hits > bestHits) [best, bestHits] = [s, hits];
  }
  best = best.trim();
  return best.length > max ? `${best.slice(0, max - 1).trimEnd()}…` : best;
}

// Loaded once at start-up: a server without its knowledge base is useless, so it fails fast.
let articles;
try {
  articles = loadKnowledgeBase(kbPath);
} catch (err) {
  log(`cannot load knowledge base: ${err.message}`);
  process.exit(1);
}
const categories = [...new Set(articles.map((a) => a.category))].sort();

// ---------------------------------------------------------------------------
// Tools

const TOOLS = [
  {
    name: 'search_articles',
    title: 'Search help-center articles',
    description:
      'Full-text search over the Acme Workspace help center. Returns the best matching articles ' +
      'with their id, title, category, link and the most relevant sentence. Use get_article to read one in full.',
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', minLength: 1, maxLength: MAX_QUERY_LENGTH, description: 'What the customer is asking about, in plain words.' },
        limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, description: `How many articles to return (default ${defaultLimit}).` },
        category: { type: 'string', enum: categories, description: 'Only search this category.' },
      },
      required: ['query'],
      additionalProperties: false,
    },
    annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  },
  {
    name: 'get_article',
    title: 'Read a help-center article',
    description: 'Returns the full text of one help-center article by id (for example KB-1001).',
    inputSchema: {
      type: 'object',
      properties: {
        id: { type: 'string', pattern: '^KB-[0-9]{4}$', description: 'Article id, as returned by search_articles.' },
      },
      required: ['id'],
      additionalProperties: false,
    },
    annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  },
];

/** A tool execution error: reported to the model as a result with isError, so it can correct itself. */
class ToolError extends Error {}

function textResult(text) {
  return { content: [{ type: 'text', text }] };
}

function checkArguments(args, allowed) {
  if (args === undefined) return {};
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new ToolError('arguments must be an object');
  for (const key of Object.keys(args)) {
    if (!allowed.includes(key)) throw new ToolError(`unknown argument "${key}" (allowed: ${allowed.join(', ')})`);
  }
  return args;
}

const handlers = {
  search_articles(rawArgs) {
    const args = checkArguments(rawArgs, ['query', 'limit', 'category']);
    const { query, limit = defaultLimit, category } = args;
    if (typeof query !== 'string' || query.trim() === '') throw new ToolError('"query" must be a non-empty string');
    if (query.length > MAX_QUERY_LENGTH) throw new ToolError(`"query" must be at most ${MAX_QUERY_LENGTH} characters`);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ToolError(`"limit" must be an integer from 1 to ${MAX_LIMIT}`);
    if (category !== undefined && !categories.includes(category)) {
      throw new ToolError(`"category" must be one of: ${categories.join(', ')}`);
    }
    const hits = search(query, { limit, category });
    if (hits.length === 0) return textResult(`No articles match "${query.trim()}". Try fewer or different words.`);
    const lines = [`Found ${hits.length} article${hits.length === 1 ? '' : 's'}:`];
    hits.forEach(({ article, queryTerms }, i) => {
      lines.push(`${i + 1}. ${article.id} ${article.title} (${article.category}, updated ${article.updated ?? 'n/a'})`);
      if (article.url) lines.push(`   ${article.url}`);
      lines.push(`   ${snippet(article.body, queryTerms)}`);
    });
    return textResult(lines.join('\n'));
  },

  get_article(rawArgs) {
    const { id } = checkArguments(rawArgs, ['id']);
    if (typeof id !== 'string' || !/^KB-[0-9]{4}$/.test(id)) throw new ToolError('"id" must look like KB-1001');
    const article = articles.find((a) => a.id === id);
    if (!article) throw new ToolError(`No article with id ${id}. Use search_articles to find article ids.`);
    return textResult(
      [
        `${article.id}: ${article.title}`,
        `Category: ${article.category} | Tags: ${article.tags.join(', ')} | Updated: ${article.updated ?? 'n/a'}`,
        article.url ? `Link: ${article.url}` : null,
        '',
        article.body,
      ]
        .filter((l) => l !== null)
        .join('\n'),
    );
  },
};

// ---------------------------------------------------------------------------
// JSON-RPC / MCP plumbing

class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

function send(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function sendError(id, code, message, data) {
  send({ jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } });
}

const methods = {
  initialize(params) {
    const requested = params?.protocolVersion;
    if (typeof requested !== 'string') throw new RpcError(RPC.INVALID_PARAMS, 'initialize: params.protocolVersion must be a string');
    const protocolVersion = SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : SUPPORTED_PROTOCOL_VERSIONS[0];
    const client = params.clientInfo ? `${params.clientInfo.name}@${params.clientInfo.version}` : 'unknown client';
    log(`initialize from ${client}, protocol ${protocolVersion}, ${articles.length} articles`);
    return {
      protocolVersion,
      capabilities: { tools: {} },
      serverInfo: SERVER_INFO,
      instructions:
        'Search the Acme Workspace help center with search_articles, then read the most relevant hit with get_article. ' +
        'Cite articles by id (KB-1234) and never invent policy that is not in an article.',
    };
  },

  ping() {
    return {};
  },

  'tools/list'() {
    // A dozen articles, two tools: everything fits on one page, so no nextCursor.
    return { tools: TOOLS };
  },

  'tools/call'(params) {
    if (!params || typeof params !== 'object' || typeof params.name !== 'string') {
      throw new RpcError(RPC.INVALID_PARAMS, 'tools/call: params.name must be a string');
    }
    const handler = Object.hasOwn(handlers, params.name) ? handlers[params.name] : undefined;
    if (!handler) throw new RpcError(RPC.INVALID_PARAMS, `Unknown tool: ${params.name}`);
    try {
      return handler(params.arguments);
    } catch (err) {
      if (err instanceof ToolError) return { ...textResult(`Error: ${err.message}`), isError: true };
      throw err;
    }
  },
};

const notifications = {
  'notifications/initialized'() {},
  'notifications/cancelled'() {}, // every request is answered synchronously; nothing to cancel
};

function handleLine(line) {
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    sendError(null, RPC.PARSE_ERROR, 'Parse error');
    return;
  }
  if (Array.isArray(message)) {
    // JSON-RPC batches were removed from MCP in 2025-06-18.
    sendError(null, RPC.INVALID_REQUEST, 'Invalid Request: batches are not supported');
    return;
  }
  if (message === null || typeof message !== 'object' || message.jsonrpc !== '2.0') {
    sendError(validId(message?.id) ? message.id : null, RPC.INVALID_REQUEST, 'Invalid Request: expected a JSON-RPC 2.0 object');
    return;
  }
  const isRequest = Object.hasOwn(message, 'id');
  if (typeof message.method !== 'string') {
    // A response to a request we never sent, or garbage; only the latter gets an answer.
    if (isRequest && !Object.hasOwn(message, 'result') && !Object.hasOwn(message, 'error')) {
      sendError(validId(message.id) ? message.id : null, RPC.INVALID_REQUEST, 'Invalid Request: missing method');
    }
    return;
  }
  if (!isRequest) {
    // Notifications are never answered, not even unknown ones.
    notifications[message.method]?.(message.params);
    return;
  }
  if (!validId(message.id)) {
    sendError(null, RPC.INVALID_REQUEST, 'Invalid Request: id must be a string or an integer');
    return;
  }
  const method = Object.hasOwn(methods, message.method) ? methods[message.method] : undefined;
  if (!method) {
    sendError(message.id, RPC.METHOD_NOT_FOUND, `Method not found: ${message.method}`);
    return;
  }
  try {
    send({ jsonrpc: '2.0', id: message.id, result: method(message.params) });
  } catch (err) {
    if (err instanceof RpcError) sendError(message.id, err.code, err.message, err.data);
    else {
      log(`internal error in ${message.method}: ${err.stack ?? err}`);
      sendError(message.id, RPC.INTERNAL_ERROR, 'Internal error');
    }
  }
}

function validId(id) {
  return typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id));
}

const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on('line', (line) => {
  if (line.trim() !== '') handleLine(line);
});
input.on('close', () => {
  // stdin closed: the client is gone. Let pending stdout writes drain, then exit.
  process.exitCode = 0;
});
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

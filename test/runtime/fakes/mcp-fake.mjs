#!/usr/bin/env node
// A scriptable MCP server for the runtime's MCP tests, over stdio (default)
// or Streamable HTTP (`mcp-fake.mjs http`, port from PORT, on 127.0.0.1).
// Tools:
//   echo_meta  -> {meta, arguments}: what reached the server, `_meta` included
//   env        -> {env, cwd}: the process's whole environment and folder
//   headers    -> the HTTP request's headers (http only)
//   fail       -> a JSON-RPC error
//   big        -> `parts` text parts of `size` characters each
//   slow       -> answers after `ms` milliseconds
//   calls      -> the names of every tool called so far (this one excluded)
//   forbidden  -> records the call; tests keep it out of `allow`
//   exit       -> the process exits in the middle of the call
// With EXPECTED_AUTH set (http), a request with another Authorization header
// gets a 401 whose body repeats the header it got.
import { createServer as createHttpServer } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';

const TOOLS = ['echo_meta', 'env', 'headers', 'fail', 'big', 'slow', 'calls', 'forbidden', 'exit'];
const calls = [];
const text = (value) => ({ content: [{ type: 'text', text: typeof value === 'string' ? value : JSON.stringify(value) }] });

function mcpServer() {
  const server = new Server({ name: 'beacon-fake', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: TOOLS.map((name) => ({ name, description: `fake ${name}`, inputSchema: { type: 'object' } })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: args = {}, _meta } = request.params;
    if (name !== 'calls') calls.push(name);
    switch (name) {
      case 'echo_meta':
        return text({ meta: _meta ?? null, arguments: args });
      case 'env':
        return text({ env: process.env, cwd: process.cwd() });
      case 'headers':
        return text(extra.requestInfo?.headers ?? {});
      case 'fail':
        throw new McpError(ErrorCode.InternalError, 'failing on purpose');
      case 'big':
        return { content: Array.from({ length: Number(args.parts ?? 1) }, (_, i) => ({ type: 'text', text: String.fromCharCode(97 + (i % 26)).repeat(Number(args.size ?? 10)) })) };
      case 'slow':
        await new Promise((done) => setTimeout(done, Number(args.ms ?? 60_000)));
        return text('slow done');
      case 'calls':
        return text(calls);
      case 'forbidden':
        return text('forbidden ran');
      case 'exit':
        return process.exit(7);
      default:
        throw new McpError(ErrorCode.InvalidParams, `no tool ${name}`);
    }
  });
  return server;
}

if (process.argv[2] === 'http') {
  const expected = process.env.EXPECTED_AUTH;
  const http = createHttpServer(async (req, res) => {
    if (expected !== undefined && req.headers.authorization !== expected) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end(`unauthorized: got ${req.headers.authorization}`);
      return;
    }
    // Stateless: one server and transport per request; `calls` is shared.
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    const server = mcpServer();
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  http.listen(Number(process.env.PORT), '127.0.0.1', () => process.stderr.write(`listening on ${process.env.PORT}\n`));
} else {
  await mcpServer().connect(new StdioServerTransport());
}

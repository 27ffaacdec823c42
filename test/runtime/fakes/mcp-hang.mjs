#!/usr/bin/env node
// An MCP server that never answers: it reads stdin and says nothing, ignores
// SIGTERM and the end of its input, and starts a child of its own that does
// the same. It writes "<its pid> <child pid>" to PID_FILE (from its declared
// environment), so a test can check that closing leaves neither behind.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';

process.on('SIGTERM', () => {});
process.stdin.on('data', () => {});
process.stdin.on('end', () => {});
const child = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1 << 30);"], { stdio: 'ignore' });
if (process.env.PID_FILE) writeFileSync(process.env.PID_FILE, `${process.pid} ${child.pid}`);
setInterval(() => {}, 1 << 30);

/**
 * The dashboard's static files: its stylesheet and page script (in
 * reconciler/dashboard/assets/, beside the sources and read from there by
 * the build in dist/ too), and uPlot's browser build from node_modules —
 * served by this server, never a CDN, so that the Content-Security-Policy
 * can say `'self'` and nothing else. Read once, at start.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** The assets folder: beside this module in the sources, `../../../reconciler/dashboard/assets` from dist/. */
function assetsDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const up of ['assets', '../../../reconciler/dashboard/assets']) {
    const dir = resolve(here, up);
    if (existsSync(join(dir, 'dashboard.css'))) return dir;
  }
  throw new Error('the dashboard assets are not found in this BeaconOS installation');
}

function asset(file: string, type: string): Asset {
  const body = readFileSync(file);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** Every asset by the name it is served under (`/assets/<name>`). */
export function loadAssets(): ReadonlyMap<string, Asset> {
  const dir = assetsDir();
  const require = createRequire(import.meta.url);
  return new Map([
    ['dashboard.css', asset(join(dir, 'dashboard.css'), 'text/css; charset=utf-8')],
    ['dashboard.js', asset(join(dir, 'dashboard.js'), 'text/javascript; charset=utf-8')],
    ['uPlot.iife.min.js', asset(require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8')],
    ['uPlot.min.css', asset(require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8')],
  ]);
}

/**
 * The web page's files (src/api/web/: plain HTML, CSS and JS, no build step), read once at
 * start and served from memory with an ETag. They are found from this module's location by
 * walking up to the repository's package.json, so the compiled server in dist/src/api/ and the
 * TypeScript source (tests) serve the same files.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface WebAsset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

export function webRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const web = join(dir, 'src', 'api', 'web');
      return existsSync(web) ? web : null;
    }
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** name ("index.html") → asset. Empty when the files are not there. */
export function loadWebAssets(root: string | null = webRoot()): Map<string, WebAsset> {
  const out = new Map<string, WebAsset>();
  if (!root) return out;
  for (const name of readdirSync(root)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(root, name));
    out.set(name, { body, type, etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return out;
}

// Serves the widget, the demo page and the models on localhost, with the strict
// Content-Security-Policy the widget is built for. No dependencies: node's own http server.
//
//   node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--models DIR]
//
// /            → redirect to /demo/
// /models/...  → the models folder (default: models/ at the repository root)
// anything else → web/ (widget, wasm package, demo)

import { createServer } from 'node:http';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.dirname(fileURLToPath(import.meta.url));

/** The policy the widget must work under: no inline script or style, no eval, wasm allowed. */
export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "connect-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.ts': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.md': 'text/plain; charset=utf-8',
};

/** Creates (does not start) the server; `models` is the folder served under /models/. */
export function createSiteServer({ models = path.join(WEB, '..', 'models') } = {}) {
  return createServer(async (req, res) => {
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-security-policy': CSP });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      return send(400, 'bad path\n');
    }
    if (pathname === '/') {
      res.writeHead(302, { location: '/demo/' });
      return res.end();
    }
    const [root, rel] = pathname.startsWith('/models/') ? [models, pathname.slice('/models/'.length)] : [WEB, pathname.slice(1)];
    let file = path.resolve(root, rel);
    if (file !== root && !file.startsWith(root + path.sep)) return send(403, 'outside the site\n');
    try {
      let stat = await fs.stat(file);
      if (stat.isDirectory()) {
        file = path.join(file, 'index.html');
        stat = await fs.stat(file);
      }
      // Revalidated on every use, but a model the browser has is not downloaded again.
      const lastModified = new Date(Math.floor(stat.mtimeMs / 1000) * 1000);
      const headers = {
        'content-security-policy': CSP,
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-cache',
        'last-modified': lastModified.toUTCString(),
      };
      const since = Date.parse(req.headers['if-modified-since'] ?? '');
      if (!Number.isNaN(since) && lastModified.getTime() <= since) {
        res.writeHead(304, headers);
        return res.end();
      }
      res.writeHead(200, {
        ...headers,
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'content-length': stat.size,
      });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).pipe(res);
    } catch {
      send(404, `not found: ${pathname}\n`);
    }
  });
}

function argValue(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i === -1) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined) {
    console.error(`error: ${name} needs a value`);
    process.exit(2);
  }
  return v;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const portArg = String(argValue('--port', process.env.PORT ?? 8080));
  const port = Number(portArg);
  const host = argValue('--host', '127.0.0.1');
  const models = path.resolve(argValue('--models', path.join(WEB, '..', 'models')));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`error: --port must be a port number (0-65535), got '${portArg}'`);
    process.exit(2);
  }
  try {
    await fs.access(path.join(WEB, 'pkg', 'liveness_wasm_bg.wasm'));
  } catch {
    console.error('error: web/pkg is missing: build the wasm module first (scripts/build-web.sh)');
    process.exit(1);
  }
  const server = createSiteServer({ models });
  server.on('error', (e) => {
    console.error(`error: cannot serve on ${host}:${port}: ${e.message}`);
    process.exit(1);
  });
  server.listen(port, host, () => {
    console.log(`Demo signup page: http://${host === '0.0.0.0' ? 'localhost' : host}:${server.address().port}/demo/`);
    console.log(`Serving models from ${models}. Ctrl+C stops.`);
  });
}

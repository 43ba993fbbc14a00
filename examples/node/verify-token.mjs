// What a Node backend does with the token the widget handed to its page:
//   1. verify it offline against the liveness server's published keys (JWKS): signature, expiry,
//      issuer and audience (your site's origin), with `jose`;
//   2. refuse anything but a live verdict;
//   3. consume it once at the server (POST /v1/tokens/consume with the operator's API key), so a
//      replayed token is refused even though this backend keeps no state.
//
// Usage: LIVENESS_API_KEY=… node verify-token.mjs --server http://localhost:8080 \
//          --audience https://shop.example [--issuer liveness-server] TOKEN
// Exit status 0: a live person, token used now. Otherwise 1 and the reason on stderr.
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: {
    server: { type: 'string' },
    audience: { type: 'string' },
    issuer: { type: 'string', default: 'liveness-server' },
  },
  allowPositionals: true,
});
if (!values.server || !values.audience || positionals.length !== 1) {
  console.error('usage: node verify-token.mjs --server URL --audience ORIGIN [--issuer ISS] TOKEN');
  process.exit(2);
}
const [token] = positionals;

// jose caches the key set and refetches it when a token names a key it has not seen (rotation).
const keys = createRemoteJWKSet(new URL('/.well-known/jwks.json', values.server));
try {
  const { payload } = await jwtVerify(token, keys, {
    algorithms: ['EdDSA'],
    issuer: values.issuer,
    audience: values.audience,
  });
  if (payload.live !== true) {
    throw new Error(`the verdict is ${JSON.stringify(payload.verdict)}, not live`);
  }
  const apiKey = process.env.LIVENESS_API_KEY;
  if (apiKey) {
    const response = await fetch(new URL('/v1/tokens/consume', values.server), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ token, audience: values.audience }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(`consume: ${response.status} ${body.error ?? ''} ${body.message ?? ''}`.trim());
    }
  }
  console.log(JSON.stringify(payload));
} catch (e) {
  console.error(`token refused: ${e.message}`);
  process.exit(1);
}

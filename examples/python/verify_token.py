"""What a Python backend does with the token the widget handed to its page:

1. verify it offline against the liveness server's published keys (JWKS): signature, expiry,
   issuer and audience (your site's origin), with PyJWT;
2. refuse anything but a live verdict;
3. consume it once at the server (POST /v1/tokens/consume with the operator's API key), so a
   replayed token is refused even though this backend keeps no state.

Usage: LIVENESS_API_KEY=… python verify_token.py --server http://localhost:8080 \\
         --audience https://shop.example [--issuer liveness-server] TOKEN
Exit status 0: a live person, token used now. Otherwise 1 and the reason on stderr.
Needs: pip install "pyjwt[crypto]" (EdDSA comes from the cryptography package).
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

import jwt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--issuer", default="liveness-server")
    parser.add_argument("token")
    args = parser.parse_args()
    server = args.server.rstrip("/")
    try:
        # PyJWKClient caches the key set and picks the key the token's kid names (rotation).
        keys = jwt.PyJWKClient(f"{server}/.well-known/jwks.json")
        key = keys.get_signing_key_from_jwt(args.token)
        claims = jwt.decode(
            args.token,
            key,
            algorithms=["EdDSA"],
            audience=args.audience,
            issuer=args.issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
        )
        if claims.get("live") is not True:
            raise ValueError(f"the verdict is {claims.get('verdict')!r}, not live")
        api_key = os.environ.get("LIVENESS_API_KEY")
        if api_key:
            request = urllib.request.Request(
                f"{server}/v1/tokens/consume",
                data=json.dumps({"token": args.token, "audience": args.audience}).encode(),
                headers={"content-type": "application/json", "authorization": f"Bearer {api_key}"},
                method="POST",
            )
            try:
                urllib.request.urlopen(request, timeout=10).close()
            except urllib.error.HTTPError as e:
                body = json.loads(e.read() or b"{}")
                raise ValueError(f"consume: {e.code} {body.get('error', '')} {body.get('message', '')}")
    except (jwt.PyJWTError, ValueError) as e:
        print(f"token refused: {e}", file=sys.stderr)
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())

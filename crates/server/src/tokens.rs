//! Signed verdicts as standard JWTs (RFC 7519), signed with Ed25519 (`alg: EdDSA`, RFC 8037), so
//! a host's backend verifies them with its language's usual JWT library against the server's
//! JWKS (`GET /.well-known/jwks.json`): `jose` in Node, PyJWT in Python (see `examples/`).
//!
//! Keys rotate: every key has a `kid` (its RFC 7638 thumbprint); the newest key of the key folder
//! signs, and an older one stays published until every token it signed has expired
//! ([`KeyRing::jwks`]). `liveness-server rotate-key` adds a key; servers pick it up within a
//! minute.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// What a token says. Registered claims (RFC 7519) plus the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the server (`--issuer`).
    pub iss: String,
    /// Audience: the configured audience, or the origin of the page that ran the check.
    pub aud: String,
    /// Subject: the session id.
    pub sub: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Token id: what single use is keyed on (`POST /v1/tokens/consume`).
    pub jti: String,
    /// The server's verdict: a live person, confirmed.
    pub live: bool,
    /// The signal that decided (`live`, `challenge-failed`, `flat`, `attack`, …).
    pub verdict: String,
    /// Every check that failed, in the order they decide (empty when live).
    pub signals: Vec<String>,
    /// The session's head-pose challenge was performed and passed.
    pub challenge: bool,
    /// The server's `p_spoof`, only in a live verdict (a failed session reveals no score).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_spoof: Option<f32>,
    /// SHA-256 of the model that decided.
    pub model: String,
}

/// Why a token is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, not EdDSA, or its claims are missing or of the wrong type.
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// Signed by a key the JWKS does not hold (another server, or a key retired long ago).
    #[error("the token's key {0:?} is not among the server's published keys")]
    UnknownKey(String),
    /// The signature does not match (forged or altered).
    #[error("the token's signature is not valid (forged, altered, or signed by another key)")]
    Signature,
    /// Past its expiry.
    #[error("the token expired at {0} (seconds since the Unix epoch)")]
    Expired(i64),
    /// Issued for another audience.
    #[error("the token is for {found:?}, not {expected:?}")]
    Audience { expected: String, found: String },
    /// Issued by another issuer.
    #[error("the token was issued by {found:?}, not {expected:?}")]
    Issuer { expected: String, found: String },
}

/// Why a key cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file or folder cannot be read or written.
    #[error("signing key {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Not 32 bytes of base64.
    #[error("signing key {0}: expected 32 bytes in base64 (an Ed25519 seed)")]
    Format(String),
    /// A key file that others than its owner may read.
    #[error("signing key {0}")]
    File(#[from] crate::private_files::PrivateFileError),
}

/// One Ed25519 key and when it began to sign.
struct Key {
    kid: String,
    signing: SigningKey,
    encoding: EncodingKey,
    /// Seconds since the Unix epoch (0 for a key given by value).
    created: i64,
}

impl Key {
    fn new(seed: [u8; 32], created: i64, source: &str) -> Result<Self, KeyError> {
        let signing = SigningKey::from_bytes(&seed);
        // jsonwebtoken takes Ed25519 private keys as PKCS#8 DER.
        let der = signing
            .to_pkcs8_der()
            .map_err(|_| KeyError::Format(source.to_owned()))?;
        let key = Key {
            kid: thumbprint(&signing.verifying_key()),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            signing,
            created,
        };
        // Sign once now, so that signing cannot fail later.
        let probe = Header::new(Algorithm::EdDSA);
        jsonwebtoken::encode(&probe, &serde_json::json!({}), &key.encoding)
            .map_err(|_| KeyError::Format(source.to_owned()))?;
        Ok(key)
    }

    fn jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes()),
            }),
        }
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key: the key's id.
pub fn thumbprint(key: &VerifyingKey) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(key.as_bytes())
    );
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

fn seed_from(text: &str, source: &str) -> Result<[u8; 32], KeyError> {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| KeyError::Format(source.to_owned()))
}

/// The server's keys: the newest signs, all verify. Newest first.
pub struct KeyRing {
    keys: Vec<Key>,
}

/// Key files in a key folder are `ed25519-<seconds since the Unix epoch>.key`.
const KEY_PREFIX: &str = "ed25519-";
const KEY_SUFFIX: &str = ".key";

impl KeyRing {
    /// One fixed key from a base64 seed (e.g. the `LIVENESS_SIGNING_KEY` environment variable);
    /// no rotation.
    pub fn from_base64(text: &str, source: &str) -> Result<Self, KeyError> {
        Ok(KeyRing {
            keys: vec![Key::new(seed_from(text, source)?, 0, source)?],
        })
    }

    /// The keys of the folder `dir`, created (0700) with a first key when it holds none. A key
    /// file others may read is refused.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| KeyError::Io { path, source }
        };
        crate::private_files::create_dir(dir).map_err(io(dir))?;
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let Some(created) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(KEY_PREFIX)?.strip_suffix(KEY_SUFFIX))
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            crate::private_files::check(&path)?;
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let source = path.display().to_string();
            keys.push(Key::new(seed_from(&text, &source)?, created, &source)?);
        }
        if keys.is_empty() {
            Self::rotate(dir)?;
            return Self::load(dir);
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.created));
        Ok(KeyRing { keys })
    }

    /// Adds a new signing key to the folder `dir` (mode 0600); returns its file. Servers sign
    /// with it from their next reload (within a minute); the old key keeps verifying.
    pub fn rotate(dir: &Path) -> Result<PathBuf, KeyError> {
        crate::private_files::create_dir(dir).map_err(|source| KeyError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut created = now_seconds();
        loop {
            let path = dir.join(format!("{KEY_PREFIX}{created}{KEY_SUFFIX}"));
            match crate::private_files::create_file(
                &path,
                STANDARD.encode(rand::random::<[u8; 32]>()).as_bytes(),
            ) {
                Ok(()) => return Ok(path),
                // Two rotations within a second: the later one is a second newer.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => created += 1,
                Err(source) => {
                    return Err(KeyError::Io {
                        path: path.display().to_string(),
                        source,
                    });
                }
            }
        }
    }

    /// The key that signs now.
    fn current(&self) -> &Key {
        &self.keys[0]
    }

    /// The id of the key that signs now.
    pub fn kid(&self) -> &str {
        &self.current().kid
    }

    /// The JWT of `claims`, signed by the newest key.
    pub fn sign(&self, claims: &Claims) -> String {
        let key = self.current();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        // Serialising these claims cannot fail, and the key signed once when it was loaded.
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap_or_default()
    }

    /// The public keys that verify tokens still valid at `now` (seconds): the newest, and each
    /// older one until `token_ttl` after a newer key replaced it (its last token's expiry).
    pub fn jwks(&self, now: i64, token_ttl: std::time::Duration) -> JwkSet {
        let ttl = token_ttl.as_secs() as i64;
        let keys = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || now <= self.keys[i - 1].created + ttl + 60)
            .map(|(_, k)| k.jwk())
            .collect();
        JwkSet { keys }
    }
}

/// Where the server's keys come from: a folder (rotated, reloaded) or one fixed key.
pub enum KeySource {
    /// The key folder ([`KeyRing::load`]).
    Dir(PathBuf),
    /// One key given by value ([`KeyRing::from_base64`]).
    Fixed(String),
}

/// The live key ring, reloaded from its folder by the server's housekeeping.
pub struct Keys {
    source: KeySource,
    ring: std::sync::RwLock<std::sync::Arc<KeyRing>>,
}

impl Keys {
    /// Loads the keys of `source`.
    pub fn new(source: KeySource) -> Result<Self, KeyError> {
        let ring = Self::read(&source)?;
        Ok(Keys {
            source,
            ring: std::sync::RwLock::new(std::sync::Arc::new(ring)),
        })
    }

    fn read(source: &KeySource) -> Result<KeyRing, KeyError> {
        match source {
            KeySource::Dir(dir) => KeyRing::load(dir),
            KeySource::Fixed(seed) => KeyRing::from_base64(seed, "LIVENESS_SIGNING_KEY"),
        }
    }

    /// The keys now.
    pub fn ring(&self) -> std::sync::Arc<KeyRing> {
        match self.ring.read() {
            Ok(r) => std::sync::Arc::clone(&r),
            Err(p) => std::sync::Arc::clone(&p.into_inner()),
        }
    }

    /// Rereads the key folder (a rotation since the last read takes effect).
    pub fn reload(&self) -> Result<(), KeyError> {
        let fresh = std::sync::Arc::new(Self::read(&self.source)?);
        match self.ring.write() {
            Ok(mut r) => *r = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        Ok(())
    }
}

/// What a verifier expects of a token besides a valid signature and expiry.
#[derive(Debug, Clone, Default)]
pub struct Expect<'a> {
    /// The audience the token must name (`None`: any).
    pub audience: Option<&'a str>,
    /// The issuer the token must name (`None`: any).
    pub issuer: Option<&'a str>,
}

/// Checks a token against `jwks`: its key id, its Ed25519 signature (strictly: no malleable or
/// small-order signature passes), its expiry, and `expect`; its claims if valid.
pub fn verify(token: &str, jwks: &JwkSet, expect: &Expect) -> Result<Claims, TokenError> {
    let malformed = |why: String| TokenError::Malformed(why);
    let token = token.trim();
    let header = jsonwebtoken::decode_header(token).map_err(|e| malformed(e.to_string()))?;
    if header.alg != Algorithm::EdDSA {
        return Err(malformed(format!("alg {:?}, expected EdDSA", header.alg)));
    }
    let kid = header
        .kid
        .ok_or_else(|| malformed("no kid in the header".into()))?;
    let key = jwks
        .find(&kid)
        .and_then(|jwk| match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Some(p.x.clone())
            }
            _ => None,
        })
        .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
    let (signed, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| malformed("expected header.payload.signature".into()))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| malformed("the signature is not 64 bytes of base64url".into()))?;
    key.verify_strict(signed.as_bytes(), &signature)
        .map_err(|_| TokenError::Signature)?;
    // The claims: jsonwebtoken checks exp (no leeway: the issuer's clock is the server's),
    // aud and iss.
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss", "jti"]);
    match expect.audience {
        Some(a) => validation.set_audience(&[a]),
        None => validation.validate_aud = false,
    }
    if let Some(i) = expect.issuer {
        validation.set_issuer(&[i]);
    }
    let decoding = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(key.as_bytes()))
        .map_err(|e| malformed(e.to_string()))?;
    match jsonwebtoken::decode::<Claims>(token, &decoding, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind;
            let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(token)
                .ok()
                .map(|d| d.claims);
            Err(match (e.kind(), claims) {
                (ErrorKind::ExpiredSignature, Some(c)) => TokenError::Expired(c.exp),
                (ErrorKind::InvalidAudience, Some(c)) => TokenError::Audience {
                    expected: expect.audience.unwrap_or_default().to_owned(),
                    found: c.aud,
                },
                (ErrorKind::InvalidIssuer, Some(c)) => TokenError::Issuer {
                    expected: expect.issuer.unwrap_or_default().to_owned(),
                    found: c.iss,
                },
                _ => malformed(e.to_string()),
            })
        }
    }
}

/// A new token id.
pub fn new_jti() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// Seconds since the Unix epoch, for claims.
pub fn now_seconds() -> i64 {
    crate::now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "liveness-server".into(),
            aud: "https://shop.example".into(),
            sub: "abc".into(),
            iat: now_seconds(),
            exp,
            jti: new_jti(),
            live: true,
            verdict: "live".into(),
            signals: Vec::new(),
            challenge: true,
            p_spoof: Some(0.1),
            model: "00".into(),
        }
    }

    fn ring(seed: u8) -> KeyRing {
        KeyRing::from_base64(&STANDARD.encode([seed; 32]), "test").expect("key")
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_not_after_any_change() {
        let keys = ring(7);
        let jwks = keys.jwks(now_seconds(), std::time::Duration::from_secs(600));
        let c = claims(now_seconds() + 600);
        let token = keys.sign(&c);
        let expect = Expect {
            audience: Some("https://shop.example"),
            issuer: Some("liveness-server"),
        };
        assert_eq!(verify(&token, &jwks, &expect), Ok(c.clone()));
        assert!(matches!(
            verify(
                &token,
                &jwks,
                &Expect {
                    audience: Some("https://evil.example"),
                    ..expect.clone()
                }
            ),
            Err(TokenError::Audience { .. })
        ));
        assert!(matches!(
            verify(
                &token,
                &jwks,
                &Expect {
                    issuer: Some("another-server"),
                    ..expect.clone()
                }
            ),
            Err(TokenError::Issuer { .. })
        ));
        let expired = keys.sign(&claims(now_seconds() - 1));
        assert!(matches!(
            verify(&expired, &jwks, &expect),
            Err(TokenError::Expired(_))
        ));
        // A forged payload (live flipped) with the old signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                live: false,
                ..c.clone()
            })
            .expect("json"),
        );
        parts[1] = &forged;
        assert_eq!(
            verify(&parts.join("."), &jwks, &expect),
            Err(TokenError::Signature)
        );
        assert!(matches!(
            verify("abc.def", &jwks, &expect),
            Err(TokenError::Malformed(_))
        ));
        // Another server's key is not in this JWKS; nor is the right kid with another key.
        let other = ring(8);
        assert!(matches!(
            verify(&other.sign(&c), &jwks, &expect),
            Err(TokenError::UnknownKey(_))
        ));
        let mut lying = other.jwks(now_seconds(), std::time::Duration::from_secs(600));
        lying.keys[0].common.key_id = Some(keys.kid().to_owned());
        assert_eq!(verify(&token, &lying, &expect), Err(TokenError::Signature));
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .expect("b64");
        let key = VerifyingKey::from_bytes(&x.try_into().expect("32")).expect("key");
        assert_eq!(
            thumbprint(&key),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[cfg(unix)]
    #[test]
    fn rotation_signs_with_the_new_key_and_verifies_old_tokens_until_they_expire() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let keys = dir.path().join("keys");
        let first = KeyRing::load(&keys).expect("created");
        let files: Vec<_> = std::fs::read_dir(&keys).expect("dir").collect();
        assert_eq!(files.len(), 1);
        let path = files[0].as_ref().expect("entry").path();
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(&keys).expect("meta").permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let old_token = first.sign(&claims(now_seconds() + 600));

        KeyRing::rotate(&keys).expect("rotated");
        let second = KeyRing::load(&keys).expect("reloaded");
        assert_ne!(second.kid(), first.kid(), "the new key signs");
        let ttl = std::time::Duration::from_secs(600);
        let now = now_seconds();
        let jwks = second.jwks(now, ttl);
        assert_eq!(jwks.keys.len(), 2, "the old key still verifies");
        let expect = Expect::default();
        assert!(verify(&old_token, &jwks, &expect).is_ok());
        assert!(verify(&second.sign(&claims(now + 600)), &jwks, &expect).is_ok());
        // Once every token of the old key has expired, it is no longer published.
        let later = second.jwks(now + 2 + 600 + 61, ttl);
        assert_eq!(later.keys.len(), 1);
        assert_eq!(later.keys[0].common.key_id.as_deref(), Some(second.kid()));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let Err(e) = KeyRing::load(&keys) else {
            panic!("a key others can read must be refused")
        };
        assert!(
            matches!(
                e,
                KeyError::File(crate::private_files::PrivateFileError::Exposed { mode: 0o644, .. })
            ),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}

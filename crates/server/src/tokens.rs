//! Signed verdicts: `v1.<payload>.<signature>`, base64url without padding, where the payload is
//! the JSON [`Claims`] and the signature Ed25519 over `v1.<payload>`. A host's backend verifies a
//! token offline with the server's public key ([`verify`], or `liveness-server verify-token`).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// What a token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Session id.
    pub sid: String,
    /// The server's verdict: a live person, confirmed.
    pub live: bool,
    /// The signal that decided (`live`, `challenge-failed`, `flat`, `attack`, …).
    pub verdict: String,
    /// The session's head-pose challenge was performed and passed.
    pub challenge: bool,
    /// The server's `p_spoof` for the frames.
    pub p_spoof: f32,
    /// SHA-256 of the model that decided.
    pub model: String,
    /// Issued at, ms since the Unix epoch.
    pub iat: i64,
    /// Expires at, ms since the Unix epoch.
    pub exp: i64,
}

/// Why a token is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `v1.<payload>.<signature>`, or not base64/JSON.
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// The signature does not match (forged or altered).
    #[error("the token's signature is not valid (forged, altered, or signed by another key)")]
    Signature,
    /// Past its expiry.
    #[error("the token expired at {0} ms")]
    Expired(i64),
}

/// Why a key cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read or written.
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
    #[error(
        "signing key {path} can be read by others (mode {mode:o}); make it private: chmod 600 {path}"
    )]
    Exposed { path: String, mode: u32 },
}

/// The server's signing key.
pub struct Signer {
    key: SigningKey,
}

fn seed_from(text: &str, source: &str) -> Result<[u8; 32], KeyError> {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| KeyError::Format(source.to_owned()))
}

impl Signer {
    /// A key from a base64 seed (e.g. the `LIVENESS_SIGNING_KEY` environment variable).
    pub fn from_base64(text: &str, source: &str) -> Result<Self, KeyError> {
        Ok(Signer {
            key: SigningKey::from_bytes(&seed_from(text, source)?),
        })
    }

    /// The key in `path`, or a fresh one written there (mode 0600) when the file does not exist:
    /// the demo's first start. A key file others may read is refused.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        return Err(KeyError::Exposed {
                            path: path.display().to_string(),
                            mode,
                        });
                    }
                }
                Self::from_base64(&text, &path.display().to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let seed: [u8; 32] = rand::random();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io)?;
                std::io::Write::write_all(&mut file, STANDARD.encode(seed).as_bytes())
                    .map_err(io)?;
                Ok(Signer {
                    key: SigningKey::from_bytes(&seed),
                })
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The public key, base64.
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    /// The token of `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("v1.{payload}");
        let signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// A public key from base64.
pub fn public_key(text: &str) -> Result<VerifyingKey, TokenError> {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| TokenError::Malformed("the public key is not 32 bytes of base64".into()))
}

/// Checks a token's signature with `key` and its expiry against `now_ms`; its claims if valid.
pub fn verify(token: &str, key: &VerifyingKey, now_ms: i64) -> Result<Claims, TokenError> {
    let malformed = |why: &str| TokenError::Malformed(why.to_owned());
    let mut parts = token.trim().split('.');
    let (Some("v1"), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected v1.<payload>.<signature>"));
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| malformed("the signature is not 64 bytes of base64url"))?;
    key.verify_strict(format!("v1.{payload}").as_bytes(), &signature)
        .map_err(|_| TokenError::Signature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| malformed("the payload is not the claims' JSON"))?;
    if now_ms >= claims.exp {
        return Err(TokenError::Expired(claims.exp));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            sid: "abc".into(),
            live: true,
            verdict: "live".into(),
            challenge: true,
            p_spoof: 0.1,
            model: "00".into(),
            iat: 1000,
            exp: 2000,
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_not_after_any_change() {
        let signer = Signer::from_base64(&STANDARD.encode([7u8; 32]), "test").expect("key");
        let key = public_key(&signer.public_key()).expect("public");
        let token = signer.sign(&claims());
        assert_eq!(verify(&token, &key, 1500), Ok(claims()));
        assert_eq!(verify(&token, &key, 2000), Err(TokenError::Expired(2000)));
        // A forged payload (live flipped) with the old signature.
        let (head, sig) = token.rsplit_once('.').expect("dots");
        let forged = Claims {
            live: false,
            ..claims()
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        let forged = format!("v1.{forged_payload}.{sig}");
        assert_eq!(verify(&forged, &key, 1500), Err(TokenError::Signature));
        assert!(matches!(
            verify(head, &key, 1500),
            Err(TokenError::Malformed(_))
        ));
        let other = Signer::from_base64(&STANDARD.encode([8u8; 32]), "test").expect("key");
        let other_key = public_key(&other.public_key()).expect("public");
        assert_eq!(verify(&token, &other_key, 1500), Err(TokenError::Signature));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_is_created_private_and_an_exposed_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("key");
        let made = Signer::load_or_create(&path).expect("created");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = Signer::load_or_create(&path).expect("reloaded");
        assert_eq!(made.public_key(), again.public_key());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let Err(e) = Signer::load_or_create(&path) else {
            panic!("a key others can read must be refused")
        };
        assert!(matches!(e, KeyError::Exposed { mode: 0o644, .. }), "{e}");
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}

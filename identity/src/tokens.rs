//! Token material: access JWTs signed with identity's Ed25519 key (only identity holds it), and
//! opaque random tokens (refresh, email verification, password reset) of which only a SHA-256 is
//! ever stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::auth::{Claims, Ed25519KeyPair, JwtVerifier, Role};
use uuid::Uuid;

pub struct JwtSigner {
    key: EncodingKey,
    kid: String,
    public_raw: Vec<u8>,
    issuer: String,
    audience: String,
    ttl_secs: u64,
}

impl JwtSigner {
    pub fn new(keys: &Ed25519KeyPair, issuer: &str, audience: &str, ttl_secs: u64) -> Self {
        Self {
            key: EncodingKey::from_ed_der(&keys.pkcs8_der),
            kid: keys.key_id(),
            public_raw: keys.public_raw.clone(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn sign(&self, user: Uuid, role: Role) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            role,
            iat: now,
            exp: now + self.ttl_secs as i64,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: shared::id::new_id(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }

    /// The verifier for the same key, used by identity's own authenticated routes.
    pub fn verifier(&self) -> JwtVerifier {
        JwtVerifier::from_raw_public_key(&self.public_raw, &self.issuer, &self.audience)
    }

    /// The public key as a JSON Web Key Set (RFC 8037 OKP key).
    pub fn jwks(&self) -> Value {
        json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(&self.public_raw),
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            }]
        })
    }
}

/// A fresh 256-bit opaque token (base64url) and the hash to store for it.
pub fn new_opaque_token() -> anyhow::Result<(String, Vec<u8>)> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the OS random generator failed"))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    Ok((token, hash))
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_with_the_published_key_only() {
        let keys = Ed25519KeyPair::generate().unwrap();
        let signer = JwtSigner::new(&keys, "iss", "aud", 900);
        let user = Uuid::now_v7();
        let token = signer.sign(user, Role::Seller).unwrap();
        let claims = signer.verifier().verify(&token).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.role, Role::Seller);
        assert_eq!(claims.exp - claims.iat, 900);
        let jwks = signer.jwks();
        let x = jwks["keys"][0]["x"].as_str().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(x).unwrap(), keys.public_raw);
        // The same claims, issuer and audience signed with any other key are refused.
        let other = JwtSigner::new(&Ed25519KeyPair::generate().unwrap(), "iss", "aud", 900);
        let forged = other.sign(user, Role::Seller).unwrap();
        assert!(
            other.verifier().verify(&forged).is_ok(),
            "a well-formed token"
        );
        assert!(
            signer.verifier().verify(&forged).is_err(),
            "a token signed by another key verifies"
        );
    }

    #[test]
    fn opaque_tokens_are_unique_and_stored_only_as_hashes() {
        let (a, ha) = new_opaque_token().unwrap();
        let (b, _) = new_opaque_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(ha.len(), 32);
        assert_eq!(hash_token(&a), ha);
        assert_ne!(ha, a.as_bytes());
    }
}

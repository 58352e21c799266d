//! Tokens minted by the team's own identity provider ("external JWT"), accepted beside
//! Switchboard's own account tokens so an app with its own auth needs no Switchboard accounts.
//!
//! Which key checks a token is decided by the token's header, never by trying keys until one
//! fits, and each key is bound to one algorithm family, so a token cannot pick a weaker check:
//! - a `kid` is looked up in the JWKS (`jwks_url`), RS256 or ES256 only;
//! - no `kid` and RS256/ES256: the PEM public key (`public_key_pem`), with the algorithm of that
//!   key's type only;
//! - no `kid` and HS256: the shared secret (`hs256_secret`).
//!
//! An HS256 token signed with the RSA public key as its secret (the classic confusion attack) is
//! therefore checked against the HS256 secret, and fails. `alg: none` is not an algorithm the
//! decoder knows.
//!
//! The JWKS is fetched on first use and refetched when a token names an unknown `kid` (a key
//! rotation at the issuer), at most once per `jwks_min_refetch_s` (30 s by default); a set older
//! than [`JWKS_MAX_AGE`] is refetched on its next use, so keys the issuer withdrew stop working.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use parking_lot::RwLock;
use serde_json::{Map, Value};

use crate::auth::AuthError;
use crate::config::JwtConfig;
use crate::identity::Identity;

/// A fetched key set is trusted this long before its next use refetches it.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// How long one JWKS fetch may take.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
const JWKS_MAX_BYTES: usize = 256 * 1024;

/// Verifies external tokens and turns their claims into identities.
pub struct ExternalTokens {
    secret: Option<DecodingKey>,
    public_key: Option<(DecodingKey, Algorithm)>,
    jwks: Option<Jwks>,
    user_id_claim: String,
    username_claim: String,
    roles_claim: String,
    audience: Option<String>,
    issuer: Option<String>,
    leeway_secs: u64,
}

impl std::fmt::Debug for ExternalTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalTokens")
            .field("hs256", &self.secret.is_some())
            .field("public_key", &self.public_key.as_ref().map(|(_, alg)| alg))
            .field("jwks_url", &self.jwks.as_ref().map(|j| &j.url))
            .finish_non_exhaustive()
    }
}

/// What a verified external token says.
#[derive(Debug, Clone)]
pub struct ExternalToken {
    pub identity: Identity,
    /// `exp`, in Unix seconds.
    pub expires_at: u64,
}

impl ExternalTokens {
    /// The verifier `config` describes, or `None` when it configures no key. A key that cannot
    /// be read or parsed, or an `http://` JWKS URL on a host that is not loopback, is an error.
    pub fn from_config(config: &JwtConfig) -> Result<Option<Self>, String> {
        let secret = config
            .hs256_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| DecodingKey::from_secret(s.as_bytes()));
        let public_key = match &config.public_key_pem {
            Some(path) if !path.as_os_str().is_empty() => Some(read_public_key(path)?),
            _ => None,
        };
        let jwks = match config.jwks_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => Some(Jwks::new(
                url,
                Duration::from_secs(config.jwks_min_refetch_s),
            )?),
            None => None,
        };
        if secret.is_none() && public_key.is_none() && jwks.is_none() {
            return Ok(None);
        }
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(Some(Self {
            secret,
            public_key,
            jwks,
            user_id_claim: config.user_id_claim.clone(),
            username_claim: config.username_claim.clone(),
            roles_claim: config.roles_claim.clone(),
            audience: non_empty(&config.audience),
            issuer: non_empty(&config.issuer),
            leeway_secs: config.leeway_s,
        }))
    }

    /// Whether a token is one of ours to check rather than Switchboard's own: it names a key
    /// (`kid`) or uses an algorithm Switchboard's tokens never use.
    pub fn claims_token(token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .is_ok_and(|header| header.kid.is_some() || header.alg != Algorithm::HS256)
    }

    /// Check `token` (without a `Bearer ` prefix) and read its identity.
    pub async fn verify(&self, token: &str) -> Result<ExternalToken, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        let (key, algorithm) = match (&header.kid, header.alg) {
            (Some(kid), _) => {
                let jwks = self.jwks.as_ref().ok_or(AuthError::Invalid)?;
                jwks.key(kid).await.ok_or(AuthError::Invalid)?
            }
            (None, Algorithm::HS256) => (
                self.secret.clone().ok_or(AuthError::Invalid)?,
                Algorithm::HS256,
            ),
            (None, _) => self.public_key.clone().ok_or(AuthError::Invalid)?,
        };
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &self.validation(algorithm))
                .map_err(|err| match err.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                })?
                .claims;
        self.identity(&claims)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without a configured audience a token's `aud` names some other service's
            // expectations, not ours: it is not checked.
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<ExternalToken, AuthError> {
        let user_id = match claims.get(&self.user_id_claim) {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(Value::Number(id)) => id.to_string(),
            _ => return Err(AuthError::Invalid),
        };
        let username = match claims.get(&self.username_claim) {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => user_id.clone(),
        };
        let roles = match claims.get(&self.roles_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(list)) => list.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let expires_at = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        Ok(ExternalToken {
            identity: Identity::external(user_id, username, roles),
            expires_at,
        })
    }
}

/// A PEM public key and the one algorithm it verifies (RS256 for RSA, ES256 for P-256).
fn read_public_key(path: &Path) -> Result<(DecodingKey, Algorithm), String> {
    let pem = std::fs::read(path)
        .map_err(|err| format!("jwt.public_key_pem: reading {}: {err}", path.display()))?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        return Ok((key, Algorithm::ES256));
    }
    Err(format!(
        "jwt.public_key_pem: {} is not an RSA or P-256 public key in PEM form",
        path.display()
    ))
}

/// A JWKS endpoint and the keys last fetched from it.
struct Jwks {
    url: String,
    /// Shortest time between two fetches.
    min_refetch: Duration,
    client: reqwest::Client,
    keys: RwLock<KeySet>,
    /// Held while fetching, so concurrent lookups of an unknown `kid` cause one fetch.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
}

impl Jwks {
    fn new(url: &str, min_refetch: Duration) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|err| format!("jwt.jwks_url: {err}"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if is_loopback(&parsed) => {}
            "http" => {
                return Err(format!(
                    "jwt.jwks_url: {url} must be https:// (http:// only for loopback hosts)"
                ));
            }
            other => return Err(format!("jwt.jwks_url: unsupported scheme `{other}`")),
        }
        let client = reqwest::Client::builder()
            .timeout(JWKS_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("jwt.jwks_url: {err}"))?;
        Ok(Self {
            url: url.to_owned(),
            min_refetch,
            client,
            keys: RwLock::new(KeySet::default()),
            fetching: tokio::sync::Mutex::new(None),
        })
    }

    /// The key named `kid`, fetching the set when it is unknown or stale (rate limited).
    async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        if let Some(key) = self.fresh_key(kid) {
            return Some(key);
        }
        let mut last_fetch = self.fetching.lock().await;
        // Another lookup may have fetched while this one waited.
        if let Some(key) = self.fresh_key(kid) {
            return Some(key);
        }
        if last_fetch.is_none_or(|at| at.elapsed() >= self.min_refetch) {
            *last_fetch = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    *self.keys.write() = KeySet {
                        keys,
                        fetched_at: Some(Instant::now()),
                    };
                }
                Err(err) => tracing::warn!(url = %self.url, %err, "JWKS fetch failed"),
            }
        }
        self.keys.read().keys.get(kid).cloned()
    }

    fn fresh_key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let set = self.keys.read();
        let fresh = set.fetched_at.is_some_and(|at| at.elapsed() < JWKS_MAX_AGE);
        fresh.then(|| set.keys.get(kid).cloned()).flatten()
    }

    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
        let mut response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|err| err.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| err.to_string())? {
            if body.len() + chunk.len() > JWKS_MAX_BYTES {
                return Err(format!("larger than {JWKS_MAX_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse_key_set(&body)
    }
}

/// The usable keys of a JWKS document: RSA (RS256) and P-256 (ES256) keys with a `kid`; keys of
/// other types or algorithms are skipped, not fatal, as issuers publish keys for other uses too.
fn parse_key_set(body: &[u8]) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
    let document: Value = serde_json::from_slice(body).map_err(|err| err.to_string())?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err("no `keys` array".into());
    };
    let mut keys = HashMap::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let algorithm = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(ec)
                if ec.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => continue,
        };
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid, (key, algorithm));
        }
    }
    Ok(keys)
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_may_serve_the_key_set_over_plain_http() {
        for url in [
            "http://127.0.0.1:9/jwks.json",
            "http://localhost/jwks",
            "http://[::1]:80/k",
            "https://auth.example.com/.well-known/jwks.json",
        ] {
            assert!(Jwks::new(url, Duration::ZERO).is_ok(), "{url}");
        }
        for url in [
            "http://auth.example.com/jwks",
            "ftp://127.0.0.1/jwks",
            "nonsense",
        ] {
            assert!(Jwks::new(url, Duration::ZERO).is_err(), "{url}");
        }
    }

    #[test]
    fn unusable_keys_in_a_set_are_skipped() {
        let set = br#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"},{"kty":"RSA","n":"AQAB","e":"AQAB"},{"what":1}]}"#;
        assert!(parse_key_set(set).expect("parses").is_empty());
        assert!(parse_key_set(b"{}").is_err());
        assert!(parse_key_set(b"not json").is_err());
    }

    fn hs256_only() -> ExternalTokens {
        let config = JwtConfig {
            hs256_secret: Some("s".into()),
            ..JwtConfig::default()
        };
        ExternalTokens::from_config(&config)
            .expect("valid")
            .expect("configured")
    }

    #[test]
    fn claims_map_to_an_identity_with_the_username_defaulting_to_the_user_id() {
        let tokens = hs256_only();
        let claims = |v: Value| v.as_object().expect("object").clone();
        let named = tokens
            .identity(&claims(serde_json::json!({
                "sub": "u1", "preferred_username": "ada", "roles": "a b", "exp": 7
            })))
            .expect("identity");
        assert_eq!(named.identity.username(), Some("ada"));
        assert_eq!(named.identity.roles(), ["a", "b"]);
        assert_eq!(&**named.identity.root_id(), "n::u1");
        assert_eq!(named.expires_at, 7);
        let unnamed = tokens
            .identity(&claims(serde_json::json!({"sub": 42, "exp": 1})))
            .expect("identity");
        assert_eq!(unnamed.identity.username(), Some("42"));
        assert!(unnamed.identity.roles().is_empty());
        assert!(unnamed.identity.is_authenticated());
        assert!(
            tokens
                .identity(&claims(serde_json::json!({"sub": "", "exp": 1})))
                .is_err()
        );
    }

    #[test]
    fn a_config_without_keys_means_no_external_tokens() {
        assert!(
            ExternalTokens::from_config(&JwtConfig::default())
                .expect("valid")
                .is_none()
        );
    }
}

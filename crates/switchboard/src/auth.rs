//! Tokens: issuing and verifying HS256 JWTs, and turning a presented token into an [`Identity`].
//!
//! A token carries the account's token version; revoking bumps the stored version, so every token
//! issued before is refused on connect, on `change_user` and over REST.

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::external_token::ExternalTokens;
use crate::identity::{Identity, TokenStamp};
use crate::ids::unix_seconds;
use crate::store::{AccountStore, StoreError, UserRecord};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// Account id.
    sub: String,
    email: String,
    /// Stored root id (24 hex).
    root_id: String,
    /// Token version at issue time.
    ver: i64,
    iat: u64,
    exp: u64,
}

/// Why a presented token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token is invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token has been revoked")]
    Revoked,
    #[error("account store failure")]
    Store(#[from] StoreError),
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Invalid => "token_invalid",
            AuthError::Expired => "token_expired",
            AuthError::Revoked => "token_revoked",
            AuthError::Store(_) => "internal_error",
        }
    }
}

/// The signing keys: issues tokens and checks their signature and expiry. Pure computation, no
/// account lookup, so it is what the fuzz target for token parsing drives.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").finish_non_exhaustive()
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub user_id: String,
    pub token_version: i64,
    pub expires_at: u64,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
            validation: Arc::new(validation),
        }
    }

    /// A token for `user` expiring `lifetime_secs` from now (negative: already expired).
    pub fn issue(&self, user: &UserRecord, lifetime_secs: i64) -> String {
        let now = unix_seconds();
        let claims = Claims {
            sub: user.id.clone(),
            email: user.email.clone(),
            root_id: user.root_id.clone(),
            ver: user.token_version,
            iat: now,
            exp: now.saturating_add_signed(lifetime_secs),
        };
        // HS256 encoding of a plain struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Check a token (with or without a `Bearer ` prefix): HS256 only, signature, expiry.
    pub fn verify(&self, presented: &str) -> Result<VerifiedToken, AuthError> {
        let token = strip_bearer(presented);
        if token.is_empty() {
            return Err(AuthError::Invalid);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?
            .claims;
        Ok(VerifiedToken {
            user_id: claims.sub,
            token_version: claims.ver,
            expires_at: claims.exp,
        })
    }
}

/// Issues tokens and resolves presented ones to identities against the account store.
#[derive(Debug, Clone)]
pub struct Authenticator {
    keys: TokenKeys,
    ttl_secs: u64,
    store: AccountStore,
    /// Tokens of the team's own identity provider, when configured.
    external: Option<Arc<ExternalTokens>>,
}

impl Authenticator {
    pub fn new(secret: &[u8], ttl_secs: u64, store: AccountStore) -> Self {
        Self {
            keys: TokenKeys::new(secret),
            ttl_secs,
            store,
            external: None,
        }
    }

    /// Also accept tokens of the team's own identity provider.
    pub fn with_external(mut self, external: Option<ExternalTokens>) -> Self {
        self.external = external.map(Arc::new);
        self
    }

    pub fn store(&self) -> &AccountStore {
        &self.store
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// A signed token for `user`, valid for the configured lifetime.
    pub fn issue(&self, user: &UserRecord) -> String {
        self.keys.issue(user, self.ttl_secs as i64)
    }

    /// A token whose expiry is `lifetime_secs` from now (negative: already expired; for tests
    /// and tooling).
    pub fn issue_with_lifetime(&self, user: &UserRecord, lifetime_secs: i64) -> String {
        self.keys.issue(user, lifetime_secs)
    }

    /// Verify a token (with or without a `Bearer ` prefix) and load the account it names, or,
    /// for an external token, read the identity it carries.
    pub async fn authenticate(&self, presented: &str) -> Result<Identity, AuthError> {
        if let Some(external) = &self.external {
            let token = strip_bearer(presented);
            // A token that names a key or uses another algorithm is never one of ours; an HS256
            // one is ours unless our secret does not verify it.
            if ExternalTokens::claims_token(token)
                || matches!(self.keys.verify(token), Err(AuthError::Invalid))
            {
                let verified = external.verify(token).await?;
                return Ok(verified.identity.with_token(Some(TokenStamp {
                    expires_at: verified.expires_at,
                    version: None,
                })));
            }
        }
        let token = self.keys.verify(presented)?;
        let user = self
            .store
            .user_by_id(&token.user_id)
            .await?
            .ok_or(AuthError::Invalid)?;
        if user.token_version != token.token_version {
            return Err(AuthError::Revoked);
        }
        Ok(identity_of(user).with_token(Some(TokenStamp {
            expires_at: token.expires_at,
            version: Some(token.token_version),
        })))
    }
}

/// The identity an account acts as.
pub fn identity_of(user: UserRecord) -> Identity {
    let username = user.username.unwrap_or_else(|| user.email.clone());
    Identity::named(user.id, user.email, username, user.roles)
}

/// `Bearer x`, `bearer x` or `x` -> `x`.
pub fn strip_bearer(presented: &str) -> &str {
    let trimmed = presented.trim();
    match trimmed.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => trimmed[7..].trim_start(),
        _ => trimmed,
    }
}

/// The configured secret, or the one persisted in `data_dir`, or a new one written there.
pub fn load_or_create_secret(
    configured: Option<&str>,
    data_dir: &Path,
) -> std::io::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("token-secret");
    match std::fs::read_to_string(&path) {
        Ok(existing) if !existing.trim().is_empty() => {
            return Ok(existing.trim().as_bytes().to_vec());
        }
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    std::fs::create_dir_all(data_dir)?;
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &secret)?;
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_in_any_case_is_stripped() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("bearer abc"), "abc");
        assert_eq!(strip_bearer("BEARER  abc "), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer(""), "");
    }

    #[test]
    fn secret_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_create_secret(None, dir.path()).expect("create");
        let second = load_or_create_secret(None, dir.path()).expect("reuse");
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
    }
}

//! Accounts: registration, login, revocation and roles, on top of the account store.
//! Password hashing goes through [`PasswordHashing`]: on the blocking pool, bounded in
//! concurrency and memory.

use crate::auth::Authenticator;
use crate::config::AccountsConfig;
use crate::hashing::{HashError, PasswordHashing};
use crate::ids::new_object_id;
use crate::store::{StoreError, UserRecord};

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("email is not a valid address")]
    InvalidEmail,
    #[error("password must be at least {0} characters")]
    WeakPassword(usize),
    #[error("password must be at most 1024 characters")]
    PasswordTooLong,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("username must be 1 to 32 of A-Z a-z 0-9 _ . -")]
    InvalidUsername,
    #[error("an account with this username already exists")]
    UsernameTaken,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("no such account")]
    NotFound,
    /// Every password-hashing slot stayed busy; try again shortly.
    #[error("the server is busy; try again shortly")]
    Busy,
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for AccountError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => AccountError::EmailTaken,
            StoreError::UsernameTaken => AccountError::UsernameTaken,
            StoreError::NotFound => AccountError::NotFound,
            other => AccountError::Internal(other.to_string()),
        }
    }
}

impl From<HashError> for AccountError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => AccountError::Busy,
            HashError::Internal(cause) => AccountError::Internal(cause),
        }
    }
}

impl AccountError {
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::InvalidEmail => "invalid_email",
            AccountError::WeakPassword(_) => "weak_password",
            AccountError::PasswordTooLong => "password_too_long",
            AccountError::EmailTaken => "email_taken",
            AccountError::InvalidUsername => "invalid_username",
            AccountError::UsernameTaken => "username_taken",
            AccountError::InvalidCredentials => "invalid_credentials",
            AccountError::NotFound => "not_found",
            AccountError::Busy => "hashing_busy",
            AccountError::Internal(_) => "internal_error",
        }
    }
}

/// Account operations.
#[derive(Debug, Clone)]
pub struct Accounts {
    auth: Authenticator,
    min_password_len: usize,
    hashing: PasswordHashing,
}

/// A fixed hash verified when the email is unknown, so both failures cost the same time.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Kj4sFbjX3Tt2xQmKRbBv4yIbZC1qQ8xqYk8mPqGfC3k";

impl Accounts {
    pub fn new(auth: Authenticator, min_password_len: usize, config: &AccountsConfig) -> Self {
        Self {
            auth,
            min_password_len,
            hashing: PasswordHashing::new(
                config.hash_slots(),
                config.max_queued_hashes,
                config.hash_queue_timeout(),
            ),
        }
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// Create an account with `roles`; its username is its email.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        roles: Vec<String>,
    ) -> Result<UserRecord, AccountError> {
        self.register_named(email, password, None, roles).await
    }

    /// Create an account with `roles` and, if given, a username (checked before any hashing).
    pub async fn register_named(
        &self,
        email: &str,
        password: &str,
        username: Option<&str>,
        roles: Vec<String>,
    ) -> Result<UserRecord, AccountError> {
        let email = normalize_email(email)?;
        if username.is_some_and(|name| !is_valid_username(name)) {
            return Err(AccountError::InvalidUsername);
        }
        if password.chars().count() < self.min_password_len {
            return Err(AccountError::WeakPassword(self.min_password_len));
        }
        if password.len() > 1024 {
            return Err(AccountError::PasswordTooLong);
        }
        let password_hash = self.hashing.hash(password.to_string()).await?;
        // The Jac Cloud root id is derived from the user id (`n::` + id), so both are one value.
        let id = new_object_id();
        let user = UserRecord {
            root_id: id.clone(),
            id,
            email,
            username: username.map(str::to_string),
            password_hash,
            token_version: 0,
            roles,
        };
        self.auth.store().insert_user(&user).await?;
        Ok(user)
    }

    /// Check credentials and issue a token. Unknown email and wrong password are one answer.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
    ) -> Result<(String, UserRecord), AccountError> {
        let user = match normalize_email(email) {
            Ok(email) => self.auth.store().user_by_email(&email).await?,
            Err(_) => None,
        };
        let stored_hash = user
            .as_ref()
            .map_or_else(|| DUMMY_HASH.to_string(), |u| u.password_hash.clone());
        let matches = self
            .hashing
            .verify(password.to_string(), stored_hash)
            .await?;
        match user {
            Some(user) if matches => Ok((self.auth.issue(&user), user)),
            _ => Err(AccountError::InvalidCredentials),
        }
    }

    /// Refuse every token issued so far for this account.
    pub async fn revoke_tokens(&self, user_id: &str) -> Result<(), AccountError> {
        Ok(self.auth.store().bump_token_version(user_id).await?)
    }

    /// Grant `role` to the account with `email`; returns the account as it is now.
    pub async fn grant_role(&self, email: &str, role: &str) -> Result<UserRecord, AccountError> {
        let email = normalize_email(email)?;
        let mut user = self
            .auth
            .store()
            .user_by_email(&email)
            .await?
            .ok_or(AccountError::NotFound)?;
        self.auth.store().grant_role(&user.id, role).await?;
        if !user.roles.iter().any(|r| r == role) {
            user.roles.push(role.to_string());
        }
        Ok(user)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, AccountError> {
        let email = normalize_email(email)?;
        Ok(self.auth.store().user_by_email(&email).await?)
    }
}

/// Whether `name` may be a username: `[A-Za-z0-9_.-]{1,32}` (no `@`, so no username can look
/// like another account's email, which is what accounts without a username show).
pub fn is_valid_username(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The one form of an address that accounts are stored and looked up under, so that two
/// spellings a reader cannot tell apart name the same account: NFKC (full-width and other
/// compatibility forms fold to their plain letters), trimmed, lowercased (the whole address:
/// stored emails have always been lowercase, and case look-alikes are look-alikes too).
///
/// Refused (`invalid_email`) rather than silently stripped: control characters, invisible
/// characters (zero-width, joiners, soft hyphen, fillers, variation selectors, tags) and
/// bidirectional controls, which can make one address display as another. Then the shape: one
/// `@`, a non-empty local part of at most 64 bytes, a domain with a dot and no empty labels, no
/// whitespace, at most 254 bytes.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    use unicode_normalization::UnicodeNormalization;

    if email.len() > 1024 || email.chars().any(is_forbidden_in_email) {
        return Err(AccountError::InvalidEmail);
    }
    let folded: String = email.trim().nfkc().collect();
    // Lowercasing can leave a sequence NFKC would write differently (rare, but cheap to fix).
    let email: String = folded.to_lowercase().nfkc().collect();
    let valid = email.len() <= 254
        && !email
            .chars()
            .any(|c| c.is_whitespace() || is_forbidden_in_email(c))
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && domain.split('.').all(|label| !label.is_empty())
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(AccountError::InvalidEmail)
    }
}

/// Characters that have no place in an address a person types: controls, characters that render
/// as nothing, and the bidirectional controls that reorder what is displayed.
fn is_forbidden_in_email(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // soft hyphen, combining grapheme joiner, Arabic letter mark
            '\u{00AD}' | '\u{034F}' | '\u{061C}'
            // Hangul fillers
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
            // Mongolian free variation selectors and vowel separator
            | '\u{180B}'..='\u{180F}'
            // zero-width space, non-joiner, joiner; left-to-right and right-to-left marks
            | '\u{200B}'..='\u{200F}'
            // bidirectional embeddings and overrides
            | '\u{202A}'..='\u{202E}'
            // word joiner, invisible operators, bidirectional isolates, deprecated format controls
            | '\u{2060}'..='\u{206F}'
            // variation selectors
            | '\u{FE00}'..='\u{FE0F}'
            // zero-width no-break space (byte order mark)
            | '\u{FEFF}'
            // interlinear annotation controls
            | '\u{FFF9}'..='\u{FFFB}'
            // tag characters, supplementary variation selectors
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        assert_eq!(normalize_email(" A@B.io ").unwrap(), "a@b.io");
        // Full-width letters and the full-width at sign fold to their plain forms.
        assert_eq!(
            normalize_email("\u{FF25}ve\u{FF20}Example.com").unwrap(),
            "eve@example.com"
        );
        for bad in [
            "",
            "a",
            "a@",
            "@b.io",
            "a@b",
            "a@@b.io",
            "a b@c.io",
            "a@b..io",
            "a\u{200B}b@c.io",
            "ab@c.io\u{FEFF}",
            "\u{202E}moc.b@a",
            "a\u{2066}b@c.io",
            "a\u{0007}b@c.io",
            "a\u{00AD}b@c.io",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(argon2::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}

//! Where accounts live. SQLite is the embedded default (a file in the data directory, created on
//! first start). A PostgreSQL store for clusters will be a sibling module behind the same
//! [`AccountStore`] surface.

mod sqlite;

pub use sqlite::SqliteStore;

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// 24 hex digits.
    pub id: String,
    /// Lowercased.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// 24 hex digits; the connection's `root_id` is `n::` + this.
    pub root_id: String,
    /// Tokens carry the version they were issued under; bumping it revokes them all.
    pub token_version: i64,
    pub roles: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("no such account")]
    NotFound,
    #[error("account store failure: {0}")]
    Backend(#[from] sqlx::Error),
    #[error("account store failure: {0}")]
    Io(#[from] std::io::Error),
}

/// The account store the app was configured with.
#[derive(Debug, Clone)]
pub enum AccountStore {
    Sqlite(SqliteStore),
}

impl AccountStore {
    /// Open (and create, for SQLite) the store at `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(AccountStore::Sqlite(SqliteStore::open(path).await?));
        }
        Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("unsupported database url `{url}` (expected sqlite://PATH)"),
        )))
    }

    pub async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        match self {
            AccountStore::Sqlite(s) => s.insert_user(user).await,
        }
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        match self {
            AccountStore::Sqlite(s) => s.user_by_email(email).await,
        }
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        match self {
            AccountStore::Sqlite(s) => s.user_by_id(id).await,
        }
    }

    /// Invalidate every token issued so far for this user.
    pub async fn bump_token_version(&self, id: &str) -> Result<(), StoreError> {
        match self {
            AccountStore::Sqlite(s) => s.bump_token_version(id).await,
        }
    }

    pub async fn grant_role(&self, id: &str, role: &str) -> Result<(), StoreError> {
        match self {
            AccountStore::Sqlite(s) => s.grant_role(id, role).await,
        }
    }
}

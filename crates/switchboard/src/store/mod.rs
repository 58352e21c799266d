//! Where accounts live: SQLite (the embedded default: a file in the data directory, created on
//! first start) or PostgreSQL (for several processes sharing accounts), chosen by the URL.
//!
//! Both run the same SQL through sqlx's `Any` driver; the statements use only syntax the two
//! share (`$n` placeholders, `ON CONFLICT DO NOTHING`, `BIGINT`). sqlx runs SQLite on its own
//! worker thread and PostgreSQL over async sockets, so no query blocks the reactor.

use std::sync::Once;

use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::AnyPoolOptions;

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// 24 hex digits.
    pub id: String,
    /// Lowercased.
    pub email: String,
    /// The name shown to other users (`[A-Za-z0-9_.-]{1,32}`, unique regardless of case); an
    /// account without one shows its email.
    pub username: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Equal to `id` (kept as a column for the login response); the Jac connection's `root_id` is
    /// `n::` + this.
    pub root_id: String,
    /// Tokens carry the version they were issued under; bumping it revokes them all.
    pub token_version: i64,
    pub roles: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("an account with this username already exists")]
    UsernameTaken,
    #[error("no such account")]
    NotFound,
    #[error("unsupported database url `{0}` (expected sqlite://PATH or postgres://...)")]
    UnsupportedUrl(String),
    #[error("account store failure: {0}")]
    Backend(#[from] sqlx::Error),
    #[error("account store failure: {0}")]
    Io(#[from] std::io::Error),
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        root_id TEXT NOT NULL UNIQUE,
        token_version BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS user_roles (
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        PRIMARY KEY (user_id, role)
    )",
    // Jac Cloud's root id is derived from the user id since the dialect-neutral hub; accounts
    // created before kept a separate random root id. Idempotent.
    "UPDATE users SET root_id = id WHERE root_id <> id",
];

/// Usernames arrived after the first accounts: the column is added to stores created before
/// (see [`AccountStore::migrate_usernames`]), then made unique regardless of case. Accounts
/// without one keep NULL, which both databases let repeat under a unique index.
const USERNAME_INDEX: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS users_username ON users (lower(username))";

/// The columns every user query reads.
const USER_COLUMNS: &str = "id, email, username, password_hash, root_id, token_version";

/// The account store the app was configured with.
#[derive(Debug, Clone)]
pub struct AccountStore {
    pool: AnyPool,
}

impl AccountStore {
    /// Open the store at `url` (`sqlite://PATH`, created with its directory on first use, or
    /// `postgres://...`) and create the tables if they are missing.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (url, max_connections) = if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                tokio::fs::create_dir_all(dir).await?;
            }
            // rwc: create the file if missing. SQLite serializes writers anyway.
            (format!("sqlite://{path}?mode=rwc"), 4)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_string(), 8)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .connect(&url)
            .await?;
        if url.starts_with("sqlite://") {
            // Readers do not block the writer; the setting persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_all(&pool)
                .await?;
        }
        if url.starts_with("sqlite://") {
            for statement in SCHEMA {
                sqlx::query(statement).execute(&pool).await?;
            }
        } else {
            // Several nodes of a cluster start at once against one database, and concurrent
            // `CREATE TABLE IF NOT EXISTS` can still collide: one node at a time creates them.
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(5316920448113012)")
                .execute(&mut *tx)
                .await?;
            for statement in SCHEMA {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        let store = Self { pool };
        store.migrate_usernames().await?;
        Ok(store)
    }

    /// Add the `username` column to a store created before it existed. SQLite has no
    /// `ADD COLUMN IF NOT EXISTS`, so the column's presence is probed with a query both
    /// databases answer; a concurrent start that added it first is not an error.
    async fn migrate_usernames(&self) -> Result<(), StoreError> {
        let probe = "SELECT username FROM users WHERE 1 = 0";
        if sqlx::query(probe).fetch_all(&self.pool).await.is_err() {
            let added = sqlx::query("ALTER TABLE users ADD COLUMN username TEXT")
                .execute(&self.pool)
                .await;
            if let Err(err) = added {
                sqlx::query(probe)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|_| err)?;
            }
        }
        sqlx::query(USERNAME_INDEX).execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers: one `SELECT 1` (the health check).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO users (id, email, username, password_hash, root_id, token_version,
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.root_id)
        .bind(user.token_version)
        .bind(crate::ids::unix_seconds() as i64)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                // PostgreSQL names the index in `constraint`, SQLite only in the message.
                let on_username = db.constraint().is_some_and(|c| c.contains("username"))
                    || db.message().contains("username");
                return Err(if on_username {
                    StoreError::UsernameTaken
                } else {
                    StoreError::EmailTaken
                });
            }
            Err(err) => return Err(err.into()),
        }
        for role in &user.roles {
            self.grant_role(&user.id, role).await?;
        }
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.fetch_user(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"),
            email,
        )
        .await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.fetch_user(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            id,
        )
        .await
    }

    async fn fetch_user(&self, sql: &str, value: &str) -> Result<Option<UserRecord>, StoreError> {
        let Some(row) = sqlx::query(sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let roles = sqlx::query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
            .bind(&id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| r.try_get::<String, _>("role"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(UserRecord {
            id,
            email: row.try_get("email")?,
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
            root_id: row.try_get("root_id")?,
            token_version: row.try_get("token_version")?,
            roles,
        }))
    }

    /// The account's current token version (`None`: no such account any more).
    pub async fn token_version(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT token_version FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("token_version")?),
            None => None,
        })
    }

    /// Invalidate every token issued so far for this user.
    pub async fn bump_token_version(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET token_version = token_version + 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn grant_role(&self, id: &str, role: &str) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(role)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound)
            }
            Err(err) => Err(err.into()),
        }
    }
}

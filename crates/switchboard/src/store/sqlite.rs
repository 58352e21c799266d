//! The embedded SQLite account store. sqlx runs SQLite on its own worker thread, so no query
//! blocks the async reactor.

use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{StoreError, UserRecord};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        root_id TEXT NOT NULL UNIQUE,
        token_version INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS user_roles (
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        PRIMARY KEY (user_id, role)
    )",
];

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open the database file at `path`, creating it and its directory on first use.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        if let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(dir).await?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    pub async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO users (id, email, password_hash, root_id, token_version, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.root_id)
        .bind(user.token_version)
        .bind(crate::ids::unix_seconds() as i64)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(StoreError::EmailTaken);
            }
            Err(err) => return Err(err.into()),
        }
        for role in &user.roles {
            self.grant_role(&user.id, role).await?;
        }
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.fetch_user("email", email).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.fetch_user("id", id).await
    }

    async fn fetch_user(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!(
            "SELECT id, email, password_hash, root_id, token_version FROM users WHERE {column} = $1"
        );
        let Some(row) = sqlx::query(&sql)
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
            password_hash: row.try_get("password_hash")?,
            root_id: row.try_get("root_id")?,
            token_version: row.try_get("token_version")?,
            roles,
        }))
    }

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
        let result =
            sqlx::query("INSERT OR IGNORE INTO user_roles (user_id, role) VALUES ($1, $2)")
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

//! Who is on the other end of a connection or request: the public user or an account.

use std::sync::{Arc, OnceLock};

use crate::ids::{PUBLIC_ROOT_ID, ROOT_ID_PREFIX};

/// A caller's identity. Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct Identity(Arc<IdentityData>);

#[derive(Debug)]
struct IdentityData {
    user_id: Option<String>,
    email: Option<String>,
    root_id: Arc<str>,
    roles: Vec<String>,
}

impl Identity {
    /// The unauthenticated user every connection starts as unless it brings a valid token.
    pub fn public() -> Self {
        static PUBLIC: OnceLock<Identity> = OnceLock::new();
        PUBLIC
            .get_or_init(|| {
                Identity(Arc::new(IdentityData {
                    user_id: None,
                    email: None,
                    root_id: Arc::from(PUBLIC_ROOT_ID),
                    roles: Vec::new(),
                }))
            })
            .clone()
    }

    /// An account, from its stored id, email, root id (24 hex, without `n::`) and roles.
    pub fn user(user_id: String, email: String, stored_root_id: &str, roles: Vec<String>) -> Self {
        Identity(Arc::new(IdentityData {
            user_id: Some(user_id),
            email: Some(email),
            root_id: Arc::from(format!("{ROOT_ID_PREFIX}{stored_root_id}")),
            roles,
        }))
    }

    pub fn is_authenticated(&self) -> bool {
        self.0.user_id.is_some()
    }

    /// `n::<24 hex>`: the id that `notify_users` and `user` events address.
    pub fn root_id(&self) -> &Arc<str> {
        &self.0.root_id
    }

    pub fn user_id(&self) -> Option<&str> {
        self.0.user_id.as_deref()
    }

    pub fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    pub fn roles(&self) -> &[String] {
        &self.0.roles
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.0.roles.iter().any(|r| r == role)
    }
}

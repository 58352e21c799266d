//! Who is on the other end of a connection or request: the public user or an account.
//!
//! The hub indexes connections by [`Identity::user_id`], which is dialect-neutral. Each dialect
//! derives its own view of an identity from these fields; the Jac Cloud dialect's `root_id`
//! (`n::` + user id) is one such view, cached here only so it is computed once per identity.

use std::sync::{Arc, OnceLock};

/// The user id every unauthenticated connection is indexed under. Jac Cloud shows it as the root
/// id `n::000000000000000000000001`.
pub const PUBLIC_USER_ID: &str = "000000000000000000000001";

/// The prefix of a Jac Cloud root id: `n::` + user id.
pub const ROOT_ID_PREFIX: &str = "n::";

/// What an identity remembers of the token it was proven with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenStamp {
    /// Unix seconds.
    pub expires_at: u64,
    /// The account's token version when the token was issued; a higher stored version means the
    /// token was revoked. `None` for an external token: no account here, nothing to revoke.
    pub version: Option<i64>,
}

/// A caller's identity. Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct Identity(Arc<IdentityData>);

#[derive(Debug)]
struct IdentityData {
    user_id: Arc<str>,
    authenticated: bool,
    username: Option<String>,
    email: Option<String>,
    roles: Vec<String>,
    /// The token this identity was proven with, for dialects that end authenticated sessions
    /// when it expires or is revoked.
    token: Option<TokenStamp>,
    /// Jac Cloud's view of the user id, derived on first use.
    root_id: OnceLock<Arc<str>>,
}

impl Identity {
    /// The unauthenticated user every connection starts as unless it brings a valid token.
    pub fn public() -> Self {
        static PUBLIC: OnceLock<Identity> = OnceLock::new();
        PUBLIC
            .get_or_init(|| {
                Identity(Arc::new(IdentityData {
                    user_id: Arc::from(PUBLIC_USER_ID),
                    authenticated: false,
                    username: None,
                    email: None,
                    roles: Vec::new(),
                    token: None,
                    root_id: OnceLock::new(),
                }))
            })
            .clone()
    }

    /// An account without a username of its own: its email is its username.
    pub fn user(user_id: String, email: String, roles: Vec<String>) -> Self {
        let username = email.clone();
        Self::named(user_id, email, username, roles)
    }

    /// An account, from its stored id, email, username and roles.
    pub fn named(user_id: String, email: String, username: String, roles: Vec<String>) -> Self {
        Identity(Arc::new(IdentityData {
            user_id: Arc::from(user_id),
            authenticated: true,
            username: Some(username),
            email: Some(email),
            roles,
            token: None,
            root_id: OnceLock::new(),
        }))
    }

    /// A user vouched for by an external token (the team's own identity provider): no account
    /// here, no email. Its Jac `root_id` is `n::` + its user id, the same on every node.
    pub fn external(user_id: String, username: String, roles: Vec<String>) -> Self {
        Identity(Arc::new(IdentityData {
            user_id: Arc::from(user_id),
            authenticated: true,
            username: Some(username),
            email: None,
            roles,
            token: None,
            root_id: OnceLock::new(),
        }))
    }

    /// The same identity, noting the token it was proven with.
    pub fn with_token(self, token: Option<TokenStamp>) -> Self {
        let data = &self.0;
        Identity(Arc::new(IdentityData {
            user_id: data.user_id.clone(),
            authenticated: data.authenticated,
            username: data.username.clone(),
            email: data.email.clone(),
            roles: data.roles.clone(),
            token,
            root_id: OnceLock::new(),
        }))
    }

    /// The token this identity was proven with, if it came from one.
    pub fn token(&self) -> Option<TokenStamp> {
        self.0.token
    }

    pub fn is_authenticated(&self) -> bool {
        self.0.authenticated
    }

    /// The key of the hub's user index: the account id, or [`PUBLIC_USER_ID`].
    pub fn user_id(&self) -> &Arc<str> {
        &self.0.user_id
    }

    /// The account's id; `None` for the public user.
    pub fn account_id(&self) -> Option<&str> {
        self.is_authenticated().then_some(&*self.0.user_id)
    }

    /// The name shown to other users; `None` for the public user.
    pub fn username(&self) -> Option<&str> {
        self.0.username.as_deref()
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

    /// Jac Cloud's `root_id` for this identity: `n::` + user id.
    pub fn root_id(&self) -> &Arc<str> {
        self.0
            .root_id
            .get_or_init(|| Arc::from(format!("{ROOT_ID_PREFIX}{}", self.0.user_id)))
    }

    /// Whether two identities are indexed under the same user.
    pub fn same_user(&self, other: &Identity) -> bool {
        self.0.user_id == other.0.user_id
    }
}

/// The user id a user address names: a user id as is, or a Jac Cloud root id (`n::<user id>`).
/// `notify_users` and Jac `user` events address users either way.
pub fn user_id_of_address(address: &str) -> &str {
    address.strip_prefix(ROOT_ID_PREFIX).unwrap_or(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_root_id_is_the_reference_constant() {
        assert_eq!(
            &**Identity::public().root_id(),
            "n::000000000000000000000001"
        );
    }

    #[test]
    fn root_id_is_derived_from_the_user_id() {
        let user = Identity::user("abc".into(), "a@example.com".into(), vec![]);
        assert_eq!(&**user.root_id(), "n::abc");
        assert_eq!(user_id_of_address(user.root_id()), "abc");
        assert_eq!(user_id_of_address("abc"), "abc");
    }
}

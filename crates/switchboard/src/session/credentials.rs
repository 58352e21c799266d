//! Who a request or connection is: the token it presents and the identity that token resolves
//! to. One place finds the token and one function resolves it, for every endpoint.
//!
//! A token comes from `Authorization: Bearer <jwt>`, the `auth` query parameter (browsers cannot
//! set headers on a WebSocket) or the `switchboard_token` cookie, in that order. REST endpoints
//! do not read `?auth=`: there the query string is a walker's context.
//!
//! WebSocket connects are lenient (a refused token connects as the public user and the dialect
//! says why); REST calls are strict (a refused token is 401).

use http::{HeaderMap, Uri, header};

use crate::app::Switchboard;
use crate::auth::AuthError;
use crate::http::ApiError;
use crate::identity::Identity;

/// The cookie `/user/login` sets for browsers on the same origin.
pub const TOKEN_COOKIE: &str = "switchboard_token";

/// The outcome of a lenient check: who the caller is, and why a presented token was refused.
#[derive(Debug)]
pub struct Credentials {
    pub identity: Identity,
    pub refused: Option<AuthError>,
}

/// Where a token may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSources {
    /// Header, `?auth=`, cookie.
    WebSocket,
    /// Header, cookie.
    Rest,
}

/// The token a request presents, if any (blank counts as none).
pub fn presented_token(headers: &HeaderMap, uri: &Uri, sources: TokenSources) -> Option<String> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let query = || {
        (sources == TokenSources::WebSocket)
            .then(|| query_auth(uri))
            .flatten()
    };
    header
        .or_else(query)
        .or_else(|| cookie(headers, TOKEN_COOKIE))
        .filter(|token| !token.trim().is_empty())
}

/// Resolve a presented token to an identity: the one token-to-identity function.
pub async fn resolve(app: &Switchboard, token: Option<&str>) -> Credentials {
    let Some(token) = token else {
        return Credentials {
            identity: Identity::public(),
            refused: None,
        };
    };
    match app.authenticator().authenticate(token).await {
        Ok(identity) => Credentials {
            identity,
            refused: None,
        },
        Err(err) => {
            app.metrics().tokens_refused.inc();
            Credentials {
                identity: Identity::public(),
                refused: Some(err),
            }
        }
    }
}

/// A WebSocket connect: a refused token still connects, as the public user.
pub async fn lenient(app: &Switchboard, headers: &HeaderMap, uri: &Uri) -> Credentials {
    let token = presented_token(headers, uri, TokenSources::WebSocket);
    resolve(app, token.as_deref()).await
}

/// A REST call: no token is the public user; a refused token is 401.
pub async fn strict(
    app: &Switchboard,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Identity, ApiError> {
    if headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.to_str().is_err())
    {
        return Err(AuthError::Invalid.into());
    }
    let token = presented_token(headers, uri, TokenSources::Rest);
    let credentials = resolve(app, token.as_deref()).await;
    match credentials.refused {
        Some(err) => Err(err.into()),
        None => Ok(credentials.identity),
    }
}

/// The `auth` query parameter, decoded as axum decodes every query (a malformed query has none).
pub(crate) fn query_auth(uri: &Uri) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct AuthQuery {
        auth: Option<String>,
    }
    axum::extract::Query::<AuthQuery>::try_from_uri(uri)
        .ok()
        .and_then(|query| query.0.auth)
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn header_wins_then_query_then_cookie() {
        let uri: Uri = "/ws?auth=Bearer%20q&x=1".parse().unwrap();
        let both = headers(&[
            ("authorization", "Bearer h"),
            ("cookie", "switchboard_token=c"),
        ]);
        let ws = TokenSources::WebSocket;
        assert_eq!(
            presented_token(&both, &uri, ws).as_deref(),
            Some("Bearer h")
        );
        let cookie_only = headers(&[("cookie", "a=1; switchboard_token=c")]);
        assert_eq!(
            presented_token(&cookie_only, &uri, ws).as_deref(),
            Some("Bearer q")
        );
        let plain: Uri = "/ws".parse().unwrap();
        assert_eq!(
            presented_token(&cookie_only, &plain, ws).as_deref(),
            Some("c")
        );
        assert_eq!(
            presented_token(&cookie_only, &uri, TokenSources::Rest).as_deref(),
            Some("c"),
            "REST ignores ?auth="
        );
        assert_eq!(
            presented_token(&HeaderMap::new(), &"/?auth=%20".parse().unwrap(), ws),
            None
        );
    }
}

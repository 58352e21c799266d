//! `GET /api/1/ws/<name>`: how a namespace client opens: the namespace from the path (unknown:
//! HTTP 404 before any upgrade), its client id from `?uuid=`, and its first frame: the
//! `connected` envelope, or, for a client the namespace refuses, an error envelope (401/403)
//! after which the socket closes with 4401/4403.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};

use super::NamespaceDialect;
use super::definition::Refusal;
use super::envelope;
use super::handle::{NamespaceState, PATH_PREFIX};
use super::session::NamespaceSession;
use crate::app::Switchboard;
use crate::close_code::{self, CloseCode};
use crate::dialect::{Connect, Opening};
use crate::error_code;
use crate::http::ApiError;
use crate::hub::Connection;
use crate::metrics::HandshakeFailure;
use crate::session::Credentials;

/// Largest client frame on a namespace endpoint (seed 003's server closes with 1009 above it);
/// `[limits] max_frame_bytes` does not apply here, a namespace's `max_message_bytes` does.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// The namespace a connect names and the client id it will have.
#[derive(Debug)]
pub struct NamespaceParams {
    state: Arc<NamespaceState>,
    uuid: Arc<str>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ConnectQuery {
    uuid: Option<String>,
}

/// The namespace dialect's connect side.
#[derive(Debug)]
pub struct NamespaceConnect {
    pub(crate) dialect: Arc<NamespaceDialect>,
}

/// `?uuid=` when it is a UUID in its usual 8-4-4-4-12 form (any version, any case), in lower
/// case; otherwise a new v4 one.
pub fn client_uuid(requested: Option<&str>) -> String {
    requested
        .filter(|text| text.len() == 36)
        .and_then(|text| uuid::Uuid::try_parse(text).ok())
        .unwrap_or_else(uuid::Uuid::new_v4)
        .hyphenated()
        .to_string()
}

impl Connect for NamespaceConnect {
    type Params = NamespaceParams;
    type Session = NamespaceSession;

    fn params(
        &self,
        _app: &Switchboard,
        request: &Request<Body>,
    ) -> Result<NamespaceParams, ApiError> {
        let name = request
            .uri()
            .path()
            .strip_prefix(PATH_PREFIX)
            .unwrap_or_default();
        let Some(state) = self.dialect.namespace(name) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                error_code::NOT_FOUND,
                format!("no namespace is registered at {PATH_PREFIX}{name}"),
            ));
        };
        let query = axum::extract::Query::<ConnectQuery>::try_from_uri(request.uri())
            .map(|q| q.0)
            .map_err(|_| ApiError::bad_request("invalid_query", "query string is malformed"))?;
        Ok(NamespaceParams {
            state: state.clone(),
            uuid: Arc::from(client_uuid(query.uuid.as_deref())),
        })
    }

    fn max_message_bytes(&self, _app: &Switchboard) -> usize {
        MAX_FRAME_BYTES
    }

    fn shares_client_ids(&self) -> bool {
        true
    }

    fn open(
        &self,
        app: &Switchboard,
        params: &NamespaceParams,
        credentials: &Credentials,
    ) -> Opening {
        let state = &params.state;
        let client_id = Arc::from(state.hub_client_id(&params.uuid));
        let identity = &credentials.identity;
        match state.definition.refusal(identity) {
            None => Opening {
                client_id,
                channels: Vec::new(),
                namespace: Some(Arc::from(state.name())),
                greeting: vec![envelope::connected(
                    &params.uuid,
                    &state.path,
                    identity.username().unwrap_or(""),
                )],
            },
            Some(refusal) => {
                let metrics = app.metrics();
                metrics.client_errors.inc();
                let reason = match refusal {
                    Refusal::Unauthorized => {
                        HandshakeFailure::login_needed(credentials.refused.is_some())
                    }
                    Refusal::Forbidden => HandshakeFailure::Forbidden,
                };
                metrics.handshake_failures(reason).inc();
                let message = match (refusal, &credentials.refused) {
                    (Refusal::Unauthorized, Some(err)) => {
                        format!("{err}; this namespace requires a login")
                    }
                    (Refusal::Unauthorized, None) => "this namespace requires a login".to_string(),
                    (Refusal::Forbidden, _) => format!(
                        "this namespace requires one of the roles {:?}",
                        state.definition.require_roles
                    ),
                };
                let (code, _) = refusal_codes(refusal);
                Opening {
                    client_id,
                    channels: Vec::new(),
                    // Not indexed under the namespace: nothing reaches it before it closes.
                    namespace: None,
                    greeting: vec![envelope::error(code, &message, None)],
                }
            }
        }
    }

    fn session(
        &self,
        app: &Switchboard,
        conn: Arc<Connection>,
        params: NamespaceParams,
    ) -> NamespaceSession {
        let NamespaceParams { state, uuid } = params;
        let identity = conn.identity();
        if let Some(refusal) = state.definition.refusal(&identity) {
            conn.outbound.close(refusal_codes(refusal).1);
            return NamespaceSession::refused(app.clone(), conn, state, uuid);
        }
        NamespaceSession::admitted(app.clone(), conn, state, uuid, identity)
    }
}

/// The error envelope's code and the close code of a refusal.
fn refusal_codes(refusal: Refusal) -> (u16, CloseCode) {
    match refusal {
        Refusal::Unauthorized => (401, close_code::UNAUTHORIZED),
        Refusal::Forbidden => (403, close_code::FORBIDDEN),
    }
}

#[cfg(test)]
mod tests {
    use super::client_uuid;

    #[test]
    fn uuid_is_kept_lower_cased_or_replaced() {
        let given = "1B4E28BA-2FA1-11D2-883F-0016D3CCA427";
        assert_eq!(client_uuid(Some(given)), given.to_lowercase());
        for bad in [
            None,
            Some(""),
            Some("abc"),
            Some("1b4e28ba2fa111d2883f0016d3cca427"),
        ] {
            let made = client_uuid(bad);
            let parsed = uuid::Uuid::parse_str(&made).expect("a uuid");
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(made, made.to_lowercase());
        }
    }
}

//! `GET /api/1/ws/<name>`: how a namespace client opens: the namespace from the path (unknown:
//! HTTP 404 before any upgrade), its client id from `?uuid=`, and its first frame: the
//! `connected` envelope, or, for a client the namespace refuses, an error envelope (401/403)
//! after which the socket closes with 4401/4403. A namespace with `on_connect = "upstream"` asks
//! the team's backend before answering the upgrade; its refusal is a 403 envelope with the
//! backend's reason and close 4403, and a failed call refuses too (fail closed: the envelope's
//! code is the failure's HTTP status, 504/502/503, and the close code 1011 or 1013).

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};

use super::NamespaceDialect;
use super::definition::{OnConnect, Refusal};
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
use crate::upstream::{self, Admission};

/// Largest client frame on a namespace endpoint (seed 003's server closes with 1009 above it);
/// `[limits] max_frame_bytes` does not apply here, a namespace's `max_message_bytes` does.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// The namespace a connect names and the client id it will have.
#[derive(Debug)]
pub struct NamespaceParams {
    state: Arc<NamespaceState>,
    uuid: Arc<str>,
    /// The `on_connect` upstream's verdict; `Allowed` when the namespace has none.
    admission: Admission,
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
            admission: Admission::Allowed,
        })
    }

    async fn admit(
        &self,
        app: &Switchboard,
        params: &mut NamespaceParams,
        credentials: &Credentials,
    ) {
        let definition = &params.state.definition;
        let (OnConnect::Upstream, Some(url)) = (definition.admission, &definition.upstream) else {
            return;
        };
        if definition.refusal(&credentials.identity).is_some() {
            return;
        }
        let request = upstream::connect_request(
            app,
            "namespace",
            params.state.name(),
            &credentials.identity,
            &params.uuid,
        );
        params.admission = Admission::ask(&app.shared.upstreams, url, &request).await;
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
        if let Some(frame) = upstream_refusal(&params.admission) {
            let metrics = app.metrics();
            metrics.client_errors.inc();
            if let Some(reason) = params.admission.handshake_failure() {
                metrics.handshake_failures(reason).inc();
            }
            return Opening {
                client_id,
                channels: Vec::new(),
                namespace: None,
                greeting: vec![frame],
            };
        }
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
        let NamespaceParams {
            state,
            uuid,
            admission,
        } = params;
        let identity = conn.identity();
        if let Some(refusal) = state.definition.refusal(&identity) {
            conn.outbound.close(refusal_codes(refusal).1);
            return NamespaceSession::refused(app.clone(), conn, state, uuid);
        }
        match admission {
            Admission::Allowed => {}
            Admission::Refused(reason) => {
                conn.outbound
                    .close_with_reason(close_code::FORBIDDEN, upstream::close_reason(&reason));
                return NamespaceSession::refused(app.clone(), conn, state, uuid);
            }
            Admission::Failed(err) => {
                conn.outbound.close(upstream::failure_close_code(&err));
                return NamespaceSession::refused(app.clone(), conn, state, uuid);
            }
        }
        NamespaceSession::admitted(app.clone(), conn, state, uuid, identity)
    }
}

/// The error envelope of a connection the `on_connect` upstream did not admit.
fn upstream_refusal(admission: &Admission) -> Option<bytes::Bytes> {
    match admission {
        Admission::Allowed => None,
        Admission::Refused(reason) => Some(envelope::error(403, reason, None)),
        Admission::Failed(err) => Some(envelope::error(
            err.http_status().as_u16(),
            &format!("{}: {err}", err.code()),
            None,
        )),
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

//! TLS without a proxy: the certificate and key of `[tls]`, served with rustls on ring, and
//! swapped in place when the files change.
//!
//! Certificates are renewed every few weeks (ACME clients renew every 60 days); restarting
//! to pick one up would drop every WebSocket. So the server resolves its certificate per
//! handshake from a slot that [`Tls::reload`] replaces: new handshakes get the new certificate,
//! live connections keep theirs, and a bad new file leaves the old certificate in place.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;

/// Why the `[tls]` files cannot be served. Each message names the config key and the file, so
/// an operator knows which line of the config to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.{set} is set but tls.{missing} is not: set both (or neither, for plain HTTP)")]
    Incomplete {
        set: &'static str,
        missing: &'static str,
    },
    #[error("tls.{key} = {path:?}: cannot read the file: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("tls.{key} = {path:?}: {reason}")]
    BadPem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("tls.key = {key:?} does not fit tls.cert = {cert:?}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: rustls::Error,
    },
}

/// The TLS side of a listener: accepts handshakes with the current certificate. Cheap to clone;
/// clones share the certificate slot, so a reload through one is seen by all.
#[derive(Clone)]
pub struct Tls {
    files: Arc<CertFiles>,
    current: Arc<CurrentCert>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.files.cert)
            .field("key", &self.files.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Load `[tls]`: `Ok(None)` when neither path is set (plain HTTP), an error naming the key
    /// when only one is, or when a file is missing, is not PEM, or the key does not fit.
    pub fn from_config(config: &TlsConfig) -> Result<Option<Tls>, TlsError> {
        let (cert, key) = match (&config.cert, &config.key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (Some(_), None) => {
                return Err(TlsError::Incomplete {
                    set: "cert",
                    missing: "key",
                });
            }
            (None, Some(_)) => {
                return Err(TlsError::Incomplete {
                    set: "key",
                    missing: "cert",
                });
            }
        };
        let files = Arc::new(CertFiles {
            cert,
            key,
            provider: Arc::new(ring::default_provider()),
        });
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(files.load()?))));
        let mut server = ServerConfig::builder_with_provider(files.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls's default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // HTTP/1.1 only: the server speaks nothing else, and WebSocket upgrades need it.
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Tls {
            files,
            current,
            acceptor: TlsAcceptor::from(Arc::new(server)),
        }))
    }

    /// Read the certificate and key files again and serve them to new handshakes. On error the
    /// certificate served so far stays in place.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = Arc::new(self.files.load()?);
        *self.current.0.write() = loaded;
        Ok(())
    }

    /// Reload on every SIGHUP from now on (the handler is installed before this returns, so a
    /// SIGHUP sent right after cannot kill the process). A failed reload is logged as an error
    /// and the old certificate kept. Call inside the runtime; a no-op off Unix.
    pub fn reload_on_sighup(&self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangups = match signal(SignalKind::hangup()) {
                Ok(hangups) => hangups,
                Err(err) => {
                    tracing::warn!(%err, "cannot listen for SIGHUP: the certificate will not be reloaded");
                    return;
                }
            };
            let tls = self.clone();
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    match tls.reload() {
                        Ok(()) => {
                            tracing::info!(cert = %tls.files.cert.display(), "TLS certificate reloaded")
                        }
                        Err(err) => {
                            tracing::error!(%err, "TLS certificate not reloaded; serving the previous one")
                        }
                    }
                }
            });
        }
    }

    /// The TLS handshake of an accepted connection, bounded by `timeout` like the HTTP request
    /// head after it, so a peer that never finishes cannot hold the connection.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> io::Result<TlsStream<TcpStream>> {
        tokio::time::timeout(timeout, self.acceptor.accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }
}

/// Where the certificate and key are read from, and the crypto that parses the key.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
}

impl CertFiles {
    fn load(&self) -> Result<CertifiedKey, TlsError> {
        let cert_pem = read("cert", &self.cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| bad_pem("cert", &self.cert, err.to_string()))?;
        if chain.is_empty() {
            return Err(bad_pem(
                "cert",
                &self.cert,
                "no CERTIFICATE block in the file".into(),
            ));
        }
        let key_pem = read("key", &self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
            bad_pem(
                "key",
                &self.key,
                format!("no usable PRIVATE KEY block ({err})"),
            )
        })?;
        CertifiedKey::from_der(chain, key, &self.provider).map_err(|reason| TlsError::Mismatch {
            cert: self.cert.clone(),
            key: self.key.clone(),
            reason,
        })
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn bad_pem(key: &'static str, path: &Path, reason: String) -> TlsError {
    TlsError::BadPem {
        key,
        path: path.to_path_buf(),
        reason,
    }
}

/// The certificate new handshakes get. The lock is held only to clone an `Arc`, never across
/// an `.await`.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

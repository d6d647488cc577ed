//! TLS for a listener: the certificate and key (PEM), optionally the CA that client certificates
//! must chain to, turned into a rustls configuration that offers TLS 1.2 and 1.3 and ALPN `h2`
//! and `http/1.1` on one port. The configuration sits behind an [`ArcSwap`] so a rotated pair
//! is picked up for new connections while open ones keep theirs; a pair that does not load is
//! refused and the one in use stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus::{IntCounter, IntGauge};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// The files a TLS listener is configured from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Mutual TLS: the CA certificates (PEM) a client certificate must chain to. When set, a
    /// client without a valid certificate is refused during the handshake.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Every file, for the reload watcher: a change to any of them reloads the set.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.cert.clone(), self.key.clone()];
        paths.extend(self.client_ca.clone());
        paths
    }

    /// Reads and checks every file and builds the server configuration: a certificate whose
    /// public key does not match the key is refused here, not at the first handshake.
    pub fn load(&self) -> Result<Loaded, String> {
        let certs = read_certs(&self.cert)?;
        let expires = not_after(&certs[0])
            .ok_or_else(|| format!("{}: the certificate does not parse", self.cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| format!("{}: no private key read: {e}", self.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", ca.display()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| format!("{}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            format!(
                "{} and {} do not make a certificate and key pair: {e}",
                self.cert.display(),
                self.key.display()
            )
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Loaded { config, expires })
    }
}

/// A configuration ready to serve, and when its certificate expires (seconds since the epoch).
pub struct Loaded {
    pub config: ServerConfig,
    pub expires: i64,
}

/// The leaf's notAfter, seconds since the epoch.
fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, cert) = X509Certificate::from_der(cert).ok()?;
    Some(cert.validity().not_after.timestamp())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

/// The counters of one TLS listener (`listener` label `proxy` or `admin`).
#[derive(Clone)]
pub struct TlsCounters {
    pub handshake_failures: IntCounter,
    pub reloads_ok: IntCounter,
    pub reloads_error: IntCounter,
    /// When the certificate in use expires.
    pub expiry: IntGauge,
}

/// A listener's TLS configuration in use, replaced whole on reload.
pub struct Tls {
    pub files: TlsFiles,
    config: ArcSwap<ServerConfig>,
    counters: TlsCounters,
}

impl Tls {
    pub fn load(files: TlsFiles, counters: TlsCounters) -> Result<Tls, String> {
        let loaded = files.load()?;
        counters.expiry.set(loaded.expires);
        Ok(Tls {
            files,
            config: ArcSwap::from_pointee(loaded.config),
            counters,
        })
    }

    /// The configuration a new connection's handshake uses.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }

    /// Loads the files again; on success new connections use them (open ones keep theirs), on
    /// failure nothing changes. Either way it is counted.
    pub fn reload(&self) -> Result<(), String> {
        match self.files.load() {
            Ok(loaded) => {
                self.config.store(Arc::new(loaded.config));
                self.counters.expiry.set(loaded.expires);
                self.counters.reloads_ok.inc();
                Ok(())
            }
            Err(e) => {
                self.counters.reloads_error.inc();
                Err(e)
            }
        }
    }

    /// A client that did not complete the handshake: a certificate refused, no common protocol
    /// or cipher, plain HTTP sent to the TLS port, or a client that left or stalled.
    pub fn handshake_failed(&self) {
        self.counters.handshake_failures.inc();
    }
}

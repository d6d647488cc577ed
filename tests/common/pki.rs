//! A certificate authority made for a test, the certificates it issues, and a real SDK
//! client that trusts only it (TLS with ALPN h2 and http/1.1, as the SDK offers them).

use std::path::{Path, PathBuf};

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Region};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use bedrock_meter::server::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

use super::{Harness, client_credentials};

/// A certificate authority made for the test, and the certificates it issues.
pub struct Pki {
    pub ca_pem: String,
    pub issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
pub struct Pair {
    pub cert: String,
    pub key: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for the meter on loopback.
    pub fn server(&self, cn: &str) -> Pair {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
        self.issue(params)
    }

    /// A client certificate naming `uri` (a SPIFFE ID, as service meshes issue) and `cn`.
    pub fn client(&self, uri: Option<&str>, cn: &str) -> Pair {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Pair {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Writes `pair` into `dir` as `tls.crt` / `tls.key`, the names Kubernetes TLS secrets use.
pub fn write_pair(dir: &Path, pair: &Pair) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, &pair.cert).unwrap();
    std::fs::write(&key, &pair.key).unwrap();
    (cert, key)
}

pub fn files(cert: PathBuf, key: PathBuf, client_ca: Option<PathBuf>) -> TlsFiles {
    TlsFiles {
        cert,
        key,
        client_ca,
    }
}

/// A real SDK client trusting only the test CA.
pub fn sdk_over_tls(h: &Harness, ca_pem: &str, app: &str) -> Client {
    Client::from_conf(
        sdk_config(h, ca_pem)
            .credentials_provider(client_credentials())
            .app_name(aws_sdk_bedrockruntime::config::AppName::new(app.to_owned()).unwrap())
            .build(),
    )
}

pub fn sdk_config(h: &Harness, ca_pem: &str) -> aws_sdk_bedrockruntime::config::Builder {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(
                    TrustStore::empty()
                        .with_native_roots(false)
                        .with_pem_certificate(ca_pem.as_bytes()),
                )
                .build()
                .unwrap(),
        )
        .build_https();
    aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(h.proxy.url())
        .http_client(http)
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
}

//! A client certificate as proof of an app (mutual TLS, e.g. on a service mesh): the names the
//! certificate carries, which a keys-file entry's `client_cert` can name.
//!
//! The TLS listener has already checked that the certificate chains to `--tls-client-ca` and
//! that the client holds its key; this only reads the names, once per connection, and every
//! request on that connection carries them as a request extension.

use std::sync::Arc;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// The names of a verified client certificate, in the order they are matched against the keys
/// file: URI subject alternative names (SPIFFE IDs), then DNS names, then the subject's common
/// name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    names: Arc<[String]>,
}

impl ClientCertificate {
    /// The names of a DER certificate; `None` when it does not parse or carries no name.
    pub fn from_der(der: &[u8]) -> Option<ClientCertificate> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut uris = Vec::new();
        let mut dns = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => uris.push((*uri).to_owned()),
                    GeneralName::DNSName(host) => dns.push((*host).to_owned()),
                    _ => {}
                }
            }
        }
        let mut names = uris;
        names.append(&mut dns);
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_owned),
        );
        (!names.is_empty()).then(|| ClientCertificate {
            names: names.into(),
        })
    }

    /// For tests and callers that already hold the names.
    pub fn from_names(names: &[&str]) -> ClientCertificate {
        ClientCertificate {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    #[test]
    fn names_in_match_order_uri_then_dns_then_common_name() {
        let mut params = CertificateParams::new(vec!["ledger.internal".to_owned()]).unwrap();
        params.subject_alt_names.push(SanType::URI(
            "spiffe://mesh/ns/ledger/sa/api".try_into().unwrap(),
        ));
        params.distinguished_name.push(DnType::CommonName, "ledger");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let names = ClientCertificate::from_der(cert.der()).unwrap();
        assert_eq!(
            names.names(),
            [
                "spiffe://mesh/ns/ledger/sa/api",
                "ledger.internal",
                "ledger"
            ]
        );
        assert_eq!(ClientCertificate::from_der(b"not a certificate"), None);
    }
}

//! A throwaway CA and server certificate for `localhost` and `127.0.0.1`,
//! made once per test process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

pub struct TestCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_pem: String,
}

static CERTS: OnceLock<TestCerts> = OnceLock::new();

pub fn certs() -> &'static TestCerts {
    CERTS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("sluice-tls-")
            .tempdir()
            .unwrap()
            .keep();
        issue(&dir, "sluice test CA")
    })
}

/// A new CA and a server certificate for `localhost` signed by it, written
/// to `dir` as `ca.pem`, `server.pem` and `server.key`.
pub fn issue(dir: &Path, ca_name: &str) -> TestCerts {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).unwrap();
    let certs = TestCerts {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        ca_pem: ca.pem(),
    };
    std::fs::write(&certs.ca, &certs.ca_pem).unwrap();
    std::fs::write(&certs.cert, cert.pem()).unwrap();
    std::fs::write(&certs.key, key.serialize_pem()).unwrap();
    certs
}

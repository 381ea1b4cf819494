//! Identities and TLS: a node's key, its self-signed certificate, and the
//! verifiers that turn a QUIC handshake into an authenticated [`PeerId`].
//!
//! The id is the SHA-256 of the certificate's SubjectPublicKeyInfo (DER). The
//! certificate's subject names that id in hex; a certificate whose subject
//! names another id is refused. Both verifiers still check the handshake
//! signature (TLS 1.3 only), so presenting someone else's certificate without
//! their key fails.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use peerworld_protocol::PeerId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::Error;

/// ALPN protocol name of peerworld's QUIC connections.
pub const ALPN: &[u8] = b"peerworld/1";

/// A node's long-lived key and the certificate made from it.
#[derive(Clone)]
pub struct Identity {
    id: PeerId,
    key_pem: String,
    /// The certificate (alone in its chain) and the key loaded for signing,
    /// made once: loading an Ed25519 key derives its public half (a scalar
    /// multiplication), which every handshake would otherwise pay again.
    certified: Arc<rustls::sign::CertifiedKey>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh random Ed25519 key.
    pub fn generate() -> Result<Self, Error> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|source| Error::Key { path: None, source })?;
        Self::from_key(key)
    }

    /// Loads the key kept in `path`, or creates it there (mode 0600) on first
    /// use.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                warn_if_readable_by_others(path);
                let key = rcgen::KeyPair::from_pem(&pem).map_err(|source| Error::Key {
                    path: Some(path.to_path_buf()),
                    source,
                })?;
                Self::from_key(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = Self::generate()?;
                identity.save(path)?;
                Ok(identity)
            }
            Err(source) => Err(Error::KeyFile {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// A certificate forged for tests: the subject names `claimed` although
    /// the key hashes to another id.
    #[doc(hidden)]
    pub fn forged_claiming(claimed: PeerId) -> Result<Self, Error> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|source| Error::Key { path: None, source })?;
        use rcgen::PublicKeyData;
        let cert = make_cert(&key, claimed)?;
        let real = PeerId::from_public_key(&key.subject_public_key_info());
        Self::assemble(real, &key, cert)
    }

    fn from_key(key: rcgen::KeyPair) -> Result<Self, Error> {
        use rcgen::PublicKeyData;
        let id = PeerId::from_public_key(&key.subject_public_key_info());
        let cert = make_cert(&key, id)?;
        Self::assemble(id, &key, cert)
    }

    fn assemble(
        id: PeerId,
        key: &rcgen::KeyPair,
        cert: CertificateDer<'static>,
    ) -> Result<Self, Error> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = provider()
            .key_provider
            .load_private_key(der)
            .map_err(tls_err)?;
        Ok(Self {
            id,
            key_pem: key.serialize_pem(),
            certified: Arc::new(rustls::sign::CertifiedKey::new(vec![cert], signing)),
        })
    }

    /// Writes the key atomically: a temporary file beside `path` (mode
    /// 0600), synced, then linked to `path` (which must not exist yet), so a
    /// crash never leaves a truncated key behind.
    fn save(&self, path: &Path) -> Result<(), Error> {
        let err = |source: std::io::Error| Error::KeyFile {
            path: path.to_path_buf(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = write_then_link(self.key_pem.as_bytes(), &tmp, path, dir);
        let _ = std::fs::remove_file(&tmp);
        written.map_err(err)
    }

    /// The id: SHA-256 of the certificate's public key.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The key as a signer of world objects: objects placed by this node
    /// are signed with its identity key, so their author is its id.
    pub fn signer(&self) -> Result<IdentitySigner, Error> {
        use rcgen::PublicKeyData;
        let key = rcgen::KeyPair::from_pem(&self.key_pem)
            .map_err(|source| Error::Key { path: None, source })?;
        let spki = key.subject_public_key_info();
        Ok(IdentitySigner { key, spki })
    }

    /// The self-signed certificate.
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.certified.cert[0]
    }

    /// The QUIC server side: TLS 1.3, a client certificate required.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, Error> {
        let provider = provider();
        let verifier = Arc::new(PeerVerifier::new(&provider, None));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(Presenting(self.certified.clone())));
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }

    /// A client side for tests of the server's refusals: with `None` it
    /// presents no certificate; with `Some(cert)` it presents `cert` (say,
    /// another node's) but signs the handshake with this identity's key.
    #[doc(hidden)]
    pub fn client_config_presenting(
        &self,
        expected: Option<PeerId>,
        cert: Option<CertificateDer<'static>>,
    ) -> Result<rustls::ClientConfig, Error> {
        let provider = provider();
        let verifier = Arc::new(PeerVerifier::new(&provider, expected));
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match cert {
            None => builder.with_no_client_auth(),
            Some(cert) => {
                let key = self.certified.key.clone();
                let certified = Arc::new(rustls::sign::CertifiedKey::new(vec![cert], key));
                builder.with_client_cert_resolver(Arc::new(Presenting(certified)))
            }
        };
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }

    /// The QUIC client side; with `expected`, the server must prove that id.
    pub fn client_config(&self, expected: Option<PeerId>) -> Result<rustls::ClientConfig, Error> {
        let provider = provider();
        let verifier = Arc::new(PeerVerifier::new(&provider, expected));
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(Presenting(self.certified.clone())));
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }
}

/// Presents one certificate and key, on either side of a handshake (for
/// tests, whether they match or not).
#[derive(Debug)]
struct Presenting(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Presenting {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl rustls::server::ResolvesServerCert for Presenting {
    fn resolve(
        &self,
        _client_hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Writes `bytes` to `tmp` (mode 0600) and syncs it, links it to `path`
/// (which must not exist), then syncs `dir` so the new name survives a
/// crash too.
fn write_then_link(bytes: &[u8], tmp: &Path, path: &Path, dir: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::hard_link(tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn tls_err(e: rustls::Error) -> Error {
    Error::Tls(e.to_string())
}

/// The one crypto provider peerworld uses (ring), chosen explicitly.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn make_cert(key: &rcgen::KeyPair, id: PeerId) -> Result<CertificateDer<'static>, Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|source| Error::Key { path: None, source })?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, id.to_hex());
    let cert = params
        .self_signed(key)
        .map_err(|source| Error::Key { path: None, source })?;
    Ok(cert.der().clone())
}

/// The id a certificate proves: SHA-256 of its public key. Fails if the
/// certificate does not parse or its subject names another id.
pub fn id_of_cert(cert: &CertificateDer<'_>) -> Result<PeerId, Error> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| Error::PeerCertificate(format!("does not parse: {e}")))?;
    let id = PeerId::from_public_key(parsed.subject_public_key_info().as_ref());
    let hex = id.to_hex();
    let claims_it = parsed
        .subject()
        .windows(hex.len())
        .any(|w| w == hex.as_bytes());
    if !claims_it {
        return Err(Error::PeerCertificate(format!(
            "certificate subject does not name the id its key proves ({})",
            id.short()
        )));
    }
    Ok(id)
}

/// A node's identity key signing its world objects.
pub struct IdentitySigner {
    key: rcgen::KeyPair,
    spki: Vec<u8>,
}

impl fmt::Debug for IdentitySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IdentitySigner({})",
            PeerId::from_public_key(&self.spki).short()
        )
    }
}

impl peerworld_protocol::object::Signer for IdentitySigner {
    fn public_key(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        use rcgen::SigningKey;
        // Ed25519 and ECDSA signing with ring do not fail on a valid key;
        // an empty signature would only be refused by every verifier.
        self.key.sign(msg).unwrap_or_default()
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "identity file is readable by others; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Checks a peer's certificate (both directions) and its handshake signature.
#[derive(Debug)]
struct PeerVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    expected: Option<PeerId>,
}

impl PeerVerifier {
    fn new(provider: &CryptoProvider, expected: Option<PeerId>) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
            expected,
        }
    }

    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let id = id_of_cert(end_entity).map_err(|e| rustls::Error::General(e.to_string()))?;
        match self.expected {
            Some(want) if want != id => Err(rustls::Error::General(format!(
                "peer proved id {} but {} was expected",
                id.short(),
                want.short()
            ))),
            _ => Ok(()),
        }
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

/// The handshake-signature half of both verifier traits: TLS 1.3 signatures
/// are checked against the presented certificate; TLS 1.2 is refused.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.2 is not accepted".into()))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.tls13(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    signature_checks!();
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    signature_checks!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_certificate_proves_own_id() {
        let identity = Identity::generate().unwrap();
        assert_eq!(id_of_cert(identity.cert()).unwrap(), identity.id());
    }

    #[test]
    fn forged_subject_is_refused() {
        let victim = Identity::generate().unwrap();
        let forged = Identity::forged_claiming(victim.id()).unwrap();
        assert!(id_of_cert(forged.cert()).is_err());
    }

    #[test]
    fn identity_file_keeps_the_id_and_is_private() {
        let dir = std::env::temp_dir().join(format!("pw-id-{}", std::process::id()));
        let path = dir.join("sub").join("node.key");
        let _ = std::fs::remove_dir_all(&dir);
        let first = Identity::load_or_create(&path).unwrap();
        let second = Identity::load_or_create(&path).unwrap();
        assert_eq!(first.id(), second.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left beside the key.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("node.key")]);
        // A truncated key is refused with an error naming the file.
        let pem = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &pem[..pem.len() / 2]).unwrap();
        let e = Identity::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("node.key") && e.contains("truncated"), "{e}");
        std::fs::write(&path, "not a key").unwrap();
        assert!(Identity::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

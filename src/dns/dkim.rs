//! DKIM signing (RFC 6376) with mail-auth: rsa-sha256 through aws-lc, or ed25519-sha256. The
//! private key comes from a file outside the repository or from an environment variable; it is
//! never logged.

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};

use crate::config::{DkimAlgorithm, DkimKeySource, DkimSettings};

/// The headers fairsend signs. RFC 8058 requires List-Unsubscribe and List-Unsubscribe-Post to
/// be covered, so that the one-click request cannot be forged onto another message.
pub const SIGNED_HEADERS: [&str; 10] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("DKIM key: cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("DKIM key: environment variable {0} is not set")]
    MissingEnv(String),
    #[error("DKIM key from {origin}: {reason}")]
    Key { origin: String, reason: String },
    #[error("DKIM signing failed: {0}")]
    Sign(String),
}

/// A loaded signing key with its domain and selector.
pub struct DkimSigning {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    signer: DkimSigner<DkimKey, Done>,
}

impl std::fmt::Debug for DkimSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DkimSigning({}._domainkey.{}, {:?}, key redacted)",
            self.selector, self.domain, self.algorithm
        )
    }
}

impl DkimSigning {
    pub fn load(settings: &DkimSettings) -> Result<Self, DkimError> {
        let (pem, origin) = match &settings.key {
            DkimKeySource::File(path) => (
                std::fs::read_to_string(path).map_err(|source| DkimError::Read {
                    path: path.display().to_string(),
                    source,
                })?,
                path.display().to_string(),
            ),
            DkimKeySource::Env(var) => (
                std::env::var(var).map_err(|_| DkimError::MissingEnv(var.clone()))?,
                format!("${var}"),
            ),
        };
        let bad = |reason: String| DkimError::Key {
            origin: origin.clone(),
            reason,
        };
        let der = pem_body(&pem).ok_or_else(|| bad("not a PEM private key".into()))?;
        let key: DkimKey = match settings.algorithm {
            DkimAlgorithm::RsaSha256 => {
                // PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"), told apart by the DER.
                let der = rustls_pki_types::PrivateKeyDer::try_from(der.as_slice())
                    .map_err(|e| bad(format!("not a private key: {e}")))?;
                DkimKey::Rsa(
                    RsaKey::<Sha256>::from_key_der(der)
                        .map_err(|e| bad(format!("not an RSA private key: {e}")))?,
                )
            }
            DkimAlgorithm::Ed25519Sha256 => DkimKey::Ed25519(
                Ed25519Key::from_pkcs8_maybe_unchecked_der(&der)
                    .map_err(|e| bad(format!("not an Ed25519 PKCS#8 private key: {e}")))?,
            ),
        };
        let signer = DkimSigner::from_key(key)
            .domain(settings.domain.clone())
            .selector(settings.selector.clone())
            .headers(SIGNED_HEADERS);
        Ok(Self {
            domain: settings.domain.clone(),
            selector: settings.selector.clone(),
            algorithm: settings.algorithm,
            signer,
        })
    }

    /// The `DKIM-Signature:` header line (with CRLF) to put in front of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<String, DkimError> {
        let signature = self
            .signer
            .sign(message)
            .map_err(|e| DkimError::Sign(e.to_string()))?;
        Ok(signature.to_header())
    }

    /// `message` with its DKIM signature in front.
    pub fn signed(&self, message: &[u8]) -> Result<Vec<u8>, DkimError> {
        let header = self.sign(message)?;
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }
}

/// The DER bytes of the first PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    data_encoding::BASE64.decode(body.as_bytes()).ok()
}

impl DkimSigning {
    /// The `p=` value to publish at `selector._domainkey.domain`: SubjectPublicKeyInfo DER for
    /// RSA, the raw 32-byte key for Ed25519, base64-encoded.
    pub fn public_key_record(&self) -> String {
        let (k, p) = match &self.signer.key {
            DkimKey::Rsa(key) => ("rsa", rsa_spki(&key.public_key())),
            DkimKey::Ed25519(key) => ("ed25519", key.public_key()),
        };
        format!("v=DKIM1; k={k}; p={}", data_encoding::BASE64.encode(&p))
    }
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (rsaEncryption, NULL parameters).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const RSA_ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x00];
    bit_string.extend_from_slice(pkcs1);
    let mut body = RSA_ALGORITHM.to_vec();
    body.extend(der(0x03, &bit_string));
    der(0x30, &body)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

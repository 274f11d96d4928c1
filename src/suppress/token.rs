//! HMAC-signed tokens and keyed address hashes.
//!
//! A token carries only a row id and a 128-bit HMAC-SHA256 tag over (purpose, id); it holds no
//! readable personal data and is verified in constant time. The encoding is lower-case base32
//! so that the same token works in a URL path and in an email local part (VERP, `mailto:`),
//! where case may not survive.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::EmailAddress;

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 16;
const ID_LEN: usize = 8;

/// The working key: the data key that signs tokens and hashes addresses. It comes from the
/// database, unwrapped by the master secret of the environment (see `suppress::keys`), so that
/// a new master never silently changes hashes or tokens. Its bytes are never printed: `Debug`
/// shows only where the master came from.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
    /// One key per token purpose, derived with HKDF: a key of one purpose gives nothing for
    /// another.
    token_keys: [[u8; 32]; 5],
    pub origin: SecretOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    Environment(String),
    /// The built-in development secret: fine for the example and tests, never for real mail.
    Development,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({:?}, redacted)", self.origin)
    }
}

pub const DEVELOPMENT_SECRET: &str = "fairsend-development-secret-NOT-FOR-PRODUCTION";

#[derive(Debug, thiserror::Error)]
#[error(
    "environment variable {var} holds a signing secret of {len} bytes; use at least 32 random bytes (for example `openssl rand -hex 32`)"
)]
pub struct WeakSecret {
    pub var: String,
    pub len: usize,
}

/// The master secret from the environment. It only unlocks the data key kept in the database;
/// nothing is signed or hashed with it directly.
#[derive(Clone)]
pub struct MasterSecret {
    key: Vec<u8>,
    pub origin: SecretOrigin,
}

impl std::fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterSecret({:?}, redacted)", self.origin)
    }
}

impl MasterSecret {
    /// Reads the secret from `var`; when unset, falls back to the development secret (the
    /// caller must say so on stderr).
    pub fn from_env(var: &str) -> Result<Self, WeakSecret> {
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => Self::from_value(var, value),
            _ => Ok(Self::development()),
        }
    }

    /// A master secret given as a value that was read from `var`.
    pub fn from_value(var: &str, value: String) -> Result<Self, WeakSecret> {
        if value.len() < 32 {
            return Err(WeakSecret {
                var: var.to_string(),
                len: value.len(),
            });
        }
        Ok(Self {
            key: value.into_bytes(),
            origin: SecretOrigin::Environment(var.to_string()),
        })
    }

    pub fn development() -> Self {
        Self {
            key: DEVELOPMENT_SECRET.as_bytes().to_vec(),
            origin: SecretOrigin::Development,
        }
    }

    pub fn is_development(&self) -> bool {
        self.origin == SecretOrigin::Development
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.key
    }

    /// HMAC-SHA256 of `data` under the master, for the key pin (fingerprint, wrapping pad).
    pub(super) fn mac(&self, data: &[&[u8]]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in data {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl Secret {
    /// The working key for a data key unwrapped from the database.
    pub(super) fn from_data_key(key: Vec<u8>, origin: SecretOrigin) -> Self {
        let token_keys = TokenPurpose::ALL.map(|p| derive(&key, p.tag()));
        Self {
            key,
            token_keys,
            origin,
        }
    }

    /// The development key used directly, for unit tests and benchmarks that have no database.
    pub fn development() -> Self {
        Self::from_data_key(
            DEVELOPMENT_SECRET.as_bytes().to_vec(),
            SecretOrigin::Development,
        )
    }

    pub fn is_development(&self) -> bool {
        self.origin == SecretOrigin::Development
    }

    pub(super) fn data_key(&self) -> &[u8] {
        &self.key
    }

    fn mac(&self, domain: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(domain);
        mac
    }

    fn token_mac(&self, purpose: TokenPurpose) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.token_keys[purpose as usize])
            .expect("HMAC takes any key length")
    }

    fn purpose_mac(&self, purpose: &str) -> HmacSha256 {
        let key = derive(&self.key, purpose.as_bytes());
        HmacSha256::new_from_slice(&key).expect("HMAC takes any key length")
    }
}

/// HKDF-SHA256 (RFC 5869) of the data key for one purpose.
fn derive(key: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(b"fairsend/purpose-keys/v2"), key)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// What a token authorises; part of the signed data, so a token for one purpose is worthless
/// for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// `/u/{token}` pages, one-click POST and the `mailto:` unsubscribe address.
    Unsubscribe,
    /// The VERP envelope sender: identifies the outbox row a bounce belongs to.
    Bounce,
    /// A tracked link: the outbox row × 64 + the link's index in the campaign.
    Click,
    /// The open pixel of an outbox row.
    Open,
    /// The double opt-in link of a signup request: the request's id and the time its mail was
    /// issued (the link expires counted from it).
    SignupConfirm,
}

impl TokenPurpose {
    const ALL: [TokenPurpose; 5] = [
        Self::Unsubscribe,
        Self::Bounce,
        Self::Click,
        Self::Open,
        Self::SignupConfirm,
    ];

    fn tag(self) -> &'static [u8] {
        match self {
            Self::Unsubscribe => b"fairsend/unsubscribe/v2",
            Self::Bounce => b"fairsend/bounce/v2",
            Self::Click => b"fairsend/click/v2",
            Self::Open => b"fairsend/open/v2",
            Self::SignupConfirm => b"fairsend/signup-confirm/v1",
        }
    }
}

const ENCODING: data_encoding::Encoding = data_encoding::BASE32_DNSSEC;

/// Signs an outbox row id for `purpose`.
pub fn sign(secret: &Secret, purpose: TokenPurpose, id: i64) -> String {
    let id_bytes = id.to_be_bytes();
    let mut mac = secret.token_mac(purpose);
    mac.update(&id_bytes);
    let tag = mac.finalize().into_bytes();
    let mut raw = Vec::with_capacity(ID_LEN + TAG_LEN);
    raw.extend_from_slice(&id_bytes);
    raw.extend_from_slice(&tag[..TAG_LEN]);
    ENCODING.encode(&raw)
}

/// Returns the row id when `token` is a valid signature for `purpose`; `None` for anything
/// else, without saying why.
pub fn verify(secret: &Secret, purpose: TokenPurpose, token: &str) -> Option<i64> {
    let token = token.trim().to_ascii_lowercase();
    if token.len() > 64 {
        return None;
    }
    let raw = ENCODING.decode(token.as_bytes()).ok()?;
    if raw.len() != ID_LEN + TAG_LEN {
        return None;
    }
    let (id_bytes, tag) = raw.split_at(ID_LEN);
    let mut mac = secret.token_mac(purpose);
    mac.update(id_bytes);
    mac.verify_truncated_left(tag).ok()?;
    Some(i64::from_be_bytes(id_bytes.try_into().ok()?))
}

/// Signs a row id together with a time (Unix milliseconds) for `purpose`: a link that expires,
/// whose issue time cannot be altered.
pub fn sign_timed(secret: &Secret, purpose: TokenPurpose, id: i64, at: i64) -> String {
    let mut data = Vec::with_capacity(2 * ID_LEN + TAG_LEN);
    data.extend_from_slice(&id.to_be_bytes());
    data.extend_from_slice(&at.to_be_bytes());
    let mut mac = secret.token_mac(purpose);
    mac.update(&data);
    let tag = mac.finalize().into_bytes();
    data.extend_from_slice(&tag[..TAG_LEN]);
    ENCODING.encode(&data)
}

/// The (id, time) of a token made by [`sign_timed`] for `purpose`; `None` for anything else.
pub fn verify_timed(secret: &Secret, purpose: TokenPurpose, token: &str) -> Option<(i64, i64)> {
    let token = token.trim().to_ascii_lowercase();
    if token.len() > 96 {
        return None;
    }
    let raw = ENCODING.decode(token.as_bytes()).ok()?;
    if raw.len() != 2 * ID_LEN + TAG_LEN {
        return None;
    }
    let (data, tag) = raw.split_at(2 * ID_LEN);
    let mut mac = secret.token_mac(purpose);
    mac.update(data);
    mac.verify_truncated_left(tag).ok()?;
    let (id, at) = data.split_at(ID_LEN);
    Some((
        i64::from_be_bytes(id.try_into().ok()?),
        i64::from_be_bytes(at.try_into().ok()?),
    ))
}

/// A hex HMAC of `data` under a purpose string (admin sessions, CSRF tokens, passwords).
pub fn mac_hex(secret: &Secret, purpose: &str, data: &[u8]) -> String {
    let mut mac = secret.purpose_mac(purpose);
    mac.update(data);
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
}

/// Whether `given` is the HMAC of `data` for `purpose`, compared in constant time.
pub fn verify_mac_hex(secret: &Secret, purpose: &str, data: &[u8], given: &str) -> bool {
    let Ok(tag) = data_encoding::HEXLOWER.decode(given.trim().as_bytes()) else {
        return false;
    };
    let mut mac = secret.purpose_mac(purpose);
    mac.update(data);
    mac.verify_slice(&tag).is_ok()
}

/// The keyed hash under which an address is suppressed: it lets an erased address stay
/// blocked without keeping the address.
pub fn address_hash(secret: &Secret, address: &EmailAddress) -> String {
    let mut mac = secret.mac(b"fairsend/address/v1");
    mac.update(address.as_str().as_bytes());
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = Secret::development();
        let t = sign(&s, TokenPurpose::Unsubscribe, 4242);
        assert_eq!(verify(&s, TokenPurpose::Unsubscribe, &t), Some(4242));
        assert_eq!(
            verify(&s, TokenPurpose::Unsubscribe, &t.to_uppercase()),
            Some(4242)
        );
        assert_eq!(
            verify(&s, TokenPurpose::Bounce, &t),
            None,
            "purpose is signed"
        );
        let mut bytes = t.clone().into_bytes();
        bytes[3] = if bytes[3] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            verify(
                &s,
                TokenPurpose::Unsubscribe,
                std::str::from_utf8(&bytes).unwrap()
            ),
            None
        );
        assert_eq!(verify(&s, TokenPurpose::Unsubscribe, ""), None);
        assert_eq!(verify(&s, TokenPurpose::Unsubscribe, "not a token!"), None);
        let other = Secret::from_data_key(
            b"another secret of thirty-two bytes!!".to_vec(),
            SecretOrigin::Development,
        );
        assert_eq!(verify(&other, TokenPurpose::Unsubscribe, &t), None);
    }

    #[test]
    fn timed_tokens_carry_their_time_and_resist_tampering() {
        let s = Secret::development();
        let t = sign_timed(&s, TokenPurpose::SignupConfirm, 7, 1_700_000_000_000);
        assert_eq!(
            verify_timed(&s, TokenPurpose::SignupConfirm, &t),
            Some((7, 1_700_000_000_000))
        );
        assert_eq!(verify_timed(&s, TokenPurpose::Unsubscribe, &t), None);
        assert_eq!(verify(&s, TokenPurpose::SignupConfirm, &t), None);
        let mut bytes = t.clone().into_bytes();
        bytes[20] = if bytes[20] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            verify_timed(&s, TokenPurpose::SignupConfirm, &tampered),
            None
        );
    }

    #[test]
    fn tokens_fit_in_a_local_part() {
        let t = sign(&Secret::development(), TokenPurpose::Bounce, i64::MAX);
        assert!(t.len() <= 40);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }

    #[test]
    fn address_hash_is_keyed() {
        let a = EmailAddress::parse("a@example.com").unwrap();
        let h1 = address_hash(&Secret::development(), &a);
        let other = Secret::from_data_key(b"x".repeat(32), SecretOrigin::Development);
        assert_ne!(h1, address_hash(&other, &a));
        assert_eq!(h1.len(), 64);
    }
}

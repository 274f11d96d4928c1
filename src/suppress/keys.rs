//! The key hierarchy and the key pin.
//!
//! The environment holds the *master* secret; the database holds the *data key* that hashes
//! addresses and signs tokens, wrapped by the master, beside the master's fingerprint. So:
//! - a command run with another master (or with the development key after a real one, or the
//!   reverse) refuses instead of silently hashing addresses differently — which would let an
//!   opted-out address match no suppression;
//! - `keys rotate` re-wraps the data key under a new master in one statement: every hash, every
//!   erased address and every link in mail already sent stay valid;
//! - a database from before the pin (hashes made with the master directly) keeps the master as
//!   its data key, so its hashes and suppressions go on matching.
//!
//! The wrap is the data key XOR an HMAC-SHA256 keystream of the master over a fresh random salt;
//! a check value (HMAC of the data key) detects a damaged record.

use super::token::{MasterSecret, Secret};
use crate::store::{KeyPin, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "this database's keys are pinned to {pinned}, but {given} is in use now. \
         Addresses would hash differently and opted-out addresses would no longer match their \
         suppressions, so nothing was done. Run with the original secret, or move the database \
         to the new one with `fairsend keys rotate` ({how})"
    )]
    Mismatch {
        pinned: String,
        given: String,
        how: String,
    },
    #[error("the key record in the database is damaged ({0}); restore the database from a backup")]
    Corrupt(&'static str),
    #[error("cannot read random bytes from the operating system: {0}")]
    Random(String),
    #[error(
        "keys rotate: the old secret given (fingerprint {given}) does not open this database, which is pinned to {pinned}; set FAIRSEND_SECRET_OLD to the secret the database was used with (or pass --from-development-key if it was used without one)"
    )]
    OldSecretWrong { pinned: String, given: String },
    #[error("keys rotate: the old and the new secret are the same; nothing to do")]
    SameSecret,
    #[error(
        "keys rotate: the database's keys changed while rotating (another rotation?); nothing was done"
    )]
    Raced,
    #[error(transparent)]
    Store(#[from] StoreError),
}

const DATA_KEY_LEN: usize = 32;

/// The master's fingerprint as stored in the pin (not secret: a one-way function of it).
pub fn fingerprint(master: &MasterSecret) -> String {
    let mac = master.mac(&[b"fairsend/key-fingerprint/v1"]);
    data_encoding::HEXLOWER.encode(&mac[..16])
}

/// Opens the data key of `store` with `master`, pinning a new one on first use.
pub async fn unlock(store: &Store, master: &MasterSecret) -> Result<Secret, KeyError> {
    let pin = match store.key_pin().await? {
        Some(pin) => pin,
        None => {
            // A database from before the pin hashed with the master itself: keep it.
            let data_key = if store.holds_unpinned_data().await? {
                master.bytes().to_vec()
            } else {
                random_bytes(DATA_KEY_LEN)?
            };
            store.pin_key(&wrap(master, &data_key)?).await?
        }
    };
    if pin.fingerprint != fingerprint(master) {
        return Err(mismatch(&pin, master));
    }
    let data_key = unwrap(master, &pin)?;
    Ok(Secret::from_data_key(data_key, master.origin.clone()))
}

/// Re-wraps the data key under `new` (the old master must open it). Hashes and tokens do not
/// change. Returns the new fingerprint.
pub async fn rotate(
    store: &Store,
    old: &MasterSecret,
    new: &MasterSecret,
) -> Result<String, KeyError> {
    if fingerprint(old) == fingerprint(new) {
        return Err(KeyError::SameSecret);
    }
    let secret = match unlock(store, old).await {
        Err(KeyError::Mismatch { pinned, .. }) => {
            return Err(KeyError::OldSecretWrong {
                pinned,
                given: fingerprint(old),
            });
        }
        other => other?,
    };
    let new_pin = wrap(new, secret.data_key())?;
    if !store.repin_key(&fingerprint(old), &new_pin).await? {
        return Err(KeyError::Raced);
    }
    tracing::info!(fingerprint = %new_pin.fingerprint, "keys rotated");
    Ok(new_pin.fingerprint)
}

fn mismatch(pin: &KeyPin, given: &MasterSecret) -> KeyError {
    let pinned_development = pin.fingerprint == fingerprint(&MasterSecret::development());
    let describe = |m: &MasterSecret| match &m.origin {
        super::SecretOrigin::Development => "the built-in development key".to_string(),
        super::SecretOrigin::Environment(var) => {
            format!("the secret in {var} (fingerprint {})", fingerprint(m))
        }
    };
    let how = match (&given.origin, pinned_development) {
        (super::SecretOrigin::Development, _) => {
            "set the secret's variable to the secret the database was set up with".to_string()
        }
        (super::SecretOrigin::Environment(var), true) => format!(
            "`fairsend keys rotate --from-development-key` with {var} set moves it to your secret"
        ),
        (super::SecretOrigin::Environment(var), false) => {
            format!("with FAIRSEND_SECRET_OLD set to the previous secret and {var} to the new one")
        }
    };
    KeyError::Mismatch {
        pinned: if pinned_development {
            "the built-in development key (it was used without a secret so far)".to_string()
        } else {
            format!("another secret (fingerprint {})", pin.fingerprint)
        },
        given: describe(given),
        how,
    }
}

fn keystream(master: &MasterSecret, salt: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend_from_slice(&master.mac(&[
            b"fairsend/key-wrap/v1",
            salt,
            &counter.to_be_bytes(),
        ]));
        counter += 1;
    }
    out.truncate(len);
    out
}

fn key_check(data_key: &[u8]) -> String {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(data_key).expect("HMAC takes any key length");
    mac.update(b"fairsend/data-key-check/v1");
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()[..16])
}

fn wrap(master: &MasterSecret, data_key: &[u8]) -> Result<KeyPin, KeyError> {
    let salt = random_bytes(16)?;
    let wrapped: Vec<u8> = data_key
        .iter()
        .zip(keystream(master, &salt, data_key.len()))
        .map(|(k, p)| k ^ p)
        .collect();
    Ok(KeyPin {
        fingerprint: fingerprint(master),
        salt: data_encoding::HEXLOWER.encode(&salt),
        wrapped_key: data_encoding::HEXLOWER.encode(&wrapped),
        key_check: key_check(data_key),
    })
}

fn unwrap(master: &MasterSecret, pin: &KeyPin) -> Result<Vec<u8>, KeyError> {
    let hex = |s: &str| data_encoding::HEXLOWER.decode(s.as_bytes());
    let salt = hex(&pin.salt).map_err(|_| KeyError::Corrupt("salt"))?;
    let wrapped = hex(&pin.wrapped_key).map_err(|_| KeyError::Corrupt("wrapped key"))?;
    let data_key: Vec<u8> = wrapped
        .iter()
        .zip(keystream(master, &salt, wrapped.len()))
        .map(|(k, p)| k ^ p)
        .collect();
    if key_check(&data_key) != pin.key_check {
        return Err(KeyError::Corrupt("check value"));
    }
    Ok(data_key)
}

fn random_bytes(n: usize) -> Result<Vec<u8>, KeyError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(value: &str) -> MasterSecret {
        MasterSecret::from_value("FAIRSEND_SECRET", value.to_string()).unwrap()
    }

    #[test]
    fn wrap_round_trip_and_wrong_master() {
        let a = master(&"a".repeat(32));
        let b = master(&"b".repeat(32));
        let key = random_bytes(32).unwrap();
        let pin = wrap(&a, &key).unwrap();
        assert_eq!(unwrap(&a, &pin).unwrap(), key);
        assert!(matches!(unwrap(&b, &pin), Err(KeyError::Corrupt(_))));
        assert_ne!(fingerprint(&a), fingerprint(&b));
        // A fresh salt per wrap: the same key wraps differently.
        assert_ne!(wrap(&a, &key).unwrap().wrapped_key, pin.wrapped_key);
    }
}

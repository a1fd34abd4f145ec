//! The RSA public keys tenants register to sign embed JWTs with: SPKI PEM
//! (`-----BEGIN PUBLIC KEY-----`), RSA, 2048 to 4096 bits, fingerprinted by the sha256
//! of their DER. Anything else is refused with a message saying what to send instead.

use rsa::RsaPublicKey;
use rsa::pkcs8::der::{self, Decode};
use rsa::pkcs8::{DecodePublicKey, SubjectPublicKeyInfoRef};
use sha2::{Digest, Sha256};

/// Smallest modulus accepted: shorter RSA keys are within reach of factoring.
pub const MIN_BITS: usize = 2048;
/// Largest modulus accepted: the `rsa` crate refuses larger public keys, so the
/// verifier could never use one.
pub const MAX_BITS: usize = 4096;
/// Longest PEM text accepted (a 4096-bit SPKI PEM is about 800 bytes).
pub const MAX_PEM_BYTES: usize = 16 * 1024;

/// A checked public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The PEM as sent, without surrounding whitespace.
    pub pem: String,
    /// sha256 of the DER, hex.
    pub fingerprint: String,
    /// Size of the modulus.
    pub bits: usize,
}

/// Why a key was refused. The messages never quote the text sent (it may be a
/// private key pasted by mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the PEM is longer than {MAX_PEM_BYTES} bytes")]
    TooLong,
    #[error(
        "this is a private key: never send it. Send its public key, SPKI PEM \
         (`openssl rsa -in private.pem -pubout`)"
    )]
    PrivateKey,
    #[error(
        "this is a PKCS#1 `RSA PUBLIC KEY`; send it as SPKI PEM (`-----BEGIN PUBLIC KEY-----`, \
         `openssl rsa -RSAPublicKey_in -in key.pem -pubout`)"
    )]
    Pkcs1,
    #[error(
        "not a PEM document ({0}); send an RSA public key, SPKI PEM (`-----BEGIN PUBLIC KEY-----`)"
    )]
    NotPem(String),
    #[error("a PEM `{0}`, not a `PUBLIC KEY`; send an RSA public key, SPKI PEM")]
    WrongLabel(String),
    #[error("the key is not an RSA key: only RS256 tokens are accepted, so send an RSA public key")]
    NotRsa,
    #[error("the RSA key is not valid: {0}")]
    Invalid(String),
    #[error("the RSA key has {0} bits; at least {MIN_BITS} are required")]
    TooSmall(usize),
    #[error("the RSA key has {0} bits; at most {MAX_BITS} are supported")]
    TooLarge(usize),
}

/// Checks `text` is an RSA public key as SPKI PEM of an accepted size.
pub fn parse_spki_pem(text: &str) -> Result<PublicKey, KeyError> {
    if text.len() > MAX_PEM_BYTES {
        return Err(KeyError::TooLong);
    }
    let pem = text.trim();
    let (label, der) = der::pem::decode_vec(pem.as_bytes()).map_err(|err| {
        match der::pem::decode_label(pem.as_bytes()) {
            Ok(label) => classify_label(label).unwrap_or_else(|| KeyError::NotPem(err.to_string())),
            Err(_) => KeyError::NotPem(err.to_string()),
        }
    })?;
    if let Some(refused) = classify_label(label) {
        return Err(refused);
    }
    let spki = SubjectPublicKeyInfoRef::from_der(&der)
        .map_err(|err| KeyError::Invalid(format!("not a SubjectPublicKeyInfo: {err}")))?;
    if spki.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
        return Err(KeyError::NotRsa);
    }
    let raw = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| KeyError::Invalid("the key's bit string is not whole bytes".into()))?;
    let pkcs1 = rsa::pkcs1::RsaPublicKey::try_from(raw)
        .map_err(|err| KeyError::Invalid(format!("not an RSA public key: {err}")))?;
    let bits = modulus_bits(pkcs1.modulus.as_bytes());
    if bits < MIN_BITS {
        return Err(KeyError::TooSmall(bits));
    }
    if bits > MAX_BITS {
        return Err(KeyError::TooLarge(bits));
    }
    // The full check (exponent range, modulus parity) the verifier will make too.
    RsaPublicKey::from_public_key_der(&der).map_err(|err| KeyError::Invalid(err.to_string()))?;
    Ok(PublicKey {
        pem: pem.to_string(),
        fingerprint: hex::encode(Sha256::digest(&der)),
        bits,
    })
}

/// The refusal a PEM label calls for, if any (`None`: a `PUBLIC KEY`).
fn classify_label(label: &str) -> Option<KeyError> {
    match label {
        "PUBLIC KEY" => None,
        "RSA PUBLIC KEY" => Some(KeyError::Pkcs1),
        label if label.contains("PRIVATE KEY") => Some(KeyError::PrivateKey),
        other => Some(KeyError::WrongLabel(other.chars().take(40).collect())),
    }
}

/// Bits of a big-endian unsigned integer (DER strips leading zero bytes).
fn modulus_bits(bytes: &[u8]) -> usize {
    let bytes = match bytes.iter().position(|byte| *byte != 0) {
        Some(first) => &bytes[first..],
        None => return 0,
    };
    bytes.len() * 8 - bytes[0].leading_zeros() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits_counts_from_the_top_bit() {
        assert_eq!(modulus_bits(&[0x80, 0, 0]), 24);
        assert_eq!(modulus_bits(&[0, 0x01, 0]), 9);
        assert_eq!(modulus_bits(&[]), 0);
    }

    #[test]
    fn labels_say_what_to_send_instead() {
        assert_eq!(classify_label("PUBLIC KEY"), None);
        assert_eq!(classify_label("RSA PUBLIC KEY"), Some(KeyError::Pkcs1));
        assert_eq!(
            classify_label("RSA PRIVATE KEY"),
            Some(KeyError::PrivateKey)
        );
        assert_eq!(
            classify_label("ENCRYPTED PRIVATE KEY"),
            Some(KeyError::PrivateKey)
        );
        assert_eq!(
            classify_label("CERTIFICATE"),
            Some(KeyError::WrongLabel("CERTIFICATE".into()))
        );
    }

    #[test]
    fn garbage_is_not_a_pem() {
        assert!(matches!(parse_spki_pem("hello"), Err(KeyError::NotPem(_))));
        assert_eq!(
            parse_spki_pem(&"x".repeat(MAX_PEM_BYTES + 1)),
            Err(KeyError::TooLong)
        );
    }
}

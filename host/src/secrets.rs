//! Connection secrets at rest: XChaCha20-Poly1305 with a 32-byte key read from
//! `SLUICE_SECRET_KEY` (base64) or from `<data dir>/secret.key`, which is created
//! (mode 0600) on first start. Each sealed value is bound to the id of what owns it.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// The environment variable that carries the key (base64 of 32 bytes).
pub const KEY_ENV: &str = "SLUICE_SECRET_KEY";
const KEY_FILE: &str = "secret.key";
/// Layout version of sealed values: `[1] ++ nonce(24) ++ ciphertext`.
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the secret key in {source_name} is not base64 of 32 bytes")]
    BadKey { source_name: String },
    #[error("cannot read or create the secret key file {path}: {error}")]
    KeyFile { path: String, error: std::io::Error },
    #[error("cannot read random bytes: {0}")]
    Random(String),
    #[error("a sealed secret is corrupt, or was sealed with another key or for another owner")]
    Unseal,
}

/// Seals and opens secrets with the server's key. Cloning is cheap.
#[derive(Clone)]
pub struct Secrets {
    cipher: XChaCha20Poly1305,
    /// The key of [`Secrets::sign`], derived from the server's key so that a signature
    /// never doubles as anything sealed.
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<key redacted>)")
    }
}

impl Secrets {
    /// The key from the environment, else from the data directory (created there on
    /// first start).
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SecretsError> {
        if let Ok(text) = std::env::var(KEY_ENV) {
            return Self::from_base64(&text, KEY_ENV);
        }
        let path = data_dir.join(KEY_FILE);
        let file_error = |error| SecretsError::KeyFile {
            path: path.display().to_string(),
            error,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text, &path.display().to_string()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = random_bytes::<32>()?;
                write_private(&path, STANDARD.encode(key).as_bytes()).map_err(file_error)?;
                tracing::info!(path = %path.display(), "created the secret key for connections");
                Ok(Self::from_key(&key))
            }
            Err(err) => Err(file_error(err)),
        }
    }

    fn from_base64(text: &str, source_name: &str) -> Result<Self, SecretsError> {
        let bad = || SecretsError::BadKey {
            source_name: source_name.to_string(),
        };
        let bytes = STANDARD.decode(text.trim()).map_err(|_| bad())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(Self::from_key(&key))
    }

    fn from_key(key: &[u8; 32]) -> Self {
        Secrets {
            cipher: XChaCha20Poly1305::new(key.into()),
            mac_key: mac(key, b"sluice signing key v1"),
        }
    }

    /// An HMAC-SHA256 of `message` for `purpose` with the server's signing key (the
    /// OAuth `state`): it verifies only on this server and for this purpose.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let mut input = Vec::with_capacity(purpose.len() + 1 + message.len());
        input.extend_from_slice(purpose.as_bytes());
        input.push(0);
        input.extend_from_slice(message);
        mac(&self.mac_key, &input)
    }

    /// Whether `signature` is [`Secrets::sign`] of `message` for `purpose`, compared
    /// in constant time.
    pub fn verify(&self, purpose: &str, message: &[u8], signature: &[u8]) -> bool {
        use hmac::Mac as _;
        let mut input = Vec::with_capacity(purpose.len() + 1 + message.len());
        input.extend_from_slice(purpose.as_bytes());
        input.push(0);
        input.extend_from_slice(message);
        let Ok(mut check) = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&self.mac_key)
        else {
            return false;
        };
        check.update(&input);
        check.verify_slice(signature).is_ok()
    }

    /// Encrypts `plaintext` for `owner` (e.g. an instance id): it only opens with the
    /// same owner, so sealed values cannot be swapped between rows.
    pub fn seal(&self, owner: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Unseal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts what [`Secrets::seal`] produced for the same owner.
    pub fn open(&self, owner: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretsError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != FORMAT {
            return Err(SecretsError::Unseal);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Unseal)
    }
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac as _;
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretsError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|err| SecretsError::Random(err.to_string()))?;
    Ok(bytes)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_binds_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets::load_or_create(dir.path()).unwrap();
        let sealed = secrets.seal("instance-1", b"token").unwrap();
        assert_eq!(secrets.open("instance-1", &sealed).unwrap(), b"token");
        assert!(matches!(
            secrets.open("instance-2", &sealed),
            Err(SecretsError::Unseal)
        ));
        // The key file persists: a restart opens what was sealed before.
        let again = Secrets::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open("instance-1", &sealed).unwrap(), b"token");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(again.open("instance-1", &tampered).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn signatures_verify_for_their_purpose_only() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets::load_or_create(dir.path()).unwrap();
        let signature = secrets.sign("oauth-state", b"abc");
        assert!(secrets.verify("oauth-state", b"abc", &signature));
        assert!(!secrets.verify("oauth-state", b"abd", &signature));
        assert!(!secrets.verify("other", b"abc", &signature));
        assert!(!secrets.verify("oauth-state", b"abc", &signature[..31]));
    }

    #[test]
    fn a_bad_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not base64!").unwrap();
        assert!(matches!(
            Secrets::load_or_create(dir.path()),
            Err(SecretsError::BadKey { .. })
        ));
    }
}

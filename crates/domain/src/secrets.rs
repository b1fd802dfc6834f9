//! Encryption at rest for provider credentials and channel tokens (AES-256-GCM).
//!
//! The key comes from `CHATSTUDIO_SECRET_KEY` (64 hex chars or base64 of 32
//! bytes), else from `secret.key` in the data dir, created with mode 0600 on
//! first start. Instances sharing a PostgreSQL database must share the key, so
//! set the variable there. Ciphertext is `v1:` + base64(nonce ‖ ciphertext).

use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;

use crate::{Error, Result};

pub const ENV: &str = "CHATSTUDIO_SECRET_KEY";
pub const KEY_FILE: &str = "secret.key";

#[derive(Clone)]
pub struct SecretBox {
    cipher: Arc<Aes256Gcm>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

fn parse_key(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    let bytes = if t.len() == 64 {
        hex::decode(t).ok()?
    } else {
        STANDARD.decode(t).ok()?
    };
    bytes.try_into().ok()
}

impl SecretBox {
    pub fn from_key(key: [u8; 32]) -> Self {
        Self {
            cipher: Arc::new(Aes256Gcm::new(&key.into())),
        }
    }

    /// The key from the environment, else the data dir's key file (created on first use).
    pub fn load(data_dir: &Path) -> Result<Self> {
        if let Ok(v) = std::env::var(ENV)
            && !v.trim().is_empty()
        {
            let key = parse_key(&v).ok_or_else(|| {
                Error::BadRequest(format!(
                    "{ENV} must be 32 bytes as 64 hex characters or base64"
                ))
            })?;
            return Ok(Self::from_key(key));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_key(&text)
                .map(Self::from_key)
                .ok_or_else(|| Error::BadRequest(format!("{} is not a valid key", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill(&mut key);
                write_private(&path, &hex::encode(key))?;
                Ok(Self::from_key(key))
            }
            Err(e) => Err(Error::internal(format!("reading {}: {e}", path.display()))),
        }
    }

    /// Whether a stored value is one [`SecretBox::seal`] wrote.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with("v1:")
    }

    pub fn seal(&self, plaintext: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        rand::rng().fill(&mut nonce);
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("v1:{}", STANDARD.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> Result<String> {
        let fail = || {
            Error::internal(
                "a stored secret cannot be decrypted: was CHATSTUDIO_SECRET_KEY changed?",
            )
        };
        let body = sealed.strip_prefix("v1:").ok_or_else(fail)?;
        let raw = STANDARD.decode(body).map_err(|_| fail())?;
        if raw.len() < 12 {
            return Err(fail());
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| fail())?;
        let pt = self
            .cipher
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| fail())?;
        String::from_utf8(pt).map_err(|_| fail())
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| Error::internal(format!("creating {}: {e}", path.display())))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens() {
        let b = SecretBox::from_key([7; 32]);
        let s = b.seal("sk-secret").unwrap();
        assert!(!s.contains("sk-secret"));
        assert_ne!(s, b.seal("sk-secret").unwrap(), "fresh nonce each time");
        assert_eq!(b.open(&s).unwrap(), "sk-secret");
        assert!(SecretBox::from_key([8; 32]).open(&s).is_err());
        assert!(b.open("v1:AAAA").is_err());
    }

    #[test]
    fn key_file_is_private_and_stable() {
        let dir = std::env::temp_dir().join(format!("cs-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = SecretBox::load(&dir).unwrap();
        let sealed = a.seal("x").unwrap();
        let b = SecretBox::load(&dir).unwrap();
        assert_eq!(b.open(&sealed).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

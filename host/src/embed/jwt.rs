//! Verification of the embed JWT a tenant's backend signs for one of its customers'
//! users: RS256 only, against the named tenant's active signing keys, with bounded
//! clock skew and lifetime. Verifying stores nothing; a rejection is a typed error.

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::store::signing_keys::SigningKey;
use crate::store::{SigningKeyStore, StoreError, TenantStore};

/// Clock skew tolerated between the tenant's backend and this server, on `exp` and
/// `iat`.
pub const LEEWAY_SECS: i64 = 60;
/// Longest lifetime (`exp - iat`) accepted, on top of the leeway: the token rides in
/// a URL, so it must be short-lived.
pub const MAX_LIFETIME_SECS: i64 = 3600;
/// Longest token accepted.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest text claim accepted, in bytes (the customer API's limit).
pub const MAX_CLAIM_BYTES: usize = 512;
/// Longest `kid` header accepted.
const MAX_KID_BYTES: usize = 128;

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedClaims {
    /// The user in the tenant's own system.
    pub sub: String,
    pub external_id: Option<String>,
    /// The user's display name.
    pub name: Option<String>,
    /// The Sluice tenant id.
    pub organization: String,
    /// The customer's external id (the tenant's own id for it).
    pub customer: String,
    /// The name a customer created by this token gets.
    pub customer_name: Option<String>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The signing key that verified the token.
    pub key_id: String,
}

/// Why a token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token is signed with `{0}`; only RS256 is accepted")]
    WrongAlgorithm(String),
    #[error("the token's `organization` names no tenant")]
    UnknownTenant,
    #[error("{}", match kid {
        Some(kid) => format!("no active signing key `{kid}` (the token's `kid`) for this tenant"),
        None => "the tenant has no active signing key".to_string(),
    })]
    NoKey { kid: Option<String> },
    #[error("the token's signature matches none of the tenant's active signing keys")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is issued in the future (`iat`); check the signing server's clock")]
    IssuedInFuture,
    #[error(
        "the token lives {0} seconds (`exp` - `iat`); at most {MAX_LIFETIME_SECS} are accepted"
    )]
    LifetimeTooLong(i64),
    #[error("the token has no `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the token's `{claim}` claim {reason}")]
    InvalidClaim {
        claim: &'static str,
        reason: &'static str,
    },
    /// The store failed; not the token's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a token says about itself before anything is verified: only used to pick the
/// tenant and key to verify it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub algorithm: String,
    pub kid: Option<String>,
    pub organization: Option<String>,
}

/// Reads the header and the `organization` claim, unverified.
pub fn inspect(token: &str) -> Result<Unverified, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed(format!(
            "longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let segments: Vec<&str> = token.split('.').collect();
    let [header, payload, _signature] = segments[..] else {
        return Err(JwtError::Malformed(
            "a JWT has three dot-separated parts".into(),
        ));
    };
    let header = json_object(header, "header")?;
    let algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| JwtError::Malformed("the header has no `alg`".into()))?
        .to_string();
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) if kid.len() <= MAX_KID_BYTES => Some(kid.clone()),
        Some(_) => {
            return Err(JwtError::Malformed(format!(
                "the header's `kid` must be a string of at most {MAX_KID_BYTES} bytes"
            )));
        }
    };
    let organization = json_object(payload, "payload")?
        .get("organization")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Unverified {
        algorithm,
        kid,
        organization,
    })
}

fn json_object(segment: &str, what: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| JwtError::Malformed(format!("the {what} is not a JSON object")))
}

/// Verifies `token` against the active signing keys of the tenant its `organization`
/// claim names, at `now_secs` (Unix seconds).
pub async fn verify<S>(store: &S, token: &str, now_secs: i64) -> Result<EmbedClaims, JwtError>
where
    S: TenantStore + SigningKeyStore + ?Sized,
{
    let unverified = inspect(token)?;
    if unverified.algorithm != "RS256" {
        return Err(JwtError::WrongAlgorithm(
            unverified.algorithm.chars().take(20).collect(),
        ));
    }
    let organization = unverified
        .organization
        .ok_or(JwtError::MissingClaim("organization"))?;
    if store.get_tenant(&organization).await?.is_none() {
        return Err(JwtError::UnknownTenant);
    }
    let keys = store.active_signing_keys(&organization).await?;
    verify_with_keys(token, unverified.kid.as_deref(), &keys, now_secs)
}

/// Verifies `token`'s RS256 signature with the key named `kid` among `keys` (or, with
/// no `kid`, each key in turn), then its claims at `now_secs`.
pub fn verify_with_keys(
    token: &str,
    kid: Option<&str>,
    keys: &[SigningKey],
    now_secs: i64,
) -> Result<EmbedClaims, JwtError> {
    let candidates: Vec<&SigningKey> = keys
        .iter()
        .filter(|key| key.active() && kid.is_none_or(|kid| key.id == kid))
        .collect();
    if candidates.is_empty() {
        return Err(JwtError::NoKey {
            kid: kid.map(str::to_string),
        });
    }
    // Only the signature here: the claims are checked below against `now_secs`, with
    // errors of our own.
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    for key in candidates {
        let decoding = match DecodingKey::from_rsa_pem(key.public_key_pem.as_bytes()) {
            Ok(decoding) => decoding,
            Err(err) => {
                // Checked at registration; a stored key that no longer parses is a bug.
                tracing::error!(key = %key.id, error = %err, "a stored signing key does not parse");
                continue;
            }
        };
        match jsonwebtoken::decode::<Map<String, Value>>(token, &decoding, &validation) {
            Ok(data) => return claims(&data.claims, &key.id, now_secs),
            Err(err) => match err.kind() {
                ErrorKind::InvalidSignature => continue,
                ErrorKind::InvalidAlgorithm => {
                    return Err(JwtError::WrongAlgorithm("not RS256".into()));
                }
                ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_)
                | ErrorKind::InvalidToken => {
                    return Err(JwtError::Malformed(err.to_string()));
                }
                _ => {
                    tracing::warn!(key = %key.id, error = %err, "embed token not verified by a key");
                    continue;
                }
            },
        }
    }
    Err(JwtError::BadSignature)
}

/// The claims of a token whose signature verified, checked at `now_secs`.
fn claims(map: &Map<String, Value>, key_id: &str, now_secs: i64) -> Result<EmbedClaims, JwtError> {
    let sub = required_text(map, "sub")?;
    let organization = required_text(map, "organization")?;
    let customer = required_text(map, "customer")?;
    let external_id = optional_text(map, "external_id")?;
    let name = optional_text(map, "name")?;
    let customer_name = optional_text(map, "customer_name")?;
    let iat = required_time(map, "iat")?;
    let exp = required_time(map, "exp")?;
    if exp <= iat {
        return Err(JwtError::InvalidClaim {
            claim: "exp",
            reason: "must be after `iat`",
        });
    }
    if now_secs > exp.saturating_add(LEEWAY_SECS) {
        return Err(JwtError::Expired);
    }
    if iat > now_secs.saturating_add(LEEWAY_SECS) {
        return Err(JwtError::IssuedInFuture);
    }
    let lifetime = exp - iat;
    if lifetime > MAX_LIFETIME_SECS + LEEWAY_SECS {
        return Err(JwtError::LifetimeTooLong(lifetime));
    }
    Ok(EmbedClaims {
        sub,
        external_id,
        name,
        organization,
        customer,
        customer_name,
        iat,
        exp,
        key_id: key_id.to_string(),
    })
}

fn optional_text(
    map: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, JwtError> {
    match map.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) if text.len() > MAX_CLAIM_BYTES => Err(JwtError::InvalidClaim {
            claim,
            reason: "is longer than 512 bytes",
        }),
        Some(Value::String(text)) => Ok(Some(text.trim().to_string())),
        Some(_) => Err(JwtError::InvalidClaim {
            claim,
            reason: "must be a string",
        }),
    }
}

fn required_text(map: &Map<String, Value>, claim: &'static str) -> Result<String, JwtError> {
    match map.get(claim) {
        None | Some(Value::Null) => Err(JwtError::MissingClaim(claim)),
        Some(Value::String(text)) if text.trim().is_empty() => Err(JwtError::InvalidClaim {
            claim,
            reason: "must not be empty",
        }),
        _ => optional_text(map, claim)?.ok_or(JwtError::MissingClaim(claim)),
    }
}

fn required_time(map: &Map<String, Value>, claim: &'static str) -> Result<i64, JwtError> {
    let invalid = JwtError::InvalidClaim {
        claim,
        reason: "must be a Unix time in seconds (a number)",
    };
    match map.get(claim) {
        None | Some(Value::Null) => Err(JwtError::MissingClaim(claim)),
        Some(Value::Number(number)) => match (number.as_i64(), number.as_f64()) {
            (Some(seconds), _) => Ok(seconds),
            // A fractional time (some libraries write one) counts by its whole seconds.
            (None, Some(seconds)) if seconds.is_finite() && seconds.abs() < 1e15 => {
                Ok(seconds.floor() as i64)
            }
            _ => Err(invalid),
        },
        Some(_) => Err(invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    // Test fixtures (host/tests/support/fixtures/embed/README.md).
    const A_PRIVATE: &str = include_str!("../../tests/support/fixtures/embed/tenant-a.key.pem");
    const A_PUBLIC: &str = include_str!("../../tests/support/fixtures/embed/tenant-a.pub.pem");
    const B_PRIVATE: &str = include_str!("../../tests/support/fixtures/embed/tenant-b.key.pem");
    const B_PUBLIC: &str = include_str!("../../tests/support/fixtures/embed/tenant-b.pub.pem");
    const NOW: i64 = 1_800_000_000;

    fn key(id: &str, pem: &str) -> SigningKey {
        SigningKey {
            id: id.into(),
            label: None,
            public_key_pem: pem.into(),
            fingerprint: String::new(),
            created_ms: 0,
            deactivated_ms: None,
        }
    }

    fn claims_at(iat: i64, exp: i64) -> Value {
        json!({
            "sub": "user-1", "name": "Phil", "organization": "tenant-a",
            "customer": "abc-123", "customer_name": "Hooli", "iat": iat, "exp": exp,
        })
    }

    fn sign(claims: &Value, private: &str, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn verify_now(token: &str, keys: &[SigningKey]) -> Result<EmbedClaims, JwtError> {
        let kid = inspect(token)?.kid;
        verify_with_keys(token, kid.as_deref(), keys, NOW)
    }

    #[test]
    fn a_token_signed_by_an_active_key_verifies() {
        let token = sign(&claims_at(NOW - 10, NOW + 600), A_PRIVATE, None);
        let keys = [key("b", B_PUBLIC), key("a", A_PUBLIC)];
        let claims = verify_now(&token, &keys).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.customer, "abc-123");
        assert_eq!(claims.customer_name.as_deref(), Some("Hooli"));
        assert_eq!(claims.key_id, "a");
        assert_eq!(
            inspect(&token).unwrap().organization.as_deref(),
            Some("tenant-a")
        );
    }

    #[test]
    fn kid_picks_the_key() {
        let token = sign(&claims_at(NOW, NOW + 60), A_PRIVATE, Some("a"));
        assert_eq!(
            verify_now(&token, &[key("a", A_PUBLIC)]).unwrap().key_id,
            "a"
        );
        // Named key is B's: the signature does not match it, and A's is not tried.
        let token = sign(&claims_at(NOW, NOW + 60), A_PRIVATE, Some("b"));
        assert_eq!(
            verify_now(&token, &[key("a", A_PUBLIC), key("b", B_PUBLIC)]),
            Err(JwtError::BadSignature)
        );
        let token = sign(&claims_at(NOW, NOW + 60), A_PRIVATE, Some("gone"));
        assert_eq!(
            verify_now(&token, &[key("a", A_PUBLIC)]),
            Err(JwtError::NoKey {
                kid: Some("gone".into())
            })
        );
    }

    #[test]
    fn wrong_or_missing_keys_are_refused() {
        let token = sign(&claims_at(NOW, NOW + 60), B_PRIVATE, None);
        assert_eq!(
            verify_now(&token, &[key("a", A_PUBLIC)]),
            Err(JwtError::BadSignature)
        );
        assert_eq!(verify_now(&token, &[]), Err(JwtError::NoKey { kid: None }));
        let mut inactive = key("b", B_PUBLIC);
        inactive.deactivated_ms = Some(1);
        assert_eq!(
            verify_now(&token, &[inactive]),
            Err(JwtError::NoKey { kid: None })
        );
    }

    #[test]
    fn times_are_checked_with_leeway() {
        let keys = [key("a", A_PUBLIC)];
        let at = |iat, exp| verify_now(&sign(&claims_at(iat, exp), A_PRIVATE, None), &keys);
        assert!(at(NOW - 100, NOW - 30).is_ok(), "within the leeway");
        assert_eq!(at(NOW - 200, NOW - 61), Err(JwtError::Expired));
        assert!(at(NOW + 30, NOW + 600).is_ok(), "within the leeway");
        assert_eq!(at(NOW + 120, NOW + 600), Err(JwtError::IssuedInFuture));
        assert!(at(NOW - 10, NOW - 10 + 3600 + 60).is_ok());
        assert_eq!(
            at(NOW - 10, NOW - 10 + 3661),
            Err(JwtError::LifetimeTooLong(3661))
        );
        assert!(matches!(
            at(NOW, NOW),
            Err(JwtError::InvalidClaim { claim: "exp", .. })
        ));
    }

    #[test]
    fn claims_are_required_and_typed() {
        let keys = [key("a", A_PUBLIC)];
        for claim in ["sub", "organization", "customer", "iat", "exp"] {
            let mut claims = claims_at(NOW, NOW + 60);
            claims.as_object_mut().unwrap().remove(claim);
            assert_eq!(
                verify_now(&sign(&claims, A_PRIVATE, None), &keys),
                Err(JwtError::MissingClaim(claim)),
                "{claim}"
            );
        }
        let mut claims = claims_at(NOW, NOW + 60);
        claims["exp"] = json!("tomorrow");
        assert!(matches!(
            verify_now(&sign(&claims, A_PRIVATE, None), &keys),
            Err(JwtError::InvalidClaim { claim: "exp", .. })
        ));
        claims = claims_at(NOW, NOW + 60);
        claims["customer"] = json!(" ");
        assert!(matches!(
            verify_now(&sign(&claims, A_PRIVATE, None), &keys),
            Err(JwtError::InvalidClaim {
                claim: "customer",
                ..
            })
        ));
        claims = claims_at(NOW, NOW + 60);
        claims["iat"] = json!(NOW as f64 + 0.5);
        assert_eq!(
            verify_now(&sign(&claims, A_PRIVATE, None), &keys)
                .unwrap()
                .iat,
            NOW
        );
    }

    #[test]
    fn other_algorithms_and_shapes_are_refused() {
        let b64 = |value: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        let payload = b64(&claims_at(NOW, NOW + 60));
        let none = format!("{}.{payload}.", b64(&json!({"alg": "none"})));
        assert_eq!(inspect(&none).unwrap().algorithm, "none");
        // The classic confusion: HS256 with the public key as the HMAC secret.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims_at(NOW, NOW + 60),
            &EncodingKey::from_secret(A_PUBLIC.as_bytes()),
        )
        .unwrap();
        assert_eq!(inspect(&hs).unwrap().algorithm, "HS256");
        assert!(matches!(
            verify_now(&hs, &[key("a", A_PUBLIC)]),
            Err(JwtError::WrongAlgorithm(_))
        ));
        for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30"] {
            assert!(
                matches!(inspect(garbage), Err(JwtError::Malformed(_))),
                "{garbage}"
            );
        }
        let token = sign(&claims_at(NOW, NOW + 60), A_PRIVATE, None);
        let mut tampered: Vec<&str> = token.split('.').collect();
        let other = b64(&json!({"sub": "admin", "organization": "tenant-a",
            "customer": "other", "iat": NOW, "exp": NOW + 60}));
        tampered[1] = &other;
        assert_eq!(
            verify_now(&tampered.join("."), &[key("a", A_PUBLIC)]),
            Err(JwtError::BadSignature)
        );
    }
}

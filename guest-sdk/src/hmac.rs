//! Webhook signature checks with HMAC-SHA256 and constant-time comparison: GitHub
//! style (`x-hub-signature-256: sha256=<hex>` over the raw body) and Zendesk style
//! (base64 over timestamp + body), plus the signing side for tests and fake services.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The `x-hub-signature-256` value GitHub sends for `body`: `sha256=<lower-case hex>`.
pub fn sign_github(secret: impl AsRef<[u8]>, body: impl AsRef<[u8]>) -> String {
    let digest = mac(secret.as_ref(), &[body.as_ref()])
        .finalize()
        .into_bytes();
    format!("sha256={}", hex::encode(digest))
}

/// Whether `signature_header` (the `x-hub-signature-256` header) is GitHub's
/// signature of `body` with `secret`. Compare the raw body, byte for byte, before any
/// parsing. A missing prefix or malformed hex is `false`; the comparison of digests is
/// constant-time.
pub fn verify_github_signature(
    secret: impl AsRef<[u8]>,
    body: impl AsRef<[u8]>,
    signature_header: &str,
) -> bool {
    let Some(hex_digest) = signature_header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    mac(secret.as_ref(), &[body.as_ref()])
        .verify_slice(&expected)
        .is_ok()
}

/// The `x-zendesk-webhook-signature` value Zendesk sends: base64 of HMAC-SHA256 over
/// the `x-zendesk-webhook-signature-timestamp` value followed by the body.
pub fn sign_zendesk(secret: impl AsRef<[u8]>, timestamp: &str, body: impl AsRef<[u8]>) -> String {
    let digest = mac(secret.as_ref(), &[timestamp.as_bytes(), body.as_ref()])
        .finalize()
        .into_bytes();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Whether `signature_header` is Zendesk's signature of `timestamp_header` + `body`
/// with `secret`. Malformed base64 is `false`; the comparison is constant-time. Check
/// the timestamp's age yourself if replays matter.
pub fn verify_zendesk_signature(
    secret: impl AsRef<[u8]>,
    timestamp_header: &str,
    body: impl AsRef<[u8]>,
    signature_header: &str,
) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature_header.trim())
    else {
        return false;
    };
    mac(
        secret.as_ref(),
        &[timestamp_header.as_bytes(), body.as_ref()],
    )
    .verify_slice(&expected)
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example in GitHub's "Validating webhook deliveries" documentation.
    const GH_SECRET: &[u8] = b"It's a Secret to Everybody";
    const GH_BODY: &[u8] = b"Hello, World!";
    const GH_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_known_vector() {
        assert_eq!(sign_github(GH_SECRET, GH_BODY), GH_SIGNATURE);
        assert!(verify_github_signature(GH_SECRET, GH_BODY, GH_SIGNATURE));
        // Upper-case hex is still the same digest.
        assert!(verify_github_signature(
            GH_SECRET,
            GH_BODY,
            &GH_SIGNATURE.to_uppercase().replace("SHA256=", "sha256=")
        ));
    }

    #[test]
    fn github_rejects_tampering_and_malformed_headers() {
        assert!(!verify_github_signature(
            GH_SECRET,
            b"Hello, World?",
            GH_SIGNATURE
        ));
        assert!(!verify_github_signature(b"other", GH_BODY, GH_SIGNATURE));
        for bad in [
            "",
            "sha256=",
            "sha256=zz",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e",
        ] {
            assert!(!verify_github_signature(GH_SECRET, GH_BODY, bad), "{bad}");
        }
    }

    #[test]
    fn zendesk_known_vector() {
        // RFC 4231 test case 2 (key "Jefe"), split into timestamp and body: Zendesk
        // signs their concatenation.
        let signature = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=";
        assert_eq!(
            sign_zendesk(b"Jefe", "what do ya ", b"want for nothing?"),
            signature
        );
        assert!(verify_zendesk_signature(
            b"Jefe",
            "what do ya ",
            b"want for nothing?",
            signature
        ));
        assert!(!verify_zendesk_signature(
            b"Jefe",
            "what do ya",
            b"want for nothing?",
            signature
        ));
        assert!(!verify_zendesk_signature(
            b"Jefe",
            "what do ya ",
            b"want for nothing?",
            "%%%"
        ));
        assert!(!verify_zendesk_signature(
            b"Jefe",
            "what do ya ",
            b"want for nothing?",
            ""
        ));
    }

    #[test]
    fn round_trips() {
        let body = br#"{"id":1}"#;
        assert!(verify_github_signature("s", body, &sign_github("s", body)));
        // Secrets and bodies come as whatever the caller holds: String, Vec, slices.
        let (secret, owned_body) = (String::from("s"), body.to_vec());
        assert!(verify_github_signature(
            &secret,
            &owned_body,
            &sign_github(b"s", body)
        ));
        let ts = "2024-01-01T00:00:00Z";
        assert!(verify_zendesk_signature(
            b"s",
            ts,
            body,
            &sign_zendesk(b"s", ts, body)
        ));
    }
}

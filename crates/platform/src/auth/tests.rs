#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use super::*;
use crate::settings::Secret;

fn policy() -> TokenPolicy {
    TokenPolicy { issuer: "order-api".into(), audience: "orders".into(), ttl_seconds: 60 }
}

fn signing() -> SigningKey {
    SigningKey::from_pem(&generate_signing_key_pem()).unwrap_or_else(|e| panic!("{e}"))
}

fn gateway(key: SigningKey, also: Vec<VerifyingKey>) -> TokenKeys {
    TokenKeys::issuer(key, also, policy()).unwrap_or_else(|e| panic!("{e}"))
}

fn verifier_of(keys: &TokenKeys) -> TokenKeys {
    let json = serde_json::to_string(&keys.jwks()).unwrap();
    TokenKeys::verifier(parse_public_keys(&json).unwrap(), policy()).unwrap()
}

fn subject(role: Role) -> Subject<'static> {
    Subject { id: Uuid::nil(), email: "a@b.co", name: "A", role, session_version: 0 }
}

/// What the gateway forwards for `subject`: its user token verified, then re-signed internally.
fn internal(gateway: &TokenKeys, role: Role) -> String {
    let claims = gateway.verify(&gateway.issue(&subject(role)).unwrap()).unwrap();
    gateway.issue_internal(&claims).unwrap()
}

fn b64(value: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn issued_tokens_verify_at_a_service_holding_only_the_public_key() {
    let gateway = gateway(signing(), vec![]);
    let service = verifier_of(&gateway);
    let token = internal(&gateway, Role::Admin);
    let claims = service.verify(&token).map_err(|e| e.to_string());
    assert_eq!(
        claims.map(|c| (c.role, c.email, c.aud)),
        Ok((Role::Admin, "a@b.co".into(), "orders-internal".into()))
    );
    assert!(
        matches!(service.issue(&subject(Role::Admin)), Err(KeyError::CannotSign)),
        "a verifier cannot mint"
    );
}

#[test]
fn tampered_expired_and_foreign_tokens_are_refused() {
    let keys = gateway(signing(), vec![]);
    let token = keys.issue(&subject(Role::Customer)).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].replace('A', "B");
    assert!(keys.verify(&parts.join(".")).is_err(), "tampered payload");
    let expired = TokenKeys { ttl_seconds: -3600, ..keys.clone() }.issue(&subject(Role::Customer)).unwrap();
    assert!(keys.verify(&expired).is_err(), "expired");
    let other = gateway(signing(), vec![]);
    assert!(matches!(keys.verify(&other.issue(&subject(Role::Admin)).unwrap()), Err(TokenError::UnknownKey)));
}

#[test]
fn a_token_for_another_audience_or_issuer_is_refused() {
    let key = signing();
    let pem_keys = gateway(key.clone(), vec![]);
    for (issuer, audience) in [("order-api", "staging"), ("someone-else", "orders")] {
        let policy = TokenPolicy { issuer: issuer.into(), audience: audience.into(), ttl_seconds: 60 };
        let minted =
            TokenKeys::issuer(key.clone(), vec![], policy).unwrap().issue(&subject(Role::Admin)).unwrap();
        assert!(pem_keys.verify(&minted).is_err(), "{issuer} / {audience} accepted");
    }
}

#[test]
fn hs256_with_the_public_key_as_secret_and_unsigned_tokens_are_refused() {
    let keys = gateway(signing(), vec![]);
    let kid = keys.signing_kid().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({"sub": Uuid::nil(), "email": "x@y.z", "name": "X", "role": "admin",
        "iss": "order-api", "aud": "orders", "iat": now, "exp": now + 60});
    // Algorithm confusion: the public key bytes used as an HMAC secret.
    let jwks = serde_json::to_value(keys.jwks()).unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.clone());
    let confused =
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()))
            .unwrap();
    assert!(keys.verify(&confused).is_err(), "HS256 accepted");
    let unsigned = format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "kid": kid})), b64(&claims));
    assert!(keys.verify(&unsigned).is_err(), "alg none accepted");
}

#[test]
fn during_a_rollover_old_and_new_keys_verify_and_the_new_one_signs() {
    let (old, new) = (signing(), signing());
    let before = gateway(old.clone(), vec![]);
    let old_token = before.issue(&subject(Role::Customer)).unwrap();
    let new_public = VerifyingKey::from_jwk(new.public_jwk()).unwrap();
    let old_public = VerifyingKey::from_jwk(old.public_jwk()).unwrap();
    // Step 1: services learn the new key; step 2: the gateway signs with it, still accepting the old.
    let service = TokenKeys::verifier(vec![old_public.clone(), new_public], policy()).unwrap();
    let during = gateway(new.clone(), vec![old_public]);
    let new_token = during.issue(&subject(Role::Customer)).unwrap();
    assert_eq!(during.signing_kid(), Some(new.kid()));
    for token in [&old_token, &new_token] {
        assert!(during.verify(token).is_ok(), "gateway refused a rollover token");
    }
    let old_internal = before.issue_internal(&before.verify(&old_token).unwrap()).unwrap();
    for token in [&old_internal, &internal(&during, Role::Customer)] {
        assert!(service.verify(token).is_ok(), "service refused a rollover token");
    }
    assert_eq!(during.jwks().keys.len(), 2, "both keys are published");
    // Step 3: the old key is dropped once its tokens expired.
    let after = gateway(new, vec![]);
    assert!(after.verify(&old_token).is_err());
    assert!(after.verify(&new_token).is_ok());
}

#[test]
fn revoked_sessions_are_refused_and_newer_ones_accepted() {
    let keys = gateway(signing(), vec![]);
    let old = keys.issue(&subject(Role::Admin)).unwrap();
    keys.revocations().revoke(Uuid::nil(), 1);
    assert!(matches!(keys.verify(&old), Err(TokenError::Revoked)));
    let fresh = keys.issue(&Subject { session_version: 1, ..subject(Role::Customer) }).unwrap();
    assert!(keys.verify(&fresh).is_ok());
    // A refill from the store never lowers a revocation made here meanwhile.
    keys.revocations().replace(std::collections::HashMap::new());
    assert!(keys.verify(&old).is_ok(), "a refill replaces the map");
    keys.revocations().revoke(Uuid::nil(), 2);
    keys.revocations().replace([(Uuid::nil(), 1)].into());
    assert!(keys.verify(&fresh).is_err(), "the newer local revocation was lost");
}

#[test]
fn an_openssl_key_loads_and_public_key_sets_are_checked() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAVRVKQA6no/MJ7559NgOdZogs5fReb+uGYA1suzME1L\n-----END PRIVATE KEY-----\n";
    let key = SigningKey::from_pem(&Secret::new(pem)).unwrap();
    assert_eq!(key.kid().len(), 43, "a SHA-256 thumbprint");
    assert!(SigningKey::from_pem(&Secret::new("0123456789abcdef0123456789abcdef")).is_err());
    assert!(matches!(parse_public_keys(r#"{"keys":[]}"#), Err(KeyError::NoPublicKey)));
    assert!(parse_public_keys(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err(), "a shared secret");
    let mut jwk = key.public_jwk().clone();
    jwk.common.key_id = Some("made-up".into());
    assert!(VerifyingKey::from_jwk(&jwk).is_err(), "a kid that is not the thumbprint");
}

#[test]
fn settings_give_the_private_key_to_the_gateway_only() {
    let dir = std::env::temp_dir().join(format!("jwt-{}", Uuid::new_v4()));
    let dir = dir.to_str().unwrap();
    let local = |service: &str, signs: bool, signing_key: Option<&Secret>| {
        TokenKeys::from_settings(KeySettings {
            service,
            signs,
            signing_key,
            public_keys: None,
            key_dir: dir,
            policy: policy(),
        })
    };
    let inventory = local("inventory", false, None).unwrap();
    let gateway = local("order-api", true, None).unwrap();
    assert!(inventory.verify(&internal(&gateway, Role::Admin)).is_ok(), "services share the local key pair");
    let pem = generate_signing_key_pem();
    let refused = local("inventory", false, Some(&pem)).map(|_| ()).map_err(|e| e.to_string());
    assert_eq!(
        refused,
        Err("JWT_SIGNING_KEY is set on inventory, but only order-api signs tokens; give inventory JWT_PUBLIC_KEYS instead".into())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(format!("{dir}/signing.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the private key is readable by its owner only");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_key_pair_from_compose_env_sh_loads_with_matching_kid() {
    // Written by deploy/compose-env.sh with openssl (one line, newlines escaped).
    let pem = r"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIjHbIAk26S2cX/znpmoCXPBVQzdBeNYhRdNMvHiZR8d\n-----END PRIVATE KEY-----\n";
    let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"DozJ1wx8-RVJyDnz584YpjfclXzsoL5nmaloWoXsWYs","kid":"kGkFibXrQP4DfjkpICTfWJWzcTBvW1c-05f2IVgdlC8","use":"sig","alg":"EdDSA"}]}"#;
    let key = SigningKey::from_pem(&Secret::new(pem)).unwrap();
    let public = parse_public_keys(jwks).unwrap();
    assert_eq!(key.kid(), public[0].kid());
    let gateway = gateway(key, vec![]);
    let service = TokenKeys::verifier(public, policy()).unwrap();
    assert!(service.verify(&internal(&gateway, Role::Customer)).is_ok());
}

#[test]
fn users_tokens_are_for_the_gateway_and_internal_tokens_for_the_services_only() {
    let gateway = gateway(signing(), vec![]);
    let service = verifier_of(&gateway);
    assert_eq!((gateway.accepts(), service.accepts()), (Audience::User, Audience::Internal));
    let user = gateway.issue(&subject(Role::Admin)).unwrap();
    // A user's own token, sent straight to a service's port: refused for its audience.
    let refused = service.verify(&user).map_err(|e| e.to_string());
    assert!(refused.as_ref().is_err_and(|e| e.contains("InvalidAudience")), "{refused:?}");
    // What the gateway forwards: the same subject, role and session, for the internal audience.
    let claims = gateway.verify(&user).unwrap();
    let inside = service.verify(&gateway.issue_internal(&claims).unwrap()).unwrap();
    assert_eq!(
        (inside.sub, inside.role, inside.email.as_str(), inside.sv, inside.aud.as_str()),
        (claims.sub, Role::Admin, "a@b.co", claims.sv, "orders-internal")
    );
    assert!(inside.exp - inside.iat <= INTERNAL_TTL_SECONDS, "an internal token lives a minute at most");
    assert_eq!(inside.guest_order, None);
    // An internal token captured inside is refused by the gateway.
    let captured = gateway.issue_internal(&claims).unwrap();
    assert!(gateway.verify(&captured).is_err(), "the gateway took an internal token");
    // Another deployment's services (same key, audience `staging`) refuse it too.
    let json = serde_json::to_string(&gateway.jwks()).unwrap();
    let staging = TokenPolicy { audience: "staging".into(), ..policy() };
    let staging_service = TokenKeys::verifier(parse_public_keys(&json).unwrap(), staging).unwrap();
    assert!(staging_service.verify(&captured).is_err());
}

#[test]
fn a_revoked_session_gets_no_new_internal_token_and_old_ones_expire() {
    let gateway = gateway(signing(), vec![]);
    let service = verifier_of(&gateway);
    let user = gateway.issue(&subject(Role::Customer)).unwrap();
    let claims = gateway.verify(&user).unwrap();
    let minted = gateway.issue_internal(&claims).unwrap();
    gateway.revocations().revoke(Uuid::nil(), 1);
    // The gateway refuses the revoked token, so it signs nothing more for it ...
    assert!(matches!(gateway.verify(&user), Err(TokenError::Revoked)));
    // ... and what it signed before lives its short life out (past the 5 s leeway here).
    assert!(service.verify(&minted).is_ok());
    let short = TokenKeys { internal_ttl_seconds: -10, ..gateway.clone() };
    assert!(service.verify(&short.issue_internal(&claims).unwrap()).is_err(), "expired");
}

#[test]
fn a_guest_internal_token_names_its_order_and_no_account() {
    let gateway = gateway(signing(), vec![]);
    let service = verifier_of(&gateway);
    let order = Uuid::from_u128(7);
    let claims = service.verify(&gateway.issue_guest_internal(order).unwrap()).unwrap();
    assert_eq!((claims.sub, claims.role, claims.guest_order), (Uuid::nil(), Role::Customer, Some(order)));
    assert!(gateway.verify(&gateway.issue_guest_internal(order).unwrap()).is_err(), "not at the gateway");
    // A user token never carries the claim (and would not reach a service anyway).
    let user = gateway.verify(&gateway.issue(&subject(Role::Customer)).unwrap()).unwrap();
    assert_eq!(user.guest_order, None);
}

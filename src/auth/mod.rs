//! Who a caller is, from the `Authorization: Bearer <jwt>` header: the [`View`] it reads the
//! schema through, its `sub`, and the verified claims that `{{auth.*}}` templates read.
//!
//! The key decides the algorithm, never the token: HS256 only ever verifies against
//! `[auth] jwt_secret`, RS256 and ES256 only against keys of `[auth] jwks_url` of that type.
//! So an HS256 token "signed" with a public key as its secret finds no key to verify with,
//! and `alg: none` is refused before any key is looked at. This runs on every request:
//! nothing here may panic.

mod jwks;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

use crate::access::{Tier, View};
use crate::config::{AuthFile, check_jwt_secret};
use jwks::{Bounds, Jwks};

/// Longest token accepted: real ones are well under 2 KiB, and nothing longer is decoded.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A verified caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub view: View,
    pub sub: Option<String>,
    /// The verified claims, as `{{auth.*}}` reads them (`{}` for an anonymous caller).
    pub claims: Value,
    /// Who the rate budgets count: the token's `sub`, else the client's address (set when
    /// the server admits the request).
    pub client: Option<String>,
}

impl Caller {
    /// No token: the public view.
    pub fn anonymous() -> Caller {
        Caller {
            view: View::Public,
            sub: None,
            claims: Value::Object(Default::default()),
            client: None,
        }
    }
}

/// Why a token was refused: shown to the client after "invalid token: ", so it names the
/// failed check and never a key or secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed (send `Authorization: Bearer <jwt>`)")]
    Malformed,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf)")]
    NotYetValid,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("wrong audience (aud)")]
    WrongAudience,
    #[error("wrong issuer (iss)")]
    WrongIssuer,
    #[error("signed with an unknown key (kid)")]
    UnknownKey,
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    #[error("{0}")]
    BadClaims(&'static str),
    #[error("this gateway accepts no tokens: set [auth] jwt_secret or jwks_url")]
    NotConfigured,
}

/// Verifies bearer tokens against `[auth]`. Built once at startup; shared by every request.
pub struct Authenticator {
    secret: Option<DecodingKey>,
    jwks: Option<Jwks>,
    /// Leeway, issuer and audience; the algorithm is set per key.
    validation: Validation,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Authenticator")
            .field("jwt_secret", &self.secret.as_ref().map(|_| "set"))
            .field("jwks", &self.jwks)
            .finish()
    }
}

impl Authenticator {
    /// From `[auth]` (already `${env.X}`-expanded); `http` fetches the JWKS.
    pub fn new(cfg: &AuthFile, http: reqwest::Client) -> Result<Authenticator, String> {
        Self::with_bounds(cfg, http, Bounds::default())
    }

    fn with_bounds(
        cfg: &AuthFile,
        http: reqwest::Client,
        bounds: Bounds,
    ) -> Result<Authenticator, String> {
        let s = cfg.settings()?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = s.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(iss) = &s.issuer {
            // Only checked when present otherwise: a token without `iss` would pass.
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match &s.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            // jsonwebtoken refuses any `aud` when none is expected; a token meant for
            // several services is still fine here.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Authenticator {
            secret: s
                .jwt_secret
                .map(|secret| DecodingKey::from_secret(secret.as_bytes())),
            jwks: s.jwks_url.map(|url| Jwks::new(url, http, bounds)),
            validation,
        })
    }

    /// `None` header: anonymous. Otherwise the header must be `Bearer <jwt>`.
    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Caller, AuthError> {
        let Some(value) = authorization else {
            return Ok(Caller::anonymous());
        };
        if self.secret.is_none() && self.jwks.is_none() {
            return Err(AuthError::NotConfigured);
        }
        let token = bearer(value)?;
        let header = peek_header(token)?;
        let claims = match header.alg.as_str() {
            "HS256" => {
                let key = self.secret.as_ref().ok_or(AuthError::AlgorithmNotAllowed)?;
                self.verify(token, key, Algorithm::HS256)?
            }
            "RS256" | "ES256" => {
                let jwks = self.jwks.as_ref().ok_or(AuthError::AlgorithmNotAllowed)?;
                let kid = header.kid.as_deref().ok_or(AuthError::UnknownKey)?;
                let key = jwks.key(kid).await?;
                self.verify(token, &key.key, key.alg)?
            }
            _ => return Err(AuthError::AlgorithmNotAllowed),
        };
        caller(claims)
    }

    /// When `caller`'s token stops being accepted: its `exp` plus the leeway, as
    /// [`Self::authenticate`] judges it. `None` for a caller without a token.
    pub fn expires(&self, caller: &Caller) -> Option<SystemTime> {
        let exp = caller.claims.get("exp")?.as_u64()?;
        UNIX_EPOCH.checked_add(Duration::from_secs(
            exp.saturating_add(self.validation.leeway),
        ))
    }

    /// Signature, then `exp`, `nbf`, `iss` and `aud`; `alg` is the key's algorithm, which
    /// the token's header must name.
    fn verify(&self, token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Value, AuthError> {
        let mut validation = self.validation.clone();
        validation.algorithms = vec![alg];
        jsonwebtoken::decode::<Value>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| refusal(e.kind()))
    }
}

/// The token of a `Bearer` header (scheme case-insensitive, RFC 7235).
fn bearer(value: &HeaderValue) -> Result<&str, AuthError> {
    if value.len() > MAX_TOKEN_BYTES + "Bearer ".len() + 8 {
        return Err(AuthError::Malformed);
    }
    let text = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    let token = token.trim_start();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.len() > MAX_TOKEN_BYTES
        || token.contains(' ')
    {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// What a token says of itself before anything is verified: only used to pick the key.
#[derive(serde::Deserialize)]
struct PeekedHeader {
    alg: String,
    kid: Option<String>,
    /// Extensions the verifier must understand (RFC 7515 4.1.11); this one understands none.
    crit: Option<Value>,
}

fn peek_header(token: &str) -> Result<PeekedHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    let header: PeekedHeader = serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)?;
    if header.crit.is_some() {
        return Err(AuthError::Malformed);
    }
    Ok(header)
}

/// jsonwebtoken's verdict as the client reads it.
fn refusal(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(c) => match c.as_str() {
            "iss" => AuthError::WrongIssuer,
            "aud" => AuthError::WrongAudience,
            _ => AuthError::BadClaims("a token carries exp"),
        },
        ErrorKind::InvalidClaimFormat(_) => {
            AuthError::BadClaims("exp and nbf are numbers of seconds")
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm => AuthError::AlgorithmNotAllowed,
        _ => AuthError::Malformed,
    }
}

/// The caller verified claims describe: `tier` (missing: public), `opd`, `sub`.
fn caller(claims: Value) -> Result<Caller, AuthError> {
    let text = |name: &str, why: &'static str| match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AuthError::BadClaims(why)),
    };
    const TIERS: &str = "tier is public, internal or restricted";
    let tier = match text("tier", TIERS)? {
        None => Tier::Public,
        Some(t) => Tier::parse(&t).ok_or(AuthError::BadClaims(TIERS))?,
    };
    let opd = text("opd", "opd is a string")?;
    let sub = text("sub", "sub is a string")?;
    let view = match tier {
        Tier::Public => View::Public,
        Tier::Internal => View::Internal,
        Tier::Restricted => match opd {
            Some(opd) if !opd.trim().is_empty() => View::Restricted(Arc::from(opd)),
            _ => return Err(AuthError::BadClaims("a restricted token names its opd")),
        },
    };
    Ok(Caller {
        view,
        sub,
        claims,
        client: None,
    })
}

/// `simpul token`: an HS256 token for the given tier, valid from now for `ttl`.
pub fn mint(
    secret: &str,
    tier: Tier,
    opd: Option<&str>,
    sub: Option<&str>,
    ttl: Duration,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, String> {
    check_jwt_secret(secret)?;
    if ttl.as_secs() == 0 {
        return Err("the ttl is at least 1s".into());
    }
    // An empty value (an unset `${env.X:-}`, a blank flag) is no value.
    fn given(v: Option<&str>) -> Option<&str> {
        v.filter(|s| !s.trim().is_empty())
    }
    let opd = given(opd);
    if tier == Tier::Restricted && opd.is_none() {
        return Err("a restricted token names its opd (--opd)".into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970".to_string())?
        .as_secs();
    let mut claims = serde_json::Map::new();
    let tier = match tier {
        Tier::Public => "public",
        Tier::Internal => "internal",
        Tier::Restricted => "restricted",
    };
    claims.insert("tier".into(), tier.into());
    let optional = [
        ("opd", opd),
        ("sub", sub),
        ("iss", issuer),
        ("aud", audience),
    ];
    for (name, value) in optional {
        if let Some(v) = given(value) {
            claims.insert(name.into(), v.into());
        }
    }
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), now.saturating_add(ttl.as_secs()).into());
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| format!("cannot sign the token: {e}"))
}

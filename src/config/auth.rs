//! `[auth]` in simpul.toml: which bearer tokens the gateway accepts, and the checks on them
//! that need no key (see `crate::auth` for the verification itself).
//!
//! Without `jwt_secret` and `jwks_url` every caller is anonymous and any token is refused,
//! so a forgotten section never turns a token into access.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::duration;

/// The leeway when none is set: clocks of issuers and gateways drift by seconds, not minutes.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The most leeway accepted: beyond it `exp` would stop bounding a stolen token's life.
pub const MAX_LEEWAY: Duration = Duration::from_secs(3600);

/// HS256 is only as strong as its secret; RFC 7518 asks for a key as long as the hash.
pub const MIN_SECRET_BYTES: usize = 32;

/// `[auth]`: the bearer tokens accepted, HS256 with a shared secret or RS256/ES256 from a
/// JWKS; with neither every caller is anonymous. Every value may use `${env.X}` (expanded by
/// `load_gateway`).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// Shared secret of HS256 tokens (its UTF-8 bytes), e.g. `"${env.SIMPUL_JWT_SECRET}"`;
    /// at least 32 bytes. The secret `simpul token` signs with.
    pub jwt_secret: Option<String>,
    /// JWKS document of an identity provider: RS256 and ES256 tokens verify against its
    /// keys, by `kid`. `https://`, or `http://` on loopback only: a key fetched in clear
    /// text could be swapped on the way. `${env.X}` is expanded.
    pub jwks_url: Option<String>,
    /// When set, a token's `iss` must be present and equal to it (`${env.X}` expanded).
    pub issuer: Option<String>,
    /// When set, a token's `aud` must be present and name it (`${env.X}` expanded).
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`: a duration such as "60s" (the default) or
    /// "2m"; at most "1h".
    pub leeway: Option<String>,
    /// The bearer token a metrics scraper sends to read `GET /metrics`, e.g.
    /// `"${env.SIMPUL_METRICS_TOKEN}"`; at least 16 bytes. Unset: `/metrics` answers
    /// loopback callers only.
    pub metrics_token: Option<String>,
}

/// `[auth]`, checked: what the authenticator is built from.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub jwt_secret: Option<String>,
    pub jwks_url: Option<reqwest::Url>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Duration,
}

impl AuthFile {
    /// Checks every value; the first problem is the error, naming its key.
    pub fn settings(&self) -> Result<AuthSettings, String> {
        let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let jwt_secret = set(&self.jwt_secret);
        if let Some(secret) = &jwt_secret {
            check_jwt_secret(secret).map_err(|e| format!("auth.jwt_secret: {e}"))?;
        }
        let jwks_url = match set(&self.jwks_url) {
            Some(url) => Some(jwks_url(&url)?),
            None => None,
        };
        let leeway = match set(&self.leeway) {
            Some(text) => duration::parse(&text).map_err(|e| format!("auth.leeway: {e}"))?,
            None => DEFAULT_LEEWAY,
        };
        if let Some(token) = set(&self.metrics_token)
            && token.len() < 16
        {
            return Err(format!(
                "auth.metrics_token: the token is {} bytes; use at least 16 \
                 (e.g. `openssl rand -hex 24`)",
                token.len()
            ));
        }
        if leeway > MAX_LEEWAY {
            return Err(format!(
                "auth.leeway: {text} is more than 1h",
                text = self.leeway.as_deref().unwrap_or_default()
            ));
        }
        Ok(AuthSettings {
            jwt_secret,
            jwks_url,
            issuer: set(&self.issuer),
            audience: set(&self.audience),
            leeway,
        })
    }
}

/// The one rule on HS256 secrets, for the gateway and for `simpul token` alike.
pub fn check_jwt_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the secret is {} bytes; HS256 needs at least {MIN_SECRET_BYTES} \
             (e.g. `openssl rand -base64 48`)",
            secret.len()
        ));
    }
    Ok(())
}

fn jwks_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("auth.jwks_url: '{text}' is not a URL: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(format!(
            "auth.jwks_url: '{text}' is plain http; use https (http only on loopback)"
        )),
        other => Err(format!("auth.jwks_url: scheme '{other}' is not http(s)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(f: impl FnOnce(&mut AuthFile)) -> AuthFile {
        let mut a = AuthFile::default();
        f(&mut a);
        a
    }

    #[test]
    fn defaults_and_checks() {
        let s = AuthFile::default().settings().unwrap();
        assert!(s.jwt_secret.is_none() && s.jwks_url.is_none());
        assert_eq!(s.leeway, DEFAULT_LEEWAY);
        let short = file(|a| a.jwt_secret = Some("short".into()));
        assert!(short.settings().unwrap_err().contains("at least 32"));
        let empty = file(|a| a.jwt_secret = Some(String::new()));
        assert!(empty.settings().unwrap().jwt_secret.is_none());
        let clear = file(|a| a.jwks_url = Some("http://idp.example/jwks".into()));
        assert!(clear.settings().unwrap_err().contains("plain http"));
        let local = file(|a| a.jwks_url = Some("http://127.0.0.1:9/jwks".into()));
        assert!(local.settings().is_ok());
        let long = file(|a| a.leeway = Some("2h".into()));
        assert!(long.settings().unwrap_err().contains("more than 1h"));
        let bad = file(|a| a.leeway = Some("soon".into()));
        assert!(bad.settings().unwrap_err().starts_with("auth.leeway:"));
    }
}

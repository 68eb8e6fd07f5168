//! `[security]` in simpul.toml: what the public endpoint lets browsers, anonymous clients and
//! staff do (CORS, CSRF prevention, introspection and suggestions per tier, persisted
//! operations and the PUBLIC safelist, rate limits per tier). Enforced by `crate::server`.

use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::access::Tier;

/// `[security]`, as written: CORS, CSRF prevention, introspection and suggestions per tier,
/// persisted operations, the PUBLIC safelist and rate limits.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityFile {
    /// Browser origins (`https://apps.example.id`) allowed to call `/graphql` from their pages;
    /// `["*"]` allows every origin. Empty (the default): only pages the gateway serves itself.
    pub cors_origins: Vec<String>,
    /// Refuse requests a browser would send cross-site without a preflight (GETs, and POSTs
    /// of forms and text) unless they carry a header that forces one (default true).
    pub csrf_prevention: bool,
    /// Tiers (`public`, `internal`, `restricted`) whose callers may run `__schema`/`__type`
    /// (default: all three).
    pub introspection: Vec<String>,
    /// Tiers whose callers get "Did you mean …?" in validation errors (default: all three).
    pub suggestions: Vec<String>,
    /// Automatic persisted queries (`extensions.persistedQuery`, sha256); default true.
    pub apq: bool,
    /// A folder of `*.graphql` operations: PUBLIC callers run only these, by id (the file
    /// name without `.graphql`, or the sha256 of its text) or by their exact text. Relative
    /// to the deployment.
    pub safelist: Option<String>,
    /// Behind a reverse proxy: the header it sets to the client's address (e.g.
    /// `x-forwarded-for`; its last entry is used). Unset: the peer address of the connection.
    pub client_ip_header: Option<String>,
    /// `[security.rate_limits]`: requests per client and tier.
    #[serde(default)]
    pub rate_limits: RateLimitsFile,
}

impl Default for SecurityFile {
    fn default() -> Self {
        SecurityFile {
            cors_origins: Vec::new(),
            csrf_prevention: true,
            introspection: vec!["public".into(), "internal".into(), "restricted".into()],
            suggestions: vec!["public".into(), "internal".into(), "restricted".into()],
            apq: true,
            safelist: None,
            client_ip_header: None,
            rate_limits: RateLimitsFile::default(),
        }
    }
}

/// `[security.rate_limits]`: requests per client (token `sub`, else address) and tier, as
/// `"100/s"`, `"3000/m"`, `"50000/h"`, or `"off"`. A client may spend the whole budget at
/// once; it then comes back at the budget's pace.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsFile {
    /// Budget of each anonymous client, e.g. "100/s" (the default), "3000/m" or "off".
    pub public: String,
    /// Budget of each INTERNAL token, e.g. "1000/s" (the default) or "off".
    pub internal: String,
    /// Budget of each RESTRICTED token, e.g. "1000/s" (the default) or "off".
    pub restricted: String,
    /// Budget of `@outbox` writes (a citizen's complaint) of each anonymous client, spent
    /// besides its request budget: "20/h" (the default), or "off".
    pub public_writes: String,
}

impl Default for RateLimitsFile {
    fn default() -> Self {
        RateLimitsFile {
            public: "100/s".into(),
            internal: "1000/s".into(),
            restricted: "1000/s".into(),
            public_writes: "20/h".into(),
        }
    }
}

/// A budget: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

/// `[security]`, checked.
#[derive(Debug, Clone)]
pub struct Security {
    /// Allowed origins, each checked to be `scheme://host[:port]`; `["*"]` for any.
    pub cors_origins: Vec<String>,
    pub csrf_prevention: bool,
    pub introspection: Vec<Tier>,
    pub suggestions: Vec<Tier>,
    pub apq: bool,
    /// The safelist's operations: (id, text), read at startup.
    pub safelist: Option<Vec<(String, String)>>,
    /// Lower-case header name.
    pub client_ip_header: Option<String>,
    /// Budget per tier (PUBLIC, INTERNAL, RESTRICTED); `None` is unlimited.
    pub rates: [Option<Rate>; 3],
    /// Budget of `@outbox` writes per PUBLIC client; `None` is unlimited.
    pub public_writes: Option<Rate>,
}

impl Default for Security {
    fn default() -> Self {
        // The defaults of the file model are valid: checking them cannot fail.
        SecurityFile::default()
            .check(Path::new("."))
            .unwrap_or_else(|_| Security {
                cors_origins: Vec::new(),
                csrf_prevention: true,
                introspection: vec![Tier::Public, Tier::Internal, Tier::Restricted],
                suggestions: vec![Tier::Public, Tier::Internal, Tier::Restricted],
                apq: true,
                safelist: None,
                client_ip_header: None,
                rates: [None; 3],
                public_writes: None,
            })
    }
}

impl Security {
    pub fn rate(&self, tier: Tier) -> Option<Rate> {
        self.rates.get(tier.index()).copied().flatten()
    }
}

impl SecurityFile {
    /// Checks every value; each problem is one message naming its key. `dir` is the
    /// deployment the safelist folder is relative to.
    pub fn check(&self, dir: &Path) -> Result<Security, Vec<String>> {
        let mut problems = Vec::new();
        for origin in &self.cors_origins {
            if let Err(e) = check_origin(origin) {
                problems.push(format!("security.cors_origins: {e}"));
            }
        }
        let mut tiers = |key: &str, names: &[String]| -> Vec<Tier> {
            names
                .iter()
                .filter_map(|n| {
                    let t = Tier::parse(n);
                    if t.is_none() {
                        problems.push(format!(
                            "security.{key}: unknown tier '{n}' (use public, internal, restricted)"
                        ));
                    }
                    t
                })
                .collect()
        };
        let introspection = tiers("introspection", &self.introspection);
        let suggestions = tiers("suggestions", &self.suggestions);
        let mut rates = [None; 3];
        for (slot, (key, text)) in rates.iter_mut().zip([
            ("public", &self.rate_limits.public),
            ("internal", &self.rate_limits.internal),
            ("restricted", &self.rate_limits.restricted),
        ]) {
            match parse_rate(text) {
                Ok(r) => *slot = r,
                Err(e) => problems.push(format!("security.rate_limits.{key}: {e}")),
            }
        }
        let public_writes = parse_rate(&self.rate_limits.public_writes).unwrap_or_else(|e| {
            problems.push(format!("security.rate_limits.public_writes: {e}"));
            None
        });
        let client_ip_header = self
            .client_ip_header
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_ascii_lowercase);
        if let Some(h) = &client_ip_header
            && axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()
        {
            problems.push(format!(
                "security.client_ip_header: '{h}' is not a header name"
            ));
        }
        let safelist = match &self.safelist {
            Some(folder) => match read_safelist(&dir.join(folder)) {
                Ok(ops) => Some(ops),
                Err(e) => {
                    problems.push(format!("security.safelist: {e}"));
                    None
                }
            },
            None => None,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Security {
            cors_origins: self.cors_origins.clone(),
            csrf_prevention: self.csrf_prevention,
            introspection,
            suggestions,
            apq: self.apq,
            safelist,
            client_ip_header,
            rates,
            public_writes,
        })
    }
}

/// `"*"` or `scheme://host[:port]`, as browsers send in `Origin` (no path, no slash).
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!(
            "'{origin}' is not an origin like https://apps.example.id"
        ));
    };
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return Err(format!(
            "'{origin}' is not an origin like https://apps.example.id (scheme and host, no path)"
        ));
    }
    axum::http::HeaderValue::from_str(origin)
        .map(|_| ())
        .map_err(|_| format!("'{origin}' has characters an origin cannot have"))
}

/// `"100/s"`, `"3000/m"`, `"50000/h"`, or `"off"`.
pub fn parse_rate(text: &str) -> Result<Option<Rate>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let usage = || format!("'{text}' is not a rate like \"100/s\", \"3000/m\" or \"off\"");
    let (count, unit) = t.split_once('/').ok_or_else(usage)?;
    let count: u32 = count.trim().parse().map_err(|_| usage())?;
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(usage()),
    };
    if count == 0 {
        return Err(format!(
            "'{text}' allows nothing; write \"off\" for no limit"
        ));
    }
    Ok(Some(Rate { count, per }))
}

/// The operations of a safelist folder: every `*.graphql` file, by its name without the
/// extension. Files are read whole; each must be non-empty.
fn read_safelist(folder: &Path) -> Result<Vec<(String, String)>, String> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| format!("cannot read folder {}: {e}", folder.display()))?;
    let mut ops = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("graphql") {
            continue;
        }
        let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if text.trim().is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        ops.push((id.to_string(), text));
    }
    if ops.is_empty() {
        return Err(format!(
            "folder {} holds no *.graphql operation: PUBLIC callers could run nothing",
            folder.display()
        ));
    }
    ops.sort();
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_refuse_nonsense() {
        assert_eq!(
            parse_rate("100/s"),
            Ok(Some(Rate {
                count: 100,
                per: Duration::from_secs(1)
            }))
        );
        assert_eq!(parse_rate(" off "), Ok(None));
        assert!(parse_rate("3000/m").is_ok_and(|r| r.is_some_and(|r| r.per.as_secs() == 60)));
        for bad in ["100", "0/s", "ten/s", "100/d", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_value_is_named() {
        let file = SecurityFile {
            cors_origins: vec!["apps.example.id".into(), "https://ok.example.id".into()],
            introspection: vec!["public".into(), "staff".into()],
            client_ip_header: Some("x forwarded".into()),
            safelist: Some("no-such-folder".into()),
            rate_limits: RateLimitsFile {
                public: "many".into(),
                ..RateLimitsFile::default()
            },
            ..SecurityFile::default()
        };
        let problems = file.check(Path::new(".")).err().unwrap_or_default();
        let all = problems.join("\n");
        for key in [
            "security.cors_origins: 'apps.example.id'",
            "security.introspection: unknown tier 'staff'",
            "security.client_ip_header",
            "security.safelist",
            "security.rate_limits.public",
        ] {
            assert!(all.contains(key), "{key} not in {all}");
        }
        assert_eq!(problems.len(), 5, "{all}");
    }

    #[test]
    fn defaults_are_valid_and_limit_public_callers() {
        let s = Security::default();
        assert!(s.csrf_prevention && s.apq && s.safelist.is_none());
        assert_eq!(s.rate(Tier::Public).map(|r| r.count), Some(100));
        assert_eq!(s.introspection.len(), 3);
    }
}

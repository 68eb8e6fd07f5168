//! `rules/*.toml`: one early-warning rule per file, read and compiled at startup. Every
//! problem is a diagnostic at FILE:LINE:COL, like the rest of the deployment.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::access::Access;
use crate::config::duration;
use crate::config::env::{self, EnvLookup};
use crate::diagnostic::{Diagnostic, line_col};

/// A rule file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    title: String,
    severity: Spanned<String>,
    opd: String,
    #[serde(default = "internal")]
    tier: Spanned<String>,
    interval: Spanned<String>,
    query: Spanned<String>,
    items: Spanned<String>,
    region: Option<Spanned<String>>,
    region_name: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    when: Spanned<String>,
    #[serde(default)]
    values: std::collections::BTreeMap<String, Spanned<String>>,
    message: Spanned<String>,
    recommendation: Spanned<String>,
    #[serde(default)]
    webhooks: Vec<WebhookFile>,
}

fn internal() -> Spanned<String> {
    Spanned::new(0..0, "INTERNAL".to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    url: String,
    secret: Option<String>,
}

/// A compiled rule: what the evaluator and `Query.rules` read.
pub struct Rule {
    pub id: String,
    /// `rules/<id>.toml`, for messages.
    pub file: String,
    pub title: String,
    pub severity: String,
    pub opd: String,
    /// Who reads its alerts: `PUBLIC`, `INTERNAL` or `RESTRICTED` (the owning OPD's).
    pub tier: String,
    pub interval: Duration,
    pub query: String,
    /// Where the query starts in the file, to place its validation errors.
    pub query_at: (usize, usize),
    pub items: Vec<String>,
    pub items_at: (usize, usize),
    pub region: Option<Vec<String>>,
    pub region_name: Option<Vec<String>>,
    pub key: Option<Vec<String>>,
    /// Where `region`, `region_name` and `key` are written, for messages.
    pub paths_at: [(usize, usize); 3],
    pub when: Arc<cel::Program>,
    pub values: Vec<(String, Arc<cel::Program>)>,
    pub message: Text,
    pub recommendation: Text,
    /// `(url, secret)`: the secret is read from the environment, never from the file.
    pub webhooks: Vec<(String, Option<String>)>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("id", &self.id).finish()
    }
}

impl Rule {
    /// What the view needs to read this rule's alerts.
    pub fn access(&self) -> Access {
        access_of(&self.tier, &self.opd)
    }
}

/// The access of an alert of tier `tier` owned by `opd`.
pub fn access_of(tier: &str, opd: &str) -> Access {
    match tier {
        "PUBLIC" => Access::Public,
        "RESTRICTED" => Access::Restricted(opd.into()),
        _ => Access::Internal,
    }
}

/// A message template: literal text and `{{item.a.b}}` / `{{values.x}}` placeholders.
#[derive(Debug, Clone)]
pub struct Text(pub Vec<Piece>);

#[derive(Debug, Clone)]
pub enum Piece {
    Lit(String),
    Item(Vec<String>),
    Value(String),
}

const SEVERITIES: [&str; 3] = ["INFO", "WARNING", "CRITICAL"];
const TIERS: [&str; 3] = ["PUBLIC", "INTERNAL", "RESTRICTED"];

/// Reads every `rules/*.toml` of `dir`.
pub fn load(dir: &Path, env: EnvLookup, diags: &mut Vec<Diagnostic>) -> Vec<Arc<Rule>> {
    let paths = crate::config::toml_files(&dir.join("rules"));
    let mut out = Vec::new();
    for path in paths {
        let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let file = format!("rules/{id}.toml");
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            diags.push(
                Diagnostic::new(&file, 1, 1, format!("rule id '{id}' is not a slug"))
                    .hint("name rule files with lowercase letters, digits and '-', e.g. poverty-rising.toml"),
            );
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::new(&file, 1, 1, format!("cannot read: {e}")));
                continue;
            }
        };
        diags.extend(env::check_file(&file, &text, env));
        let Some(parsed) = crate::config::parse_toml::<RuleFile>(&file, &text, diags) else {
            continue;
        };
        if let Some(rule) = compile(id, &file, &text, parsed, env, diags) {
            out.push(Arc::new(rule));
        }
    }
    out
}

fn compile(
    id: &str,
    file: &str,
    text: &str,
    f: RuleFile,
    env: EnvLookup,
    diags: &mut Vec<Diagnostic>,
) -> Option<Rule> {
    let before = diags.len();
    let at = |s: &std::ops::Range<usize>| line_col(text, s.start);
    let mut problem = |span: &std::ops::Range<usize>, message: String, hint: &str| {
        let (l, c) = at(span);
        let mut d = Diagnostic::new(file, l, c, message);
        if !hint.is_empty() {
            d = d.hint(hint);
        }
        diags.push(d);
    };
    if !SEVERITIES.contains(&f.severity.get_ref().as_str()) {
        problem(
            &f.severity.span(),
            format!("severity '{}' is unknown", f.severity.get_ref()),
            "use INFO, WARNING or CRITICAL",
        );
    }
    if !TIERS.contains(&f.tier.get_ref().as_str()) {
        problem(
            &f.tier.span(),
            format!("tier '{}' is unknown", f.tier.get_ref()),
            "use PUBLIC, INTERNAL or RESTRICTED",
        );
    }
    let interval = match duration::parse(f.interval.get_ref()) {
        Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(86_400) => d,
        Ok(_) => {
            problem(
                &f.interval.span(),
                format!("interval '{}' is out of range", f.interval.get_ref()),
                "evaluate between every 1s and every 1d",
            );
            Duration::from_secs(60)
        }
        Err(e) => {
            problem(&f.interval.span(), format!("interval: {e}"), "");
            Duration::from_secs(60)
        }
    };
    let items = path(f.items.get_ref());
    if items.is_empty() {
        problem(
            &f.items.span(),
            "items is empty".into(),
            "name the list the condition checks, e.g. \"districts\"",
        );
    }
    let mut program = |src: &Spanned<String>, what: &str| -> Option<Arc<cel::Program>> {
        match cel::Program::compile(src.get_ref()) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                let reason = e
                    .errors
                    .first()
                    .map_or_else(|| e.to_string(), |e| e.msg.clone());
                problem(
                    &src.span(),
                    format!("{what} is not a valid CEL expression: {reason}"),
                    "CEL reads `item` (one item of `items`), `values` and `now`, e.g. item.rate > 14.0",
                );
                None
            }
        }
    };
    let when = program(&f.when, "when");
    let mut values = Vec::new();
    for (name, src) in &f.values {
        if let Some(p) = program(src, &format!("values.{name}")) {
            values.push((name.clone(), p));
        }
    }
    let names: Vec<&str> = f.values.keys().map(String::as_str).collect();
    let message = template(&f.message, &names, "message", file, text, diags);
    let recommendation = template(
        &f.recommendation,
        &names,
        "recommendation",
        file,
        text,
        diags,
    );
    let mut webhooks = Vec::new();
    for w in &f.webhooks {
        let url = env::expand(&w.url, env).unwrap_or_default();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            diags.push(
                Diagnostic::new(file, 1, 1, format!("webhook url '{url}' is not http(s)"))
                    .hint("webhooks are POSTed to an http:// or https:// URL"),
            );
        }
        let secret = w
            .secret
            .as_deref()
            .and_then(|s| env::expand(s, env).ok())
            .filter(|s| !s.is_empty());
        webhooks.push((url, secret));
    }
    if diags.len() > before {
        return None;
    }
    Some(Rule {
        id: id.to_string(),
        file: file.to_string(),
        title: f.title,
        severity: f.severity.into_inner(),
        opd: f.opd,
        tier: f.tier.into_inner(),
        interval,
        query_at: query_start(text, &f.query.span()),
        query: f.query.into_inner(),
        items_at: at(&f.items.span()),
        items,
        paths_at: [&f.region, &f.region_name, &f.key]
            .map(|p| p.as_ref().map_or((1, 1), |p| at(&p.span()))),
        region: f.region.as_ref().map(|p| path(p.get_ref())),
        region_name: f.region_name.as_ref().map(|p| path(p.get_ref())),
        key: f.key.as_ref().map(|p| path(p.get_ref())),
        when: when?,
        values,
        message: message?,
        recommendation: recommendation?,
        webhooks,
    })
}

/// Where the query's text begins: after its opening quotes (and the newline a `"""` string
/// drops), so a validation error's line and column land on the file's own text.
fn query_start(text: &str, span: &std::ops::Range<usize>) -> (usize, usize) {
    let raw = text.get(span.clone()).unwrap_or_default();
    let mut skip = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else {
        1
    };
    if raw.get(skip..).is_some_and(|r| r.starts_with('\n')) {
        skip += 1;
    }
    line_col(text, span.start + skip)
}

fn path(p: &str) -> Vec<String> {
    p.split('.')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses `{{item.a}}` / `{{values.x}}` placeholders; anything else is a diagnostic.
fn template(
    src: &Spanned<String>,
    values: &[&str],
    what: &str,
    file: &str,
    text: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Text> {
    let mut pieces = Vec::new();
    let mut rest = src.get_ref().as_str();
    let (l, c) = line_col(text, src.span().start);
    let mut bad = |m: String| {
        diags.push(
            Diagnostic::new(file, l, c, format!("{what}: {m}"))
                .hint("placeholders are {{item.field}} and {{values.name}}"),
        );
    };
    let mut ok = true;
    while let Some(start) = rest.find("{{") {
        pieces.push(Piece::Lit(
            rest.get(..start).unwrap_or_default().to_string(),
        ));
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find("}}") else {
            bad("'{{' is not closed".into());
            return None;
        };
        let inner = after.get(..end).unwrap_or_default().trim();
        match inner.split_once('.') {
            Some(("item", p)) if !p.is_empty() => pieces.push(Piece::Item(path(p))),
            Some(("values", name)) if values.contains(&name) => {
                pieces.push(Piece::Value(name.to_string()))
            }
            Some(("values", name)) => {
                bad(format!("values.{name} is not defined in [values]"));
                ok = false;
            }
            _ => {
                bad(format!("unknown placeholder {{{{{inner}}}}}"));
                ok = false;
            }
        }
        rest = after.get(end + 2..).unwrap_or_default();
    }
    pieces.push(Piece::Lit(rest.to_string()));
    ok.then_some(Text(pieces))
}

//! `connectors/*.toml`: each file read, checked and expanded into a [`ConnectorConfig`].

use super::*;

/// Reads every `connectors/*.toml` in `dir`, sorted by name.
pub fn load_connectors(
    dir: &Path,
    env: EnvLookup,
    diags: &mut Vec<Diagnostic>,
) -> Vec<ConnectorConfig> {
    let paths = toml_files(&dir.join("connectors"));
    let mut out = Vec::new();
    for path in paths {
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let file = format!("connectors/{name}.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::new(&file, 1, 1, format!("cannot read: {e}")));
                continue;
            }
        };
        if let Some(mut c) = load_connector(&name, &file, &text, env, diags) {
            // A stored remote schema is named relative to the deployment.
            if let ConnectorKind::Graphql {
                schema: Some(path), ..
            } = &mut c.kind
            {
                *path = dir.join(&*path).display().to_string();
            }
            out.push(c);
        }
    }
    out
}

/// Parses one connector file's text.
pub fn load_connector(
    name: &str,
    file: &str,
    text: &str,
    env: EnvLookup,
    diags: &mut Vec<Diagnostic>,
) -> Option<ConnectorConfig> {
    let before = diags.len();
    diags.extend(env::check_file(file, text, env));
    let raw: ConnectorFile = parse_toml(file, text, diags)?;
    let expand = |s: &str| env::expand(s, env).unwrap_or_default();
    let at_table = |table: &str| {
        let offset = text.find(&format!("[{table}]")).unwrap_or(0);
        line_col(text, offset)
    };
    let mut kinds = Vec::new();
    let db_url = |kind: &str, raw_url: &str, diags: &mut Vec<Diagnostic>| {
        // An unset variable is already reported by `env::check_file`.
        let Ok(url) = env::expand(raw_url, env) else {
            return String::new();
        };
        if let Err(problem) = database_url(kind, &url) {
            let table = text.find(&format!("[{kind}]")).unwrap_or(0);
            let (l, c) = line_col(text, table + text[table..].find("url").unwrap_or(0));
            let from = if raw_url.contains("${env.") {
                format!(" (from {raw_url})")
            } else {
                String::new()
            };
            diags.push(
                Diagnostic::new(file, l, c, format!("[{kind}] url{from} {problem}")).hint(
                    match kind {
                        "postgres" => "write url = \"postgres://USER:PASSWORD@HOST:5432/DATABASE\" (see docs/connecting.md)",
                        _ => "write url = \"mysql://USER:PASSWORD@HOST:3306/DATABASE\" (see docs/connecting.md)",
                    },
                ),
            );
        }
        url
    };
    if let Some(pg) = &raw.postgres {
        kinds.push(ConnectorKind::Postgres {
            url: db_url("postgres", &pg.url, diags),
            max_connections: pg.max_connections.unwrap_or(8),
        });
    }
    if let Some(my) = &raw.mysql {
        kinds.push(ConnectorKind::Mysql {
            url: db_url("mysql", &my.url, diags),
            max_connections: my.max_connections.unwrap_or(8),
        });
    }
    if let Some(lite) = &raw.sqlite {
        kinds.push(ConnectorKind::Sqlite {
            path: expand(&lite.path),
            seed: lite.seed.as_deref().map(expand),
            max_connections: lite.max_connections.unwrap_or(4),
        });
    }
    if let Some(http) = &raw.http {
        let format = match http.format.as_deref() {
            None | Some("json") => HttpFormat::Json,
            Some("bps-webapi") => HttpFormat::BpsWebApi,
            Some(other) => {
                let (l, c) = at_table("http");
                diags.push(
                    Diagnostic::new(file, l, c, format!("unknown http format '{other}'"))
                        .hint("use format = \"json\" or format = \"bps-webapi\""),
                );
                HttpFormat::Json
            }
        };
        let base_url = expand(&http.base_url);
        if !["http://", "https://", "file:"]
            .iter()
            .any(|p| base_url.starts_with(p))
            && !http.base_url.contains("${env.")
        {
            let (l, c) = line_col(text, text.find("base_url").unwrap_or(0));
            diags.push(
                Diagnostic::new(
                    file,
                    l,
                    c,
                    format!("base_url '{base_url}' is not an http(s) URL"),
                )
                .hint("write base_url = \"https://host/prefix\", or file:DIR for JSON snapshots"),
            );
        }
        kinds.push(ConnectorKind::Http {
            base_url,
            headers: http
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), expand(v)))
                .collect(),
            format,
        });
    }
    if let Some(f) = &raw.file {
        let mut problem = |key: &str, message: String, hint: &str| {
            let (l, c) = line_col(text, text.find(key).unwrap_or(0));
            diags.push(Diagnostic::new(file, l, c, message).hint(hint));
        };
        let delimiter = f.delimiter.as_deref().and_then(|d| match d.as_bytes() {
            [b] if !matches!(b, b'"' | b'\n' | b'\r') => Some(*b),
            _ => {
                problem(
                    "delimiter",
                    format!("[file] delimiter {d:?} is not one character"),
                    "write delimiter = \";\", \",\", \"|\" or \"\\t\" (a tab)",
                );
                None
            }
        });
        let decimal = f.decimal.as_deref().and_then(|d| match d {
            "." => Some(DecimalMark::Point),
            "," => Some(DecimalMark::Comma),
            _ => {
                problem(
                    "decimal",
                    format!("[file] decimal {d:?} is neither \".\" nor \",\""),
                    "write decimal = \",\" for numbers written 12,5 (1.234,5)",
                );
                None
            }
        });
        kinds.push(ConnectorKind::File {
            path: expand(&f.path),
            csv: CsvFormat { delimiter, decimal },
        });
    }
    if let Some(g) = &raw.graphql {
        let url = expand(&g.url);
        if !(url.starts_with("http://") || url.starts_with("https://") || g.url.contains("${env."))
        {
            let (l, c) = at_table("graphql");
            diags.push(
                Diagnostic::new(
                    file,
                    l,
                    c,
                    format!("[graphql] url '{url}' is not an http(s) URL"),
                )
                .hint("write url = \"https://host/graphql\""),
            );
        }
        kinds.push(ConnectorKind::Graphql {
            url,
            headers: g
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), expand(v)))
                .collect(),
            schema: g.schema.as_deref().map(expand),
        });
    }
    let mut cache = CachePolicy::default();
    if let Some(c) = &raw.cache {
        let (l, col) = at_table("cache");
        let mut parse =
            |key: &str, value: &Option<String>| match value.as_deref().map(duration::parse) {
                None => Duration::ZERO,
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    diags.push(Diagnostic::new(file, l, col, format!("cache.{key}: {e}")));
                    Duration::ZERO
                }
            };
        cache = CachePolicy {
            ttl: parse("ttl", &c.ttl),
            stale_while_revalidate: parse("stale_while_revalidate", &c.stale_while_revalidate),
            stale_if_error: parse("stale_if_error", &c.stale_if_error),
        };
    }
    let timeout = match raw.timeout.as_deref().map(duration::parse) {
        None => Duration::from_secs(5),
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            let (l, c) = line_col(text, text.find("timeout").unwrap_or(0));
            diags.push(Diagnostic::new(file, l, c, format!("timeout: {e}")));
            Duration::from_secs(5)
        }
    };
    let circuit_open = match raw.circuit_open.as_deref().map(duration::parse) {
        None => Duration::from_secs(10),
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            let (l, c) = line_col(text, text.find("circuit_open").unwrap_or(0));
            diags.push(Diagnostic::new(file, l, c, format!("circuit_open: {e}")));
            Duration::from_secs(10)
        }
    };
    let max_response_bytes = match raw.max_response_bytes.as_deref().map(parse_size) {
        None => DEFAULT_MAX_RESPONSE_BYTES,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            let (l, c) = line_col(text, text.find("max_response_bytes").unwrap_or(0));
            diags.push(Diagnostic::new(
                file,
                l,
                c,
                format!("max_response_bytes: {e}"),
            ));
            DEFAULT_MAX_RESPONSE_BYTES
        }
    };
    if kinds.len() != 1 {
        diags.push(
            Diagnostic::new(
                file,
                1,
                1,
                format!(
                    "a connector file holds exactly one kind table, found {}",
                    kinds.len()
                ),
            )
            .hint("add one of [postgres] [mysql] [sqlite] [http] [file] [graphql]"),
        );
    }
    // Env and value problems are already reported; keep the connector so that bindings
    // naming it are not also reported as naming an unknown connector.
    let _ = before;
    if kinds.len() != 1 {
        return None;
    }
    Some(ConnectorConfig {
        name: name.to_string(),
        file: file.to_string(),
        title: raw.title.unwrap_or_else(|| name.to_string()),
        opd: raw.opd.unwrap_or_default(),
        timeout,
        max_concurrency: raw.max_concurrency.unwrap_or(32).max(1),
        retries: raw.retries.unwrap_or(2),
        circuit_failures: raw.circuit_failures.unwrap_or(5).max(1),
        circuit_open,
        max_response_bytes,
        kind: kinds.pop()?,
        cache,
    })
}

/// Why `url` cannot name a `kind` database, in words a new integrator reads.
fn database_url(kind: &str, url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("is empty".into());
    }
    let (scheme_name, schemes): (&str, &[&str]) = match kind {
        "postgres" => ("postgres", &["postgres", "postgresql"]),
        _ => ("mysql", &["mysql", "mariadb"]),
    };
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(format!(
            "'{}' is not a URL: it needs {scheme_name}://",
            redact(url)
        ));
    };
    if !schemes.contains(&scheme) {
        return Err(format!(
            "starts with {scheme}://, a [{kind}] url starts with {}://",
            schemes.join(":// or ")
        ));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("'{}' is not a valid URL: {e}", redact(url)))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("names no host".into());
    }
    if parsed.path().trim_matches('/').is_empty() {
        return Err("names no database (the path after the host and port)".into());
    }
    Ok(())
}

/// A URL with its password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The `*.toml` files of `folder`, sorted; none when it does not exist.
pub fn toml_files(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(folder)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str, env: EnvLookup) -> Vec<String> {
        let mut diags = Vec::new();
        load_connector("db", "connectors/db.toml", text, env, &mut diags);
        diags.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn an_empty_or_malformed_url_variable_is_named_at_its_line() {
        let text = "title = \"x\"\n[postgres]\nurl = \"${env.DB_URL}\"\n";
        let empty = problems(text, &|_| Some(String::new()));
        assert_eq!(
            empty.first().map(|p| p.lines().next().unwrap_or_default()),
            Some("connectors/db.toml:3:1: [postgres] url (from ${env.DB_URL}) is empty"),
            "{empty:?}"
        );
        let wrong = problems(text, &|_| Some("mysql://u:pw@h:3306/d".into()));
        assert!(
            wrong[0].contains(
                "starts with mysql://, a [postgres] url starts with postgres:// or postgresql://"
            ),
            "{wrong:?}"
        );
        let garbage = problems(text, &|_| Some("postgres://u:hunter2@[::1/d".into()));
        assert!(garbage[0].contains("is not a valid URL"), "{garbage:?}");
        assert!(
            !garbage[0].contains("hunter2"),
            "the password stays out: {garbage:?}"
        );
        let good = problems(text, &|_| {
            Some("postgres://u:pw@127.0.0.1:5432/test".into())
        });
        assert!(good.is_empty(), "{good:?}");
        // An unset variable is reported once, by the environment check.
        let unset = problems(text, &|_| None);
        assert_eq!(unset.len(), 1, "{unset:?}");
    }
}

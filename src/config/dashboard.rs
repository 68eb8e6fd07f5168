//! `[dashboard]` in simpul.toml: the deployment's own web page. Its folder is read whole at
//! startup (bounded in files and bytes) and served from memory at `/` and `/ui/<path>`;
//! its `operations/*.graphql` are the persisted operations the page sends by `documentId`.

use std::collections::HashMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

/// Files a dashboard folder may hold.
pub const MAX_FILES: usize = 1_000;
/// Bytes a dashboard folder may hold, all files together.
pub const MAX_BYTES: u64 = 32 << 20;
/// Folders below the dashboard folder that are read.
const MAX_DEPTH: usize = 8;

/// `[dashboard]`, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardFile {
    /// The page's folder, relative to the deployment (default "dashboard", when it exists):
    /// `index.html` is served at `/`, every file at `/ui/<path>`, and `operations/*.graphql`
    /// are persisted operations any caller may run by `documentId` (the file name without
    /// `.graphql`).
    pub dir: Option<String>,
    /// `false` serves no page even when the folder exists (default true).
    pub enabled: Option<bool>,
}

/// A file of the page, in memory.
#[derive(Debug)]
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: bytes::Bytes,
    /// Strong validator: the sha256 of the bytes, quoted.
    pub etag: String,
}

/// One persisted operation of the page: `operations/<id>.graphql`.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub text: String,
    /// The file, relative to the deployment, for diagnostics.
    pub file: String,
}

/// The page of a deployment, read at startup.
#[derive(Debug, Default)]
pub struct Dashboard {
    /// By path relative to the folder, with `/` separators (`index.html`, `vendor/x.js`).
    pub files: HashMap<String, Asset>,
    pub operations: Vec<Operation>,
}

impl DashboardFile {
    /// The page of the deployment at `dir`: `None` when it has none (or it is switched
    /// off); every problem is one message naming its key or file.
    pub fn load(&self, dir: &Path) -> Result<Option<Dashboard>, Vec<String>> {
        if self.enabled == Some(false) {
            return Ok(None);
        }
        let folder = self.dir.as_deref().unwrap_or("dashboard");
        let root = dir.join(folder);
        if !root.is_dir() {
            return match &self.dir {
                Some(_) => Err(vec![format!(
                    "dashboard.dir: {} is not a folder",
                    root.display()
                )]),
                None => Ok(None),
            };
        }
        let mut reader = Reader {
            dashboard: Dashboard::default(),
            bytes: 0,
            problems: Vec::new(),
            folder: folder.trim_end_matches('/').to_string(),
        };
        reader.walk(&root, "", 0);
        let Reader {
            mut dashboard,
            mut problems,
            ..
        } = reader;
        if !dashboard.files.contains_key("index.html") {
            problems.push(format!("dashboard: {} has no index.html", root.display()));
        }
        dashboard.operations.sort_by(|a, b| a.id.cmp(&b.id));
        if problems.is_empty() {
            Ok(Some(dashboard))
        } else {
            Err(problems)
        }
    }
}

struct Reader {
    dashboard: Dashboard,
    bytes: u64,
    problems: Vec<String>,
    /// The folder as written, for the operations' file names.
    folder: String,
}

impl Reader {
    fn walk(&mut self, path: &Path, prefix: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.problems.push(format!(
                "dashboard: {} is nested deeper than {MAX_DEPTH} folders",
                path.display()
            ));
            return;
        }
        let entries = match std::fs::read_dir(path) {
            Ok(e) => e,
            Err(e) => {
                self.problems
                    .push(format!("dashboard: cannot read {}: {e}", path.display()));
                return;
            }
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // Hidden files (editor swap files, .DS_Store) are never served.
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let rel = format!("{prefix}{name}");
            if path.is_dir() {
                self.walk(&path, &format!("{rel}/"), depth + 1);
                continue;
            }
            if self.dashboard.files.len() >= MAX_FILES {
                self.problems.push(format!(
                    "dashboard: more than {MAX_FILES} files in the folder"
                ));
                return;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    self.problems
                        .push(format!("dashboard: cannot read {}: {e}", path.display()));
                    continue;
                }
            };
            self.bytes += bytes.len() as u64;
            if self.bytes > MAX_BYTES {
                self.problems.push(format!(
                    "dashboard: the folder holds more than {} MiB",
                    MAX_BYTES >> 20
                ));
                return;
            }
            if let Some(id) = rel
                .strip_prefix("operations/")
                .and_then(|r| r.strip_suffix(".graphql"))
            {
                match String::from_utf8(bytes) {
                    Ok(text) if !text.trim().is_empty() => {
                        self.dashboard.operations.push(Operation {
                            id: id.to_string(),
                            text,
                            file: format!("{}/{rel}", self.folder),
                        });
                    }
                    _ => self.problems.push(format!(
                        "dashboard: {} is empty or not UTF-8",
                        path.display()
                    )),
                }
                continue;
            }
            let etag = format!("\"{}\"", crate::digest::sha256_hex(&bytes));
            self.dashboard.files.insert(
                rel,
                Asset {
                    content_type: content_type(&name),
                    bytes: bytes.into(),
                    etag,
                },
            );
        }
    }
}

/// The media type of a file by its extension; unknown ones are served as bytes.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let p = dir.path().join("dashboard").join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    #[test]
    fn a_folder_is_read_into_files_and_operations() {
        let dir = folder(&[
            ("index.html", "<!doctype html>"),
            ("ui.js", "export {}"),
            ("vendor/chart.js", "x"),
            (".swp", "hidden"),
            ("operations/overview.graphql", "query Overview { a }"),
        ]);
        let d = DashboardFile::default()
            .load(dir.path())
            .expect("loads")
            .expect("a page");
        let mut paths: Vec<_> = d.files.keys().cloned().collect();
        paths.sort();
        assert_eq!(paths, ["index.html", "ui.js", "vendor/chart.js"]);
        assert_eq!(
            d.files["ui.js"].content_type,
            "text/javascript; charset=utf-8"
        );
        assert_eq!(d.operations.len(), 1);
        assert_eq!(d.operations[0].id, "overview");
        assert_eq!(
            d.operations[0].file,
            "dashboard/operations/overview.graphql"
        );
    }

    #[test]
    fn no_folder_is_no_page_unless_one_was_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            DashboardFile::default()
                .load(dir.path())
                .expect("ok")
                .is_none()
        );
        let named = DashboardFile {
            dir: Some("site".into()),
            enabled: None,
        };
        let problems = named
            .load(dir.path())
            .expect_err("a named folder must exist");
        assert!(problems[0].starts_with("dashboard.dir:"), "{problems:?}");
    }

    #[test]
    fn a_page_needs_an_index_and_operations_need_text() {
        let dir = folder(&[("app.js", "x"), ("operations/empty.graphql", "  ")]);
        let problems = DashboardFile::default()
            .load(dir.path())
            .expect_err("refused");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("no index.html")));
        assert!(problems.iter().any(|p| p.contains("empty.graphql")));
    }

    #[test]
    fn switched_off_serves_nothing() {
        let dir = folder(&[("index.html", "x")]);
        let off = DashboardFile {
            dir: None,
            enabled: Some(false),
        };
        assert!(off.load(dir.path()).expect("ok").is_none());
    }
}

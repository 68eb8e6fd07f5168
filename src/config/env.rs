//! `${env.NAME}` and `${env.NAME:-default}` expansion in configuration strings.
//!
//! Secrets reach the gateway only this way; a missing variable is a diagnostic that names
//! the file, the line and the variable, never a silent empty string.

use crate::diagnostic::{Diagnostic, line_col};

/// Looks up an environment variable; tests pass their own.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Expands every `${env.…}` in `value`. Returns the name of the first unset variable
/// without a default as the error.
pub fn expand(value: &str, env: EnvLookup) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${env.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 6..];
        let Some(end) = after.find('}') else {
            // Not a reference: keep the text as written.
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reports every `${env.NAME}` without a default whose variable is unset, at its place in
/// the raw file text (comment lines are skipped).
pub fn check_file(file: &str, text: &str, env: EnvLookup) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if !line.trim_start().starts_with('#') {
            let mut from = 0;
            while let Some(pos) = line[from..].find("${env.") {
                let at = from + pos;
                let after = &line[at + 6..];
                let Some(end) = after.find('}') else { break };
                let inner = &after[..end];
                let name = inner.split_once(":-").map_or(inner, |(n, _)| n);
                let has_default = inner.contains(":-");
                if !has_default && env(name).is_none() {
                    let (l, c) = line_col(text, offset + at);
                    diags.push(
                        Diagnostic::new(
                            file,
                            l,
                            c,
                            format!("environment variable {name} is not set"),
                        )
                        .hint(format!(
                            "export {name}=..., or give a default: ${{env.{name}:-value}}"
                        )),
                    );
                }
                from = at + 6 + end + 1;
            }
        }
        offset += line.len();
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "value".to_string())
    }

    #[test]
    fn expands_set_unset_and_default() {
        assert_eq!(expand("a${env.SET}b", &env).unwrap(), "avalueb");
        assert_eq!(expand("${env.UNSET:-x:y}", &env).unwrap(), "x:y");
        assert_eq!(expand("${env.SET:-x}", &env).unwrap(), "value");
        assert_eq!(expand("${env.UNSET}", &env).unwrap_err(), "UNSET");
        assert_eq!(expand("no refs", &env).unwrap(), "no refs");
    }

    #[test]
    fn reports_unset_variable_position() {
        let text = "# ${env.IGNORED}\n[http]\nbase_url = \"${env.MISSING}\"\n";
        let diags = check_file("c.toml", text, &env);
        assert_eq!(diags.len(), 1);
        assert_eq!((diags[0].line, diags[0].col), (3, 13));
        assert!(diags[0].message.contains("MISSING"));
    }
}

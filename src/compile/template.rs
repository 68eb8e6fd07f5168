//! Parsing placeholder templates (the model is `blueprint::template`).
//!
//! A template is parsed once at startup into literal text and placeholders; the request
//! path only substitutes values, and each connector decides how a value is inserted (a bound
//! SQL parameter, a URL-encoded segment, an escaped JSON string).

pub use crate::blueprint::template::{Placeholder, Scope, Segment, Template};

/// A template syntax problem at a byte offset.
#[derive(Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
    pub hint: &'static str,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = text;
        let mut base = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError {
                offset: base + start,
                message: "unclosed placeholder: '{{' without '}}'".into(),
                hint: "write placeholders as {{args.name}}, {{parent.column}} or {{auth.claim}}",
            })?;
            let inner = after[..end].trim();
            let (scope, path) = inner.split_once('.').unwrap_or((inner, ""));
            let scope = match scope {
                "args" => Scope::Args,
                "parent" => Scope::Parent,
                "auth" => Scope::Auth,
                "outbox" => Scope::Outbox,
                "view" => Scope::View,
                other => {
                    return Err(TemplateError {
                        offset: base + start,
                        message: format!(
                            "unknown placeholder '{{{{{inner}}}}}': '{other}' is not args, parent, auth, view or outbox"
                        ),
                        hint: "the only placeholders are {{args.X}}, {{parent.X}}, {{auth.X}}, {{view.tier}} and, in an @outbox write, {{outbox.id}} and {{outbox.acceptedAt}}",
                    });
                }
            };
            let path: Vec<String> = path.split('.').map(str::to_string).collect();
            if path
                .iter()
                .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
            {
                return Err(TemplateError {
                    offset: base + start,
                    message: format!("malformed placeholder '{{{{{inner}}}}}'"),
                    hint: "name a field after the scope, e.g. {{args.code}} or {{parent.user_id}}",
                });
            }
            segments.push(Segment::Var(Placeholder {
                scope,
                path,
                offset: base + start,
            }));
            let consumed = start + 2 + end + 2;
            base += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Template { segments })
    }

    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(p) => Some(p),
            Segment::Text(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_placeholders() {
        let t = Template::parse(
            "SELECT * FROM r WHERE code = {{ args.code }} AND p IN ({{parent.a.b}})",
        )
        .unwrap();
        let vars: Vec<_> = t
            .placeholders()
            .map(|p| (p.scope, p.path.join(".")))
            .collect();
        assert_eq!(
            vars,
            vec![(Scope::Args, "code".into()), (Scope::Parent, "a.b".into())]
        );
        assert_eq!(t.segments.len(), 5);
    }

    #[test]
    fn rejects_unknown_scope_and_unclosed() {
        assert!(
            Template::parse("{{env.X}}")
                .unwrap_err()
                .message
                .contains("unknown placeholder")
        );
        assert_eq!(Template::parse("ab {{args.x").unwrap_err().offset, 3);
        assert!(Template::parse("{{args.}}").is_err());
    }
}

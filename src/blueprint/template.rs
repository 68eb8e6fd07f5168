//! Placeholder templates: `{{args.X}}`, `{{parent.X}}`, `{{auth.X}}` inside SQL, paths,
//! query values, headers and bodies. Parsed once at startup (`compile::template`); the
//! request path only substitutes values, and each connector decides how a value is
//! inserted (a bound SQL parameter, a URL-encoded segment, an escaped JSON string).

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Args,
    Parent,
    Auth,
    /// `{{outbox.id}}`, `{{outbox.acceptedAt}}`: the outbox row a delivery is for.
    Outbox,
    /// `{{view.tier}}`: the tier of the view the caller reads through (PUBLIC, INTERNAL,
    /// RESTRICTED), for a source's projection per audience. Part of the call, so of its
    /// cache key: calls stay shared between callers of one tier.
    View,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Args => "args",
            Scope::Parent => "parent",
            Scope::Auth => "auth",
            Scope::Outbox => "outbox",
            Scope::View => "view",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Placeholder {
    pub scope: Scope,
    /// Dotted path after the scope: `{{parent.address.city}}` -> ["address", "city"].
    pub path: Vec<String>,
    /// Byte offset of `{{` in the template text (for diagnostics).
    pub offset: usize,
}

impl Placeholder {
    pub fn display(&self) -> String {
        format!("{{{{{}.{}}}}}", self.scope.as_str(), self.path.join("."))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Var(Placeholder),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<Segment>,
}

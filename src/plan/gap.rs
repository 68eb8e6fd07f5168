//! Why an operation that validated cannot be planned: the client's fault or the executor's.

/// Why an operation that validated cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// The client's: an argument its input type refuses (a string over its `@length`, which
    /// validation does not know): BAD_REQUEST.
    Refused(String),
    /// The executor's: something it does not do, or a schema that changed under a
    /// validated document: INTERNAL.
    Missing(String),
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gap::Refused(m) | Gap::Missing(m) => f.write_str(m),
        }
    }
}

impl From<String> for Gap {
    fn from(m: String) -> Gap {
        Gap::Missing(m)
    }
}

impl From<&str> for Gap {
    fn from(m: &str) -> Gap {
        Gap::Missing(m.to_string())
    }
}

impl From<Gap> for String {
    fn from(g: Gap) -> String {
        g.to_string()
    }
}

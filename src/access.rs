//! Who may read what: the access a type or field is marked with (`@access(tier:)`), and the
//! view a caller reads the schema through. Every access decision is [`View::reads`].

use std::fmt;
use std::sync::Arc;

/// The tier a token claims (`tier`: `public`, `internal`, `restricted`) or `@access` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Tier {
    /// The least a caller reads: what an unset tier means.
    #[default]
    Public,
    Internal,
    Restricted,
}

impl Tier {
    /// Its name as `@access(tier:)` and `{{view.tier}}` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Public => "PUBLIC",
            Tier::Internal => "INTERNAL",
            Tier::Restricted => "RESTRICTED",
        }
    }

    /// Its place in per-tier tables: PUBLIC, INTERNAL, RESTRICTED.
    pub fn index(self) -> usize {
        match self {
            Tier::Public => 0,
            Tier::Internal => 1,
            Tier::Restricted => 2,
        }
    }

    /// From a token's `tier` claim (lower case) or `@access(tier:)` (upper case).
    pub fn parse(s: &str) -> Option<Tier> {
        match s.to_ascii_lowercase().as_str() {
            "public" => Some(Tier::Public),
            "internal" => Some(Tier::Internal),
            "restricted" => Some(Tier::Restricted),
            _ => None,
        }
    }
}

/// What reading a type or field takes: nothing, a staff token, or a token of the OPD that
/// owns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Access {
    #[default]
    Public,
    Internal,
    /// The OPD (a connector's `opd`) whose staff alone may read it.
    Restricted(Arc<str>),
}

/// The schema a caller reads through: one per tier, and one RESTRICTED view per OPD that
/// owns restricted fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum View {
    Public,
    Internal,
    Restricted(Arc<str>),
}

impl View {
    /// Whether a caller of this view may read what `access` guards.
    pub fn reads(&self, access: &Access) -> bool {
        match (self, access) {
            (_, Access::Public) => true,
            (View::Public, _) => false,
            (View::Internal | View::Restricted(_), Access::Internal) => true,
            (View::Restricted(mine), Access::Restricted(owner)) => mine == owner,
            (View::Internal, Access::Restricted(_)) => false,
        }
    }

    /// The tier of the callers who read through this view.
    pub fn tier(&self) -> Tier {
        match self {
            View::Public => Tier::Public,
            View::Internal => Tier::Internal,
            View::Restricted(_) => Tier::Restricted,
        }
    }

    /// `@suppress(below:)` hides small counts from callers below INTERNAL only.
    pub fn suppresses(&self) -> bool {
        matches!(self, View::Public)
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            View::Public => f.write_str("PUBLIC"),
            View::Internal => f.write_str("INTERNAL"),
            View::Restricted(opd) => write!(f, "RESTRICTED:{opd}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_view_reads_its_tier_and_those_below() {
        let dinsos: Arc<str> = "dinsos".into();
        let dinkes: Arc<str> = "dinkes".into();
        let all = [
            Access::Public,
            Access::Internal,
            Access::Restricted(dinsos.clone()),
            Access::Restricted(dinkes.clone()),
        ];
        let reads = |v: View| all.iter().map(|a| v.reads(a)).collect::<Vec<_>>();
        assert_eq!(reads(View::Public), [true, false, false, false]);
        assert_eq!(reads(View::Internal), [true, true, false, false]);
        assert_eq!(reads(View::Restricted(dinsos)), [true, true, true, false]);
        assert_eq!(reads(View::Restricted(dinkes)), [true, true, false, true]);
        assert!(View::Public.suppresses());
        assert!(!View::Internal.suppresses());
    }
}

//! The estimated cost of an operation, known before anything is fetched: every field counts
//! one for each value it may produce, and a list multiplies what its items select by the
//! number of items it may hold: its `first`, `last`, `limit`, `top` or `take` argument when
//! it has one (a constant or a variable), else its `@listSize(max:)`, else `[limits]
//! default_list_size`. Refused over
//! `[limits] max_cost`; reported in `extensions.cost` when the client asks.

use async_graphql_value::Value as GqlValue;
use serde_json::{Map, Value};

use super::Selection;

/// The arguments that bound the length of a list.
pub(super) const SIZE_ARGUMENTS: [&str; 5] = ["first", "last", "limit", "top", "take"];

/// How many values a field may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Size {
    One,
    Items(u64),
    /// The value of a variable, or `default` when the request does not set it.
    Variable {
        name: String,
        default: u64,
    },
}

impl Size {
    /// A list field's size from its (constant) arguments and those that read variables.
    pub(super) fn of_list<'a>(
        constant: Option<&Map<String, Value>>,
        variable: impl IntoIterator<Item = (&'a str, &'a GqlValue)>,
        default: u64,
    ) -> Size {
        for name in SIZE_ARGUMENTS {
            if let Some(n) = constant.and_then(|a| a.get(name)).and_then(Value::as_u64) {
                return Size::Items(n);
            }
        }
        for (arg, value) in variable {
            if SIZE_ARGUMENTS.contains(&arg)
                && let GqlValue::Variable(v) = value
            {
                return Size::Variable {
                    name: v.to_string(),
                    default,
                };
            }
        }
        Size::Items(default)
    }

    fn get(&self, vars: &Map<String, Value>) -> u64 {
        match self {
            Size::One => 1,
            Size::Items(n) => *n,
            Size::Variable { name, default } => {
                vars.get(name).and_then(Value::as_u64).unwrap_or(*default)
            }
        }
    }
}

/// The cost of `sel` (saturating: a cost past `u64::MAX` is refused like any other).
pub(super) fn of(sel: &Selection, vars: &Map<String, Value>) -> u64 {
    sel.fields.iter().fold(0u64, |total, f| {
        let each = f
            .kind
            .children()
            .map_or(0, |c| of(c, vars))
            .saturating_add(1);
        total.saturating_add(f.size.get(vars).saturating_mul(each))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql_value::Name;

    #[test]
    fn a_size_argument_bounds_a_list_else_the_default() {
        let constant = serde_json::json!({ "limit": 7, "q": 3 });
        assert_eq!(Size::of_list(constant.as_object(), [], 20), Size::Items(7));
        assert_eq!(Size::of_list(None, [], 20), Size::Items(20));
        let var = GqlValue::Variable(Name::new("n"));
        let size = Size::of_list(None, [("first", &var)], 20);
        let vars = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(size.get(&vars(serde_json::json!({ "n": 3 }))), 3);
        assert_eq!(size.get(&vars(serde_json::json!({}))), 20);
        // An argument that does not size the list is not read.
        assert_eq!(Size::of_list(None, [("month", &var)], 20), Size::Items(20));
    }
}

//! The scan that runs before the parser: tokens (names, punctuators, values; not comments,
//! commas or white space) and how deep braces, brackets and parentheses nest, each stopped
//! at its limit, so the scan's cost is bounded by the limits rather than by the text.

use super::{Refused, over};
use crate::blueprint::settings::Limits;

/// Counts tokens and bracket nesting without parsing, stopping at the first limit passed,
/// so that its cost is bounded by the limits rather than by the text.
pub fn scan(query: &str, limits: &Limits) -> Result<(), Refused> {
    let max_nesting = limits.max_nesting();
    let b = query.as_bytes();
    let mut i = 0;
    let mut tokens = 0usize;
    let mut nesting = 0usize;
    while let Some(&c) = b.get(i) {
        i += 1;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => continue,
            b'#' => {
                while b.get(i).is_some_and(|&c| c != b'\n' && c != b'\r') {
                    i += 1;
                }
                continue;
            }
            b'"' if b.get(i..i + 2) == Some(b"\"\"") => i = block_string_end(b, i + 2),
            b'"' => i = string_end(b, i),
            b'{' | b'[' | b'(' => {
                nesting += 1;
                if nesting > max_nesting {
                    return Err(over(
                        "max_depth",
                        limits.max_depth,
                        format!(
                            "braces, brackets and parentheses nest more than {max_nesting} deep"
                        ),
                    ));
                }
            }
            b'}' | b']' | b')' => nesting = nesting.saturating_sub(1),
            b'.' if b.get(i..i + 2) == Some(b"..") => i += 2,
            b'-' | b'0'..=b'9' => i = number_end(b, i),
            c if c == b'_' || c.is_ascii_alphabetic() => {
                while b
                    .get(i)
                    .is_some_and(|&c| c == b'_' || c.is_ascii_alphanumeric())
                {
                    i += 1;
                }
            }
            // Other punctuators, and bytes the parser will refuse: one token each.
            _ => {}
        }
        tokens += 1;
        if tokens > limits.max_tokens {
            return Err(over(
                "max_tokens",
                limits.max_tokens,
                format!("the document has more than {} tokens", limits.max_tokens),
            ));
        }
    }
    Ok(())
}

/// `query` without the text of its comments (from `#` to the end of the line): the parser
/// reads a comment a character at a time (40 ms for 1 MB), while this copies around them.
/// Every token keeps its line and column, since nothing follows a comment on its line.
pub fn without_comments(query: &str) -> std::borrow::Cow<'_, str> {
    if !query.contains('#') {
        return std::borrow::Cow::Borrowed(query);
    }
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let (mut i, mut kept) = (0, 0);
    while let Some(&c) = b.get(i) {
        i += 1;
        match c {
            b'"' if b.get(i..i + 2) == Some(b"\"\"") => i = block_string_end(b, i + 2),
            b'"' => i = string_end(b, i),
            b'#' => {
                out.push_str(query.get(kept..i - 1).unwrap_or_default());
                while b.get(i).is_some_and(|&c| c != b'\n' && c != b'\r') {
                    i += 1;
                }
                kept = i;
            }
            _ => {}
        }
    }
    out.push_str(query.get(kept..).unwrap_or_default());
    std::borrow::Cow::Owned(out)
}

/// Just past the closing quote of a string opened before `i` (or the end of its line).
fn string_end(b: &[u8], mut i: usize) -> usize {
    loop {
        match b.get(i) {
            None | Some(b'\n' | b'\r') => return i,
            Some(b'\\') => i += 2,
            Some(b'"') => return i + 1,
            Some(_) => i += 1,
        }
    }
}

/// Just past the `"""` closing a block string opened before `i`.
fn block_string_end(b: &[u8], mut i: usize) -> usize {
    loop {
        match b.get(i) {
            None => return i,
            Some(b'\\') if b.get(i + 1..i + 4) == Some(b"\"\"\"") => i += 4,
            Some(b'"') if b.get(i..i + 3) == Some(b"\"\"\"") => return i + 3,
            Some(_) => i += 1,
        }
    }
}

/// Just past a number whose first character is before `i`: digits, a fraction, an exponent.
fn number_end(b: &[u8], mut i: usize) -> usize {
    let digits = |i: &mut usize| {
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
    };
    digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        digits(&mut i);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        digits(&mut i);
    }
    i
}

#[cfg(test)]
// A test fails by panicking.
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::server::limits::tests::defaults;

    #[test]
    fn comments_go_and_everything_else_keeps_its_place() {
        let q = "{ a # one\n  b(s: \"# not\", t: \"\"\"x # \\\"\"\" y\"\"\") #two\r\n c }#";
        let stripped = without_comments(q);
        assert_eq!(
            stripped,
            "{ a \n  b(s: \"# not\", t: \"\"\"x # \\\"\"\" y\"\"\") \r\n c }"
        );
        // Same lines and columns for every token.
        let parsed = async_graphql_parser::parse_query(&*stripped).map(|_| ());
        assert!(parsed.is_ok(), "{parsed:?}");
        let bad = "# comment\n{ a(x: ) }";
        let (e1, e2) = (
            async_graphql_parser::parse_query(bad)
                .err()
                .map(|e| e.positions().collect::<Vec<_>>()),
            async_graphql_parser::parse_query(&*without_comments(bad))
                .err()
                .map(|e| e.positions().collect::<Vec<_>>()),
        );
        assert!(e1.is_some());
        assert_eq!(e1, e2);
        assert!(matches!(
            without_comments("{ a }"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_scan_counts_tokens_and_nesting_before_any_parse() {
        let l = defaults();
        let scanned = |q: &str| match scan(q, &l) {
            Ok(()) => None,
            Err(Refused::Over { limit, .. }) => Some(limit),
            Err(e) => panic!("{e}"),
        };
        // The fewest max_tokens that let `q` through: its token count.
        let count = |q: &str| {
            (0..100)
                .find(|&max_tokens| {
                    let limits = Limits {
                        max_tokens,
                        ..l.clone()
                    };
                    scan(q, &limits).is_ok()
                })
                .unwrap_or_default()
        };
        assert_eq!(count("{ a } # { { { x y z"), 3, "a comment is none");
        assert_eq!(count(r#"{ "a { \" b" }"#), 3, "a string is one");
        assert_eq!(
            count(r#"{ """ a { \""" b " c """ }"#),
            3,
            "so is a block string"
        );
        assert_eq!(count("{ -1.5e+3 }"), 3, "and a number");
        assert_eq!(count(",,,{ ...F }"), 4, "commas are none, `...` is one");
        assert_eq!(count("{...F}"), 4);
        assert_eq!(count("{ ...F"), 3);
        assert_eq!(
            count("query Q($v: [Int!] = [1, 2]) @d { a(x: $v) }"),
            27,
            "every punctuator is one"
        );
        let nested = |n: usize| format!("{}{}", "{ a ".repeat(n), "}".repeat(n));
        assert_eq!(scanned(&nested(l.max_nesting())), None);
        assert_eq!(scanned(&nested(l.max_nesting() + 1)), Some("max_depth"));
        assert_eq!(scanned(&"[".repeat(100_000)), Some("max_depth"));
        assert_eq!(scanned(&"a ".repeat(l.max_tokens)), None);
        assert_eq!(scanned(&"a ".repeat(l.max_tokens + 1)), Some("max_tokens"));
        // Braces in strings and comments do not nest.
        let quoted = format!("{{ a(s: \"{}\") }} # {}", "{".repeat(200), "{".repeat(200));
        assert_eq!(scanned(&quoted), None);
    }
}

//! The whole-response cache (`[cache] response`, on by default): an anonymous operation whose
//! bindings all have a cache policy and read no `{{auth.*}}` is replayed, keyed by its text
//! (whitespace-normalized), name and variables. It is transparent: a replay is what running
//! the operation again would answer from the same cached entries. So a response is kept
//! only until the first entry it was built from stops being fresh, never when one was stale
//! or failed, and it is dropped by any cache invalidation (here or from another instance)
//! and by any reload of a file source after it was built.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A response's `data`, serialized, and the sources it came from.
pub struct Stored {
    pub data: bytes::Bytes,
    pub uses: Vec<(usize, SystemTime)>,
    /// Built from synthetic rows: its replays say so too.
    pub demo: bool,
    ttl: Duration,
    /// What the data it was built from was, when it was built (see [`Validity`]).
    validity: Validity,
}

/// The state of everything a response could have been built from: the cache's invalidation
/// count and the sum of the file sources' generations (each only grows). Taken before an
/// operation runs; a response is replayed only while it is unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Validity {
    pub epoch: u64,
    pub generations: u64,
}

struct Expiry;

impl moka::Expiry<Arc<str>, Arc<Stored>> for Expiry {
    fn expire_after_create(
        &self,
        _k: &Arc<str>,
        v: &Arc<Stored>,
        _at: Instant,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

pub struct ResponseCache {
    inner: moka::sync::Cache<Arc<str>, Arc<Stored>>,
}

impl ResponseCache {
    pub fn new(max_bytes: u64) -> ResponseCache {
        let inner = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &Arc<str>, v: &Arc<Stored>| {
                u32::try_from(k.len() + v.data.len() + 64).unwrap_or(u32::MAX)
            })
            .expire_after(Expiry)
            .build();
        ResponseCache { inner }
    }

    /// The exact text (whitespace inside a string literal is part of the value), the
    /// operation, the variables and the caller's view.
    pub fn key(
        view: &crate::access::View,
        query: &str,
        operation: Option<&str>,
        variables: Option<&serde_json::Value>,
    ) -> Arc<str> {
        use std::fmt::Write;
        let mut k = String::with_capacity(query.len() + 48);
        let _ = write!(k, "{view}\u{1f}");
        normalized(query, &mut k);
        k.push('\u{1f}');
        k.push_str(operation.unwrap_or(""));
        k.push('\u{1f}');
        if let Some(v) = variables {
            k.push_str(&v.to_string());
        }
        k.into()
    }

    /// The stored response, if it is still what the operation would answer now.
    pub fn get(&self, key: &Arc<str>, now: Validity) -> Option<Arc<Stored>> {
        let hit = self.inner.get(key)?;
        if hit.validity != now {
            self.inner.invalidate(key);
            return None;
        }
        Some(hit)
    }

    pub fn insert(
        &self,
        key: Arc<str>,
        data: bytes::Bytes,
        uses: Vec<(usize, SystemTime)>,
        demo: bool,
        ttl: Duration,
        validity: Validity,
    ) {
        self.inner.insert(
            key,
            Arc::new(Stored {
                data,
                uses,
                demo,
                ttl,
                validity,
            }),
        );
    }
}

/// `query` with each run of whitespace outside string literals written as one space, so
/// reformatting a document does not miss the cache, while `"a  b"` and `"a b"` stay
/// different values.
fn normalized(query: &str, out: &mut String) {
    let mut chars = query.trim().chars().peekable();
    let mut in_string = false;
    let mut block = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' if !block => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' if !block => in_string = false,
                '"' if block && chars.peek() == Some(&'"') => {
                    let mut rest = chars.clone();
                    rest.next();
                    if rest.peek() == Some(&'"') {
                        out.push_str("\"\"");
                        chars.next();
                        chars.next();
                        in_string = false;
                    }
                }
                _ => {}
            }
            continue;
        }
        if c.is_whitespace() {
            while chars.peek().is_some_and(|n| n.is_whitespace()) {
                chars.next();
            }
            out.push(' ');
            continue;
        }
        out.push(c);
        if c == '"' {
            in_string = true;
            block = false;
            let mut rest = chars.clone();
            if rest.next() == Some('"') && rest.next() == Some('"') {
                out.push_str("\"\"");
                chars.next();
                chars.next();
                block = true;
            } else if chars.peek() == Some(&'"') {
                // The empty string.
                out.push('"');
                chars.next();
                in_string = false;
            }
        }
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn whitespace_is_normalized_outside_strings_only() {
        let key = |q: &str| ResponseCache::key(&crate::access::View::Public, q, None, None);
        assert_eq!(key("{  posts {\n id } }"), key("{ posts { id } }"));
        assert_ne!(key(r#"{ a(x: "a  b") }"#), key(r#"{ a(x: "a b") }"#));
        assert_ne!(key(r#"{ a(x: "\"  b") }"#), key(r#"{ a(x: "\" b") }"#));
        assert_ne!(
            key("{ a(x: \"\"\"a  b\"\"\") }"),
            key("{ a(x: \"\"\"a b\"\"\") }")
        );
        assert_eq!(key(r#"{ a(x: "")   b }"#), key(r#"{ a(x: "") b }"#));
        assert_ne!(
            ResponseCache::key(&crate::access::View::Internal, "{ a }", None, None),
            key("{ a }"),
            "each view its own entries"
        );
    }
}

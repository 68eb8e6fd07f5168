//! Persisted operations: automatic persisted queries (`extensions.persistedQuery`, the
//! sha256 protocol Apollo clients speak) and the PUBLIC safelist (`[security] safelist`).
//!
//! With a safelist, an anonymous caller runs only its operations, named by id (the file name,
//! or the sha256 of the text) or sent as their exact text; staff run anything. APQ never
//! adds to what a PUBLIC caller of a safelisted deployment may run.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::access::View;
use crate::config::Security;

/// Bytes of operation text the APQ store keeps; the least used leave first.
pub const APQ_MAX_BYTES: u64 = 16 << 20;

/// Why a request's operation cannot be run.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `query` and no id: nothing to run (400).
    NoQuery,
    /// The id names nothing known: the client should send the text with it (a GraphQL
    /// request error whose message Apollo clients look for).
    NotFound,
    /// A hash with the text, but not the text's hash (400).
    HashMismatch,
    /// A PUBLIC caller's operation is not in the safelist (403).
    NotListed,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::NoQuery => "the request has no 'query'",
            Refusal::NotFound => "PersistedQueryNotFound",
            Refusal::HashMismatch => "the persisted query's sha256Hash is not the hash of 'query'",
            Refusal::NotListed => {
                "this operation is not in the safelist: anonymous callers run only persisted operations"
            }
        }
    }
}

pub struct Persisted {
    apq: Option<moka::sync::Cache<String, Arc<str>>>,
    /// The operations shipped with the deployment (its safelist's and its dashboard's), by
    /// file name and by sha256 (hex) of the text, trimmed.
    known: HashMap<String, Arc<str>>,
    /// With a safelist: the texts, trimmed, a PUBLIC caller may run (the safelist's and the
    /// dashboard's).
    listed: Option<HashSet<Arc<str>>>,
}

pub fn sha256_hex(text: &str) -> String {
    crate::digest::sha256_hex(text.as_bytes())
}

impl Persisted {
    /// `shipped`: the dashboard's operations, (id, text); any caller may run them by id,
    /// and they are part of the safelist when there is one.
    pub fn new(security: &Security, shipped: &[(String, String)]) -> Persisted {
        let apq = security.apq.then(|| {
            moka::sync::Cache::builder()
                .max_capacity(APQ_MAX_BYTES)
                .weigher(|k: &String, v: &Arc<str>| {
                    u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
                })
                .build()
        });
        let mut known = HashMap::new();
        let mut texts = HashSet::new();
        // The safelist's names win over the dashboard's.
        let safelist = security.safelist.as_deref().unwrap_or_default();
        for (id, text) in shipped.iter().chain(safelist) {
            let text: Arc<str> = text.trim().into();
            known.insert(id.clone(), text.clone());
            known.insert(sha256_hex(&text), text.clone());
            texts.insert(text);
        }
        Persisted {
            apq,
            known,
            listed: security.safelist.is_some().then_some(texts),
        }
    }

    /// The text to run for a request that sent `query` and/or the id `id` (a
    /// `persistedQuery.sha256Hash` or a `documentId`).
    pub fn resolve<'a>(
        &self,
        view: &View,
        query: Option<Cow<'a, str>>,
        id: Option<&str>,
    ) -> Result<Cow<'a, str>, Refusal> {
        let listed_only = self.listed.as_ref().filter(|_| *view == View::Public);
        match (query, id) {
            (None, None) => Err(Refusal::NoQuery),
            (None, Some(id)) => {
                let id = id.strip_prefix("sha256:").unwrap_or(id);
                if let Some(text) = self.known.get(id) {
                    return Ok(Cow::Owned(text.to_string()));
                }
                match (&self.apq, listed_only) {
                    (Some(apq), None) => apq
                        .get(id)
                        .map(|t| Cow::Owned(t.to_string()))
                        .ok_or(Refusal::NotFound),
                    _ => Err(Refusal::NotFound),
                }
            }
            (Some(query), id) => {
                if let Some(id) = id {
                    let id = id.strip_prefix("sha256:").unwrap_or(id);
                    let hash = sha256_hex(&query);
                    let named = hash.eq_ignore_ascii_case(id)
                        || self.known.get(id).is_some_and(|t| **t == *query.trim());
                    if !named {
                        return Err(Refusal::HashMismatch);
                    }
                    if let (Some(apq), None) = (&self.apq, listed_only) {
                        apq.insert(hash, Arc::from(query.as_ref()));
                    }
                }
                match listed_only {
                    Some(texts) if !texts.contains(query.trim()) => Err(Refusal::NotListed),
                    _ => Ok(query),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "{ kabupaten { nama } }";

    fn persisted(safelist: bool) -> Persisted {
        let mut s = Security::default();
        if safelist {
            s.safelist = Some(vec![("kabupaten".into(), format!("{Q}\n"))]);
        }
        Persisted::new(&s, &[])
    }

    #[test]
    fn apq_registers_a_text_by_its_hash_then_runs_it_by_hash_alone() {
        let p = persisted(false);
        let hash = sha256_hex(Q);
        assert_eq!(
            p.resolve(&View::Public, None, Some(&hash)),
            Err(Refusal::NotFound)
        );
        assert_eq!(
            p.resolve(&View::Public, Some(Q.into()), Some(&hash))
                .as_deref(),
            Ok(Q)
        );
        assert_eq!(
            p.resolve(&View::Public, None, Some(&hash)).as_deref(),
            Ok(Q)
        );
    }

    #[test]
    fn a_hash_that_is_not_the_texts_is_refused_and_not_stored() {
        let p = persisted(false);
        let wrong = sha256_hex("{ other }");
        assert_eq!(
            p.resolve(&View::Public, Some(Q.into()), Some(&wrong)),
            Err(Refusal::HashMismatch)
        );
        assert_eq!(
            p.resolve(&View::Public, None, Some(&wrong)),
            Err(Refusal::NotFound)
        );
    }

    #[test]
    fn a_safelist_limits_public_callers_but_not_staff() {
        let p = persisted(true);
        let other = "{ __typename }";
        assert_eq!(
            p.resolve(&View::Public, Some(other.into()), None),
            Err(Refusal::NotListed)
        );
        assert_eq!(
            p.resolve(&View::Internal, Some(other.into()), None)
                .as_deref(),
            Ok(other)
        );
        // By exact text, by file name, by hash.
        assert!(p.resolve(&View::Public, Some(Q.into()), None).is_ok());
        assert_eq!(
            p.resolve(&View::Public, None, Some("kabupaten")).as_deref(),
            Ok(Q)
        );
        assert!(p.resolve(&View::Public, None, Some(&sha256_hex(Q))).is_ok());
        // APQ cannot add to the list for the public.
        let h = sha256_hex(other);
        assert_eq!(
            p.resolve(&View::Public, Some(other.into()), Some(&h)),
            Err(Refusal::NotListed)
        );
        assert_eq!(
            p.resolve(&View::Public, None, Some(&h)),
            Err(Refusal::NotFound)
        );
    }

    #[test]
    fn the_dashboards_operations_run_by_id_and_join_the_safelist() {
        let page = [("overview".to_string(), "{ page }".to_string())];
        let open = Persisted::new(&Security::default(), &page);
        assert_eq!(
            open.resolve(&View::Public, None, Some("overview"))
                .as_deref(),
            Ok("{ page }")
        );
        assert_eq!(
            open.resolve(&View::Public, None, Some("unknown")),
            Err(Refusal::NotFound)
        );
        let s = Security {
            safelist: Some(vec![("kabupaten".into(), Q.into())]),
            ..Default::default()
        };
        let listed = Persisted::new(&s, &page);
        assert!(
            listed
                .resolve(&View::Public, None, Some("overview"))
                .is_ok()
        );
        assert!(
            listed
                .resolve(&View::Public, Some("{ page }".into()), None)
                .is_ok()
        );
        assert!(
            listed
                .resolve(&View::Public, None, Some("kabupaten"))
                .is_ok()
        );
        assert_eq!(
            listed.resolve(&View::Public, Some("{ other }".into()), None),
            Err(Refusal::NotListed)
        );
    }
}

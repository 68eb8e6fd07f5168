//! Values derived from one upstream answer, computed once however many requests read it.
//!
//! An answer ([`super::Fetched`]) is shared: by every request that joined its call while it
//! was in flight, and by every cache hit until it expires. Whatever a reader computes from
//! its rows alone (the distinct batch keys of a level, an index by key, the serialized
//! fields of a compiled plan) is the same for all of them, so it is kept beside the rows
//! and dropped with them. Connectors never look inside; readers key their values.

use std::any::Any;
use std::sync::{Arc, Mutex};

/// At most this many derived values per answer: a bound on memory if many operations read
/// the same rows. The oldest is dropped first.
const MAX_ENTRIES: usize = 16;

/// What a derived value is, with the id of what it was derived for (a binding, a compiled
/// selection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DerivedKey {
    /// The distinct batch keys of these rows as parents of a binding.
    BatchKeys(usize),
    /// The batch key string of each row, as parents of a binding.
    ParentKeys(usize),
    /// These rows indexed by a batch key column (hash of its name).
    IndexBy(u64),
    /// The indexes of every row.
    AllRows,
    /// The serialized leaf fields of a compiled selection.
    Projection(u64),
}

#[derive(Default)]
pub struct Derived {
    slots: Mutex<Vec<(DerivedKey, Arc<dyn Any + Send + Sync>)>>,
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

impl Derived {
    /// The value kept under `key`, computing it with `init` the first time. Two readers
    /// racing on a new key may both compute it; the first stored wins.
    pub fn get_or_init<T: Any + Send + Sync>(
        &self,
        key: DerivedKey,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        if let Some(v) = self.get(key) {
            return v;
        }
        let value = Arc::new(init());
        let Ok(mut slots) = self.slots.lock() else {
            return value;
        };
        if let Some((_, existing)) = slots.iter().find(|(k, _)| *k == key)
            && let Ok(v) = existing.clone().downcast::<T>()
        {
            return v;
        }
        slots.retain(|(k, _)| *k != key);
        if slots.len() >= MAX_ENTRIES {
            slots.remove(0);
        }
        slots.push((key, value.clone()));
        value
    }

    pub fn get<T: Any + Send + Sync>(&self, key: DerivedKey) -> Option<Arc<T>> {
        let slots = self.slots.lock().ok()?;
        let (_, v) = slots.iter().find(|(k, _)| *k == key)?;
        v.clone().downcast::<T>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_once_per_key_and_keeps_a_bounded_number() {
        let d = Derived::default();
        let mut calls = 0;
        let a = d.get_or_init(DerivedKey::AllRows, || {
            calls += 1;
            7u32
        });
        let b = d.get_or_init(DerivedKey::AllRows, || {
            calls += 1;
            8u32
        });
        assert_eq!((*a, *b, calls), (7, 7, 1));
        for i in 0..(MAX_ENTRIES as u64 + 4) {
            d.get_or_init(DerivedKey::Projection(i), || i);
        }
        assert_eq!(d.slots.lock().map(|s| s.len()).unwrap_or(0), MAX_ENTRIES);
        assert!(
            d.get::<u32>(DerivedKey::AllRows).is_none(),
            "the oldest went first"
        );
        assert_eq!(
            d.get::<u64>(DerivedKey::Projection(MAX_ENTRIES as u64 + 3))
                .as_deref(),
            Some(&(MAX_ENTRIES as u64 + 3))
        );
    }
}

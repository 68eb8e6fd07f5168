//! Values derived from one upstream answer, computed once however many requests read it.
//!
//! An answer ([`super::Fetched`]) is shared: by every request that joined its call while it
//! was in flight, and by every cache hit until it expires. Whatever a reader computes from
//! its rows alone (the distinct batch keys of a level, an index by key, the serialized
//! fields of a compiled plan) is the same for all of them, so it is kept beside the rows
//! and dropped with them. Connectors never look inside; readers key their values.

use std::any::Any;
use std::sync::{Arc, Mutex, OnceLock};

/// At most this many derived values per answer: a bound on memory if many operations read
/// the same rows. The oldest is dropped first.
const MAX_ENTRIES: usize = 16;

/// What a derived value is, with the id of what it was derived for (a binding's `uid`, a compiled
/// selection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DerivedKey {
    /// The distinct batch keys of these rows as parents of a binding.
    BatchKeys(usize),
    /// The batch key string of each row, as parents of a binding.
    ParentKeys(usize),
    /// For each of these rows as a parent of a binding, where its rows are in another
    /// (batched) answer, named by its id.
    Picks(usize, u64),
    /// These rows indexed by a batch key column (hash of its name).
    IndexBy(u64),
    /// The indexes of every row.
    AllRows,
    /// The serialized leaf fields of a compiled selection.
    Projection(u64),
}

type Slot = Arc<OnceLock<Arc<dyn Any + Send + Sync>>>;

#[derive(Default)]
pub struct Derived {
    slots: Mutex<Vec<(DerivedKey, Slot)>>,
    /// Bytes kept by large derived values (serialized rows), against `limit`.
    used: std::sync::atomic::AtomicUsize,
    /// At most as many bytes as the rows themselves weigh (set by the first reservation):
    /// the cache weighs entries by their rows, so with derived values an entry holds at
    /// most twice its weight.
    limit: OnceLock<usize>,
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

impl Derived {
    /// The value kept under `key`, computing it with `init` the first time. Readers that
    /// arrive while it is computed wait for it rather than compute it again: the requests
    /// that joined one upstream call all wake when its answer arrives, at once.
    pub fn get_or_init<T: Any + Send + Sync>(
        &self,
        key: DerivedKey,
        init: impl Fn() -> T,
    ) -> Arc<T> {
        let slot = match self.slots.lock() {
            Ok(mut slots) => match slots.iter().find(|(k, _)| *k == key) {
                Some((_, slot)) => slot.clone(),
                None => {
                    if slots.len() >= MAX_ENTRIES {
                        slots.remove(0);
                    }
                    let slot = Slot::default();
                    slots.push((key, slot.clone()));
                    slot
                }
            },
            Err(_) => Slot::default(),
        };
        let value = slot.get_or_init(|| -> Arc<dyn Any + Send + Sync> { Arc::new(init()) });
        // Another type under the same key would be a reader's bug: compute, keep nothing.
        value
            .clone()
            .downcast::<T>()
            .unwrap_or_else(|_| Arc::new(init()))
    }

    /// Reserves `bytes` for a large derived value; false (nothing reserved) when that would
    /// pass the limit, which `rows_weight` gives the first time.
    pub fn reserve(&self, bytes: usize, rows_weight: impl FnOnce() -> usize) -> bool {
        let limit = *self.limit.get_or_init(rows_weight);
        self.used
            .fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |used| used.checked_add(bytes).filter(|&total| total <= limit),
            )
            .is_ok()
    }

    #[cfg(test)]
    fn get<T: Any + Send + Sync>(&self, key: DerivedKey) -> Option<Arc<T>> {
        let slot = {
            let slots = self.slots.lock().ok()?;
            slots.iter().find(|(k, _)| *k == key)?.1.clone()
        };
        slot.get()?.clone().downcast::<T>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_once_per_key_and_keeps_a_bounded_number() {
        let d = Derived::default();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let a = d.get_or_init(DerivedKey::AllRows, || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            7u32
        });
        let b = d.get_or_init(DerivedKey::AllRows, || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            8u32
        });
        assert_eq!((*a, *b, calls.into_inner()), (7, 7, 1));
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

    #[test]
    fn readers_arriving_together_wait_for_one_computation() {
        let d = Arc::new(Derived::default());
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (d, calls, barrier) = (d.clone(), calls.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    *d.get_or_init(DerivedKey::Projection(1), || {
                        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        42u64
                    })
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().ok(), Some(42));
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn large_values_are_kept_up_to_the_rows_weight() {
        let d = Derived::default();
        assert!(d.reserve(600, || 1000));
        assert!(!d.reserve(500, || 0), "600 + 500 > 1000");
        assert!(d.reserve(400, || 0), "the limit is set once");
        assert!(!d.reserve(1, || 0));
    }
}

// A tiny shared store: one panel publishes what another reads (the catalog's datasets are
// the freshness of each source).

const values = new Map();
const events = new EventTarget();

export const store = {
  get(key) {
    return values.get(key);
  },
  set(key, value) {
    values.set(key, value);
    events.dispatchEvent(new CustomEvent(key, { detail: value }));
  },
  /** Calls `fn(value)` whenever `key` is set. */
  on(key, fn) {
    events.addEventListener(key, (e) => fn(e.detail));
  },
};

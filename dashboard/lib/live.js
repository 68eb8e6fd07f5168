// A graphql-transport-ws client (the graphql-ws protocol) for persisted subscriptions: one
// WebSocket on /graphql shared by every subscription, re-opened with backoff when it closes,
// every subscription sent again once the new connection is acknowledged.

const PROTOCOL = "graphql-transport-ws";
const ACK_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
const RESUBSCRIBE_MS = 10_000;

/** Close codes of the protocol and of Simpul (README: Subscriptions). */
const TOKEN_REFUSED = 4403;

export class LiveClient {
  /**
   * @param {object} options
   * @param {() => string|null} options.token  the staff JWT to send in connection_init
   * @param {(reason: string) => void} options.onTokenRefused  the socket was closed with 4403
   */
  constructor({ token, onTokenRefused }) {
    const url = new URL("graphql", document.baseURI);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    this.url = url.href;
    this.token = token;
    this.onTokenRefused = onTokenRefused;
    this.ws = null;
    this.state = "closed";
    this.attempts = 0;
    this.nextId = 1;
    this.subs = new Set();
    this.byWireId = new Map();
    this.listeners = new Set();
    this.reconnectTimer = 0;
    this.ackTimer = 0;
    window.addEventListener("online", () => this.state === "closed" && this.connectSoon(0));
  }

  /** Calls `fn(state)` now and on every change: "connecting" | "open" | "closed". */
  onState(fn) {
    this.listeners.add(fn);
    fn(this.state);
    return () => this.listeners.delete(fn);
  }

  /**
   * Subscribes to a persisted subscription. `next(payload)` gets each `{data, errors}`;
   * `error(errors)` a refusal (the subscription is sent again after a while).
   * Returns a function that ends it.
   */
  subscribe(documentId, variables, { next, error = () => {} }) {
    const sub = { documentId, variables, next, error, wireId: null, retryTimer: 0, active: true };
    this.subs.add(sub);
    if (this.state === "open") this.send(sub);
    else if (!this.ws) this.connectSoon(0);
    return () => {
      sub.active = false;
      clearTimeout(sub.retryTimer);
      this.subs.delete(sub);
      if (sub.wireId && this.state === "open") this.post({ id: sub.wireId, type: "complete" });
      this.byWireId.delete(sub.wireId);
    };
  }

  /** Closes the connection and opens a new one (after a login or logout). */
  restart() {
    this.attempts = 0;
    this.close();
    if (this.subs.size > 0) this.connectSoon(0);
  }

  close() {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.ackTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState <= WebSocket.OPEN) ws.close(1000, "restart");
    }
    this.byWireId.clear();
    for (const sub of this.subs) sub.wireId = null;
    this.setState("closed");
  }

  connectSoon(delay) {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  connect() {
    if (this.ws) return;
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, PROTOCOL);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const token = this.token();
      this.post({ type: "connection_init", payload: token ? { token } : {} });
      this.ackTimer = setTimeout(() => ws.close(4408, "no connection_ack"), ACK_TIMEOUT_MS);
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onerror = () => {}; // onclose follows and reconnects
    ws.onclose = (event) => {
      clearTimeout(this.ackTimer);
      this.ws = null;
      this.byWireId.clear();
      for (const sub of this.subs) sub.wireId = null;
      this.setState("closed");
      if (event.code === TOKEN_REFUSED && this.token()) {
        this.onTokenRefused(event.reason || "token refused");
        this.attempts = 0;
      }
      if (this.subs.size > 0) this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempts);
    this.attempts += 1;
    this.connectSoon(base * (0.8 + Math.random() * 0.4));
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    switch (msg.type) {
      case "connection_ack":
        clearTimeout(this.ackTimer);
        this.attempts = 0;
        this.setState("open");
        for (const sub of this.subs) this.send(sub);
        break;
      case "ping":
        this.post(msg.payload === undefined ? { type: "pong" } : { type: "pong", payload: msg.payload });
        break;
      case "next": {
        const sub = this.byWireId.get(msg.id);
        if (sub?.active) sub.next(msg.payload ?? {});
        break;
      }
      case "error": {
        const sub = this.byWireId.get(msg.id);
        if (!sub) break;
        this.byWireId.delete(msg.id);
        sub.wireId = null;
        if (sub.active) {
          sub.error(Array.isArray(msg.payload) ? msg.payload : [msg.payload]);
          this.retry(sub);
        }
        break;
      }
      case "complete": {
        // The server ended a subscription that is still wanted: ask again later.
        const sub = this.byWireId.get(msg.id);
        if (!sub) break;
        this.byWireId.delete(msg.id);
        sub.wireId = null;
        if (sub.active) this.retry(sub);
        break;
      }
      default:
        break;
    }
  }

  retry(sub) {
    clearTimeout(sub.retryTimer);
    sub.retryTimer = setTimeout(() => {
      if (sub.active && this.state === "open" && !sub.wireId) this.send(sub);
    }, RESUBSCRIBE_MS);
  }

  send(sub) {
    const id = String(this.nextId++);
    sub.wireId = id;
    this.byWireId.set(id, sub);
    this.post({ id, type: "subscribe", payload: { documentId: sub.documentId, variables: sub.variables ?? {} } });
  }

  post(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    for (const fn of this.listeners) fn(state);
  }
}

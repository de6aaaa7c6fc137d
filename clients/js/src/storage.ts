// What the client keeps in sessionStorage (this tab, across reloads): the checkout
// attempt with its Idempotency-Key and first answer, and each order's checkout token.

/** The part of the Web Storage API the client uses (sessionStorage by default). */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** One checkout attempt: one key, one order (design.md I2), kept until paid or ended. */
export interface Attempt {
  key: string;
  /** The submit's body without `confirmationTokenId`: another body is another attempt. */
  fingerprint: string;
  /** The ConfirmationToken of the first submit (a resend must carry the same body). */
  confirmationTokenId: string | null;
  orderId: string | null;
  orderNumber: string | null;
  /** Only the first answer carries it for a guest (a replay answers null). */
  checkoutToken: string | null;
  holdExpiresAt: string | null;
}

const ATTEMPT = 'checkout:attempt';
const orderKey = (orderId: string) => `checkout:order:${orderId}`;

/** A store that forgets (no sessionStorage: server-side rendering, tests). */
export function memoryStore(): KeyValueStore {
  const values = new Map<string, string>();
  return {
    getItem: (key) => values.get(key) ?? null,
    setItem: (key, value) => void values.set(key, value),
    removeItem: (key) => void values.delete(key),
  };
}

/** sessionStorage when the page has one (and it works), else a memory store. */
export function defaultStore(): KeyValueStore {
  try {
    const storage = globalThis.sessionStorage;
    if (storage) return storage;
  } catch {
    // Blocked storage (privacy settings) throws on access.
  }
  return memoryStore();
}

export class AttemptStore {
  constructor(private readonly store: KeyValueStore) {}

  /** The saved attempt, or null. */
  current(): Attempt | null {
    try {
      const saved = JSON.parse(this.store.getItem(ATTEMPT) ?? 'null') as Attempt | null;
      return saved && typeof saved.key === 'string' && typeof saved.fingerprint === 'string' ? saved : null;
    } catch {
      return null;
    }
  }

  /** The attempt for this body: the saved one when the body is the same, else a new one. */
  attemptFor(fingerprint: string): Attempt {
    const saved = this.current();
    if (saved?.fingerprint === fingerprint) return saved;
    return this.fresh(fingerprint);
  }

  /** A new attempt (a new key) for this body, saved. */
  fresh(fingerprint: string): Attempt {
    const attempt: Attempt = {
      key: newKey(),
      fingerprint,
      confirmationTokenId: null,
      orderId: null,
      orderNumber: null,
      checkoutToken: null,
      holdExpiresAt: null,
    };
    this.save(attempt);
    return attempt;
  }

  save(attempt: Attempt): void {
    this.store.setItem(ATTEMPT, JSON.stringify(attempt));
  }

  clear(): void {
    this.store.removeItem(ATTEMPT);
  }

  rememberToken(orderId: string, token: string): void {
    this.store.setItem(orderKey(orderId), token);
  }

  token(orderId: string): string | null {
    return this.store.getItem(orderKey(orderId));
  }
}

/** A random Idempotency-Key (8–255 characters). */
function newKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return `checkout-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

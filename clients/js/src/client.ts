// The checkout service's HTTP API for a browser: typed from /openapi.json (schema.ts is
// generated: `make js-types`), errors as CheckoutError, the attempt's Idempotency-Key and
// checkout token kept in sessionStorage so a reload or a double click is the same order.
import { CHECKOUT_ENDED, CheckoutError, checkoutEnded, parseRetryAfter } from './errors.js';
import { AttemptStore, defaultStore, type KeyValueStore } from './storage.js';
import type { components } from './schema.js';

type Schemas = components['schemas'];
/** The service answers every field of its response schemas (marshmallow dumps them all,
 * null where there is nothing); the document marks none of them required. */
type Answered<T> = T extends (infer U)[]
  ? Answered<U>[]
  : T extends object
    ? { [K in keyof T]-?: Answered<T[K]> }
    : T;

export type Product = Answered<Schemas['Product']>;
export type CartLine = Schemas['Line'];
/** `country` is any string here: a form's value; the service answers validation_failed on
 * `shippingAddress.country` for one that is not ISO 3166 alpha-2. */
type AnyCountry<T> = Omit<T, 'country'> & { country: string };
export type Address = AnyCountry<Schemas['Address']>;
export type QuoteAddress = AnyCountry<Schemas['QuoteAddress']>;
export type QuoteRequest = Omit<Schemas['Quote'], 'shippingAddress'> & { shippingAddress?: QuoteAddress | null };
export type Quote = Answered<Schemas['QuoteResponse']>;
/** The submit's body (the Idempotency-Key is the client's business, not the caller's). */
export type CheckoutRequest = Omit<Schemas['Submit'], 'idempotencyKey' | 'shippingAddress' | 'billingAddress'> & {
  shippingAddress: Address;
  billingAddress?: Address | null;
};
/** The submit's answer; `checkoutToken` is the one of the attempt's first answer. */
export type StartedCheckout = Answered<Omit<Schemas['SubmitResponse'], 'checkoutToken'>> & {
  checkoutToken: string;
  /** True when this tab's attempt had made the order already (answered from storage). */
  resumed: boolean;
};
export type CheckoutStatus = Answered<Omit<Schemas['CheckoutStatus'], 'queue'>> & {
  /** Only while `payment.status` is `creating` (a flash sale's wait). */
  queue?: Answered<Schemas['Queue']>;
};
export type ConfirmAnswer = Answered<Schemas['ConfirmResponse']>;
export type Order = Answered<Schemas['Order']>;
export type Tracking = Answered<Schemas['TrackResponse']>;
export type ReturnedOrder = Answered<Schemas['LookupResponse']>;
/** Stripe's hosted Checkout page for an order: redirect the buyer to `url`. */
export type HostedCheckout = Answered<Schemas['HostedCheckout']> & { url: string };
/** The cart for Stripe's hosted page: the submit's body without the Payment Element's fields. */
export type HostedCheckoutRequest = Omit<CheckoutRequest, 'ui' | 'successUrl' | 'cancelUrl' | 'confirmationTokenId'>;
/** The order on Stripe's hosted page: the submit's answer and the status's session. */
export type StartedHostedCheckout = StartedCheckout & { checkout: HostedCheckout };
/** What a Payment Element made for the order's own intent needs (`intentElementsOptions`):
 * the intent's client secret and, for a buyer signed in with the shop's JWT, the
 * CustomerSession secret that lists their saved cards (null for a guest, or when Stripe
 * refused one: a new card still pays). */
export interface PaymentSecrets {
  clientSecret: string;
  customerSessionClientSecret: string | null;
}

export interface PaymentSecretsOptions {
  /** Seconds to wait for a signed-in buyer's CustomerSession secret once the client
   * secret is there (default 3; it normally follows at once). */
  savedCardsWait?: number;
  /** Stops waiting. */
  signal?: AbortSignal;
}

export interface CheckoutClientOptions {
  /** The checkout service's origin (and path prefix, if any), e.g. `https://pay.shop.example`. */
  apiUrl: string;
  /** `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Where the attempt and the checkout tokens are kept (default: sessionStorage). */
  storage?: KeyValueStore;
  /** Each request's timeout in ms, besides a long-poll's own wait (default 15 s). */
  timeoutMs?: number;
  /** Headers for every request, e.g. the shop's JWT: `() => ({'x-auth-token': token})`. */
  headers?: Record<string, string> | (() => Record<string, string>);
}

export interface HostedCheckoutOptions {
  /** Where Stripe sends the buyer after paying; `{CHECKOUT_SESSION_ID}` becomes the
   * session's id (`lookupReturn` reads it). On an origin in the service's FRONTEND_ORIGINS. */
  successUrl: string;
  /** Where the buyer's "back" on Stripe's page leads (the session stays payable). */
  cancelUrl: string;
  /** Stops waiting for the session. */
  signal?: AbortSignal;
}

export interface WatchOptions {
  /** Seconds the server may hold each poll (0–25; default 20). */
  wait?: number;
  /** Stops the iteration (and the poll in flight). */
  signal?: AbortSignal;
  /** The first wait after an error without Retry-After, in ms (doubles up to 30 s). */
  backoffMs?: number;
}

/** Order states after which a checkout's status no longer changes by itself. */
export const SETTLED_STATES = ['PAID', 'AUTHORIZED', 'FULFILLING', 'FULFILLED', 'REFUNDED', 'FAILED', 'CANCELED'];
const MAX_BACKOFF_MS = 30_000;

interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string | number | null | undefined>;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type CheckoutClient = ReturnType<typeof createCheckoutClient>;

/** The client for one checkout service. */
export function createCheckoutClient(options: CheckoutClientOptions) {
  const apiUrl = options.apiUrl.replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const attempts = new AttemptStore(options.storage ?? defaultStore());
  const defaultTimeout = options.timeoutMs ?? 15_000;

  async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(opts.query ?? {})) {
      if (value !== null && value !== undefined) query.set(name, String(value));
    }
    const search = query.toString();
    const url = `${apiUrl}${path}${search ? `?${search}` : ''}`;
    const shared = typeof options.headers === 'function' ? options.headers() : options.headers;
    const headers: Record<string, string> = { Accept: 'application/json', ...shared, ...opts.headers };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const { signal, done } = deadline(opts.timeoutMs ?? defaultTimeout, opts.signal);
    let response: Response;
    try {
      response = await fetchImpl(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err; // the caller's own abort, not a network error
      throw new CheckoutError({ code: 'network_error', message: 'The connection to the checkout service dropped.' });
    } finally {
      done();
    }
    const data: unknown = await response.json().catch(() => null);
    if (!response.ok) throw errorFrom(response, data);
    return data as T;
  }

  /** The token for an order: the one given, else the one this tab was given. */
  function tokenFor(orderId: string, token?: string | null): string {
    const found = token ?? attempts.token(orderId);
    if (!found) {
      throw new CheckoutError({ code: 'not_found', message: 'No checkout token for this order in this tab.' }, { status: 404 });
    }
    return found;
  }

  const client = {
    /** `GET /api/products`: the catalog, sold-out products included (`available: 0`). */
    products(filter: { category?: string; q?: string } = {}): Promise<Product[]> {
      return request('GET', '/api/products', { query: filter });
    },

    /** `GET /api/products/<sku>`. */
    product(sku: string): Promise<Product> {
      return request('GET', `/api/products/${encodeURIComponent(sku)}`);
    },

    /** `POST /api/checkout/quote`: the server's prices, shipping, tax and stock for a cart. */
    quote(body: QuoteRequest): Promise<Quote> {
      return request('POST', '/api/checkout/quote', { body });
    },

    /**
     * `POST /api/checkout/payment-intent` with this attempt's Idempotency-Key: the same
     * body (a double click, a retry, a reload) is the same order; another body is a new
     * attempt. Resolves with the attempt's first answer, checkout token included.
     */
    async startCheckout(cart: CheckoutRequest): Promise<StartedCheckout> {
      const { confirmationTokenId, ...rest } = cart;
      let attempt = attempts.attemptFor(JSON.stringify(rest));
      if (attempt.orderId && attempt.checkoutToken) return startedFrom(attempt, true);
      if (!attempt.confirmationTokenId && confirmationTokenId) {
        // A resend must carry the first submit's token: the key's body is fixed.
        attempt.confirmationTokenId = confirmationTokenId;
        attempts.save(attempt);
      }
      for (let tries = 0; ; tries++) {
        const body = attempt.confirmationTokenId ? { ...rest, confirmationTokenId: attempt.confirmationTokenId } : rest;
        let answer: Schemas['SubmitResponse'];
        try {
          answer = await request('POST', '/api/checkout/payment-intent', {
            body,
            headers: { 'Idempotency-Key': attempt.key },
          });
        } catch (err) {
          // Refused for good: the next Pay starts afresh.
          if (err instanceof CheckoutError && ['out_of_stock', 'idempotency_key_reused'].includes(err.code)) attempts.clear();
          throw err;
        }
        if (answer.checkoutToken || tries > 0) {
          Object.assign(attempt, {
            orderId: answer.orderId ?? null,
            orderNumber: answer.orderNumber ?? null,
            checkoutToken: answer.checkoutToken ?? null,
            holdExpiresAt: answer.holdExpiresAt ?? null,
          });
          attempts.save(attempt);
          if (attempt.orderId && attempt.checkoutToken) attempts.rememberToken(attempt.orderId, attempt.checkoutToken);
          return startedFrom(attempt, false);
        }
        // A replay whose first answer this tab lost: only that answer carried the token (a
        // key is no credential). That order's hold lapses by itself; this is a new attempt.
        attempt = attempts.fresh(attempt.fingerprint);
        if (confirmationTokenId) attempt.confirmationTokenId = confirmationTokenId;
        attempts.save(attempt);
      }
    },

    /**
     * Pay on Stripe's hosted page: the cart submitted with `ui: "hosted"` and the return
     * URLs (one order per attempt, as `startCheckout`), then the status followed until the
     * worker has opened the Checkout Session. Resolves with it: redirect to `checkout.url`.
     * Pressed again (back through the cancel URL), the same order's session. Rejects with
     * `checkout_ended` once the order is over (the next call starts a new one).
     */
    async startHostedCheckout(cart: HostedCheckoutRequest, opts: HostedCheckoutOptions): Promise<StartedHostedCheckout> {
      const { successUrl, cancelUrl, signal } = opts;
      const order = await client.startCheckout({ ...cart, ui: 'hosted', successUrl, cancelUrl });
      try {
        for await (const status of client.watch(order.orderId, order.checkoutToken, { signal })) {
          if (status.state !== 'PENDING') throw checkoutEnded();
          const checkout = status.checkout;
          if (checkout?.url) return { ...order, checkout: { ...checkout, url: checkout.url } };
          if (status.error && status.payment.status === 'creating') throw sessionFailed(status.error);
        }
      } catch (err) {
        if (err instanceof CheckoutError && [CHECKOUT_ENDED, 'not_found'].includes(err.code)) attempts.clear();
        throw err;
      }
      signal?.throwIfAborted();
      throw checkoutEnded();
    },

    /**
     * The secrets for a Payment Element made for the order's own intent (the client-secret
     * flow; a signed-in buyer's saved cards): the status followed until the worker has
     * created the PaymentIntent and, for a JWT buyer, its CustomerSession. Rejects with
     * `checkout_ended` once the order is over.
     */
    async paymentSecrets(orderId: string, token?: string | null, opts: PaymentSecretsOptions = {}): Promise<PaymentSecrets> {
      const savedCardsWait = opts.savedCardsWait ?? 3;
      let since: number | null = null;
      let waited = false;
      for (;;) {
        const wait = since === null ? 0 : waited ? savedCardsWait : 20;
        const current = await client.status(orderId, token, { wait, since, signal: opts.signal });
        if (current.state !== 'PENDING') throw checkoutEnded();
        const { clientSecret, customerSessionClientSecret } = current.payment;
        // A guest's status has no customerSessionClientSecret at all: nothing to wait for.
        const guest = !('customerSessionClientSecret' in current.payment);
        if (clientSecret && (guest || customerSessionClientSecret || waited)) {
          return { clientSecret, customerSessionClientSecret: customerSessionClientSecret ?? null };
        }
        waited = Boolean(clientSecret);
        since = current.version;
        opts.signal?.throwIfAborted();
      }
    },

    /** The attempt this tab has in flight (its order once submitted), or null. */
    currentAttempt() {
      return attempts.current();
    },

    /** Forget the attempt (after it was paid, or when its order has ended). */
    clearAttempt(): void {
      attempts.clear();
    },

    /** The checkout token this tab keeps for an order, or null. */
    checkoutToken(orderId: string): string | null {
      return attempts.token(orderId);
    },

    /** `GET /api/checkout/<id>` once; `wait` > 0 long-polls for a version after `since`. */
    status(
      orderId: string,
      token?: string | null,
      { wait = 0, since = null, signal }: { wait?: number; since?: number | null; signal?: AbortSignal } = {},
    ): Promise<CheckoutStatus> {
      return request('GET', `/api/checkout/${encodeURIComponent(orderId)}`, {
        query: { wait, since },
        headers: { 'X-Checkout-Token': tokenFor(orderId, token) },
        timeoutMs: wait * 1000 + defaultTimeout,
        signal,
      });
    },

    /**
     * The checkout's statuses as they change: the current one first, then one per change
     * (the long-poll with `since`, so no change between two polls is missed), until the
     * order is settled. 429/503 and dropped connections wait (`Retry-After` when given,
     * else a doubling backoff) and poll again; other errors end the iteration.
     */
    async *watch(orderId: string, token?: string | null, opts: WatchOptions = {}): AsyncGenerator<CheckoutStatus> {
      const wait = opts.wait ?? 20;
      const firstBackoff = opts.backoffMs ?? 1000;
      let backoff = firstBackoff;
      let since: number | null = null;
      while (!opts.signal?.aborted) {
        let status: CheckoutStatus;
        try {
          status = await client.status(orderId, token, { wait: since === null ? 0 : wait, since, signal: opts.signal });
        } catch (err) {
          if (opts.signal?.aborted) return;
          if (!(err instanceof CheckoutError && err.retryable)) throw err;
          const delay = err.retryAfter !== null ? err.retryAfter * 1000 : backoff;
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
          await sleep(delay, opts.signal);
          continue;
        }
        backoff = firstBackoff;
        if (status.version !== since) yield status;
        if (SETTLED_STATES.includes(status.state)) return;
        since = status.version;
      }
    },

    /**
     * `POST /api/checkout/<id>/confirm`: pay the order with a new ConfirmationToken
     * (server-side confirmation), e.g. after a decline. The same token is the same attempt.
     */
    confirm(orderId: string, confirmationTokenId: string, token?: string | null): Promise<ConfirmAnswer> {
      return request('POST', `/api/checkout/${encodeURIComponent(orderId)}/confirm`, {
        body: { confirmationTokenId },
        headers: {
          'X-Checkout-Token': tokenFor(orderId, token),
          'Idempotency-Key': `confirm-${orderId}-${confirmationTokenId}`,
        },
      });
    },

    /** `GET /api/orders/<id>`: the order with its audit trail. */
    order(orderId: string, token?: string | null): Promise<Order> {
      return request('GET', `/api/orders/${encodeURIComponent(orderId)}`, {
        headers: { 'X-Checkout-Token': tokenFor(orderId, token) },
      });
    },

    /** `POST /api/orders/track`: the public view by order number and email. */
    track(orderNumber: string, email: string): Promise<Tracking> {
      return request('POST', '/api/orders/track', { body: { orderNumber, email } });
    },

    /**
     * Back from a redirect (3-D Secure, a bank, hosted Checkout): the order that Stripe's
     * return-URL parameters (`payment_intent` + `payment_intent_client_secret`, or
     * `session_id`) name, its checkout token kept for this tab; null without them.
     */
    async lookupReturn(location: string | URL | { search: string }): Promise<ReturnedOrder | null> {
      const params = returnParams(location);
      if (!params) return null;
      const found: ReturnedOrder = await request('GET', '/api/checkout/lookup', { query: params });
      attempts.rememberToken(found.orderId, found.checkoutToken);
      return found;
    },
  };
  return client;
}

/** Stripe's return-URL parameters in a location, or null. */
export function returnParams(location: string | URL | { search: string }): Record<string, string> | null {
  const search = typeof location === 'string' ? new URL(location, 'http://x').search : location.search;
  const params = new URLSearchParams(search);
  const intent = params.get('payment_intent');
  const secret = params.get('payment_intent_client_secret');
  if (intent && secret) return { payment_intent: intent, payment_intent_client_secret: secret };
  const session = params.get('session_id');
  return session ? { session_id: session } : null;
}

/** The worker could not open the Checkout Session (Stripe down, a total mismatch). */
function sessionFailed(error: NonNullable<CheckoutStatus['error']>): CheckoutError {
  return new CheckoutError(
    { type: 'api_error', code: error.code ?? 'payment_provider_error', message: error.message ?? 'Stripe\'s page could not be opened.' },
    { status: 503 },
  );
}

function startedFrom(attempt: {
  orderId: string | null;
  orderNumber: string | null;
  checkoutToken: string | null;
  holdExpiresAt: string | null;
}, resumed: boolean): StartedCheckout {
  const orderId = attempt.orderId ?? '';
  return {
    orderId,
    orderNumber: attempt.orderNumber ?? '',
    checkoutToken: attempt.checkoutToken ?? '',
    state: 'PENDING',
    statusUrl: `/api/checkout/${encodeURIComponent(orderId)}`,
    holdExpiresAt: attempt.holdExpiresAt ?? '',
    resumed,
  };
}

function errorFrom(response: Response, data: unknown): CheckoutError {
  const retryAfter = parseRetryAfter(response.headers.get('Retry-After'));
  const body = (data as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (body && typeof body.code === 'string' && typeof body.message === 'string') {
    return new CheckoutError(body as never, { status: response.status, retryAfter });
  }
  return new CheckoutError(
    { code: 'http_error', message: `The checkout service answered HTTP ${response.status}.` },
    { status: response.status, retryAfter },
  );
}

/** A signal that aborts after `ms` or when `outer` aborts; `done` clears the timer. */
function deadline(ms: number, outer?: AbortSignal): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  const timer = setTimeout(abort, ms);
  if (outer?.aborted) controller.abort();
  outer?.addEventListener('abort', abort, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', abort);
    },
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

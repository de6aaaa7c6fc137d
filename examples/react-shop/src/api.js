// The checkout service's HTTP API: JSON in and out, errors as ApiError with the
// service's stable `error.code`.
import { API_URL } from './config.js';

export class ApiError extends Error {
  constructor(message, { status = 0, error = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;        // 0: no answer (network error or timeout)
    this.error = error;          // the body's {type, code, message, fields?, items?}
    this.retryAfter = retryAfter;
  }

  get code() {
    return this.error?.code ?? (this.status ? 'http_error' : 'network_error');
  }
}

export async function api(path, { method = 'GET', body, headers = {}, timeoutMs = 15000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(`${API_URL}${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
      signal: controller.signal,
    });
  } catch {
    throw new ApiError('The connection to the shop dropped.');
  } finally {
    clearTimeout(timer);
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError(data?.error?.message || `HTTP ${res.status}`, {
      status: res.status, error: data?.error ?? null, retryAfter: res.headers.get('Retry-After'),
    });
  }
  return data;
}

export const getProducts = () => api('/api/products');

export const getQuote = (items, country) =>
  api('/api/checkout/quote', { method: 'POST', body: { items, shippingAddress: country ? { country } : null } });

export const submitCheckout = (body, idempotencyKey) =>
  api('/api/checkout/payment-intent', { method: 'POST', body, headers: { 'Idempotency-Key': idempotencyKey } });

/**
 * The checkout status. `wait` long-polls (the server holds the request up to `wait`
 * seconds), so this request's own timeout is longer than the wait.
 */
export function getCheckoutStatus(orderId, token, { wait = 0, since = null } = {}) {
  const query = new URLSearchParams({ wait: String(wait) });
  if (since !== null) query.set('since', String(since));
  return api(`/api/checkout/${encodeURIComponent(orderId)}?${query}`, {
    headers: { 'X-Checkout-Token': token },
    timeoutMs: (wait + 10) * 1000,
  });
}

export const getOrder = (orderId, token) =>
  api(`/api/orders/${encodeURIComponent(orderId)}`, { headers: { 'X-Checkout-Token': token } });

export const lookupOrder = (paymentIntent, clientSecret) =>
  api(`/api/checkout/lookup?${new URLSearchParams({
    payment_intent: paymentIntent, payment_intent_client_secret: clientSecret,
  })}`);

/** Back from Stripe's hosted page: its `{CHECKOUT_SESSION_ID}` → the order and its token. */
export const lookupSession = (sessionId) =>
  api(`/api/checkout/lookup?${new URLSearchParams({ session_id: sessionId })}`);

export const trackOrder = (orderNumber, email) =>
  api('/api/orders/track', { method: 'POST', body: { orderNumber, email } });

// The shop's JSON API, with every failure turned into one ApiError shape.
import { buyerToken } from './storage.js';

// kind: 'network' (no answer), 'timeout' (no answer in time) or 'http' (an error body).

export class ApiError extends Error {
  constructor(kind, { status = 0, code = null, body = null, retryAfter = null } = {}) {
    super(body?.error?.message || kind);
    this.kind = kind;
    this.status = status;
    this.code = code || body?.error?.code || null;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

/** fetch() JSON with a timeout; resolves the parsed body of a 2xx answer. */
export async function api(method, path, { body, headers = {}, timeoutMs = 30000 } = {}) {
  // A signed-in buyer's JWT goes with every call (an expired one is a 401, never a guest).
  const token = buyerToken();
  if (token) headers = { Authorization: `Bearer ${token}`, ...headers };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
      signal: controller.signal,
      credentials: 'same-origin',
    });
  } catch (err) {
    throw new ApiError(controller.signal.aborted ? 'timeout' : 'network');
  } finally {
    clearTimeout(timer);
  }
  let parsed = null;
  try {
    parsed = await response.json();
  } catch (err) {
    parsed = null; // a proxy's HTML error page, say: handled by status below
  }
  if (!response.ok) {
    const retryAfter = Number(response.headers.get('Retry-After')) || null;
    throw new ApiError('http', { status: response.status, body: parsed, retryAfter });
  }
  return parsed;
}

/**
 * Read an order's checkout status, long-polling up to `wait` seconds for a version newer
 * than `since` — the last version this page saw. Without `since` the server waits for
 * a change after *its* current version, and a change that landed between two polls
 * (the client secret, the webhook's PAID) would only show when the wait times out.
 */
export function checkoutStatus(orderId, token, { wait = 0, since = null } = {}) {
  const query = since === null || since === undefined ? `wait=${wait}` : `wait=${wait}&since=${since}`;
  return api('GET', `/api/checkout/${encodeURIComponent(orderId)}?${query}`, {
    headers: { 'X-Checkout-Token': token }, timeoutMs: (wait + 10) * 1000,
  });
}

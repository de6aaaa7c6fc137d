// What the browser keeps: the cart (localStorage, survives a restart), the checkout
// attempt, each order's checkout token and a signed-in buyer's JWT (sessionStorage,
// this tab only).

const CART_KEY = 'shop:cart';
const ATTEMPT_KEY = 'shop:checkout-attempt';
const orderKey = (orderId) => `shop:order:${orderId}`;

function read(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) || 'null');
  } catch {
    return null;
  }
}

/** The cart: [{sku, quantity}]; anything malformed is dropped rather than crashing. */
export function loadCart() {
  const saved = read(localStorage, CART_KEY);
  if (!Array.isArray(saved)) return [];
  return saved.filter((line) => typeof line?.sku === 'string' && Number.isInteger(line.quantity)
    && line.quantity > 0);
}

export const saveCart = (cart) => localStorage.setItem(CART_KEY, JSON.stringify(cart));

/**
 * One Idempotency-Key per checkout attempt: the same body (cart, email, address) keeps
 * its key, and its order once submitted, across double clicks, retries and reloads;
 * another body starts a new attempt.
 */
export function attemptFor(body) {
  const fingerprint = JSON.stringify(body);
  const saved = read(sessionStorage, ATTEMPT_KEY);
  if (saved?.fingerprint === fingerprint) return saved;
  const attempt = { key: crypto.randomUUID(), fingerprint, orderId: null, checkoutToken: null };
  saveAttempt(attempt);
  return attempt;
}

export const saveAttempt = (attempt) => sessionStorage.setItem(ATTEMPT_KEY, JSON.stringify(attempt));
export const clearAttempt = () => sessionStorage.removeItem(ATTEMPT_KEY);

/** A signed-in buyer's JWT, put there by the shop's sign-in (none: a guest checkout). */
export const buyerToken = () => sessionStorage.getItem('shop:buyerToken') || null;

export const rememberOrderToken = (orderId, token) => sessionStorage.setItem(orderKey(orderId), token);
export const orderToken = (orderId) => sessionStorage.getItem(orderKey(orderId));

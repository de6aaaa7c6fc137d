// What survives a refresh, in sessionStorage (this tab only; never card data):
//   checkout:cart     [{sku, quantity}]
//   checkout:form     the contact and address fields
//   checkout:attempt  {key, fingerprint, orderId?, orderNumber?, checkoutToken?, holdExpiresAt?}
//   checkout:orders   {orderId: {token, orderNumber}} for the order page
//   checkout:buyerToken  a signed-in buyer's JWT (set by the shop; sent as Authorization)

const read = (name, fallback) => {
  try {
    const raw = sessionStorage.getItem(name);
    return raw ? JSON.parse(raw) : fallback;
  } catch (err) {
    return fallback;
  }
};
const write = (name, value) => sessionStorage.setItem(name, JSON.stringify(value));

export const loadCart = () => read('checkout:cart', []);
export const saveCart = (cart) => write('checkout:cart', cart);
export const loadForm = () => read('checkout:form', {});
export const saveForm = (form) => write('checkout:form', form);

/** A signed-in buyer's JWT, put here by the shop's own sign-in (none: a guest checkout). */
export const buyerToken = () => sessionStorage.getItem('checkout:buyerToken') || null;

export const loadAttempt = () => read('checkout:attempt', null);
export const saveAttempt = (attempt) => write('checkout:attempt', attempt);
export const clearAttempt = () => sessionStorage.removeItem('checkout:attempt');

/** A fresh Idempotency-Key: one per checkout attempt, never per click. */
function newKey() {
  if (crypto.randomUUID) return `co_${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `co_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * The attempt for this exact submission: the stored one when the body is unchanged
 * (a refresh, a double click, a retry after a network error or a decline), else a new
 * one with a new key (the buyer changed the cart or the address).
 */
export function attemptFor(body) {
  const fingerprint = JSON.stringify(body);
  const current = loadAttempt();
  if (current && current.fingerprint === fingerprint) return current;
  const attempt = { key: newKey(), fingerprint };
  saveAttempt(attempt);
  return attempt;
}

/** What opens an order's page: its checkout token, else (a replay answers a guest none)
 * its number and the buyer's e-mail, which the public tracking answer takes. */
export function rememberOrder(orderId, token, orderNumber, email = null) {
  const orders = read('checkout:orders', {});
  orders[orderId] = { token, orderNumber, email };
  write('checkout:orders', orders);
}

export const orderAccess = (orderId) => read('checkout:orders', {})[orderId] || null;

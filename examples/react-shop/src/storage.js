// The cart, in localStorage (survives a restart), and a signed-in buyer's JWT (sessionStorage,
// this tab only). The checkout attempt and each order's checkout token are the client's
// business (sessionStorage, see src/checkout.js).

const CART_KEY = 'shop:cart';

/** The cart: [{sku, quantity}]; anything malformed is dropped rather than crashing. */
export function loadCart() {
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(CART_KEY) || 'null');
  } catch {
    // A corrupt entry is an empty cart.
  }
  if (!Array.isArray(saved)) return [];
  return saved.filter((line) => typeof line?.sku === 'string' && Number.isInteger(line.quantity)
    && line.quantity > 0);
}

export const saveCart = (cart) => localStorage.setItem(CART_KEY, JSON.stringify(cart));

/** A signed-in buyer's JWT, put there by the shop's sign-in (none: a guest checkout). */
export const buyerToken = () => sessionStorage.getItem('shop:buyerToken') || null;

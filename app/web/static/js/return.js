// Back from Stripe's hosted page: trade the session_id Stripe put in the success URL for
// the order's checkout token (GET /api/checkout/lookup), then open the order page.

import { ApiError, api } from './api.js';
import { showError } from './ui.js';
import { clearAttempt, rememberOrder } from './storage.js';

async function init() {
  const sessionId = new URLSearchParams(location.search).get('session_id');
  let found = null;
  try {
    if (sessionId) found = await api('GET', `/api/checkout/lookup?session_id=${encodeURIComponent(sessionId)}`);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
  }
  if (!found) {
    showError({
      kind: 'not_found', title: 'We cannot find this payment',
      message: 'Stripe sent you back without an order we know.',
      next: 'Check your email for a receipt, or return to the shop.',
    });
    return;
  }
  rememberOrder(found.orderId, found.checkoutToken, found.orderNumber);
  clearAttempt();
  sessionStorage.setItem('checkout:cart', '[]');
  location.replace(`/order/${encodeURIComponent(found.orderId)}`);
}

init();

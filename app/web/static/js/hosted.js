// Stripe's hosted Checkout page: submit the cart with "ui": "hosted" and the return URLs,
// wait for the Checkout Session, then send the buyer to Stripe's page. Stripe sends them
// back to /checkout/return?session_id=... (paid) or to this page (canceled).

import { api, checkoutStatus } from './api.js';
import * as store from './storage.js';

export const REDIRECTED = 'redirected';

/** The submit body for Stripe's page: the same cart, plus the UI and where to return. */
export function hostedBody(body) {
  return {
    ...body,
    ui: 'hosted',
    successUrl: `${location.origin}/checkout/return?session_id={CHECKOUT_SESSION_ID}`,
    cancelUrl: `${location.origin}/`,
  };
}

/**
 * Admit the order (one Idempotency-Key per attempt, as for the Payment Element), then
 * long-poll until its Checkout Session exists and go there. Answers REDIRECTED, or the
 * status that ended the wait (the order closed, or the session could not be made).
 */
export async function payOnStripe(body, announce) {
  const attempt = store.attemptFor(body);
  if (!attempt.orderId) {
    announce('Reserving your items…');
    const order = await api('POST', '/api/checkout/payment-intent', {
      body, headers: { 'Idempotency-Key': attempt.key },
    });
    Object.assign(attempt, {
      orderId: order.orderId, orderNumber: order.orderNumber,
      checkoutToken: order.checkoutToken, holdExpiresAt: order.holdExpiresAt,
    });
    store.saveAttempt(attempt);
    store.rememberOrder(order.orderId, order.checkoutToken, order.orderNumber);
  }
  announce('Opening Stripe’s payment page…');
  let since = null;
  let wait = 0;
  for (;;) {
    const status = await checkoutStatus(attempt.orderId, attempt.checkoutToken, { wait, since });
    since = status.version ?? null;
    wait = 20;
    if (status.state === 'PENDING' && status.checkout?.url) {
      location.assign(status.checkout.url);
      return REDIRECTED;
    }
    if (status.state !== 'PENDING' || status.error) return status;
  }
}

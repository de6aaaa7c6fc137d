// The order page: the real order state as the webhook moves it (PENDING -> PAID),
// long-polling GET /api/checkout/<id>?wait=20 with the checkout token kept at submit.
// Landing here from a redirect-based payment (Stripe's return_url, perhaps in another
// tab), the token comes from GET /api/checkout/lookup with Stripe's query parameters.

import { ApiError, api, checkoutStatus } from './api.js';
import { formatMoney } from './money.js';
import { describeApiError } from './errors.js';
import { showError } from './ui.js';
import { orderAccess, rememberOrder } from './storage.js';

const $ = (id) => document.getElementById(id);
const orderId = document.body.dataset.orderId;
const FINAL = ['AUTHORIZED', 'PAID', 'FULFILLING', 'FULFILLED', 'REFUNDED'];
const ENDED = ['FAILED', 'CANCELED'];
// Set by the checkout page (and by Stripe on a return_url redirect) once the browser
// has seen the payment go through; the order itself only moves on the webhook.
const redirectStatus = new URLSearchParams(location.search).get('redirect_status');

const LABELS = {
  PENDING: 'Pending', AUTHORIZED: 'Authorised', PAID: 'Paid', FULFILLING: 'Being prepared', FULFILLED: 'Shipped',
  FAILED: 'Failed', CANCELED: 'Canceled', REFUNDED: 'Refunded',
};

function detail(status) {
  const payment = status.payment?.status;
  if (status.state === 'PAID') return 'Thank you! Your payment was received and your order is confirmed. A receipt is on its way by email.';
  if (status.state === 'AUTHORIZED') return 'Thank you! Your order is confirmed. Your card is charged when the order ships.';
  if (FINAL.includes(status.state)) return 'Your order is confirmed.';
  const paidHere = ['succeeded', 'pending'].includes(redirectStatus);
  if (payment === 'processing') {
    return 'Your payment is on its way: your bank is processing it, which can take a few business days. We e-mail you when it has gone through; your items are reserved.';
  }
  if (payment === 'succeeded' || paidHere) {
    return 'Your payment went through. We are waiting for the payment service to confirm it; this page updates by itself.';
  }
  if (payment === 'requires_payment_method' && status.error) {
    return `The last payment attempt did not go through: ${status.error.message} Go back to checkout to try another card.`;
  }
  return 'Waiting for your payment to complete; this page updates by itself.';
}

let lastAnnounced = null;

function render(status) {
  $('order-number').textContent = status.orderNumber ? `#${status.orderNumber}` : '';
  const stateNode = $('order-state');
  stateNode.textContent = LABELS[status.state] || status.state;
  stateNode.dataset.state = status.state;
  const text = detail(status);
  $('state-detail').textContent = text;
  const announcement = `Order ${status.orderNumber}: ${LABELS[status.state] || status.state}.`;
  if (announcement !== lastAnnounced) {
    $('order-announce').textContent = announcement;
    lastAnnounced = announcement;
  }
  const currency = status.totals?.currency;
  $('order-lines').replaceChildren(...(status.lineItems || []).map((line) => {
    const li = document.createElement('li');
    li.className = 'cart-line';
    li.textContent = `${line.quantity} × ${line.name || line.sku} — ${formatMoney(line.amount, currency)}`;
    return li;
  }));
  if (status.totals) {
    $('totals').hidden = false;
    for (const key of ['subtotal', 'shipping', 'tax', 'total']) {
      $(`total-${key}`).textContent = formatMoney(status.totals[key], currency);
    }
  }
}

async function follow(token) {
  let wait = 0;
  let since = null;
  let failures = 0;
  for (;;) {
    let status;
    try {
      status = await checkoutStatus(orderId, token, { wait, since });
      since = status.version ?? null;
      failures = 0;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.kind === 'http' && err.status < 500 && err.status !== 429) return showError(describeApiError(err));
      failures += 1;
      if (failures === 3) showError(describeApiError(err));
      await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 1000 * 2 ** failures)));
      continue;
    }
    render(status);
    if (ENDED.includes(status.state)) {
      const reason = status.error ? 'failed' : 'expired';
      location.replace(`/checkout/failed?reason=${reason}&order=${encodeURIComponent(status.orderNumber || '')}`);
      return;
    }
    if (FINAL.includes(status.state)) return;
    wait = 20;
  }
}

/**
 * Back from a redirect: Stripe appended payment_intent and payment_intent_client_secret
 * to the return_url. Trade them for the order's checkout token (remembered like a
 * submit's), then take the secret out of the address bar and the history.
 */
const REDIRECTING = 'redirecting';

async function accessFromReturnUrl() {
  const params = new URLSearchParams(location.search);
  const intent = params.get('payment_intent');
  const secret = params.get('payment_intent_client_secret');
  if (!intent || !secret) return null;
  const clean = redirectStatus ? `?redirect_status=${encodeURIComponent(redirectStatus)}` : '';
  let found = null;
  try {
    const query = `payment_intent=${encodeURIComponent(intent)}&payment_intent_client_secret=${encodeURIComponent(secret)}`;
    found = await api('GET', `/api/checkout/lookup?${query}`);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
  }
  history.replaceState(null, '', `${location.pathname}${clean}`);
  if (!found) return null;
  rememberOrder(found.orderId, found.checkoutToken, found.orderNumber);
  if (found.orderId !== orderId) {
    location.replace(`/order/${encodeURIComponent(found.orderId)}${clean}`);
    return REDIRECTING;
  }
  return { token: found.checkoutToken, orderNumber: found.orderNumber };
}

// Tracking is limited per IP (RATELIMIT_TRACK, 10 a minute by default): one look every
// 7 s stays under it, and a 429 waits as long as its Retry-After says.
const TRACK_EVERY_MS = 7000;

/** Without the checkout token (a replayed submit answers a guest none), the public
 * tracking answer, by order number and e-mail, until it settles. */
async function followTracked({ orderNumber, email }) {
  // The replay answers before the worker has written the order: tracking says 404 until
  // then, so a 404 is "not yet" for this long.
  const writtenBy = Date.now() + 60000;
  let failures = 0;
  for (;;) {
    let pause = TRACK_EVERY_MS;
    try {
      const tracked = await api('POST', '/api/orders/track', { body: { orderNumber, email } });
      failures = 0;
      render(tracked);
      if (FINAL.includes(tracked.state) || ENDED.includes(tracked.state)) return;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const notYet = err.kind === 'http' && err.status === 404 && Date.now() < writtenBy;
      if (notYet) {
        render({ orderNumber, state: 'PENDING' });
        pause = 5000;
      } else if (err.kind === 'http' && err.status < 500 && err.status !== 429) {
        return showError(describeApiError(err));
      } else {
        failures += 1;
        if (failures === 3) showError(describeApiError(err));
        if (err.retryAfter) pause = Math.max(pause, err.retryAfter * 1000);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

async function init() {
  const access = orderAccess(orderId) || await accessFromReturnUrl();
  if (access === REDIRECTING) return;
  if (!access || !(access.token || (access.orderNumber && access.email))) {
    $('order-state').textContent = 'Unknown';
    showError({
      kind: 'not_found', title: 'We cannot show this order here',
      message: 'Order pages open in the browser tab where the order was placed. Your receipt email has the order number.',
      next: 'Check your email, or return to the shop.',
    });
    return;
  }
  if (access.orderNumber) $('order-number').textContent = `#${access.orderNumber}`;
  if (!access.token && access.orderNumber && access.email) return followTracked(access);
  follow(access.token);
}

init();

// The two ways to pay an order with the Payment Element, written once: server-side
// confirmation (recommended) and the client-secret flow. Framework-free; the React hook
// (react.tsx) calls these.
import type { Stripe, StripeElements, StripeElementsOptionsClientSecret } from '@stripe/stripe-js';
import type { CheckoutClient, CheckoutRequest, CheckoutStatus, PaymentSecrets, StartedCheckout } from './client.js';
import { CHECKOUT_ENDED, CheckoutError, checkoutEnded as ended } from './errors.js';

export { CHECKOUT_ENDED } from './errors.js';

/** `server`: a ConfirmationToken goes with the cart and the service confirms (default).
 * `client-secret`: the service creates the intent, the browser confirms it. */
export type Flow = 'server' | 'client-secret';

/** A payment that went through: PAID (or AUTHORIZED), or still `processing` (bank debits). */
export interface PaidCheckout {
  orderId: string;
  orderNumber: string;
  checkoutToken: string;
  state: string;
  paymentStatus: string;
}

export interface PayOptions {
  client: CheckoutClient;
  stripe: Stripe;
  elements: StripeElements;
  body: CheckoutRequest;
  flow?: Flow;
  /** Where a redirect-based method comes back to (client-secret flow; default: this page). */
  returnUrl?: string;
  /** Each checkout status while paying (to show a queue position, say). */
  onStatus?: (status: CheckoutStatus) => void;
}

const PAID = ['PAID', 'AUTHORIZED', 'FULFILLING', 'FULFILLED'];
// The service is still acting on the attempt: what the status says of the last one is stale.
const IN_FLIGHT = ['creating', 'requires_confirmation'];

/**
 * Pay the cart: `elements.submit()`, the order (one per attempt; after a decline the
 * same order is paid again), the confirmation, then the status followed to PAID. Throws
 * CheckoutError (a decline's `code` is Stripe's, e.g. `card_declined`).
 */
export async function payCheckout(options: PayOptions): Promise<PaidCheckout> {
  const { client, elements } = options;
  const submitted = await elements.submit(); // Stripe wants it before any other async work
  if (submitted.error) throw CheckoutError.fromStripe(submitted.error);
  try {
    const paid = options.flow === 'client-secret' ? await payWithClientSecret(options) : await payOnServer(options);
    client.clearAttempt();
    return paid;
  } catch (err) {
    if (err instanceof CheckoutError && [CHECKOUT_ENDED, 'not_found', 'invalid_state'].includes(err.code)) {
      client.clearAttempt(); // the order is over: the next Pay starts a new one
    }
    throw err;
  }
}

async function payOnServer({ client, stripe, elements, body, onStatus }: PayOptions): Promise<PaidCheckout> {
  const { error, confirmationToken } = await stripe.createConfirmationToken({ elements });
  if (error) throw CheckoutError.fromStripe(error);
  const order = await client.startCheckout({ ...body, confirmationTokenId: confirmationToken.id });
  if (order.resumed) {
    // An order this attempt made before: paid meanwhile (a reload mid-payment), or over, or
    // declined — then a new attempt on it, same intent and hold.
    const current = await client.status(order.orderId, order.checkoutToken);
    const result = outcome(current);
    if (result === 'paid') return paidFrom(order, current);
    if (result === 'ended') throw ended();
    await client.confirm(order.orderId, confirmationToken.id, order.checkoutToken);
  }
  let handled: string | null = null;
  for await (const status of client.watch(order.orderId, order.checkoutToken)) {
    onStatus?.(status);
    const { payment } = status;
    const result = outcome(status);
    if (result === 'paid') return paidFrom(order, status);
    if (result === 'ended') throw ended();
    if (status.error && !IN_FLIGHT.includes(payment.status)) throw declined(status);
    const action = `${payment.intentId}:${status.version}`;
    if (payment.status === 'requires_action' && payment.clientSecret && handled !== action) {
      handled = action;
      // 3-D Secure: Stripe.js shows the bank's challenge; the status then moves on.
      const result = await stripe.handleNextAction({ clientSecret: payment.clientSecret }).catch(() => ({ error: undefined }));
      if (result.error) throw CheckoutError.fromStripe(result.error);
    }
  }
  throw ended();
}

async function payWithClientSecret(options: PayOptions): Promise<PaidCheckout> {
  const { client, stripe, elements, body, onStatus } = options;
  const order = await client.startCheckout(body);
  let confirmed = false;
  for await (const status of client.watch(order.orderId, order.checkoutToken)) {
    onStatus?.(status);
    const result = outcome(status);
    if (result === 'paid') return paidFrom(order, status);
    if (result === 'ended') throw ended();
    const secret = status.payment.clientSecret;
    if (confirmed || !secret) continue; // the intent is on its way, or the webhook is
    const returnUrl = options.returnUrl ?? globalThis.location?.href ?? '';
    const { error, paymentIntent } = await stripe.confirmPayment({
      elements,
      clientSecret: secret,
      redirect: 'if_required',
      confirmParams: { return_url: returnUrl },
    });
    // Declined or not authenticated: the order and its intent stay; Pay again retries.
    if (error) throw CheckoutError.fromStripe(error);
    if (paymentIntent?.status === 'processing') return paidFrom(order, status, 'processing');
    confirmed = true;
  }
  throw ended();
}

/**
 * `stripe.elements()` options for the order's own intent: its client secret and, when
 * there is one, the CustomerSession secret, so the Payment Element lists the buyer's
 * saved cards (and, as the session allows, saves and removes them).
 */
export function intentElementsOptions(
  secrets: PaymentSecrets,
  more: Omit<StripeElementsOptionsClientSecret, 'clientSecret' | 'customerSessionClientSecret'> = {},
): StripeElementsOptionsClientSecret {
  const { clientSecret, customerSessionClientSecret } = secrets;
  return { ...more, clientSecret, ...(customerSessionClientSecret ? { customerSessionClientSecret } : {}) };
}

export interface IntentPayOptions {
  client: CheckoutClient;
  stripe: Stripe;
  /** The Elements made with `intentElementsOptions` (a saved card or a new one). */
  elements: StripeElements;
  /** The order, from `client.startCheckout`. */
  order: StartedCheckout;
  /** Where a redirect-based method comes back to (default: this page). */
  returnUrl?: string;
  onStatus?: (status: CheckoutStatus) => void;
}

/**
 * Pay the order's own intent in the browser (`stripe.confirmPayment` with the Elements
 * made for it), then follow the status to PAID. A decline throws CheckoutError and keeps
 * the order: Pay again confirms the same intent.
 */
export async function payIntent(options: IntentPayOptions): Promise<PaidCheckout> {
  const { client, stripe, elements, order } = options;
  try {
    const { error, paymentIntent } = await stripe.confirmPayment({
      elements,
      redirect: 'if_required',
      confirmParams: { return_url: options.returnUrl ?? globalThis.location?.href ?? '' },
    });
    if (error) throw CheckoutError.fromStripe(error);
    for await (const status of client.watch(order.orderId, order.checkoutToken)) {
      options.onStatus?.(status);
      const result = paymentIntent?.status === 'processing' ? 'paid' : outcome(status);
      if (result === 'paid') {
        client.clearAttempt();
        return paidFrom(order, status, paymentIntent?.status === 'processing' ? 'processing' : undefined);
      }
      if (result === 'ended') throw ended();
    }
    throw ended();
  } catch (err) {
    if (err instanceof CheckoutError && [CHECKOUT_ENDED, 'not_found', 'invalid_state'].includes(err.code)) {
      client.clearAttempt(); // the order is over: the next Pay starts a new one
    }
    throw err;
  }
}

/** `paid` (or authorised, or a payment that settles later), `ended`, or null (not yet). */
function outcome(status: CheckoutStatus): 'paid' | 'ended' | null {
  if (PAID.includes(status.state)) return 'paid';
  if (status.state !== 'PENDING') return 'ended';
  return status.payment.status === 'processing' ? 'paid' : null;
}

function paidFrom(order: StartedCheckout, status: CheckoutStatus, paymentStatus?: string): PaidCheckout {
  return {
    orderId: order.orderId,
    orderNumber: order.orderNumber,
    checkoutToken: order.checkoutToken,
    state: status.state,
    paymentStatus: paymentStatus ?? status.payment.status,
  };
}

function declined(status: CheckoutStatus): CheckoutError {
  const error = status.error!;
  return new CheckoutError({
    type: 'card_error',
    code: error.code ?? 'card_declined',
    message: error.message ?? 'Your card was declined.',
    declineCode: error.declineCode ?? null,
  });
}

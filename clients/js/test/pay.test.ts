import { describe, expect, it } from 'vitest';
import { createCheckoutClient, memoryStore } from '../src/index.js';
import { payCheckout } from '../src/pay.js';
import { CART, errorReply, fakeService, status, submitted } from './fakes.js';
import { fakeStripe } from './stripe.js';

const DECLINED = { code: 'card_declined', declineCode: 'generic_decline', message: 'Your card was declined.' };

function setUp(routes: Parameters<typeof fakeService>[0], stripeOptions = {}) {
  const service = fakeService(routes);
  const client = createCheckoutClient({ apiUrl: 'http://api.test', fetch: service.fetch, storage: memoryStore() });
  return { service, client, ...fakeStripe(stripeOptions) };
}

describe('server-side confirmation', () => {
  it('submits the cart with a ConfirmationToken and follows the order to PAID', async () => {
    const { service, client, stripe, elements, mock } = setUp({
      'POST /api/checkout/payment-intent': submitted(),
      'GET /api/checkout/ord_1': [status(1), status(2, 'PENDING', { status: 'succeeded' }), status(3, 'PAID', { status: 'succeeded' })],
    });
    const paid = await payCheckout({ client, stripe, elements, body: CART });
    expect(paid).toEqual({ orderId: 'ord_1', orderNumber: '1001', checkoutToken: 'tok_1', state: 'PAID', paymentStatus: 'succeeded' });
    expect(mock.submit).toHaveBeenCalledBefore(mock.createConfirmationToken);
    expect(service.calls[0]!.body.confirmationTokenId).toBe('ctoken_1');
    expect(client.currentAttempt()).toBeNull(); // paid: the next cart is a new attempt
  });

  it('hands 3-D Secure to stripe.handleNextAction once, then waits for PAID', async () => {
    const action = { status: 'requires_action', intentId: 'pi_1', clientSecret: 'pi_1_secret' };
    const { client, stripe, elements, mock } = setUp({
      'POST /api/checkout/payment-intent': submitted(),
      'GET /api/checkout/ord_1': [status(1, 'PENDING', action), status(2, 'PAID', { status: 'succeeded' })],
    });
    await payCheckout({ client, stripe, elements, body: CART });
    expect(mock.handleNextAction).toHaveBeenCalledTimes(1);
    expect(mock.handleNextAction).toHaveBeenCalledWith({ clientSecret: 'pi_1_secret' });
  });

  it('reports a decline, and the next Pay confirms the same order with a new token', async () => {
    const { service, client, stripe, elements } = setUp({
      'POST /api/checkout/payment-intent': submitted(),
      'POST /api/checkout/ord_1/confirm': { status: 202, body: { orderId: 'ord_1', state: 'PENDING', statusUrl: '' } },
      'GET /api/checkout/ord_1': [
        status(1, 'PENDING', { status: 'requires_payment_method' }, DECLINED),
        status(1, 'PENDING', { status: 'requires_payment_method' }, DECLINED), // before the retry
        status(2, 'PENDING', { status: 'requires_confirmation' }),
        status(3, 'PAID', { status: 'succeeded' }),
      ],
    });
    const error = await payCheckout({ client, stripe, elements, body: CART }).catch((e) => e);
    expect(error).toMatchObject({ code: 'card_declined', declineCode: 'generic_decline', type: 'card_error', message: 'Your card was declined.' });
    const paid = await payCheckout({ client, stripe, elements, body: CART });
    expect(paid.orderId).toBe('ord_1');
    const posts = service.calls.filter((call) => call.method === 'POST').map((call) => [call.path, call.body.confirmationTokenId]);
    expect(posts).toEqual([['/api/checkout/payment-intent', 'ctoken_1'], ['/api/checkout/ord_1/confirm', 'ctoken_2']]);
  });

  it('answers a Pay after a reload mid-payment with the order, paid meanwhile, not a retry', async () => {
    const { service, client, stripe, elements } = setUp({
      'POST /api/checkout/payment-intent': submitted(),
      'GET /api/checkout/ord_1': [status(1, 'PENDING', { status: 'requires_action', clientSecret: 's' }, null), status(2, 'PAID', { status: 'succeeded' })],
    }, { actionError: { type: 'invalid_request_error', code: 'payment_intent_unexpected_state', message: 'closed' } });
    await expect(payCheckout({ client, stripe, elements, body: CART })).rejects.toThrow();
    const paid = await payCheckout({ client, stripe, elements, body: CART });
    expect(paid.state).toBe('PAID');
    expect(service.calls.some((call) => call.path.endsWith('/confirm'))).toBe(false);
  });

  it('ends the attempt when the order is over (hold expired)', async () => {
    const { client, stripe, elements } = setUp({
      'POST /api/checkout/payment-intent': submitted(),
      'GET /api/checkout/ord_1': status(1, 'CANCELED'),
    });
    await expect(payCheckout({ client, stripe, elements, body: CART })).rejects.toMatchObject({ code: 'checkout_ended' });
    expect(client.currentAttempt()).toBeNull();
  });

  it('stops at elements.submit() errors before any request', async () => {
    const { service, client, stripe, elements, mock } = setUp({});
    mock.submit.mockResolvedValueOnce({ error: { type: 'validation_error', code: 'incomplete_number', message: 'Your card number is incomplete.' } } as never);
    await expect(payCheckout({ client, stripe, elements, body: CART })).rejects.toMatchObject({ code: 'incomplete_number', type: 'validation_error' });
    expect(service.calls).toHaveLength(0);
  });
});

describe('client-secret flow', () => {
  it('waits for the client secret, confirms it in the browser, then waits for PAID', async () => {
    const { service, client, stripe, elements, mock } = setUp({
      'POST /api/checkout/payment-intent': submitted(),
      'GET /api/checkout/ord_1': [
        status(1),
        status(2, 'PENDING', { status: 'requires_payment_method', clientSecret: 'pi_1_secret' }),
        status(3, 'PENDING', { status: 'requires_payment_method', clientSecret: 'pi_1_secret' }),
        status(4, 'PAID', { status: 'succeeded' }),
      ],
    });
    const paid = await payCheckout({ client, stripe, elements, body: CART, flow: 'client-secret', returnUrl: 'https://shop.test/done' });
    expect(paid.state).toBe('PAID');
    expect(mock.confirmPayment).toHaveBeenCalledTimes(1);
    expect(mock.confirmPayment).toHaveBeenCalledWith({
      elements, clientSecret: 'pi_1_secret', redirect: 'if_required', confirmParams: { return_url: 'https://shop.test/done' },
    });
    expect(service.calls[0]!.body.confirmationTokenId).toBeUndefined();
  });

  it("passes Stripe's decline on as a CheckoutError and keeps the attempt for a retry", async () => {
    const { client, stripe, elements } = setUp(
      {
        'POST /api/checkout/payment-intent': submitted(),
        'GET /api/checkout/ord_1': status(1, 'PENDING', { status: 'requires_payment_method', clientSecret: 's' }),
      },
      { confirmError: { type: 'card_error', code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' } },
    );
    await expect(payCheckout({ client, stripe, elements, body: CART, flow: 'client-secret' })).rejects.toMatchObject({
      code: 'card_declined', declineCode: 'insufficient_funds',
    });
    expect(client.currentAttempt()?.orderId).toBe('ord_1');
  });

  it('surfaces the service refusing the cart', async () => {
    const { client, stripe, elements } = setUp({ 'POST /api/checkout/payment-intent': errorReply(429, 'rate_limited', 'Too many.', {}, { 'Retry-After': '5' }) });
    await expect(payCheckout({ client, stripe, elements, body: CART, flow: 'client-secret' })).rejects.toMatchObject({ code: 'rate_limited', retryAfter: 5 });
  });
});

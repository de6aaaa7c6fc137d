import { describe, expect, it } from 'vitest';
import { createCheckoutClient, intentElementsOptions, memoryStore, payIntent } from '../src/index.js';
import { CART, fakeService, status, submitted } from './fakes.js';
import { fakeStripe } from './stripe.js';

// A signed-in buyer (the shop's JWT in every request): the cart is submitted first, the
// Payment Element is made for the order's intent with the CustomerSession's saved cards.

function setUp(routes: Parameters<typeof fakeService>[0], stripeOptions = {}) {
  const service = fakeService(routes);
  const client = createCheckoutClient({
    apiUrl: 'http://api.test',
    fetch: service.fetch,
    storage: memoryStore(),
    headers: () => ({ Authorization: 'Bearer jwt' }),
  });
  return { service, client, ...fakeStripe(stripeOptions) };
}

const INTENT = { status: 'requires_payment_method', intentId: 'pi_1', clientSecret: 'pi_1_secret_x' };

describe('savePaymentMethod', () => {
  it('goes with the submit, and ticking it is another attempt (the key fixes the body)', async () => {
    const { service, client } = setUp({
      'POST /api/checkout/payment-intent': [submitted('ord_1', 'tok_1'), submitted('ord_2', 'tok_2')],
    });
    const saved = await client.startCheckout({ ...CART, savePaymentMethod: true });
    const plain = await client.startCheckout(CART);
    expect(service.calls[0]!.body.savePaymentMethod).toBe(true);
    expect(service.calls[0]!.headers.Authorization).toBe('Bearer jwt');
    expect(service.calls[1]!.body).not.toHaveProperty('savePaymentMethod');
    expect(service.calls[1]!.headers['Idempotency-Key']).not.toBe(service.calls[0]!.headers['Idempotency-Key']);
    expect([saved.orderId, plain.orderId]).toEqual(['ord_1', 'ord_2']);
  });
});

describe('paymentSecrets', () => {
  it('waits for the intent, then for the CustomerSession secret that follows it', async () => {
    const { service, client } = setUp({
      'GET /api/checkout/ord_1': [
        status(1, 'PENDING', { customerSessionClientSecret: null }),
        status(2, 'PENDING', { ...INTENT, customerSessionClientSecret: null }),
        status(3, 'PENDING', { ...INTENT, customerSessionClientSecret: 'cuss_secret_1' }),
      ],
    });
    const secrets = await client.paymentSecrets('ord_1', 'tok_1');
    expect(secrets).toEqual({ clientSecret: 'pi_1_secret_x', customerSessionClientSecret: 'cuss_secret_1' });
    expect(service.calls.map((call) => [call.query.get('wait'), call.query.get('since')])).toEqual([
      ['0', null], ['20', '1'], ['3', '2'],
    ]);
  });

  it('pays with a new card when no CustomerSession comes (Stripe refused it)', async () => {
    const { client } = setUp({
      'GET /api/checkout/ord_1': [
        status(1, 'PENDING', { ...INTENT, customerSessionClientSecret: null }),
        status(1, 'PENDING', { ...INTENT, customerSessionClientSecret: null }),
      ],
    });
    expect(await client.paymentSecrets('ord_1', 'tok_1')).toEqual({ clientSecret: 'pi_1_secret_x', customerSessionClientSecret: null });
  });

  it('answers a guest at once (their status has no saved cards to wait for)', async () => {
    const { service, client } = setUp({ 'GET /api/checkout/ord_1': status(1, 'PENDING', INTENT) });
    expect(await client.paymentSecrets('ord_1', 'tok_1')).toEqual({ clientSecret: 'pi_1_secret_x', customerSessionClientSecret: null });
    expect(service.calls).toHaveLength(1);
  });

  it('rejects with checkout_ended once the order is over', async () => {
    const { client } = setUp({ 'GET /api/checkout/ord_1': status(1, 'CANCELED') });
    await expect(client.paymentSecrets('ord_1', 'tok_1')).rejects.toMatchObject({ code: 'checkout_ended' });
  });
});

describe('intentElementsOptions', () => {
  it('passes the CustomerSession secret to Elements only when there is one', () => {
    expect(intentElementsOptions({ clientSecret: 'pi_s', customerSessionClientSecret: 'cuss_s' }, { loader: 'never' })).toEqual({
      loader: 'never', clientSecret: 'pi_s', customerSessionClientSecret: 'cuss_s',
    });
    expect(intentElementsOptions({ clientSecret: 'pi_s', customerSessionClientSecret: null })).toEqual({ clientSecret: 'pi_s' });
  });
});

describe('payIntent', () => {
  it('confirms the Elements in the browser, then follows the order to PAID', async () => {
    const { client, stripe, elements, mock } = setUp({
      'POST /api/checkout/payment-intent': submitted(),
      'GET /api/checkout/ord_1': [status(2, 'PENDING', INTENT), status(3, 'PAID', { status: 'succeeded' })],
    });
    const order = await client.startCheckout(CART);
    const paid = await payIntent({ client, stripe, elements, order, returnUrl: 'https://shop.test/orders/ord_1' });
    expect(paid).toMatchObject({ orderId: 'ord_1', state: 'PAID', paymentStatus: 'succeeded' });
    expect(mock.confirmPayment).toHaveBeenCalledWith({
      elements, redirect: 'if_required', confirmParams: { return_url: 'https://shop.test/orders/ord_1' },
    });
    expect(client.currentAttempt()).toBeNull();
  });

  it('reports a decline and keeps the order for another try', async () => {
    const declined = { type: 'card_error', code: 'card_declined', message: 'Your card was declined.' };
    const { client, stripe, elements } = setUp(
      { 'POST /api/checkout/payment-intent': submitted(), 'GET /api/checkout/ord_1': status(2, 'PENDING', INTENT) },
      { confirmError: declined },
    );
    const order = await client.startCheckout(CART);
    await expect(payIntent({ client, stripe, elements, order })).rejects.toMatchObject({ code: 'card_declined' });
    expect(client.currentAttempt()?.orderId).toBe('ord_1');
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { CheckoutError, createCheckoutClient, memoryStore, parseRetryAfter } from '../src/index.js';
import { CART, errorReply, fakeService, status, submitted } from './fakes.js';

const API = 'http://api.test/';

function clientFor(service: ReturnType<typeof fakeService>, storage = memoryStore()) {
  return createCheckoutClient({ apiUrl: API, fetch: service.fetch, storage });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('requests', () => {
  it('lists products from the API origin without a doubled slash, with the filter as query', async () => {
    const service = fakeService({ 'GET /api/products': { body: [{ sku: 'MUG-LOGO' }] } });
    const products = await clientFor(service).products({ category: 'Home' });
    expect(products).toEqual([{ sku: 'MUG-LOGO' }]);
    expect(service.calls[0]!.path).toBe('/api/products');
    expect(service.calls[0]!.query.get('category')).toBe('Home');
  });

  it("sends the shop's own headers (its JWT) with every request", async () => {
    const service = fakeService({ 'GET /api/products': { body: [] } });
    let token = 'jwt-1';
    const client = createCheckoutClient({ apiUrl: API, fetch: service.fetch, storage: memoryStore(), headers: () => ({ 'x-auth-token': token }) });
    await client.products();
    token = 'jwt-2';
    await client.products();
    expect(service.calls.map((call) => call.headers['x-auth-token'])).toEqual(['jwt-1', 'jwt-2']);
  });

  it('turns the error body into one CheckoutError with code, message and fields', async () => {
    const fields = { 'items.0.quantity': ['Must be at least 1.'] };
    const service = fakeService({ 'POST /api/checkout/quote': errorReply(400, 'validation_failed', 'Invalid cart.', { fields }) });
    const error = await clientFor(service).quote({ items: [{ sku: 'MUG-LOGO', quantity: 0 }] }).catch((e) => e);
    expect(error).toBeInstanceOf(CheckoutError);
    expect(error).toMatchObject({ code: 'validation_failed', message: 'Invalid cart.', status: 400, fields });
  });

  it('names a dropped connection network_error and an answer without the error body http_error', async () => {
    const dropped = fakeService({ 'GET /api/products': { drop: true } });
    await expect(clientFor(dropped).products()).rejects.toMatchObject({ code: 'network_error', status: 0 });
    const html = fakeService({ 'GET /api/products': { status: 502, body: 'Bad gateway' } });
    await expect(clientFor(html).products()).rejects.toMatchObject({ code: 'http_error', status: 502 });
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(30);
    expect(parseRetryAfter(null)).toBeNull();
  });
});

describe('startCheckout', () => {
  it('sends one Idempotency-Key per attempt and answers a second Pay with the same order', async () => {
    const service = fakeService({ 'POST /api/checkout/payment-intent': submitted() });
    const client = clientFor(service);
    const first = await client.startCheckout(CART);
    const again = await client.startCheckout(CART);
    expect(first).toMatchObject({ orderId: 'ord_1', checkoutToken: 'tok_1', resumed: false });
    expect(again).toMatchObject({ orderId: 'ord_1', checkoutToken: 'tok_1', resumed: true });
    expect(service.calls).toHaveLength(1);
    expect(service.calls[0]!.headers['Idempotency-Key']).toMatch(/^checkout-[0-9a-f]{32}$/);
    expect(service.calls[0]!.body).toEqual(CART);
  });

  it('keeps the attempt across a reload (a new client on the same sessionStorage)', async () => {
    const storage = memoryStore();
    const service = fakeService({ 'POST /api/checkout/payment-intent': [{ drop: true }, submitted()] });
    await expect(clientFor(service, storage).startCheckout(CART)).rejects.toMatchObject({ code: 'network_error' });
    const order = await clientFor(service, storage).startCheckout(CART);
    expect(order.orderId).toBe('ord_1');
    const [lost, resent] = service.calls;
    expect(resent!.headers['Idempotency-Key']).toBe(lost!.headers['Idempotency-Key']);
  });

  it("keeps the first answer's token: a guest's replay answers checkoutToken null", async () => {
    const storage = memoryStore();
    const service = fakeService({ 'POST /api/checkout/payment-intent': [submitted('ord_1', 'tok_1'), submitted('ord_1', null)] });
    await clientFor(service, storage).startCheckout(CART);
    const reloaded = clientFor(service, storage);
    const order = await reloaded.startCheckout(CART);
    expect(order).toMatchObject({ orderId: 'ord_1', checkoutToken: 'tok_1' });
    expect(reloaded.checkoutToken('ord_1')).toBe('tok_1');
  });

  it('starts a new attempt when the replay of a lost first answer carries no token', async () => {
    const service = fakeService({
      'POST /api/checkout/payment-intent': [{ drop: true }, submitted('ord_1', null), submitted('ord_2', 'tok_2')],
    });
    const client = clientFor(service);
    await expect(client.startCheckout(CART)).rejects.toMatchObject({ code: 'network_error' });
    const order = await client.startCheckout(CART);
    expect(order).toMatchObject({ orderId: 'ord_2', checkoutToken: 'tok_2' });
    const keys = service.calls.map((call) => call.headers['Idempotency-Key']);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
  });

  it('starts a new attempt for another body, and after out_of_stock', async () => {
    const service = fakeService({
      'POST /api/checkout/payment-intent': [errorReply(409, 'out_of_stock', 'Sold out.', { items: [] }), submitted(), submitted('ord_2', 'tok_2')],
    });
    const client = clientFor(service);
    await expect(client.startCheckout(CART)).rejects.toMatchObject({ code: 'out_of_stock', status: 409 });
    await client.startCheckout(CART);
    await client.startCheckout({ ...CART, email: 'grace@example.com' });
    const keys = service.calls.map((call) => call.headers['Idempotency-Key']);
    expect(new Set(keys).size).toBe(3);
  });

  it("resends the first submit's ConfirmationToken with the attempt's key", async () => {
    const service = fakeService({ 'POST /api/checkout/payment-intent': [{ drop: true }, submitted()] });
    const client = clientFor(service);
    await expect(client.startCheckout({ ...CART, confirmationTokenId: 'ctoken_first' })).rejects.toThrow();
    await client.startCheckout({ ...CART, confirmationTokenId: 'ctoken_second' });
    expect(service.calls.map((call) => call.body.confirmationTokenId)).toEqual(['ctoken_first', 'ctoken_first']);
  });
});

describe('watch', () => {
  it('yields each change once, long-polling with since, until the order is settled', async () => {
    const service = fakeService({ 'GET /api/checkout/ord_1': [status(1), status(1), status(2, 'PENDING', { status: 'succeeded' }), status(3, 'PAID')] });
    const seen = [];
    for await (const change of clientFor(service).watch('ord_1', 'tok_1')) seen.push(change.version);
    expect(seen).toEqual([1, 2, 3]);
    const polls = service.calls.map((call) => [call.query.get('wait'), call.query.get('since'), call.headers['X-Checkout-Token']]);
    expect(polls).toEqual([['0', null, 'tok_1'], ['20', '1', 'tok_1'], ['20', '1', 'tok_1'], ['20', '2', 'tok_1']]);
  });

  it('waits Retry-After on 429, then polls again', async () => {
    vi.useFakeTimers();
    const service = fakeService({
      'GET /api/checkout/ord_1': [status(1), errorReply(429, 'rate_limited', 'Slow down.', {}, { 'Retry-After': '3' }), status(2, 'PAID')],
    });
    const changes = clientFor(service).watch('ord_1', 'tok_1');
    expect((await changes.next()).value?.version).toBe(1);
    const next = changes.next();
    await vi.advanceTimersByTimeAsync(2999);
    expect(service.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect((await next).value?.version).toBe(2);
    expect(service.calls).toHaveLength(3);
  });

  it('backs off, doubling, on 503 without Retry-After and on a dropped connection', async () => {
    vi.useFakeTimers();
    const service = fakeService({
      'GET /api/checkout/ord_1': [errorReply(503, 'service_unavailable'), { drop: true }, status(1, 'PAID')],
    });
    const changes = clientFor(service).watch('ord_1', 'tok_1', { backoffMs: 1000 });
    const first = changes.next();
    await vi.advanceTimersByTimeAsync(999);
    expect(service.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(service.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1999);
    expect(service.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect((await first).value?.state).toBe('PAID');
  });

  it('ends with the error on anything else (a wrong token is not_found)', async () => {
    const service = fakeService({ 'GET /api/checkout/ord_1': errorReply(404, 'not_found') });
    await expect(clientFor(service).watch('ord_1', 'wrong').next()).rejects.toMatchObject({ code: 'not_found' });
  });

  it('uses the token this tab was given at submit', async () => {
    const service = fakeService({ 'POST /api/checkout/payment-intent': submitted(), 'GET /api/checkout/ord_1': status(1, 'PAID') });
    const client = clientFor(service);
    await client.startCheckout(CART);
    await client.watch('ord_1').next();
    expect(service.calls[1]!.headers['X-Checkout-Token']).toBe('tok_1');
  });
});

describe('confirm and lookupReturn', () => {
  it('confirms with the checkout token and a key per ConfirmationToken', async () => {
    const service = fakeService({ 'POST /api/checkout/ord_1/confirm': { status: 202, body: { orderId: 'ord_1', state: 'PENDING', statusUrl: '' } } });
    await clientFor(service).confirm('ord_1', 'ctoken_abc', 'tok_1');
    const [call] = service.calls;
    expect(call!.body).toEqual({ confirmationTokenId: 'ctoken_abc' });
    expect(call!.headers).toMatchObject({ 'X-Checkout-Token': 'tok_1', 'Idempotency-Key': 'confirm-ord_1-ctoken_abc' });
  });

  it("finds the order from Stripe's return-URL parameters and keeps its token", async () => {
    const found = { orderId: 'ord_9', orderNumber: '1009', state: 'PAID', checkoutToken: 'tok_9' };
    const service = fakeService({ 'GET /api/checkout/lookup': { body: found }, 'GET /api/orders/ord_9': { body: { id: 'ord_9' } } });
    const client = clientFor(service);
    expect(await client.lookupReturn('https://shop.test/orders/ord_9?payment_intent=pi_1&payment_intent_client_secret=pi_1_secret_x&redirect_status=succeeded')).toEqual(found);
    expect(Object.fromEntries(service.calls[0]!.query)).toEqual({ payment_intent: 'pi_1', payment_intent_client_secret: 'pi_1_secret_x' });
    await client.order('ord_9');
    expect(service.calls[1]!.headers['X-Checkout-Token']).toBe('tok_9');
  });

  it('reads a hosted Checkout session_id, and asks nothing without parameters', async () => {
    const service = fakeService({ 'GET /api/checkout/lookup': { body: { orderId: 'o', orderNumber: '1', state: 'PAID', checkoutToken: 't' } } });
    const client = clientFor(service);
    expect(await client.lookupReturn({ search: '' })).toBeNull();
    expect(service.calls).toHaveLength(0);
    await client.lookupReturn(new URL('https://shop.test/done?session_id=cs_test_1'));
    expect(service.calls[0]!.query.get('session_id')).toBe('cs_test_1');
  });
});

describe('startHostedCheckout', () => {
  const URLS = { successUrl: 'https://shop.test/checkout/return?session_id={CHECKOUT_SESSION_ID}', cancelUrl: 'https://shop.test/checkout' };
  const SESSION = { sessionId: 'cs_1', url: 'https://checkout.stripe.test/c/pay/cs_1', expiresAt: '2030-01-01T00:30:00Z' };
  const withSession = (version: number) => ({ body: { ...status(version).body, checkout: SESSION } });

  it("submits the cart with ui hosted and the return URLs, and resolves with the status's session", async () => {
    const service = fakeService({
      'POST /api/checkout/payment-intent': submitted(),
      'GET /api/checkout/ord_1': [status(1), withSession(2)],
    });
    const started = await clientFor(service).startHostedCheckout(CART, URLS);
    expect(started).toMatchObject({ orderId: 'ord_1', checkoutToken: 'tok_1', checkout: SESSION });
    expect(service.calls[0]!.body).toEqual({ ...CART, ui: 'hosted', ...URLS });
    expect(service.calls.map((call) => call.query.get('since'))).toEqual([null, null, '1']);
  });

  it("answers a second press (back through the cancel URL) with the same order's session", async () => {
    const service = fakeService({ 'POST /api/checkout/payment-intent': submitted(), 'GET /api/checkout/ord_1': withSession(1) });
    const client = clientFor(service);
    await client.startHostedCheckout(CART, URLS);
    const again = await client.startHostedCheckout(CART, URLS);
    expect(again).toMatchObject({ orderId: 'ord_1', resumed: true, checkout: SESSION });
    expect(service.calls.filter((call) => call.method === 'POST')).toHaveLength(1);
  });

  it('rejects when the worker could not open the session', async () => {
    const failed = { code: 'payment_provider_error', message: 'Stripe is unavailable.' };
    const service = fakeService({ 'POST /api/checkout/payment-intent': submitted(), 'GET /api/checkout/ord_1': status(1, 'PENDING', {}, failed) });
    await expect(clientFor(service).startHostedCheckout(CART, URLS)).rejects.toMatchObject({ code: 'payment_provider_error', message: 'Stripe is unavailable.' });
  });

  it('rejects an order that has ended with checkout_ended, and the next press starts a new order', async () => {
    const service = fakeService({
      'POST /api/checkout/payment-intent': [submitted(), submitted('ord_2', 'tok_2')],
      'GET /api/checkout/ord_1': status(1, 'CANCELED'),
      'GET /api/checkout/ord_2': { body: { ...withSession(1).body, orderId: 'ord_2' } },
    });
    const client = clientFor(service);
    await expect(client.startHostedCheckout(CART, URLS)).rejects.toMatchObject({ code: 'checkout_ended' });
    expect(client.currentAttempt()).toBeNull();
    expect((await client.startHostedCheckout(CART, URLS)).orderId).toBe('ord_2');
  });
});

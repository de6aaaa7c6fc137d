// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createCheckoutClient, memoryStore } from '../src/index.js';
import { CheckoutElements, useCheckout } from '../src/react.js';
import { CART, fakeService, status, submitted } from './fakes.js';
import { fakeStripe } from './stripe.js';

// Stripe's <Elements> needs Stripe.js; here it records its options and hands out the fakes.
const fakes = vi.hoisted(() => ({ current: null as null | ReturnType<typeof import('./stripe.js').fakeStripe>, options: [] as unknown[] }));
vi.mock('@stripe/react-stripe-js', () => ({
  Elements: ({ options, children }: { options: unknown; children: unknown }) => {
    fakes.options.push(options);
    return children;
  },
  useStripe: () => fakes.current!.stripe,
  useElements: () => fakes.current!.elements,
}));

// React's act() warns unless the environment says it supports it.
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

afterEach(() => {
  cleanup();
  fakes.options.length = 0;
});

const QUOTE = { lineItems: [], subtotal: 2800, shipping: 500, tax: 0, total: 3300, currency: 'usd', purchasable: true, shortItems: [] };

function Pay({ onPaid }: { onPaid: (orderId: string) => void }) {
  const { quote, ready, paying, error, pay } = useCheckout();
  return (
    <form
      onSubmit={async (event) => {
        event.preventDefault();
        const paid = await pay({ email: CART.email, shippingAddress: CART.shippingAddress });
        if (paid) onPaid(paid.orderId);
      }}
    >
      {error && <p role="alert">{error.message}</p>}
      <button disabled={!ready}>{paying ? 'Paying…' : `Pay ${quote.total}`}</button>
    </form>
  );
}

function PayOnStripe({ onRedirect }: { onRedirect: (url: string) => void }) {
  const { ready, error, payOnStripe } = useCheckout();
  const urls = { successUrl: 'https://shop.test/checkout/return?session_id={CHECKOUT_SESSION_ID}', cancelUrl: 'https://shop.test/checkout' };
  return (
    <>
      {error && <p role="alert">{error.message}</p>}
      <button
        disabled={!ready}
        onClick={async () => {
          const started = await payOnStripe({ email: CART.email, shippingAddress: CART.shippingAddress }, urls);
          if (started) onRedirect(started.checkout.url);
        }}
      >
        Pay on Stripe's page
      </button>
    </>
  );
}

function setUp(statuses: ReturnType<typeof status>[]) {
  fakes.current = fakeStripe();
  const service = fakeService({
    'POST /api/checkout/quote': { body: QUOTE },
    'POST /api/checkout/payment-intent': submitted(),
    'GET /api/checkout/ord_1': statuses,
  });
  const client = createCheckoutClient({ apiUrl: 'http://api.test', fetch: service.fetch, storage: memoryStore() });
  const onPaid = vi.fn();
  render(
    <CheckoutElements client={client} stripe={null} items={CART.items} shippingAddress={{ country: 'US' }} fallback={<p>Loading…</p>}>
      <Pay onPaid={onPaid} />
    </CheckoutElements>,
  );
  return { service, onPaid };
}

describe('CheckoutElements + useCheckout', () => {
  it('quotes the cart and opens the Payment Element in deferred mode for its total', async () => {
    const { service } = setUp([status(1, 'PAID')]);
    expect(screen.getByText('Loading…')).toBeTruthy();
    await screen.findByRole('button', { name: 'Pay 3300' });
    expect(fakes.options.at(-1)).toEqual({ mode: 'payment', amount: 3300, currency: 'usd' });
    expect(service.calls[0]!.body).toEqual({ items: CART.items, shippingAddress: { country: 'US' } });
  });

  it('pays: the order is submitted with the cart and pay() resolves once PAID', async () => {
    const { service, onPaid } = setUp([status(1), status(2, 'PAID', { status: 'succeeded' })]);
    const button = await screen.findByRole('button', { name: 'Pay 3300' });
    await act(async () => {
      fireEvent.click(button);
    });
    await waitFor(() => expect(onPaid).toHaveBeenCalledWith('ord_1'));
    const submit = service.calls.find((call) => call.path === '/api/checkout/payment-intent')!;
    expect(submit.body).toMatchObject({ items: CART.items, email: CART.email, confirmationTokenId: 'ctoken_1' });
  });

  it('shows a decline as the error and stays on the page', async () => {
    const declined = { code: 'card_declined', message: 'Your card was declined.' };
    const { onPaid } = setUp([status(1, 'PENDING', { status: 'requires_payment_method' }, declined)]);
    const button = await screen.findByRole('button', { name: 'Pay 3300' });
    await act(async () => {
      fireEvent.click(button);
    });
    expect((await screen.findByRole('alert')).textContent).toBe('Your card was declined.');
    expect(onPaid).not.toHaveBeenCalled();
  });

  it("pays on Stripe's page: the cart goes with ui hosted and the session's url comes back", async () => {
    fakes.current = fakeStripe();
    const session = { sessionId: 'cs_1', url: 'https://checkout.stripe.test/c/pay/cs_1', expiresAt: null };
    const service = fakeService({
      'POST /api/checkout/quote': { body: QUOTE },
      'POST /api/checkout/payment-intent': submitted(),
      'GET /api/checkout/ord_1': [status(1), { body: { ...status(2).body, checkout: session } }],
    });
    const client = createCheckoutClient({ apiUrl: 'http://api.test', fetch: service.fetch, storage: memoryStore() });
    const onRedirect = vi.fn();
    render(
      <CheckoutElements client={client} stripe={null} items={CART.items} shippingAddress={{ country: 'US' }}>
        <PayOnStripe onRedirect={onRedirect} />
      </CheckoutElements>,
    );
    const button = await screen.findByRole('button', { name: "Pay on Stripe's page" });
    await act(async () => {
      fireEvent.click(button);
    });
    await waitFor(() => expect(onRedirect).toHaveBeenCalledWith(session.url));
    const submit = service.calls.find((call) => call.path === '/api/checkout/payment-intent')!;
    expect(submit.body).toMatchObject({ items: CART.items, email: CART.email, ui: 'hosted' });
    expect(submit.body.confirmationTokenId).toBeUndefined();
    expect(fakes.current.mock.submit).not.toHaveBeenCalled(); // no Payment Element involved
  });
});

// React: <CheckoutElements> quotes the cart and hosts Stripe's <Elements> in deferred-intent
// mode (amount and currency from the quote, no intent yet); useCheckout() inside it gives
// the quote and pay(): elements.submit() → the order → confirmation → PAID.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { Elements, useElements, useStripe } from '@stripe/react-stripe-js';
import type { Stripe, StripeElementsOptionsMode } from '@stripe/stripe-js';
import type {
  CartLine,
  CheckoutClient,
  CheckoutRequest,
  CheckoutStatus,
  HostedCheckoutOptions,
  Quote,
  QuoteRequest,
  StartedHostedCheckout,
} from './client.js';
import { CheckoutError } from './errors.js';
import { payCheckout, type Flow, type PaidCheckout } from './pay.js';

export { CHECKOUT_ENDED, payCheckout } from './pay.js';
export type { Flow, PaidCheckout, PayOptions } from './pay.js';

export interface CheckoutElementsProps {
  client: CheckoutClient;
  /** `loadStripe(publishableKey)` (or a Stripe object). */
  stripe: PromiseLike<Stripe | null> | Stripe | null;
  /** The cart: `[{sku, quantity}]`. Quoted again whenever it changes. */
  items: CartLine[];
  /** As much of the address as is known (the country prices shipping and tax). */
  shippingAddress?: QuoteRequest['shippingAddress'];
  /** `server` (default, recommended) or `client-secret`. */
  flow?: Flow;
  /** The client-secret flow's `return_url` for redirect-based methods (default: this page). */
  returnUrl?: string;
  /** More options for `stripe.elements()` (appearance, fonts…). */
  elementsOptions?: Omit<StripeElementsOptionsMode, 'mode' | 'amount' | 'currency'>;
  /** Shown until the first quote (or instead of it when the quote failed). */
  fallback?: ReactNode | ((error: CheckoutError | null) => ReactNode);
  children: ReactNode;
}

interface Context {
  client: CheckoutClient;
  items: CartLine[];
  quote: Quote;
  quoteError: CheckoutError | null;
  upToDate: boolean;
  flow: Flow;
  returnUrl?: string;
}

const CheckoutContext = createContext<Context | null>(null);

/** Quotes the cart and renders Stripe's <Elements> for the quote's amount. */
export function CheckoutElements(props: CheckoutElementsProps) {
  const { client, items, shippingAddress } = props;
  const [quoted, setQuoted] = useState<{ quote: Quote; items: CartLine[] } | null>(null);
  const [quoteError, setQuoteError] = useState<CheckoutError | null>(null);
  const country = shippingAddress?.country;
  const address = JSON.stringify(shippingAddress ?? null);

  useEffect(() => {
    if (items.length === 0) return undefined;
    let current = true;
    setQuoteError(null);
    client.quote({ items, shippingAddress: shippingAddress ?? null }).then(
      (quote) => current && setQuoted({ quote, items }),
      (err: unknown) => current && setQuoteError(asCheckoutError(err)),
    );
    return () => {
      current = false;
    };
    // The address's content, not its identity, decides whether to quote again.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, items, country, address]);

  const total = quoted?.quote.total;
  const currency = quoted?.quote.currency ?? 'usd';
  const options = useMemo(
    () => (total === undefined ? null : { ...props.elementsOptions, mode: 'payment' as const, amount: total, currency }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [total, currency],
  );
  const context = useMemo<Context | null>(
    () => quoted && {
      client,
      items,
      quote: quoted.quote,
      quoteError,
      upToDate: quoted.items === items,
      flow: props.flow ?? 'server',
      returnUrl: props.returnUrl,
    },
    [client, items, quoted, quoteError, props.flow, props.returnUrl],
  );

  if (!context || !options || items.length === 0) {
    const { fallback = null } = props;
    return <>{typeof fallback === 'function' ? fallback(quoteError) : fallback}</>;
  }
  return (
    <CheckoutContext.Provider value={context}>
      <Elements stripe={props.stripe} options={options}>
        {props.children}
      </Elements>
    </CheckoutContext.Provider>
  );
}

/** What the buyer fills in besides the card: the submit's body without the cart. */
export type PayDetails = Omit<CheckoutRequest, 'items' | 'confirmationTokenId'>;

export interface UseCheckout {
  /** The server's prices for the cart (`lineItems`, `total`, `purchasable`, `shortItems`…). */
  quote: Quote;
  /** The last quote failed (the previous quote stays). */
  quoteError: CheckoutError | null;
  /** Pay can be pressed: Stripe loaded, the quote is the cart's, every line in stock. */
  ready: boolean;
  paying: boolean;
  /** Why the last pay() did not go through (a decline: Pay again retries the same order). */
  error: CheckoutError | null;
  /** The checkout status while paying (`queue` for a position in a flash sale). */
  status: CheckoutStatus | null;
  /** Pay the cart; resolves with the paid order, or null (then `error` says why). */
  pay(details: PayDetails): Promise<PaidCheckout | null>;
  /** Pay on Stripe's hosted page instead: resolves with the order and its session (redirect
   * to `checkout.url`), or null (then `error` says why). */
  payOnStripe(details: PayDetails, urls: Omit<HostedCheckoutOptions, 'signal'>): Promise<StartedHostedCheckout | null>;
  client: CheckoutClient;
}

/** The checkout inside <CheckoutElements>: the quote, and pay(). */
export function useCheckout(): UseCheckout {
  const context = useContext(CheckoutContext);
  if (!context) throw new Error('useCheckout() must be used inside <CheckoutElements>.');
  const stripe = useStripe();
  const elements = useElements();
  const [paying, setPaying] = useState(false);
  const [error, setError] = useState<CheckoutError | null>(null);
  const [status, setStatus] = useState<CheckoutStatus | null>(null);
  const busy = useRef(false); // a double click never starts a second payment
  const { client, items, flow, returnUrl } = context;

  /** One payment at a time: `paying` while it runs, its failure as `error`. */
  const once = useCallback(async <T,>(payment: () => Promise<T>): Promise<T | null> => {
    if (busy.current) return null;
    busy.current = true;
    setPaying(true);
    setError(null);
    try {
      return await payment();
    } catch (err) {
      setError(asCheckoutError(err));
      return null;
    } finally {
      busy.current = false;
      setPaying(false);
    }
  }, []);

  const pay = useCallback(
    async (details: PayDetails): Promise<PaidCheckout | null> => {
      if (!stripe || !elements) return null;
      const body = { ...details, items };
      return once(() => payCheckout({ client, stripe, elements, body, flow, returnUrl, onStatus: setStatus }));
    },
    [client, stripe, elements, items, flow, returnUrl, once],
  );

  const payOnStripe = useCallback(
    (details: PayDetails, urls: Omit<HostedCheckoutOptions, 'signal'>) =>
      once(() => client.startHostedCheckout({ ...details, items }, urls)),
    [client, items, once],
  );

  const { quote } = context;
  return {
    quote,
    quoteError: context.quoteError,
    ready: Boolean(stripe && elements) && context.upToDate && quote.purchasable && !paying,
    paying,
    error,
    status,
    pay,
    payOnStripe,
    client,
  };
}

function asCheckoutError(err: unknown): CheckoutError {
  if (err instanceof CheckoutError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CheckoutError({ code: 'client_error', message });
}

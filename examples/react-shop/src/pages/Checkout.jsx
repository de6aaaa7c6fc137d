import { useEffect, useMemo, useState } from 'react';
import { Elements, PaymentElement, useElements, useStripe } from '@stripe/react-stripe-js';
import { CheckoutError, intentElementsOptions, payIntent } from '@checkout-service/client';
import { CheckoutElements, useCheckout } from '@checkout-service/client/react';
import { client } from '../checkout.js';
import { describeError } from '../errors.js';
import { formatMinor } from '../money.js';
import { navigate } from '../router.jsx';
import { buyerToken } from '../storage.js';
import { stripePromise } from '../stripe.js';
import ErrorBox from '../components/ErrorBox.jsx';

const COUNTRIES = { US: 'United States', CA: 'Canada', GB: 'United Kingdom', DE: 'Germany', FR: 'France', NL: 'Netherlands' };
const EMPTY_DETAILS = { email: '', name: '', line1: '', city: '', postalCode: '', country: 'US' };

export default function Checkout({ cart, setQuantity, onPaid }) {
  const [details, setDetails] = useState(EMPTY_DETAILS);
  // The country prices shipping and tax: <CheckoutElements> quotes again when it changes.
  const destination = useMemo(() => ({ country: details.country }), [details.country]);

  if (cart.length === 0) return <section><h1>Your cart</h1><p>Your cart is empty.</p></section>;
  return (
    <section className="checkout" aria-labelledby="checkout-title">
      <h1 id="checkout-title">Checkout</h1>
      <CheckoutElements
        client={client}
        stripe={stripePromise}
        items={cart}
        shippingAddress={destination}
        fallback={(error) => <ErrorBox error={error && describeError(error)} id="quote-error" />}
      >
        <PayForm cart={cart} details={details} setQuantity={setQuantity} onPaid={onPaid}>
          <DetailsForm details={details} onChange={setDetails} />
        </PayForm>
      </CheckoutElements>
    </section>
  );
}

function CartLines({ quote, setQuantity }) {
  const money = (amount) => formatMinor(amount, quote.currency);
  return (
    <div className="cart">
      <h2>Your cart</h2>
      <ul className="cart-lines">
        {quote.lineItems.map((line) => (
          <li key={line.sku} data-sku={line.sku}>
            <span className="line-name">{line.name}</span>
            <span className="quantity">
              <button type="button" aria-label={`One fewer ${line.name}`} onClick={() => setQuantity(line.sku, line.quantity - 1)}>−</button>
              <span aria-label={`${line.name} quantity`}>{line.quantity}</span>
              <button type="button" aria-label={`One more ${line.name}`} disabled={line.quantity >= line.available} onClick={() => setQuantity(line.sku, line.quantity + 1)}>+</button>
            </span>
            <span className="amount">{money(line.amount)}</span>
            <button type="button" className="link" onClick={() => setQuantity(line.sku, 0)}>Remove<span className="sr-only"> {line.name}</span></button>
          </li>
        ))}
      </ul>
      <dl className="totals">
        <dt>Subtotal</dt><dd id="subtotal">{money(quote.subtotal)}</dd>
        <dt>Shipping</dt><dd>{money(quote.shipping)}</dd>
        <dt>Tax</dt><dd>{money(quote.tax)}</dd>
        <dt>Total</dt><dd id="total">{money(quote.total)}</dd>
      </dl>
    </div>
  );
}

/** The quote says what is short before the buyer presses Pay (the submit would refuse it). */
function SoldOutLines({ quote, setQuantity }) {
  return (
    <div id="sold-out" className="error-box" role="alert">
      <strong>Some items in your cart are no longer available</strong>
      <ul>
        {quote.shortItems.map((item) => (
          <li key={item.sku} data-sku={item.sku}>
            {item.available === 0
              ? `${item.name} is sold out.`
              : `Only ${item.available} of ${item.name} left (you have ${item.requested}).`}{' '}
            <button type="button" onClick={() => setQuantity(item.sku, item.available)}>
              {item.available === 0 ? `Remove ${item.name}` : `Take ${item.available}`}
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

function DetailsForm({ details, onChange }) {
  const field = (name, label, props = {}) => (
    <label>
      {label}
      <input name={name} value={details[name]} required onChange={(e) => onChange({ ...details, [name]: e.target.value })} {...props} />
    </label>
  );
  return (
    <fieldset className="details">
      <legend>Contact and shipping</legend>
      {field('email', 'Email', { type: 'email', autoComplete: 'email' })}
      {field('name', 'Full name', { autoComplete: 'name' })}
      {field('line1', 'Address line 1', { autoComplete: 'address-line1' })}
      {field('city', 'City', { autoComplete: 'address-level2' })}
      {field('postalCode', 'Postal code', { autoComplete: 'postal-code' })}
      <label>
        Country
        <select name="country" value={details.country} onChange={(e) => onChange({ ...details, country: e.target.value })}>
          {Object.entries(COUNTRIES).map(([code, name]) => <option key={code} value={code}>{name}</option>)}
        </select>
      </label>
    </fieldset>
  );
}

/** The details (children) are in the same form, so the browser checks them on Pay first. */
function PayForm({ cart, details, setQuantity, onPaid, children }) {
  const { quote, quoteError, ready, paying, error, pay, payOnStripe } = useCheckout();
  const quoteProblem = useMemo(() => quoteError && describeError(quoteError), [quoteError]);
  const payProblem = useMemo(() => error && describeError(error), [error]);

  async function handleSubmit(event) {
    event.preventDefault();
    // elements.submit() → the order (same one after a decline) → confirmation → PAID.
    const paid = await pay(buyerOf(details));
    if (!paid) return;
    onPaid();
    navigate(`/orders/${encodeURIComponent(paid.orderId)}`);
  }

  /** The other way to pay: Stripe's hosted Checkout page (a redirect, then back to
   * /checkout/return?session_id=…). The same details; the browser checks them first. */
  async function handleHosted(event) {
    if (!event.currentTarget.form.reportValidity()) return;
    const origin = window.location.origin;
    const started = await payOnStripe(buyerOf(details), {
      successUrl: `${origin}/checkout/return?session_id={CHECKOUT_SESSION_ID}`,
      cancelUrl: `${origin}/checkout`,
    });
    if (started) window.location.assign(started.checkout.url);
  }

  // The other way to pay, offered to guests and signed-in buyers alike.
  const hostedButton = (
    <>
      <p className="or">or</p>
      <button type="button" id="pay-hosted" className="secondary" disabled={!ready} onClick={handleHosted}>
        Pay on Stripe's page
      </button>
    </>
  );

  return (
    <>
      <ErrorBox error={quoteProblem} id="quote-error" />
      <CartLines quote={quote} setQuantity={setQuantity} />
      {quote.purchasable === false && <SoldOutLines quote={quote} setQuantity={setQuantity} />}
      {buyerToken() ? (
        <SignedInPay cart={cart} details={details} ready={ready} onPaid={onPaid} hosted={hostedButton} hostedProblem={payProblem}>
          {children}
        </SignedInPay>
      ) : (
        <form className="pay-form" onSubmit={handleSubmit}>
          {children}
          <section className="payment" aria-labelledby="payment-title">
            <h2 id="payment-title">Payment</h2>
            <div id="payment-element"><PaymentElement /></div>
            <ErrorBox error={payProblem} id="payment-error" />
            <button type="submit" id="pay" disabled={!ready}>
              {paying ? 'Paying…' : `Pay ${formatMinor(quote.total, quote.currency)}`}
            </button>
            {hostedButton}
          </section>
        </form>
      )}
    </>
  );
}

/** The submit's buyer fields from the details form (the client adds the cart). */
function buyerOf({ email, name, line1, city, postalCode, country }) {
  return { email, shippingAddress: { name, line1, city, postalCode, country } };
}

/**
 * A signed-in buyer pays in two steps so the Payment Element can offer their saved cards:
 * "Continue to payment" submits the cart (with savePaymentMethod when ticked) and waits
 * for the intent's secrets (`client.paymentSecrets`); then Elements is made for that
 * intent with its CustomerSession (`intentElementsOptions`) and "Pay" confirms it.
 */
function SignedInPay({ cart, details, ready, onPaid, hosted, hostedProblem, children }) {
  const { quote } = useCheckout();
  const [save, setSave] = useState(false);
  const [intent, setIntent] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  // The cart changed after "Continue": that order no longer matches; start again.
  useEffect(() => setIntent(null), [cart]);

  async function handleContinue(event) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      const body = { ...buyerOf(details), items: cart, ...(save ? { savePaymentMethod: true } : {}) };
      const order = await client.startCheckout(body);
      const secrets = await client.paymentSecrets(order.orderId, order.checkoutToken);
      setIntent({ order, secrets });
    } catch (err) {
      if (err instanceof CheckoutError && ['checkout_ended', 'not_found', 'invalid_state'].includes(err.code)) {
        client.clearAttempt(); // that order is over: the next Continue starts a new one
      }
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  if (!intent) {
    return (
      <form className="pay-form" onSubmit={handleContinue}>
        {children}
        <section className="payment" aria-labelledby="payment-title">
          <h2 id="payment-title">Payment</h2>
          <label className="save-card">
            <input type="checkbox" checked={save} onChange={(e) => setSave(e.target.checked)} />
            Save this card for next time
          </label>
          <ErrorBox error={error ?? hostedProblem} id="payment-error" />
          <button type="submit" id="pay" disabled={!ready || busy}>
            {busy ? 'Preparing…' : `Continue to payment (${formatMinor(quote.total, quote.currency)})`}
          </button>
          {hosted}
        </section>
      </form>
    );
  }
  return (
    <Elements key={intent.secrets.clientSecret} stripe={stripePromise} options={intentElementsOptions(intent.secrets)}>
      <IntentPayForm order={intent.order} quote={quote} onPaid={onPaid} />
    </Elements>
  );
}

/** Pay the order's intent: a saved card or a new one, confirmed in the browser. */
function IntentPayForm({ order, quote, onPaid }) {
  const stripe = useStripe();
  const elements = useElements();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  async function handleSubmit(event) {
    event.preventDefault();
    if (!stripe || !elements || busy) return;
    setBusy(true);
    setError(null);
    try {
      const returnUrl = `${window.location.origin}/orders/${encodeURIComponent(order.orderId)}`;
      // Declined or not authenticated: the order and its intent stay; Pay again retries.
      await payIntent({ client, stripe, elements, order, returnUrl });
      onPaid();
      navigate(`/orders/${encodeURIComponent(order.orderId)}`);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="pay-form" onSubmit={handleSubmit}>
      <section className="payment" aria-labelledby="payment-title">
        <h2 id="payment-title">Payment</h2>
        <div id="payment-element"><PaymentElement /></div>
        <ErrorBox error={error} id="payment-error" />
        <button type="submit" id="pay" disabled={!stripe || busy}>
          {busy ? 'Paying…' : `Pay ${formatMinor(quote.total, quote.currency)}`}
        </button>
      </section>
    </form>
  );
}

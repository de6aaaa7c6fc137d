import { useEffect, useMemo, useState } from 'react';
import { Elements, PaymentElement, useElements, useStripe } from '@stripe/react-stripe-js';
import { ApiError, getCheckoutStatus, getQuote, submitCheckout } from '../api.js';
import { describeError } from '../errors.js';
import { formatMinor } from '../money.js';
import { navigate } from '../router.jsx';
import { attemptFor, clearAttempt, rememberOrderToken, saveAttempt } from '../storage.js';
import { stripePromise } from '../stripe.js';
import ErrorBox from '../components/ErrorBox.jsx';

const COUNTRIES = { US: 'United States', CA: 'Canada', GB: 'United Kingdom', DE: 'Germany', FR: 'France', NL: 'Netherlands' };
const EMPTY_DETAILS = { email: '', name: '', line1: '', city: '', postalCode: '', country: 'US' };

export default function Checkout({ cart, setQuantity, onPaid }) {
  const [details, setDetails] = useState(EMPTY_DETAILS);
  const [quote, setQuote] = useState(null);
  const [quoteError, setQuoteError] = useState(null);

  // The server prices the cart: ask again whenever the cart or the destination changes.
  useEffect(() => {
    if (cart.length === 0) return undefined;
    let current = true;
    setQuoteError(null);
    getQuote(cart, details.country).then(
      (answer) => current && setQuote({ ...answer, cart }),
      (err) => current && setQuoteError(describeError(err)),
    );
    return () => { current = false; };
  }, [cart, details.country]);

  // Deferred intent: Elements knows the amount; the PaymentIntent is created after Pay.
  const total = quote?.total;
  const currency = quote?.currency;
  const elementsOptions = useMemo(
    () => (total === undefined ? null : { mode: 'payment', amount: total, currency }),
    [total, currency],
  );

  if (cart.length === 0) return <section><h1>Your cart</h1><p>Your cart is empty.</p></section>;

  const upToDate = quote?.cart === cart;
  return (
    <section className="checkout" aria-labelledby="checkout-title">
      <h1 id="checkout-title">Checkout</h1>
      <ErrorBox error={quoteError} id="quote-error" />
      {quote && <CartLines quote={quote} setQuantity={setQuantity} />}
      {quote?.purchasable === false && <SoldOutLines quote={quote} setQuantity={setQuantity} />}
      {quote && (
        <Elements stripe={stripePromise} options={elementsOptions}>
          <PayForm cart={cart} details={details} quote={quote} ready={upToDate && quote.purchasable} onPaid={onPaid}>
            <DetailsForm details={details} onChange={setDetails} />
          </PayForm>
        </Elements>
      )}
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

/** Long-poll the checkout status until the worker has done its part: by default the
 * PaymentIntent's client secret; for Stripe's hosted page, the Checkout Session. */
async function checkoutStatusWithSecret(attempt, ready = (status) => status.payment.clientSecret) {
  let options = { wait: 0 };
  for (;;) {
    const status = await getCheckoutStatus(attempt.orderId, attempt.checkoutToken, options);
    if (status.state !== 'PENDING') throw new ApiError('The order is closed.', { status: 409, error: { code: 'invalid_state' } });
    if (status.error && status.payment.status === 'creating') throw new ApiError(status.error.message, { status: 503, error: status.error });
    if (ready(status)) return status;
    options = { wait: 20, since: status.version };   // `since`: no change between two polls is missed
  }
}

/** Submit once per attempt (same body, same key); the attempt then knows its order. */
async function orderFor(body) {
  let attempt = attemptFor(body);
  if (!attempt.orderId) {
    let order = await submitCheckout(body, attempt.key);     // 202: stock held, payment on its way
    if (!order.checkoutToken) {
      // A replay whose first answer we lost: only that answer carried the token (a key
      // is no credential). That order's hold lapses; this is a new attempt.
      clearAttempt();
      attempt = attemptFor(body);
      order = await submitCheckout(body, attempt.key);
    }
    Object.assign(attempt, { orderId: order.orderId, checkoutToken: order.checkoutToken });
    saveAttempt(attempt);
    rememberOrderToken(order.orderId, order.checkoutToken);
  }
  return attempt;
}

/** The submit body: the cart and the buyer's details (the server prices it). */
function bodyOf(cart, details) {
  const { email, name, line1, city, postalCode, country } = details;
  return { items: cart, email, shippingAddress: { name, line1, city, postalCode, country } };
}

/** The details (children) are in the same form, so the browser checks them on Pay first. */
function PayForm({ cart, details, quote, ready, onPaid, children }) {
  const stripe = useStripe();
  const elements = useElements();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  function paid(orderId) {
    clearAttempt();
    onPaid();
    navigate(`/orders/${encodeURIComponent(orderId)}`);
  }

  async function handleSubmit(event) {
    event.preventDefault();
    if (!stripe || !elements || busy) return;
    setBusy(true);
    setError(null);
    try {
      // Stripe wants elements.submit() first, before any other async work.
      const { error: submitError } = await elements.submit();
      if (submitError) return setError(describeError(submitError));
      const attempt = await orderFor(bodyOf(cart, details));
      const status = await checkoutStatusWithSecret(attempt);
      if (['succeeded', 'processing'].includes(status.payment.status)) return paid(attempt.orderId);
      const { error: payError } = await stripe.confirmPayment({
        elements,
        clientSecret: status.payment.clientSecret,
        redirect: 'if_required',
        confirmParams: { return_url: `${window.location.origin}/orders/${attempt.orderId}` },
      });
      // Declined or not authenticated: the order and its intent stay; Pay again retries them.
      if (payError) return setError(describeError(payError));
      paid(attempt.orderId);
    } catch (err) {
      if (['not_found', 'invalid_state', 'out_of_stock'].includes(err.code)) clearAttempt();
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  /** The other way to pay: Stripe's hosted Checkout page (a redirect, then back to
   * /checkout/return?session_id=…). The same details; the browser checks them first. */
  async function payOnStripe(event) {
    if (busy || !event.currentTarget.form.reportValidity()) return;
    setBusy(true);
    setError(null);
    try {
      const origin = window.location.origin;
      const attempt = await orderFor({
        ...bodyOf(cart, details),
        ui: 'hosted',
        successUrl: `${origin}/checkout/return?session_id={CHECKOUT_SESSION_ID}`,
        cancelUrl: `${origin}/checkout`,
      });
      const status = await checkoutStatusWithSecret(attempt, (s) => s.checkout?.url);
      window.location.assign(status.checkout.url);
    } catch (err) {
      if (['not_found', 'invalid_state', 'out_of_stock'].includes(err.code)) clearAttempt();
      setError(describeError(err));
      setBusy(false);
    }
  }

  return (
    <form className="pay-form" onSubmit={handleSubmit}>
      {children}
      <section className="payment" aria-labelledby="payment-title">
        <h2 id="payment-title">Payment</h2>
        <div id="payment-element"><PaymentElement /></div>
        <ErrorBox error={error} id="payment-error" />
        <button type="submit" id="pay" disabled={!stripe || !ready || busy}>
          {busy ? 'Paying…' : `Pay ${formatMinor(quote.total, quote.currency)}`}
        </button>
        <p className="or">or</p>
        <button type="button" id="pay-hosted" className="secondary" disabled={!ready || busy} onClick={payOnStripe}>
          Pay on Stripe's page
        </button>
      </section>
    </form>
  );
}

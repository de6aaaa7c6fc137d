import { useEffect, useState } from 'react';
import { ApiError, getCheckoutStatus, getOrder, lookupOrder } from '../api.js';
import { describeError } from '../errors.js';
import { formatMinor } from '../money.js';
import { Link } from '../router.jsx';
import { orderToken, rememberOrderToken } from '../storage.js';
import ErrorBox from '../components/ErrorBox.jsx';

export const STATE_LABELS = {
  PENDING: 'Pending', AUTHORIZED: 'Authorized', PAID: 'Paid', FULFILLING: 'Being prepared',
  FULFILLED: 'Shipped', FAILED: 'Failed', CANCELED: 'Canceled', REFUNDED: 'Refunded',
};
// The webhook moves the order; this page follows it until it leaves PENDING.
const SETTLED = ['PAID', 'FULFILLING', 'FULFILLED', 'REFUNDED', 'FAILED', 'CANCELED'];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The checkout token: kept at submit in this tab, or — back from a redirect-based
 * payment, perhaps in a fresh tab — looked up from Stripe's return_url parameters,
 * which are then dropped from the address bar.
 */
async function tokenFor(orderId) {
  const params = new URLSearchParams(window.location.search);
  const intent = params.get('payment_intent');
  const secret = params.get('payment_intent_client_secret');
  if (intent && secret) {
    const found = await lookupOrder(intent, secret);
    rememberOrderToken(found.orderId, found.checkoutToken);
    params.delete('payment_intent');
    params.delete('payment_intent_client_secret');
    const query = params.toString();
    window.history.replaceState(null, '', `${window.location.pathname}${query ? `?${query}` : ''}`);
    return found.orderId === orderId ? found.checkoutToken : null;
  }
  return orderToken(orderId);
}

export default function OrderPage({ orderId }) {
  const [order, setOrder] = useState(null);
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    let stopped = false;
    async function follow() {
      const token = await tokenFor(orderId);
      if (!token) {
        return setError({ title: 'We cannot show this order here', message: 'Track it with its order number and your email instead.' });
      }
      let since = null;
      while (!stopped) {
        let next;
        try {
          // Long-poll: answers at once when the order changed after `since`, else within 20 s.
          next = await getCheckoutStatus(orderId, token, { wait: since === null ? 0 : 20, since });
        } catch (err) {
          if (err instanceof ApiError && (err.status === 0 || err.status === 429 || err.status >= 500)) {
            await sleep(2000);   // a dropped connection or a busy server: keep following
            continue;
          }
          throw err;
        }
        if (stopped) return;
        if (next.version !== since) {
          setStatus(next);
          setOrder(await getOrder(orderId, token));   // the order with its audit trail
        }
        if (SETTLED.includes(next.state)) return;
        since = next.version;
      }
    }
    follow().catch((err) => !stopped && setError(describeError(err)));
    return () => { stopped = true; };
  }, [orderId]);

  if (error) return <ErrorBox error={error} />;
  if (!order || !status) return <p aria-busy="true">Loading your order…</p>;

  const currency = status.totals.currency;
  return (
    <section className="order" aria-labelledby="order-title">
      <h1 id="order-title">Order <span id="order-number">#{order.orderNumber}</span></h1>
      <p className="order-state" aria-live="polite">
        Status: <strong id="order-state" data-state={order.state}>{STATE_LABELS[order.state] || order.state}</strong>
      </p>
      <p>{explain(status)}</p>
      <ul className="cart-lines">
        {status.lineItems.map((line) => (
          <li key={line.sku}>{line.quantity} × {line.name} <span className="amount">{formatMinor(line.amount, currency)}</span></li>
        ))}
      </ul>
      <p>Total paid: <strong id="order-total">{formatMinor(status.totals.total, currency)}</strong></p>
      <details>
        <summary>Order history</summary>
        <ol className="events">
          {order.events.map((event, index) => (
            <li key={index}><time dateTime={event.ts}>{new Date(event.ts).toLocaleString()}</time> {event.type}</li>
          ))}
        </ol>
      </details>
      <p><Link to={`/track?number=${encodeURIComponent(order.orderNumber)}`}>Track this order later</Link></p>
    </section>
  );
}

function explain(status) {
  if (status.state === 'PAID') return 'Thank you! Your payment was received; a receipt is on its way by email.';
  if (status.state !== 'PENDING') return 'This order is closed.';
  if (['succeeded', 'processing'].includes(status.payment.status)) {
    return 'Your payment went through; we are waiting for the confirmation. This page updates by itself.';
  }
  if (status.error) return `The last payment attempt did not go through: ${status.error.message}`;
  return 'Waiting for your payment. This page updates by itself.';
}

import { useEffect, useState } from 'react';
import { client } from '../checkout.js';
import { describeError } from '../errors.js';
import { formatMinor } from '../money.js';
import { Link } from '../router.jsx';
import ErrorBox from '../components/ErrorBox.jsx';

export const STATE_LABELS = {
  PENDING: 'Pending', AUTHORIZED: 'Authorized', PAID: 'Paid', FULFILLING: 'Being prepared',
  FULFILLED: 'Shipped', FAILED: 'Failed', CANCELED: 'Canceled', REFUNDED: 'Refunded',
};
/**
 * The checkout token: kept by the client at submit in this tab, or — back from a
 * redirect-based payment, perhaps in a fresh tab — looked up from Stripe's return_url
 * parameters, which are then dropped from the address bar.
 */
async function tokenFor(orderId) {
  const found = await client.lookupReturn(window.location);
  if (found) {
    const params = new URLSearchParams(window.location.search);
    ['payment_intent', 'payment_intent_client_secret', 'session_id'].forEach((name) => params.delete(name));
    const query = params.toString();
    window.history.replaceState(null, '', `${window.location.pathname}${query ? `?${query}` : ''}`);
    return found.orderId === orderId ? found.checkoutToken : null;
  }
  return client.checkoutToken(orderId);
}

export default function OrderPage({ orderId }) {
  const [order, setOrder] = useState(null);
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    const stop = new AbortController();
    async function follow() {
      const token = await tokenFor(orderId);
      if (!token) {
        return setError({ title: 'We cannot show this order here', message: 'Track it with its order number and your email instead.' });
      }
      // Each change of the checkout (the long-poll with `since`; 429/503 and dropped
      // connections wait and poll again) until the webhook settles the order.
      for await (const next of client.watch(orderId, token, { signal: stop.signal })) {
        setStatus(next);
        setOrder(await client.order(orderId, token));   // the order with its audit trail
      }
    }
    follow().catch((err) => !stop.signal.aborted && setError(describeError(err)));
    return () => stop.abort();
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

import { useEffect, useState } from 'react';
import { client } from '../checkout.js';
import { navigate } from '../router.jsx';
import ErrorBox from '../components/ErrorBox.jsx';

/**
 * Back from Stripe's hosted Checkout page: Stripe put the session id in the success URL;
 * `client.lookupReturn()` trades it for the order and keeps its checkout token for this
 * tab, then the order page follows the payment to PAID.
 */
export default function HostedReturn({ onPaid }) {
  const [error, setError] = useState(null);
  useEffect(() => {
    client.lookupReturn(window.location).then(
      (found) => {
        if (!found) {
          setError({ title: 'We cannot find this payment', message: 'Stripe sent you back without a session.' });
          return;
        }
        client.clearAttempt();
        onPaid();
        navigate(`/orders/${encodeURIComponent(found.orderId)}`);
      },
      () => setError({ title: 'We cannot find this payment', message: 'Track your order with its number and your email instead.' }),
    );
  }, [onPaid]);
  return (
    <section aria-labelledby="return-title">
      <h1 id="return-title">Finishing your order</h1>
      {error ? <ErrorBox error={error} id="return-error" /> : <p>Looking up your order…</p>}
    </section>
  );
}

import { useEffect, useState } from 'react';
import { lookupSession } from '../api.js';
import { navigate } from '../router.jsx';
import { clearAttempt, rememberOrderToken } from '../storage.js';
import ErrorBox from '../components/ErrorBox.jsx';

/**
 * Back from Stripe's hosted Checkout page: Stripe put the session id in the success URL;
 * the service trades it for the order and its checkout token, then the order page follows
 * the payment to PAID.
 */
export default function HostedReturn({ onPaid }) {
  const [error, setError] = useState(null);
  useEffect(() => {
    const sessionId = new URLSearchParams(window.location.search).get('session_id');
    if (!sessionId) {
      setError({ title: 'We cannot find this payment', message: 'Stripe sent you back without a session.' });
      return;
    }
    lookupSession(sessionId).then(
      (found) => {
        rememberOrderToken(found.orderId, found.checkoutToken);
        clearAttempt();
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

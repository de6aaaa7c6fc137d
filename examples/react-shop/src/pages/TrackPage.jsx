import { useState } from 'react';
import { client } from '../checkout.js';
import { describeError } from '../errors.js';
import { formatMinor } from '../money.js';
import { STATE_LABELS } from './OrderPage.jsx';
import ErrorBox from '../components/ErrorBox.jsx';

export default function TrackPage() {
  const [orderNumber, setOrderNumber] = useState(() => new URLSearchParams(window.location.search).get('number') || '');
  const [email, setEmail] = useState('');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);

  async function handleSubmit(event) {
    event.preventDefault();
    setError(null);
    setResult(null);
    try {
      setResult(await client.track(orderNumber.trim(), email.trim()));
    } catch (err) {
      setError(err.code === 'not_found'
        ? { title: 'No such order', message: 'Check the order number and the email you ordered with.' }
        : describeError(err));
    }
  }

  return (
    <section aria-labelledby="track-title">
      <h1 id="track-title">Track an order</h1>
      <form className="track" onSubmit={handleSubmit}>
        <label>Order number<input value={orderNumber} required onChange={(e) => setOrderNumber(e.target.value)} /></label>
        <label>Email<input type="email" value={email} required onChange={(e) => setEmail(e.target.value)} /></label>
        <button type="submit">Track</button>
      </form>
      <ErrorBox error={error} />
      {result && (
        <div id="tracking" aria-live="polite">
          <h2>Order #{result.orderNumber}: <span id="tracking-state">{STATE_LABELS[result.state] || result.state}</span></h2>
          <ol className="progress">
            {result.progress.map((step) => (
              <li key={step.state} className={step.reachedAt ? 'reached' : 'ahead'}>
                {STATE_LABELS[step.state] || step.state}
                {step.reachedAt ? <time dateTime={step.reachedAt}> {new Date(step.reachedAt).toLocaleString()}</time> : ' (not yet)'}
              </li>
            ))}
          </ol>
          <p>Total: {formatMinor(result.totals.total, result.totals.currency)} · confirmation sent to {result.email}</p>
        </div>
      )}
    </section>
  );
}

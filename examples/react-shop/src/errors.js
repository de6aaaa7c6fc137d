// One place that turns the service's error codes and Stripe.js' errors into what the
// buyer reads (docs/integration.md, "Errors: one shape, a stable code").
import { ApiError } from './api.js';

export function describeError(err) {
  if (err instanceof ApiError) return describeApiError(err);
  if (err?.type) return describeStripeError(err);     // a Stripe.js result.error
  return { title: 'Something went wrong', message: err?.message || String(err) };
}

function describeApiError(err) {
  const { error } = err;
  switch (err.code) {
    case 'validation_failed': {
      const fields = Object.entries(error.fields || {}).map(([path, messages]) => `${path}: ${messages.join(' ')}`);
      return { title: 'Please check your details', message: error.message, list: fields };
    }
    case 'out_of_stock':
      return {
        title: 'Some items sold out',
        message: 'Adjust your cart to what is available.',
        list: (error.items || []).map((item) => `${item.name || item.sku}: ${item.available} left (you asked for ${item.requested})`),
      };
    case 'rate_limited':
      return { title: 'Too many attempts', message: `Please try again in ${err.retryAfter || 'a few'} seconds.` };
    case 'idempotency_key_reused':
      return { title: 'Your order changed', message: 'Press Pay again to place it as it is now.' };
    case 'not_found':
    case 'invalid_state':
      return { title: 'This checkout has ended', message: 'Your reservation expired or the order is closed. Please start again.' };
    case 'network_error':
      return { title: 'Connection problem', message: 'The connection dropped. You were not charged twice; press Pay to retry.' };
    default:
      return { title: 'Something went wrong on our side', message: 'You were not charged. Please try again in a few minutes.' };
  }
}

function describeStripeError(error) {
  if (error.type === 'card_error') {
    return { title: 'Payment declined', message: error.message, retry: 'Use another card and press Pay again.' };
  }
  if (error.code === 'payment_intent_authentication_failure') {
    return { title: 'Authentication failed', message: error.message, retry: 'Try again or use another card.' };
  }
  if (error.type === 'validation_error') {
    return { title: 'Check your card details', message: error.message };
  }
  return { title: 'Payment problem', message: error.message || 'The payment could not be completed.', retry: 'Press Pay to try again.' };
}

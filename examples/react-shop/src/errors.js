// One place that turns a CheckoutError (the service's codes, and Stripe.js' errors the
// client wraps) into what the buyer reads (docs/integration.md, "Errors").
import { CheckoutError } from '@checkout-service/client';

export function describeError(err) {
  if (!(err instanceof CheckoutError)) return { title: 'Something went wrong', message: err?.message || String(err) };
  if (err.status === 0 && err.code !== 'network_error') return describeStripeError(err);
  return describeApiError(err);
}

function describeApiError(err) {
  switch (err.code) {
    case 'validation_failed': {
      const fields = Object.entries(err.fields).map(([path, messages]) => `${path}: ${messages.join(' ')}`);
      return { title: 'Please check your details', message: err.message, list: fields };
    }
    case 'out_of_stock':
      return {
        title: 'Some items sold out',
        message: 'Adjust your cart to what is available.',
        list: err.items.map((item) => `${item.name || item.sku}: ${item.available} left (you asked for ${item.requested})`),
      };
    case 'rate_limited':
      return { title: 'Too many attempts', message: `Please try again in ${err.retryAfter || 'a few'} seconds.` };
    case 'idempotency_key_reused':
      return { title: 'Your order changed', message: 'Press Pay again to place it as it is now.' };
    case 'not_found':
    case 'invalid_state':
    case 'checkout_ended':
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

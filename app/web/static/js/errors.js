// One error experience: every failure becomes {kind, title, message, items, next, action}.
// `action` names the next step the page offers: 'retry-card', 'retry', 'adjust-cart',
// 'restart', 'fix-fields' or 'wait'.

/** An error from the shop's API (an ApiError). */
export function describeApiError(err, productNames = {}) {
  if (err.kind === 'network') {
    return {
      kind: 'network', title: "We couldn't reach the shop",
      message: 'Your connection dropped before the shop answered. You have not been charged twice — pressing Pay again continues the same order.',
      next: 'Check your connection, then try again.', action: 'retry',
    };
  }
  if (err.kind === 'timeout') {
    return {
      kind: 'timeout', title: 'This is taking longer than expected',
      message: 'The shop did not answer in time. Your order is safe: trying again continues it rather than starting a new one.',
      next: 'Try again in a moment.', action: 'retry',
    };
  }
  const error = err.body?.error || {};
  switch (err.code) {
    case 'out_of_stock': {
      const items = (error.items || []).map((line) => {
        const name = productNames[line.sku] || line.sku;
        return line.available > 0
          ? `${name}: you asked for ${line.requested}, only ${line.available} left`
          : `${name}: sold out`;
      });
      return {
        kind: 'out_of_stock', title: 'Some items are no longer available', items, lines: error.items || [],
        message: 'Nothing was charged and nothing was reserved.',
        next: 'Adjust your cart to what is available, then pay again.', action: 'adjust-cart',
      };
    }
    case 'validation_failed':
    case 'malformed_json':
    case 'card_data_rejected':
      return {
        kind: 'validation', title: 'Please check your details', fields: error.fields || {},
        message: error.message || 'Some details are missing or invalid.',
        next: 'Correct the highlighted fields, then pay again.', action: 'fix-fields',
      };
    case 'promotion_unavailable':
      return {
        kind: 'validation', title: 'This promotion code is used up', fields: error.fields || {},
        message: `${error.message || 'The code has no redemptions left.'} Nothing was charged and nothing was reserved.`,
        next: 'Check the new total without the code, then pay again.', action: 'fix-fields',
      };
    case 'rate_limited': {
      const wait = err.retryAfter || 30;
      return {
        kind: 'rate_limited', title: 'Too many attempts', retryAfter: wait,
        message: `You have tried to pay many times in a short while. Please wait ${wait} seconds.`,
        next: 'Try again later.', action: 'wait',
      };
    }
    case 'idempotency_key_reused':
      return {
        kind: 'changed', title: 'Your order changed',
        message: 'The cart or address changed while a payment was in progress.',
        next: 'Review your order and press Pay again.', action: 'restart',
      };
    case 'invalid_state':
    case 'not_found':
      return holdExpired();
    default:
      return {
        kind: 'server', title: 'Something went wrong on our side',
        message: 'The shop could not take your order just now. You have not been charged.',
        next: 'Try again in a few minutes.', action: 'retry',
      };
  }
}

/** The reservation ran out (or the order is no longer payable). */
export function holdExpired() {
  return {
    kind: 'hold_expired', title: 'Your reservation expired',
    message: 'Items are held for a limited time while you pay, and that time ran out. You have not been charged.',
    next: 'Start again: your cart is still here.', action: 'restart',
  };
}

/** An error object from Stripe.js (confirmPayment / elements.submit). */
export function describeStripeError(error) {
  if (error.type === 'card_error' || error.code === 'card_declined') {
    return {
      kind: 'declined', title: 'Your card was declined',
      message: error.message || 'The card was declined.',
      next: 'Try again with another card. Your order and items are still reserved.', action: 'retry-card',
    };
  }
  if (error.code === 'payment_intent_authentication_failure') {
    return {
      kind: 'authentication', title: 'Card authentication failed',
      message: error.message || 'We could not authenticate your card.',
      next: 'Try again, or use another card. Your order and items are still reserved.', action: 'retry-card',
    };
  }
  if (error.type === 'validation_error') {
    return {
      kind: 'card_invalid', title: 'Please check your card details',
      message: error.message || 'Some card details are incomplete.',
      next: 'Correct the card details, then pay again.', action: 'retry-card',
    };
  }
  if (error.type === 'api_connection_error') {
    return {
      kind: 'network', title: "We couldn't reach the payment service",
      message: 'The connection dropped while paying. You have not been charged twice — trying again continues the same payment.',
      next: 'Check your connection, then try again.', action: 'retry',
    };
  }
  if (error.type === 'rate_limit_error') {
    return {
      kind: 'rate_limited', title: 'Too many attempts', retryAfter: 10,
      message: 'The payment service is busy.', next: 'Try again later.', action: 'wait',
    };
  }
  return {
    kind: 'payment', title: 'The payment could not be completed',
    message: error.message || 'The payment service returned an error.',
    next: 'Try again, or use another card.', action: 'retry-card',
  };
}

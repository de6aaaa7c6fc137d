// A stand-in for Stripe.js' objects in unit tests: records what the checkout asked of it.
import { vi } from 'vitest';
import type { Stripe, StripeElements } from '@stripe/stripe-js';

export function fakeStripe(options: { confirmError?: unknown; actionError?: unknown } = {}) {
  let tokens = 0;
  const stripe = {
    createConfirmationToken: vi.fn(async () => ({ confirmationToken: { id: `ctoken_${++tokens}` } })),
    handleNextAction: vi.fn(async () => (options.actionError ? { error: options.actionError } : { paymentIntent: { status: 'succeeded' } })),
    confirmPayment: vi.fn(async () => (options.confirmError ? { error: options.confirmError } : { paymentIntent: { status: 'succeeded' } })),
  };
  const elements = { submit: vi.fn(async () => ({})) };
  return { stripe: stripe as unknown as Stripe, elements: elements as unknown as StripeElements, mock: { ...stripe, ...elements } };
}

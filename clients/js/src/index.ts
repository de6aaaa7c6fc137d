export { createCheckoutClient, returnParams, SETTLED_STATES } from './client.js';
export type {
  Address,
  CartLine,
  CheckoutClient,
  CheckoutClientOptions,
  CheckoutRequest,
  CheckoutStatus,
  HostedCheckout,
  HostedCheckoutOptions,
  HostedCheckoutRequest,
  PaymentSecrets,
  PaymentSecretsOptions,
  ConfirmAnswer,
  Order,
  Product,
  Quote,
  QuoteAddress,
  QuoteRequest,
  ReturnedOrder,
  StartedCheckout,
  StartedHostedCheckout,
  Tracking,
  WatchOptions,
} from './client.js';
export { CheckoutError, parseRetryAfter } from './errors.js';
export type { ErrorBody, StripeLikeError } from './errors.js';
export { memoryStore } from './storage.js';
export type { Attempt, KeyValueStore } from './storage.js';
export type { components, paths } from './schema.js';
export { loadStripeJs } from './stripe.js';
export { CHECKOUT_ENDED, intentElementsOptions, payCheckout, payIntent } from './pay.js';
export type { Flow, IntentPayOptions, PaidCheckout, PayOptions } from './pay.js';

// Stripe.js, once: offline the emulator's stand-in from VITE_STRIPE_JS_URL first (the
// client's loadStripeJs then hands it to @stripe/stripe-js/pure's loadStripe, which reuses
// it); with the variable unset, Stripe.js comes from Stripe as usual.
import { loadStripeJs } from '@checkout-service/client';
import { STRIPE_JS_URL, STRIPE_PUBLISHABLE_KEY } from './config.js';

export const stripePromise = loadStripeJs(STRIPE_PUBLISHABLE_KEY, { scriptUrl: STRIPE_JS_URL });

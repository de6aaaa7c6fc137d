// Stripe.js, loaded once. `@stripe/stripe-js/pure` loads nothing until loadStripe() is
// called (the package's main entry would inject js.stripe.com's script on import), and
// loadStripe() reuses a `window.Stripe` that is already there. So offline we first load
// the emulator's stand-in from VITE_STRIPE_JS_URL; with real keys loadStripe fetches
// Stripe.js from Stripe as usual.
import { loadStripe } from '@stripe/stripe-js/pure';
import { STRIPE_JS_URL, STRIPE_PUBLISHABLE_KEY } from './config.js';

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`Could not load Stripe.js from ${src}`));
    document.head.appendChild(script);
  });
}

export const stripePromise = (STRIPE_JS_URL ? loadScript(STRIPE_JS_URL) : Promise.resolve())
  .then(() => loadStripe(STRIPE_PUBLISHABLE_KEY));

// Stripe.js, once. `@stripe/stripe-js/pure` loads nothing until loadStripe() is called
// (the package's main entry injects js.stripe.com's script on import), and loadStripe()
// reuses a `window.Stripe` that is already there: so offline the emulator's stand-in is
// loaded first from `scriptUrl`; without it Stripe.js comes from Stripe as usual.
import { loadStripe } from '@stripe/stripe-js/pure';
import type { Stripe } from '@stripe/stripe-js';

/** `loadStripe(publishableKey)`, after loading Stripe.js from `scriptUrl` when given. */
export async function loadStripeJs(
  publishableKey: string,
  { scriptUrl }: { scriptUrl?: string | null } = {},
): Promise<Stripe | null> {
  if (scriptUrl) await loadScript(scriptUrl);
  return loadStripe(publishableKey);
}

function loadScript(src: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error(`Could not load Stripe.js from ${src}`));
    document.head.appendChild(script);
  });
}

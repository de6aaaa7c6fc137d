// @vitest-environment jsdom
import { describe, expect, it, vi } from 'vitest';
import { loadStripe } from '@stripe/stripe-js/pure';
import { loadStripeJs } from '../src/index.js';

vi.mock('@stripe/stripe-js/pure', () => ({ loadStripe: vi.fn(async (key: string) => ({ key })) }));

describe('loadStripeJs', () => {
  it('loads the stand-in from scriptUrl before loadStripe, so loadStripe reuses it', async () => {
    const loaded = loadStripeJs('pk_test_emulator', { scriptUrl: 'http://127.0.0.1:12111/js.stripe.com/v3/' });
    const script = document.head.querySelector('script')!;
    expect(script.src).toBe('http://127.0.0.1:12111/js.stripe.com/v3/');
    expect(loadStripe).not.toHaveBeenCalled();
    script.dispatchEvent(new Event('load'));
    expect(await loaded).toEqual({ key: 'pk_test_emulator' });
  });

  it('leaves Stripe.js to loadStripe without scriptUrl', async () => {
    document.head.innerHTML = '';
    expect(await loadStripeJs('pk_live_x')).toEqual({ key: 'pk_live_x' });
    expect(document.head.querySelector('script')).toBeNull();
  });
});

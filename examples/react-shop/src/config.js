// Build-time settings (Vite bakes VITE_* variables into the bundle; see .env.example).
export const API_URL = (import.meta.env.VITE_API_URL || 'http://127.0.0.1:5000').replace(/\/+$/, '');
export const STRIPE_PUBLISHABLE_KEY = import.meta.env.VITE_STRIPE_PUBLISHABLE_KEY || 'pk_test_emulator';
// Set offline only (the emulator's Stripe.js stand-in); unset, Stripe.js comes from Stripe.
export const STRIPE_JS_URL = import.meta.env.VITE_STRIPE_JS_URL || '';

// The checkout service's client (clients/js): typed requests, CheckoutError with the
// service's stable `code`, the attempt's Idempotency-Key and checkout token kept in
// sessionStorage, the long-polled status. A signed-in buyer's JWT goes with every call
// (expired: a 401, never a guest checkout).
import { createCheckoutClient } from '@checkout-service/client';
import { API_URL } from './config.js';
import { buyerToken } from './storage.js';

function signedIn() {
  const token = buyerToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export const client = createCheckoutClient({ apiUrl: API_URL, headers: signedIn });

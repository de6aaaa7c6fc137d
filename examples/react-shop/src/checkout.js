// The checkout service's client (clients/js): typed requests, CheckoutError with the
// service's stable `code`, the attempt's Idempotency-Key and checkout token kept in
// sessionStorage, the long-polled status.
import { createCheckoutClient } from '@checkout-service/client';
import { API_URL } from './config.js';

export const client = createCheckoutClient({ apiUrl: API_URL });

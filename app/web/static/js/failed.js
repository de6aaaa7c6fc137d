// The failure page: why the order ended, and the next step. Clears the spent attempt.

import { clearAttempt } from './storage.js';

const params = new URLSearchParams(location.search);
const reason = params.get('reason');
const order = params.get('order');
const MESSAGES = {
  expired: 'Your reservation expired before the payment was completed, so the order was canceled.',
  failed: 'The payment for your order did not go through before the reservation expired, so the order was closed.',
};

clearAttempt();
const message = MESSAGES[reason] || 'Your order could not be completed.';
document.getElementById('failed-message').textContent =
  `${order ? `Order #${order}: ` : ''}${message} You have not been charged.`;

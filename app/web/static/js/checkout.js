// The checkout page: catalog and cart, the form, totals from /api/checkout/quote, the
// Payment Element (deferred intent), an Express Checkout Element (wallets) above it, and
// server-side confirmation:
//   elements.submit() -> stripe.createConfirmationToken({elements})
//   -> POST /api/checkout/payment-intent {..., confirmationTokenId} (Idempotency-Key)
//   -> long-poll GET /api/checkout/<id>?wait=20: succeeded / processing -> the order page;
//      requires_action -> stripe.handleNextAction({clientSecret}); a decline -> shown, and
//      the next Pay is a retry on the same order: POST /api/checkout/<id>/confirm.
// A signed-in buyer (a JWT in sessionStorage, checkout:buyerToken) pays in two steps, so
// the Payment Element can offer their saved cards: "Continue to payment" submits the cart
// (savePaymentMethod from the checkbox), the status brings the client secret and a
// CustomerSession secret -> stripe.elements({clientSecret, customerSessionClientSecret});
// "Pay" -> stripe.confirmPayment -> the same long-poll to the order page.

import { api, ApiError, checkoutStatus } from './api.js';
import { formatMoney } from './money.js';
import { describeApiError, describeStripeError, holdExpired } from './errors.js';
import { announce, clearError, setFieldError, showError } from './ui.js';
import * as store from './storage.js';
import { REDIRECTED, hostedBody, payOnStripe } from './hosted.js';

const $ = (id) => document.getElementById(id);
const config = document.body.dataset;
const CLIENT_SECRET_DEADLINE_MS = 60000;
const PAID_STATES = ['AUTHORIZED', 'PAID', 'FULFILLING', 'FULFILLED', 'REFUNDED'];
const SUCCESS_PAYMENT = ['succeeded', 'processing', 'requires_capture'];
const ADDRESS_KEYS = ['line1', 'line2', 'city', 'state', 'postalCode', 'country'];
const FORM_IDS = ['name', 'email', ...ADDRESS_KEYS, 'billing-name',
  ...ADDRESS_KEYS.map((k) => `billing-${k}`)];

const state = {
  products: [],
  cart: store.loadCart(),
  quote: null,
  shippingOptionId: null, // the buyer's choice; null: the cheapest
  promotionCode: null,    // applied (the quote accepted it)
  stripe: null,
  elements: null,
  paymentElement: null,
  busy: false,
  intentBound: false, // a signed-in buyer's Elements, made for their order's intent
};

const signedIn = () => Boolean(store.buyerToken());

// --- catalog and cart ------------------------------------------------------------

const productBySku = (sku) => state.products.find((p) => p.sku === sku);
const productNames = () => Object.fromEntries(state.products.map((p) => [p.sku, p.name]));

function renderProducts() {
  const list = $('products');
  list.replaceChildren(...state.products.map((product) => {
    const li = document.createElement('li');
    li.className = 'product';
    const inCart = state.cart.find((line) => line.sku === product.sku)?.quantity || 0;
    const soldOut = product.available <= 0;
    const title = document.createElement('h3');
    title.textContent = product.name;
    const description = document.createElement('p');
    description.className = 'muted';
    description.textContent = product.description || '';
    const price = document.createElement('p');
    price.className = 'price';
    price.textContent = `${formatMoney(product.price.amount, product.price.currency)}${soldOut ? ' · Sold out' : ` · ${product.available} in stock`}`;
    const add = document.createElement('button');
    add.type = 'button';
    add.className = 'button';
    add.textContent = soldOut ? 'Sold out' : 'Add to cart';
    add.setAttribute('aria-label', soldOut ? `${product.name} is sold out` : `Add ${product.name} to cart`);
    add.disabled = soldOut || inCart >= product.available;
    add.dataset.sku = product.sku;
    add.addEventListener('click', () => addToCart(product.sku));
    li.append(title, description, price, add);
    return li;
  }));
}

function addToCart(sku) {
  const line = state.cart.find((l) => l.sku === sku);
  if (line) line.quantity += 1;
  else state.cart.push({ sku, quantity: 1 });
  cartChanged();
  announce(`Added ${productBySku(sku)?.name || sku} to your cart.`);
}

function setQuantity(sku, quantity) {
  state.cart = state.cart
    .map((l) => (l.sku === sku ? { ...l, quantity } : l))
    .filter((l) => l.quantity > 0);
  cartChanged();
}

function renderCart() {
  const list = $('cart');
  $('cart-empty').hidden = state.cart.length > 0;
  list.replaceChildren(...state.cart.map((line) => {
    const product = productBySku(line.sku);
    const name = product?.name || line.sku;
    const li = document.createElement('li');
    li.className = 'cart-line';
    const label = document.createElement('label');
    label.htmlFor = `qty-${line.sku}`;
    label.textContent = `Quantity of ${name}`;
    const input = document.createElement('input');
    input.id = `qty-${line.sku}`;
    input.type = 'number';
    input.min = '1';
    input.max = String(Math.max(1, Math.min(100, product?.available ?? 100)));
    input.inputMode = 'numeric';
    input.value = String(line.quantity);
    input.addEventListener('change', () => {
      const value = Math.max(1, Math.min(100, Math.floor(Number(input.value)) || 1));
      setQuantity(line.sku, value);
    });
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'button link';
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', `Remove ${name} from cart`);
    remove.addEventListener('click', () => {
      setQuantity(line.sku, 0);
      announce(`Removed ${name} from your cart.`);
      $('cart-title').focus();
    });
    const amount = document.createElement('span');
    amount.className = 'line-amount';
    const quoted = state.quote?.lineItems?.find((q) => q.sku === line.sku);
    amount.textContent = quoted ? formatMoney(quoted.amount, state.quote.currency) : '';
    li.append(label, input, amount, remove);
    return li;
  }));
}

function cartChanged() {
  store.saveCart(state.cart);
  renderCart();
  renderProducts();
  scheduleQuote();
}

// --- totals ------------------------------------------------------------------------

let quoteTimer = null;
let quoteSeq = 0;

function scheduleQuote() {
  if (state.intentBound) unbindIntent(); // the order in hand no longer matches the form
  clearTimeout(quoteTimer);
  quoteTimer = setTimeout(refreshQuote, 150);
}

/** The quote body of the cart as it stands: the address so far (every field but the
 * country is optional), the shipping choice and the applied promotion code. */
function quoteBody() {
  const body = { items: state.cart.map(({ sku, quantity }) => ({ sku, quantity })) };
  const shipping = readAddress('');
  if (shipping.country) body.shippingAddress = shipping;
  if (state.shippingOptionId) body.shippingOptionId = state.shippingOptionId;
  if (state.promotionCode) body.promotionCode = state.promotionCode;
  return body;
}

async function refreshQuote() {
  const seq = ++quoteSeq;
  if (!state.cart.length) {
    state.quote = null;
    renderTotals();
    return;
  }
  try {
    let quote;
    try {
      quote = await api('POST', '/api/checkout/quote', { body: quoteBody() });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 'validation_failed')) throw err;
      // A code that does not apply, a choice the new address is not offered, a
      // half-typed address (the submit reports it field by field): price without it.
      const fields = err.body?.error?.fields || {};
      if (fields.promotionCode) refusePromotion(fields.promotionCode.join(' '));
      if (fields.shippingOptionId) state.shippingOptionId = null;
      const body = quoteBody();
      if (Object.keys(fields).some((path) => path.startsWith('shippingAddress'))) delete body.shippingAddress;
      quote = await api('POST', '/api/checkout/quote', { body });
    }
    if (seq !== quoteSeq) return; // a newer cart is being priced
    state.quote = quote;
    renderTotals();
    renderCart();
    renderShippingOptions(quote);
    renderPromotion(quote);
  } catch (err) {
    if (seq !== quoteSeq) return;
    if (err instanceof ApiError) reportApiError(err);
  }
}

function renderTotals() {
  const quote = state.quote;
  $('totals').hidden = !quote;
  const pay = $('pay');
  if (!quote) {
    pay.textContent = 'Pay';
    pay.disabled = true;
    if ($('pay-hosted')) $('pay-hosted').disabled = true;
    return;
  }
  for (const key of ['subtotal', 'shipping', 'tax', 'total']) {
    $(`total-${key}`).textContent = formatMoney(quote[key], quote.currency);
  }
  $('discount-row').hidden = !quote.discount;
  $('discount-label').textContent = quote.promotion ? `Discount (${quote.promotion.code})` : 'Discount';
  $('total-discount').textContent = `−${formatMoney(quote.discount || 0, quote.currency)}`;
  pay.textContent = signedIn() && !state.intentBound
    ? `Continue to payment (${formatMoney(quote.total, quote.currency)})`
    : `Pay ${formatMoney(quote.total, quote.currency)}`;
  pay.disabled = state.busy;
  if ($('pay-hosted')) $('pay-hosted').disabled = state.busy;
  if (signedIn()) return offerSavedCardsLater();
  mountPaymentElement(quote);
}

// --- a signed-in buyer: the Payment Element of their order's intent, with saved cards ---

function offerSavedCardsLater() {
  $('save-card-row').hidden = false;
  if (state.intentBound) return;
  const placeholder = $('payment-placeholder');
  if (placeholder) placeholder.textContent = 'Continue to choose a saved card or enter a new one.';
}

/** Mount the Payment Element for the order's intent; its saved cards come with it. */
function mountForIntent(payment) {
  state.elements = state.stripe.elements({
    clientSecret: payment.clientSecret,
    ...(payment.customerSessionClientSecret
      ? { customerSessionClientSecret: payment.customerSessionClientSecret } : {}),
    appearance: { variables: { colorPrimary: '#0b57d0', colorDanger: '#b3261e' } },
  });
  $('payment-placeholder')?.remove();
  state.paymentElement = state.elements.create('payment');
  state.paymentElement.mount('#payment-element');
  state.intentBound = true;
  renderTotals();
}

/** The cart or the address changed after step 1: back to "Continue to payment". */
function unbindIntent() {
  state.paymentElement?.destroy();
  state.paymentElement = null;
  state.elements = null;
  state.intentBound = false;
  const placeholder = document.createElement('p');
  placeholder.className = 'muted';
  placeholder.id = 'payment-placeholder';
  $('payment-element').replaceChildren(placeholder);
}

/** Step 1: the cart goes to the server; wait for the intent's secrets, mount the Element. */
async function continueToPayment(body) {
  let attempt = store.attemptFor(body);
  try {
    if (!attempt.orderId) await createOrder(attempt, null);
    if (!attempt.checkoutToken) {
      // The first answer was lost and nothing was paid on that order (no token went with
      // it): a new attempt, with a new key; the unreachable order's hold lapses by itself.
      store.clearAttempt();
      attempt = store.attemptFor(body);
      await createOrder(attempt, null);
    }
    const deadline = Date.now() + CLIENT_SECRET_DEADLINE_MS;
    let since = null;
    let waitedForSession = false;
    for (;;) {
      const wait = since === null ? 0 : waitedForSession ? 3 : 20;
      const status = await readStatus(attempt, wait, since);
      since = status.version ?? null;
      const payment = status.payment || {};
      if (status.state !== 'PENDING' || holdHasExpired(status.holdExpiresAt)) {
        return showError(holdExpired(), actionsFor(holdExpired()));
      }
      // The CustomerSession secret follows the client secret at once; if it does not
      // come (Stripe refused it), the buyer still pays with a new card.
      if (payment.clientSecret && (payment.customerSessionClientSecret || waitedForSession)) {
        mountForIntent(payment);
        return announce('Choose a saved card or enter a new one, then pay.');
      }
      if (payment.clientSecret) waitedForSession = true;
      if (status.queue) announce(queueText(status.queue));
      if (Date.now() > deadline) throw new ApiError('timeout');
    }
  } catch (err) {
    if (err instanceof ApiError) return reportApiError(err);
    throw err;
  }
}

/** Step 2: confirm in the browser (a saved card or a new one), then follow the status. */
async function payForIntent() {
  const attempt = store.loadAttempt();
  const returnUrl = new URL(`/order/${encodeURIComponent(attempt.orderId)}`, location.href).href;
  const { error } = await state.stripe.confirmPayment({
    elements: state.elements, confirmParams: { return_url: returnUrl }, redirect: 'if_required',
  });
  if (error) return reportStripeError(error);
  announce('Confirming your payment…');
  try {
    return await followPayment(attempt);
  } catch (err) {
    if (err instanceof ApiError) return reportApiError(err);
    throw err;
  }
}

// --- shipping choices and the promotion code ------------------------------------------------

const days = ({ minDays, maxDays }) =>
  (minDays === maxDays ? `${minDays} business day${minDays === 1 ? '' : 's'}` : `${minDays}–${maxDays} business days`);

function optionText(option, currency) {
  const price = option.amount ? formatMoney(option.amount, currency) : 'Free';
  return `${option.label} — ${price} (${days(option.deliveryEstimate)})`;
}

/** One radio per option the destination is offered, the priced one checked. */
function renderShippingOptions(quote) {
  const box = $('shipping-options');
  const options = quote?.shippingOptions || [];
  $('shipping-options-empty').hidden = options.length > 0;
  $('shipping-options-empty').textContent = quote ? 'Shipping is free.' : 'Add a product to see the shipping choices.';
  box.replaceChildren(...options.map((option) => {
    const input = document.createElement('input');
    Object.assign(input, { type: 'radio', name: 'shippingOptionId', id: `shipping-${option.id}`, value: option.id });
    input.checked = option.id === quote.shippingOptionId;
    input.addEventListener('change', () => { state.shippingOptionId = option.id; scheduleQuote(); });
    const label = document.createElement('label');
    label.htmlFor = input.id;
    label.textContent = optionText(option, quote.currency);
    const row = document.createElement('div');
    row.className = 'option';
    row.append(input, label);
    return row;
  }));
}

function renderPromotion(quote) {
  if (quote?.promotion) {
    $('promotion-status').textContent = `${quote.promotion.code} applied: ${quote.promotion.description}.`;
  } else if (!state.promotionCode) {
    $('promotion-status').textContent = '';
  }
}

function refusePromotion(message) {
  state.promotionCode = null;
  $('promotion-status').textContent = '';
  setFieldError('promotionCode', message);
}

function applyPromotion() {
  const code = readValue('promotionCode').toUpperCase();
  $('err-promotionCode').textContent = '';
  $('promotionCode').setAttribute('aria-invalid', 'false');
  state.promotionCode = code || null;
  if (!code) $('promotion-status').textContent = '';
  scheduleQuote();
}

// --- the Payment Element (deferred intent: amount known, intent not yet) -------------

function mountPaymentElement(quote) {
  if (!state.stripe) return;
  if (state.elements) {
    state.elements.update({ amount: quote.total, currency: quote.currency });
    return;
  }
  state.elements = state.stripe.elements({
    mode: 'payment', amount: quote.total, currency: quote.currency,
    appearance: { variables: { colorPrimary: '#0b57d0', colorDanger: '#b3261e' } },
  });
  $('payment-placeholder')?.remove();
  state.paymentElement = state.elements.create('payment');
  state.paymentElement.mount('#payment-element');
  mountExpressCheckout();
}

// --- Express Checkout (wallets): the server prices the wallet's address before the sheet
// shows a total; the payment goes through the same server-side confirmation. -------------

const walletLines = (quote) => [
  ...quote.lineItems.map((line) => ({ name: line.name || line.sku, amount: line.amount })),
  ...(quote.discount ? [{ name: `Discount (${quote.promotion.code})`, amount: -quote.discount }] : []),
  { name: 'Tax', amount: quote.tax },
];
const walletRates = (quote) => (quote.shippingOptions || []).map((option) => ({
  id: option.id, displayName: option.label, amount: option.amount,
  deliveryEstimate: {
    minimum: { unit: 'business_day', value: option.deliveryEstimate.minDays },
    maximum: { unit: 'business_day', value: option.deliveryEstimate.maxDays },
  },
}));

async function quoteFor(address, shippingOptionId) {
  const body = { items: state.cart.map(({ sku, quantity }) => ({ sku, quantity })) };
  if (address?.country) {
    body.shippingAddress = { country: address.country, state: address.state || null, postalCode: address.postal_code || null };
  }
  if (shippingOptionId) body.shippingOptionId = shippingOptionId;
  if (state.promotionCode) body.promotionCode = state.promotionCode;
  return api('POST', '/api/checkout/quote', { body });
}

function walletPriced(quote) {
  state.walletQuote = quote;
  state.walletRateId = quote.shippingOptionId;
  state.elements.update({ amount: quote.total, currency: quote.currency });
  return { shippingRates: walletRates(quote), lineItems: walletLines(quote), amount: quote.total };
}

function mountExpressCheckout() {
  const express = state.elements.create('expressCheckout');
  express.on('click', (event) => {
    if (!state.quote || state.busy) return event.reject();
    clearError();
    state.walletQuote = state.quote;
    state.walletRateId = state.quote.shippingOptionId;
    event.resolve({
      emailRequired: true, shippingAddressRequired: true,
      shippingRates: walletRates(state.quote), lineItems: walletLines(state.quote),
    });
  });
  express.on('shippingaddresschange', async (event) => {
    try {
      event.resolve(walletPriced(await quoteFor(event.address, state.walletRateId)));
      state.walletAddress = event.address;
    } catch {
      event.reject();
    }
  });
  express.on('shippingratechange', async (event) => {
    try {
      event.resolve(walletPriced(await quoteFor(state.walletAddress, event.shippingRate?.id)));
    } catch {
      event.reject();
    }
  });
  express.on('confirm', (event) => payWithWallet(event));
  express.on('cancel', () => { if (state.quote) state.elements.update({ amount: state.quote.total }); });
  express.mount('#express-checkout');
}

async function payWithWallet(event) {
  if (state.busy) return;
  setBusy(true);
  try {
    const submitted = await state.elements.submit();
    if (submitted.error) { event.paymentFailed?.(); return reportStripeError(submitted.error); }
    const { error, confirmationToken } = await state.stripe.createConfirmationToken({ elements: state.elements });
    if (error) { event.paymentFailed?.(); return reportStripeError(error); }
    const address = event.shippingAddress?.address || {};
    const body = {
      items: state.cart.map(({ sku, quantity }) => ({ sku, quantity })),
      email: event.billingDetails?.email || readValue('email'),
      shippingAddress: {
        name: event.shippingAddress?.name || event.billingDetails?.name,
        line1: address.line1, city: address.city, postalCode: address.postal_code, country: address.country,
        ...(address.line2 ? { line2: address.line2 } : {}),
        ...(address.state ? { state: address.state } : {}),
      },
      ...(event.shippingRate?.id ? { shippingOptionId: event.shippingRate.id } : {}),
      ...(state.promotionCode ? { promotionCode: state.promotionCode } : {}),
    };
    await payWithToken(confirmationToken.id, body);
  } finally {
    setBusy(false);
  }
}

// --- the form ------------------------------------------------------------------------

const readValue = (id) => ($(id)?.value || '').trim();

function readAddress(prefix) {
  const address = {};
  for (const key of ADDRESS_KEYS) {
    const value = readValue(`${prefix}${key}`);
    if (value) address[key] = value;
  }
  return address;
}

function saveFormState() {
  const form = Object.fromEntries(FORM_IDS.map((id) => [id, $(id)?.value || '']));
  form.billingSame = $('billing-same').checked;
  store.saveForm(form);
}

function restoreFormState() {
  const form = store.loadForm();
  for (const id of FORM_IDS) if (form[id] && $(id)) $(id).value = form[id];
  if (form.billingSame === false) $('billing-same').checked = false;
  toggleBilling();
}

function toggleBilling() {
  const same = $('billing-same').checked;
  $('billing-fields').hidden = same;
  $('billing-fields').disabled = same;
}

/** Required fields, checked in the browser first (the server checks again). */
function localErrors() {
  const errors = [];
  const required = ['name', 'email', 'line1', 'city', 'postalCode', 'country'];
  if (!$('billing-same').checked) {
    required.push('billing-name', 'billing-line1', 'billing-city', 'billing-postalCode', 'billing-country');
  }
  for (const id of required) {
    if (!readValue(id)) errors.push([id, `${labelOf(id)} is required.`]);
  }
  const email = readValue('email');
  if (email && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
    errors.push(['email', 'Enter an email address like name@example.com.']);
  }
  return errors;
}

const labelOf = (id) => document.querySelector(`label[for="${id}"]`)?.textContent.replace(' (optional)', '') || id;

/** The submission body; the server prices it (amounts are never sent). */
function buildBody() {
  const body = {
    items: state.cart.map(({ sku, quantity }) => ({ sku, quantity })),
    email: readValue('email'),
    shippingAddress: { name: readValue('name'), ...readAddress('') },
  };
  if (!$('billing-same').checked) {
    body.billingAddress = { name: readValue('billing-name'), ...readAddress('billing-') };
  }
  if (signedIn() && $('save-card').checked) body.savePaymentMethod = true;
  if (state.quote?.shippingOptionId) body.shippingOptionId = state.quote.shippingOptionId;
  if (state.promotionCode) body.promotionCode = state.promotionCode;
  return body;
}

// --- errors --------------------------------------------------------------------------

/** API field paths (shippingAddress.postalCode) -> input ids (postalCode). */
function inputForField(path) {
  if (path === 'email' || path === 'promotionCode') return path;
  if (path === 'shippingOptionId') return 'shipping-options';
  const [group, key] = path.split('.');
  if (group === 'shippingAddress') return key === 'name' ? 'name' : key;
  if (group === 'billingAddress') return `billing-${key}`;
  return null;
}

function showFieldErrors(pairs, desc) {
  const links = [];
  for (const [id, message] of pairs) {
    setFieldError(id, message);
    links.push([labelOf(id), id, [message]]);
  }
  showError({ ...desc, fieldLinks: links });
}

function reportApiError(err) {
  const desc = describeApiError(err, productNames());
  if (desc.fields?.promotionCode) {
    // Refused at submit (used up meanwhile): re-price without it before another Pay.
    state.promotionCode = null;
    $('promotion-status').textContent = '';
    scheduleQuote();
  }
  if (desc.kind === 'validation') {
    const pairs = [];
    const other = [];
    for (const [path, messages] of Object.entries(desc.fields)) {
      const id = inputForField(path);
      if (id && $(id)) pairs.push([id, messages.join(' ')]);
      else other.push(`${path}: ${messages.join(' ')}`);
    }
    if (pairs.length) return showFieldErrors(pairs, { ...desc, items: other });
    return showError({ ...desc, items: other });
  }
  showError(desc, actionsFor(desc));
}

function reportStripeError(error) {
  const desc = describeStripeError(error);
  showError(desc, actionsFor(desc));
}

function actionsFor(desc) {
  const retry = () => { clearError(); $('checkout-form').requestSubmit(); };
  switch (desc.action) {
    case 'retry-card':
      return [{ label: 'Use another card', primary: true, onClick: () => { clearError(); focusCard(); } }];
    case 'retry':
      return [{ label: 'Try again', primary: true, onClick: retry }];
    case 'adjust-cart':
      return [{ label: 'Update my cart', primary: true, onClick: () => adjustCart(desc.lines) }];
    case 'restart':
      return [{ label: 'Start again', primary: true, onClick: restart }];
    case 'wait':
      return [{ label: 'Try again', onClick: retry }];
    default:
      return [];
  }
}

/** Back to the card fields (Stripe's Payment Element lives in an iframe: ask it). */
function focusCard() {
  state.paymentElement?.focus();
  const input = document.querySelector('#payment-element input');
  if (input) {
    input.select?.();
    input.focus();
  }
}

/** Out of stock: keep what is available, drop what is sold out, re-read the catalog. */
async function adjustCart(lines) {
  for (const line of lines || []) setQuantity(line.sku, Math.max(0, line.available));
  store.clearAttempt();
  clearError();
  await loadProducts();
  announce('Your cart now matches what is in stock. Review it and pay again.');
  $('cart-title').focus();
}

function restart() {
  store.clearAttempt();
  $('pending-note').hidden = true;
  clearError();
  loadProducts();
  announce('Starting again with the same cart.');
  $('checkout-title').focus();
}

// --- submit ----------------------------------------------------------------------------

function setBusy(busy) {
  state.busy = busy;
  const pay = $('pay');
  pay.disabled = busy || !state.quote;
  if ($('pay-hosted')) $('pay-hosted').disabled = busy || !state.quote;
  pay.setAttribute('aria-busy', String(busy));
  $('checkout-form').setAttribute('aria-busy', String(busy));
}

async function onSubmit(event) {
  event.preventDefault();
  // A double click never starts a second attempt.
  if (state.busy || (!state.elements && !(signedIn() && state.quote))) return;
  setBusy(true);
  clearError();
  try {
    await pay();
  } finally {
    setBusy(false);
  }
}

async function pay() {
  const invalid = localErrors();
  if (invalid.length) {
    return showFieldErrors(invalid, {
      kind: 'validation', title: 'Please check your details',
      message: 'Some details are missing or invalid.', next: 'Correct the highlighted fields, then pay again.',
    });
  }
  saveFormState();
  if (signedIn()) return state.intentBound ? payForIntent() : continueToPayment(buildBody());
  // Stripe requires submit() straight after the click, before any other async work.
  const submitted = await state.elements.submit();
  if (submitted.error) return reportStripeError(submitted.error);
  const { error, confirmationToken } = await state.stripe.createConfirmationToken({ elements: state.elements });
  if (error) return reportStripeError(error);
  return payWithToken(confirmationToken.id, buildBody());
}

/** "Pay on Stripe's page": the same details, then a redirect to Stripe's hosted page. */
async function onPayHosted() {
  if (state.busy || !state.quote) return;
  setBusy(true);
  clearError();
  try {
    const invalid = localErrors();
    if (invalid.length) {
      return showFieldErrors(invalid, {
        kind: 'validation', title: 'Please check your details',
        message: 'Some details are missing or invalid.', next: 'Correct the highlighted fields, then pay again.',
      });
    }
    saveFormState();
    const outcome = await payOnStripe(hostedBody(buildBody()), announce);
    if (outcome === REDIRECTED) return;
    store.clearAttempt();
    const desc = outcome.error
      ? describeApiError(new ApiError('http', { status: 503, body: { error: outcome.error } }))
      : holdExpired();
    showError(desc, actionsFor(desc));
  } catch (err) {
    if (err instanceof ApiError) return reportApiError(err);
    throw err;
  } finally {
    setBusy(false);
  }
}

/** Server-side confirmation: the cart (or, after a decline, only the token) goes to the
 * server, which creates and confirms the intent; the status says what happened. */
async function payWithToken(tokenId, body) {
  const attempt = store.attemptFor(body);
  try {
    if (!attempt.orderId) await createOrder(attempt, tokenId);
    else await retryPayment(attempt, tokenId);
    if (!attempt.checkoutToken) return followWithoutToken(attempt);
    announce('Confirming your payment…');
    return await followPayment(attempt);
  } catch (err) {
    if (err instanceof ApiError) return reportApiError(err);
    throw err;
  }
}

/** A new attempt on the same order, intent and hold (after a decline). */
async function retryPayment(attempt, tokenId) {
  await api('POST', `/api/checkout/${encodeURIComponent(attempt.orderId)}/confirm`, {
    body: { confirmationTokenId: tokenId },
    headers: { 'Idempotency-Key': `${attempt.key}:${tokenId}`, 'X-Checkout-Token': attempt.checkoutToken },
  });
}

/** Long-poll until the payment has an outcome; 3-D Secure through handleNextAction. */
async function followPayment(attempt) {
  const deadline = Date.now() + CLIENT_SECRET_DEADLINE_MS;
  let since = null;
  let wait = 0;
  let authenticated = null;
  for (;;) {
    const status = await readStatus(attempt, wait, since);
    since = status.version ?? null;
    wait = 20;
    const payment = status.payment || {};
    if (PAID_STATES.includes(status.state) || SUCCESS_PAYMENT.includes(payment.status)) {
      return finish(attempt, payment.status);
    }
    if (status.state !== 'PENDING' || holdHasExpired(status.holdExpiresAt)) {
      return showError(holdExpired(), actionsFor(holdExpired()));
    }
    if (status.error && payment.status !== 'creating') {
      const err = status.error;
      return reportStripeError({ type: 'card_error', code: err.code, decline_code: err.declineCode, message: err.message });
    }
    if (status.error) {
      const desc = describeApiError(new ApiError('http', { status: 503, body: { error: status.error } }));
      return showError(desc, actionsFor(desc));
    }
    if (payment.status === 'requires_action' && payment.clientSecret && authenticated !== payment.intentId + since) {
      authenticated = payment.intentId + since;
      announce('Your bank asks you to confirm this payment…');
      const result = await nextAction(payment.clientSecret);
      if (result.paymentIntent && SUCCESS_PAYMENT.includes(result.paymentIntent.status)) {
        return finish(attempt, result.paymentIntent.status);
      }
      if (result.error) return reportStripeError(result.error);
      wait = 0;
      continue;
    }
    if (status.queue) announce(queueText(status.queue));
    if (Date.now() > deadline) throw new ApiError('timeout');
  }
}

/** stripe.handleNextAction; an intent that no longer needs an action (the status we read
 * was already stale) rejects instead of answering: keep following the status then. */
async function nextAction(clientSecret) {
  try {
    return await state.stripe.handleNextAction({ clientSecret });
  } catch (err) {
    console.warn('handleNextAction:', err);
    return {};
  }
}

/** What a buyer waiting in a flash sale reads while the payment is being set up. */
function queueText({ position, etaSeconds }) {
  if (!position) return 'Preparing your payment…';
  const ahead = position === 1 ? '1 buyer is' : `${position} buyers are`;
  return `${ahead} ahead of you. Your payment goes through in about ${etaSeconds} s.`;
}

async function createOrder(attempt, tokenId) {
  announce('Reserving your items…');
  // The attempt keeps the token of its first submit: a retry after a lost answer or a
  // refresh resends the same body with the same key, so the server replays the order
  // it admitted instead of making a second one (the fresh token is simply not used).
  if (!attempt.tokenId) {
    attempt.tokenId = tokenId;
    store.saveAttempt(attempt);
  }
  const body = { ...JSON.parse(attempt.fingerprint) };
  if (attempt.tokenId) body.confirmationTokenId = attempt.tokenId;
  const order = await api('POST', '/api/checkout/payment-intent', {
    body, headers: { 'Idempotency-Key': attempt.key },
  });
  Object.assign(attempt, {
    orderId: order.orderId, orderNumber: order.orderNumber,
    checkoutToken: order.checkoutToken, holdExpiresAt: order.holdExpiresAt,
  });
  store.saveAttempt(attempt);
  store.rememberOrder(order.orderId, order.checkoutToken, order.orderNumber, body.email);
}

/** A replay of a submit whose first answer was lost carries no checkout token (the key
 * is no credential: docs/api.md). With a ConfirmationToken the order is being paid
 * already: a new attempt could charge twice, so the order page follows it by its number
 * and e-mail instead. */
function followWithoutToken(attempt) {
  store.clearAttempt();
  state.cart = [];
  store.saveCart([]);
  announce('Your order was placed. Opening it…');
  location.assign(`/order/${encodeURIComponent(attempt.orderId)}`);
}

const readStatus = (attempt, wait, since = null) =>
  checkoutStatus(attempt.orderId, attempt.checkoutToken, { wait, since });

const holdHasExpired = (iso) => Boolean(iso) && Date.parse(iso) <= Date.now();

/** Done paying: forget the attempt and the cart, open the order page. */
function finish(attempt, paymentStatus) {
  store.clearAttempt();
  state.cart = [];
  store.saveCart([]);
  announce('Payment received. Opening your order…');
  // Stripe's own return_url convention, so the order page reads the same either way.
  const redirect = paymentStatus === 'succeeded' ? 'succeeded' : paymentStatus === 'processing' ? 'pending' : '';
  const query = redirect ? `?redirect_status=${redirect}` : '';
  location.assign(`/order/${encodeURIComponent(attempt.orderId)}${query}`);
}

// --- a refresh with an attempt in flight ------------------------------------------------

async function resume() {
  const attempt = store.loadAttempt();
  if (!attempt?.orderId) return;
  try {
    const status = await readStatus(attempt, 0);
    if (PAID_STATES.includes(status.state) || SUCCESS_PAYMENT.includes(status.payment?.status)) {
      return finish(attempt, status.payment?.status);
    }
    if (status.state !== 'PENDING' || holdHasExpired(status.holdExpiresAt)) {
      store.clearAttempt();
      return;
    }
    const note = $('pending-note');
    note.textContent = `Order ${status.orderNumber} is reserved for you. Enter your card to complete it.`;
    note.hidden = false;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) store.clearAttempt();
  }
}

// --- start -------------------------------------------------------------------------------

async function loadProducts() {
  $('catalog-empty').hidden = false;
  try {
    state.products = await api('GET', '/api/products');
    $('catalog-empty').hidden = true;
  } catch (err) {
    $('catalog-empty').textContent = 'The products could not be loaded. Refresh the page to try again.';
    if (err instanceof ApiError) reportApiError(err);
    return;
  }
  // Drop lines for products that vanished from the catalog.
  state.cart = state.cart.filter((line) => productBySku(line.sku));
  cartChanged();
}

function startStripe() {
  if (typeof window.Stripe !== 'function') {
    showError({
      kind: 'network', title: 'The payment form could not be loaded',
      message: 'Stripe.js did not load, so card payments are unavailable right now.',
      next: 'Check your connection and refresh the page.',
    });
    return;
  }
  state.stripe = window.Stripe(config.publishableKey);
}

function init() {
  startStripe();
  restoreFormState();
  $('billing-same').addEventListener('change', () => { toggleBilling(); saveFormState(); });
  $('checkout-form').addEventListener('submit', onSubmit);
  $('apply-promotion').addEventListener('click', applyPromotion);
  $('promotionCode').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); applyPromotion(); }
  });
  $('pay-hosted')?.addEventListener('click', onPayHosted);
  $('checkout-form').addEventListener('change', (event) => {
    if (event.target.closest('#payment-element') || event.target.name === 'shippingOptionId') return;
    if (event.target.id === 'promotionCode') return;
    saveFormState();
    if (['country', 'postalCode', 'line1', 'city', 'state'].includes(event.target.id)) scheduleQuote();
  });
  for (const id of ['cart-title', 'checkout-title']) $(id).tabIndex = -1;
  renderCart();
  loadProducts().then(resume);
}

init();

// The checkout page: catalog and cart, the form, totals from /api/checkout/quote, the
// Payment Element (deferred intent), and the submit sequence:
//   elements.submit() -> POST /api/checkout/payment-intent (Idempotency-Key per attempt)
//   -> long-poll GET /api/checkout/<id>?wait=20 until the client secret appears
//   -> stripe.confirmPayment(..., redirect: 'if_required') -> the order page.

import { api, ApiError, checkoutStatus } from './api.js';
import { formatMoney } from './money.js';
import { describeApiError, describeStripeError, holdExpired } from './errors.js';
import { announce, clearError, setFieldError, showError } from './ui.js';
import * as store from './storage.js';

const $ = (id) => document.getElementById(id);
const config = document.body.dataset;
const CLIENT_SECRET_DEADLINE_MS = 60000;
const PAID_STATES = ['PAID', 'FULFILLING', 'FULFILLED', 'REFUNDED'];
const SUCCESS_PAYMENT = ['succeeded', 'processing'];
const ADDRESS_KEYS = ['line1', 'line2', 'city', 'state', 'postalCode', 'country'];
const FORM_IDS = ['name', 'email', ...ADDRESS_KEYS, 'billing-name',
  ...ADDRESS_KEYS.map((k) => `billing-${k}`)];

const state = {
  products: [],
  cart: store.loadCart(),
  quote: null,
  stripe: null,
  elements: null,
  paymentElement: null,
  busy: false,
};

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
  clearTimeout(quoteTimer);
  quoteTimer = setTimeout(refreshQuote, 150);
}

async function refreshQuote() {
  const seq = ++quoteSeq;
  if (!state.cart.length) {
    state.quote = null;
    renderTotals();
    return;
  }
  const shipping = readAddress('');
  const body = { items: state.cart.map(({ sku, quantity }) => ({ sku, quantity })) };
  if (shipping.country && shipping.postalCode && shipping.line1 && shipping.city) {
    body.shippingAddress = { name: readValue('name') || 'Buyer', ...shipping };
  }
  try {
    let quote;
    try {
      quote = await api('POST', '/api/checkout/quote', { body });
    } catch (err) {
      // A half-typed address must not block the totals: price without it (the submit
      // validates the address and reports it field by field).
      if (!(err instanceof ApiError && err.code === 'validation_failed' && body.shippingAddress)) throw err;
      delete body.shippingAddress;
      quote = await api('POST', '/api/checkout/quote', { body });
    }
    if (seq !== quoteSeq) return; // a newer cart is being priced
    state.quote = quote;
    renderTotals();
    renderCart();
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
    return;
  }
  for (const key of ['subtotal', 'shipping', 'tax', 'total']) {
    $(`total-${key}`).textContent = formatMoney(quote[key], quote.currency);
  }
  pay.textContent = `Pay ${formatMoney(quote.total, quote.currency)}`;
  pay.disabled = state.busy;
  mountPaymentElement(quote);
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
  return body;
}

// --- errors --------------------------------------------------------------------------

/** API field paths (shippingAddress.postalCode) -> input ids (postalCode). */
function inputForField(path) {
  if (path === 'email') return 'email';
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
  pay.setAttribute('aria-busy', String(busy));
  $('checkout-form').setAttribute('aria-busy', String(busy));
}

async function onSubmit(event) {
  event.preventDefault();
  if (state.busy || !state.elements) return; // a double click never starts a second attempt
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
  // Stripe requires submit() straight after the click, before any other async work.
  const submitted = await state.elements.submit();
  if (submitted.error) return reportStripeError(submitted.error);

  const attempt = store.attemptFor(buildBody());
  try {
    if (!attempt.orderId) await createOrder(attempt);
    announce('Preparing your payment…');
    const clientSecret = await waitForClientSecret(attempt);
    if (!clientSecret) return;
    announce('Confirming your payment…');
    const result = await state.stripe.confirmPayment({
      elements: state.elements,
      clientSecret,
      confirmParams: { return_url: `${location.origin}/order/${encodeURIComponent(attempt.orderId)}` },
      redirect: 'if_required',
    });
    if (result.error) {
      const intent = result.error.payment_intent;
      if (intent && SUCCESS_PAYMENT.includes(intent.status)) return finish(attempt, intent.status);
      return reportStripeError(result.error);
    }
    return finish(attempt, result.paymentIntent?.status);
  } catch (err) {
    if (err instanceof ApiError) return reportApiError(err);
    throw err;
  }
}

async function createOrder(attempt) {
  announce('Reserving your items…');
  const body = JSON.parse(attempt.fingerprint);
  const order = await api('POST', '/api/checkout/payment-intent', {
    body, headers: { 'Idempotency-Key': attempt.key },
  });
  Object.assign(attempt, {
    orderId: order.orderId, orderNumber: order.orderNumber,
    checkoutToken: order.checkoutToken, holdExpiresAt: order.holdExpiresAt,
  });
  store.saveAttempt(attempt);
  store.rememberOrder(order.orderId, order.checkoutToken, order.orderNumber);
}

const readStatus = (attempt, wait, since = null) =>
  checkoutStatus(attempt.orderId, attempt.checkoutToken, { wait, since });

/** Long-poll the checkout status until the worker has published the client secret. */
async function waitForClientSecret(attempt) {
  const deadline = Date.now() + CLIENT_SECRET_DEADLINE_MS;
  let wait = 0;
  let since = null;
  for (;;) {
    const status = await readStatus(attempt, wait, since);
    since = status.version ?? null;
    if (PAID_STATES.includes(status.state) || SUCCESS_PAYMENT.includes(status.payment?.status)) {
      finish(attempt, status.payment?.status);
      return null;
    }
    if (status.state !== 'PENDING' || holdHasExpired(status.holdExpiresAt)) {
      showError(holdExpired(), actionsFor(holdExpired()));
      return null;
    }
    if (status.payment?.clientSecret) return status.payment.clientSecret;
    if (status.error && status.payment?.status === 'creating') {
      const desc = describeApiError(new ApiError('http', { status: 503, body: { error: status.error } }));
      showError(desc, actionsFor(desc));
      return null;
    }
    if (status.queue) announce(queueText(status.queue));
    if (Date.now() > deadline) throw new ApiError('timeout');
    wait = 20;
  }
}

/** What a buyer waiting in a flash sale reads while the payment is being set up. */
function queueText({ position, etaSeconds }) {
  if (!position) return 'Preparing your payment…';
  const ahead = position === 1 ? '1 buyer is' : `${position} buyers are`;
  return `${ahead} ahead of you. Your payment form opens in about ${etaSeconds} s.`;
}

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
  $('checkout-form').addEventListener('change', (event) => {
    if (event.target.closest('#payment-element')) return;
    saveFormState();
    if (['country', 'postalCode', 'line1', 'city', 'state'].includes(event.target.id)) scheduleQuote();
  });
  for (const id of ['cart-title', 'checkout-title']) $(id).tabIndex = -1;
  renderCart();
  loadProducts().then(resume);
}

init();

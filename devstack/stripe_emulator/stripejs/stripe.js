/*
 * Offline stand-in for Stripe.js v3, served by the local Stripe emulator at
 * /js.stripe.com/v3/.
 *
 * It defines `window.Stripe` the way the real script does, so a page (or a React
 * shop whose `@stripe/stripe-js` `loadStripe` reuses an existing `window.Stripe`)
 * runs its ordinary Payment Element code against the emulator, with no network
 * access to Stripe. It implements the calls a checkout page uses:
 *
 *   Stripe(pk, {apiBase?})            apiBase defaults to the origin this file came from
 *   stripe.elements({clientSecret} | {mode: 'payment', amount, currency, appearance})
 *   elements.create('payment' | 'card'), .getElement(), .update(), .submit(), .fetchUpdates()
 *   element.mount/unmount/destroy/on/off/once/focus/blur/clear/update
 *   stripe.confirmPayment, confirmCardPayment, handleNextAction, retrievePaymentIntent,
 *   createPaymentMethod
 *
 * The card fields are plain inputs inside the mount point (no iframe): this is a test
 * tool, and the card numbers typed into it are Stripe's public test numbers. The card
 * data goes straight to the emulator's /v1/payment_methods, never to the shop's server.
 *
 * 3-D Secure: when an intent answers `requires_action`, a modal dialog modelled on
 * Stripe's "3D Secure 2 Test Page" asks to complete or fail the authentication, and
 * tells the emulator through POST /_emulator/payment_intents/<id>/authenticate.
 *
 * Plain ES5-ish browser JavaScript, no build step. Sections:
 *   1. locating the emulator      5. the card fields (Element)
 *   2. HTTP and errors            6. the Elements group
 *   3. card rules and messages    7. the 3-D Secure dialog
 *   4. styles                     8. Stripe(): the payment calls
 */
(function () {
  'use strict';

  if (typeof window === 'undefined' || (window.Stripe && window.Stripe.emulator)) {
    return; // loaded twice: keep the first copy (and its elements)
  }

  var CSS_PREFIX = 'stripe-emu';
  var instanceCounter = 0;

  // ---------------------------------------------------------------------------
  // 1. Locating the emulator
  // ---------------------------------------------------------------------------

  /** The <script> element this file was loaded from (currentScript only exists now). */
  function ownScript() {
    if (document.currentScript) return document.currentScript;
    var scripts = document.getElementsByTagName('script');
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/js\.stripe\.com\/v3\//.test(scripts[i].src || '')) return scripts[i];
    }
    return null;
  }

  /** http://127.0.0.1:12111/js.stripe.com/v3/ -> http://127.0.0.1:12111 (prefix kept). */
  function apiBaseFromScript(script) {
    if (!script || !script.src) return window.location.origin;
    var url = new URL(script.src, window.location.href);
    var cut = url.pathname.indexOf('/js.stripe.com/');
    var prefix = cut >= 0 ? url.pathname.slice(0, cut) : '';
    return url.origin + prefix;
  }

  var DEFAULT_API_BASE = apiBaseFromScript(ownScript());

  // ---------------------------------------------------------------------------
  // 2. HTTP and errors
  // ---------------------------------------------------------------------------

  /** Thrown for programming mistakes, as Stripe.js throws IntegrationError. */
  function IntegrationError(message) {
    var error = new Error(message);
    error.name = 'IntegrationError';
    return error;
  }

  /** Stripe's form encoding: {card: {number: 1}} -> card[number]=1. */
  function formEncode(params, prefix, out) {
    out = out || [];
    Object.keys(params || {}).forEach(function (key) {
      var value = params[key];
      if (value === undefined || value === null) return;
      var name = prefix ? prefix + '[' + key + ']' : key;
      if (typeof value === 'object') {
        formEncode(value, name, out);
      } else {
        out.push(encodeURIComponent(name) + '=' + encodeURIComponent(String(value)));
      }
    });
    return out.join('&');
  }

  /** Keep the fields Stripe.js puts on an error object, dropping the empty ones. */
  function stripeError(source, paymentIntent) {
    var error = {};
    ['type', 'code', 'decline_code', 'message', 'param', 'doc_url', 'charge',
      'payment_method', 'payment_intent', 'setup_intent'].forEach(function (key) {
      if (source[key] !== undefined && source[key] !== null) error[key] = source[key];
    });
    if (paymentIntent) error.payment_intent = paymentIntent;
    if (!error.type) {
      // last_payment_error normally carries its type; fall back the way Stripe types them.
      error.type = error.decline_code || error.code === 'card_declined' ? 'card_error'
        : error.code ? 'invalid_request_error' : 'api_error';
    }
    return error;
  }

  function connectionError() {
    return {
      type: 'api_connection_error',
      message: 'An error occurred with our connection to Stripe. Request was retried 0 times.'
    };
  }

  /**
   * One request to the emulator. Resolves {body} on 2xx and {error} otherwise;
   * never rejects, so callers can hand the result on as Stripe.js would.
   */
  function request(client, method, path, params, json) {
    var url = client.apiBase + path;
    var init = { method: method, headers: {}, mode: 'cors', credentials: 'omit' };
    if (json) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(params || {});
    } else {
      init.headers.Authorization = 'Bearer ' + client.key;
      if (client.stripeAccount) init.headers['Stripe-Account'] = client.stripeAccount;
      var encoded = formEncode(params);
      if (method === 'GET') {
        if (encoded) url += '?' + encoded;
      } else {
        init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
        init.body = encoded;
      }
    }
    return fetch(url, init).then(function (response) {
      return response.json().then(function (body) {
        if (response.ok) return { body: body };
        return { error: stripeError((body && body.error) || { message: 'HTTP ' + response.status }) };
      }, function () {
        var message = 'Unexpected response from the emulator (HTTP ' + response.status + ').';
        return { error: { type: 'api_error', message: message } };
      });
    }, function () {
      return { error: connectionError() };
    });
  }

  /** pi_123_secret_abc -> pi_123 (ids may themselves contain underscores). */
  function intentIdFromSecret(clientSecret) {
    var cut = typeof clientSecret === 'string' ? clientSecret.indexOf('_secret_') : -1;
    if (cut <= 0) {
      throw IntegrationError('Invalid value for clientSecret: expected a PaymentIntent client ' +
        'secret of the form pi_..._secret_..., got ' + JSON.stringify(clientSecret) + '.');
    }
    return clientSecret.slice(0, cut);
  }

  // ---------------------------------------------------------------------------
  // 3. Card rules and Stripe's wording
  // ---------------------------------------------------------------------------

  var MESSAGES = {
    incomplete_number: 'Your card number is incomplete.',
    invalid_number: 'Your card number is invalid.',
    incomplete_expiry: "Your card's expiration date is incomplete.",
    invalid_expiry_month: "Your card's expiration month is invalid.",
    invalid_expiry_month_past: "Your card's expiration date is in the past.",
    invalid_expiry_year_past: "Your card's expiration year is in the past.",
    invalid_expiry_year: "Your card's expiration year is invalid.",
    incomplete_cvc: "Your card's security code is incomplete.",
    incomplete_zip: 'Your postal code is incomplete.'
  };

  // Ordered: the first pattern that matches the leading digits names the brand.
  var BRANDS = [
    { brand: 'amex', label: 'American Express', pattern: /^3[47]/, lengths: [15], gaps: [4, 10], cvc: 4 },
    { brand: 'diners', label: 'Diners Club', pattern: /^3(0[0-5]|[689])/, lengths: [14, 16], gaps: [4, 10], cvc: 3 },
    { brand: 'jcb', label: 'JCB', pattern: /^35/, lengths: [16], gaps: [4, 8, 12], cvc: 3 },
    { brand: 'visa', label: 'Visa', pattern: /^4/, lengths: [16], gaps: [4, 8, 12], cvc: 3 },
    { brand: 'mastercard', label: 'Mastercard', pattern: /^(5[1-5]|2[2-7])/, lengths: [16], gaps: [4, 8, 12], cvc: 3 },
    { brand: 'discover', label: 'Discover', pattern: /^(6011|65|64[4-9])/, lengths: [16], gaps: [4, 8, 12], cvc: 3 },
    { brand: 'unionpay', label: 'UnionPay', pattern: /^62/, lengths: [16, 17, 18, 19], gaps: [4, 8, 12], cvc: 3 }
  ];
  var UNKNOWN_BRAND = { brand: 'unknown', label: '', pattern: null, lengths: [16], gaps: [4, 8, 12],
    cvc: 3 };

  function brandOf(digits) {
    for (var i = 0; i < BRANDS.length; i++) {
      if (BRANDS[i].pattern.test(digits)) return BRANDS[i];
    }
    return UNKNOWN_BRAND;
  }

  function maxLength(brand) { return Math.max.apply(null, brand.lengths); }

  function luhnValid(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = +digits.charAt(digits.length - 1 - i);
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function onlyDigits(text) { return String(text || '').replace(/\D/g, ''); }

  /** "4242424242424242" -> "4242 4242 4242 4242" (Amex: 4-6-5). */
  function formatNumber(digits) {
    var gaps = brandOf(digits).gaps;
    var out = '';
    for (var i = 0; i < digits.length; i++) {
      if (gaps.indexOf(i) >= 0) out += ' ';
      out += digits.charAt(i);
    }
    return out;
  }

  /** Expiry digits "MMYY" from what was typed or pasted ("4" -> "04", "12/2034" -> "1234"). */
  function expiryDigits(raw) {
    var pasted = /^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/.exec(raw);
    if (pasted) {
      var mm = pasted[1].length === 1 ? '0' + pasted[1] : pasted[1];
      return mm + pasted[2].slice(-2);
    }
    var digits = onlyDigits(raw).slice(0, 4);
    if (digits.length === 1 && digits > '1') digits = '0' + digits;
    return digits;
  }

  function formatExpiry(digits, deleting) {
    if (digits.length < 2 || (deleting && digits.length === 2)) return digits;
    return digits.slice(0, 2) + ' / ' + digits.slice(2);
  }

  /**
   * Each field's rule: tidy the raw text and say what is wrong with it.
   * check() answers null when the value is complete and valid, else an error code.
   */
  var FIELD_RULES = {
    number: {
      tidy: function (raw) {
        var digits = onlyDigits(raw);
        return formatNumber(digits.slice(0, maxLength(brandOf(digits))));
      },
      check: function (value) {
        var digits = onlyDigits(value);
        var brand = brandOf(digits);
        if (brand.lengths.indexOf(digits.length) >= 0 && luhnValid(digits)) return null;
        return digits.length >= maxLength(brand) ? 'invalid_number' : 'incomplete_number';
      }
    },
    expiry: {
      tidy: function (raw, deleting) { return formatExpiry(expiryDigits(raw), deleting); },
      check: function (value) {
        var digits = onlyDigits(value);
        if (digits.length < 4) {
          var early = digits.length >= 2 ? +digits.slice(0, 2) : 1;
          return early >= 1 && early <= 12 ? 'incomplete_expiry' : 'invalid_expiry_month';
        }
        var month = +digits.slice(0, 2);
        var year = 2000 + +digits.slice(2, 4);
        var now = new Date();
        if (month < 1 || month > 12) return 'invalid_expiry_month';
        if (year < now.getFullYear()) return 'invalid_expiry_year_past';
        if (year === now.getFullYear() && month < now.getMonth() + 1) return 'invalid_expiry_month_past';
        if (year > now.getFullYear() + 50) return 'invalid_expiry_year';
        return null;
      }
    },
    cvc: {
      tidy: function (raw, deleting, values) {
        return onlyDigits(raw).slice(0, brandOf(onlyDigits(values.number)).cvc);
      },
      check: function (value, fields) {
        var need = brandOf(onlyDigits(fields.number)).cvc;
        return onlyDigits(value).length >= need ? null : 'incomplete_cvc';
      }
    },
    postalCode: {
      tidy: function (raw) { return String(raw).replace(/^\s+/, '').slice(0, 10); },
      check: function (value) {
        var text = value.trim();
        // US-style all-digit codes need five digits; other formats just need something.
        if (!text || (/^\d+$/.test(text) && text.length < 5)) return 'incomplete_zip';
        return null;
      }
    }
  };

  /** Codes that are only shown after leaving the field (or on submit), not while typing. */
  function isIncompleteCode(code) { return code.indexOf('incomplete_') === 0; }

  // ---------------------------------------------------------------------------
  // 4. Styles (scoped by the stripe-emu- class prefix; injected once)
  // ---------------------------------------------------------------------------

  var STYLES = [
    '.P{--P-primary:#0570de;--P-text:#30313d;--P-muted:#595a66;--P-danger:#c0123c;',
    '--P-bg:#fff;--P-border:#8a8b94;--P-radius:6px;--P-font:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;',
    'font-family:var(--P-font);color:var(--P-text);font-size:16px;line-height:1.4;max-width:100%;box-sizing:border-box}',
    '.P *,.P *::before,.P *::after{box-sizing:border-box}',
    '.P-fieldset{border:0;margin:0;padding:0;min-width:0}',
    '.P-legend{font-weight:600;padding:0;margin:0 0 .5rem}',
    '.P-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(8.5rem,1fr));gap:.75rem;',
    'margin:0 0 .75rem}',
    '.P-field{display:flex;flex-direction:column;min-width:0;margin:0 0 .75rem}',
    '.P-grid .P-field{margin:0}',
    '.P-label{font-size:.875rem;margin:0 0 .25rem;display:flex;justify-content:space-between;gap:.5rem}',
    '.P-brand{color:var(--P-muted);font-size:.8125rem}',
    '.P-input{font:inherit;font-size:16px;color:var(--P-text);background:var(--P-bg);width:100%;',
    'padding:.625rem .75rem;border:1px solid var(--P-border);border-radius:var(--P-radius);min-height:44px}',
    '.P-input:focus{outline:3px solid var(--P-primary);outline-offset:1px;border-color:var(--P-primary)}',
    '.P-input[aria-invalid="true"]{border-color:var(--P-danger);border-width:2px}',
    '.P-error{color:var(--P-danger);font-size:.875rem;margin:.25rem 0 0}',
    // Empty messages stay in the accessibility tree (a live region must exist before it speaks).
    '.P-error:empty{margin:0}',
    '.P-note{color:var(--P-muted);font-size:.8125rem;margin:.25rem 0 0}',
    '.P-sr{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;',
    'clip:rect(0,0,0,0);white-space:nowrap;border:0}',
    '.P[aria-busy="true"] .P-input{opacity:.7}',
    '.P-overlay{position:fixed;inset:0;background:rgba(10,10,20,.55);display:flex;align-items:center;',
    'justify-content:center;padding:1rem;z-index:2147483647}',
    '.P-dialog{background:#fff;color:#30313d;border-radius:8px;max-width:26rem;width:100%;padding:1.5rem;',
    'box-shadow:0 10px 40px rgba(0,0,0,.35);font-family:var(--P-font);font-size:16px;line-height:1.45}',
    '.P-dialog h2{font-size:1.25rem;margin:0 0 .75rem}',
    '.P-dialog p{margin:0 0 1rem}',
    '.P-actions{display:flex;flex-wrap:wrap;gap:.75rem}',
    '.P-button{font:inherit;font-weight:600;min-height:44px;padding:.625rem 1rem;border-radius:6px;cursor:pointer;',
    'border:2px solid var(--P-primary);background:#fff;color:#0055bb;flex:1 1 10rem}',
    '.P-button--primary{background:var(--P-primary);color:#fff}',
    '.P-button:focus-visible{outline:3px solid #30313d;outline-offset:2px}',
    '.P-button[disabled]{opacity:.6;cursor:progress}'
  ].join('\n').replace(/P-/g, CSS_PREFIX + '-').replace(/\.P\b/g, '.' + CSS_PREFIX)
    .replace(/--P-/g, '--' + CSS_PREFIX + '-');

  function injectStyles() {
    if (document.getElementById(CSS_PREFIX + '-styles')) return;
    var style = document.createElement('style');
    style.id = CSS_PREFIX + '-styles';
    style.textContent = STYLES;
    (document.head || document.documentElement).appendChild(style);
  }

  /** Map Elements `appearance.variables` onto the CSS custom properties above. */
  function applyAppearance(root, appearance) {
    var vars = (appearance && appearance.variables) || {};
    var map = { colorPrimary: 'primary', colorText: 'text', colorDanger: 'danger',
      colorBackground: 'bg', borderRadius: 'radius', fontFamily: 'font' };
    Object.keys(map).forEach(function (name) {
      if (vars[name]) root.style.setProperty('--' + CSS_PREFIX + '-' + map[name], vars[name]);
    });
  }

  /** Tiny DOM builder: el('p', {class: 'x', text: 'hi'}, [children]). */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === 'text') node.textContent = attrs[name];
      else if (attrs[name] !== null && attrs[name] !== undefined) node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function cls(name) { return CSS_PREFIX + (name ? '-' + name : ''); }

  // ---------------------------------------------------------------------------
  // 5. The card fields: one Element type serves 'payment' and 'card'
  // ---------------------------------------------------------------------------

  // `hidden` is read by screen readers after the label, not shown (the placeholder shows it).
  var FIELDS = [
    { key: 'number', label: 'Card number', hidden: null, autocomplete: 'cc-number',
      placeholder: '1234 1234 1234 1234', name: 'cardnumber' },
    { key: 'expiry', label: 'Expiration date', hidden: ' (MM / YY)', autocomplete: 'cc-exp',
      placeholder: 'MM / YY', name: 'exp-date' },
    { key: 'cvc', label: 'Security code', hidden: ' (CVC)', autocomplete: 'cc-csc',
      placeholder: 'CVC', name: 'cvc' },
    { key: 'postalCode', label: 'Postal code', hidden: null, autocomplete: 'postal-code',
      placeholder: '12345', name: 'postal' }
  ];

  function Element(group, type, options) {
    this._group = group;
    this._type = type;
    this._options = options || {};
    this._uid = CSS_PREFIX + '-' + (++instanceCounter);
    this._handlers = {};
    this._values = { number: '', expiry: '', cvc: '', postalCode: '' };
    this._touched = {};   // fields left at least once while non-empty
    this._forced = false; // submit() asked: show every problem, "incomplete" ones too
    this._root = null;
    this._destroyed = false;
    this._lastChange = null;
  }

  /** Postal code is collected unless the integration says fields.billingDetails.address(.postalCode) 'never'. */
  Element.prototype._collectsPostal = function () {
    var address = ((this._options.fields || {}).billingDetails || {}).address;
    if (this._options.hidePostalCode) return false;
    return !(address === 'never' || (address && address.postalCode === 'never'));
  };

  Element.prototype._activeFields = function () {
    var withPostal = this._collectsPostal();
    return FIELDS.filter(function (f) { return f.key !== 'postalCode' || withPostal; });
  };

  Element.prototype.mount = function (target) {
    this._assertAlive();
    var node = typeof target === 'string' ? document.querySelector(target) : target;
    if (!node || node.nodeType !== 1) {
      throw IntegrationError('The selector you specified (' + target + ') applies to no DOM ' +
        'elements that are currently on the page.\nMake sure the element exists on the page ' +
        'before calling mount().');
    }
    if (this._root) this.unmount();
    this._attach(node);
    var self = this;
    setTimeout(function () { self._emit('ready', { elementType: self._type }); }, 0);
    return this;
  };

  /** Render into `node` (mount and update share this; only mount announces 'ready'). */
  Element.prototype._attach = function (node) {
    injectStyles();
    this._root = this._render();
    applyAppearance(this._root, this._group._appearance);
    node.appendChild(this._root);
    this._mountPoint = node;
  };

  /** The Element's markup: a fieldset of labelled inputs and the test-mode note. */
  Element.prototype._render = function () {
    var self = this;
    var root = el('div', { class: cls(), 'data-stripe-emulator': this._type, 'aria-busy': 'false' });
    var noteId = this._uid + '-note';
    var fieldset = el('fieldset', { class: cls('fieldset'), 'aria-describedby': noteId });
    fieldset.appendChild(el('legend', { class: cls('legend'), text: 'Card' }));
    this._inputs = {};
    this._errors = {};
    var wraps = {};
    this._activeFields().forEach(function (field) { wraps[field.key] = self._renderField(field); });
    // Card number on its own row, expiry and CVC side by side (wrapping when narrow), postal code.
    fieldset.appendChild(wraps.number);
    fieldset.appendChild(el('div', { class: cls('grid') }, [wraps.expiry, wraps.cvc]));
    if (wraps.postalCode) fieldset.appendChild(wraps.postalCode);
    root.appendChild(fieldset);
    root.appendChild(el('p', { id: noteId, class: cls('note'),
      text: 'Test mode: offline Stripe.js stand-in served by the local Stripe emulator. ' +
        'Use a test card such as 4242 4242 4242 4242, any future date and any security code.' }));
    // focus/blur of the Element as a whole, not of each input.
    root.addEventListener('focusin', function (event) {
      if (!root.contains(event.relatedTarget)) self._emit('focus', { elementType: self._type });
    });
    root.addEventListener('focusout', function (event) {
      if (!root.contains(event.relatedTarget)) self._emit('blur', { elementType: self._type });
    });
    this._updateBrand();
    this._showErrors();
    return root;
  };

  /** One labelled input with its message (role=alert, linked by aria-describedby). */
  Element.prototype._renderField = function (field) {
    var self = this;
    var id = this._uid + '-' + field.key;
    var input = el('input', {
      id: id, class: cls('input'), type: 'text', name: field.name,
      inputmode: field.key === 'postalCode' ? 'text' : 'numeric',
      autocomplete: field.autocomplete, placeholder: field.placeholder, spellcheck: 'false',
      autocorrect: 'off', autocapitalize: 'off', 'aria-required': 'true',
      'aria-invalid': 'false', 'aria-describedby': id + '-error'
    });
    if (this._options.readOnly) input.readOnly = true;
    input.value = this._values[field.key];
    var label = el('label', { class: cls('label'), for: id }, [
      el('span', {}, [document.createTextNode(field.label),
        field.hidden ? el('span', { class: cls('sr'), text: field.hidden }) : null])
    ]);
    if (field.key === 'number') {
      this._brandNode = el('span', { class: cls('brand'), 'aria-hidden': 'true' });
      label.appendChild(this._brandNode);
    }
    var error = el('p', { id: id + '-error', class: cls('error'), role: 'alert' });
    this._inputs[field.key] = input;
    this._errors[field.key] = error;
    input.addEventListener('input', function (event) { self._onInput(field.key, event); });
    input.addEventListener('blur', function () {
      if (self._values[field.key]) self._touched[field.key] = true;
      self._showErrors();
    });
    return el('div', { class: cls('field') + ' ' + cls('field--' + field.key) }, [label, input, error]);
  };

  /** Reformat the field as the user types, keeping the caret after the same digit. */
  Element.prototype._onInput = function (key, event) {
    var input = this._inputs[key];
    var raw = input.value;
    var caret = input.selectionStart === null ? raw.length : input.selectionStart;
    var deleting = /^delete/.test(event.inputType || '');
    var tidy = FIELD_RULES[key].tidy(raw, deleting, this._values);
    if (tidy !== raw) {
      var significantBefore = raw.slice(0, caret).replace(/[\s/]/g, '').length;
      input.value = tidy;
      var pos = 0;
      for (var seen = 0; pos < tidy.length && seen < significantBefore; pos++) {
        if (!/[\s/]/.test(tidy.charAt(pos))) seen++;
      }
      if (caret >= raw.length) pos = tidy.length; // typing at the end stays at the end
      if (document.activeElement === input) input.setSelectionRange(pos, pos);
    }
    this._values[key] = input.value;
    if (key === 'number') this._updateBrand();
    this._showErrors();
    this._emitChange();
  };

  Element.prototype._updateBrand = function () {
    if (this._brandNode) this._brandNode.textContent = brandOf(onlyDigits(this._values.number)).label;
  };

  /** {key: code} for each field that is not complete and valid. */
  Element.prototype._problems = function () {
    var values = this._values;
    var problems = {};
    this._activeFields().forEach(function (field) {
      var code = FIELD_RULES[field.key].check(values[field.key], values);
      if (code) problems[field.key] = code;
    });
    return problems;
  };

  /** Show the messages that are due: invalid ones at once, incomplete ones after blur or submit. */
  Element.prototype._showErrors = function () {
    if (!this._root) return;
    var problems = this._problems();
    var self = this;
    Object.keys(this._inputs).forEach(function (key) {
      var code = problems[key];
      var due = code && (self._forced || self._touched[key] || !isIncompleteCode(code)) &&
        (self._forced || self._values[key] !== '');
      var message = due ? MESSAGES[code] : '';
      if (self._errors[key].textContent !== message) self._errors[key].textContent = message;
      self._inputs[key].setAttribute('aria-invalid', due ? 'true' : 'false');
    });
  };

  Element.prototype._isEmpty = function () {
    var values = this._values;
    return this._activeFields().every(function (f) { return !values[f.key]; });
  };

  Element.prototype._changeEvent = function () {
    var problems = this._problems();
    var complete = Object.keys(problems).length === 0;
    var event = { elementType: this._type, empty: this._isEmpty(), complete: complete };
    if (this._type === 'payment') {
      event.collapsed = false;
      event.value = { type: 'card' };
    } else {
      var first = this._activeFields().filter(function (f) { return problems[f.key]; })[0];
      var code = first && problems[first.key];
      event.brand = brandOf(onlyDigits(this._values.number)).brand;
      event.value = { postalCode: this._values.postalCode };
      event.error = code && !isIncompleteCode(code)
        ? { type: 'validation_error', code: code, message: MESSAGES[code] } : undefined;
    }
    return event;
  };

  Element.prototype._emitChange = function () {
    var event = this._changeEvent();
    var key = JSON.stringify(event);
    if (key === this._lastChange) return;
    this._lastChange = key;
    this._emit('change', event);
  };

  /**
   * What submit() and confirm do first: show every problem, focus the first invalid
   * input, and answer Stripe's validation_error for it (or null when all is well).
   */
  Element.prototype._validate = function () {
    this._forced = true;
    this._showErrors();
    var problems = this._problems();
    var first = this._activeFields().filter(function (f) { return problems[f.key]; })[0];
    if (!first) return null;
    if (this._inputs && this._inputs[first.key]) this._inputs[first.key].focus();
    var code = problems[first.key];
    return { type: 'validation_error', code: code, message: MESSAGES[code] };
  };

  /** The card fields as /v1/payment_methods parameters. */
  Element.prototype._paymentMethodParams = function () {
    var exp = onlyDigits(this._values.expiry);
    var params = {
      type: 'card',
      card: {
        number: onlyDigits(this._values.number),
        exp_month: String(+exp.slice(0, 2)),
        exp_year: String(2000 + +exp.slice(2, 4)),
        cvc: onlyDigits(this._values.cvc)
      }
    };
    if (this._collectsPostal()) {
      params.billing_details = { address: { postal_code: this._values.postalCode.trim() } };
    }
    return params;
  };

  Element.prototype._setBusy = function (busy) {
    if (this._root) this._root.setAttribute('aria-busy', busy ? 'true' : 'false');
  };

  Element.prototype._emit = function (name, event) {
    (this._handlers[name] || []).slice().forEach(function (handler) {
      try { handler(event); } catch (err) { setTimeout(function () { throw err; }, 0); }
    });
  };

  Element.prototype._assertAlive = function () {
    if (this._destroyed) throw IntegrationError('This Element has already been destroyed. Please create a new one.');
  };

  Element.prototype.on = function (name, handler) {
    (this._handlers[name] = this._handlers[name] || []).push(handler);
    return this;
  };
  Element.prototype.addEventListener = Element.prototype.on;

  Element.prototype.off = function (name, handler) {
    if (!handler) delete this._handlers[name];
    else this._handlers[name] = (this._handlers[name] || []).filter(function (h) { return h !== handler; });
    return this;
  };
  Element.prototype.removeEventListener = Element.prototype.off;

  Element.prototype.once = function (name, handler) {
    var self = this;
    function wrapper(event) { self.off(name, wrapper); handler(event); }
    return this.on(name, wrapper);
  };

  Element.prototype.unmount = function () {
    if (this._root && this._root.parentNode) this._root.parentNode.removeChild(this._root);
    this._root = null;
    this._inputs = {};
    this._errors = {};
    this._brandNode = null;
    return this;
  };

  Element.prototype.destroy = function () {
    this.unmount();
    this._destroyed = true;
    this._handlers = {};
    delete this._group._elements[this._type];
  };

  Element.prototype.focus = function () {
    var first = this._inputs && this._inputs.number;
    if (first) first.focus();
    return this;
  };

  Element.prototype.blur = function () {
    if (this._root && this._root.contains(document.activeElement)) document.activeElement.blur();
    return this;
  };

  Element.prototype.clear = function () {
    var self = this;
    Object.keys(this._values).forEach(function (key) {
      self._values[key] = '';
      if (self._inputs && self._inputs[key]) self._inputs[key].value = '';
    });
    this._touched = {};
    this._forced = false;
    this._updateBrand();
    this._showErrors();
    this._emitChange();
    return this;
  };

  /** Options that change the rendering (fields, readOnly) re-render in place. */
  Element.prototype.update = function (options) {
    this._assertAlive();
    for (var key in options || {}) this._options[key] = options[key];
    if (this._root) {
      var node = this._mountPoint;
      this.unmount();
      this._attach(node);
    }
    return this;
  };

  Element.prototype.collapse = function () { return this; };

  /**
   * Elements the stand-in does not render (address, linkAuthentication,
   * expressCheckout, ...): inert placeholders so an integration that creates them
   * keeps working; they collect nothing.
   */
  function InertElement(group, type) {
    Element.call(this, group, type, {});
  }
  InertElement.prototype = Object.create(Element.prototype);
  InertElement.prototype._render = function () {
    return el('div', { class: cls(), 'data-stripe-emulator': this._type, hidden: 'hidden' });
  };
  InertElement.prototype._validate = function () { return null; };

  // ---------------------------------------------------------------------------
  // 6. The Elements group
  // ---------------------------------------------------------------------------

  function Elements(stripe, options) {
    options = options || {};
    this._stripe = stripe;
    this._clientSecret = options.clientSecret || null;
    this._mode = options.mode || null;
    this._amount = options.amount;
    this._currency = options.currency;
    this._appearance = options.appearance || null;
    this._elements = {};
    this._submitted = false;
    if (this._clientSecret) intentIdFromSecret(this._clientSecret); // fail early on a bad secret
  }

  Elements.prototype.create = function (type, options) {
    if (this._elements[type]) {
      throw IntegrationError('Can only create one Element of type ' + type + '.');
    }
    var element = type === 'payment' || type === 'card'
      ? new Element(this, type, options)
      : new InertElement(this, type);
    if (element instanceof InertElement && window.console) {
      console.warn('[stripe emulator] elements.create(' + JSON.stringify(type) +
        ') is not rendered by the offline stand-in.');
    }
    this._elements[type] = element;
    return element;
  };

  /** Accepts a type or a react-stripe-js component (which carries __elementType). */
  Elements.prototype.getElement = function (type) {
    var name = typeof type === 'string' ? type : type && type.__elementType;
    return this._elements[name] || null;
  };

  Elements.prototype.update = function (options) {
    options = options || {};
    if ('amount' in options) this._amount = options.amount;
    if ('currency' in options) this._currency = options.currency;
    if ('mode' in options) this._mode = options.mode;
    if (options.appearance) {
      this._appearance = options.appearance;
      var self = this;
      Object.keys(this._elements).forEach(function (type) {
        var root = self._elements[type]._root;
        if (root) applyAppearance(root, self._appearance);
      });
    }
    return this;
  };

  /** The card-collecting Element of this group (payment first), or null. */
  Elements.prototype._cardElement = function () {
    return this._elements.payment || this._elements.card || null;
  };

  Elements.prototype.submit = function () {
    var element = this._cardElement();
    if (!element || !element._root) {
      return Promise.reject(IntegrationError('elements.submit(): a mounted Payment Element is required.'));
    }
    var error = element._validate();
    this._submitted = !error;
    return Promise.resolve(error ? { error: error } : {});
  };

  Elements.prototype.fetchUpdates = function () { return Promise.resolve({}); };
  Elements.prototype._registerWrapper = function () {};

  // ---------------------------------------------------------------------------
  // 7. The 3-D Secure dialog
  // ---------------------------------------------------------------------------

  function formatAmount(intent) {
    if (typeof intent.amount !== 'number' || !intent.currency) return null;
    try {
      var currency = intent.currency.toUpperCase();
      var fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency: currency });
      var digits = fmt.resolvedOptions().maximumFractionDigits;
      return fmt.format(intent.amount / Math.pow(10, digits));
    } catch (e) {
      return null;
    }
  }

  /**
   * Show the modal and resolve with the outcome the buyer chose ('complete' or
   * 'fail'); `act(outcome)` runs while the dialog is still open (buttons disabled),
   * and the dialog closes when it settles. Escape counts as failing.
   */
  function showThreeDSecureDialog(intent, act) {
    injectStyles();
    var uid = CSS_PREFIX + '-3ds-' + (++instanceCounter);
    var opener = document.activeElement;
    var amount = formatAmount(intent);
    var complete = el('button', { type: 'button', class: cls('button') + ' ' + cls('button--primary'),
      text: 'Complete authentication' });
    var fail = el('button', { type: 'button', class: cls('button'), text: 'Fail authentication' });
    var status = el('p', { class: cls('sr'), role: 'status', 'aria-live': 'polite' });
    var dialog = el('div', {
      class: cls('dialog'), role: 'dialog', 'aria-modal': 'true',
      'aria-labelledby': uid + '-title', 'aria-describedby': uid + '-desc'
    }, [
      el('h2', { id: uid + '-title', text: '3D Secure 2 Test Page' }),
      el('p', { id: uid + '-desc', text: 'This is a test authentication page served by the offline Stripe emulator' +
        (amount ? ' for a payment of ' + amount : '') +
        '. Choose whether the authentication succeeds or fails.' }),
      status,
      el('div', { class: cls('actions') }, [complete, fail])
    ]);
    var overlay = el('div', { class: cls() + ' ' + cls('overlay'), 'data-stripe-emulator': '3ds' }, [dialog]);
    var buttons = [complete, fail];
    var settled = false;
    var bodyOverflow = document.body.style.overflow;

    function keepFocusInside(event) {
      if (!dialog.contains(event.target)) complete.focus();
    }

    return new Promise(function (resolve) {
      function choose(outcome) {
        if (settled) return;
        settled = true;
        buttons.forEach(function (b) { b.disabled = true; });
        dialog.setAttribute('aria-busy', 'true');
        status.textContent = outcome === 'complete' ? 'Completing authentication…' : 'Failing authentication…';
        Promise.resolve(act(outcome)).then(function (result) {
          document.removeEventListener('focusin', keepFocusInside, true);
          if (overlay.parentNode) overlay.parentNode.removeChild(overlay);
          document.body.style.overflow = bodyOverflow;
          if (opener && opener.focus && document.contains(opener)) opener.focus();
          resolve(result);
        });
      }
      complete.addEventListener('click', function () { choose('complete'); });
      fail.addEventListener('click', function () { choose('fail'); });
      dialog.addEventListener('keydown', function (event) {
        if (event.key === 'Escape') {
          event.preventDefault();
          choose('fail');
        } else if (event.key === 'Tab') {
          // Trap focus: cycle between the two buttons.
          event.preventDefault();
          var index = buttons.indexOf(document.activeElement);
          var next = (index + (event.shiftKey ? -1 : 1) + buttons.length) % buttons.length;
          buttons[index < 0 ? 0 : next].focus();
        }
      });
      document.addEventListener('focusin', keepFocusInside, true);
      document.body.appendChild(overlay);
      document.body.style.overflow = 'hidden';
      complete.focus();
    });
  }

  // ---------------------------------------------------------------------------
  // 8. Stripe(): the payment calls
  // ---------------------------------------------------------------------------

  var SUCCESS_STATUSES = ['succeeded', 'processing', 'requires_capture'];

  function StripeClient(key, options) {
    options = options || {};
    if (typeof key !== 'string' || !key) {
      throw IntegrationError('Please call Stripe() with your publishable key. You used an empty string.');
    }
    if (/^sk_/.test(key)) {
      throw IntegrationError('You should not use your secret key with Stripe.js.\n' +
        'Please pass a publishable key instead.');
    }
    this.key = key;
    this.apiBase = String(options.apiBase || DEFAULT_API_BASE).replace(/\/+$/, '');
    this.stripeAccount = options.stripeAccount || null;
    this._options = options;
  }

  StripeClient.prototype.elements = function (options) { return new Elements(this, options); };

  StripeClient.prototype.retrievePaymentIntent = function (clientSecret) {
    var id = intentIdFromSecret(clientSecret);
    return request(this, 'GET', '/v1/payment_intents/' + encodeURIComponent(id), { client_secret: clientSecret })
      .then(function (res) { return res.error ? { error: res.error } : { paymentIntent: res.body }; });
  };

  /** POST /v1/payment_methods; resolves {paymentMethod} or {error}. */
  StripeClient.prototype._createPaymentMethod = function (params) {
    return request(this, 'POST', '/v1/payment_methods', params)
      .then(function (res) { return res.error ? { error: res.error } : { paymentMethod: res.body }; });
  };

  /**
   * createPaymentMethod({elements, params}) | ({type: 'card', card, billing_details})
   * | ('card', cardElement, data): the forms Stripe.js accepts.
   */
  StripeClient.prototype.createPaymentMethod = function (a, b, c) {
    var element, extra;
    if (typeof a === 'string') { element = b; extra = c || {}; }
    else if (a && a.elements) { element = a.elements._cardElement(); extra = a.params || {}; }
    else { element = a && a.card; extra = a || {}; }
    if (!element || !element._paymentMethodParams) {
      return Promise.reject(IntegrationError('createPaymentMethod: a mounted card or Payment Element is required.'));
    }
    var invalid = element._validate();
    if (invalid) return Promise.resolve({ error: invalid });
    return this._createPaymentMethod(mergePaymentMethodData(element._paymentMethodParams(), extra));
  };

  /** Element fields + the integration's billing_details/metadata (deep merge, element wins). */
  function mergePaymentMethodData(fromElement, extra) {
    var params = { type: 'card', card: fromElement.card };
    var billing = JSON.parse(JSON.stringify((extra && extra.billing_details) || {}));
    var postal = fromElement.billing_details && fromElement.billing_details.address.postal_code;
    if (postal) {
      billing.address = billing.address || {};
      billing.address.postal_code = postal;
    }
    if (Object.keys(billing).length) params.billing_details = billing;
    if (extra && extra.metadata) params.metadata = extra.metadata;
    return params;
  }

  /** Confirm the intent; then authenticate if asked; resolve as Stripe.js does. */
  StripeClient.prototype._confirm = function (clientSecret, body, handleActions) {
    var self = this;
    var id = intentIdFromSecret(clientSecret);
    body.client_secret = clientSecret;
    // As Stripe.js: next actions come back as use_stripe_sdk, handled here rather than
    // by a redirect, so no return_url is needed for card payments.
    body.use_stripe_sdk = 'true';
    return request(this, 'POST', '/v1/payment_intents/' + encodeURIComponent(id) + '/confirm', body)
      .then(function (res) {
        if (res.error) return { error: res.error };
        if (!handleActions) return { paymentIntent: res.body };
        return self._settle(res.body, clientSecret, true);
      });
  };

  /**
   * Turn an intent into the caller's answer: success statuses resolve
   * {paymentIntent}; requires_action opens the 3-D Secure dialog (once); a failed
   * attempt resolves {error} built from last_payment_error.
   */
  StripeClient.prototype._settle = function (intent, clientSecret, mayAuthenticate) {
    var self = this;
    if (SUCCESS_STATUSES.indexOf(intent.status) >= 0) return Promise.resolve({ paymentIntent: intent });
    if (intent.status === 'requires_action' && mayAuthenticate) {
      var action = intent.next_action || {};
      if (action.type === 'redirect_to_url' && action.redirect_to_url && action.redirect_to_url.url) {
        window.location.assign(action.redirect_to_url.url);
        return new Promise(function () {}); // the page is going away
      }
      return this._authenticate(intent, clientSecret).then(function (res) {
        if (res.error) return res;
        return self._settle(res.paymentIntent, clientSecret, false);
      });
    }
    if (intent.status === 'requires_action') {
      return Promise.resolve({ error: authenticationFailure(intent) });
    }
    if (intent.last_payment_error) {
      return Promise.resolve({ error: stripeError(intent.last_payment_error, intent) });
    }
    return Promise.resolve({ error: {
      type: 'invalid_request_error', code: 'payment_intent_unexpected_state',
      message: 'The PaymentIntent has status ' + intent.status + '.', payment_intent: intent } });
  };

  function authenticationFailure(intent) {
    return {
      type: 'invalid_request_error', code: 'payment_intent_authentication_failure',
      message: 'We are unable to authenticate your payment method. ' +
        'Please choose a different payment method and try again.',
      payment_intent: intent
    };
  }

  /** The dialog, the emulator's control endpoint, then a fresh read of the intent. */
  StripeClient.prototype._authenticate = function (intent, clientSecret) {
    var self = this;
    return showThreeDSecureDialog(intent, function (outcome) {
      var path = '/_emulator/payment_intents/' + encodeURIComponent(intent.id) + '/authenticate';
      return request(self, 'POST', path, { outcome: outcome }, true).then(function (res) {
        if (res.error) return { error: res.error };
        return self.retrievePaymentIntent(clientSecret);
      });
    });
  };

  /** Card details from a Payment Element, validated, as a new PaymentMethod id. */
  StripeClient.prototype._paymentMethodFromElements = function (elements, paymentMethodData) {
    var element = elements._cardElement();
    if (!element || !element._root) {
      return Promise.reject(IntegrationError(
        'stripe.confirmPayment(): the Payment Element must be mounted before confirming.'));
    }
    var invalid = element._validate();
    if (invalid) return Promise.resolve({ error: invalid });
    return this._createPaymentMethod(mergePaymentMethodData(element._paymentMethodParams(), paymentMethodData));
  };

  function redirectTo(returnUrl, intent, clientSecret) {
    var url = new URL(returnUrl, window.location.href);
    url.searchParams.set('payment_intent', intent.id);
    url.searchParams.set('payment_intent_client_secret', clientSecret);
    url.searchParams.set('redirect_status', intent.status === 'processing' ? 'pending' : 'succeeded');
    window.location.assign(url.toString());
    return new Promise(function () {}); // as Stripe.js: no answer, the page is leaving
  }

  StripeClient.prototype.confirmPayment = function (options) {
    options = options || {};
    var self = this;
    var elements = options.elements || null;
    var confirmParams = options.confirmParams || {};
    var redirect = options.redirect || 'always';
    var clientSecret = options.clientSecret || (elements && elements._clientSecret);
    try {
      if (redirect !== 'always' && redirect !== 'if_required') {
        throw IntegrationError('Invalid value for redirect: expected "always" or "if_required".');
      }
      if (!clientSecret) {
        throw IntegrationError('stripe.confirmPayment(): the `clientSecret` argument is required ' +
          'unless you pass an `elements` instance created with a clientSecret.');
      }
      intentIdFromSecret(clientSecret);
      if (redirect === 'always' && !confirmParams.return_url) {
        throw IntegrationError('stripe.confirmPayment(): the `confirmParams.return_url` argument ' +
          'is required unless passing `redirect: \'if_required\'`.');
      }
      if (elements && elements._mode && !elements._submitted) {
        throw IntegrationError('elements.submit() must be called before stripe.confirmPayment(). ' +
          'Call elements.submit() as soon as your customer presses pay, prior to any asynchronous work.');
      }
      if (!elements && !confirmParams.payment_method) {
        throw IntegrationError('stripe.confirmPayment(): pass `elements` or `confirmParams.payment_method`.');
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (elements) elements._submitted = false;
    var element = elements && elements._cardElement();
    if (element) element._setBusy(true);

    var paymentMethod = confirmParams.payment_method
      ? Promise.resolve({ paymentMethod: { id: confirmParams.payment_method } })
      : this._paymentMethodFromElements(elements, confirmParams.payment_method_data);

    return paymentMethod.then(function (res) {
      if (res.error) return res;
      var body = { payment_method: res.paymentMethod.id };
      ['return_url', 'receipt_email', 'shipping', 'setup_future_usage'].forEach(function (key) {
        if (confirmParams[key] !== undefined) body[key] = confirmParams[key];
      });
      return self._confirm(clientSecret, body, true);
    }).then(function (result) {
      if (element) element._setBusy(false);
      if (result.paymentIntent && redirect === 'always') {
        return redirectTo(confirmParams.return_url, result.paymentIntent, clientSecret);
      }
      return result;
    }, function (err) {
      if (element) element._setBusy(false);
      throw err;
    });
  };

  /** confirmCardPayment(clientSecret, {payment_method: {card, billing_details} | 'pm_...'}, {handleActions}). */
  StripeClient.prototype.confirmCardPayment = function (clientSecret, data, options) {
    var self = this;
    data = data || {};
    var handleActions = !(options && options.handleActions === false);
    try {
      intentIdFromSecret(clientSecret);
    } catch (err) {
      return Promise.reject(err);
    }
    var pm = data.payment_method;
    var paymentMethod;
    if (pm && typeof pm === 'object' && pm.card) {
      var invalid = pm.card._validate();
      if (invalid) return Promise.resolve({ error: invalid });
      paymentMethod = this._createPaymentMethod(mergePaymentMethodData(pm.card._paymentMethodParams(), pm));
    } else {
      paymentMethod = Promise.resolve({ paymentMethod: pm ? { id: pm } : null });
    }
    return paymentMethod.then(function (res) {
      if (res.error) return res;
      var body = {};
      if (res.paymentMethod) body.payment_method = res.paymentMethod.id;
      ['return_url', 'receipt_email', 'shipping', 'setup_future_usage'].forEach(function (key) {
        if (data[key] !== undefined) body[key] = data[key];
      });
      return self._confirm(clientSecret, body, handleActions);
    });
  };

  /** For intents confirmed on the server: authenticate a requires_action intent. */
  StripeClient.prototype.handleNextAction = function (options) {
    var self = this;
    var clientSecret = options && options.clientSecret;
    return this.retrievePaymentIntent(clientSecret).then(function (res) {
      if (res.error) return res;
      if (res.paymentIntent.status !== 'requires_action') {
        throw IntegrationError('handleNextAction: the PaymentIntent has status ' +
          res.paymentIntent.status + '; expected requires_action.');
      }
      return self._settle(res.paymentIntent, clientSecret, true);
    });
  };
  StripeClient.prototype.handleCardAction = function (clientSecret) {
    return this.handleNextAction({ clientSecret: clientSecret });
  };

  // Calls react-stripe-js / stripe-js make, or checks for, that need no behaviour here.
  StripeClient.prototype._registerWrapper = function () {};
  StripeClient.prototype.registerAppInfo = function () {};
  StripeClient.prototype.paymentRequest = function () {
    return { canMakePayment: function () { return Promise.resolve(null); },
      on: function () {}, off: function () {}, show: function () {}, update: function () {} };
  };

  function unsupported(name) {
    return function () {
      return Promise.resolve({ error: { type: 'invalid_request_error',
        message: 'stripe.' + name + '() is not supported by the offline Stripe.js stand-in.' } });
    };
  }
  ['createToken', 'createSource', 'confirmSetup', 'confirmCardSetup', 'retrieveSetupIntent',
    'handleCardSetup', 'redirectToCheckout'].forEach(function (name) {
    StripeClient.prototype[name] = unsupported(name);
  });

  /** window.Stripe: callable with or without `new`, as @stripe/stripe-js calls it. */
  function Stripe(publishableKey, options) {
    return new StripeClient(publishableKey, options);
  }
  Stripe.version = 3;
  Stripe.emulator = { apiBase: DEFAULT_API_BASE, messages: MESSAGES };

  window.Stripe = Stripe;
})();

/*
 * The inside of the Stripe.js stand-in's Elements: this page runs in an <iframe> served
 * from the emulator's origin (/js.stripe.com/v3/elements-inner.html), as Stripe's own
 * Elements run on js.stripe.com. The shop's page cannot read the card fields (another
 * origin); it talks to this frame only by postMessage, and the card details go from
 * here straight to the emulator's POST /v1/payment_methods (same origin).
 *
 * The frame's configuration comes in the URL fragment (JSON): {channel, type, options,
 * appearance, key, parentOrigin}. Messages both ways carry {__stripeEmu: 1, channel};
 * the frame accepts only messages from its parent window and from `parentOrigin`, and
 * posts only to `parentOrigin`.
 *
 * Parent -> frame: {type: 'request', id, action, args}; actions: validate, tokenize,
 *   focus, blur, clear, update, busy. Frame -> parent: {type: 'response', id, result},
 *   {type: 'event', name, event} (ready, change, focus, blur), {type: 'resize', height},
 *   {type: 'wallet', wallet} (an Express Checkout button was pressed).
 *
 * Sections: 1. configuration and messaging  2. card rules  3. styles  4. card fields
 *           5. Express Checkout buttons      6. requests from the page
 */
(function () {
  'use strict';

  var CSS_PREFIX = 'stripe-emu';
  var instanceCounter = 0;

  // ---------------------------------------------------------------------------
  // 1. Configuration and messaging
  // ---------------------------------------------------------------------------

  var config = {};
  try {
    config = JSON.parse(decodeURIComponent(window.location.hash.slice(1)));
  } catch (err) {
    config = {};
  }
  var PARENT_ORIGIN = config.parentOrigin;
  // The emulator's base URL (with any path prefix before /js.stripe.com/).
  var API_BASE = window.location.href.split('/js.stripe.com/')[0];

  function post(message) {
    if (!PARENT_ORIGIN || window.parent === window) return;
    message.__stripeEmu = 1;
    message.channel = config.channel;
    window.parent.postMessage(message, PARENT_ORIGIN);
  }

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
      if (typeof value === 'object') formEncode(value, name, out);
      else out.push(encodeURIComponent(name) + '=' + encodeURIComponent(String(value)));
    });
    return out.join('&');
  }

  /** POST /v1/payment_methods from this origin; resolves {paymentMethod} or {error}. */
  function createPaymentMethod(params) {
    return fetch(API_BASE + '/v1/payment_methods', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + config.key,
        'Content-Type': 'application/x-www-form-urlencoded' },
      body: formEncode(params)
    }).then(function (response) {
      return response.json().then(function (body) {
        if (response.ok) return { paymentMethod: body };
        return { error: (body && body.error) || { type: 'api_error', message: 'HTTP ' + response.status } };
      });
    }, function () {
      return { error: { type: 'api_connection_error',
        message: 'An error occurred with our connection to Stripe. Request was retried 0 times.' } };
    });
  }

  /** What a CustomerSession secret lets the Payment Element show: {payment_methods, features}
   * ({} on error: no saved cards). */
  function savedCards(secret) {
    var url = API_BASE + '/v1/elements/customer_session?customer_session_client_secret=' +
      encodeURIComponent(secret);
    return fetch(url, { headers: { Authorization: 'Bearer ' + config.key } })
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (body) { return body || {}; }, function () { return {}; });
  }

  /** Detach a saved card through the session (its remove feature); resolves true when done. */
  function removeSavedCard(secret, pmId) {
    return fetch(API_BASE + '/v1/elements/customer_session/detach', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + config.key,
        'Content-Type': 'application/x-www-form-urlencoded' },
      body: formEncode({ customer_session_client_secret: secret, payment_method: pmId })
    }).then(function (response) { return response.ok; }, function () { return false; });
  }

  // ---------------------------------------------------------------------------
  // 2. Card rules and Stripe's wording
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
  // 3. Styles (scoped by the stripe-emu- class prefix; injected once)
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
    '.P-button[disabled]{opacity:.6;cursor:progress}',
    '.P-wallets{display:flex;flex-wrap:wrap;gap:.5rem}',
    '.P-wallet{flex:1 1 9rem;background:#000;color:#fff;border-color:#000}',
    '.P-wallet--link{background:#00d66f;color:#011e0f;border-color:#00a356}',
    '.P-wallet:focus-visible{outline:3px solid var(--P-primary);outline-offset:2px}'
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
  // 4. The card fields: one Element type serves 'payment' and 'card'
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
    // Saved cards a CustomerSession lets this Payment Element show, and the buyer's pick
    // ('new' for the card fields).
    this._saved = [];
    this._choice = 'new';
  }

  Element.prototype._usesSaved = function () { return this._choice !== 'new'; };

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
    if (this._saved.length) {
      root.appendChild(this._renderSaved());
      fieldset.hidden = this._usesSaved();
      this._cardFieldset = fieldset;
    }
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

  /** The saved cards as radio buttons, and "New card" that shows the card fields. */
  Element.prototype._renderSaved = function () {
    var self = this;
    var group = el('fieldset', { class: cls('fieldset') + ' ' + cls('saved') });
    group.appendChild(el('legend', { class: cls('legend'), text: 'Saved cards' }));
    var choices = this._saved.map(function (pm) {
      var card = pm.card || {};
      var brand = (card.brand || 'card').charAt(0).toUpperCase() + (card.brand || 'card').slice(1);
      var month = ('0' + card.exp_month).slice(-2);
      return { value: pm.id, text: brand + ' ending in ' + card.last4 + ', expires ' +
        month + '/' + card.exp_year, short: brand + ' ' + card.last4 };
    }).concat([{ value: 'new', text: 'New card' }]);
    var removable = (this._features || {}).payment_method_remove === 'enabled';
    choices.forEach(function (choice, index) {
      var id = self._uid + '-saved-' + index;
      var radio = el('input', { id: id, type: 'radio', name: self._uid + '-saved', value: choice.value });
      radio.checked = choice.value === self._choice;
      radio.addEventListener('change', function () {
        if (!radio.checked) return;
        self._choice = choice.value;
        if (self._cardFieldset) self._cardFieldset.hidden = self._usesSaved();
        self._showErrors();
        self._emitChange();
      });
      var remove = null;
      if (removable && choice.value !== 'new') {
        remove = el('button', { type: 'button', class: cls('remove'), text: 'Remove',
          'aria-label': 'Remove this card (' + choice.short + ')' });
        remove.addEventListener('click', function () { self._removeSaved(choice.value); });
      }
      group.appendChild(el('div', { class: cls('field') }, [
        radio, el('label', { class: cls('label'), for: id, text: ' ' + choice.text }), remove]));
    });
    return group;
  };

  /** The remove button (payment_method_remove): detach at the emulator, then redraw. */
  Element.prototype._removeSaved = function (pmId) {
    var self = this;
    removeSavedCard(this._sessionSecret, pmId).then(function (ok) {
      if (!ok) return;
      self._saved = self._saved.filter(function (pm) { return pm.id !== pmId; });
      if (self._choice === pmId) self._choice = self._saved.length ? self._saved[0].id : 'new';
      var node = self._mountPoint;
      node.removeChild(self._root);
      self._attach(node);
      self._emitChange();
    });
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
    if (this._usesSaved()) return problems; // a saved card needs no fields
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

  // ---------------------------------------------------------------------------
  // 5. Express Checkout buttons (the test wallets; the sheet opens in the page)
  // ---------------------------------------------------------------------------

  var WALLET_BUTTONS = [
    { wallet: 'apple_pay', option: 'applePay', label: 'Test Apple Pay' },
    { wallet: 'google_pay', option: 'googlePay', label: 'Test Google Pay' },
    { wallet: 'link', option: 'link', label: 'Link' }
  ];

  /** The wallets the integration did not turn off (wallets.applePay: 'never', ...). */
  function enabledWallets(options) {
    var wallets = options.wallets || {};
    var methods = options.paymentMethods || {};
    return WALLET_BUTTONS.filter(function (button) {
      return wallets[button.option] !== 'never' && methods[button.option] !== 'never';
    });
  }

  function ExpressCheckoutButtons(options) {
    this._options = options || {};
    this._buttons = [];
  }

  ExpressCheckoutButtons.prototype.mount = function (node) {
    var self = this;
    injectStyles();
    var wallets = enabledWallets(this._options);
    this._buttons = wallets.map(function (button) {
      var node = el('button', { type: 'button', class: cls('button') + ' ' + cls('wallet') + ' ' +
        cls('wallet--' + button.wallet), 'data-wallet': button.wallet, text: button.label });
      node.addEventListener('click', function () { post({ type: 'wallet', wallet: button.wallet }); });
      return node;
    });
    var root = el('div', { class: cls() + ' ' + cls('wallets'), role: 'group',
      'aria-label': 'Express checkout (offline test wallets)' }, this._buttons);
    applyAppearance(root, config.appearance);
    node.appendChild(root);
    this._root = root;
    var available = {};
    WALLET_BUTTONS.forEach(function (button) {
      available[button.option] = wallets.indexOf(button) >= 0;
    });
    available.paypal = false;
    available.amazonPay = false;
    setTimeout(function () {
      post({ type: 'event', name: 'ready',
        event: { elementType: 'expressCheckout', availablePaymentMethods: available } });
    }, 0);
  };

  ExpressCheckoutButtons.prototype._setBusy = function (busy) {
    this._buttons.forEach(function (button) { button.disabled = !!busy; });
  };
  ExpressCheckoutButtons.prototype.focus = function () {
    if (this._buttons[0]) this._buttons[0].focus();
  };
  ExpressCheckoutButtons.prototype.blur = function () {
    if (document.activeElement) document.activeElement.blur();
  };
  ExpressCheckoutButtons.prototype.update = function (options) {
    for (var key in options || {}) this._options[key] = options[key];
    var node = this._root.parentNode;
    node.removeChild(this._root);
    this.mount(node);
  };
  ExpressCheckoutButtons.prototype.clear = function () {};

  // ---------------------------------------------------------------------------
  // 6. Requests from the page
  // ---------------------------------------------------------------------------

  /** Element fields + the integration's billing_details/metadata (element wins). */
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

  var group = { _appearance: config.appearance || null, _elements: {} };
  var element = null;

  var ACTIONS = {
    validate: function () { return { error: element._validate ? element._validate() : null }; },
    tokenize: function (args) {
      if (element._usesSaved && element._usesSaved()) {
        // A saved card pays as it is: nothing is typed, nothing is created.
        var saved = element._saved.filter(function (pm) { return pm.id === element._choice; })[0];
        return { paymentMethod: { id: saved.id, object: 'payment_method', type: saved.type,
          card: saved.card } };
      }
      var invalid = element._validate();
      if (invalid) return { error: invalid };
      element._setBusy(true);
      return createPaymentMethod(mergePaymentMethodData(element._paymentMethodParams(), args || {}))
        .then(function (result) {
          element._setBusy(false);
          return result;
        });
    },
    focus: function () { element.focus(); return {}; },
    focusInvalid: function () {
      if (element._focusFirstProblem) element._focusFirstProblem();
      return {};
    },
    blur: function () { element.blur(); return {}; },
    clear: function () { element.clear(); return {}; },
    busy: function (busy) { element._setBusy(busy); return {}; },
    update: function (options) {
      if (options && options.appearance) {
        group._appearance = options.appearance;
        if (element._root) applyAppearance(element._root, options.appearance);
      }
      element.update(options && options.element ? options.element : {});
      return {};
    }
  };

  window.addEventListener('message', function (event) {
    // Only the page that embeds this frame, from the origin it was created for.
    if (event.source !== window.parent || event.origin !== PARENT_ORIGIN) return;
    var msg = event.data;
    if (!msg || typeof msg !== 'object' || msg.__stripeEmu !== 1 || msg.channel !== config.channel) return;
    if (msg.type !== 'request' || !ACTIONS.hasOwnProperty(msg.action) || !element) return;
    Promise.resolve()
      .then(function () { return ACTIONS[msg.action](msg.args); })
      .then(function (result) { post({ type: 'response', id: msg.id, result: result }); },
        function (err) {
          post({ type: 'response', id: msg.id,
            result: { error: { type: 'api_error', message: String(err && err.message) } } });
        });
  });

  function reportHeight() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    post({ type: 'resize', height: height });
  }

  function start() {
    var container = document.getElementById('stripe-emu-root') || document.body;
    if (config.type === 'expressCheckout') {
      element = new ExpressCheckoutButtons(config.options);
      element.mount(container);
    } else if (config.type === 'payment' && config.customerSessionClientSecret) {
      element = new Element(group, config.type, config.options);
      element._sessionSecret = config.customerSessionClientSecret;
      savedCards(config.customerSessionClientSecret).then(function (answer) {
        var methods = answer.payment_methods || [];
        element._features = answer.features || {};
        element._saved = methods;
        if (methods.length) element._choice = methods[0].id;
        element.mount(container);
        reportHeight();
      });
    } else if (config.type === 'payment' || config.type === 'card') {
      element = new Element(group, config.type, config.options);
      element.mount(container);
    } else {
      throw IntegrationError('Unknown element type: ' + config.type);
    }
    if (window.ResizeObserver) new ResizeObserver(reportHeight).observe(document.documentElement);
    reportHeight();
  }

  /** Focus the first field with a problem (the page moved focus into this frame first). */
  Element.prototype._focusFirstProblem = function () {
    var problems = this._problems();
    var first = this._activeFields().filter(function (f) { return problems[f.key]; })[0];
    if (first && this._inputs[first.key]) this._inputs[first.key].focus();
  };

  // Events go to the page; the Element's own handler lists stay empty in here.
  Element.prototype._emit = function (name, event) {
    post({ type: 'event', name: name, event: event });
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();

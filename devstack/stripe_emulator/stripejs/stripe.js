/*
 * Offline stand-in for Stripe.js v3, served by the local Stripe emulator at
 * /js.stripe.com/v3/, and at /js.stripe.com/<release train>/stripe.js (e.g. `endive`), where
 * it announces that train as its `Stripe.version`, as Stripe's own files do: the
 * `@stripe/stripe-js` that expects the train then has nothing to warn about.
 *
 * It defines `window.Stripe` the way the real script does, so a page (or a React
 * shop whose `@stripe/stripe-js` `loadStripe` reuses an existing `window.Stripe`)
 * runs its ordinary Payment Element code against the emulator, with no network
 * access to Stripe. It implements the calls a checkout page uses:
 *
 *   Stripe(pk, {apiBase?})            apiBase defaults to the origin this file came from
 *   stripe.elements({clientSecret} | {mode: 'payment', amount, currency, appearance})
 *   elements.create('payment' | 'card' | 'expressCheckout'), .getElement(), .update(),
 *   .submit(), .fetchUpdates()
 *   element.mount/unmount/destroy/on/off/once/focus/blur/clear/update
 *   stripe.confirmPayment, confirmCardPayment, handleNextAction, retrievePaymentIntent,
 *   createPaymentMethod, createConfirmationToken
 *
 * As with Stripe, every Element lives in an <iframe> served from the emulator's origin
 * (elements-inner.html + frame.js): the shop's page cannot read the card fields, and
 * the card details go from the frame straight to the emulator. The page and a frame
 * talk only by postMessage, each side checking the other's window and origin; the page
 * gets events (ready, change, focus, blur) and, when it confirms, a PaymentMethod id.
 *
 * 3-D Secure: when an intent answers `requires_action`, a modal dialog modelled on
 * Stripe's "3D Secure 2 Test Page" asks to complete or fail the authentication, and
 * tells the emulator through POST /_emulator/payment_intents/<id>/authenticate.
 *
 * Express Checkout: the element's frame shows test wallet buttons ("Test Apple Pay",
 * "Test Google Pay", "Link"); pressing one emits `click`, then a test wallet sheet
 * (a modal dialog on the page, as a browser's payment sheet sits above the page) emits
 * `shippingaddresschange`, `shippingratechange`, `confirm` and `cancel` as Stripe's do.
 *
 * Plain ES5-ish browser JavaScript, no build step. Sections:
 *   1. locating the emulator      5. the Elements group
 *   2. HTTP and errors            6. the 3-D Secure dialog
 *   3. styles                     7. Express Checkout: the test wallet sheet
 *   4. framed Elements            8. Stripe(): the payment calls
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
      if (/\/js\.stripe\.com\/(v3\/|[a-z]+\/stripe\.js)/.test(scripts[i].src || '')) return scripts[i];
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

  /** /js.stripe.com/endive/stripe.js -> 'endive' (the release train); 3 for /v3/. */
  function versionFromScript(script) {
    if (!script || !script.src) return 3;
    var match = /\/js\.stripe\.com\/([a-z]+)\/stripe\.js$/.exec(new URL(script.src, window.location.href).pathname);
    return match ? match[1] : 3;
  }

  var OWN_SCRIPT = ownScript();
  var DEFAULT_API_BASE = apiBaseFromScript(OWN_SCRIPT);

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
  // 3. Styles (scoped by the stripe-emu- class prefix; injected once)
  // ---------------------------------------------------------------------------

  var STYLES = [
    '.P{--P-primary:#0570de;--P-text:#30313d;--P-muted:#595a66;--P-danger:#c0123c;',
    '--P-bg:#fff;--P-border:#8a8b94;--P-radius:6px;--P-font:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;',
    'font-family:var(--P-font);color:var(--P-text);font-size:16px;line-height:1.4;max-width:100%;box-sizing:border-box}',
    '.P *,.P *::before,.P *::after{box-sizing:border-box}',
    '.P-frame-wrap{display:block;width:100%;min-width:0}',
    '.P-frame{display:block;width:100%;border:0;margin:0;padding:0;background:transparent;overflow:hidden;',
    'transition:height .1s}',
    '.P-sr{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;',
    'clip:rect(0,0,0,0);white-space:nowrap;border:0}',
    '.P-overlay{position:fixed;inset:0;background:rgba(10,10,20,.55);display:flex;align-items:center;',
    'justify-content:center;padding:1rem;z-index:2147483647}',
    '.P-dialog{background:#fff;color:#30313d;border-radius:8px;max-width:26rem;width:100%;padding:1.5rem;',
    'box-shadow:0 10px 40px rgba(0,0,0,.35);font-family:var(--P-font);font-size:16px;line-height:1.45;',
    'max-height:100%;overflow:auto}',
    '.P-dialog h2{font-size:1.25rem;margin:0 0 .75rem}',
    '.P-dialog p{margin:0 0 1rem}',
    '.P-actions{display:flex;flex-wrap:wrap;gap:.75rem}',
    '.P-button{font:inherit;font-weight:600;min-height:44px;padding:.625rem 1rem;border-radius:6px;cursor:pointer;',
    'border:2px solid var(--P-primary);background:#fff;color:#0055bb;flex:1 1 10rem}',
    '.P-button--primary{background:var(--P-primary);color:#fff}',
    '.P-button:focus-visible{outline:3px solid #30313d;outline-offset:2px}',
    '.P-button[disabled]{opacity:.6;cursor:progress}',
    '.P-field{display:flex;flex-direction:column;margin:0 0 .75rem}',
    '.P-label{font-size:.875rem;margin:0 0 .25rem}',
    '.P-input{font:inherit;font-size:16px;color:#30313d;background:#fff;width:100%;min-height:44px;',
    'padding:.5rem .75rem;border:1px solid #8a8b94;border-radius:6px}',
    '.P-input:focus{outline:3px solid var(--P-primary);outline-offset:1px}',
    '.P-fieldset{border:0;margin:0 0 .75rem;padding:0;min-width:0}',
    '.P-legend{font-weight:600;padding:0;margin:0 0 .25rem;font-size:.875rem}',
    '.P-radio{display:flex;gap:.5rem;align-items:center;min-height:32px}',
    '.P-lines{list-style:none;margin:0 0 .5rem;padding:0;font-size:.9375rem}',
    '.P-lines li{display:flex;justify-content:space-between;gap:1rem}',
    '.P-total{font-weight:700;display:flex;justify-content:space-between}',
    '.P-error{color:#c0123c;font-size:.875rem}',
    '.P-error:empty{margin:0}'
  ].join('\n').replace(/P-/g, CSS_PREFIX + '-').replace(/\.P\b/g, '.' + CSS_PREFIX)
    .replace(/--P-/g, '--' + CSS_PREFIX + '-');

  function injectStyles() {
    if (document.getElementById(CSS_PREFIX + '-styles')) return;
    var style = document.createElement('style');
    style.id = CSS_PREFIX + '-styles';
    style.textContent = STYLES;
    (document.head || document.documentElement).appendChild(style);
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

  /** Amounts in minor units as the buyer reads them ($12.00). */
  function formatMoney(amount, currency) {
    if (typeof amount !== 'number' || !currency) return null;
    try {
      var fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() });
      var digits = fmt.resolvedOptions().maximumFractionDigits;
      return fmt.format(amount / Math.pow(10, digits));
    } catch (e) {
      return null;
    }
  }

  // ---------------------------------------------------------------------------
  // 4. Framed Elements: the page side of each Element's <iframe>
  // ---------------------------------------------------------------------------

  var FRAMES = {}; // channel -> the FramedElement whose frame uses it
  var FRAME_PAGE = '/js.stripe.com/v3/elements-inner.html';

  // One listener for every frame: a message counts only if it comes from that frame's
  // window and from the emulator's origin.
  window.addEventListener('message', function (event) {
    var msg = event.data;
    if (!msg || typeof msg !== 'object' || msg.__stripeEmu !== 1) return;
    var element = FRAMES[msg.channel];
    if (!element || !element._iframe) return;
    if (event.origin !== element._origin || event.source !== element._iframe.contentWindow) return;
    element._receive(msg);
  });

  function FramedElement(group, type, options) {
    this._group = group;
    this._type = type;
    this._options = options || {};
    this._uid = CSS_PREFIX + '-' + (++instanceCounter);
    this._handlers = {};
    this._root = null;
    this._iframe = null;
    this._ready = false;
    this._queue = [];     // requests waiting for the frame's 'ready'
    this._pending = {};   // request id -> resolve
    this._seq = 0;
    this._destroyed = false;
  }

  FramedElement.prototype.mount = function (target) {
    this._assertAlive();
    var node = typeof target === 'string' ? document.querySelector(target) : target;
    if (!node || node.nodeType !== 1) {
      throw IntegrationError('The selector you specified (' + target + ') applies to no DOM ' +
        'elements that are currently on the page.\nMake sure the element exists on the page ' +
        'before calling mount().');
    }
    if (this._root) this.unmount();
    injectStyles();
    var stripe = this._group._stripe;
    this._channel = this._uid + '-' + Math.random().toString(36).slice(2);
    this._origin = new URL(stripe.apiBase, window.location.href).origin;
    var frameConfig = {
      channel: this._channel, type: this._type, options: this._options,
      appearance: this._group._appearance, key: stripe.key, parentOrigin: window.location.origin
    };
    if (this._type === 'payment' && this._group._customerSessionClientSecret) {
      frameConfig.customerSessionClientSecret = this._group._customerSessionClientSecret;
    }
    var express = this._type === 'expressCheckout';
    var iframe = el('iframe', {
      name: '__privateStripeFrame' + instanceCounter,
      title: express ? 'Secure express checkout frame' : 'Secure payment input frame',
      src: stripe.apiBase + FRAME_PAGE + '#' + encodeURIComponent(JSON.stringify(frameConfig)),
      allow: 'payment *', class: cls('frame'), scrolling: 'no', frameborder: '0', tabindex: null
    });
    iframe.style.height = (express ? 56 : 320) + 'px';
    this._root = el('div', { class: cls() + ' ' + cls('frame-wrap'), 'data-stripe-emulator': this._type },
      [iframe]);
    this._iframe = iframe;
    this._mountPoint = node;
    FRAMES[this._channel] = this;
    node.appendChild(this._root);
    return this;
  };

  /** A message from this Element's frame (already checked for window and origin). */
  FramedElement.prototype._receive = function (msg) {
    if (msg.type === 'event') {
      if (msg.name === 'ready') {
        if (this._ready) return;
        this._ready = true;
        var queued = this._queue;
        this._queue = [];
        for (var i = 0; i < queued.length; i++) this._send(queued[i]);
      }
      this._emit(msg.name, msg.event);
    } else if (msg.type === 'response') {
      var resolve = this._pending[msg.id];
      delete this._pending[msg.id];
      if (resolve) resolve(msg.result || {});
    } else if (msg.type === 'resize' && typeof msg.height === 'number') {
      this._iframe.style.height = Math.max(1, Math.min(msg.height, 2000)) + 'px';
    } else if (msg.type === 'wallet' && this._onWallet) {
      this._onWallet(String(msg.wallet));
    }
  };

  FramedElement.prototype._send = function (message) {
    if (this._iframe && this._iframe.contentWindow) {
      this._iframe.contentWindow.postMessage(message, this._origin);
    }
  };

  /** Ask the frame to do something; resolves with its answer. */
  FramedElement.prototype._call = function (action, args) {
    var self = this;
    if (!this._iframe) return Promise.resolve({ error: { type: 'api_error', message: 'not mounted' } });
    return new Promise(function (resolve) {
      var id = ++self._seq;
      self._pending[id] = resolve;
      var message = { __stripeEmu: 1, channel: self._channel, type: 'request', id: id,
        action: action, args: args === undefined ? null : args };
      if (self._ready) self._send(message);
      else self._queue.push(message);
    });
  };

  /** Show every problem in the frame; resolves the first one's validation_error or null. */
  FramedElement.prototype._validate = function () {
    var self = this;
    return this._call('validate').then(function (result) {
      if (!result.error) return null;
      return self._focusInvalid().then(function () { return result.error; });
    });
  };

  /** Validate, then let the frame create the PaymentMethod: {paymentMethod} or {error}. */
  FramedElement.prototype._tokenize = function (extra) {
    var self = this;
    return this._call('tokenize', extra || {}).then(function (result) {
      if (!result.error) return { paymentMethod: result.paymentMethod };
      var focused = result.error.type === 'validation_error' ? self._focusInvalid() : Promise.resolve();
      return focused.then(function () { return { error: result.error }; });
    });
  };

  FramedElement.prototype._focusFrame = function () {
    if (this._iframe) this._iframe.focus();
  };

  /** Move focus into the frame, onto the first field with a problem (as Stripe.js does). */
  FramedElement.prototype._focusInvalid = function () {
    this._focusFrame();
    return this._call('focusInvalid');
  };

  FramedElement.prototype._setBusy = function (busy) {
    if (this._root) this._root.setAttribute('aria-busy', busy ? 'true' : 'false');
    if (this._iframe) this._call('busy', !!busy);
  };

  FramedElement.prototype._emit = function (name, event) {
    (this._handlers[name] || []).slice().forEach(function (handler) {
      try { handler(event); } catch (err) { setTimeout(function () { throw err; }, 0); }
    });
  };

  FramedElement.prototype._assertAlive = function () {
    if (this._destroyed) throw IntegrationError('This Element has already been destroyed. Please create a new one.');
  };

  FramedElement.prototype.on = function (name, handler) {
    (this._handlers[name] = this._handlers[name] || []).push(handler);
    return this;
  };
  FramedElement.prototype.addEventListener = FramedElement.prototype.on;

  FramedElement.prototype.off = function (name, handler) {
    if (!handler) delete this._handlers[name];
    else this._handlers[name] = (this._handlers[name] || []).filter(function (h) { return h !== handler; });
    return this;
  };
  FramedElement.prototype.removeEventListener = FramedElement.prototype.off;

  FramedElement.prototype.once = function (name, handler) {
    var self = this;
    function wrapper(event) { self.off(name, wrapper); handler(event); }
    return this.on(name, wrapper);
  };

  FramedElement.prototype.unmount = function () {
    if (this._root && this._root.parentNode) this._root.parentNode.removeChild(this._root);
    delete FRAMES[this._channel];
    var pending = this._pending;
    this._pending = {};
    Object.keys(pending).forEach(function (id) {
      pending[id]({ error: { type: 'api_error', message: 'The Element was unmounted.' } });
    });
    this._root = null;
    this._iframe = null;
    this._ready = false;
    this._queue = [];
    return this;
  };

  FramedElement.prototype.destroy = function () {
    this.unmount();
    this._destroyed = true;
    this._handlers = {};
    delete this._group._elements[this._type];
  };

  /** Focus the Element's first field (the frame's window gets focus first). */
  FramedElement.prototype.focus = function () {
    this._focusFrame();
    this._call('focus');
    return this;
  };

  FramedElement.prototype.blur = function () {
    this._call('blur');
    return this;
  };

  FramedElement.prototype.clear = function () {
    this._call('clear');
    return this;
  };

  /** Options that change the rendering (fields, readOnly, wallets) re-render in the frame. */
  FramedElement.prototype.update = function (options) {
    this._assertAlive();
    for (var key in options || {}) this._options[key] = options[key];
    this._call('update', { element: options || {} });
    return this;
  };

  FramedElement.prototype.collapse = function () { return this; };

  /**
   * Elements the stand-in does not render (address, linkAuthentication, ...): inert
   * placeholders so an integration that creates them keeps working; they collect nothing.
   */
  function InertElement(group, type) {
    FramedElement.call(this, group, type, {});
  }
  InertElement.prototype = Object.create(FramedElement.prototype);
  InertElement.prototype.mount = function (target) {
    this._assertAlive();
    var node = typeof target === 'string' ? document.querySelector(target) : target;
    if (!node || node.nodeType !== 1) {
      throw IntegrationError('The selector you specified (' + target + ') applies to no DOM ' +
        'elements that are currently on the page.');
    }
    this._root = el('div', { class: cls(), 'data-stripe-emulator': this._type, hidden: 'hidden' });
    node.appendChild(this._root);
    var self = this;
    setTimeout(function () { self._emit('ready', { elementType: self._type }); }, 0);
    return this;
  };
  InertElement.prototype._call = function () { return Promise.resolve({}); };
  InertElement.prototype._validate = function () { return Promise.resolve(null); };

  // ---------------------------------------------------------------------------
  // 5. The Elements group
  // ---------------------------------------------------------------------------

  var FRAMED_TYPES = ['payment', 'card', 'expressCheckout'];

  function Elements(stripe, options) {
    options = options || {};
    this._stripe = stripe;
    this._clientSecret = options.clientSecret || null;
    // A CustomerSession's secret: the Payment Element lists the buyer's saved cards.
    this._customerSessionClientSecret = options.customerSessionClientSecret || null;
    this._mode = options.mode || null;
    this._amount = options.amount;
    this._currency = options.currency;
    this._appearance = options.appearance || null;
    this._elements = {};
    this._submitted = false;
    this._express = null; // the wallet payment the buyer approved, until it is used
    this._sheet = null;   // the open test wallet sheet
    if (this._clientSecret) intentIdFromSecret(this._clientSecret); // fail early on a bad secret
  }

  Elements.prototype.create = function (type, options) {
    if (this._elements[type]) {
      throw IntegrationError('Can only create one Element of type ' + type + '.');
    }
    var element;
    if (FRAMED_TYPES.indexOf(type) >= 0) {
      element = new FramedElement(this, type, options);
      if (type === 'expressCheckout') {
        element._onWallet = function (wallet) { startExpressCheckout(element, wallet); };
      }
    } else {
      element = new InertElement(this, type);
      if (window.console) {
        console.warn('[stripe emulator] elements.create(' + JSON.stringify(type) +
          ') is not rendered by the offline stand-in.');
      }
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
    var self = this;
    if (options.appearance) {
      this._appearance = options.appearance;
      Object.keys(this._elements).forEach(function (type) {
        self._elements[type]._call('update', { appearance: self._appearance });
      });
    }
    if (this._sheet) this._sheet.render(); // the wallet sheet shows the new total
    return this;
  };

  /** The card-collecting Element of this group (payment first), or null. */
  Elements.prototype._cardElement = function () {
    return this._elements.payment || this._elements.card || null;
  };

  Elements.prototype.submit = function () {
    var self = this;
    if (this._express) {
      // An approved wallet payment: nothing to validate in the card fields.
      this._submitted = true;
      return Promise.resolve({});
    }
    var element = this._cardElement();
    if (!element || !element._root) {
      return Promise.reject(IntegrationError('elements.submit(): a mounted Payment Element is required.'));
    }
    return element._validate().then(function (error) {
      self._submitted = !error;
      return error ? { error: error } : {};
    });
  };

  Elements.prototype.fetchUpdates = function () { return Promise.resolve({}); };
  Elements.prototype._registerWrapper = function () {};

  // ---------------------------------------------------------------------------
  // 6. The 3-D Secure dialog
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
  // 7. Express Checkout: the test wallet sheet
  // ---------------------------------------------------------------------------

  var WALLET_NAMES = { apple_pay: 'Test Apple Pay', google_pay: 'Test Google Pay', link: 'Link' };
  // The cards a test wallet holds: Stripe's test tokens (see the emulator's cards).
  var WALLET_CARDS = [
    { token: 'tok_visa', label: 'Visa •••• 4242' },
    { token: 'tok_threeDSecure2Required', label: 'Visa •••• 3220 (asks for 3-D Secure)' },
    { token: 'tok_chargeDeclined', label: 'Visa •••• 0002 (declined)' },
    { token: 'tok_chargeDeclinedInsufficientFunds', label: 'Visa •••• 9995 (insufficient funds)' }
  ];
  var WALLET_ADDRESSES = [
    { name: 'Jenny Rosen', phone: '+15555550100', address: { line1: '1234 Fake Street', line2: null,
      city: 'San Francisco', state: 'CA', postal_code: '94102', country: 'US' } },
    { name: 'Ada Lovelace', phone: '+442079460000', address: { line1: "12 St James's Square",
      line2: null, city: 'London', state: null, postal_code: 'SW1Y 4JH', country: 'GB' } }
  ];
  var WALLET_EMAIL = 'jenny.rosen@example.com';

  /** A wallet button was pressed: `click` (the page resolves the sheet's options), then the sheet. */
  function startExpressCheckout(element, wallet) {
    var group = element._group;
    if (group._sheet || !WALLET_NAMES[wallet]) return;
    new Promise(function (resolve) {
      if (!(element._handlers.click || []).length) {
        resolve({});
        return;
      }
      var settled = false;
      element._emit('click', {
        elementType: 'expressCheckout', expressPaymentType: wallet,
        resolve: function (options) { if (!settled) { settled = true; resolve(options || {}); } },
        reject: function () { if (!settled) { settled = true; resolve(null); } }
      });
    }).then(function (options) {
      if (!options) return; // the page said no: the sheet does not open
      group._express = null;
      group._sheet = new WalletSheet(element, wallet, options);
      group._sheet.open();
    });
  }

  function WalletSheet(element, wallet, options) {
    this.element = element;
    this.group = element._group;
    this.wallet = wallet;
    this.options = options;
    this.uid = CSS_PREFIX + '-wallet-' + (++instanceCounter);
    this.rates = (options.shippingRates || []).slice();
    this.rateId = this.rates.length ? this.rates[0].id : null;
    this.lineItems = (options.lineItems || []).slice();
    this.addressIndex = 0;
    this.cardIndex = 0;
    this.waiting = false;  // a shipping handler has not answered yet
    this.rejected = false; // the page refused the address (or rate)
  }

  WalletSheet.prototype.open = function () {
    injectStyles();
    this.opener = document.activeElement;
    this.bodyOverflow = document.body.style.overflow;
    this.dialog = el('div', { class: cls('dialog'), role: 'dialog', 'aria-modal': 'true',
      'aria-labelledby': this.uid + '-title', 'aria-describedby': this.uid + '-desc' });
    this.overlay = el('div', { class: cls() + ' ' + cls('overlay'), 'data-stripe-emulator': 'wallet' },
      [this.dialog]);
    var self = this;
    this.dialog.addEventListener('keydown', function (event) {
      if (event.key === 'Escape') {
        event.preventDefault();
        self.cancel();
      } else if (event.key === 'Tab') {
        self.trapTab(event);
      }
    });
    this.keepFocus = function (event) {
      if (!self.dialog.contains(event.target)) self.firstControl().focus();
    };
    this.build();
    document.addEventListener('focusin', this.keepFocus, true);
    document.body.appendChild(this.overlay);
    document.body.style.overflow = 'hidden';
    this.firstControl().focus();
    if (this.options.shippingAddressRequired) this.addressChanged();
    if (typeof this.group._amount !== 'number' && this.group._clientSecret) {
      // Intent-first integrations: the total is the intent's amount.
      this.group._stripe.retrievePaymentIntent(this.group._clientSecret).then(function (res) {
        if (res.paymentIntent) {
          self.group._amount = res.paymentIntent.amount;
          self.group._currency = res.paymentIntent.currency;
          self.render();
        }
      });
    }
  };

  WalletSheet.prototype.firstControl = function () {
    return this.dialog.querySelector('select, input, button:not([disabled])') || this.dialog;
  };

  WalletSheet.prototype.trapTab = function (event) {
    var controls = Array.prototype.filter.call(
      this.dialog.querySelectorAll('select, input, button'),
      function (node) { return !node.disabled; });
    if (!controls.length) return;
    var first = controls[0];
    var last = controls[controls.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  };

  /** The sheet's controls (built once; render() refreshes what changes). */
  WalletSheet.prototype.build = function () {
    var self = this;
    var uid = this.uid;
    var options = this.options;
    var controls = [];
    controls.push(el('h2', { id: uid + '-title', text: WALLET_NAMES[this.wallet] }));
    controls.push(el('p', { id: uid + '-desc', text: 'An offline test wallet served by the Stripe ' +
      'emulator. Choose a test card' + (options.shippingAddressRequired ? ' and a shipping address' : '') +
      ', then pay.' }));
    this.cardSelect = el('select', { id: uid + '-card', class: cls('input') },
      WALLET_CARDS.map(function (card, i) { return el('option', { value: String(i), text: card.label }); }));
    this.cardSelect.addEventListener('change', function () { self.cardIndex = +self.cardSelect.value; });
    controls.push(this.field('Card', this.cardSelect));
    if (options.shippingAddressRequired) {
      this.addressSelect = el('select', { id: uid + '-address', class: cls('input') },
        WALLET_ADDRESSES.map(function (entry, i) {
          var a = entry.address;
          return el('option', { value: String(i),
            text: entry.name + ', ' + a.line1 + ', ' + a.city + ' ' + a.postal_code + ', ' + a.country });
        }));
      this.addressSelect.addEventListener('change', function () {
        self.addressIndex = +self.addressSelect.value;
        self.addressChanged();
      });
      controls.push(this.field('Shipping address', this.addressSelect));
      this.ratesBox = el('fieldset', { class: cls('fieldset') });
      controls.push(this.ratesBox);
    }
    if (options.emailRequired) {
      this.emailInput = el('input', { id: uid + '-email', class: cls('input'), type: 'email',
        autocomplete: 'email', value: WALLET_EMAIL });
      controls.push(this.field('Email', this.emailInput));
    }
    if (options.phoneRequired) {
      this.phoneInput = el('input', { id: uid + '-phone', class: cls('input'), type: 'tel',
        autocomplete: 'tel', value: WALLET_ADDRESSES[0].phone });
      controls.push(this.field('Phone', this.phoneInput));
    }
    this.linesList = el('ul', { class: cls('lines'), 'aria-label': 'Order summary' });
    this.totalLine = el('p', { class: cls('total') });
    this.errorLine = el('p', { class: cls('error'), role: 'alert' });
    this.statusLine = el('p', { class: cls('sr'), role: 'status', 'aria-live': 'polite' });
    this.payButton = el('button', { type: 'button', class: cls('button') + ' ' + cls('button--primary') });
    this.cancelButton = el('button', { type: 'button', class: cls('button'), text: 'Cancel' });
    this.payButton.addEventListener('click', function () { self.pay(); });
    this.cancelButton.addEventListener('click', function () { self.cancel(); });
    controls.push(this.linesList, this.totalLine, this.errorLine, this.statusLine,
      el('div', { class: cls('actions') }, [this.payButton, this.cancelButton]));
    controls.forEach(function (node) { self.dialog.appendChild(node); });
    this.render();
  };

  WalletSheet.prototype.field = function (label, control) {
    return el('div', { class: cls('field') }, [
      el('label', { class: cls('label'), for: control.id, text: label }), control]);
  };

  WalletSheet.prototype.render = function () {
    var self = this;
    var currency = this.group._currency;
    if (this.ratesBox) {
      var legend = el('legend', { class: cls('legend'), text: 'Shipping method' });
      var radios = this.rates.map(function (rate) {
        var input = el('input', { type: 'radio', name: self.uid + '-rate', value: rate.id,
          id: self.uid + '-rate-' + rate.id });
        input.checked = rate.id === self.rateId;
        input.disabled = self.waiting;
        input.addEventListener('change', function () { self.rateChanged(rate.id); });
        var price = formatMoney(rate.amount, currency) || String(rate.amount);
        return el('div', { class: cls('radio') }, [input,
          el('label', { for: input.id, text: (rate.displayName || rate.id) + ' — ' + price })]);
      });
      this.ratesBox.replaceChildren.apply(this.ratesBox, [legend].concat(radios.length ? radios
        : [el('p', { text: this.waiting ? 'Checking the address…' : 'No shipping methods.' })]));
    }
    this.linesList.replaceChildren.apply(this.linesList, this.lineItems.map(function (item) {
      return el('li', {}, [el('span', { text: item.name }),
        el('span', { text: formatMoney(item.amount, currency) || String(item.amount) })]);
    }));
    var total = formatMoney(this.group._amount, currency);
    this.totalLine.replaceChildren(el('span', { text: 'Total' }), el('span', { text: total || '—' }));
    this.errorLine.textContent = this.rejected ? 'This shipping address or method is not available. ' +
      'Choose another one.' : '';
    this.statusLine.textContent = this.waiting ? 'Updating…' : '';
    this.payButton.textContent = total ? 'Pay ' + total : 'Pay';
    this.payButton.disabled = this.waiting || this.rejected ||
      (!!this.options.shippingAddressRequired && !this.rateId && this.rates.length > 0);
  };

  /** Ask the page's handler; it answers with event.resolve(update) or event.reject(). */
  WalletSheet.prototype.askPage = function (name, event) {
    var self = this;
    if (!(this.element._handlers[name] || []).length) return;
    this.waiting = true;
    this.render();
    var settled = false;
    event.elementType = 'expressCheckout';
    event.resolve = function (update) {
      if (settled || self.closed) return;
      settled = true;
      self.apply(update || {});
      self.waiting = false;
      self.rejected = false;
      self.render();
    };
    event.reject = function () {
      if (settled || self.closed) return;
      settled = true;
      self.waiting = false;
      self.rejected = true;
      self.render();
    };
    this.element._emit(name, event);
  };

  WalletSheet.prototype.apply = function (update) {
    if (update.shippingRates) {
      this.rates = update.shippingRates.slice();
      var still = this.rates.some(function (r) { return r.id === this.rateId; }, this);
      if (!still) this.rateId = this.rates.length ? this.rates[0].id : null;
    }
    if (update.lineItems) this.lineItems = update.lineItems.slice();
    if (typeof update.amount === 'number') this.group.update({ amount: update.amount });
  };

  WalletSheet.prototype.addressChanged = function () {
    var entry = WALLET_ADDRESSES[this.addressIndex];
    var a = entry.address;
    // As Stripe: only the parts needed to price shipping, until the buyer pays.
    this.askPage('shippingaddresschange', { name: entry.name,
      address: { city: a.city, state: a.state, postal_code: a.postal_code, country: a.country } });
  };

  WalletSheet.prototype.rateChanged = function (id) {
    this.rateId = id;
    var rate = this.currentRate();
    this.askPage('shippingratechange', { shippingRate: rate });
    this.render();
  };

  WalletSheet.prototype.currentRate = function () {
    for (var i = 0; i < this.rates.length; i++) if (this.rates[i].id === this.rateId) return this.rates[i];
    return null;
  };

  WalletSheet.prototype.pay = function () {
    if (this.payButton.disabled) return;
    var entry = WALLET_ADDRESSES[this.addressIndex];
    var email = this.emailInput ? this.emailInput.value.trim() || null : null;
    var phone = this.phoneInput ? this.phoneInput.value.trim() || null : null;
    var billingDetails = { name: entry.name, email: email, phone: phone, address: entry.address };
    var shippingAddress = this.options.shippingAddressRequired
      ? { name: entry.name, address: entry.address } : null;
    var rate = this.currentRate();
    this.group._express = {
      wallet: this.wallet, token: WALLET_CARDS[this.cardIndex].token,
      billingDetails: billingDetails, shippingAddress: shippingAddress, shippingRate: rate
    };
    this.close();
    var event = { elementType: 'expressCheckout', expressPaymentType: this.wallet,
      billingDetails: billingDetails, paymentFailed: function () {} };
    if (shippingAddress) event.shippingAddress = shippingAddress;
    if (rate) event.shippingRate = rate;
    this.element._emit('confirm', event);
  };

  WalletSheet.prototype.cancel = function () {
    this.group._express = null;
    this.close();
    this.element._emit('cancel', { elementType: 'expressCheckout' });
  };

  WalletSheet.prototype.close = function () {
    this.closed = true;
    document.removeEventListener('focusin', this.keepFocus, true);
    if (this.overlay.parentNode) this.overlay.parentNode.removeChild(this.overlay);
    document.body.style.overflow = this.bodyOverflow;
    this.group._sheet = null;
    if (this.opener && this.opener.focus && document.contains(this.opener)) this.opener.focus();
  };

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
    if (!element || !element._tokenize || !element._iframe) {
      return Promise.reject(IntegrationError('createPaymentMethod: a mounted card or Payment Element is required.'));
    }
    return element._tokenize(paymentMethodExtras(extra));
  };

  /** What the page adds to the card fields' PaymentMethod (plain data, for postMessage). */
  function paymentMethodExtras(data) {
    var extras = {};
    if (data && data.billing_details) extras.billing_details = JSON.parse(JSON.stringify(data.billing_details));
    if (data && data.metadata) extras.metadata = JSON.parse(JSON.stringify(data.metadata));
    return extras;
  }

  /** The PaymentMethod of an approved test-wallet payment (a wallet-tokenised test card). */
  StripeClient.prototype._walletPaymentMethod = function (express, paymentMethodData) {
    var billing = {};
    var source = express.billingDetails || {};
    Object.keys(source).forEach(function (key) { if (source[key] !== null) billing[key] = source[key]; });
    var extra = (paymentMethodData && paymentMethodData.billing_details) || {};
    Object.keys(extra).forEach(function (key) { billing[key] = extra[key]; });
    return this._createPaymentMethod({ type: 'card', card: { token: express.token },
      wallet: express.wallet, billing_details: billing });
  };

  /** A wallet's shipping address as a `shipping` parameter. */
  function walletShipping(express) {
    if (!express || !express.shippingAddress) return undefined;
    var shipping = { name: express.shippingAddress.name, address: express.shippingAddress.address };
    if (express.billingDetails && express.billingDetails.phone) shipping.phone = express.billingDetails.phone;
    return shipping;
  }

  /**
   * createConfirmationToken({elements, params?: {return_url, shipping, payment_method_data,
   * setup_future_usage}}): the card fields (or the approved wallet payment) become a
   * ConfirmationToken (POST /v1/confirmation_tokens) for the server to confirm with.
   */
  StripeClient.prototype.createConfirmationToken = function (options) {
    options = options || {};
    var self = this;
    var elements = options.elements;
    var params = options.params || {};
    var express = elements && elements._express;
    var element = elements && elements._cardElement();
    try {
      if (!elements) {
        throw IntegrationError('stripe.createConfirmationToken(): the `elements` argument is required.');
      }
      if (!express && (!element || !element._iframe)) {
        throw IntegrationError('stripe.createConfirmationToken(): a mounted Payment Element or an ' +
          'approved Express Checkout payment is required.');
      }
      if (!express && elements._mode && !elements._submitted) {
        throw IntegrationError('elements.submit() must be called before stripe.createConfirmationToken(). ' +
          'Call elements.submit() as soon as your customer presses pay, prior to any asynchronous work.');
      }
    } catch (err) {
      return Promise.reject(err);
    }
    elements._submitted = false;
    elements._express = null;
    var paymentMethod = express
      ? this._walletPaymentMethod(express, params.payment_method_data)
      : element._tokenize(paymentMethodExtras(params.payment_method_data));
    return paymentMethod.then(function (res) {
      if (res.error) return { error: res.error };
      var body = { payment_method: res.paymentMethod.id };
      var shipping = params.shipping || walletShipping(express);
      if (shipping) body.shipping = shipping;
      ['return_url', 'setup_future_usage', 'mandate_data'].forEach(function (key) {
        if (params[key] !== undefined) body[key] = params[key];
      });
      return request(self, 'POST', '/v1/confirmation_tokens', body).then(function (created) {
        return created.error ? { error: created.error } : { confirmationToken: created.body };
      });
    });
  };

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
  StripeClient.prototype._paymentMethodFromElements = function (elements, paymentMethodData, express) {
    if (express) return this._walletPaymentMethod(express, paymentMethodData);
    var element = elements._cardElement();
    if (!element || !element._iframe) {
      return Promise.reject(IntegrationError(
        'stripe.confirmPayment(): the Payment Element must be mounted before confirming.'));
    }
    return element._tokenize(paymentMethodExtras(paymentMethodData));
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
    var express = elements && elements._express;
    if (elements) {
      elements._submitted = false;
      elements._express = null;
    }
    var element = !express && elements && elements._cardElement();
    if (element) element._setBusy(true);

    var paymentMethod = confirmParams.payment_method
      ? Promise.resolve({ paymentMethod: { id: confirmParams.payment_method } })
      : this._paymentMethodFromElements(elements, confirmParams.payment_method_data, express);

    return paymentMethod.then(function (res) {
      if (res.error) return res;
      var body = { payment_method: res.paymentMethod.id };
      var shipping = walletShipping(express);
      if (shipping) body.shipping = shipping;
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
      if (!pm.card._tokenize) {
        return Promise.reject(IntegrationError('confirmCardPayment: payment_method.card must be a card Element.'));
      }
      paymentMethod = pm.card._tokenize(paymentMethodExtras(pm));
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
  Stripe.version = versionFromScript(OWN_SCRIPT);
  Stripe.emulator = { apiBase: DEFAULT_API_BASE };

  window.Stripe = Stripe;
})();

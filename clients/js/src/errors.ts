// One error class for everything a checkout can fail with: the service's error body
// (design.md's stable codes), a dropped connection, and Stripe.js' errors.
import type { components } from './schema.js';

type ShortItem = components['schemas']['ShortItem'];

/** The fields of the service's error body, `{"error": {...}}`. */
export interface ErrorBody {
  type?: string;
  code: string;
  message: string;
  fields?: Record<string, string[]>;
  items?: ShortItem[];
  declineCode?: string | null;
}

/** A Stripe.js `result.error` (only the fields read here). */
export interface StripeLikeError {
  type?: string;
  code?: string;
  decline_code?: string;
  message?: string;
}

export class CheckoutError extends Error {
  /** The stable code: the service's (`out_of_stock`…), Stripe's (`card_declined`…),
   * or `network_error` (no answer) / `http_error` (an answer without the error body). */
  readonly code: string;
  /** The HTTP status; 0 when there was no answer (or for Stripe.js errors). */
  readonly status: number;
  /** `validation_failed`: flat dotted camelCase path → messages. */
  readonly fields: Record<string, string[]>;
  /** `out_of_stock`: the short lines. */
  readonly items: ShortItem[];
  /** `rate_limited` / `service_unavailable`: seconds to wait, from `Retry-After`. */
  readonly retryAfter: number | null;
  /** The error's kind: `invalid_request_error`, `card_error`, `api_error`… */
  readonly type: string;
  /** A card decline's reason (`insufficient_funds`…), when Stripe gave one. */
  readonly declineCode: string | null;

  constructor(
    body: ErrorBody,
    { status = 0, retryAfter = null }: { status?: number; retryAfter?: number | null } = {},
  ) {
    super(body.message);
    this.name = 'CheckoutError';
    this.code = body.code;
    this.status = status;
    this.type = body.type ?? 'api_error';
    this.fields = body.fields ?? {};
    this.items = body.items ?? [];
    this.retryAfter = retryAfter;
    this.declineCode = body.declineCode ?? null;
  }

  /** A Stripe.js `result.error` as a CheckoutError (`code` is Stripe's). */
  static fromStripe(error: StripeLikeError): CheckoutError {
    return new CheckoutError({
      type: error.type ?? 'api_error',
      code: error.code ?? error.type ?? 'stripe_error',
      message: error.message ?? 'The payment could not be completed.',
      declineCode: error.decline_code ?? null,
    });
  }

  /** True for a wait-and-retry answer: no answer at all, 429, 502, 503 or 504. */
  get retryable(): boolean {
    return this.status === 0 ? this.code === 'network_error' : [429, 502, 503, 504].includes(this.status);
  }
}

/** The code of a checkout whose order has ended (hold expired, canceled): start again. */
export const CHECKOUT_ENDED = 'checkout_ended';

/** The error for a checkout whose order has ended. */
export function checkoutEnded(): CheckoutError {
  return new CheckoutError(
    { type: 'invalid_request_error', code: CHECKOUT_ENDED, message: 'This checkout has ended: the reservation expired or the order was closed.' },
    { status: 409 },
  );
}

/** `Retry-After` in seconds (delta-seconds or an HTTP date); null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

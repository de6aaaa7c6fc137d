// A fake checkout service for the unit tests: answers per "METHOD /path" from a queue of
// replies (the last one repeats), and records every request.
import { vi } from 'vitest';

export interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Throw instead of answering (a dropped connection). */
  drop?: boolean;
}

export interface Call {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: any;
}

export function fakeService(routes: Record<string, Reply | Reply[] | ((call: Call) => Reply)>) {
  const calls: Call[] = [];
  const queues = new Map(Object.entries(routes).map(([route, reply]) => [route, reply]));
  const fetch = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const call: Call = {
      method: init.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: { ...(init.headers as Record<string, string>) },
      body: init.body ? JSON.parse(String(init.body)) : undefined,
    };
    calls.push(call);
    const route = `${call.method} ${call.path}`;
    const entry = queues.get(route);
    if (!entry) return json({ error: { type: 'invalid_request_error', code: 'not_found', message: `No route ${route}` } }, 404);
    let reply: Reply;
    if (typeof entry === 'function') reply = entry(call);
    else if (Array.isArray(entry)) reply = entry.length > 1 ? entry.shift()! : entry[0]!;
    else reply = entry;
    if (reply.drop) throw new TypeError('Failed to fetch');
    return json(reply.body ?? {}, reply.status ?? 200, reply.headers);
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls, mock: fetch };
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

export const CART = {
  items: [{ sku: 'MUG-LOGO', quantity: 2 }],
  email: 'ada@example.com',
  shippingAddress: { name: 'Ada Lovelace', line1: '1 Analytical Way', city: 'London', postalCode: '94107', country: 'US' as const },
};

export function submitted(orderId = 'ord_1', token: string | null = 'tok_1') {
  return {
    status: 202,
    body: { orderId, orderNumber: '1001', checkoutToken: token, state: 'PENDING', statusUrl: `/api/checkout/${orderId}`, holdExpiresAt: '2030-01-01T00:00:00Z' },
  };
}

export function status(version: number, state = 'PENDING', payment: Record<string, unknown> = {}, error: unknown = null) {
  return {
    body: {
      orderId: 'ord_1', orderNumber: '1001', state, version, error, holdExpiresAt: null, lineItems: [], totals: null,
      payment: { status: 'creating', intentId: null, clientSecret: null, captureMethod: 'automatic', ...payment },
    },
  };
}

export const errorReply = (status: number, code: string, message = code, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) => ({
  status,
  headers,
  body: { error: { type: 'invalid_request_error', code, message, ...extra } },
});

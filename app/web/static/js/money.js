// Money arrives in integer minor units; it is formatted only here, at the edge.

/** 1999, 'usd' -> "$19.99" (the currency's own number of decimals). */
export function formatMoney(amount, currency) {
  const code = String(currency || 'usd').toUpperCase();
  const format = new Intl.NumberFormat('en-US', { style: 'currency', currency: code });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(amount / 10 ** digits);
}

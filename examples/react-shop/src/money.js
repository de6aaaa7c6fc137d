// Display only. Product prices come as exact decimal strings (`priceDecimal`, "14.00");
// quote and order amounts as integers in minor units. No arithmetic on floats here:
// the server prices every cart.
const formatters = new Map();

function formatter(currency) {
  const code = currency.toUpperCase();
  if (!formatters.has(code)) {
    formatters.set(code, new Intl.NumberFormat('en-US', { style: 'currency', currency: code }));
  }
  return formatters.get(code);
}

/** "14.00", "usd" -> "$14.00" (Intl formats a decimal string exactly). */
export const formatDecimal = (decimal, currency) => formatter(currency).format(decimal);

/** 1400, "usd" -> "$14.00"; 1400, "jpy" -> "¥1,400". */
export function formatMinor(amount, currency) {
  const digits = formatter(currency).resolvedOptions().maximumFractionDigits;
  const sign = amount < 0 ? '-' : '';
  const units = String(Math.abs(amount)).padStart(digits + 1, '0');
  const decimal = digits ? `${units.slice(0, -digits)}.${units.slice(-digits)}` : units;
  return formatter(currency).format(`${sign}${decimal}`);
}

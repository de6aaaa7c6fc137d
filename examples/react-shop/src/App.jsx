import { useCallback, useEffect, useState } from 'react';
import { Link, usePath } from './router.jsx';
import { loadCart, saveCart } from './storage.js';
import Catalog from './pages/Catalog.jsx';
import Checkout from './pages/Checkout.jsx';
import HostedReturn from './pages/HostedReturn.jsx';
import OrderPage from './pages/OrderPage.jsx';
import TrackPage from './pages/TrackPage.jsx';

export default function App() {
  const path = usePath();
  const [cart, setCart] = useState(loadCart);
  useEffect(() => saveCart(cart), [cart]);

  function setQuantity(sku, quantity) {
    setCart((lines) => {
      if (quantity <= 0) return lines.filter((line) => line.sku !== sku);
      if (!lines.some((line) => line.sku === sku)) return [...lines, { sku, quantity }];
      return lines.map((line) => (line.sku === sku ? { ...line, quantity } : line));
    });
  }
  const clearCart = useCallback(() => setCart([]), []);
  const quantityOf = (sku) => cart.find((line) => line.sku === sku)?.quantity ?? 0;
  const count = cart.reduce((sum, line) => sum + line.quantity, 0);

  const orderMatch = path.match(/^\/orders\/([^/]+)$/);
  let page;
  if (orderMatch) page = <OrderPage orderId={decodeURIComponent(orderMatch[1])} />;
  else if (path === '/checkout') page = <Checkout cart={cart} setQuantity={setQuantity} onPaid={() => setCart([])} />;
  else if (path === '/checkout/return') page = <HostedReturn onPaid={clearCart} />;
  else if (path === '/track') page = <TrackPage />;
  else page = <Catalog quantityOf={quantityOf} onAdd={(sku) => setQuantity(sku, quantityOf(sku) + 1)} />;

  return (
    <>
      <header className="site-header">
        <Link to="/" className="brand">Loom &amp; Kiln</Link>
        <nav aria-label="Main">
          <Link to="/track">Track an order</Link>
          <Link to="/checkout" id="cart-link">Cart ({count})</Link>
        </nav>
      </header>
      <main>{page}</main>
    </>
  );
}

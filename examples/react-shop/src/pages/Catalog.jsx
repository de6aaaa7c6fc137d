import { useEffect, useState } from 'react';
import { client } from '../checkout.js';
import { describeError } from '../errors.js';
import { formatDecimal } from '../money.js';
import ErrorBox from '../components/ErrorBox.jsx';

export default function Catalog({ quantityOf, onAdd }) {
  const [products, setProducts] = useState(null);
  const [error, setError] = useState(null);
  const [category, setCategory] = useState('All');

  useEffect(() => {
    client.products().then(setProducts, (err) => setError(describeError(err)));
  }, []);

  if (error) return <ErrorBox error={error} />;
  if (!products) return <p aria-busy="true">Loading the catalog…</p>;

  const categories = ['All', ...new Set(products.map((p) => p.category).filter(Boolean))];
  const shown = category === 'All' ? products : products.filter((p) => p.category === category);

  return (
    <section aria-labelledby="catalog-title">
      <h1 id="catalog-title">Shop</h1>
      <div className="categories" role="group" aria-label="Categories">
        {categories.map((name) => (
          <button key={name} type="button" aria-pressed={name === category} onClick={() => setCategory(name)}>
            {name}
          </button>
        ))}
      </div>
      <ul className="products">
        {shown.map((product) => (
          <ProductCard key={product.id} product={product} inCart={quantityOf(product.id)} onAdd={onAdd} />
        ))}
      </ul>
    </section>
  );
}

function ProductCard({ product, inCart, onAdd }) {
  const soldOut = product.available === 0;
  const canAdd = inCart < product.available;
  return (
    <li className="product" data-sku={product.sku}>
      {product.imageUrl
        ? <img src={product.imageUrl} alt="" width="240" height="180" loading="lazy" />
        : <div className="no-image" aria-hidden="true">{product.name.slice(0, 1)}</div>}
      <h2>{product.name}</h2>
      <p className="meta">{[product.brand, product.category].filter(Boolean).join(' · ')}</p>
      <p className="price">{formatDecimal(product.priceDecimal, product.price.currency)}</p>
      <p className="stock">
        {soldOut ? 'Sold out' : product.available <= 5 ? `Only ${product.available} left` : 'In stock'}
        {inCart > 0 && ` · ${inCart} in your cart`}
      </p>
      <button type="button" disabled={!canAdd} onClick={() => onAdd(product.id)} aria-label={`Add ${product.name} to cart`}>
        {soldOut ? 'Sold out' : 'Add to cart'}
      </button>
    </li>
  );
}

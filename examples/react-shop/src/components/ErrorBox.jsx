import { useEffect, useRef } from 'react';

/** An error as describeError() words it; focused when it appears so it is read out. */
export default function ErrorBox({ error, id = 'error' }) {
  const ref = useRef(null);
  useEffect(() => {
    if (error) ref.current?.focus();
  }, [error]);
  if (!error) return null;
  return (
    <div id={id} className="error-box" role="alert" tabIndex={-1} ref={ref}>
      <strong>{error.title}</strong>
      <p>{error.message}</p>
      {error.list?.length > 0 && <ul>{error.list.map((item) => <li key={item}>{item}</li>)}</ul>}
      {error.retry && <p className="retry">{error.retry}</p>}
    </div>
  );
}

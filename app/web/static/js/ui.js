// Rendering shared by the pages: the error summary, status announcements, field errors.

const $ = (id) => document.getElementById(id);

/** Politely announce progress ("Reserving your items…") to screen readers and sighted users. */
export function announce(text) {
  const status = $('status');
  if (status) status.textContent = text;
}

export function clearError() {
  const box = $('error-summary');
  if (!box) return;
  box.hidden = true;
  $('error-list').replaceChildren();
  $('error-actions').replaceChildren();
  document.querySelectorAll('[aria-invalid="true"]').forEach((input) => {
    if (!input.closest('#payment-element')) input.setAttribute('aria-invalid', 'false');
  });
  document.querySelectorAll('.field-error').forEach((p) => { p.textContent = ''; });
}

/**
 * Show one error: title, message, the lines or fields concerned, the next step and its
 * buttons (`actions`: [{label, onClick}]); move focus to it so it is read out.
 */
export function showError(desc, actions = []) {
  const box = $('error-summary');
  box.dataset.kind = desc.kind;
  $('error-title').textContent = desc.title;
  $('error-message').textContent = desc.message || '';
  $('error-next').textContent = desc.next ? `Next step: ${desc.next}` : '';
  const list = $('error-list');
  list.replaceChildren(...(desc.items || []).map((text) => {
    const li = document.createElement('li');
    li.textContent = text;
    return li;
  }));
  for (const [field, target, messages] of desc.fieldLinks || []) {
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.href = `#${target}`;
    link.textContent = `${field}: ${messages.join(' ')}`;
    link.addEventListener('click', (event) => {
      event.preventDefault();
      document.getElementById(target)?.focus();
    });
    li.append(link);
    list.append(li);
  }
  $('error-actions').replaceChildren(...actions.map(({ label, onClick, primary }) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = primary ? 'button primary' : 'button';
    button.textContent = label;
    button.addEventListener('click', onClick);
    return button;
  }));
  box.hidden = false;
  announce('');
  box.focus();
  box.scrollIntoView({ block: 'nearest' });
}

/** Mark one input invalid with its message (linked through aria-describedby). */
export function setFieldError(inputId, message) {
  const input = $(inputId);
  const slot = $(`err-${inputId}`);
  if (input) input.setAttribute('aria-invalid', 'true');
  if (slot) slot.textContent = message;
}

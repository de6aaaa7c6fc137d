// The console's only script besides htmx: the CSRF header on htmx requests, and the
// <dialog> open/close buttons. No inline script anywhere (the CSP forbids it).
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

// Every htmx request that changes state carries the session's token (X-CSRFToken).
document.addEventListener("htmx:configRequest", (event) => {
  event.detail.headers["X-CSRFToken"] = csrfToken();
});

// <button data-open-dialog="id"> opens <dialog id="id"> as a modal (focus moves into it,
// Escape closes it); <button data-close-dialog> closes the dialog it is in.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-open-dialog]");
  if (opener) {
    const dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
    if (dialog && typeof dialog.showModal === "function") {
      dialog.showModal();
    }
    return;
  }
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) {
    const dialog = closer.closest("dialog");
    if (dialog) {
      dialog.close();
    }
  }
});

// A form submitted once stays submitted: its buttons are disabled until the page
// answers (the Idempotency-Key makes a second submit harmless; this makes it rare).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.submitted === "true") {
    event.preventDefault();
    return;
  }
  form.dataset.submitted = "true";
  for (const button of form.querySelectorAll("button[type=submit]")) {
    button.setAttribute("aria-disabled", "true");
  }
});

// An action posted by htmx from an element marked data-show-errors shows the server's
// refusal (a 4xx alert fragment) in its target; htmx swaps only 2xx answers otherwise.
document.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  if (status >= 400 && status < 500 && status !== 401 && event.detail.elt.closest("[data-show-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

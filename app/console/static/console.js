// The console's only script besides htmx (and uPlot on the dashboard): the CSRF header on
// htmx requests, the <dialog> open/close buttons, the catalog upload's progress, live
// fragments that rest while the tab is hidden, and the dashboard's chart. No inline script
// anywhere (the CSP forbids it).
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

// <form data-upload-progress="ID" data-upload-status="ID" data-upload-result="ID"> (the
// catalog upload) is sent by XHR so its <progress> shows the upload as it goes (the
// XHR's upload "progress" events); once every byte is sent the server checks and writes
// the rows in one transaction, then answers the result fragment, put into the result
// region with focus moved there. Sent as an htmx request would be (HX-Request), so the
// server answers fragments and a lost session redirects (HX-Redirect). Without
// JavaScript the form posts normally and the whole page comes back with the result.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented || !form.matches("form[data-upload-progress]")) {
    return;
  }
  event.preventDefault();
  const bar = document.getElementById(form.dataset.uploadProgress);
  const status = document.getElementById(form.dataset.uploadStatus);
  const result = document.getElementById(form.dataset.uploadResult);
  const done = () => {
    form.dataset.submitted = "false";
    for (const button of form.querySelectorAll("button[type=submit]")) {
      button.removeAttribute("aria-disabled");
    }
  };
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.setRequestHeader("X-CSRFToken", csrfToken());
  xhr.setRequestHeader("HX-Request", "true");
  xhr.upload.addEventListener("progress", (progress) => {
    if (progress.lengthComputable) {
      const percent = Math.round((progress.loaded / progress.total) * 100);
      bar.max = 100;
      bar.value = percent;
      bar.textContent = `${percent}%`;
      status.textContent = `Uploading: ${percent}% of ${Math.ceil(progress.total / 1024)} KB`;
    }
  });
  xhr.upload.addEventListener("load", () => {
    bar.value = 100;
    status.textContent = "Uploaded. Checking every row, then writing them in one transaction…";
  });
  xhr.addEventListener("load", () => {
    done();
    const redirect = xhr.getResponseHeader("HX-Redirect");
    if (redirect) {
      window.location.assign(redirect);
      return;
    }
    if (xhr.status === 413) {
      status.textContent = "The file is too large (8 MB at most). Nothing was imported.";
      return;
    }
    status.textContent = xhr.status < 400 ? "Done." : "Nothing was imported: see below.";
    result.innerHTML = xhr.responseText;  // our own server-rendered, escaped fragment
    result.focus();
  });
  xhr.addEventListener("error", () => {
    done();
    status.textContent = "The upload failed (network). Nothing was imported; try again.";
  });
  xhr.send(new FormData(form));
});

// Live fragments ([data-live], polled by htmx): no poll while the tab is hidden; one at
// once when it shows again (their hx-trigger includes "refresh").
document.addEventListener("htmx:beforeRequest", (event) => {
  if (document.hidden && event.detail.elt.hasAttribute("data-live")) {
    event.preventDefault();
  }
});
document.addEventListener("visibilitychange", () => {
  if (document.hidden || typeof htmx === "undefined") {
    return;
  }
  for (const live of document.querySelectorAll("[data-live]")) {
    htmx.trigger(live, "refresh");
  }
});

// The dashboard's chart: uPlot (vendored) drawn in [data-chart] from the JSON at that
// URL, drawn again after each poll of the live fragment (the box itself is kept across
// swaps: hx-preserve). uPlot styles its elements through the CSSOM, which the CSP allows.
const CHART_HEIGHT = 240;
let chart = null;

function chartOptions(box) {
  return {
    width: Math.max(box.clientWidth, 200),
    height: CHART_HEIGHT,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [
      // HH:MM in UTC, as the table and the rest of the console show times.
      { values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toISOString().slice(11, 16)) },
      { values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t : "")) },
    ],
    series: [
      {},
      {
        label: "Orders",
        stroke: "#1f4fbf",
        width: 2,
        fill: "rgba(31, 79, 191, 0.12)",
        points: { show: false },
      },
      { label: "Paid", stroke: "#1c6b3a", width: 2, dash: [6, 4], points: { show: false } },
    ],
  };
}

async function drawChart() {
  const box = document.querySelector("[data-chart]");
  if (!box || typeof uPlot === "undefined") {
    return;
  }
  const response = await fetch(box.getAttribute("data-chart"), {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  if (!response.ok) {
    return; // signed out or a blip: the next poll tries again
  }
  const data = await response.json();
  const columns = [data.minutes, data.orders, data.paid];
  if (chart && box.contains(chart.root)) {
    chart.setData(columns);
  } else {
    box.textContent = "";
    chart = new uPlot(chartOptions(box), columns, box);
  }
  box.dataset.drawn = String(data.orders.reduce((sum, n) => sum + n, 0));
}

document.addEventListener("DOMContentLoaded", drawChart);
document.addEventListener("htmx:afterSettle", drawChart);
window.addEventListener("resize", () => {
  const box = document.querySelector("[data-chart]");
  if (chart && box) {
    chart.setSize({ width: Math.max(box.clientWidth, 200), height: CHART_HEIGHT });
  }
});

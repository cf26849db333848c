// Small enhancements; every page works without them.

// "Copy" buttons: <button data-copy="#id" hidden>. Shown only when scripts run.
document.addEventListener("DOMContentLoaded", revealCopyButtons);
document.addEventListener("htmx:afterSettle", revealCopyButtons);

function revealCopyButtons() {
  document.querySelectorAll("button[data-copy][hidden]").forEach((button) => { button.hidden = false; });
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  const done = () => { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => selectAndCopy(source) && done());
  } else if (selectAndCopy(source)) {
    done();
  }
});

function selectAndCopy(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  try { return document.execCommand("copy"); } catch (_) { return false; }
}

// While a form's request is on its way its buttons are disabled, so a double click
// sends it once (htmx has already read the pressed button's value by then).
document.addEventListener("htmx:beforeRequest", (event) => setButtons(event, true));
document.addEventListener("htmx:afterRequest", (event) => {
  // Stay disabled while the browser follows an HX-Redirect to the next page.
  if (!event.detail.xhr || !event.detail.xhr.getResponseHeader("HX-Redirect")) setButtons(event, false);
});

function setButtons(event, disabled) {
  const form = event.detail.elt.closest && event.detail.elt.closest("form");
  if (form) form.querySelectorAll("button").forEach((button) => busy(button, disabled));
}

function busy(button, disabled) {
  button.disabled = disabled;
  button.toggleAttribute("data-busy", disabled);
}

// Back to a page kept in the browser's back/forward cache: its buttons work again.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) document.querySelectorAll("button[data-busy]").forEach((button) => busy(button, false));
});

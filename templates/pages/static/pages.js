// Pre-fill the code from a QR code's "#code=..." fragment (never sent to a server: browsers
// keep fragments to themselves), and keep what was typed in this tab only, so that the code
// survives signing in at the store and a refused attempt without a page ever holding it.
(function () {
  "use strict";
  var KEY = "giftq-code";
  var store = window.sessionStorage;
  var found = /(?:^|&)code=([^&]*)/.exec(window.location.hash.slice(1));
  if (found) {
    try { store.setItem(KEY, decodeURIComponent(found[1].replace(/\+/g, " "))); } catch (e) { /* private mode */ }
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  if (document.body.getAttribute("data-outcome") === "done") {
    try { store.removeItem(KEY); } catch (e) { /* nothing kept */ }
  }
  var input = document.getElementById("code");
  var note = document.getElementById("code-kept");
  if (note) {
    try { if (store.getItem(KEY)) { note.removeAttribute("hidden"); } } catch (e) { /* nothing kept */ }
  }
  if (!input) { return; }
  try {
    var kept = store.getItem(KEY);
    if (kept && !input.value) { input.value = kept; }
  } catch (e) { /* nothing kept */ }
  input.form.addEventListener("submit", function () {
    try { store.setItem(KEY, input.value); } catch (e) { /* private mode */ }
  });
})();

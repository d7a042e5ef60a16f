// Keeps the page's figures live: every few seconds it fetches the same page
// and swaps in the parts marked data-live, leaving forms and anything being
// typed in alone. Without JavaScript the page is the same, refreshed by hand.
(function () {
  "use strict";
  var period = (parseInt(document.body.dataset.refresh, 10) || 2) * 1000;
  var state = function (text) {
    var el = document.querySelector(".livestate");
    if (el) { el.textContent = text; }
  };
  var refresh = function () {
    if (document.hidden) { return schedule(); }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (resp) {
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          var fresh = next.getElementById(el.id);
          if (fresh && !el.contains(document.activeElement)) { el.innerHTML = fresh.innerHTML; }
        });
        document.querySelectorAll("[data-stage]").forEach(function (el) {
          el.setAttribute("aria-live", "polite");
        });
        state("live, every " + period / 1000 + " s");
      })
      .catch(function (err) { state("not refreshing: " + err.message); })
      .then(schedule);
  };
  var schedule = function () { window.setTimeout(refresh, period); };
  state("live, every " + period / 1000 + " s");
  schedule();
})();

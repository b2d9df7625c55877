// merch-pipeline console: refresh the parts of a page marked data-refresh="<seconds>" in
// place (the page works without this script; it only saves a reload).
(function () {
  "use strict";
  function refresh(element, seconds) {
    window.setTimeout(function () {
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (text) {
          if (text === null) { return; }
          var fresh = new DOMParser().parseFromString(text, "text/html").getElementById(element.id);
          if (fresh) { element.replaceWith(fresh); element = fresh; }
        })
        .catch(function () { return null; })
        .finally(function () { refresh(element, seconds); });
    }, seconds * 1000);
  }
  document.querySelectorAll("[data-refresh][id]").forEach(function (element) {
    refresh(element, Number(element.getAttribute("data-refresh")) || 10);
  });
})();

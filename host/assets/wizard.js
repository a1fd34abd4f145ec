// The configuration wizard's one script: "Connect" opens the provider's consent in a
// popup (without JavaScript the link opens in a new tab, which works the same), and
// when the popup reports back (see /oauth/close.js) the wizard reloads to show the
// connection and the choices it unlocks.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-oauth-popup]");
    if (!link) { return; }
    event.preventDefault();
    window.open(link.href, "sluice-oauth", "popup,width=600,height=720");
  });
  window.addEventListener("message", function (event) {
    if (event.origin !== window.location.origin) { return; }
    if (event.data && event.data.type === "sluice-oauth") {
      // A GET of the wizard: never the re-sent POST of a save.
      window.location.assign(window.location.pathname);
    }
  });
})();

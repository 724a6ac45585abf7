// The console's only script (no inline script anywhere: the Content-Security-Policy
// forbids it). Everything here is a convenience; every page works without it.
(function () {
  "use strict";
  // A language choice applies as soon as it is picked.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  // "Select all" ticks every box of the named field.
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      var name = all.getAttribute("data-select-all");
      all.form.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (box) {
        box.checked = all.checked;
      });
    });
  });
  // A progress page reloads itself until every command has finished.
  var refresh = document.querySelector("a[data-refresh]");
  if (refresh) {
    setTimeout(function () { window.location.assign(refresh.href); },
      1000 * Number(refresh.getAttribute("data-refresh")));
  }
  // The server ends a session idle for this long (counted from its last request,
  // which is this page's); the page then follows it to the login form instead of
  // leaving a screen whose next click would fail.
  var idle = Number(document.body.getAttribute("data-idle-seconds") || 0);
  if (idle > 0) {
    setTimeout(function () {
      window.location.assign("/console/login?expired=1&next=" + encodeURIComponent(window.location.pathname));
    }, idle * 1000 + 2000);
  }
})();

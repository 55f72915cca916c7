// Collects every error the page meets, before any other script runs, so that the browser tests (and a
// curious person, in the console: `racelabErrors`) can see them: uncaught exceptions, rejected promises
// nobody awaited, files that failed to load, and console.error calls.
(function () {
  "use strict";
  var errors = [];
  window.racelabErrors = errors;
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && (target.src || target.href)) {
      errors.push("failed to load " + (target.src || target.href));
    } else {
      errors.push(String(event.message || event.error));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    errors.push("unhandled rejection: " + String(event.reason && (event.reason.stack || event.reason)));
  });
  var original = console.error;
  console.error = function () {
    errors.push(Array.prototype.map.call(arguments, String).join(" "));
    return original.apply(console, arguments);
  };
})();

// Opsdesk's small progressive enhancements. Everything works without this file; it only saves
// clicks. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  // Selects marked data-autosubmit submit their form on change (the switcher); the fallback
  // button stays for keyboard users who prefer it but is visually quiet.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]") && target.form) {
      if (target.id === "switch-workspace") {
        var tenant = target.form.querySelector("#switch-tenant");
        if (tenant) tenant.value = "";
      }
      target.form.requestSubmit ? target.form.requestSubmit() : target.form.submit();
    }
  });

  // Dismissable alerts.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-dismiss]");
    if (button) {
      var alert = button.closest(".alert");
      if (alert) alert.remove();
    }
  });

  // "/" focuses the page's search or first filter field, like most consoles.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var active = document.activeElement;
    if (active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA" || active.tagName === "SELECT" || active.isContentEditable)) return;
    var search = document.querySelector("[data-search]");
    if (search) { event.preventDefault(); search.focus(); }
  });

  // Show times in the reader's zone as a tooltip; the server renders UTC.
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]:not([title])").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) el.title = when.toLocaleString();
    });
  }
  onReady(function () { localizeTimes(document); });
  document.addEventListener("htmx:afterSettle", function (event) { localizeTimes(event.target); });

  // Alerts from HTMX errors scroll into view so they are not missed.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id === "messages" && event.target.firstElementChild) {
      event.target.firstElementChild.scrollIntoView({block: "nearest"});
    }
  });
})();

// SLA countdowns: the server renders the first frame; this keeps them ticking.
(function () {
  "use strict";
  function format(seconds) {
    var overdue = seconds < 0, s = Math.abs(seconds);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var text = d ? d + "d " + h + "h" : (h ? h + "h " + m + "m" : (m ? m + "m" : Math.floor(s) + "s"));
    return overdue ? text + " overdue" : "in " + text;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) return;
      var seconds = (due - now) / 1000;
      var prefix = el.textContent.indexOf("ack ") === 0 ? "ack " : "";
      el.textContent = prefix + format(seconds);
      el.classList.toggle("overdue", seconds < 0);
      el.classList.toggle("due-soon", seconds >= 0 && seconds < 900);
    });
  }
  setInterval(tick, 1000);

  // j / k move between board rows, Enter opens the focused one (the link itself).
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var active = document.activeElement;
    if (active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA" || active.tagName === "SELECT")) return;
    if (event.key !== "j" && event.key !== "k") return;
    var links = Array.prototype.slice.call(document.querySelectorAll("#board-table .row-link, .columns .card"));
    if (!links.length) return;
    var index = links.indexOf(active);
    index = event.key === "j" ? Math.min(links.length - 1, index + 1) : Math.max(0, index - 1);
    links[index].focus();
    event.preventDefault();
  });
})();

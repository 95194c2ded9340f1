// Small browser-side helpers the Python UI calls (window.letschat.*) or relies on.
(function () {
  "use strict";

  function messages() {
    return document.getElementById("messages");
  }

  window.letschat = {
    scrollToFirstUnread: function () {
      // After the conversation renders: the first unread message, else the newest.
      requestAnimationFrame(function () {
        var marker = document.getElementById("first-unread");
        if (marker) marker.scrollIntoView({ block: "center" });
        else window.letschat.scrollToNewest();
      });
    },
    scrollToNewest: function () {
      var list = messages();
      if (list) list.scrollTop = 0; // column-reverse: 0 is the bottom
    },
    askNotificationPermission: function () {
      if ("Notification" in window && Notification.permission === "default") {
        Notification.requestPermission();
      }
    },
    notify: function (title, body) {
      if (!("Notification" in window) || Notification.permission !== "granted") return;
      if (!document.hidden) return; // The in-page popup is enough while the tab is visible.
      new Notification(title, { body: body });
    },
  };

  // Enter sends, Shift+Enter is a newline.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!target || target.id !== "composer" || event.key !== "Enter") return;
    if (event.shiftKey || event.isComposing) return;
    event.preventDefault();
    if (target.value.trim() && target.form) target.form.requestSubmit();
  });

  // The page title follows the unread count the chat page publishes.
  function syncTitle() {
    var source = document.querySelector('meta[name="letschat-title"]');
    if (source && source.content && document.title !== source.content) {
      document.title = source.content;
    }
  }

  // Scrolling up to the top of a conversation loads older messages. The message that was at
  // the top stays where it was on screen while they are added above it.
  var anchor = null;
  var observed = null;
  var observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting || entry.target.disabled) return;
      var list = messages();
      var first = list && list.querySelector(".message");
      if (first) {
        // By key, not by node: React reuses nodes by position, so the node may change message.
        anchor = {
          key: first.dataset.key,
          top: first.getBoundingClientRect().top,
          until: Date.now() + 3000,
        };
      }
      entry.target.click();
    });
  });

  function keepAnchor() {
    if (!anchor) return;
    var list = messages();
    var el = list && list.querySelector('.message[data-key="' + CSS.escape(anchor.key) + '"]');
    if (!el || Date.now() > anchor.until) {
      anchor = null;
      return;
    }
    var moved = el.getBoundingClientRect().top - anchor.top;
    if (moved) list.scrollTop += moved;
  }

  new MutationObserver(function () {
    syncTitle();
    keepAnchor();
    var button = document.getElementById("load-older");
    if (button === observed) return;
    if (observed) observer.unobserve(observed);
    observed = button;
    if (button) observer.observe(button);
  }).observe(document.documentElement, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["content"],
  });
})();

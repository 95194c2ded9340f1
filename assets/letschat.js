// Small browser-side helpers the Python UI calls (window.letschat.*) or relies on.
(function () {
  "use strict";

  // A dialog that is open (one closing is still there for its animation, marked closed).
  var OPEN_DIALOG = '[role="dialog"][data-state="open"], [role="alertdialog"][data-state="open"]';

  function messages() {
    return document.getElementById("messages");
  }

  // How close to the newest message still counts as looking at it.
  var NEAR_NEWEST_PX = 48;
  // Notifications already shown by some tab of this browser: message id -> when.
  var NOTIFIED_KEY = "letschat_notified";
  var NOTIFIED_KEEP_MS = 10 * 60 * 1000;
  // How long the tab that showed a message's notification keeps other tabs from showing it.
  var NOTIFY_HOLD_MS = 60 * 1000;

  // The tab is seen: visible, focused, and the open conversation is scrolled to its newest
  // messages. Only then does a message count as read.
  function isSeen() {
    var list = messages();
    if (!list || document.visibilityState !== "visible" || !document.hasFocus()) return false;
    return list.scrollTop > -NEAR_NEWEST_PX; // column-reverse: 0 is the newest, up is negative
  }

  var reportedSeen = null;
  function reportSeen() {
    var seen = isSeen();
    if (seen === reportedSeen) return;
    var button = document.getElementById(seen ? "seen-on" : "seen-off");
    if (!button) return;
    reportedSeen = seen;
    button.click();
  }

  function showOnce(id, show) {
    // One notification per message per browser, however many tabs got it. Web Locks are
    // granted by the browser to one tab at a time, at once; localStorage is not shared that
    // way: each tab reads its own copy, which learns of other tabs' writes a moment later
    // (later still on a busy machine, and never when storage is full). So the first tab to
    // take the message's lock decides, and keeps the lock for a while; the others find it
    // taken and leave the message to it. The record in localStorage is for a tab that gets
    // the message after that, when it catches up.
    function decide() {
      window.letschat.notifyChecks += 1;
      var now = Date.now();
      var seen = {};
      try {
        seen = JSON.parse(localStorage.getItem(NOTIFIED_KEY) || "{}") || {};
      } catch (e) {
        seen = {};
      }
      if (seen[id]) return;
      Object.keys(seen).forEach(function (key) {
        if (now - seen[key] > NOTIFIED_KEEP_MS) delete seen[key];
      });
      seen[id] = now;
      try {
        localStorage.setItem(NOTIFIED_KEY, JSON.stringify(seen));
      } catch (e) {
        /* storage full or off: the lock still decides between tabs open now */
      }
      show();
    }
    if (!navigator.locks || !navigator.locks.request) {
      decide();
      return;
    }
    navigator.locks.request("letschat-notify:" + id, { ifAvailable: true }, function (lock) {
      if (!lock) {
        window.letschat.notifyChecks += 1; // Another tab has it.
        return undefined;
      }
      decide();
      return new Promise(function (resolve) {
        setTimeout(resolve, NOTIFY_HOLD_MS);
      });
    });
  }

  window.letschat = {
    // How many notifications this tab has decided on (shown, or left to another tab).
    notifyChecks: 0,
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
    // A reply's original, once rendered: scrolled into view and briefly marked.
    showMessage: function (id, tries) {
      var el = document.querySelector('.message[data-key="' + CSS.escape(id) + '"]');
      if (!el) {
        if ((tries || 0) < 20) {
          setTimeout(function () { window.letschat.showMessage(id, (tries || 0) + 1); }, 50);
        }
        return;
      }
      el.scrollIntoView({ block: "center" });
      el.classList.add("flash");
      setTimeout(function () { el.classList.remove("flash"); }, 1600);
    },
    // `opened`: the conversation the app has just opened, if it did. What this call does is
    // for that conversation's composer, which the page may show a moment later (and an edit
    // going on in the one before ends with a new box): it waits for it, a while.
    focusComposer: function (opened, since) {
      since = since || Date.now();
      requestAnimationFrame(function () {
        var box = document.getElementById("composer");
        if (opened && (!box || box.getAttribute("data-conversation") !== opened)) {
          if (Date.now() - since < OPEN_WAIT_MS) window.letschat.focusComposer(opened, since);
          return;
        }
        if (box) {
          showDraft(box);
          carryOverEditKeys(box);
          if (opened) {
            landTypeAhead(box);
          } else if (typeAhead && Date.now() - typeAhead.at <= OPEN_WAIT_MS) {
            // Some other answer (a reply's, an edit's) after the switcher's Enter: the keys
            // typed since are for the conversation chosen, and so is the focus.
            return;
          }
        }
        // Late (it follows a state round trip): not from a dialog opened meanwhile.
        if (!box || document.querySelector(OPEN_DIALOG)) return;
        box.focus();
        box.setSelectionRange(box.value.length, box.value.length);
      });
    },
    askNotificationPermission: function () {
      if ("Notification" in window && Notification.permission === "default") {
        Notification.requestPermission();
      }
    },
    notify: function (title, body, id) {
      if (!("Notification" in window) || Notification.permission !== "granted") return;
      // The in-page popup is enough while the person is looking at this tab.
      if (document.visibilityState === "visible" && document.hasFocus()) return;
      showOnce(id, function () {
        new Notification(title, { body: body, tag: id });
      });
    },
  };

  // The composer counts what is typed against the message limit, in code points as the
  // service counts them: near the limit it says what is left, past it by how much, and the
  // message is held back (never cut off) until it fits.
  function composerCount(box) {
    var limit = Number(box.dataset.limit || 0);
    var length = Array.from(box.value.trim()).length;
    return { limit: limit, length: length, over: limit > 0 && length > limit };
  }

  function showCount(box) {
    var counter = document.getElementById("composer-count");
    if (!counter) return;
    var count = composerCount(box);
    var text = "";
    if (count.over) {
      text = (count.length - count.limit).toLocaleString("en") +
        " characters over the limit of " + count.limit.toLocaleString("en");
    } else if (count.limit > 0 && count.length >= count.limit * 0.9) {
      text = (count.limit - count.length).toLocaleString("en") + " characters left";
    }
    if (counter.textContent !== text) counter.textContent = text;
    counter.dataset.over = count.over ? "true" : "false";
    box.setAttribute("aria-invalid", count.over ? "true" : "false");
    var button = box.form && box.form.querySelector('button[type="submit"]');
    if (button) button.setAttribute("aria-disabled", count.over ? "true" : "false");
  }

  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "composer") showCount(event.target);
  });
  document.addEventListener(
    "reset",
    function (event) {
      var box = event.target && event.target.querySelector && event.target.querySelector("#composer");
      if (box) setTimeout(function () { showCount(box); }, 0);
    },
    true,
  );
  // Registered before the listener below, so a message held back shows nowhere as waiting.
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      var box = form && form.querySelector && form.querySelector("#composer");
      if (!box || !composerCount(box).over) return;
      event.preventDefault();
      event.stopImmediatePropagation(); // React never sees it: the message is not sent.
      showCount(box);
      box.focus();
    },
    true,
  );

  // Drafts. The composer is one box for every conversation: what is typed in it and not sent
  // stays with the conversation it was typed in, and is in the box again when that one is open
  // (after a reload too: kept in this tab's sessionStorage, per user). A message being edited is
  // not a draft; the draft is back when the edit is saved or left.
  var DRAFTS_KEY = "letschat_drafts:";
  var draftsOf = {}; // user id -> {conversation id -> text}
  // {box, user, conversation}: whose draft the box holds.
  var shownDraft = null;
  // {conversation, from, at}: where Alt+↑/↓ went from the composer (and from where), which the
  // page shows a state round trip later; what is typed meanwhile is for that conversation.
  var draftOpening = null;
  // Set while a draft is put in the box: that is not typing, nor the start of a mention.
  var puttingDraft = false;
  function drafts(user) {
    if (!draftsOf[user]) {
      var stored = null;
      try {
        stored = JSON.parse(sessionStorage.getItem(DRAFTS_KEY + user) || "{}");
      } catch (e) {
        stored = null;
      }
      draftsOf[user] = stored && typeof stored === "object" ? stored : {};
    }
    return draftsOf[user];
  }
  function keepDraft(text) {
    var shown = shownDraft;
    var all = drafts(shown.user);
    if (text) all[shown.conversation] = text;
    else delete all[shown.conversation];
    try {
      sessionStorage.setItem(DRAFTS_KEY + shown.user, JSON.stringify(all));
    } catch (e) {
      // Storage full or off: the drafts last as long as the page, and none that was sent
      // since comes back with a reload.
      try {
        sessionStorage.removeItem(DRAFTS_KEY + shown.user);
      } catch (ignored) {
        /* off */
      }
    }
  }
  // The session's token (rx.LocalStorage, SessionState.token) is gone: logged out, or ended.
  function signedOut() {
    try {
      return !localStorage.getItem("letschat_token");
    } catch (e) {
      return true;
    }
  }
  // Signed out (on the login page): the drafts go with the session.
  function forgetDrafts() {
    draftsOf = {};
    shownDraft = null;
    try {
      for (var i = sessionStorage.length - 1; i >= 0; i--) {
        var key = sessionStorage.key(i);
        if (key && key.indexOf(DRAFTS_KEY) === 0) sessionStorage.removeItem(key);
      }
    } catch (e) {
      /* off */
    }
  }
  // The box holds the draft of the conversation on the page (or of `opening`, where Alt+↑/↓
  // is going).
  function showDraft(box, opening) {
    var user = box.getAttribute("data-user");
    var conversation = box.getAttribute("data-conversation");
    if (opening) draftOpening = { conversation: opening, from: conversation, at: Date.now() };
    if (draftOpening) {
      var row = document.querySelector(
        '.chat-row[data-conversation="' + CSS.escape(draftOpening.conversation) + '"]'
      );
      // Shown; or not to be: the page went elsewhere, its row went (the user left it), or too
      // long ago.
      if (conversation !== draftOpening.from || !row ||
          Date.now() - draftOpening.at > OPEN_WAIT_MS) {
        draftOpening = null;
      } else {
        conversation = draftOpening.conversation;
      }
    }
    if (!user || !conversation || box.getAttribute("data-editing") === "true") return;
    var shown = shownDraft;
    if (shown && shown.box === box && shown.user === user && shown.conversation === conversation) {
      return;
    }
    shownDraft = { box: box, user: user, conversation: conversation };
    var draft = drafts(user)[conversation] || "";
    var value = box.value;
    if (shown && shown.box === box) {
      value = draft; // What it held is the other conversation's draft, kept as it was typed.
    } else {
      value = draft + value; // A new box: anything put in it already was typed after the draft.
    }
    if (value === box.value) return;
    closeMention(); // One offered for what the box held.
    puttingDraft = true;
    try {
      setInputValue(box, value);
    } finally {
      puttingDraft = false;
    }
  }
  document.addEventListener("input", function (event) {
    var box = event.target;
    if (!box || box.id !== "composer" || !shownDraft || shownDraft.box !== box) return;
    // Keys typed after ↑, before the message to edit is in the box, are for the edit.
    if (editAsked && editAsked.box === box && Date.now() - editAsked.at <= EDIT_ANSWER_MS) return;
    if (box.getAttribute("data-editing") !== "true") keepDraft(box.value);
  });
  // Sent: no longer a draft. (Registered after the listener that holds back a message over the
  // limit, which stops the event before this one for such a message.)
  document.addEventListener(
    "submit",
    function (event) {
      var box = event.target && event.target.querySelector && event.target.querySelector("#composer");
      if (box && shownDraft && shownDraft.box === box && box.getAttribute("data-editing") !== "true") {
        keepDraft("");
      }
    },
    true,
  );

  // Typing: the others are told at most every TELL_EVERY_MS while the composer has text
  // (ChatState.typed), and that the user stopped when the composer is left or emptied without
  // sending, while they may still be shown typing (ChatState.stopped_typing). A send needs no
  // stop: the message ends the typing for everyone.
  var TELL_EVERY_MS = 3000;
  var SHOWN_MS = 6000;
  var toldTypingAt = 0;
  function typing(box) {
    var now = Date.now();
    if (box.dataset.editing === "true" || puttingDraft) return;
    if (!box.value.trim()) {
      stoppedTyping();
      return;
    }
    if (now - toldTypingAt < TELL_EVERY_MS) return;
    var button = document.getElementById("typing-on");
    if (!button) return;
    toldTypingAt = now;
    button.click();
  }
  function stoppedTyping() {
    if (!toldTypingAt) return;
    var recent = Date.now() - toldTypingAt < SHOWN_MS;
    toldTypingAt = 0;
    var button = document.getElementById("typing-off");
    if (recent && button) button.click();
  }
  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "composer") typing(event.target);
  });
  document.addEventListener("focusout", function (event) {
    if (event.target && event.target.id === "composer") stoppedTyping();
  });
  document.addEventListener(
    "submit",
    function (event) {
      var box = event.target && event.target.querySelector && event.target.querySelector("#composer");
      if (box && box.value.trim() && !composerCount(box).over) toldTypingAt = 0;
    },
    true,
  );

  // While the page is offline its sends wait in Reflex's event queue; show them meanwhile.
  function pageOffline() {
    var badge = document.getElementById("connection");
    return !!badge && badge.dataset.hop === "page";
  }

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      var box = form && form.querySelector && form.querySelector("#composer");
      var outbox = document.getElementById("offline-outbox");
      if (!box || !outbox || !pageOffline() || !box.value.trim()) return;
      var row = document.createElement("div");
      row.className = "offline-pending";
      var bubble = document.createElement("div");
      bubble.className = "message mine";
      bubble.dataset.status = "waiting";
      var body = document.createElement("p");
      body.className = "msg-body";
      body.textContent = box.value.trim(); // text, never markup
      var status = document.createElement("span");
      status.className = "msg-status";
      status.textContent = "Waiting for connection…";
      bubble.append(body, status);
      row.append(bubble);
      outbox.append(row);
    },
    true,
  );

  // Once online, each waiting message goes when the app shows it (pending or sent).
  function clearOfflineOutbox() {
    var outbox = document.getElementById("offline-outbox");
    if (!outbox || !outbox.firstChild || pageOffline()) return;
    var shown = {};
    document.querySelectorAll("#messages .message.mine .msg-body").forEach(function (el) {
      if (!outbox.contains(el)) shown[el.textContent] = true;
    });
    Array.prototype.slice.call(outbox.children).forEach(function (row) {
      var body = row.querySelector(".msg-body");
      if (!body || shown[body.textContent]) row.remove();
    });
  }

  // "@" and the start of a name offer the conversation's members (#mention-people): arrows
  // move, Enter or Tab takes one, Escape closes.
  var mention = null; // {start, people, index}
  function mentionMenu() {
    var menu = document.getElementById("mention-menu");
    if (!menu) {
      menu = document.createElement("div");
      menu.id = "mention-menu";
      menu.className = "mention-menu";
      menu.setAttribute("role", "listbox");
      menu.setAttribute("aria-label", "People to mention");
      menu.hidden = true;
      document.body.appendChild(menu);
    }
    return menu;
  }
  function closeMention() {
    mention = null;
    var box = document.getElementById("composer");
    if (box) box.removeAttribute("aria-activedescendant");
    mentionMenu().hidden = true;
  }
  function offerMention(box) {
    var before = box.value.slice(0, box.selectionStart);
    var found = /(^|[\s(])@([\w.-]*)$/.exec(before);
    if (!found) return closeMention();
    var typed = found[2].toLowerCase();
    var people = Array.prototype.map
      .call(document.querySelectorAll("#mention-people option"), function (option) {
        return { username: option.value, name: option.textContent || option.value };
      })
      .filter(function (p) {
        return p.username.indexOf(typed) === 0 || p.name.toLowerCase().indexOf(typed) === 0;
      })
      .slice(0, 8);
    if (!people.length) return closeMention();
    mention = { start: before.length - typed.length - 1, people: people, index: 0 };
    showMention(box);
  }
  function showMention(box) {
    var menu = mentionMenu();
    menu.textContent = "";
    mention.people.forEach(function (p, i) {
      var option = document.createElement("div");
      option.id = "mention-option-" + i;
      option.className = "mention-option";
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", i === mention.index ? "true" : "false");
      option.textContent = p.name + "  @" + p.username;
      option.addEventListener("mousedown", function (event) {
        event.preventDefault(); // Keep the composer's focus and caret.
        takeMention(box, i);
      });
      menu.appendChild(option);
    });
    var place = box.getBoundingClientRect();
    menu.style.left = place.left + "px";
    menu.style.bottom = window.innerHeight - place.top + 4 + "px";
    menu.hidden = false;
    box.setAttribute("aria-activedescendant", "mention-option-" + mention.index);
  }
  function takeMention(box, i) {
    var p = mention.people[i];
    var start = mention.start;
    // The "@name" typed must still be right before the caret (it may have moved).
    var typed = box.value.slice(start, box.selectionStart);
    closeMention();
    if (box.selectionStart < start || !/^@[\w.-]*$/.test(typed)) return;
    box.setRangeText("@" + p.username + " ", start, box.selectionStart, "end");
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }
  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "composer" && !puttingDraft) offerMention(event.target);
  });
  // A caret moved by a click or by keys the menu does not take: offer again for where it is.
  document.addEventListener("click", function (event) {
    if (event.target && event.target.id === "composer") offerMention(event.target);
  });
  document.addEventListener("keyup", function (event) {
    var keys = ["ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"];
    if (event.target && event.target.id === "composer" && keys.indexOf(event.key) !== -1) {
      offerMention(event.target);
    }
  });
  document.addEventListener("focusout", function (event) {
    if (event.target && event.target.id === "composer") closeMention();
  });

  // ↑ asks the app for the user's newest message, which comes back as a new composer holding it
  // (focused as it mounts, with the caret at its start). Keys typed meanwhile land in the
  // composer it replaces, or at the start of the new one before the caret is put at the end:
  // both go on the end of the message (the app's backend answers in tens of milliseconds,
  // hundreds on a busy box, and people type on at once). An Enter meanwhile saves the edit
  // then, rather than sending what was typed as a new message.
  // {box, at, enter, upTo, leftAt}: the composer ↑ was pressed in, when, where an Enter and an
  // Escape came in what was typed there.
  var editAsked = null;
  var EDIT_ANSWER_MS = 5000;
  function carryOverEditKeys(box) {
    var asked = editAsked;
    editAsked = null;
    if (!asked) return;
    if (asked.box === box || asked.box.isConnected || box.getAttribute("data-editing") !== "true" ||
        Date.now() - asked.at > EDIT_ANSWER_MS) {
      // Not replaced (no message of the user's to edit, or the one being edited already): an
      // Enter meanwhile was for what is in the box, the rest is a draft again.
      if (asked.enter && asked.box.isConnected) submitKeeping(asked.box, asked.upTo, "");
      if (shownDraft && shownDraft.box === asked.box) keepDraft(asked.box.value);
      return;
    }
    if (asked.leftAt !== undefined) {
      // Escape came first: the edit is left, and what was typed after it is the next message.
      box.value = asked.box.value.slice(asked.leftAt);
      editLeft = { box: box, at: Date.now() };
      if (asked.enter) editLeft.upTo = Math.max(0, asked.upTo - asked.leftAt);
      var cancel = document.getElementById("composer-cancel");
      if (cancel) cancel.click();
      return;
    }
    var message = box.defaultValue; // What the new composer was given.
    var value = box.value;
    var atStart = "";
    if (message && value.length > message.length && value.slice(-message.length) === message) {
      atStart = value.slice(0, value.length - message.length);
    } else if (value !== message) {
      atStart = null; // Changed some other way: left alone, with what came before.
    }
    var before = asked.box.value;
    var after = ""; // Typed after an Enter: the next message.
    if (asked.enter) {
      after = before.slice(asked.upTo) + (atStart || "");
      before = before.slice(0, asked.upTo);
      if (atStart) atStart = "";
    }
    if (before || atStart) {
      setInputValue(box, (atStart === null ? value : message) + before + (atStart || ""));
    }
    if (asked.enter) submitKeeping(box, box.value.length, after);
  }
  // Send (or save) what is in `box` up to `upTo`; what follows, and `after`, stays in it for the
  // next message (the form's reset, which empties it, is done when requestSubmit returns).
  function submitKeeping(box, upTo, after) {
    var whole = box.value;
    var rest = whole.slice(upTo) + after;
    box.value = whole.slice(0, upTo);
    if (composerCount(box).over) { // Held back: it stays whole, with what followed.
      setInputValue(box, whole + after);
      return;
    }
    if (box.value.trim() && box.form) box.form.requestSubmit();
    if (rest) setInputValue(box, rest);
  }

  // Saving an edit (Enter) or leaving it (Escape) also comes back as a new composer, the empty
  // one for a new message. The editing one empties at once (the form's reset after a submit
  // would put the message back in it), and what is typed in it meanwhile is the next message:
  // it moves to the new composer.
  // {box, at, upTo, saved, typed}: the editing composer that was saved or left, when, where in
  // what was typed an Enter came (an Escape typed before the edit arrived left it), whether it
  // was saved (the form was reset) and whether anything was typed in it since.
  var editLeft = null;
  // The composer is always replaced after a save or Escape, however late; past this the page
  // has surely moved on (a reconnection, say) and the keys stay where they are.
  var EDIT_LEFT_MS = 60000;
  function leaveEdit(box) {
    editLeft = { box: box, at: Date.now() };
    box.value = "";
    showCount(box);
  }
  function keepKeysAfterEdit() {
    var left = editLeft;
    var box = document.getElementById("composer");
    if (left && box === left.box && left.saved && !left.typed && box.value &&
        box.value === box.defaultValue) {
      // The app drew the saved composer again before replacing it, and React gave it back its
      // default value, the message: a text box emptied by a reset follows its default until
      // it is typed in or set. That is not typed; set, it stays empty.
      box.value = "";
    }
    if (!left || !box || box === left.box) {
      if (left && Date.now() - left.at > EDIT_LEFT_MS) editLeft = null;
      return;
    }
    editLeft = null;
    if (left.box.isConnected || box.getAttribute("data-editing") === "true") return;
    var typed = left.box.value;
    if (!typed || box.value || Date.now() - left.at > EDIT_LEFT_MS) return;
    setInputValue(box, typed);
    if (left.upTo !== undefined) submitKeeping(box, left.upTo, ""); // An Enter typed then.
  }
  document.addEventListener(
    "submit",
    function (event) {
      var box = event.target && event.target.querySelector && event.target.querySelector("#composer");
      if (!box || box.getAttribute("data-editing") !== "true") return;
      editLeft = { box: box, at: Date.now(), saved: true };
      box.defaultValue = ""; // What the form's reset after the submit leaves in it.
    },
    true,
  );
  document.addEventListener("input", function (event) {
    if (editLeft && event.target === editLeft.box) editLeft.typed = true;
  });

  // Enter sends, Shift+Enter is a newline; Escape stops editing or answering a message, and
  // ↑ in an empty composer edits your newest message.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!target || target.id !== "composer" || event.isComposing) return;
    var arrow = event.key === "ArrowUp" || event.key === "ArrowDown";
    // Alt+↑/↓ switch conversations (below); no modified arrow moves a menu or starts an edit.
    if (arrow && (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey)) return;
    if (mention) {
      var moves = { ArrowDown: 1, ArrowUp: -1 };
      if (event.key in moves) {
        event.preventDefault();
        var count = mention.people.length;
        mention.index = (mention.index + moves[event.key] + count) % count;
        showMention(target);
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        takeMention(target, mention.index);
        return;
      }
      if (event.key === "Escape") {
        event.preventDefault();
        closeMention();
        return;
      }
    }
    if (event.key === "Escape") {
      if (editAsked && editAsked.box === target && Date.now() - editAsked.at <= EDIT_ANSWER_MS) {
        // Leaves the edit once it is here: what was typed so far goes with it, as it would.
        event.preventDefault();
        editAsked.leftAt = target.value.length;
        return;
      }
      var cancel = document.getElementById("composer-cancel");
      if (cancel) {
        event.preventDefault();
        if (target.getAttribute("data-editing") === "true") leaveEdit(target);
        cancel.click();
      }
      return;
    }
    if (event.key === "ArrowUp" && !target.value) {
      var last = document.getElementById("edit-last");
      if (last) {
        event.preventDefault();
        editAsked = { box: target, at: Date.now() };
        last.click();
      }
      return;
    }
    if (event.key !== "Enter" || event.shiftKey) return;
    event.preventDefault();
    if (editAsked && editAsked.box === target && Date.now() - editAsked.at <= EDIT_ANSWER_MS) {
      // Saves the edit once the message is in the composer; what is typed next is not in it.
      editAsked.enter = true;
      editAsked.upTo = target.value.length;
      return;
    }
    if (target.value.trim() && target.form) target.form.requestSubmit();
  });

  // The emoji picker's search: only the emoji whose names hold what is typed (":tada" too).
  document.addEventListener("input", function (event) {
    // Radix puts the class on the field's root, around the <input>.
    var box = event.target;
    if (!box || !box.closest || !box.closest(".emoji-filter")) return;
    var wanted = box.value.trim().toLowerCase().replace(/:/g, "");
    var picker = box.closest("[data-radix-popper-content-wrapper]") || document;
    picker.querySelectorAll(".emoji-grid .emoji-choice").forEach(function (choice) {
      choice.hidden = !!wanted && choice.dataset.name.indexOf(wanted) === -1;
    });
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

  // Nobody sees the toasts of a hidden tab, and each one costs it style, layout and animation
  // for every message: the toaster is not rendered while the page is hidden (letschat.css).
  // Its toasts stay, and show when the page does, unless they were read meanwhile.
  function markHidden() {
    document.documentElement.toggleAttribute(
      "data-page-hidden",
      document.visibilityState !== "visible",
    );
  }
  markHidden();
  document.addEventListener("visibilitychange", markHidden);
  document.addEventListener("visibilitychange", reportSeen);
  window.addEventListener("focus", reportSeen);
  window.addEventListener("blur", reportSeen);
  document.addEventListener("scroll", reportSeen, true); // capture: the list scrolls, not the page

  // Away: the tab has been hidden, or nobody used it for AWAY_AFTER_MS; back at the next use
  // while it shows. The state hears of it (ChatState.set_away) only when it changes.
  var AWAY_AFTER_MS = window.LETSCHAT_AWAY_AFTER_MS || 5 * 60 * 1000;
  var lastUsed = Date.now();
  var reportedAway = null;
  function reportAway() {
    var away = document.visibilityState !== "visible" || Date.now() - lastUsed >= AWAY_AFTER_MS;
    if (away === reportedAway) return;
    var button = document.getElementById(away ? "away-on" : "away-off");
    if (!button) return;
    reportedAway = away;
    button.click();
  }
  function used() {
    lastUsed = Date.now();
    if (reportedAway) reportAway();
  }
  ["keydown", "pointerdown", "pointermove", "wheel", "touchstart"].forEach(function (name) {
    document.addEventListener(name, used, { capture: true, passive: true });
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") lastUsed = Date.now();
    reportAway();
  });
  setInterval(reportAway, Math.min(15000, AWAY_AFTER_MS / 4));

  // The keyboard, besides the composer's keys:
  // - Ctrl+K / Cmd+K opens the quick switcher; in it ↑/↓ choose and Enter opens.
  // - Alt+↑ / Alt+↓ open the conversation above or below the open one in the sidebar.
  // - In the sidebar, ↑/↓ (Home/End) move between conversations and Enter or Space opens one.
  // - A dialog that closes gives the focus back to where it was before it opened.
  function chatRows() {
    return Array.prototype.slice.call(document.querySelectorAll("#sidebar .chat-row"));
  }
  function focusRow(rows, index) {
    var row = rows[Math.max(0, Math.min(rows.length - 1, index))];
    if (!row) return;
    rows.forEach(function (other) { other.setAttribute("tabindex", other === row ? "0" : "-1"); });
    row.focus();
  }
  function switchItems() {
    return Array.prototype.slice.call(document.querySelectorAll("#switcher .switch-item"));
  }
  // Focus the input `id` once its dialog is open. Radix does so itself on a dialog's first
  // opening, but not when it opens again during its closing animation.
  function focusWhenOpen(id, frames) {
    requestAnimationFrame(function () {
      var input = document.getElementById(id);
      var dialog = input && input.closest('[role="dialog"]');
      if (dialog && dialog.getAttribute("data-state") === "open") {
        if (document.activeElement !== input) input.focus();
      } else if ((frames || 0) < 120) {
        focusWhenOpen(id, (frames || 0) + 1);
      }
    });
  }
  function typingIn(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }
  var switchActive = 0;
  var switchEnterPending = false;
  var switchMoves = 0; // ↑/↓ typed before the switcher opened, for its matches when they come.
  function switchResultsFor(input) {
    var list = document.getElementById("switcher-list");
    return !!list && list.dataset.query === input.value;
  }
  function markSwitchActive() {
    var items = switchItems();
    var input = document.getElementById("switcher-input");
    if (!input) {
      switchEnterPending = false;
      sendOpening(); // A Ctrl+K that waited for that Enter's choice.
      return;
    }
    if (switchMoves && items.length && switchResultsFor(input)) {
      switchActive = ((switchMoves % items.length) + items.length) % items.length;
      switchMoves = 0;
    }
    if (switchEnterPending && switchResultsFor(input)) {
      switchEnterPending = false;
      if (items[switchActive]) items[switchActive].click();
      else typeAhead = null; // Nothing opens: nothing to type into.
      sendOpening();
      return;
    }
    switchActive = Math.max(0, Math.min(items.length - 1, switchActive));
    items.forEach(function (item, i) {
      item.setAttribute("aria-selected", i === switchActive ? "true" : "false");
    });
    var active = items[switchActive];
    if (active) {
      input.setAttribute("aria-activedescendant", active.id);
      active.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
    if (!switchEnterPending) sendOpening(); // Its Enter was overtaken (by a paste, say).
  }
  // Ctrl+K's switcher and "/"'s search open a state round trip after the key. The keys typed
  // meanwhile are kept for the dialog, not typed into the composer (where Enter would send
  // them) nor into a dialog that is closing, and are given to its input once the dialog opened
  // for this key is on the page (its opener shows how many times it was opened). An Enter
  // among them is the input's Enter; an Escape closes the dialog again.
  var OPEN_WAIT_MS = 10000;
  var DIALOGS = {
    switcher: {
      opener: "open-switcher",
      input: "switcher-input",
      // Chooses the first match once the matches are for what was typed.
      enter: function (input, ahead) {
        switchEnterPending = true;
        typeAhead = ahead;
      },
    },
    search: {
      opener: "search-all",
      input: "search-input",
      enter: function (input) { if (input.form) input.form.requestSubmit(); },
    },
  };
  var opening = null; // {dialog, after, at, sent, text, enter, escape, moves, ahead}
  function openings(dialog) {
    var opener = document.getElementById(dialog.opener);
    return opener ? Number(opener.dataset.opened || 0) : 0;
  }
  function waitingToOpen() {
    if (opening && Date.now() - opening.at > OPEN_WAIT_MS) opening = null;
    return opening;
  }
  // Open `dialog` now, or (`later`) when sendOpening() is called.
  function openDialog(dialog, later) {
    if (waitingToOpen()) return; // One is on its way: the keys are for it.
    // `text` and `enter` as typed before an Enter; what follows it is `ahead`'s.
    opening = {
      dialog: dialog, after: openings(dialog), at: Date.now(), sent: false,
      text: "", enter: false, escape: false, moves: 0, ahead: keysAhead(),
    };
    typeAhead = null;
    if (!later) sendOpening();
  }
  function sendOpening() {
    var opener = opening && document.getElementById(opening.dialog.opener);
    if (!opener || opening.sent) return;
    opening.sent = true;
    if (opening.dialog === DIALOGS.switcher) switchActive = 0;
    opener.click();
    focusWhenOpen(opening.dialog.input);
  }
  // Put `value` in a text box (an <input> or the composer's <textarea>), the caret at its end,
  // and tell the page as typing would.
  function setInputValue(input, value) {
    // Through the prototype's setter, so that React sees the change the input event reports.
    Object.getOwnPropertyDescriptor(Object.getPrototypeOf(input), "value").set.call(input, value);
    input.setSelectionRange(value.length, value.length);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function giveDialogItsKeys() {
    var waiting = waitingToOpen();
    if (!waiting || !waiting.sent || openings(waiting.dialog) <= waiting.after) return;
    var input = document.getElementById(waiting.dialog.input);
    var dialog = input && input.closest('[role="dialog"]');
    if (!dialog || dialog.getAttribute("data-state") !== "open") return;
    opening = null;
    input.focus();
    if (waiting.escape) {
      input.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true, cancelable: true }));
      return;
    }
    if (waiting.text) setInputValue(input, input.value + waiting.text);
    if (waiting.dialog === DIALOGS.switcher) switchMoves = waiting.moves;
    if (waiting.enter) waiting.dialog.enter(input, waiting.ahead);
  }
  // Keys typed after the switcher's Enter are for the composer of what it opens, a state round
  // trip later (when focusComposer is called): "Ctrl+K, bob, Enter, see you, Enter" sends "see
  // you" to Bob. They are kept while nothing else has the focus.
  var typeAhead = null; // {text, enter, rest, at}: rest is what was typed after an Enter.
  function keysAhead() {
    return { text: "", enter: false, rest: "", at: Date.now() };
  }
  function aheadNow() {
    if (typeAhead && Date.now() - typeAhead.at > OPEN_WAIT_MS) typeAhead = null;
    var el = document.activeElement;
    var free = !el || el === document.body || el.id === "switcher-input";
    return free ? typeAhead : null;
  }
  function landTypeAhead(box) {
    var ahead = typeAhead;
    typeAhead = null;
    if (!ahead || Date.now() - ahead.at > OPEN_WAIT_MS || !(ahead.text || ahead.enter)) return;
    if (box.getAttribute("data-editing") === "true") return;
    var draft = box.value; // Left from before: it is not sent with what was typed ahead.
    if (ahead.enter && draft) {
      box.value = ahead.text;
      submitKeeping(box, ahead.text.length, "");
      box.value = draft + box.value + ahead.rest;
    } else {
      box.value = draft + ahead.text;
      if (ahead.enter) submitKeeping(box, box.value.length, ahead.rest);
    }
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }
  // One key for `ahead`; false for a key it does not take.
  function keepKey(ahead, event) {
    var key = event.key;
    var text = ahead.enter ? "rest" : "text";
    if (key === "Backspace") {
      ahead[text] = Array.from(ahead[text]).slice(0, -1).join("");
    } else if (key === "Enter" && !ahead.enter && !event.shiftKey) {
      ahead.enter = true;
    } else if (key === "Enter" || Array.from(key).length === 1) {
      ahead[text] += key === "Enter" ? "\n" : key;
    } else {
      return false;
    }
    return true;
  }
  window.addEventListener(
    "keydown",
    function (event) {
      // Ctrl+Alt is AltGr on Windows: its characters are typed, not shortcuts.
      if (event.isComposing || event.metaKey || (event.ctrlKey && !event.altKey)) return;
      var waiting = waitingToOpen();
      var ahead = waiting ? null : aheadNow();
      var key = event.key;
      if (waiting && !waiting.escape) { // After an Escape the keys go where they would have.
        if (key === "ArrowUp" || key === "ArrowDown") {
          // Held back (in the composer ↑ would start an edit behind the dialog); before an
          // Enter they move the switcher's choice once its matches are in.
          if (!waiting.enter) waiting.moves += key === "ArrowDown" ? 1 : -1;
        } else if (waiting.enter) {
          if (!keepKey(waiting.ahead, event)) return; // (The search has no use for them.)
        } else if (key === "Escape") {
          waiting.escape = true;
        } else if (!keepKey(waiting, event)) {
          return;
        }
      } else if (ahead) {
        if (key === "Escape") {
          typeAhead = null;
          return;
        }
        if (!keepKey(ahead, event)) return;
      } else {
        return;
      }
      used();
      event.preventDefault();
      event.stopPropagation();
    },
    true,
  );

  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "switcher-input") {
      switchActive = 0;
      switchMoves = 0;
      switchEnterPending = false;
    }
  });
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey && !typingIn(target)) {
      if (!document.getElementById("search-all")) return;
      event.preventDefault();
      openDialog(DIALOGS.search);
      return;
    }
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") {
      if (!document.getElementById("open-switcher")) return;
      event.preventDefault();
      // An Enter still waiting for its matches chooses first, then the switcher opens again.
      openDialog(DIALOGS.switcher, switchEnterPending);
      return;
    }
    if (target && target.id === "switcher-input" && !event.isComposing) {
      var items = switchItems();
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        switchActive += event.key === "ArrowDown" ? 1 : -1;
        if (switchActive < 0) switchActive = items.length - 1;
        if (switchActive >= items.length) switchActive = 0;
        markSwitchActive();
      } else if (event.key === "Enter") {
        event.preventDefault();
        typeAhead = keysAhead();
        if (switchResultsFor(target)) {
          if (items[switchActive]) items[switchActive].click();
          else typeAhead = null;
        } else {
          switchEnterPending = true; // Chosen once the matches are for what is typed.
        }
      }
      return;
    }
    if (event.altKey && !event.ctrlKey && !event.metaKey &&
        (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      var rows = chatRows();
      if (!rows.length) return;
      event.preventDefault();
      var open = rows.findIndex(function (row) { return row.getAttribute("aria-current") === "true"; });
      var next = open < 0 ? 0 : open + (event.key === "ArrowDown" ? 1 : -1);
      if (next >= 0 && next < rows.length) {
        // Typing on in the composer: that is for the conversation it goes to (an edit going
        // on ends there, and what is typed since goes on to the next composer).
        if (target && target.id === "composer") {
          if (target.getAttribute("data-editing") === "true") leaveEdit(target);
          else showDraft(target, rows[next].dataset.conversation);
        }
        rows[next].click();
      }
      return;
    }
    if (target && target.classList && target.classList.contains("chat-row")) {
      var list = chatRows();
      var at = list.indexOf(target);
      var moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: list.length - 1 };
      if (event.key in moves) {
        event.preventDefault();
        focusRow(list, moves[event.key]);
      } else if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        target.click();
      }
    }
  });
  // Where the focus was outside any dialog, to give it back when the dialog closes.
  var focusBeforeDialog = null;
  var dialogOpen = false;
  function inDialog(el) {
    return !!(el && el.closest && el.closest('[role="dialog"], [role="alertdialog"], [role="menu"]'));
  }
  document.addEventListener("focusin", function (event) {
    if (!inDialog(event.target)) focusBeforeDialog = event.target;
  });
  function watchDialogs() {
    var open = !!document.querySelector('[role="dialog"], [role="alertdialog"]');
    if (open === dialogOpen) return;
    dialogOpen = open;
    if (open) return;
    setTimeout(function () {
      // Only where the focus was dropped: not if another dialog opened meanwhile, nor if the
      // closed one gave it back itself (to its trigger).
      if (document.querySelector(OPEN_DIALOG)) return;
      if (typeAhead) return; // The conversation chosen is opening: focusComposer will do it.
      var active = document.activeElement;
      if (active && active !== document.body) return;
      var back = focusBeforeDialog;
      if (back && back.isConnected && !back.hidden && back.getAttribute("aria-hidden") !== "true") {
        back.focus();
      } else {
        var composer = document.getElementById("composer");
        if (composer) composer.focus();
      }
    }, 0);
  }
  function keepOneRowTabbable() {
    var rows = chatRows();
    if (rows.length && !rows.some(function (row) { return row.getAttribute("tabindex") === "0"; })) {
      rows[0].setAttribute("tabindex", "0");
    }
  }

  // "Jump to newest" shows while the open conversation is scrolled up from its newest
  // messages (or, set by the state, while its window stops short of them).
  function markScrolledUp() {
    var list = messages();
    var up = !!list && list.scrollTop <= -NEAR_NEWEST_PX;
    if (document.documentElement.hasAttribute("data-scrolled-up") !== up) {
      document.documentElement.toggleAttribute("data-scrolled-up", up);
    }
  }
  document.addEventListener("scroll", markScrolledUp, true);

  new MutationObserver(function () {
    syncTitle();
    reportSeen();
    reportAway();
    watchDialogs();
    keepOneRowTabbable();
    giveDialogItsKeys();
    keepKeysAfterEdit();
    var composer = document.getElementById("composer");
    if (composer) showDraft(composer); // After the keys above: they follow the draft.
    else if (document.getElementById("login-form") && signedOut()) forgetDrafts();
    markSwitchActive();
    markScrolledUp();
    clearOfflineOutbox();
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
    attributeFilter: [
      "content", "data-query", "data-opened", "data-state", "data-conversation", "data-user",
    ],
  });
})();

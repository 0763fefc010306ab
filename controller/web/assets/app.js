/* The web view's script: one file for every page (the path says which).
   Data comes from /api/* as JSON; live changes from /api/events/stream
   (Server-Sent Events): a page refreshes what it shows when an event
   concerns it, never on a timer. Text goes into the page as text nodes,
   never as HTML. */
"use strict";

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (r.status === 401) {
    location.reload(); /* the session ended: the server's page says how to sign in */
    throw new Error("not signed in");
  }
  if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
  return r.json();
}

function when(ms) {
  if (!ms) return "-";
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

/* Bytes in binary units, as `df -h` writes them: "1.2 GiB". */
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? String(n) : n >= 10 ? String(Math.round(n)) : n.toFixed(1)) + " " + units[i];
}

/* An agent's cache use: "-" before it reported, "1.2 GiB of 20 GiB" with a
   limit, "1.2 GiB" without. */
function cacheUse(r) {
  if (r.cache_bytes === null || r.cache_bytes === undefined) return "-";
  if (!r.cache_limit_bytes) return bytes(r.cache_bytes);
  return bytes(r.cache_bytes) + " of " + bytes(r.cache_limit_bytes);
}

function status(text) {
  $("#status").textContent = text;
}

/* Calls fn at most once per `ms` however many times it is asked. */
function coalesce(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}

/* The live feed: onEvent(e) for every event stored from now on, and
   onChange() when install states change without an event (an install
   dispatched, asked for, cancelled or timed out). */
function live(onEvent, after, onChange) {
  const url = "/api/events/stream" + (after !== undefined ? "?after=" + after : "");
  const es = new EventSource(url);
  es.onmessage = (m) => onEvent(JSON.parse(m.data));
  if (onChange) es.addEventListener("change", () => onChange());
  es.onopen = () => document.body.dataset.live = "on";
  es.onerror = () => document.body.dataset.live = "reconnecting";
  return es;
}

function table(head, rows) {
  return el("div", { class: "table" },
    el("table", {},
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows)));
}

/* ---- hosts ---- */

const STATES = ["none", "requested", "dispatched", "booting", "installing", "installed",
                "failed", "cancelled", "timed_out"];

function hostRow(h, selectable, checked) {
  const bar = el("progress", { max: "100", value: String(h.percent || 0),
                               "aria-label": h.host + " progress" });
  const pick = selectable
    ? el("td", {}, el("input", { type: "checkbox", name: "pick", value: h.host,
                                 "aria-label": "select " + h.host, checked: checked ? "" : null }))
    : null;
  return el("tr", { "data-host": h.host }, pick,
    el("td", {}, h.install_id
      ? el("a", { href: "/install?host=" + encodeURIComponent(h.host) }, h.host) : h.host),
    el("td", {}, h.rack),
    el("td", { class: "state-" + h.state, "data-state": h.state }, h.state),
    el("td", {}, h.phase || "-"),
    el("td", {}, bar, " ", (h.percent || 0) + "%"),
    el("td", {}, h.profile || "-"),
    el("td", { class: h.power ? "power-" + h.power : null, "data-power": h.power || null,
               title: h.power ? "read " + when(h.power_updated) : "never read from its BMC" },
       h.power || "-"),
    el("td", {}, when(h.updated)),
    el("td", { class: "msg" }, h.message || ""));
}

/* POST a write; the answer's JSON, whatever its status. */
async function postJSON(url, body) {
  const r = await fetch(url, { method: "POST", credentials: "same-origin",
                               headers: { "Content-Type": "application/json" },
                               body: JSON.stringify(body) });
  const text = await r.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    return { ok: false, message: text.trim() || r.statusText, rows: [] };
  }
}

async function hostsPage(main) {
  const q = new URLSearchParams(location.search);
  const operator = document.body.dataset.role === "operator";
  const stateSel = el("select", { name: "state", id: "f-state" }, el("option", { value: "" }, "any"),
    ...STATES.map((s) => el("option", { value: s }, s)));
  stateSel.value = q.get("state") || "";
  const field = (name, label, attrs) => el("label", {}, label,
    el("input", Object.assign({ name, id: "f-" + name, value: q.get(name) || "" }, attrs || {})));
  const form = el("form", { class: "filters", role: "search" },
    field("prefix", "Name starts with", { autocomplete: "off" }),
    field("rack", "Rack"),
    el("label", {}, "State", stateSel),
    field("phase", "Phase"),
    el("button", { type: "submit" }, "Filter"));
  const body = el("div", {});
  const moreButton = el("button", { type: "button", id: "more", hidden: "" }, "Next page");
  /* Operators: install or cancel the selected hosts, after a confirmation.
     The controller checks the role again and audits every write. */
  const profile = el("input", { name: "profile", id: "a-profile", autocomplete: "off" });
  const installButton = el("button", { type: "button", id: "install" }, "Install…");
  const cancelButton = el("button", { type: "button", id: "cancel", class: "danger" }, "Cancel…");
  const result = el("p", { class: "status", id: "result", role: "status" });
  const actions = operator
    ? el("div", { class: "filters", role: "group", "aria-label": "Actions on the selected hosts" },
         el("label", {}, "Profile", profile), installButton, cancelButton)
    : null;
  main.append(el("h1", {}, "Hosts"), form, actions, operator ? result : null,
              el("p", { class: "status", id: "status", "aria-live": "polite" }),
              body, el("div", { class: "pager" }, moreButton));
  let after = "";
  let shown = [];

  function query(extra) {
    const p = new URLSearchParams();
    for (const k of ["prefix", "rack", "state", "phase"]) {
      const v = q.get(k);
      if (v) p.set(k, v);
    }
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    return "/api/hosts?" + p.toString();
  }

  function render(more) {
    const picked = new Set(selected());
    const head = ["Host", "Rack", "State", "Phase", "Progress", "Profile", "Power", "Updated",
                  "Message"];
    body.replaceChildren(table(operator ? ["Select"].concat(head) : head,
                               shown.map((h) => hostRow(h, operator, picked.has(h.host)))));
    after = shown.length ? shown[shown.length - 1].host : "";
    moreButton.hidden = !more;
    status(shown.length + " host" + (shown.length === 1 ? "" : "s") + (more ? ", more follow" : ""));
  }

  async function load(append) {
    try {
      const d = await getJSON(query(append ? { after, limit: "100" } : { limit: "100" }));
      shown = append ? shown.concat(d.hosts) : d.hosts;
      render(d.more);
    } catch (e) {
      status("Cannot load the hosts: " + e.message);
    }
  }

  /* The rows shown, fresh, in one request, after events that concern them
     (and after any event while filtering by state or phase: a host may
     enter or leave the list). */
  const refresh = coalesce(async () => {
    try {
      const d = await getJSON(query({ limit: String(Math.max(100, Math.min(1000, shown.length))) }));
      shown = d.hosts;
      render(d.more);
    } catch (e) {
      status("Cannot refresh: " + e.message);
    }
  }, 250);

  function selected() {
    return Array.from(body.querySelectorAll('input[name="pick"]:checked')).map((c) => c.value);
  }

  async function act(install) {
    const hosts = selected();
    if (!hosts.length) {
      result.textContent = "Select hosts first.";
      return;
    }
    const what = install ? "Install profile " + profile.value.trim() + " on" : "Cancel the installs of";
    if (install && !profile.value.trim()) {
      result.textContent = "Name the profile to install.";
      profile.focus();
      return;
    }
    const list = hosts.slice(0, 10).join(", ") + (hosts.length > 10 ? ", …" : "");
    if (!confirm(what + " " + hosts.length + " host" + (hosts.length === 1 ? "" : "s") + ": " + list + "?")) {
      return;
    }
    const d = await postJSON(install ? "/api/install" : "/api/cancel",
                             install ? { hosts, profile: profile.value.trim() } : { hosts });
    const skipped = (d.rows || []).filter((r) => r.skipped && r.skipped !== "none").map((r) => r.host + ": " + r.message);
    const done = (d.rows || []).filter((r) => !r.skipped || r.skipped === "none").map((r) => r.host);
    result.textContent = (d.ok ? "Done" : "Not done") + (d.message ? ": " + d.message : "") +
      (done.length ? (install ? " — install requested: " : " — cancelled: ") + done.join(", ") : "") +
      (skipped.length ? " — " + skipped.join("; ") : "");
    refresh();
  }

  if (operator) {
    installButton.addEventListener("click", () => act(true));
    cancelButton.addEventListener("click", () => act(false));
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const k of ["prefix", "rack", "state", "phase"]) {
      const v = form.elements[k].value.trim();
      if (v) p.set(k, v);
    }
    history.replaceState(null, "", "/hosts" + (p.toString() ? "?" + p : ""));
    for (const k of ["prefix", "rack", "state", "phase"]) {
      if (p.get(k)) q.set(k, p.get(k)); else q.delete(k);
    }
    load(false);
  });
  moreButton.addEventListener("click", () => load(true));
  await load(false);
  live((e) => {
    if (shown.some((h) => h.host === e.host) || q.get("state") || q.get("phase")) refresh();
  }, undefined, refresh);
}

/* ---- racks ---- */

async function racksPage(main) {
  const body = el("div", {});
  main.append(el("h1", {}, "Racks"), el("p", { class: "status", id: "status", "aria-live": "polite" }), body);
  async function load() {
    try {
      const d = await getJSON("/api/racks");
      const now = Date.now();
      body.replaceChildren(table(["Rack", "Agent", "", "Last seen", "Generation (acked / current)",
                                  "Version", "Cache", "Hosts", "Active installs"],
        d.racks.map((r) => {
          const online = r.last_seen && now - r.last_seen < 120000;
          return el("tr", { "data-rack": r.rack },
            el("td", {}, r.rack),
            el("td", {}, (r.agent || "-") + (r.agents > 1 ? " +" + (r.agents - 1) + " more" : "")),
            el("td", { class: online ? "online" : "offline" }, online ? "online" : "offline"),
            el("td", { title: when(r.last_seen) }, ago(r.last_seen)),
            el("td", {}, r.acked_generation + " / " + r.generation),
            el("td", {}, r.version || "-"),
            el("td", { class: "cache", title: r.status_time ? "reported " + when(r.status_time) : "not reported" },
               r.cache_limit_bytes
                 ? el("progress", { max: String(r.cache_limit_bytes), value: String(r.cache_bytes || 0),
                                    "aria-label": r.rack + " cache use" })
                 : null,
               r.cache_limit_bytes ? " " : null, cacheUse(r)),
            el("td", {}, r.hosts), el("td", {}, r.active_installs));
        })));
      status(d.racks.length + " rack" + (d.racks.length === 1 ? "" : "s"));
    } catch (e) {
      status("Cannot load the racks: " + e.message);
    }
  }
  await load();
  const reload = coalesce(load, 1000);
  live(reload, undefined, reload);
}

/* ---- events, and one host's install ---- */

function eventItem(e) {
  return el("li", { "data-seq": String(e.seq) }, el("time", {}, when(e.time)),
    el("a", { href: "/install?host=" + encodeURIComponent(e.host) }, e.host), " ",
    el("strong", {}, e.phase || "-"), e.percent ? " " + e.percent + "%" : "",
    e.message ? " — " + e.message : "");
}

function duration(ms) {
  if (ms < 1000) return ms + " ms";
  const s = Math.round(ms / 1000);
  if (s < 120) return s + " s";
  return Math.floor(s / 60) + " min " + (s % 60) + " s";
}

/* One install's phases in order, with when each came and how long after
   the one before it (the time spent in that step). */
function timeline(events) {
  const rows = [];
  let prev = null;
  for (const e of events) {
    rows.push(el("tr", {}, el("td", {}, e.phase || "-"), el("td", {}, when(e.time)),
      el("td", {}, prev ? duration(e.time - prev.time) : "-"),
      el("td", {}, e.percent ? e.percent + "%" : ""), el("td", { class: "msg" }, e.message || "")));
    prev = e;
  }
  const total = events.length > 1 ? duration(events[events.length - 1].time - events[0].time) : "-";
  return el("section", { "aria-label": "Timeline" },
    el("h2", {}, "Latest install: " + (events[0] ? events[0].install_id : "-") + " (" + total + ")"),
    table(["Phase", "At", "After", "Progress", "Message"], rows));
}

/* The answer file of the host's active install as its agent serves it,
   the token redacted by the controller (never sent to the browser). */
async function answerSection(host) {
  const heading = el("h2", {}, "Answer file as rendered (token redacted)");
  const section = el("section", { "aria-label": "Answer file", id: "answer" }, heading);
  try {
    const r = await fetch("/api/answer?host=" + encodeURIComponent(host),
                          { credentials: "same-origin", headers: { Accept: "text/plain" } });
    const text = await r.text();
    if (!r.ok) {
      section.append(el("p", { class: "status" }, "Not shown: " + (text.trim() || r.statusText)));
      return section;
    }
    const kind = r.headers.get("X-Rackboot-Answer-Kind") === "preseed" ? "Preseed" : "Kickstart";
    heading.textContent = kind + " as rendered (token redacted)";
    /* Focusable: it scrolls, and keyboard users must be able to scroll it. */
    section.append(el("pre", { class: "answer", tabindex: "0", "aria-label": kind }, text));
  } catch (e) {
    section.append(el("p", { class: "status" }, "Cannot load it: " + e.message));
  }
  return section;
}

async function eventsPage(main, host) {
  const list = el("ol", { class: "events", reversed: "" });
  main.append(el("h1", {}, host ? "Install of " + host : "Events"),
              el("p", { class: "status", id: "status", "aria-live": "polite" }), list);
  let last = 0;
  try {
    const d = await getJSON("/api/events?tail=100" + (host ? "&host=" + encodeURIComponent(host) : ""));
    for (const e of d.events) list.prepend(eventItem(e));
    last = d.last_seq;
    if (host) {
      /* The latest install's phases, oldest first, above the list. */
      const id = d.events.length ? d.events[d.events.length - 1].install_id : "";
      const mine = d.events.filter((e) => e.install_id && e.install_id === id);
      if (mine.length) list.before(timeline(mine));
      list.before(await answerSection(host), el("h2", {}, "Events"));
    }
    status(host ? "Phases of its installs, newest first; live." : "The latest events, newest first; live.");
  } catch (e) {
    status("Cannot load the events: " + e.message);
  }
  live((e) => {
    if (host && e.host !== host) return;
    list.prepend(eventItem(e));
    while (list.children.length > 500) list.lastChild.remove();
  }, last);
}

/* ---- the page ---- */

async function main() {
  const page = location.pathname.replace(/^\//, "") || "hosts";
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page");
  }
  const m = $("#main");
  m.replaceChildren();
  try {
    const me = await getJSON("/api/me");
    $("#who").textContent = me.who + " (" + me.role + ")";
    document.body.dataset.role = me.role;
  } catch (e) {
    /* the pages still work; the header just says nothing */
  }
  if (page === "racks") return racksPage(m);
  if (page === "events") return eventsPage(m);
  if (page === "install") return eventsPage(m, new URLSearchParams(location.search).get("host") || "");
  return hostsPage(m);
}

main();

// Search in the page, with no server. The query lives in the address
// (index.html?q=words&from=YYYY-MM-DD&until=YYYY-MM-DD&media=1), so a search
// can be linked. The index is search-index.js, a script that sets
// window.ferrySearchIndex (pages opened from file:// may load scripts but
// not fetch files); it is loaded only when there is something to look for,
// so the first page stays small. Words match the start of words in the text,
// content warning and alt text, ignoring case and accents; "quoted phrases"
// match as written; every term must match.
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var q = params.get("q") || "";
  var from = params.get("from") || "";
  var until = params.get("until") || "";
  var media = params.get("media") === "1";
  var form = document.querySelector("form.search");
  if (form) {
    form.elements.q.value = q;
    form.elements.from.value = from;
    form.elements.until.value = until;
    form.elements.media.checked = media;
    if (from || until || media) form.querySelector(".filters").open = true;
  }
  if (!q.trim() && !from && !until && !media) return;

  var section = document.getElementById("results");
  var list = document.getElementById("results-list");
  var count = document.getElementById("results-count");
  var more = document.getElementById("results-more");
  section.hidden = false;
  document.getElementById("timeline").hidden = true;
  count.textContent = "Searching…";

  var script = document.createElement("script");
  script.src = "search-index.js";
  script.onload = function () { run(window.ferrySearchIndex || { posts: [] }); };
  script.onerror = function () { count.textContent = "The search index (search-index.js) could not be loaded."; };
  document.head.appendChild(script);

  function fold(s) {
    return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function terms(s) {
    var out = [], re = /"([^"]*)"?|([^\s"]+)/g, m;
    while ((m = re.exec(s))) {
      var t = fold((m[1] !== undefined ? m[1] : m[2]).trim());
      if (t) out.push({ text: t, phrase: m[1] !== undefined });
    }
    return out;
  }

  var wordChar = /[\p{L}\p{N}]/u;
  function has(hay, t) {
    for (var i = hay.indexOf(t.text); i >= 0; i = hay.indexOf(t.text, i + 1)) {
      if (t.phrase || i === 0 || !wordChar.test(hay.charAt(i - 1))) return true;
    }
    return false;
  }

  function run(idx) {
    var ts = terms(q);
    var hits = idx.posts.filter(function (p) {
      var day = p[1].slice(0, 10);
      if (media && !p[2]) return false;
      if (from && day < from) return false;
      if (until && day > until) return false;
      var hay = fold(p[4] + "\n" + p[5]);
      return ts.every(function (t) { return has(hay, t); });
    });
    var what = q.trim() ? "“" + q.trim() + "”" : "the filters";
    count.textContent = hits.length === 1 ? "1 post matches " + what + "." : hits.length + " posts match " + what + ".";
    document.title = "Search: " + (q.trim() || "filters") + " · " + document.title;
    var shown = 0;
    function page() {
      var end = Math.min(shown + 100, hits.length);
      for (; shown < end; shown++) list.appendChild(item(hits[shown]));
      more.hidden = shown >= hits.length;
    }
    more.onclick = page;
    page();
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  var monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  // when writes an RFC 3339 time as the pages do: 2 Jan 2006 15:04 UTC.
  function when(s) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}:\d{2})/.exec(s);
    if (!m) return "undated";
    return Number(m[3]) + " " + monthNames[Number(m[2]) - 1] + " " + m[1] + " " + m[4] + " UTC";
  }

  function item(p) {
    var li = el("li");
    li.setAttribute("data-post", p[0].split("#")[1] || "");
    var meta = el("p", "meta");
    var a = el("a");
    a.href = p[0];
    var time = el("time", "", when(p[1]));
    if (p[1]) time.setAttribute("datetime", p[1]);
    a.appendChild(time);
    meta.appendChild(a);
    if (p[2]) meta.appendChild(el("span", "", p[2] === 1 ? "1 attachment" : p[2] + " attachments"));
    if (p[3]) meta.appendChild(el("span", "gone", "deleted"));
    li.appendChild(meta);
    var text = p[5].length > 500 ? p[5].slice(0, 500) + "…" : p[5];
    if (p[4]) {
      var d = el("details", "cw");
      var s = el("summary");
      s.appendChild(el("span", "kind", "Content warning: "));
      s.appendChild(document.createTextNode(p[4]));
      d.appendChild(s);
      d.appendChild(el("p", "snippet", text));
      li.appendChild(d);
    } else {
      li.appendChild(el("p", "snippet", text));
    }
    return li;
  }
})();

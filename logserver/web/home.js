// The log's home page: reads the log's own public JSON (same origin) and shows it in Khmer or English.
// Plain JavaScript written for this page; no third-party code. Text is set with textContent only.
"use strict";
(function () {
  const I18N = {
    en: {
      title: "Document transparency log",
      intro_h: "What this is",
      intro: "Official documents are recorded here in a public, append-only list. Anyone can check that a document was really issued without trusting this server alone: independent witnesses vouch for every version of the list. Where this log keeps its status index, the check also proves that a document was not revoked, or was never recorded here; otherwise that part is the log's word, watched by independent monitors.",
      verify_link: "Verify a document",
      policy_link: "Download the trust policy",
      loading: "Loading…",
      loaded: "Up to date as of {time}.",
      unreachable: "The log did not answer: {detail}",
      log_h: "This log",
      size: "Documents and statements recorded",
      age: "Newest checkpoint",
      origin: "Name (origin)",
      log_key: "Log key",
      registry_key: "Registry key (who may add issuers)",
      witnesses_h: "Witnesses",
      witnesses_help: "Independent servers that check the log never rewrites its history, and sign each checkpoint they checked.",
      no_witnesses: "This log has no witnesses configured: verifiers cannot get independent assurance.",
      cosigned: "vouched for size {size}, {age}",
      never: "has not vouched for any checkpoint yet",
      last_error: "last problem: {error}",
      issuers_h: "Issuers",
      issuers_help: "The offices allowed to record documents here, with the history of their keys.",
      no_issuers: "No issuer is registered yet.",
      key_active: "in use since {time} (entry {index})",
      key_retired: "retired {time} (entry {index})",
      key_reason: "reason: {reason}",
      key_continues: "continues key {key} (a key rotation recorded by the registry: this key may revoke what that key issued)",
      tech_h: "For developers and auditors",
      openapi: "API description (OpenAPI)",
      checkpoint: "The latest checkpoint, with its cosignatures",
      tiles: "The log's tiles (c2sp.org/tlog-tiles)",
      status_json: "Status (JSON)",
      issuers_json: "Issuers (JSON)",
      foot: "Everything on this page is read from the log's public API. To check a document independently use the tlog tool: tlog verify DOCUMENT --policy trust-policy.txt",
      age_now: "less than a minute ago",
      age_min: "{n} min ago",
      age_hour: "{n} h ago",
      age_day: "{n} days ago",
      age_unknown: "no witness has dated it yet",
      age_of: "size {size}, {age}",
    },
    km: {
      title: "បញ្ជីឯកសារផ្លូវការសាធារណៈ",
      intro_h: "នេះជាអ្វី",
      intro: "ឯកសារផ្លូវការត្រូវបានកត់ត្រានៅទីនេះ ក្នុងបញ្ជីសាធារណៈដែលគ្រាន់តែបន្ថែម មិនអាចលុបឬកែបាន។ អ្នកណាក៏អាចពិនិត្យថាឯកសារមួយពិតជាត្រូវបានចេញ ដោយមិនចាំបាច់ទុកចិត្តលើម៉ាស៊ីនមេនេះតែមួយ៖ សាក្សីឯករាជ្យធានាគ្រប់កំណែនៃបញ្ជី។ នៅពេលបញ្ជីនេះរក្សាលិបិក្រមស្ថានភាព ការពិនិត្យក៏បញ្ជាក់ផងដែរថាឯកសារមិនត្រូវបានដកហូតវិញ ឬមិនដែលត្រូវបានកត់ត្រានៅទីនេះ។ បើមិនដូច្នោះទេ ផ្នែកនោះគ្រាន់តែជាពាក្យរបស់បញ្ជី ដែលអ្នកតាមដានឯករាជ្យត្រួតពិនិត្យ។",
      verify_link: "ពិនិត្យឯកសារ",
      policy_link: "ទាញយកគោលការណ៍ទុកចិត្ត",
      loading: "កំពុងផ្ទុក…",
      loaded: "ទាន់សម័យ គិតត្រឹម {time}។",
      unreachable: "បញ្ជីមិនបានឆ្លើយតប៖ {detail}",
      log_h: "បញ្ជីនេះ",
      size: "ចំនួនឯកសារ និងសេចក្តីថ្លែងដែលបានកត់ត្រា",
      age: "ចំណុចត្រួតពិនិត្យចុងក្រោយ",
      origin: "ឈ្មោះ (origin)",
      log_key: "កូនសោរបស់បញ្ជី",
      registry_key: "កូនសោចុះបញ្ជី (អ្នកអាចបន្ថែមអ្នកចេញឯកសារ)",
      witnesses_h: "សាក្សី",
      witnesses_help: "ម៉ាស៊ីនមេឯករាជ្យ ដែលពិនិត្យថាបញ្ជីមិនដែលសរសេរប្រវត្តិរបស់ខ្លួនឡើងវិញ ហើយចុះហត្ថលេខាលើចំណុចត្រួតពិនិត្យនីមួយៗដែលខ្លួនបានពិនិត្យ។",
      no_witnesses: "បញ្ជីនេះគ្មានសាក្សីទេ៖ អ្នកពិនិត្យមិនអាចទទួលបានការធានាឯករាជ្យបានទេ។",
      cosigned: "បានធានាទំហំ {size}, {age}",
      never: "មិនទាន់បានធានាចំណុចត្រួតពិនិត្យណាមួយនៅឡើយទេ",
      last_error: "បញ្ហាចុងក្រោយ៖ {error}",
      issuers_h: "អ្នកចេញឯកសារ",
      issuers_help: "ស្ថាប័នដែលមានសិទ្ធិកត់ត្រាឯកសារនៅទីនេះ ព្រមទាំងប្រវត្តិកូនសោរបស់ពួកគេ។",
      no_issuers: "មិនទាន់មានអ្នកចេញឯកសារណាមួយបានចុះឈ្មោះនៅឡើយទេ។",
      key_active: "កំពុងប្រើ ចាប់ពី {time} (ធាតុ {index})",
      key_retired: "ឈប់ប្រើ {time} (ធាតុ {index})",
      key_reason: "មូលហេតុ៖ {reason}",
      key_continues: "បន្តពីកូនសោ {key} (ការប្តូរកូនសោ ដែលបញ្ជីចុះឈ្មោះបានកត់ត្រា៖ កូនសោនេះអាចដកហូតឯកសារដែលកូនសោនោះបានចេញ)",
      tech_h: "សម្រាប់អ្នកអភិវឌ្ឍ និងសវនករ",
      openapi: "ការពិពណ៌នា API (OpenAPI)",
      checkpoint: "ចំណុចត្រួតពិនិត្យចុងក្រោយ ជាមួយហត្ថលេខារបស់សាក្សី",
      tiles: "ក្រឡា (tiles) របស់បញ្ជី (c2sp.org/tlog-tiles)",
      status_json: "ស្ថានភាព (JSON)",
      issuers_json: "អ្នកចេញឯកសារ (JSON)",
      foot: "អ្វីៗទាំងអស់នៅលើទំព័រនេះ ត្រូវបានអានពី API សាធារណៈរបស់បញ្ជី។ ដើម្បីពិនិត្យឯកសារដោយឯករាជ្យ សូមប្រើឧបករណ៍ tlog៖ tlog verify DOCUMENT --policy trust-policy.txt",
      age_now: "តិចជាងមួយនាទីមុន",
      age_min: "{n} នាទីមុន",
      age_hour: "{n} ម៉ោងមុន",
      age_day: "{n} ថ្ងៃមុន",
      age_unknown: "មិនទាន់មានសាក្សីណាដាក់កាលបរិច្ឆេទ",
      age_of: "ទំហំ {size}, {age}",
    },
  };
  const state = { lang: "en", log: null, issuers: null, newest: null, loadedAt: null, error: null };
  const $ = (id) => document.getElementById(id);

  function t(key, values) {
    let text = I18N[state.lang][key] || I18N.en[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.split("{" + name + "}").join(String(value));
    return text;
  }

  function ageText(seconds) {
    if (seconds < 60) return t("age_now");
    if (seconds < 3600) return t("age_min", { n: Math.floor(seconds / 60) });
    if (seconds < 86400) return t("age_hour", { n: Math.floor(seconds / 3600) });
    return t("age_day", { n: Math.floor(seconds / 86400) });
  }
  const ago = (unixSeconds) => ageText(Math.max(0, Date.now() / 1000 - unixSeconds));
  const dateText = (unixSeconds) => new Date(unixSeconds * 1000).toISOString().slice(0, 10);

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The newest timestamp among the checkpoint's cosignatures (c2sp.org/tlog-cosignature: a cosignature/v1
  // signature is key hash (4) || timestamp (8, big-endian) || Ed25519 (64)). Shown, not verified: /verify verifies.
  function newestCosignature(noteText) {
    let newest = null;
    for (const line of noteText.split("\n")) {
      const match = /^\u2014 \S+ ([A-Za-z0-9+/=]+)$/.exec(line);
      if (!match) continue;
      let raw;
      try { raw = atob(match[1]); } catch (e) { continue; }
      if (raw.length !== 4 + 8 + 64) continue;
      let time = 0;
      for (let i = 4; i < 12; i++) time = time * 256 + raw.charCodeAt(i);
      if (newest === null || time > newest) newest = time;
    }
    return newest;
  }

  function renderLog() {
    const log = state.log;
    $("f-size").textContent = String(log.size);
    const age = state.newest === null ? t("age_unknown") : ago(state.newest);
    $("f-age").textContent = t("age_of", { size: log.published_size, age: age });
    $("f-origin").textContent = log.origin;
    $("f-log-key").textContent = log.log_vkey;
    $("f-registry-key").textContent = (log.registry_vkeys || []).join("\n") || "—";
    const size = log.published_size;
    const path = size === 0 ? null : "/tile/entries/000" + (size < 256 ? ".p/" + size : "");
    if (path) { $("tiles-link").href = path; $("tiles-path").textContent = path; }
  }

  function renderWitnesses() {
    const list = $("witnesses");
    list.replaceChildren();
    const witnesses = state.log.witnesses || [];
    if (witnesses.length === 0) list.append(element("li", "bad", t("no_witnesses")));
    for (const w of witnesses) {
      const item = element("li");
      item.append(element("div", "name", w.name), element("div", "mono", w.vkey));
      const cosigned = w.last_cosigned_at === null ? t("never")
        : t("cosigned", { size: w.last_cosigned_size, age: ago(w.last_cosigned_at) });
      item.append(element("div", w.last_cosigned_at === null ? "bad" : "ok", cosigned));
      if (w.last_error) item.append(element("div", "bad", t("last_error", { error: w.last_error })));
      list.append(item);
    }
  }

  function keyItem(key) {
    const item = element("li", key.active ? "active" : "retired");
    item.append(element("div", "label", key.label || ""), element("div", "mono", key.vkey));
    item.append(element("div", "", t("key_active", { time: dateText(key.added.time), index: key.added.index })));
    // A rotation (issuer-add ... continues): the one status rule lets the new key revoke what the old one issued.
    if (key.continues) item.append(element("div", "rotation", t("key_continues", { key: key.continues })));
    if (!key.active) {
      item.append(element("div", "", t("key_retired", { time: dateText(key.retired.time), index: key.retired.index })));
      if (key.retired.reason) item.append(element("div", "", t("key_reason", { reason: key.retired.reason })));
    }
    return item;
  }

  function renderIssuers() {
    const list = $("issuers");
    list.replaceChildren();
    const issuers = state.issuers.issuers || [];
    if (issuers.length === 0) list.append(element("li", "", t("no_issuers")));
    for (const issuer of issuers) {
      const item = element("li");
      const labels = [...new Set(issuer.keys.map((k) => k.label).filter(Boolean))].join(" / ");
      item.append(element("div", "name", labels ? labels + " — " + issuer.name : issuer.name));
      const keys = element("ul", "keys");
      for (const key of [...issuer.keys].sort((a, b) => a.added.index - b.added.index)) keys.append(keyItem(key));
      item.append(keys);
      list.append(item);
    }
  }

  function render() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    document.title = t("title");
    $("lang-km").setAttribute("aria-pressed", String(state.lang === "km"));
    $("lang-en").setAttribute("aria-pressed", String(state.lang === "en"));
    const status = $("status");
    status.classList.toggle("error", state.error !== null);
    if (state.error !== null) status.textContent = t("unreachable", { detail: state.error });
    else if (state.loadedAt !== null) status.textContent = t("loaded", { time: state.loadedAt.toLocaleString() });
    if (state.log) { renderLog(); renderWitnesses(); }
    if (state.issuers) renderIssuers();
  }

  async function getJson(path) {
    const response = await fetch(path, { cache: "no-store" });
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }

  async function load() {
    try {
      const [log, issuers] = await Promise.all([getJson("/api/v1/log"), getJson("/api/v1/issuers")]);
      const checkpoint = await fetch("/checkpoint", { cache: "no-store" });
      state.newest = checkpoint.ok ? newestCosignature(await checkpoint.text()) : null;
      Object.assign(state, { log: log, issuers: issuers, loadedAt: new Date(), error: null });
    } catch (e) {
      state.error = String((e && e.message) || e);
    }
    render();
    document.body.dataset.done = "1";
  }

  function setLang(lang) {
    state.lang = lang;
    try { localStorage.setItem("tlog-lang", lang); } catch (e) { /* private mode */ }
    render();
  }

  document.addEventListener("DOMContentLoaded", () => {
    let lang = null;
    try { lang = localStorage.getItem("tlog-lang"); } catch (e) { lang = null; }
    state.lang = lang === "km" || lang === "en" ? lang : (navigator.language || "").startsWith("km") ? "km" : "en";
    $("lang-km").addEventListener("click", () => setLang("km"));
    $("lang-en").addEventListener("click", () => setLang("en"));
    render();
    load();
  });
})();
